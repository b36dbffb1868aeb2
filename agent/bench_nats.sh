#!/usr/bin/env bash
# Benchmark of `spillway ship` into NATS JetStream against a bare async-nats
# publisher, in the same run, on one local JetStream node:
#   bash agent/bench_nats.sh [LINES] [ROUNDS]   (defaults 1000000, 5)
#   FORCE=1 bash agent/bench_nats.sh ...         (on a busy machine: figures
#                                                 for guidance only, marked so)
# Generates LINES lines of 100 bytes (99 + newline) under target/bench-nats/.
# Each of ROUNDS rounds starts `nats-server -js` on a free port with a fresh
# store there, then runs, one after the other (so they interleave round by
# round):
#   1. examples/nats_bare_publish: one message per line, acks pipelined in
#      batches of BATCH (the agent's default max_size), each batch's acks
#      awaited before the next (the peer);
#   2. spillway ship with the default configuration (--nats-dedup sequence:
#      a guarded first message with a manifest per batch, no header on the
#      others), stream made by --nats-stream;
#   3. the same bare publisher with a Nats-Msg-Id header on every message,
#      shaped like the agent's: the server then deduplicates as it does for
#      the agent, so 3 vs 1 is what exactly-once costs the server, and 2 vs 3
#      what the agent costs beyond it (shown for information; the goal is
#      2 vs 1);
#   4. the same bare publisher with the same header value under a name the
#      server does not read (Spw-Pos): 4 vs 1 is what the header's bytes
#      cost, so 3 vs 4 is the deduplication alone (for information);
#   5. spillway ship --nats-dedup msg-id (Nats-Msg-Id on every message), for
#      information: 5 vs 3 is what the agent costs beyond that mode's
#      server-side price;
# all under /usr/bin/time -v, into streams of their own, and checks that the
# agent's stream ends at sequence LINES. Prints the load average, each
# round, then the median throughputs, the ratios, and the largest peak
# memory (max RSS) of each side. Needs nats-server (apt-get install
# nats-server). Run it on an idle machine: it waits up to 300 s for the
# 1-minute load average to fall under 0.5 and refuses to run otherwise, unless
# FORCE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${1:-1000000}
ROUNDS=${2:-5}
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

cargo build --release -p spillway-agent --bin spillway --example nats_bare_publish 2>&1 | tail -n 1
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

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$LINES" -v s="$1" 'BEGIN { printf "%.0f msgs/s, %.1f MiB/s", n / s, n * 100 / 1048576 / s }'; }
rss_kib() { awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT

# One round: a fresh server and store, the bare client, then the agent.
# Times `spillway ship` of the input to URL/bench.NAME, into stream STREAM, in
# --nats-dedup MODE, under /usr/bin/time -v (to $DIR/time-NAME.txt), with the
# state directory $DIR/state-NAME; prints the seconds, and fails unless the
# stream ends at sequence LINES.
ship() {
  local url=$1 name=$2 stream=$3 mode=$4 t0 t1 acked
  t0=$(now)
  /usr/bin/time -v -o "$DIR/time-$name.txt" "$BIN" ship --input "$INPUT" --output "$url/bench.$name" \
    --state "$DIR/state-$name" --nats-stream "$stream" --nats-dedup "$mode" > /dev/null
  t1=$(now)
  acked=$("$BIN" inspect --state "$DIR/state-$name" | awk '/last acknowledged stream sequence/ { gsub(/,/, "", $5); print $5 }')
  if [ "$acked" != "$LINES" ]; then
    echo "the $mode agent's stream does not end at sequence $LINES (last acked: $acked)" >&2
    return 1
  fi
  secs "$t0" "$t1"
}

# Appends "bare_s agent_s agent_rss_kib bare_rss_kib ids_s hdr_s agent_ids_s
# agent_ids_rss_kib" to $DIR/rounds.
round() {
  stop_server
  rm -rf "$DIR/store" "$DIR/state-agent" "$DIR/state-agent-ids"
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$SERVER" -js -a 127.0.0.1 -p "$port" -sd "$DIR/store" > "$DIR/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  local url=nats://127.0.0.1:$port t0 t1 bare_s agent_s agent_ids_s
  # The bare client creates its stream before it starts timing; its own
  # figure leaves out process start and connection, so the wall time of both
  # runs is what is compared.
  t0=$(now)
  /usr/bin/time -v -o "$DIR/time-bare.txt" "$BARE" "$INPUT" "$url" bench.bare "$BATCH" BARE > /dev/null
  t1=$(now)
  bare_s=$(secs "$t0" "$t1")
  agent_s=$(ship "$url" agent AGENT sequence)
  t0=$(now)
  "$BARE" "$INPUT" "$url" bench.ids "$BATCH" IDS ids > /dev/null
  t1=$(now)
  ids_s=$(secs "$t0" "$t1")
  t0=$(now)
  "$BARE" "$INPUT" "$url" bench.hdr "$BATCH" HDR hdr > /dev/null
  t1=$(now)
  hdr_s=$(secs "$t0" "$t1")
  agent_ids_s=$(ship "$url" agent-ids AGENTIDS msg-id)
  echo "$bare_s $agent_s $(rss_kib "$DIR/time-agent.txt") $(rss_kib "$DIR/time-bare.txt") $ids_s $hdr_s $agent_ids_s $(rss_kib "$DIR/time-agent-ids.txt")" >> "$DIR/rounds"
  echo "round: bare ${bare_s}s, agent ${agent_s}s, bare with ids ${ids_s}s, with a plain header ${hdr_s}s, agent msg-id ${agent_ids_s}s; agent / bare $(awk -v a="$bare_s" -v b="$agent_s" 'BEGIN { printf "%.2f", a / b }')"
}

# Only an idle machine gives a figure: wait (up to 300 s) for the 1-minute
# load average to fall under 0.5, after the build above; refuse otherwise.
load() { cut -d' ' -f1 /proc/loadavg; }
above() { awk -v l="$1" 'BEGIN { exit !(l >= 0.5) }'; }
waited=0
while above "$(load)" && [ "$waited" -lt 300 ]; do
  sleep 5
  waited=$((waited + 5))
done
FORCED=
if above "$(load)"; then
  if [ "${FORCE:-}" != 1 ]; then
    echo "refusing to run: load average $(load) > 0.5 (another build or job is running?)" >&2
    exit 1
  fi
  FORCED="FORCED at load $(load) > 0.5: figures for guidance only, not a result"
  echo "$FORCED"
fi

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 minutes) at start"
rm -f "$DIR/rounds"
for _ in $(seq "$ROUNDS"); do round; done

