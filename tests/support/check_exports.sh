#!/usr/bin/env bash
# check_exports.sh LIBFAILOVER_SO
# The shared library exports the public API and nothing of its internals or of the libraries it
# uses inside: no failover::detail, failover::wire or failover::policy, no nlohmann, no fmt.
set -euo pipefail
symbols=$(nm -DC --defined-only "$1")
for api in "failover::Client::chat(" "failover::options_from_json(" "typeinfo for failover::Error"; do
  grep -qF "$api" <<< "$symbols" || { echo "check_exports: $api is not exported" >&2; exit 1; }
done
leaked=$(grep -E "failover::(detail|wire|policy)::|nlohmann|fmt::" <<< "$symbols" || true)
if [ -n "$leaked" ]; then
  echo "check_exports: exported although internal:" >&2
  echo "$leaked" | head -n 20 >&2
  exit 1
fi
echo "$(wc -l <<< "$symbols") symbols exported, none internal"
