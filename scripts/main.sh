#!/usr/bin/env bash
# The main job: installs what is needed, builds and installs nvswapfs, formats
# a default image file on first run, and mounts it.
#
#   NVSWAPFS_IMAGE  image file or block device   [/var/lib/nvswapfs/default.img]
#   NVSWAPFS_MOUNT  mount point                  [/mnt/nvswapfs]
#   NVSWAPFS_SIZE   size of a new image file     [64G; sparse, so it costs nothing up front]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release >/dev/null
# Installs nvswapfs, mkfs.nvswapfs and fsck.nvswapfs where mount(8) finds them.
cmake --install build >/dev/null

image=${NVSWAPFS_IMAGE:-/var/lib/nvswapfs/default.img}
mnt=${NVSWAPFS_MOUNT:-/mnt/nvswapfs}
size=${NVSWAPFS_SIZE:-64G}

if [ ! -e "$image" ]; then
  mkdir -p "$(dirname "$image")"
  mkfs.nvswapfs --size "$size" -L default "$image"
fi
if mountpoint -q "$mnt" 2>/dev/null; then
  echo "nvswapfs: $mnt is already mounted:"
  findmnt -n "$mnt" || true
  exit 0
fi
# A daemon that died leaves a mount point that answers "Transport endpoint is
# not connected"; clear it before mounting again.
if ! stat "$mnt" >/dev/null 2>&1 && grep -qs " $mnt " /proc/mounts; then
  fusermount3 -u "$mnt"
fi
mkdir -p "$mnt"
nvswapfs "$image" "$mnt"
cat <<MSG
nvswapfs: $image is mounted at $mnt
  df -h $mnt                          # size and free space
  cp checkpoint.pt $mnt/              # or point torch.save / np.save / DeepSpeed's nvme_path there
  getfattr -n user.nvswapfs.stats $mnt  # the mount's counters
  fstrim -v $mnt                      # give deleted files' space back to the disk
Unmount with: fusermount3 -u $mnt   (the daemon logs to syslog; fsck.nvswapfs -n $image checks it)
MSG
# Some kernels' fuse module can hand requests and replies over on one CPU;
# off, a client making one request at a time wakes the other CPU twice per
# request (README, Performance).
wake=/sys/module/fuse/parameters/wake_here
if [ "$(cat "$wake" 2>/dev/null)" = N ]; then
  echo "This kernel's fuse module has wake_here off; writers that make one request at a time"
  echo "(dd, Python's 64 KiB writes) run faster with it on: echo Y > $wake"
fi
