#!/usr/bin/env bash
# Runs every benchmark, on an idle machine only.
#   bash scripts/bench.sh [--force] [BENCH...]      (default: every bench)
# Prints the machine (CPU model, cores, kernel, date) and the load average
# first. Builds the benches, then before each bench waits up to
# SPILLWAY_BENCH_WAIT seconds (default 300) for the 1-minute load average to
# fall under 0.5 (the previous bench raises it), and refuses to run if
# it does not: a busy machine flatters a parking ring
# against a spinning peer, so its ratios are not ones to publish. --force
# runs anyway (each bench still prints the load it started under).
set -euo pipefail
cd "$(dirname "$0")/.."

force=0
benches=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) benches+=("$arg") ;;
  esac
done
if [ ${#benches[@]} -eq 0 ]; then
  benches=(spsc locking_ring buffer ffi spool checkpoint fences)
fi

load() { cut -d' ' -f1 /proc/loadavg; }
above() { awk -v l="$1" 'BEGIN { exit !(l >= 0.5) }'; }

echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu:     $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "kernel:  $(uname -sr)"
echo "rustc:   $(rustc --version)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 minutes)"

args=()
for b in "${benches[@]}"; do args+=(--bench "$b"); done
echo "==> building the benches"
cargo bench --no-run "${args[@]}" 2>&1 | tail -n 2

# Waits until the 1-minute load average is under 0.5, up to the limit.
# Returns 1 if it never got there. Called before every bench, since each
# bench itself raises the load average of the next one's start to about 1.
settle() {
  local waited=0 limit=${SPILLWAY_BENCH_WAIT:-300}
  while above "$(load)" && [ "$waited" -lt "$limit" ]; do
    [ $((waited % 30)) -eq 0 ] && echo "load average $(load) >= 0.5: waiting for the machine to settle (${waited}s of ${limit}s)"
    sleep 5
    waited=$((waited + 5))
  done
  ! above "$(load)"
}

for b in "${benches[@]}"; do
  echo
  if ! settle; then
    if [ "$force" -eq 1 ]; then
      echo "WARNING: load average $(load) >= 0.5; running anyway (--force): do not publish these figures"
    else
      echo "refusing to run $b: load average $(load) >= 0.5 (another build or job is running?). --force runs anyway." >&2
      exit 1
    fi
  fi
  echo "==> cargo bench --bench $b   (load $(load))"
  cargo bench -q --bench "$b"
done
