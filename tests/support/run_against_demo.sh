#!/usr/bin/env bash
# run_against_demo.sh EXPECTED FAILOVER_CLI COMMAND [ARGS...]
# Starts two `failover mock` upstreams from examples/mock (127.0.0.1:18082 answers 503,
# 127.0.0.1:18081 answers "Hello", streamed as "Hel" + "lo" when asked), runs COMMAND and
# checks that its standard output is exactly EXPECTED. DEMO_SCENARIO_18082 names another
# scenario for 127.0.0.1:18082.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../scripts/lib.sh"
expected=$1
cli=$2
shift 2
scenario_18082=${DEMO_SCENARIO_18082:-$here/../../examples/mock/overloaded.json}
"$cli" mock --port 18082 --scenario "$scenario_18082" --seconds 60 > /dev/null &
a=$!
"$cli" mock --port 18081 --scenario "$here/../../examples/mock/healthy.json" --seconds 60 > /dev/null &
b=$!
trap 'kill $a $b 2>/dev/null; wait $a $b 2>/dev/null || true' EXIT
wait_for_ports 18081 18082
out=$("$@")
echo "$out"
if [ "$out" != "$expected" ]; then
  echo "expected: $expected" >&2
  exit 1
fi
