#!/usr/bin/env bash
# Footprint of spillway in a C program, per cargo profile:
#   - the size of a stripped minimal C program (benches/c/minimal.c) linked
#     with the static library, against the same program without spillway,
#     plain and with -Wl,--gc-sections; and the stripped shared library;
#   - the resident memory of a buffer at rest (benches/c/rss.c).
#   bash benches/c/footprint.sh [PROFILE ...]     (default: release release-small)
set -euo pipefail
cd "$(dirname "$0")/../.."
profiles=("$@")
[ ${#profiles[@]} -gt 0 ] || profiles=(release release-small)
out=target/footprint
mkdir -p "$out"
size() { stat -c %s "$1"; }
kib() { awk -v b="$1" 'BEGIN { printf "%.0f KiB", b / 1024 }'; }

cc -O2 -DWITHOUT_SPILLWAY -o "$out/minimal.none" benches/c/minimal.c
strip "$out/minimal.none"
none=$(size "$out/minimal.none")
echo "minimal.c without spillway, stripped: $none bytes"

for p in "${profiles[@]}"; do
  cargo build --quiet --profile "$p" -p spillway --lib
  lib=target/$p
  cc -O2 -Iinclude -o "$out/minimal.$p" benches/c/minimal.c "$lib/libspillway.a" -lpthread -ldl -lm
  cc -O2 -Iinclude -Wl,--gc-sections -o "$out/minimal.gc.$p" benches/c/minimal.c "$lib/libspillway.a" -lpthread -ldl -lm
  strip "$out/minimal.$p" "$out/minimal.gc.$p"
  strip -o "$out/libspillway.so.$p" "$lib/libspillway.so"
  "$out/minimal.$p" >/dev/null
  a=$(size "$out/minimal.$p")
  g=$(size "$out/minimal.gc.$p")
  echo "profile $p:"
  echo "  minimal.c + libspillway.a, stripped:                 $a bytes (+$(kib $((a - none))))"
  echo "  minimal.c + libspillway.a, --gc-sections, stripped:  $g bytes (+$(kib $((g - none))))"
  echo "  libspillway.so, stripped:                            $(size "$out/libspillway.so.$p") bytes"
  cc -O2 -Iinclude -o "$out/rss.$p" benches/c/rss.c "$lib/libspillway.a" -lpthread -ldl -lm
  for w in 1 2; do echo "  $("$out/rss.$p" "$w")"; done
done
