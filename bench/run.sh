#!/usr/bin/env bash
# bench/run.sh [--quick]: the scenario benchmark, SDK against raw libcurl in the same run.
#
# Installs nginx-light (and its echo module) when missing, starts nginx on 127.0.0.1 with the
# upstreams below, builds the harness in Release, runs every scenario for the SDK and for its
# baseline in rounds, writes bench/out/results.json and prints the table. Stops what it
# started. Loopback only.
#
# B1, B3, B4, B7 and B7L time their two sides in one process, in alternating blocks of 10 calls, so
# that both are timed over the same stretch of the machine's drifting speed. B2 and B6 run
# each side in a process of its own (peak RSS is a process's own), alternately first. Raw
# libcurl posts the SDK's own request, byte for byte (captured from the SDK's transport); B2
# also runs the smallest hand-written request ("minimal"), reported beside its ratio.
#
#   /healthy/v1   200 with a chat completion        /overloaded/v1   503
#   /limited/v1   429 with Retry-After: 1           /slow/v1         200 after 2 s (echo_sleep)
#   /sse/v1       an SSE stream of 100 chunks       /dead/v1         accepts, never answers
# and, for B7 and B7L, a redis-server of its own on the next port.
#
# --quick finishes in a few minutes on 2 cores; the full run takes more rounds and calls.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac

ensure_packages "${FAILOVER_BUILD_PACKAGES[@]}" nginx-light libnginx-mod-http-echo valgrind

build=${FAILOVER_BENCH_BUILD_DIR:-build/bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFAILOVER_BUILD_BENCH=ON \
  -DFAILOVER_BUILD_TESTS=OFF -DFAILOVER_BUILD_EXAMPLES=OFF -DFAILOVER_BUILD_TOOLS=OFF > /dev/null
cmake --build "$build" -j"$(jobs)" --target failover_bench sse_parser_bench > /dev/null
bench="$build/bench/failover_bench"

out=bench/out
mkdir -p "$out"
port=${FAILOVER_BENCH_PORT:-18190}
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "error: 127.0.0.1:$port is in use (set FAILOVER_BENCH_PORT)" >&2
  exit 1
fi

# 1000 streams need more descriptors than the usual soft limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

prefix=$(mktemp -d /tmp/failover-bench-nginx.XXXXXX)
chmod 755 "$prefix"  # nginx workers run as another user and read sse.txt from here
nginx_pid=""
redis_pid=""
stop() {
  if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; fi
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; fi
  nginx -p "$prefix" -c "$prefix/nginx.conf" -s stop 2>/dev/null || true
  rm -rf "$prefix"
}
trap stop EXIT

completion='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4.1","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":13,"completion_tokens":2,"total_tokens":15},"system_fingerprint":"fp_bench"}'
error503='{"error":{"message":"The server is overloaded.","type":"server_error","param":null,"code":null}}'
error429='{"error":{"message":"Rate limit reached.","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
sse=""
for i in $(seq 1 100); do
  sse+="data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok$i \"},\"finish_reason\":null}]}"$'\n\n'
done
sse+='data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4.1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'$'\n\n'
sse+='data: [DONE]'$'\n\n'

printf '%s' "$sse" > "$prefix/sse.txt"
cat > "$prefix/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $prefix/body;
  proxy_temp_path $prefix/proxy;
  fastcgi_temp_path $prefix/fastcgi;
  uwsgi_temp_path $prefix/uwsgi;
  scgi_temp_path $prefix/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$port backlog=4096;
    location = /healthy/v1/chat/completions { default_type application/json; return 200 '$completion'; }
    location = /overloaded/v1/chat/completions { default_type application/json; return 503 '$error503'; }
    location = /limited/v1/chat/completions {
      default_type application/json; add_header Retry-After 1 always; return 429 '$error429';
    }
    location = /slow/v1/chat/completions { default_type application/json; echo_sleep 2; echo '$completion'; }
    location = /dead/v1/chat/completions { echo_sleep 3600; echo 'never'; }
    # Static files refuse POST, and a return string is limited to 4 KiB: fetch it by subrequest.
    location = /sse/v1/chat/completions { default_type text/event-stream; echo_subrequest GET /sse-body; }
    location = /sse-body { internal; default_type text/event-stream; alias $prefix/sse.txt; }
  }
}
CONF
nginx -p "$prefix" -c "$prefix/nginx.conf" &
nginx_pid=$!
wait_for_ports "$port"
if ! kill -0 "$nginx_pid" 2>/dev/null; then
  echo "error: nginx did not start" >&2
  cat "$prefix/error.log" >&2 || true
  exit 1
