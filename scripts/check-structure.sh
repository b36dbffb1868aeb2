#!/usr/bin/env bash
# Checks the layering that docs/architecture.md describes (run by scripts/test.sh):
# - src/engine/ mentions no `buffer::` path: the engine knows no buffer;
# - the files of src/buffer/ import each other without a loop;
# - no file under src/ is over 700 lines, none under src/buffer/ over 450.
#   bash scripts/check-structure.sh
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
problem() { echo "check-structure: $*" >&2; fail=1; }

# 1. The engine is below the buffer.
if grep -rn 'buffer::' src/engine; then
  problem "src/engine/ names a buffer:: path (above); the engine must know no buffer"
fi

# 2. File lengths.
while IFS= read -r f; do
  n=$(wc -l <"$f")
  limit=700
  case "$f" in src/buffer/*) limit=450 ;; esac
  if [ "$n" -gt "$limit" ]; then
    problem "$f has $n lines (at most $limit)"
  fi
done < <(find src -name '*.rs' | sort)

# 3. No import cycle between the files of src/buffer/.
# A file's module path, slash-separated: src/buffer/partition/mod.rs -> buffer/partition.
module_of() {
  local m=${1#src/}
  m=${m%.rs}
  echo "${m%/mod}"
}
# The module file a path (slash-separated, from src/) lands in: its longest
# prefix that is a module of its own.
resolve() {
  local p=$1
  while [ -n "$p" ]; do
    if [ -f "src/$p.rs" ] || [ -f "src/$p/mod.rs" ]; then
      echo "$p"
      return
    fi
    case "$p" in */*) p=${p%/*} ;; *) return ;; esac
  done
}
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
while IFS= read -r f; do
  from=$(module_of "$f")
  # Code only (comment lines out), as one line so that `use` lists that
  # rustfmt wraps over several lines are seen whole.
  code=$(grep -v '^[[:space:]]*//' "$f" | tr '\n' ' ')
  while IFS= read -r ref; do
    [ -n "$ref" ] || continue
    base=$from
    rest=${ref#use } # `use child::X` (in mod.rs) is relative to this module
    case "$rest" in
      crate::buffer::*) base=buffer; rest=${rest#crate::buffer::} ;;
      self::*) rest=${rest#self::} ;;
      super::*)
        # `super` of a/b.rs is a; of a/b/mod.rs (module a/b), a too.
        base=${from%/*}
        rest=${rest#super::}
        while [ "${rest#super::}" != "$rest" ]; do
          base=${base%/*}
          rest=${rest#super::}
        done
        ;;
    esac
    # `{a::X, b}`: one path per element.
    rest=${rest#\{}
    rest=${rest%\}}
    IFS=',' read -ra parts <<<"$rest"
    for part in "${parts[@]}"; do
      part=$(echo "$part" | tr -d ' ')
      part=${part%%::\{*}
      [ -n "$part" ] || continue
      to=$(resolve "$base/${part//:://}")
      [ -z "$to" ] && to=$(resolve "$base")
      if [ -n "$to" ] && [ "$to" != "$from" ]; then
        echo "$from $to" >>"$edges"
      fi
    done
  done < <(echo "$code" | grep -oE '(crate::buffer::|self::|(super::)+|use )(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*)' || true)
done < <(find src/buffer -name '*.rs' | sort)
if ! tsort "$edges" >/dev/null 2>"$edges.err"; then
  cat "$edges.err" >&2
  problem "the files of src/buffer/ import each other in a loop (tsort names it above; edges: importer imported)"
  sort -u "$edges" >&2
fi
rm -f "$edges.err"

if [ "$fail" -ne 0 ]; then
  exit 1
fi
echo "check-structure: engine below buffer, no import loop in src/buffer/, file lengths within limits"
