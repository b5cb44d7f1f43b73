#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, starts five local mock
# providers and shows failover at work. Loopback only; nothing leaves this machine.
#
#   127.0.0.1:18082  primary    answers 503 (overloaded)
#   127.0.0.1:18083  secondary  answers 429 with Retry-After: 30
#   127.0.0.1:18081  healthy    answers "Hello" (streamed as "Hel" + "lo")
#   127.0.0.1:18084  anthropic  speaks Anthropic's native Messages API
#   127.0.0.1:18085  google     speaks Google's native Gemini API
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages "${FAILOVER_BUILD_PACKAGES[@]}"

build=${FAILOVER_BUILD_DIR:-build/demo}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFAILOVER_BUILD_TESTS=OFF \
  -DFAILOVER_BUILD_BENCH=OFF -DFAILOVER_BUILD_EXAMPLES=ON -DFAILOVER_BUILD_TOOLS=ON > /dev/null
cmake --build "$build" -j"$(jobs)" --target failover_cli quickstart streaming_chat trace \
  shadow_compare canary_rollout

cli="$build/tools/failover/failover"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null || true' EXIT
"$cli" mock --port 18082 --scenario examples/mock/overloaded.json --seconds 120 > /dev/null &
pids+=($!)
"$cli" mock --port 18083 --scenario examples/mock/rate_limited.json --seconds 120 > /dev/null &
pids+=($!)
"$cli" mock --port 18081 --scenario examples/mock/healthy.json --seconds 120 > /dev/null &
pids+=($!)
"$cli" mock --port 18084 --scenario examples/mock/anthropic.json --seconds 120 > /dev/null &
pids+=($!)
"$cli" mock --port 18085 --scenario examples/mock/gemini.json --seconds 120 > /dev/null &
pids+=($!)
wait_for_ports 18081 18082 18083 18084 18085

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "failover chat: tier 1 answers 503, tier 2 answers 429, tier 3 serves"
"$cli" chat --config examples/configs/demo.json "ping"

step "the same call with --json: the response plus served_by and every attempt"
"$cli" chat --config examples/configs/demo.json --json "ping"

step "failover chat --stream: tokens as they arrive"
"$cli" chat --config examples/configs/demo.json --stream "Say hello"

step "native APIs: relay 503, OpenAI 429, then Anthropic's Messages API serves (examples/configs/dialects.json)"
"$cli" chat --config examples/configs/dialects.json --json "ping" |
  grep -E '"(content|endpoint|outcome|status)"'

step "the same failover, streamed: Anthropic's SSE events arrive as chat chunks"
"$cli" chat --config examples/configs/dialects.json --stream "Say hello"

step "failover health: every route probed"
"$cli" health --config examples/configs/demo.json || true

step "the C++ quick start (examples/quickstart.cpp): primary 503, backup serves"
"$build/examples/quickstart"

step "streaming from C++ (examples/streaming_chat.cpp)"
"$build/examples/streaming_chat"

step "when every route fails: a typed error with the whole trace (the last route is retried with backoff)"
"$build/examples/trace" http://127.0.0.1:9/v1 http://127.0.0.1:18082/v1 || true

step "failover shadow: replay recorded requests against a candidate and compare (HTML report too)"
"$cli" shadow --config examples/configs/demo.json --requests examples/shadow/requests.jsonl \
  --primary healthy/deepseek-v3.2 --candidate healthy/gpt-4.1 --report "$build/shadow-report.html"
echo "report: $build/shadow-report.html"

step "shadow traffic from C++ (examples/shadow_compare.cpp): every call mirrored and compared"
"$build/examples/shadow_compare"

step "a canary with automatic rollback (examples/canary_rollout.cpp): a broken candidate at 10 %"
"$build/examples/canary_rollout"
