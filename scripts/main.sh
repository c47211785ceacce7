#!/usr/bin/env bash
# The main job: installs what is needed, builds, and runs the engine benchmark
# against fio on a default image file. (When the FUSE daemon lands, this
# formats the image and mounts it instead.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
image=${NVSWAPFS_IMAGE:-/var/lib/nvswapfs/bench.img}
mkdir -p "$(dirname "$image")"
echo "== nvswapfs engine vs fio on $image (1 GiB, 1 MiB blocks, queue depth 32, O_DIRECT)"
build/bin/nvswapfs-bench --file "$image" --size 1G --op write --vs-fio --validate
build/bin/nvswapfs-bench --file "$image" --size 1G --op read --vs-fio
build/bin/nvswapfs-bench --file "$image" --size 1G --op read --pattern rand --block-size 4K \
  --queue-depth 64 --vs-fio
