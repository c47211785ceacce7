#!/usr/bin/env bash
# The ceiling of a FUSE daemon that keeps its data, on this machine: a client
# runs again and again on nvswapfs-null-fuse (the transport alone, nothing
# kept) while fio keeps the disk busy beside it at a capped rate, as a daemon
# writing or reading what it is given would. A daemon cannot go faster than a
# rate both sides reach at the same time. Prints, for each rate, the client's
# mean MB/s over the runs inside fio's window and what fio got; then fio alone.
#
# usage: ceiling.sh [--bin DIR] [--dir DIR] [--seconds S] [--size N(M|G)]
#                   CASE "RATE ..."
#   CASE   ddw (dd oflag=direct), ddr (dd iflag=direct) or py (64 KiB write()s
#          of one buffer, then fsync, as compare.sh's Python client)
#   RATE   MB/s fio is capped at beside the client; 0: the client alone;
#          max: fio uncapped
# Example: tools/bench/ceiling.sh ddw "0 1500 2500 3000 max 0"
# Runs as root (mounts, drops caches, reserves huge pages for fio's buffers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/../../build/bin
dir=/var/tmp/nvswapfs-ceiling
seconds=14
size=2G
while [ $# -gt 2 ]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    *) echo "ceiling.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -eq 2 ] || { sed -n '9,16p' "$0" >&2; exit 2; }
what=$1
rates=$2
case $what in
  ddw|py) op="write" ;;
  ddr) op="read" ;;
  *) echo "ceiling.sh: unknown case '$what' (ddw, ddr or py)" >&2; exit 2 ;;
esac
case $size in
  *M) mib=${size%M} ;;
  *G) mib=$((${size%G} * 1024)) ;;
  *) echo "ceiling.sh: --size takes a number of M or G: $size" >&2; exit 2 ;;
esac
[[ $mib =~ ^[0-9]+$ && $mib -gt 0 ]] || { echo "ceiling.sh: bad --size $size" >&2; exit 2; }
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 3 ]] ||
  { echo "ceiling.sh: --seconds must be a whole number, at least 3" >&2; exit 2; }
for r in $rates; do
  [[ $r =~ ^([0-9]+|max)$ ]] || { echo "ceiling.sh: bad rate '$r' (MB/s, or max)" >&2; exit 2; }
done
[ -x "$bin/nvswapfs-null-fuse" ] ||
  { echo "ceiling.sh: no $bin/nvswapfs-null-fuse (scripts/build.sh release)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "ceiling.sh: run as root" >&2; exit 1; }
command -v fio >/dev/null || { echo "ceiling.sh: needs fio (apt-get install fio)" >&2; exit 1; }

mnt=$dir/mnt
src=/dev/shm/nvswapfs-ceiling-src-$$
hugepages=$(cat /proc/sys/vm/nr_hugepages)
[ ! -e "$dir" ] || { echo "ceiling.sh: $dir exists; remove it first" >&2; exit 1; }
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u "$mnt"
  echo "$hugepages" >/proc/sys/vm/nr_hugepages
  rm -rf "$dir" "$src"
}
trap cleanup EXIT
mkdir -p "$mnt"
# fio's 32 buffers of 1 MiB on huge pages, as the limit's in compare.sh
echo $((hugepages + 40)) >/proc/sys/vm/nr_hugepages
dd if=/dev/urandom of="$src" bs=1M count="$mib" status=none
# the disk's file is written out whole: a fresh image takes writes at half speed
dd if=/dev/zero of="$dir/fio.img" bs=1M count="$mib" status=none conv=fsync
"$bin/nvswapfs-null-fuse" "$mnt"
st=$(stat -c %d "$mnt")
echo 16384 >"/sys/class/bdi/$((st >> 8)):$((st & 255))/read_ahead_kb" || true
dd if="$src" of="$mnt/f" bs=1M oflag=direct status=none

client() {
  case $what in
    ddw) dd if="$src" of="$mnt/f" bs=1M oflag=direct status=none ;;
    ddr) dd if="$mnt/f" of=/dev/null bs=1M iflag=direct status=none ;;
    py) /usr/bin/python3 -c "
import os, sys
d = memoryview(os.urandom(65536))
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
for _ in range(int(sys.argv[2]) * 16):
    assert os.write(fd, d) == len(d)
os.fsync(fd)
os.close(fd)" "$mnt/p" "$mib" ;;
  esac
}
fio_args=(--name=beside "--filename=$dir/fio.img" "--rw=$op" --bs=1M --iodepth=32
  --ioengine=libaio --direct=1 "--size=${mib}M" --iomem=shmhuge --time_based
  --output-format=json)
fio_rate() {
  /usr/bin/python3 -c "import json, sys
j = json.load(open(sys.argv[1]))['jobs'][0]
print('%.0f' % (j[sys.argv[2]]['bw_bytes'] / 1e6))" "$1" "$op"
}

echo "ceiling: $what on nvswapfs-null-fuse, fio $op beside it, ${seconds} s per rate, ${mib} MiB"
for r in $rates; do
  sync
  echo 3 >/proc/sys/vm/drop_caches
  pid=
  if [ "$r" != 0 ]; then
    cap=()
    [ "$r" = max ] || cap=(--rate=$((r * 1000000)))
    fio "${fio_args[@]}" --runtime="$seconds" "${cap[@]}" --output="$dir/fio.json" &
    pid=$!
    sleep 1
  fi
  rates_seen=()
  stop=$(($(date +%s) + seconds - 2))
  while :; do
    t0=$(date +%s%N)
    client
    t1=$(date +%s%N)
    # a run that ended after fio did was not measured beside it
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then break; fi
    rates_seen+=("$(((mib << 20) * 1000 / (t1 - t0)))")
    [ "$(date +%s)" -lt "$stop" ] || break
  done
  got=-
  if [ -n "$pid" ]; then
    wait "$pid"
    got=$(fio_rate "$dir/fio.json")
  fi
  [ ${#rates_seen[@]} -gt 0 ] ||
    { echo "ceiling.sh: no client run finished inside fio's ${seconds} s" >&2; exit 1; }
  mean=$(printf '%s\n' "${rates_seen[@]}" | awk '{s += $1} END {printf "%.0f", s / NR}')
  beside="fio $op $r MB/s asked, $got got"
  [ "$r" != 0 ] || beside="no fio beside"
  printf '  %-36s null %-3s %5s MB/s (%d runs)\n' "$beside" "$what" "$mean" "${#rates_seen[@]}"
done
sync
echo 3 >/proc/sys/vm/drop_caches
fio "${fio_args[@]}" --runtime="$seconds" --output="$dir/fio.json"
echo "  fio $op alone: $(fio_rate "$dir/fio.json") MB/s"
