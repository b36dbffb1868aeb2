#!/usr/bin/env bash
# Installs spillway with scripts/install.sh and uses the installed copy the way
# a C or C++ team would, with nothing but pkg-config and CMake:
#   - the layout: soname and links, and a shared library that exports exactly
#     the functions spillway.h declares (all spw_, nothing of Rust's);
#   - a C and a C++ program built with `pkg-config --cflags --libs` (shared)
#     and with `--static` (from a --no-shared install), then run;
#   - ffi-tests/cmake_package, a CMake project that finds it with
#     find_package(spillway 0.2) and no pkg-config: spillway::spillway shared,
#     static (by component and by SPILLWAY_STATIC), static from the --no-shared
#     install; and which versions and components the package accepts;
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
# linked WHAT EXE KIND: EXE needs the shared library (KIND shared), or no
# spillway library at all (static).
linked() {
  local needed
  needed=$(readelf -d "$2" | sed -n 's/.*Shared library: \[\(.*\)\].*/\1/p' | tr '\n' ' ')
  if [ "$3" = shared ]; then
    [[ " $needed" == *" libspillway.so.1 "* ]] || fail "$1: $2 does not need libspillway.so.1 (needs: $needed)"
  else
    [[ " $needed" != *libspillway* ]] || fail "$1: $2 needs the shared library (needs: $needed)"
  fi
}

version=$(cargo pkgid -p spillway | sed 's/.*[#@]//')
bash scripts/install.sh --profile "$profile" "$both" >/dev/null
bash scripts/install.sh --profile "$profile" --no-shared "$static" >/dev/null

