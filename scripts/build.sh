#!/usr/bin/env bash
# Builds nvswapfs. Usage: scripts/build.sh [release|sanitize] [TARGET...]
#   release   build/      optimized programs in build/bin (default)
#   sanitize  build-san/  the same with AddressSanitizer + UBSan, for unit tests
#   thread    build-tsan/ the same with ThreadSanitizer, run by hand (README, Tests)
# With TARGETs, builds only those.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
case "$kind" in
  release)  dir=build;     flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  sanitize) dir=build-san; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DNVSWAPFS_SANITIZE=ON) ;;
  thread)   dir=build-tsan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DNVSWAPFS_TSAN=ON) ;;
  *) echo "build.sh: unknown build kind '$kind' (use release, sanitize or thread)" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
shift || true
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
