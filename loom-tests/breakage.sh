#!/usr/bin/env bash
# The models must depend on the heavy half of the asymmetric fence pair
# (src/sync.rs): built with `--cfg spillway_break_heavy_fence`, where that
# fence does nothing, each model below has to fail (a lost wake-up is a loom
# deadlock; a lost item is a failed assertion). A model that still passes
# proves nothing about the fence, and this script fails.
#   bash loom-tests/breakage.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom --cfg spillway_break_heavy_fence"
export CARGO_TARGET_DIR=target/loom-broken
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"

cargo test -p spillway-loom-tests --release --no-run --test spsc --test buffer --test locking_ring --test ffi_spsc --test fence_lock || exit 1

failed=0
expect_failure() { # test-file model what-loom-must-say
  local out
  out=$(cargo test -q -p spillway-loom-tests --release --test "$1" -- --exact "$2" 2>&1)
  if grep -q "$3" <<<"$out"; then
    echo "ok: without the heavy fence, $1::$2 fails ($3)"
  else
    echo "FAILED: without the heavy fence, $1::$2 did not fail with '$3':" >&2
    tail -n 20 <<<"$out" >&2
    failed=1
  fi
}
expect_failure spsc consumer_blocked_on_empty_is_woken_by_push "deadlock; threads"
expect_failure spsc producer_blocked_on_full_is_woken_by_pop "deadlock; threads"
expect_failure spsc blocking_push_and_pop_ping_pong "deadlock; threads"
expect_failure spsc push_slice_and_pop_batch_hand_over_batches "deadlock; threads"
expect_failure locking_ring blocked_push_woken_by_pop "deadlock; threads"
expect_failure locking_ring pusher_blocked_on_the_cache_is_woken_by_each_pop "deadlock; threads"
expect_failure ffi_spsc a_push_racing_a_close_is_popped_exactly_when_it_succeeded "assertion .left == right. failed"
expect_failure buffer close_and_a_pushing_producer_hand_off_every_item_once "assertion .left == right. failed"
# The lock's heavy fence is broken alone (src/sync.rs, `lock_heavy_fence`):
# every contended lock would deadlock without it, which would hide whether
# the models above fail for the reason they are there for.
SPILLWAY_BROKEN_FENCE=lock expect_failure fence_lock three_threads_exclude_each_other_and_all_finish "deadlock; threads"
exit $failed