bare_s=$(cut -d' ' -f1 "$DIR/rounds" | median)
agent_s=$(cut -d' ' -f2 "$DIR/rounds" | median)
agent_rss=$(cut -d' ' -f3 "$DIR/rounds" | sort -g | tail -n 1)
bare_rss=$(cut -d' ' -f4 "$DIR/rounds" | sort -g | tail -n 1)
ids_s=$(cut -d' ' -f5 "$DIR/rounds" | median)
hdr_s=$(cut -d' ' -f6 "$DIR/rounds" | median)
agent_ids_s=$(cut -d' ' -f7 "$DIR/rounds" | median)
agent_ids_rss=$(cut -d' ' -f8 "$DIR/rounds" | sort -g | tail -n 1)
echo
echo "input: $INPUT, $(awk -v b="$bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }'), $LINES lines; batches of $BATCH; median of $ROUNDS rounds"
echo "bare async-nats:  ${bare_s}s  $(rate "$bare_s")  peak memory $(awk -v k="$bare_rss" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
echo "spillway ship:    ${agent_s}s  $(rate "$agent_s")  peak memory $(awk -v k="$agent_rss" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
echo "bare with ids:    ${ids_s}s  $(rate "$ids_s")"
echo "bare, plain hdr:  ${hdr_s}s  $(rate "$hdr_s")"
echo "ship, msg-id:     ${agent_ids_s}s  $(rate "$agent_ids_s")  peak memory $(awk -v k="$agent_ids_rss" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
echo "ratio (agent / bare): $(awk -v a="$bare_s" -v b="$agent_s" 'BEGIN { printf "%.2f", a / b }')  (goal >= 0.80)"
echo "for information: bare with ids / bare $(awk -v a="$bare_s" -v b="$ids_s" 'BEGIN { printf "%.2f", a / b }') (the server's deduplication), agent / bare with ids $(awk -v a="$ids_s" -v b="$agent_s" 'BEGIN { printf "%.2f", a / b }') (the agent's own cost), bare with the same value in a header the server does not read / bare $(awk -v a="$bare_s" -v b="$hdr_s" 'BEGIN { printf "%.2f", a / b }') (the header's bytes alone); agent msg-id / bare $(awk -v a="$bare_s" -v b="$agent_ids_s" 'BEGIN { printf "%.2f", a / b }'), agent msg-id / bare with ids $(awk -v a="$ids_s" -v b="$agent_ids_s" 'BEGIN { printf "%.2f", a / b }')"
echo "agent peak memory (largest of the rounds): $(awk -v k="$agent_rss" 'BEGIN { printf "%.1f MiB", k / 1024 }')  (goal < 32 MiB)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 minutes) at the end"
if [ -n "$FORCED" ]; then echo "$FORCED"; fi
rm -rf "$DIR/state-agent" "$DIR/state-agent-ids" "$DIR/store"
