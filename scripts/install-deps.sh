#!/usr/bin/env bash
# Installs what nvswapfs needs to build, test and benchmark, from Debian's
# packages. Idempotent, and silent when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config       # toolchain
  libaio-dev                             # the I/O engine
  libfuse3-dev fuse3 attr                # the FUSE daemon, fusermount3, getfattr
  libboost-dev libboost-program-options-dev
  libblkid-dev                           # mkfs: detect other filesystems' signatures
  libgtest-dev googletest                # unit tests
  fio                                    # benchmarks: the reference to compare against
  clang libclang-rt-14-dev               # libFuzzer targets of the on-device decoders
  e2fsprogs python3                      # tool tests: a foreign filesystem, JSON checks
  rsync python3-numpy python3-torch      # mount tests: the clients people use
  fuse2fs python3-matplotlib             # tools/bench/compare.sh: ext4 through FUSE, the chart
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or with sudo) to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
