#!/usr/bin/env bash
# run_against_demo.sh EXPECTED DEMO_UPSTREAMS COMMAND [ARGS...]
# Starts the demo upstreams (127.0.0.1:18082 answers 503, 127.0.0.1:18081 answers, streaming
# when asked), runs COMMAND and checks that its standard output is exactly EXPECTED.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
expected=$1
upstreams=$2
shift 2
"$upstreams" --seconds 60 > /dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
wait_for_ports 18081 18082
out=$("$@")
echo "$out"
if [ "$out" != "$expected" ]; then
  echo "expected: $expected" >&2
  exit 1
fi
