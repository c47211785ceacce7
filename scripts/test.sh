#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test: the unit tests under
# AddressSanitizer + UBSan; the full crash loop, the tools, and the daemon
# really mounted and driven by shell tools, Python, numpy, torch and fio, all
# optimized; and a bounded fuzzing run of every on-device decoder.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The sanitizers are for the unit tests; everything else runs optimized.
scripts/build.sh sanitize base_test aio_test format_test volume_test fuse_test
scripts/build.sh release
# Installed as the main job installs it: `mount -t fuse.nvswapfs` finds the
# daemon only where mount(8) looks, whatever PATH the tests are run with.
cmake --install build >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== unit tests (ASan+UBSan)"
ctest --test-dir build-san --output-on-failure -j2 -L unit | tee -a "$log"
echo "== crash loop, tools, and real mounts (optimized build)"
ctest --test-dir build --output-on-failure -L 'crash|tool|mount' | tee -a "$log"
echo "== fuzzing the on-device decoders"
tests/fuzz/run.sh "${NVSWAPFS_FUZZ_SECONDS:-20}" | tee -a "$log"

# One closing line for everything above (each step already stopped the
# script on its first failure).
passed=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' "$log" |
  awk '{s += $1} END {print s + 0}')
fuzzed=$(grep -c '^fuzz_.*ok' "$log" || true)
echo "$((passed + fuzzed)) passed, 0 failed"
