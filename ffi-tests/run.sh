#!/usr/bin/env bash
# Builds every C program in ffi-tests/ against include/spillway.h and the static
# library, and runs it; under valgrind (leaks and errors are failures) when installed.
#   bash ffi-tests/run.sh target/ci
set -euo pipefail
cd "$(dirname "$0")/.."
libdir=${1:?usage: ffi-tests/run.sh TARGET_PROFILE_DIR}
lib="$libdir/libspillway.a"
[ -f "$lib" ] || { echo "missing $lib: build the library first" >&2; exit 1; }
out=target/ffi-tests
mkdir -p "$out"

CFLAGS=(-std=c11 -Wall -Wextra -Werror -pedantic -g -O1 -Iinclude -Iffi-tests)
LIBS=("$lib" -lpthread -ldl -lm)

runner=()
if command -v valgrind >/dev/null 2>&1; then
  runner=(valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect
          --suppressions=ffi-tests/valgrind.supp)
fi

shopt -s nullglob
sources=(ffi-tests/*.c)
[ ${#sources[@]} -gt 0 ] || { echo "no C programs in ffi-tests/" >&2; exit 1; }
passed=0
failed=0
for src in "${sources[@]}"; do
  name=$(basename "$src" .c)
  cc "${CFLAGS[@]}" -o "$out/$name" "$src" "${LIBS[@]}"
  if "${runner[@]}" "$out/$name"; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
done
echo "ffi-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