fi
base="http://127.0.0.1:$port"

# B7's and B7L's Redis: our own redis-server on the next port, nothing saved to disk.
redis_port=$((port + 1))
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --loglevel warning --daemonize no > "$prefix/redis.log" 2>&1 &
redis_pid=$!
wait_for_ports "$redis_port"
redis="redis://127.0.0.1:$redis_port/0"

# B2 runs 100 000 calls per side even in --quick: the first ~30 ms of a run set up the 256
# connections (the SDK's first answer arrives 9-15 ms after raw libcurl's), and at 20 000 calls
# that start-up weighed 2-4 % of the run, more than B2's steady state differs by.
if [ "$quick" = 1 ]; then
  rounds=5; seq_calls=5000; conc_calls=100000; slow_calls=60; streams=1000
else
  rounds=7; seq_calls=20000; conc_calls=100000; slow_calls=200; streams=1000
fi

samples="$out/samples.jsonl"
: > "$samples"
measure() {  # measure SCENARIO SIDE ARGS...
  "$bench" run "$1" "$2" --base "$base" "${@:3}" >> "$samples"
}
for round in $(seq 1 "$rounds"); do
  echo "==> round $round of $rounds"
  # Alternate which side goes first so drift in the machine hits both alike.
  if [ $((round % 2)) = 1 ]; then sides=(sdk baseline); else sides=(baseline sdk); fi
  measure B1 paired --calls "$seq_calls" --block 10
  for side in "${sides[@]}" minimal; do measure B2 "$side" --calls "$conc_calls" --concurrency 256; done
  measure B3 paired --calls "$seq_calls" --block 10
  measure B4 paired --calls "$seq_calls" --block 10
  measure B7 paired --calls "$seq_calls" --block 10 --redis "$redis"
  measure B7L paired --calls "$seq_calls" --block 10 --redis "$redis"
  for side in "${sides[@]}"; do measure B6 "$side" --streams "$streams"; done
done
echo "==> B5 (hedging against a 2 s route): $slow_calls calls"
measure B5 sdk --calls "$slow_calls"

echo "==> callgrind: instructions per B1 call"
collected() {  # collected SIDE CALLS: instructions of a whole run under callgrind
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bench" run B1 "$1" --base "$base" \
    --calls "$2" 2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
ir_per_call() {  # the difference of two run lengths cancels start-up and warm-up
  local short long
  short=$(collected "$1" 100)
  long=$(collected "$1" 1100)
  echo $(( (long - short) / 1000 ))
}
ir_sdk=$(ir_per_call sdk)
ir_raw=$(ir_per_call baseline)

echo "==> SSE parser (Google Benchmark, 1 MB stream)"
gbps=$("$build/bench/sse_parser_bench" --benchmark_filter='BM_SseLargeReads' \
  --benchmark_format=json 2>/dev/null |
  sed -n 's/.*"bytes_per_second": \([0-9.e+]*\).*/\1/p' | head -1 | awk '{printf "%.3f", $1 / 1e9}')

cat > "$out/extra.json" <<JSON
{"callgrind": {"sdk": $ir_sdk, "baseline": $ir_raw},
 "sse_parser_gbps": $gbps}
JSON
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
machine="$(nproc) cores, $cpu, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr)"
echo
status=0
"$bench" report "$samples" "$out/results.json" --machine "$machine" --extra "$out/extra.json" ||
  status=$?
echo
echo "callgrind instructions per call: sdk $ir_sdk, raw libcurl $ir_raw"
echo "SSE parser: $gbps GB/s"
echo "results: $out/results.json"
exit "$status"