# ---- layout ----
lib=$both/lib
[ "$(readlink "$lib/libspillway.so")" = libspillway.so.1 ] || fail "libspillway.so -> libspillway.so.1"
[ "$(readlink "$lib/libspillway.so.1")" = "libspillway.so.$version" ] || fail "libspillway.so.1 -> libspillway.so.$version"
soname=$(readelf -d "$lib/libspillway.so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ "$soname" = libspillway.so.1 ] || fail "soname is '$soname', expected libspillway.so.1"
[ ! -e "$static/lib/libspillway.so" ] || fail "--no-shared installed a shared library"
for f in include/spillway.h include/spillway.hpp lib/libspillway.a lib/pkgconfig/spillway.pc \
         lib/cmake/spillway/spillwayConfig.cmake lib/cmake/spillway/spillwayConfigVersion.cmake; do
  [ -f "$both/$f" ] && [ -f "$static/$f" ] || fail "missing $f"
done
ok "layout: headers, libspillway.a, $soname -> $(readlink "$lib/libspillway.so.1"), spillway.pc, lib/cmake/spillway"

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

# ---- CMake package (no pkg-config) ----
if command -v cmake >/dev/null 2>&1; then
  # cmake_user NAME PREFIX ARGS...: configures and builds ffi-tests/cmake_package
  # against PREFIX alone, with pkg-config out of reach.
  cmake_user() {
    local name=$1 prefix=$2; shift 2
    local build=$root/pkg-$name
    PKG_CONFIG=/nonexistent cmake -S ffi-tests/cmake_package -B "$build" \
      -DCMAKE_PREFIX_PATH="$prefix" "$@" >"$root/cmake-pkg.log" 2>&1 &&
      cmake --build "$build" >>"$root/cmake-pkg.log" 2>&1 || { cat "$root/cmake-pkg.log" >&2; fail "cmake package ($name)"; }
  }
  # expect NAME KIND: the build of NAME used the KIND library, and runs.
  expect() {
    local build=$root/pkg-$1 kind=$2 exe
    [ "$(cat "$build/spillway-kind.txt")" = "$version $kind" ] ||
      fail "cmake package ($1): found '$(cat "$build/spillway-kind.txt")', expected '$version $kind'"
    for exe in "$build/words" "$build/words_c"; do
      linked "cmake package ($1)" "$exe" "$kind"
      # Linked by path, with the directory as run path: no LD_LIBRARY_PATH.
      "$exe" >/dev/null || fail "cmake package ($1): $exe did not run"
    done
  }
  cmake_user default "$both";                        expect default shared
  cmake_user static "$both" -DKIND=static;           expect static static
  cmake_user static-var "$both" -DSPILLWAY_STATIC=ON; expect static-var static
  cmake_user shared "$both" -DKIND=shared;           expect shared shared
  cmake_user no-shared "$static";                    expect no-shared static
  ok "cmake package: find_package(spillway 0.2) without pkg-config; spillway::spillway shared by default, static by COMPONENTS static or SPILLWAY_STATIC, static from a --no-shared install; C and C++ programs built and run"

  # probe PREFIX WANT [KIND]: whether find_package(spillway WANT [COMPONENTS KIND]) succeeds.
  probe() {
    local prefix=$1 want=$2 kind=${3:-}
    rm -rf "$root/probe"
    PKG_CONFIG=/nonexistent cmake -S ffi-tests/cmake_package/version_probe -B "$root/probe" \
      -DCMAKE_PREFIX_PATH="$prefix" -DWANT="$want" -DKIND="$kind" >"$root/probe.log" 2>&1
  }
  major=${version%%.*} minor=$(echo "$version" | cut -d. -f2) patch=$(echo "$version" | cut -d. -f3)
  for want in "$major.$minor" "$version" "$major" "$major.$minor...$major.$((minor + 1))"; do
    probe "$both" "$want" || { cat "$root/probe.log" >&2; fail "cmake package: find_package(spillway $want) refused $version"; }
  done
  # While the major number is 0, another minor version is another API.
  refused=("$major.$((minor + 1))" "$major.$minor.$((patch + 1))" "$((major + 1)).0"
           "$major.$((minor + 1))...$major.$((minor + 3))")
  [ "$minor" = 0 ] || refused+=("$major.$((minor - 1))")
  for want in "${refused[@]}"; do
    if probe "$both" "$want"; then fail "cmake package: find_package(spillway $want) accepted $version"; fi
    grep -q "spillwayConfig.cmake, version: $version" "$root/probe.log" ||
      { cat "$root/probe.log" >&2; fail "cmake package: find_package(spillway $want) failed for another reason"; }
  done
  probe "$static" "$major.$minor" shared && fail "cmake package: COMPONENTS shared found in a --no-shared install"
  grep -q "the shared spillway library is not installed" "$root/probe.log" ||
    { cat "$root/probe.log" >&2; fail "cmake package: COMPONENTS shared without it: wrong message"; }
  probe "$both" "$major.$minor" dynamic && fail "cmake package: an unknown component was accepted"
  grep -q "spillway has no component 'dynamic'" "$root/probe.log" ||
    { cat "$root/probe.log" >&2; fail "cmake package: an unknown component: wrong message"; }
  ok "cmake package: $version meets find_package $major.$minor, $version, $major and a range holding it; refuses ${refused[*]}; names a missing or unknown component"
else
  echo "skip cmake package: cmake not installed (.ci/run installs it)"
fi

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
    linked pkg-config "$exe" "$kind"
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
    linked cmake "$build/words" "$kind"
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
  # The find_package file (```cmake) and the pkg-config one (```cmake pkg-config).
  for way in "cmake" "cmake pkg-config"; do
    doc=$root/doc-${way// /-}
    mkdir -p "$doc"
    block "$way" >"$doc/CMakeLists.txt"
    [ -s "$doc/CMakeLists.txt" ] || fail "docs/c-and-cpp.md: no \`\`\`$way block"
    cp ffi-tests/cmake/main.cpp "$doc/"
    cmake -S "$doc" -B "$doc/build" -DCMAKE_PREFIX_PATH="$both" >"$root/cmake.log" 2>&1 &&
      cmake --build "$doc/build" >>"$root/cmake.log" 2>&1 && "$doc/build/words" >/dev/null ||
      { cat "$root/cmake.log" >&2; fail "docs/c-and-cpp.md: the CMake example ($way)"; }
  done
fi
ok "docs/c-and-cpp.md: its C and C++ programs are the tested ones, its two CMake files build"

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
