#!/usr/bin/env bash
# scripts/soak.sh [CALLS] [THREADS]: the long chaos soak (default 20 000 calls from 32 threads)
# against four misbehaving loopback upstreams, in a normal build and then under ASan+UBSan
# (leaks included) and TSan. Bounded: each run stops by itself after CALLS or 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages "${FAILOVER_BUILD_PACKAGES[@]}"
export FAILOVER_SOAK_CALLS=${1:-20000}
export FAILOVER_SOAK_THREADS=${2:-32}

run() {  # run NAME BUILD_DIR CMAKE_FLAGS...
  local name=$1 build=$2
  shift 2
  echo "==> soak ($name): $FAILOVER_SOAK_CALLS calls from $FAILOVER_SOAK_THREADS threads"
  cmake -S . -B "$build" -DFAILOVER_BUILD_BENCH=OFF -DFAILOVER_CONSUMER_TESTS=OFF "$@" > /dev/null
  cmake --build "$build" -j"$(jobs)" --target soak_test > /dev/null
  "$build/tests/soak_test"
}
run plain build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run "ASan + UBSan" build/asan -DCMAKE_BUILD_TYPE=Debug -DFAILOVER_SANITIZE=ON
TSAN_OPTIONS="halt_on_error=1:suppressions=$PWD/tests/tsan.supp" \
  run TSan build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAILOVER_SANITIZE_THREAD=ON
