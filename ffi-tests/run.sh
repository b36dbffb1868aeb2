#!/usr/bin/env bash
# Builds every C program (ffi-tests/*.c) and C++ program (ffi-tests/*.cpp)
# against include/ and the static library, and runs each twice:
#   - plain, under valgrind when installed (leaks and errors are failures);
#   - built with -fsanitize=address,undefined (leaks, memory errors and
#     undefined behaviour are failures).
#   bash ffi-tests/run.sh target/ci
# SPILLWAY_FFI_PASSES="valgrind" (or "sanitize") runs one pass only.
# SPILLWAY_FFI_TESTS="engine events" runs only the programs named so.
set -euo pipefail
cd "$(dirname "$0")/.."
libdir=${1:?usage: ffi-tests/run.sh TARGET_PROFILE_DIR}
lib="$libdir/libspillway.a"
[ -f "$lib" ] || { echo "missing $lib: build the library first" >&2; exit 1; }
out=target/ffi-tests
mkdir -p "$out"

WARN=(-Wall -Wextra -Werror -pedantic -g -O1 -Iinclude -Iffi-tests)
CFLAGS=(-std=c11 "${WARN[@]}")
CXXFLAGS=(-std=c++17 "${WARN[@]}")
LIBS=("$lib" -lpthread -ldl -lm)
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)

valgrind=()
if command -v valgrind >/dev/null 2>&1; then
  valgrind=(valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect
            --suppressions=ffi-tests/valgrind.supp)
fi
# allocator_may_return_null: spsc.c asks for rings larger than any address
# space and expects SPW_ERR_INVALID, not ASan's abort.
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

shopt -s nullglob
sources=(ffi-tests/*.c ffi-tests/*.cpp)
if [ -n "${SPILLWAY_FFI_TESTS:-}" ]; then
  picked=()
  for want in $SPILLWAY_FFI_TESTS; do
    for src in "${sources[@]}"; do
      name=$(basename "$src"); [ "${name%.*}" = "$want" ] && picked+=("$src")
    done
  done
  sources=("${picked[@]}")
fi
[ ${#sources[@]} -gt 0 ] || { echo "no programs in ffi-tests/" >&2; exit 1; }
passes=(${SPILLWAY_FFI_PASSES:-valgrind sanitize})
passed=0
failed=0

# build PASS SRC EXE: compiles one program for one pass.
build() {
  local pass=$1 src=$2 exe=$3 extra=()
  [ "$pass" = sanitize ] && extra=("${SAN[@]}")
  case "$src" in
    *.cpp) c++ "${CXXFLAGS[@]}" "${extra[@]}" -o "$exe" "$src" "${LIBS[@]}" ;;
    *) cc "${CFLAGS[@]}" "${extra[@]}" -o "$exe" "$src" "${LIBS[@]}" ;;
  esac
}

for pass in "${passes[@]}"; do
  case "$pass" in
    valgrind) runner=("${valgrind[@]}"); label=${valgrind:+valgrind}; label=${label:-plain} ;;
    sanitize) runner=(); label=asan+ubsan ;;
    *) echo "unknown pass $pass" >&2; exit 2 ;;
  esac
  for src in "${sources[@]}"; do
    name=$(basename "$src"); name=${name%.*}
    exe="$out/$name.$pass"
    build "$pass" "$src" "$exe"
    if "${runner[@]}" "$exe" >"$exe.log" 2>&1; then
      echo "ok   $name ($label)"
      passed=$((passed + 1))
    else
      echo "FAIL $name ($label); its output:"
      sed 's/^/     /' "$exe.log"
      failed=$((failed + 1))
    fi
  done
done
echo "ffi-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
