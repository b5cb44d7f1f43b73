#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS]: builds the libFuzzer targets with clang (ASan + UBSan) and runs each
# for SECONDS (default 60) from the seed corpus in tests/fuzz/corpus/. New inputs go to
# build/fuzz/work/ (the committed corpus is only read). Exits non-zero when a target finds a
# crash, a leak or a broken property; the reproducer is left in build/fuzz/.
# FAILOVER_FUZZ_TARGETS="config" runs only some of the targets (sse, response, config, headers).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
seconds=${1:-60}
ensure_packages "${FAILOVER_BUILD_PACKAGES[@]}" clang libclang-rt-14-dev

build=${FAILOVER_FUZZ_BUILD_DIR:-build/fuzz}
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAILOVER_FUZZ=ON \
  -DFAILOVER_BUILD_TESTS=OFF -DFAILOVER_BUILD_EXAMPLES=OFF -DFAILOVER_BUILD_TOOLS=OFF \
  -DFAILOVER_BUILD_BENCH=OFF -DFAILOVER_INSTALL=OFF > /dev/null
cmake --build "$build" -j"$(jobs)" --target fuzz_sse fuzz_response fuzz_config fuzz_headers

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for target in ${FAILOVER_FUZZ_TARGETS:-sse response config headers}; do
  work="$build/work/$target"
  mkdir -p "$work"
  echo "==> fuzz_$target for ${seconds}s"
  log="$build/fuzz_$target.log"
  status=0
  (cd "$build" && "./tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="fuzz_$target-" \
    "work/$target" "$OLDPWD/tests/fuzz/corpus/$target") > "$log" 2>&1 || status=$?
  grep -E "^Done|ERROR|SUMMARY|Test unit written|runtime error" "$log" | head -20 || true
  if [ "$status" != 0 ]; then
    echo "fuzz_$target failed (exit $status); see $log" >&2
    exit "$status"
  fi
done
