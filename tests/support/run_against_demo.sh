#!/usr/bin/env bash
# run_against_demo.sh EXPECTED FAILOVER_CLI COMMAND [ARGS...]
# Starts two `failover mock` upstreams from examples/mock on free loopback ports: "primary"
# answers 503 (DEMO_SCENARIO_PRIMARY names another scenario for it), "backup" answers "Hello",
# streamed as "Hel" + "lo" when asked. Runs COMMAND with {primary} and {backup} in ARGS replaced
# by their base URLs, and checks that its standard output is exactly EXPECTED.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
expected=$1
cli=$2
shift 2
source "$here/mocks.sh"
start_mock primary "${DEMO_SCENARIO_PRIMARY:-$here/../../examples/mock/overloaded.json}"
start_mock backup "$here/../../examples/mock/healthy.json"
primary=$(url_of primary)
backup=$(url_of backup)
command=()
for arg in "$@"; do
  arg=${arg//\{primary\}/$primary}
  command+=("${arg//\{backup\}/$backup}")
done
out=$("${command[@]}")
echo "$out"
if [ "$out" != "$expected" ]; then
  echo "expected: $expected" >&2
  exit 1
fi
