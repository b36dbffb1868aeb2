#!/usr/bin/env bash
# Runs every test of spillway: the README's test command, and what .ci/run calls.
#   bash scripts/test.sh
# Steps: format, clippy, header drift, unit/integration/doc tests, C/C++ programs
# (under valgrind when installed, and under ASan+UBSan), the installed copy
# (pkg-config, CMake, symbols, examples/c), loom models, and a short run of
# every fuzz target (FUZZ_SECONDS each, default 20, 0 skips; SKIPPED, saying so,
# without the nightly toolchain or cargo-fuzz; scripts/fuzz.sh runs them longer).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Tests run optimised but keep debug assertions and overflow checks (profile `ci`).
PROFILE=ci

step "cargo fmt --check"
cargo fmt --all -- --check
# fuzz/ is its own workspace (not in --all); formatting it needs no nightly.
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "include/spillway.h matches cbindgen"
cargo build --profile "$PROFILE" -p spillway
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if ! git diff --exit-code -- include/spillway.h; then
    echo "include/spillway.h differs from what cbindgen generates (build.rs rewrote it above);" >&2
    echo "review the diff and commit the regenerated header." >&2
    exit 1
  fi
fi

step "cargo test (unit, integration, doc)"
cargo test --workspace --profile "$PROFILE"

step "README's C example is ffi-tests/readme_example.c"
awk '/^```c$/{on=1; next} /^```$/{on=0} on' README.md | diff -u ffi-tests/readme_example.c - \
  || { echo "README.md's C example and ffi-tests/readme_example.c differ" >&2; exit 1; }

step "C and C++ programs in ffi-tests/ (valgrind, then ASan+UBSan)"
bash ffi-tests/run.sh "target/$PROFILE"

step "the installed copy: layout, symbols, pkg-config, CMake, examples/c"
bash ffi-tests/installed.sh "$PROFILE"

step "loom models (LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:=3})"
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS="$LOOM_MAX_PREEMPTIONS" CARGO_TARGET_DIR=target/loom \
  cargo test -p spillway-loom-tests --release

step "fuzz targets, ${FUZZ_SECONDS:=20}s each (fuzz/; inputs that failed: tests/fuzz_regressions.rs)"
if [ "$FUZZ_SECONDS" = 0 ]; then
  echo "SKIPPED: fuzz targets: FUZZ_SECONDS=0"
elif ! cargo +nightly --version >/dev/null 2>&1; then
  echo "SKIPPED: fuzz targets: the nightly toolchain is not installed (rustup toolchain install nightly)"
elif ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "SKIPPED: fuzz targets: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
else
  bash scripts/fuzz.sh "$FUZZ_SECONDS"
fi

step "all checks passed"
