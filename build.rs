//! Regenerates `include/spillway.h` from the `extern "C"` items in `src/ffi/`
//! when asked to (`SPILLWAY_GENERATE_HEADER=1`, which `scripts/test.sh`
//! sets), and names the shared library.
//!
//! The header is committed; the test command regenerates it and fails when
//! the committed copy differs, so the two cannot drift apart. Any other
//! build (spillway as another crate's dependency, a read-only source
//! directory) runs no cbindgen and writes nothing outside `OUT_DIR`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SPILLWAY_GENERATE_HEADER");

    shared_library_name();

    if std::env::var_os("SPILLWAY_GENERATE_HEADER").is_none_or(|v| v != "1") {
        return;
    }
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

/// Gives `libspillway.so` the soname `libspillway.so.<ABI>`, which programs
/// linked against it record, so an installed `libspillway.so.0.2.0` can be
/// replaced by a compatible build without relinking them (scripts/install.sh
/// names the file and its links after it). The number counts C ABI breaks:
/// it moves when a signature, a struct layout or a meaning in
/// include/spillway.h changes, not with every crate version. 1: 0.2.0 grew
/// `spw_stats` and `spw_flush_info` (issue 11).
fn shared_library_name() {
    const ABI: u32 = 1;
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libspillway.so.{ABI}");
    }
}
