#!/usr/bin/env bash
# quickstart_check.sh APP DEMO_UPSTREAMS
# Runs the quick-start program against 127.0.0.1:18082 (503) and 127.0.0.1:18081 (healthy)
# and checks it prints the backup's answer after two attempts.
set -euo pipefail
app=$1
upstreams=$2
"$upstreams" --seconds 60 > /dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/18081) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/18082) 2>/dev/null && break
  sleep 0.05
done
out=$("$app")
echo "$out"
[ "$out" = "pong via backup after 2 attempts" ]
