#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ for SECONDS each (default 60), one after the
# other, and prints how many inputs each ran and whether it failed.
#   bash scripts/fuzz.sh SECONDS [TARGET...]
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz
# --locked`); exits 2, saying what is missing, without them.
#
# Seeds are read from fuzz/corpus/TARGET (committed; a run never writes
# there). What a run adds goes to fuzz/target/corpus/TARGET, kept between
# runs and never committed. A failing input is saved in fuzz/artifacts/TARGET/
# and the script exits 1 once every target has run; replay one with
#   cargo +nightly fuzz run -O -a TARGET fuzz/artifacts/TARGET/crash-...
# and turn it into a test in tests/fuzz_regressions.rs.
#
# Builds are optimised with debug assertions and overflow checks on (-O -a),
# under AddressSanitizer with LeakSanitizer, as cargo-fuzz does by default.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
case $secs in
  '' | 0 | *[!0-9]*) echo "usage: bash scripts/fuzz.sh SECONDS [TARGET...]  (SECONDS >= 1)" >&2; exit 2 ;;
esac

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "the nightly toolchain is not installed (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed (cargo install cargo-fuzz --locked)" >&2
  exit 2
fi

cd fuzz
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# The targets write their files under TMPDIR: a fresh directory, in memory
# when /dev/shm is there (the spool and checkpoint fsync a lot), removed at exit.
scratch_root=/dev/shm
[ -d "$scratch_root" ] && [ -w "$scratch_root" ] || scratch_root=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$scratch_root/spillway-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

flags=(-O -a)
echo "==> building the fuzz targets"
cargo +nightly fuzz build "${flags[@]}"

failed=()
summary=()
for t in "${targets[@]}"; do
  echo "==> $t for ${secs}s"
  mkdir -p "target/corpus/$t" "corpus/$t"
  log="$scratch/$t.log"
  status=ok
  # -timeout: one input running longer than 20 s is a hang, reported as such.
  if ! TMPDIR="$scratch" cargo +nightly fuzz run "${flags[@]}" "$t" \
    "target/corpus/$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1; then
    status=FAILED
    failed+=("$t")
    grep -E "panicked at|ERROR: |SUMMARY: |Test unit written to|^\s+(left|right):" "$log" | head -n 20 || true
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  summary+=("$(printf '%-18s %12s executions  %s' "$t" "${execs:-?}" "$status")")
  tail -n 3 "$log" | sed 's/^/    /'
done

echo
echo "==> fuzz summary (${secs}s each)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
