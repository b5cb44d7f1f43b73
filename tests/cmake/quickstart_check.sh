#!/usr/bin/env bash
# quickstart_check.sh APP DEMO_UPSTREAMS
# Runs the quick-start program against 127.0.0.1:18082 (503) and 127.0.0.1:18081 (healthy)
# and checks it prints the backup's answer after two attempts.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
app=$1
upstreams=$2
"$upstreams" --seconds 60 > /dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
wait_for_ports 18081 18082
out=$("$app")
echo "$out"
[ "$out" = "pong via backup after 2 attempts" ]
