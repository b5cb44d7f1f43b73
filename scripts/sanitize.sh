#!/usr/bin/env bash
# Builds every test with AddressSanitizer + UndefinedBehaviorSanitizer and runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages "${FAILOVER_BUILD_PACKAGES[@]}"

build=${FAILOVER_BUILD_DIR:-build/asan}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DFAILOVER_SANITIZE=ON -DFAILOVER_BUILD_BENCH=OFF -DFAILOVER_WERROR=ON -DFAILOVER_CONSUMER_TESTS=OFF
cmake --build "$build" -j"$(jobs)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$build" --output-on-failure -j"$(jobs)" --timeout 600
