#!/usr/bin/env bash
# Builds the libFuzzer targets of the on-device decoders and runs each one for
# a bounded time, starting from a generated corpus of valid encodings.
#
# Usage: tests/fuzz/run.sh [SECONDS]   (per target; default 20)
#
# Prints one line per target with the number of inputs it ran. Exits non-zero
# when a target finds a crash (or a broken round-trip check); the log and the
# crashing input are then kept and their location printed.
set -euo pipefail

seconds="${1:-20}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || (( seconds == 0 )); then
  echo "usage: $0 [SECONDS]  (a positive number of seconds per target)" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
build="$root/build-fuzz"
targets=(superblock records journal)

work="$(mktemp -d "${TMPDIR:-/tmp}/nvswapfs-fuzz.XXXXXX")"
keep_work=0
cleanup() { if (( keep_work == 0 )); then rm -rf "$work"; fi; }
trap cleanup EXIT

# Configure and build quietly; on failure show what went wrong.
quiet() {
  local log="$work/$1.log"
  shift
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "run.sh: failed: $*" >&2
    exit 1
  fi
}
quiet configure cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DNVSWAPFS_FUZZ=ON \
  -DNVSWAPFS_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
# Only the fuzz targets: the rest of the tree is not needed here.
quiet build cmake --build "$build" -j2 --target fuzz_seed_corpus \
  "${targets[@]/#/fuzz_}"

quiet seeds "$build/bin/fuzz_seed_corpus" "$work/seeds"

failed=0
for target in "${targets[@]}"; do
  corpus="$work/corpus/$target"
  artifacts="$work/artifacts/$target"
  log="$work/fuzz_$target.log"
  mkdir -p "$corpus" "$artifacts"
  # New inputs go to the first directory; the seeds are only read.
  set +e
  "$build/bin/fuzz_$target" "$corpus" "$work/seeds/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  set -e
  runs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
  if [[ -z "$runs" ]]; then
    runs="$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)"
  fi
  runs="${runs:-unknown}"
  if (( rc == 0 )); then
    printf 'fuzz_%-10s %12s runs in %ss: ok\n' "$target" "$runs" "$seconds"
  else
    failed=1
    keep_work=1
    printf 'fuzz_%-10s %12s runs: FAILED (exit %d)\n' "$target" "$runs" "$rc"
    grep -E 'ERROR|SUMMARY|check failed|Test unit written' "$log" | head -n 20 | sed 's/^/    /'
    for crash in "$artifacts"/*; do
      [[ -e "$crash" ]] && echo "    reproduce: $build/bin/fuzz_$target $crash"
    done
  fi
done

if (( failed )); then
  echo "logs and crashing inputs kept in $work" >&2
  exit 1
fi
