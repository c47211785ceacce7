#!/usr/bin/env bash
# mkfs.nvswapfs, fsck.nvswapfs and nvswapfs-dump used the way an
# administrator uses them: format an image, check it, refuse to format over
# something, break superblocks and repair them, and look inside a volume
# that holds files.
#
# Usage: mkfs_fsck_test.sh BIN_DIR POPULATE_HELPER
#   BIN_DIR          where mkfs.nvswapfs, fsck.nvswapfs and nvswapfs-dump are
#   POPULATE_HELPER  nvswapfs-populate-test (writes /ckpt/step1.pt, /latest)
#
# Every check runs even after one fails; each failure is printed, and the
# exit status is non-zero when any failed.
set -u

bin=${1:?usage: mkfs_fsck_test.sh BIN_DIR POPULATE_HELPER}
populate=${2:?usage: mkfs_fsck_test.sh BIN_DIR POPULATE_HELPER}
mkfs=$bin/mkfs.nvswapfs
fsck=$bin/fsck.nvswapfs
dump=$bin/nvswapfs-dump
# mkfs.ext4 and flock live in sbin on Debian, which a test runner's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0
out=$dir/stdout
err=$dir/stderr

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

show_output() {
  sed 's/^/    stdout: /' "$out" >&2
  sed 's/^/    stderr: /' "$err" >&2
}

# run WANT_RC COMMAND...: runs COMMAND with stdout and stderr captured in
# $out and $err, and checks its exit status.
run() {
  local want=$1
  shift
  "$@" >"$out" 2>"$err"
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    fail "'$*' exited $rc, expected $want"
    show_output
    return 1
  fi
  return 0
}

# expect FILE PATTERN WHAT: the captured FILE ($out or $err) matches PATTERN.
expect() {
  if ! grep -qE -- "$2" "$1"; then
    fail "$3 (no match for /$2/)"
    show_output
  fi
}

# one_line NAME: the captured stderr is exactly one line starting with NAME.
one_line() {
  local lines
  lines=$(wc -l <"$err")
  [ "$lines" -eq 1 ] || fail "$1 printed $lines lines on stderr, expected one"
  expect "$err" "^$1: " "$1's message lacks the program name"
}

zero_block() {  # zero_block IMAGE BLOCK_INDEX: zeroes one 4 KiB block
  dd if=/dev/zero of="$1" bs=4096 count=1 seek="$2" conv=notrunc status=none
}

last_block() {  # last_block IMAGE: index of the last 4 KiB block
  echo $(($(stat -c %s "$1") / 4096 - 1))
}

img=$dir/vol.img

echo "== version and usage"
for tool in "$mkfs" "$fsck" "$dump"; do
  run 0 "$tool" --version && expect "$out" "^nvswapfs 0\.1\.0$" "$tool --version"
  run 0 "$tool" --help && expect "$out" "Usage:" "$tool --help"
done
run 16 "$fsck" --no-such-option "$img" && one_line fsck.nvswapfs
run 16 "$fsck" -n -y "$img" && one_line fsck.nvswapfs
run 16 "$fsck" && one_line fsck.nvswapfs
run 2 "$mkfs" --no-such-option "$img" && one_line mkfs.nvswapfs
run 2 "$mkfs" --alloc-unit 3M --size 2G "$img" && one_line mkfs.nvswapfs
run 2 "$mkfs" -L "$(printf 'x%.0s' {1..64})" --size 2G "$img" && one_line mkfs.nvswapfs
run 2 "$dump" --no-such-option "$img" && one_line nvswapfs-dump
[ -e "$img" ] && fail "a usage error left $img behind"

echo "== mkfs on a new image"
run 1 "$mkfs" "$img" && one_line mkfs.nvswapfs
expect "$err" "does not exist; give --size" "mkfs without --size did not explain"
if run 0 "$mkfs" --size 2G -L ckpt "$img"; then
  cat "$out"
  for field in "uuid" "label" "allocation unit" "checkpoint slots" "log" "data region"; do
    expect "$out" "^ *$field: " "the summary lacks '$field'"
  done
  expect "$out" "2 GiB" "the summary does not give the size"
  expect "$out" "allocation units\)" "the summary does not count allocation units"
fi
mkfs_uuid=$(sed -n 's/^ *uuid: *//p' "$out")
[ -n "$mkfs_uuid" ] || fail "mkfs printed no uuid"
[ "$(stat -c %s "$img")" -eq $((2 << 30)) ] || fail "the image is not 2 GiB"

