#!/usr/bin/env bash
# Installs what tools/bench/compare.py needs (from Debian's packages, only
# what is missing) and runs it with Debian's Python; every argument is passed
# on. Example, a quick run:
#   tools/bench/compare.sh --size 64M --files 500 --rss-size 256M --cold-files 2000
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

missing=()
for p in fio fuse2fs e2fsprogs fuse3 python3-matplotlib python3-torch; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "compare.sh: missing packages: ${missing[*]}; run as root (or with sudo)" \
      "to install them" >&2
    exit 1
  fi
  echo "compare.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
exec /usr/bin/python3 "$here/compare.py" "$@"
