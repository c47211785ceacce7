#!/usr/bin/env bash
# nvswapfs-bench used the way a user uses it: it creates its file, validates
# what it wrote through a plain read() path, compares with fio, prints JSON,
# and rejects bad options with one line and exit code 2.
set -euo pipefail
bench=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$bench" --file "$dir/b.img" --size 64M --op write --validate --repeat 1 2>&1)
echo "$out"
grep -q "Validate: Pass" <<<"$out" || fail "write validation did not pass"
grep -qi "creat" <<<"$out" || fail "did not say it created the file"

out=$("$bench" --file "$dir/b.img" --size 64M --op read --pattern rand --block-size 64K \
  --queue-depth 16 --threads 2 --validate --repeat 1 2>&1)
echo "$out"
grep -q "Validate: Pass" <<<"$out" || fail "read validation did not pass"

# check_vs_fio HUGE: engine and fio side by side in JSON; HUGE (0 or 1) is
# whether fio's buffers must have been on huge pages.
check_vs_fio() {
json=$("$bench" --file "$dir/b.img" --size 32M --op read --vs-fio --json --repeat 1 2>/dev/null)
echo "$json"
/usr/bin/python3 - "$json" "$1" <<'PY'
import json, sys
rows = [json.loads(line) for line in sys.argv[1].splitlines() if line.strip()]
assert rows, "no JSON rows"
for r in rows:
    for key in ("engine_MiBps", "fio_MiBps", "ratio"):
        assert key in r, f"missing {key}"
    assert r["engine_MiBps"] > 0 and r["fio_MiBps"] > 0
    assert abs(r["ratio"] - r["engine_MiBps"] / r["fio_MiBps"]) < 0.01 * r["ratio"]
    assert r["fio_huge_buffers"] is (sys.argv[2] == "1"), r["fio_huge_buffers"]
PY
}

# fio gets huge-page buffers exactly when enough hugetlb pages are free: a
# 1 MiB x 32 job needs 16 pages, plus one for alignment.
free_huge() { awk '/^HugePages_Free:/ {print $2}' /proc/meminfo; }
check_vs_fio "$([ "$(free_huge)" -ge 17 ] && echo 1 || echo 0)"
if [ -w /proc/sys/vm/nr_hugepages ]; then
  # And with some reserved for the run (as root), fio really runs on them.
  was=$(cat /proc/sys/vm/nr_hugepages)
  trap 'echo "$was" > /proc/sys/vm/nr_hugepages; rm -rf "$dir"' EXIT
  echo $((was + 24)) > /proc/sys/vm/nr_hugepages
  [ "$(free_huge)" -ge 17 ] || fail "could not reserve 24 huge pages for fio"
  check_vs_fio 1
  echo "$was" > /proc/sys/vm/nr_hugepages
fi

# --buffer: the range goes through the same memory again and again, so each
# MiB of the file written through a 1 MiB buffer holds what its first does
# (the pattern of offsets 0 to 1 MiB), in both patterns.
for pattern in seq rand; do
  rm -f "$dir/s.img"
  out=$("$bench" --file "$dir/s.img" --size 8M --buffer 1M --block-size 256K --queue-depth 4 \
    --op write --pattern $pattern --json --repeat 1 2>/dev/null) ||
    fail "--buffer 1M, $pattern: the write failed"
  echo "$out"
  /usr/bin/python3 - "$dir/s.img" "$out" <<'PY' || fail "--buffer 1M, $pattern: file is not its first MiB repeated"
import json, sys
data = open(sys.argv[1], "rb").read()
mib = 1 << 20
assert len(data) >= 8 * mib, len(data)
first = data[:mib]
assert first != bytes(mib), "nothing written"
for i in range(8):
    assert data[i * mib:(i + 1) * mib] == first, f"MiB {i} differs"
row = json.loads(sys.argv[2])
assert row["buffer"] == mib and row["size"] == 8 * mib, row
PY
done

for bad in "--size abc" "--queue-depth 0" "--op sideways" "--block-size 1000" \
  "--size 8M --buffer 3M" "--size 8M --buffer 16M" "--size 8M --buffer 0" \
  "--size 8M --buffer 1M --validate"; do
  set +e
  msg=$("$bench" --file "$dir/b.img" --op read $bad 2>&1)
  rc=$?
  set -e
  [ $rc -eq 2 ] || fail "'$bad' exited $rc, expected 2"
  [ "$(wc -l <<<"$msg")" -eq 1 ] || fail "'$bad' printed more than one line: $msg"
  grep -q "^nvswapfs-bench: " <<<"$msg" || fail "'$bad' message lacks the program name: $msg"
done
echo "bench tool: all checks passed"
