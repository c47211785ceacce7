#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test: the unit tests under
# AddressSanitizer + UBSan, then the checks that use the optimized programs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh sanitize
scripts/build.sh release
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== unit tests (ASan+UBSan)"
ctest --test-dir build-san --output-on-failure -j2 -L unit
echo "== tool tests (optimized build)"
ctest --test-dir build --output-on-failure -L tool
