#!/usr/bin/env bash
# Installs spillway with scripts/install.sh and uses the installed copy the way
# a C or C++ team would, with nothing but pkg-config and CMake:
#   - the layout: soname and links, and a shared library that exports exactly
#     the functions spillway.h declares (all spw_, nothing of Rust's);
#   - a C and a C++ program built with `pkg-config --cflags --libs` (shared)
#     and with `--static` (from a --no-shared install), then run;
#   - ffi-tests/cmake, a CMake project that finds it with pkg_check_modules
#     (shared, and static from the --no-shared install);
#   - the examples of docs/c-and-cpp.md are those programs, and its CMake file builds;
#   - examples/c/ship_lines, run twice on a small input, with a checkpoint.
#   bash ffi-tests/installed.sh ci        (the cargo profile to install)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:?usage: ffi-tests/installed.sh CARGO_PROFILE}
root=$(pwd -P)/target/ffi-install
rm -rf "$root"
mkdir -p "$root"
both=$root/both        # static and shared library
static=$root/static    # static library only: what -lspillway finds is the archive

fail() { echo "FAIL $*" >&2; exit 1; }
ok() { echo "ok   $*"; }

bash scripts/install.sh --profile "$profile" "$both" >/dev/null
bash scripts/install.sh --profile "$profile" --no-shared "$static" >/dev/null

