#!/usr/bin/env bash
# Builds every test with AddressSanitizer + UndefinedBehaviorSanitizer and runs them all, then
# with ThreadSanitizer and runs them all again (the concurrency and integration tests are the
# point of that pass; the rest are cheap).
#   scripts/sanitize.sh [asan|tsan]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages "${FAILOVER_BUILD_PACKAGES[@]}"
which=${1:-all}

if [ "$which" = all ] || [ "$which" = asan ]; then
  echo "==> ASan + UBSan"
  build=${FAILOVER_ASAN_BUILD_DIR:-build/asan}
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DFAILOVER_SANITIZE=ON -DFAILOVER_BUILD_BENCH=OFF \
    -DFAILOVER_WERROR=ON -DFAILOVER_CONSUMER_TESTS=OFF > /dev/null
  cmake --build "$build" -j"$(jobs)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$build" --output-on-failure -j"$(jobs)" --timeout 600
fi

if [ "$which" = all ] || [ "$which" = tsan ]; then
  echo "==> TSan"
  build=${FAILOVER_TSAN_BUILD_DIR:-build/tsan}
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAILOVER_SANITIZE_THREAD=ON \
    -DFAILOVER_BUILD_BENCH=OFF -DFAILOVER_WERROR=ON -DFAILOVER_CONSUMER_TESTS=OFF > /dev/null
  cmake --build "$build" -j"$(jobs)"
  # The packaged cpp-httplib (test servers only) is not instrumented: see tests/tsan.supp.
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp" \
    ctest --test-dir "$build" --output-on-failure -j"$(jobs)" --timeout 900
fi
