#!/usr/bin/env bash
# Runs every test of spillway: the README's test command, and what .ci/run calls.
#   bash scripts/test.sh
# Steps: format, clippy, layering (scripts/check-structure.sh), header drift, a
# dependent crate's build, unit/integration/doc tests, C/C++ programs
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
# The minimal embedded agent (no HTTP, no NATS) must keep compiling cleanly.
cargo clippy -p spillway-agent --all-targets --no-default-features -- -D warnings

step "the layering: engine below buffer, no import loop in src/buffer/, file lengths"
bash scripts/check-structure.sh

step "include/spillway.h matches cbindgen"
# Only this build regenerates the header (build.rs writes it when asked).
SPILLWAY_GENERATE_HEADER=1 cargo build --profile "$PROFILE" -p spillway
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if ! git diff --exit-code -- include/spillway.h; then
    echo "include/spillway.h differs from what cbindgen generates (build.rs rewrote it above);" >&2
    echo "review the diff and commit the regenerated header." >&2
    exit 1
  fi
fi

step "a crate that depends on spillway builds without touching spillway's source tree"
# As another crate's dependency, build.rs must run no cbindgen and write
# nothing outside OUT_DIR. Checked by time, not by permissions: `chmod a-w`
# stops nothing when the build runs as root, as CI does.
scratch=$(mktemp -d)
mkdir -p "$scratch/src"
cat >"$scratch/Cargo.toml" <<TOML
[package]
name = "spillway-dependent-check"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
spillway = { path = "$PWD" }

[workspace]
TOML
cat >"$scratch/src/main.rs" <<'RS'
fn main() {
    let buf = spillway::Buffer::new(
        spillway::BufferConfig::new(),
        |_: &[u32], _: &spillway::FlushContext<'_>| Ok::<(), spillway::SinkError>(()),
    )
    .expect("a buffer");
    buf.insert(1).expect("an insert");
}
RS
cp Cargo.lock "$scratch/Cargo.lock" # the versions this tree is tested with
touch "$scratch/stamp"
# Its target directory is under ours (outside the check), so reruns are incremental.
dependent_target="$PWD/target/dependent"
(cd "$scratch" && env -u SPILLWAY_GENERATE_HEADER CARGO_TARGET_DIR="$dependent_target" cargo build --quiet)
touched=$(find . \( -path ./target -o -path ./.git \) -prune -o -newer "$scratch/stamp" -print)
rm -rf "$scratch"
if [ -n "$touched" ]; then
  echo "building spillway as a dependency wrote into its source tree:" >&2
  echo "$touched" >&2
  exit 1
fi

step "cargo test (unit, integration, doc)"
# On Linux the rings' wake-up fences use membarrier; make a silent fallback
# to full fences (an old kernel, a seccomp filter) fail the test that checks.
if [ "$(uname -s)" = Linux ]; then export SPILLWAY_EXPECT_MEMBARRIER=1; fi
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

step "loom models fail without the heavy fence (loom-tests/breakage.sh)"
LOOM_MAX_PREEMPTIONS="$LOOM_MAX_PREEMPTIONS" bash loom-tests/breakage.sh

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