# ---- layout ----
lib=$both/lib
[ "$(readlink "$lib/libspillway.so")" = libspillway.so.0 ] || fail "libspillway.so -> libspillway.so.0"
[[ "$(readlink "$lib/libspillway.so.0")" == libspillway.so.0.*.* ]] || fail "libspillway.so.0 -> libspillway.so.0.x.y"
soname=$(readelf -d "$lib/libspillway.so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ "$soname" = libspillway.so.0 ] || fail "soname is '$soname', expected libspillway.so.0"
[ ! -e "$static/lib/libspillway.so" ] || fail "--no-shared installed a shared library"
for f in include/spillway.h include/spillway.hpp lib/libspillway.a lib/pkgconfig/spillway.pc; do
  [ -f "$both/$f" ] && [ -f "$static/$f" ] || fail "missing $f"
done
ok "layout: headers, libspillway.a, $soname -> $(readlink "$lib/libspillway.so.0"), spillway.pc"

# ---- symbol hygiene ----
# The functions spillway.h declares (comments stripped), and what the shared
# library exports: the two lists must be the same.
declared=$(awk '/\/\*/{c=1} !c{print} /\*\//{c=0}' include/spillway.h |
           grep -oE '\bspw_[a-z0-9_]+\(' | tr -d '(' | sort -u)
exported=$(nm -D --defined-only "$lib/libspillway.so" | awk '{print $NF}' | sort -u)
if [ "$declared" != "$exported" ]; then
  diff <(echo "$declared") <(echo "$exported") | sed 's/^</  declared only:/; s/^>/  exported only:/' >&2
  fail "the shared library's dynamic symbols differ from spillway.h's functions"
fi
ok "symbols: the shared library exports exactly the $(echo "$exported" | wc -l) spw_ functions of spillway.h"

bash ffi-tests/header_docs.sh "$both/include/spillway.h" >/dev/null || fail "header docs"
ok "header: every declaration of spillway.h documented"

if ! command -v pkg-config >/dev/null 2>&1; then
  echo "skip pkg-config, CMake, docs and examples/c: pkg-config not installed (.ci/run installs it)"
  exit 0
fi

# ---- pkg-config: shared, then static ----
out=$root/bin
mkdir -p "$out"
CWARN=(-Wall -Wextra -Werror -pedantic -O1)

# pc PREFIX ARGS...: pkg-config run against one prefix only.
pc() { local p=$1; shift; PKG_CONFIG_PATH=$p/lib/pkgconfig PKG_CONFIG_LIBDIR=$p/lib/pkgconfig pkg-config "$@"; }

for kind in shared static; do
  if [ "$kind" = shared ]; then prefix=$both; flags=(--cflags --libs); else prefix=$static; flags=(--cflags --libs --static); fi
  read -ra pcflags <<<"$(pc "$prefix" "${flags[@]}" spillway)"
  cc -std=c11 "${CWARN[@]}" -o "$out/readme_example.$kind" ffi-tests/readme_example.c "${pcflags[@]}"
  c++ -std=c++17 "${CWARN[@]}" -o "$out/spillway_hpp.$kind" ffi-tests/spillway_hpp.cpp "${pcflags[@]}"
  for exe in "$out/readme_example.$kind" "$out/spillway_hpp.$kind"; do
    needed=$(readelf -d "$exe" | sed -n 's/.*Shared library: \[\(.*\)\].*/\1/p' | tr '\n' ' ')
    if [ "$kind" = shared ]; then
      [[ " $needed" == *" libspillway.so.0 "* ]] || fail "$exe does not need libspillway.so.0 (needs: $needed)"
    else
      [[ " $needed" != *libspillway* ]] || fail "$exe needs the shared library (needs: $needed)"
    fi
    LD_LIBRARY_PATH=$prefix/lib "$exe" >"$exe.log" 2>&1 || { cat "$exe.log" >&2; fail "$exe"; }
  done
  ok "pkg-config ${flags[*]}: C and C++ programs built, linked $kind, run"
done

# ---- CMake ----
if command -v cmake >/dev/null 2>&1; then
  for kind in shared static; do
    if [ "$kind" = shared ]; then prefix=$both; else prefix=$static; fi
    build=$root/cmake-$kind
    cmake -S ffi-tests/cmake -B "$build" -DCMAKE_PREFIX_PATH="$prefix" >"$root/cmake.log" 2>&1 &&
      cmake --build "$build" >>"$root/cmake.log" 2>&1 || { cat "$root/cmake.log" >&2; fail "cmake ($kind)"; }
    needed=$(readelf -d "$build/words" | sed -n 's/.*Shared library: \[\(.*\)\].*/\1/p' | tr '\n' ' ')
    if [ "$kind" = shared ]; then
      [[ " $needed" == *" libspillway.so.0 "* ]] || fail "cmake: words does not need libspillway.so.0"
    else
      [[ " $needed" != *libspillway* ]] || fail "cmake: words needs the shared library"
    fi
    # CMake links the imported library by path and records its directory as
    # the run path: the programs run without LD_LIBRARY_PATH.
    "$build/words" >/dev/null && "$build/words_c" >/dev/null || fail "the CMake-built programs ($kind)"
  done
  ok "cmake: pkg_check_modules(spillway), C and C++ programs built (shared, and static from a --no-shared install) and run"
else
  echo "skip cmake: not installed (.ci/run installs it)"
fi

# ---- docs/c-and-cpp.md ----
# Its C and C++ programs are the ones built above; its CMake file builds.
block() { awk -v lang="$1" '$0 == "```" lang {on=1; next} /^```$/ {on=0} on' docs/c-and-cpp.md; }
block c | cmp -s - ffi-tests/cmake/main.c || fail "docs/c-and-cpp.md: the C program is not ffi-tests/cmake/main.c"
block cpp | cmp -s - ffi-tests/cmake/main.cpp || fail "docs/c-and-cpp.md: the C++ program is not ffi-tests/cmake/main.cpp"
if command -v cmake >/dev/null 2>&1; then
  mkdir -p "$root/doc-cmake"
  block cmake >"$root/doc-cmake/CMakeLists.txt"
  cp ffi-tests/cmake/main.cpp "$root/doc-cmake/"
  cmake -S "$root/doc-cmake" -B "$root/doc-cmake/build" -DCMAKE_PREFIX_PATH="$both" >"$root/cmake.log" 2>&1 &&
    cmake --build "$root/doc-cmake/build" >>"$root/cmake.log" 2>&1 && "$root/doc-cmake/build/words" >/dev/null ||
    { cat "$root/cmake.log" >&2; fail "docs/c-and-cpp.md: the CMake example"; }
fi
ok "docs/c-and-cpp.md: its C and C++ programs are the tested ones, its CMake file builds"

# ---- examples/c ----
read -ra pcflags <<<"$(pc "$static" --cflags --libs --static spillway)"
ship=$out/ship_lines
cc -std=c11 "${CWARN[@]}" -o "$ship" examples/c/ship_lines.c "${pcflags[@]}"
seq 1 25 | sed 's/^/line /' >"$root/input"
"$ship" -n 10 <"$root/input" >"$root/shipped" 2>"$root/ship.log" || { cat "$root/ship.log" >&2; fail "ship_lines"; }
cmp -s "$root/input" "$root/shipped" || fail "ship_lines did not ship its input unchanged"
[ "$(grep -c '^batch: ' "$root/ship.log")" = 3 ] || { cat "$root/ship.log" >&2; fail "ship_lines: expected batches of 10, 10, 5"; }
# A second run over the grown input ships only the new lines.
cp "$root/input" "$root/input2"
seq 26 30 | sed 's/^/line /' >>"$root/input2"
"$ship" -n 10 -c "$root/checkpoint" <"$root/input" >/dev/null 2>>"$root/ship.log"
"$ship" -n 10 -c "$root/checkpoint" <"$root/input2" >"$root/shipped2" 2>>"$root/ship.log"
seq 26 30 | sed 's/^/line /' | cmp -s - "$root/shipped2" ||
  { cat "$root/ship.log" >&2; fail "ship_lines -c: the second run should ship lines 26..30 only"; }
ok "examples/c/ship_lines: 25 lines in 3 batches; with a checkpoint, a rerun ships only the new lines"
