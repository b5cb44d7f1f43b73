#!/usr/bin/env bash
# Installs what is missing, builds everything, runs every test (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages "${FAILOVER_BUILD_PACKAGES[@]}"

build=${FAILOVER_BUILD_DIR:-build/test}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAILOVER_WERROR=ON -DBUILD_SHARED_LIBS=ON
cmake --build "$build" -j"$(jobs)"
ctest --test-dir "$build" --no-tests=error --output-on-failure -j"$(jobs)" --timeout 300