echo "== fsck and dump on the new volume"
run 0 "$fsck" -n "$img" && expect "$out" "clean" "fsck -n did not say clean"
cat "$out"
run 0 "$fsck" "$img" && expect "$out" "clean" "fsck (no option) did not say clean"
run 0 "$dump" "$img" && expect "$out" "$mkfs_uuid" "nvswapfs-dump does not show mkfs's uuid"
expect "$out" "primary copy: +valid" "nvswapfs-dump does not call the primary superblock valid"
expect "$out" "backup copy: +valid" "nvswapfs-dump does not call the backup superblock valid"
if run 0 "$dump" --json "$img" /; then
  /usr/bin/python3 -c 'import json,sys; json.load(sys.stdin)' <"$out" ||
    fail "nvswapfs-dump --json is not JSON"
  /usr/bin/python3 - "$out" "$mkfs_uuid" <<'PY' || fail "nvswapfs-dump --json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["superblock"]["uuid"] == sys.argv[2], d["superblock"]["uuid"]
assert d["superblock"]["label"] == "ckpt"
assert d["superblock"]["primary"]["valid"] and d["superblock"]["backup"]["valid"]
assert d["counts"]["directories"] == 1 and d["counts"]["files"] == 0
assert d["paths"][0]["inode"]["ino"] == 1
PY
fi

echo "== refusing to format over a volume"
if run 1 "$mkfs" "$img"; then
  one_line mkfs.nvswapfs
  expect "$err" "already holds an nvswapfs volume" "the refusal does not name nvswapfs"
  expect "$err" "$mkfs_uuid" "the refusal does not give the old uuid"
  expect "$err" "-f" "the refusal does not mention -f"
fi
# Only the backup left: still refused.
cp --sparse=always "$img" "$dir/backup-only.img"
zero_block "$dir/backup-only.img" 0
run 1 "$mkfs" "$dir/backup-only.img" &&
  expect "$err" "nvswapfs" "a volume with only its backup superblock was not recognised"
run 0 "$mkfs" -f -L ckpt "$img"
new_uuid=$(sed -n 's/^ *uuid: *//p' "$out")
[ -n "$new_uuid" ] && [ "$new_uuid" != "$mkfs_uuid" ] || fail "mkfs -f did not make a new volume"
run 0 "$fsck" -n "$img" && expect "$out" "clean" "fsck after mkfs -f"

echo "== refusing to format over ext4"
if command -v mkfs.ext4 >/dev/null; then
  ext4=$dir/ext4.img
  truncate -s 64M "$ext4"
  mkfs.ext4 -q -F "$ext4" || fail "mkfs.ext4 failed"
  if run 1 "$mkfs" "$ext4"; then
    one_line mkfs.nvswapfs
    expect "$err" "already holds an ext4 filesystem" "the refusal does not name ext4"
  fi
  run 0 "$mkfs" -f "$ext4" && expect "$out" "ext4" "mkfs -f did not say it erased ext4"
  run 0 "$fsck" -n "$ext4" && expect "$out" "clean" "fsck after formatting over ext4"
  if command -v blkid >/dev/null; then
    # Exit 2: blkid finds no signature at all, so nothing still sees ext4.
    blkid -p "$ext4" >/dev/null 2>&1
    [ $? -eq 2 ] || fail "blkid still recognises something on the former ext4 image"
  fi
else
  echo "SKIPPED: mkfs.ext4 is not installed; the ext4 refusal is not tested" >&2
fi

echo "== a busy image"
if command -v flock >/dev/null; then
  # flock(1) holds an exclusive lock on the image, as a mounted daemon does.
  run 1 flock -n "$img" "$dump" "$img" && expect "$err" "Device or resource busy" "dump of a locked image"
  run 1 flock -n "$img" "$mkfs" -f "$img" && expect "$err" "Device or resource busy" "mkfs of a locked image"
  run 8 flock -n "$img" "$fsck" -n "$img"
else
  echo "SKIPPED: flock(1) is not installed; busy images are not tested" >&2
fi

echo "== both superblocks destroyed"
cp --sparse=always "$img" "$dir/broken.img"
zero_block "$dir/broken.img" 0
zero_block "$dir/broken.img" "$(last_block "$dir/broken.img")"
if run 8 "$fsck" -n "$dir/broken.img"; then
  one_line fsck.nvswapfs
  expect "$err" "primary superblock" "fsck does not name the primary superblock"
  expect "$err" "backup superblock" "fsck does not name the backup superblock"
fi
run 8 "$fsck" -y "$dir/broken.img"
if run 1 "$dump" "$dir/broken.img"; then
  expect "$err" "primary superblock" "nvswapfs-dump does not name the primary superblock"
  expect "$err" "backup superblock" "nvswapfs-dump does not name the backup superblock"
  expect "$out" "primary copy: +damaged" "nvswapfs-dump does not show the primary as damaged"
fi
if run 1 "$dump" --json "$dir/broken.img"; then
  /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert not d["superblock"]["primary"]["valid"] and not d["superblock"]["backup"]["valid"]
assert "primary superblock" in d["error"]' <"$out" || fail "nvswapfs-dump --json of a broken volume"
fi

