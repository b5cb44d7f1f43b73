#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the quick start against
# two local upstreams (127.0.0.1:18082 answers 503, 127.0.0.1:18081 answers), then shows the full
# attempt trace of a call whose routes fail in different ways. Loopback only; nothing leaves
# this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages "${FAILOVER_BUILD_PACKAGES[@]}"

build=${FAILOVER_BUILD_DIR:-build/demo}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFAILOVER_BUILD_TESTS=OFF \
  -DFAILOVER_BUILD_BENCH=OFF -DFAILOVER_BUILD_EXAMPLES=ON > /dev/null
cmake --build "$build" -j"$(jobs)" --target quickstart trace streaming_chat demo_upstreams

"$build/examples/demo_upstreams" --seconds 120 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
wait_for_ports 18081 18082

echo
echo "==> quick start: primary answers 503, backup answers"
"$build/examples/quickstart"

echo
echo "==> a streamed answer, printed token by token"
"$build/examples/streaming_chat"

echo
echo "==> the trace of one call: a refused port, the 503 primary, then the backup"
"$build/examples/trace" http://127.0.0.1:9/v1 http://127.0.0.1:18082/v1 http://127.0.0.1:18081/v1

echo
echo "==> the trace when every route fails (the last one is retried with backoff)"
"$build/examples/trace" http://127.0.0.1:9/v1 http://127.0.0.1:18082/v1 || true
