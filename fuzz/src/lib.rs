//! Helpers shared by the fuzz targets in `fuzz_targets/`.

use std::path::PathBuf;

/// Checks that `got` is `want` with some items left out: every item of
/// `got` was in `want`, in the same order, none twice. On failure, says
/// which item of `got` does not fit.
pub fn check_subsequence(got: &[Vec<u8>], want: &[Vec<u8>]) -> Result<(), String> {
    let mut at = 0;
    for (i, item) in got.iter().enumerate() {
        match want[at..].iter().position(|w| w == item) {
            Some(k) => at += k + 1,
            None => {
                let pushed_anywhere = want.iter().any(|w| w == item);
                return Err(format!(
                    "item {i} of {} ({} bytes, {:?}...) {}",
                    got.len(),
                    item.len(),
                    &item[..item.len().min(16)],
                    if pushed_anywhere {
                        "was pushed, but is out of order or repeated"
                    } else {
                        "was never pushed"
                    }
                ));
            }
        }
    }
    Ok(())
}

/// A directory of this process for target `name`, under the system's
/// temporary directory (`scripts/fuzz.sh` points `TMPDIR` at a directory it
/// removes afterwards), emptied and ready for one run of the target.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spillway-fuzz-{name}-{}", std::process::id()));
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot empty {}: {e}", dir.display()),
    }
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}
