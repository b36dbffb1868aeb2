#!/usr/bin/env bash
# Checks that include/spillway.h documents every declaration: each function,
# type, enum value, struct field and SPW_ constant is preceded by a comment.
# (The comments are the doc comments of src/ffi/*.rs, copied by cbindgen.)
#   bash ffi-tests/header_docs.sh [include/spillway.h]
set -euo pipefail
cd "$(dirname "$0")/.."
header=${1:-include/spillway.h}

awk '
  # Inside a comment block: skip it, and remember where it ended.
  in_comment { if ($0 ~ /\*\//) { in_comment = 0; documented = 1 } next }
  /^[ \t]*\/\*/ { if ($0 !~ /\*\//) in_comment = 1; else documented = 1; next }
  /^[ \t]*$/ { next }
  # The continuation of a declaration that spans lines.
  depth > 0 { depth += gsub(/\(/, "(") - gsub(/\)/, ")"); next }
  # Scaffolding that is not part of the API.
  /^#(ifndef|ifdef|endif|include)/ || /^#define SPILLWAY_H/ || /^extern "C"/ || /^}/ {
    documented = 0; next
  }
  {
    if (!documented) { printf "%s:%d: undocumented: %s\n", FILENAME, NR, $0; bad++ }
    documented = 0
    depth = gsub(/\(/, "(") - gsub(/\)/, ")")
    checked++
  }
  END {
    if (bad) { printf "%d undocumented declarations in %s\n", bad, FILENAME; exit 1 }
    printf "%s: all %d declarations documented\n", FILENAME, checked
  }
' "$header"
