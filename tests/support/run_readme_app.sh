#!/usr/bin/env bash
# run_readme_app.sh FAILOVER_CLI APP
# Runs the README's application (APP) on a configuration with "stream_recovery": "restart"
# whose first route cuts the stream after three words and whose second answers whole, both
# `failover mock` on free loopback ports. The answer must be printed once, whole, after the
# README's restart notice, followed by the route that served it.
set -euo pipefail
cli=$1
app=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/mocks.sh"
answer="The quick brown fox jumps over the lazy dog"
scenario() {  # NAME JSON: a scenario file
  echo "$2" > "$tmp/$1.json"
  echo "$tmp/$1.json"
}
start_mock cut "$(scenario cut "{\"reply\": \"$answer\", \"stream\": {\"cut_after\": 3, \"interval_ms\": 1}}")"
start_mock whole "$(scenario whole "{\"reply\": \"$answer\", \"stream\": {\"interval_ms\": 1}}")"
cut=$(url_of cut)
whole=$(url_of whole)
cat > "$tmp/failover.json" <<JSON
{
  "endpoints": [
    {"name": "primary", "base_url": "$cut", "api_key": "sk-primary"},
    {"name": "fallback", "base_url": "$whole", "api_key": "sk-fallback"}
  ],
  "priority": [{"model": "gpt-4.1", "routes": ["primary", "fallback"]}],
  "stream_recovery": "restart"
}
JSON
out=$("$app" "$tmp/failover.json")
expected="The quick brown 
[the stream broke; the answer starts again]
$answer
(fallback, 2 attempts)"
echo "$out"
if [ "$out" != "$expected" ]; then
  printf 'expected:\n%s\n' "$expected" >&2
  exit 1
fi
