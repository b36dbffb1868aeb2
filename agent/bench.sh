#!/usr/bin/env bash
# Benchmark of `spillway ship` against `cat input > output && sync output`.
#   bash agent/bench.sh [SIZE_MiB]      (default 1024: a 1 GiB input)
# Generates its input once under target/bench-agent/ (numbered log-like lines
# of 60-140 bytes), warms the page cache with it, then in the same run:
#   1. cat input > out && sync out         (the peer: copy, then one fsync)
#   2. spillway ship with the default configuration, under /usr/bin/time -v
# and prints both throughputs, their ratio, and the agent's peak memory
# (maximum resident set size). The outputs are compared byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${1:-1024}
DIR=target/bench-agent
INPUT=$DIR/input-${SIZE_MIB}MiB.txt
mkdir -p "$DIR"

cargo build --release -p spillway-agent >/dev/null
BIN=target/release/spillway

if [ ! -f "$INPUT" ]; then
  echo "generating $INPUT ..."
  mawk -v limit=$((SIZE_MIB * 1024 * 1024)) 'BEGIN {
    srand(7); n = 0; bytes = 0
    while (bytes < limit) {
      n++
      pad = substr("abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789", 1, int(rand() * 72))
      line = sprintf("%010d 2024-05-01T12:%02d:%02d.%03dZ host-%02d app[%d]: request took %dms path=/api/v1/items/%d %s",
                     n, int(n / 60000) % 60, int(n / 1000) % 60, n % 1000, n % 32, 1000 + n % 977, n % 500, n * 7 % 100000, pad)
      print line
      bytes += length(line) + 1
    }
  }' > "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi

bytes=$(stat -c %s "$INPUT")
lines=$(wc -l < "$INPUT")
cat "$INPUT" > /dev/null # warm the page cache for both runs

now() { date +%s.%N; }
mib_s() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.1f", b / 1048576 / s }'; }

rm -f "$DIR/cat.out"
t0=$(now)
cat "$INPUT" > "$DIR/cat.out" && sync "$DIR/cat.out"
t1=$(now)
cat_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
rm -f "$DIR/cat.out"

rm -rf "$DIR/agent.out" "$DIR/state"
t0=$(now)
/usr/bin/time -v -o "$DIR/time.txt" "$BIN" ship --input "$INPUT" --output "$DIR/agent.out" --state "$DIR/state"
t1=$(now)
agent_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
rss_kib=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$DIR/time.txt")

if cmp -s "$INPUT" "$DIR/agent.out"; then same=yes; else same=NO; fi
rm -rf "$DIR/agent.out" "$DIR/state"

echo
echo "input: $INPUT, $(awk -v b="$bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }'), $lines lines"
echo "cat + sync:     ${cat_s}s  $(mib_s "$cat_s") MiB/s"
echo "spillway ship:  ${agent_s}s  $(mib_s "$agent_s") MiB/s  (output identical: $same)"
echo "ratio (agent / cat): $(awk -v a="$cat_s" -v b="$agent_s" 'BEGIN { printf "%.2f", a / b }')  (goal >= 0.50)"
echo "agent peak memory (max RSS): $(awk -v k="$rss_kib" 'BEGIN { printf "%.1f MiB", k / 1024 }')  (goal < 32 MiB)"
