#!/usr/bin/env bash
# check_exports.sh LIBFAILOVER_SO LIBFAILOVER_INTERNAL_A
# The shared library exports the whole public API and nothing of its internals or of the
# libraries it uses inside. Every function and class member of namespace failover (outside
# detail, wire and policy) that the same sources define, as the static failover_internal holds
# them, is in the dynamic symbol table; no failover::detail, wire or policy, nlohmann or fmt
# symbol is.
set -euo pipefail
exported=$(nm -DC --defined-only "$1" | sed 's/^[0-9a-f]* [A-Za-z] //' | sort -u)
public=$(nm -C --defined-only "$2" 2> /dev/null | grep -E '^[0-9a-f]+ [TVR] ' |
  sed 's/^[0-9a-f]* [A-Za-z] //' |
  grep -E '^(failover::|typeinfo for failover::|vtable for failover::)' |
  grep -vE 'failover::(detail|wire|policy)::|failover::\(anonymous namespace\)' | sort -u)
[ -n "$public" ] || { echo "check_exports: no public symbol found in $2" >&2; exit 1; }
missing=$(comm -23 <(echo "$public") <(echo "$exported"))
if [ -n "$missing" ]; then
  echo "check_exports: not exported although public:" >&2
  echo "$missing" | head -n 20 >&2
  exit 1
fi
leaked=$(grep -E "failover::(detail|wire|policy)::|nlohmann|fmt::" <<< "$exported" || true)
if [ -n "$leaked" ]; then
  echo "check_exports: exported although internal:" >&2
  echo "$leaked" | head -n 20 >&2
  exit 1
fi
echo "$(wc -l <<< "$public") public symbols all exported, of $(wc -l <<< "$exported"); none internal"
