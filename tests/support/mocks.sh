# Sourced by the test scripts that run `failover mock` upstreams on free loopback ports.
# Needs $cli (the failover tool). Keeps its files in $tmp and stops every mock on exit.
tmp=$(mktemp -d)
pids=()
cleanup_mocks() {
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup_mocks EXIT

# start_mock NAME SCENARIO_FILE: a mock in the background, its start line in $tmp/NAME.out.
start_mock() {
  "$cli" mock --port 0 --seconds 60 --scenario "$2" > "$tmp/$1.out" &
  pids+=($!)
}

# url_of NAME: the mock's base URL, once it listens.
url_of() {
  for _ in $(seq 1 200); do
    if grep -q "listening on" "$tmp/$1.out" 2>/dev/null; then break; fi
    sleep 0.05
  done
  grep -o 'http://127.0.0.1:[0-9]*/v1' "$tmp/$1.out"
}
