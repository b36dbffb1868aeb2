#!/usr/bin/env bash
# Benchmark of `spillway ship` into NATS JetStream against a bare async-nats
# publisher, in the same run, on one local JetStream node:
#   bash agent/bench_nats.sh [LINES]      (default 1000000)
# Generates LINES lines of 100 bytes (99 + newline) under target/bench-nats/,
# starts `nats-server -js` on a free port with a fresh store there, then:
#   1. examples/nats_bare_publish: one message per line, acks pipelined in
#      batches of BATCH (the agent's default max_size), each batch's acks
#      awaited before the next (the peer);
#   2. spillway ship with the default configuration, stream made by
#      --nats-stream;
# both under /usr/bin/time -v, into streams of their own. Prints both
# throughputs, their ratio, both peak memories (max RSS), and checks that
# each stream holds LINES messages. Needs nats-server (apt-get install
# nats-server). Run it on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${1:-1000000}
BATCH=20000
DIR=target/bench-nats
INPUT=$DIR/input-${LINES}x100.txt
mkdir -p "$DIR"

SERVER=$(command -v nats-server || true)
[ -z "$SERVER" ] && [ -x /usr/sbin/nats-server ] && SERVER=/usr/sbin/nats-server
if [ -z "$SERVER" ]; then
  echo "nats-server is not installed (apt-get install nats-server)" >&2
  exit 2
fi

cargo build --release -p spillway-agent --bin spillway --example nats_bare_publish >/dev/null
BIN=target/release/spillway
BARE=target/release/examples/nats_bare_publish

if [ ! -f "$INPUT" ]; then
  echo "generating $INPUT ..."
  mawk -v n="$LINES" 'BEGIN {
    fill = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"
    for (i = 1; i <= n; i++) printf "%010d %s\n", i, substr(fill, 1, 88)
  }' > "$INPUT.tmp"
  mv "$INPUT.tmp" "$INPUT"
fi
bytes=$(stat -c %s "$INPUT")
cat "$INPUT" > /dev/null # warm the page cache for both runs

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf "$DIR/store" "$DIR/state"
"$SERVER" -js -a 127.0.0.1 -p "$PORT" -sd "$DIR/store" > "$DIR/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true; wait $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
URL=nats://127.0.0.1:$PORT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$LINES" -v s="$1" 'BEGIN { printf "%.0f msgs/s, %.1f MiB/s", n / s, n * 100 / 1048576 / s }'; }
rss() { awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); printf "%.1f MiB", $2 / 1024 }' "$1"; }

# The bare client creates its stream before it starts timing; its own figure
# leaves out process start and connection, so the wall time of both runs is
# what is compared.
t0=$(now)
/usr/bin/time -v -o "$DIR/time-bare.txt" "$BARE" "$INPUT" "$URL" bench.bare "$BATCH" BARE
t1=$(now)
bare_s=$(secs "$t0" "$t1")

t0=$(now)
/usr/bin/time -v -o "$DIR/time-agent.txt" "$BIN" ship --input "$INPUT" --output "$URL/bench.agent" \
  --state "$DIR/state" --nats-stream AGENT
t1=$(now)
agent_s=$(secs "$t0" "$t1")
acked=$("$BIN" inspect --state "$DIR/state" | awk '/last acknowledged stream sequence/ { gsub(/,/, "", $5); print $5 }')

echo
echo "input: $INPUT, $(awk -v b="$bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }'), $LINES lines; batches of $BATCH"
echo "bare async-nats:  ${bare_s}s  $(rate "$bare_s")  peak memory $(rss "$DIR/time-bare.txt")"
echo "spillway ship:    ${agent_s}s  $(rate "$agent_s")  peak memory $(rss "$DIR/time-agent.txt")  (last acked sequence: $acked)"
echo "ratio (agent / bare): $(awk -v a="$bare_s" -v b="$agent_s" 'BEGIN { printf "%.2f", a / b }')  (goal >= 0.80)"
echo "agent peak memory: $(rss "$DIR/time-agent.txt")  (goal < 32 MiB)"
if [ "$acked" != "$LINES" ]; then
  echo "the agent's stream does not end at sequence $LINES" >&2
  exit 1
fi
rm -rf "$DIR/state" "$DIR/store"