echo "== primary superblock destroyed"
zero_block "$img" 0
if run 4 "$fsck" -n "$img"; then
  expect "$out" "^PROBLEM: primary superblock" "fsck -n does not report the primary superblock"
  cat "$out"
fi
run 0 "$dump" "$img" && expect "$out" "read from: +backup copy" "dump did not fall back to the backup"
if run 1 "$fsck" -y "$img"; then
  expect "$out" "^FIXED: primary superblock" "fsck -y does not say it fixed the primary"
  cat "$out"
fi
run 0 "$fsck" -n "$img" && expect "$out" "clean" "fsck -n after the repair"
# -p is fsck(8)'s unattended repair; on a clean volume it changes nothing.
run 0 "$fsck" -p "$img"

echo "== a volume with files"
run 0 "$populate" "$img"
if run 0 "$dump" "$img" /ckpt/step1.pt /latest /ckpt; then
  cat "$out"
  # One extent: logical 0, 768 blocks (3 MiB), written.
  expect "$out" "^ +0 +[0-9]+ +[0-9]+ +768 +3145728 +written$" \
    "/ckpt/step1.pt is not one written extent of 768 blocks"
  expect "$out" "target: +ckpt/step1.pt" "the symlink target is not shown"
fi
if run 0 "$dump" --json "$img" /ckpt/step1.pt /latest /ckpt; then
  /usr/bin/python3 - "$out" <<'PY' || fail "nvswapfs-dump --json of the populated volume"
import json, sys
d = json.load(open(sys.argv[1]))
f, link, ckpt = d["paths"]
assert f["inode"]["type"] == "file" and f["inode"]["size"] == 3 << 20
assert f["inode"]["mode"] == "0644"
ext = f["extents"]
assert len(ext) == 1, ext
assert ext[0]["logical_block"] == 0 and ext[0]["blocks"] == 768 and not ext[0]["unwritten"]
assert ext[0]["device_offset"] == ext[0]["physical_block"] * 4096
assert link["inode"]["type"] == "symlink" and link["inode"]["target"] == "ckpt/step1.pt"
assert ckpt["inode"]["type"] == "directory" and ckpt["inode"]["entries"] == 1
assert d["counts"] == {"inodes": 4, "files": 1, "directories": 2, "symlinks": 1,
                       "other": 0, "deleted_while_open": 0}, d["counts"]
assert d["space"]["used_bytes"] == 3 << 20, d["space"]
PY
fi
run 1 "$dump" "$img" /ckpt/missing.pt && expect "$err" "missing.pt" "a missing PATH is not named"
if run 0 "$fsck" -n "$img"; then
  expect "$out" "clean, 1 file, 2 directories, 1 symlink, 3 MiB used" "fsck's summary of the files"
  cat "$out"
fi

echo "== mkfs on a block device discards its data region first"
if [ "$(id -u)" -ne 0 ] || [ ! -w /dev/loop-control ]; then
  if [ -n "${CI:-}" ]; then
    fail "CI must run as root with /dev/loop-control"
  else
    echo "CANNOT RUN: needs root and /dev/loop-control to attach a loop device"
  fi
else
  back=$dir/loop.img
  # Written out whole, as a drive that held data would be; the loop driver
  # turns a discard into a punched hole in this file.
  dd if=/dev/zero of="$back" bs=1M count=256 status=none
  whole=$(stat -c %b "$back")
  if loopdev=$(losetup --find --show --sector-size 4096 "$back" 2>"$err"); then
    if run 0 "$mkfs" "$loopdev"; then
      expect "$out" "^Discarding the data region \(.*\): done$" "mkfs did not discard the device"
      left=$(stat -c %b "$back")
      [ "$left" -lt $((whole / 4)) ] ||
        fail "the data region is still allocated after mkfs ($left of $whole blocks)"
    fi
    run 0 "$fsck" -n "$loopdev" && expect "$out" "clean" "fsck after mkfs with discard"
    dd if=/dev/zero of="$loopdev" bs=1M count=256 oflag=direct status=none
    if run 0 "$mkfs" -f --no-discard "$loopdev"; then
      grep -q "Discarding" "$out" && fail "mkfs --no-discard discarded"
      left=$(stat -c %b "$back")
      [ "$left" -ge $((whole * 9 / 10)) ] ||
        fail "mkfs --no-discard gave space back ($left of $whole blocks left)"
    fi
    run 0 "$fsck" -n "$loopdev" && expect "$out" "clean" "fsck after mkfs --no-discard"
    losetup -d "$loopdev"
  else
    fail "losetup could not attach $back: $(cat "$err")"
  fi
fi

if [ "$failures" -ne 0 ]; then
  echo "mkfs/fsck tools: $failures checks FAILED" >&2
  exit 1
fi
echo "mkfs/fsck tools: all checks passed"
