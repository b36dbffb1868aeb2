//! Generates `include/spillway.h` from the `extern "C"` items in `src/ffi/`.
//!
//! The header is committed; the test command fails when the committed copy
//! differs from what this script writes, so the two cannot drift apart.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    // The loom build model-checks Rust code only; it must not touch the header.
    if std::env::var_os("CARGO_CFG_LOOM").is_some() {
        return;
    }

    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen could not generate include/spillway.h: {e}"));
    // Writes only when the contents change, so the file's mtime stays put.
    bindings.write_to_file(crate_dir.join("include").join("spillway.h"));
}
