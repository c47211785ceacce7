#!/usr/bin/env bash
# tools/bench/compare.sh in its quick mode, run the way a user runs it. It must
# finish, unmount everything it mounted, remove its scratch directory, and
# write a PNG and a JSON file that holds every case with a positive rate. The
# figures themselves vary from run to run and are not checked.
# Usage: compare_smoke.sh COMPARE_SH BIN_DIR
set -euo pipefail
compare=$1
bin=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
  echo "compare smoke test: needs root and /dev/fuse, skipped"
  exit 77
fi
out=$(mktemp -d)
scratch=/var/tmp/nvswapfs-compare-smoke-$$-$RANDOM
trap 'rm -rf "$out"' EXIT

# Its own options are refused with a message, before anything is measured.
if msg=$("$compare" --bin "$bin" --dir "$scratch" --options sync_writes,log=/tmp/mine 2>&1); then
  fail "compare.sh accepted a log= of its own in --options"
fi
grep -q -- "--options: log= is the benchmark's own" <<<"$msg" ||
  fail "no clear message for a log= in --options: $msg"
[ ! -e "$scratch" ] || fail "a refused run left $scratch behind"

hugepages=$(cat /proc/sys/vm/nr_hugepages)
# After every run: nothing of it left behind, and the huge pages given back.
left_clean() {
  local run=$1 left
  [ "$(cat /proc/sys/vm/nr_hugepages)" = "$hugepages" ] ||
    fail "vm.nr_hugepages is $(cat /proc/sys/vm/nr_hugepages) after the $run, was $hugepages"
  [ ! -e "$scratch" ] || fail "the scratch directory $scratch was left behind ($run)"
  ! grep -q " $scratch/" /proc/mounts || fail "something under $scratch is still mounted ($run)"
  ! pgrep -f "nvswapfs-null-fuse $scratch" >/dev/null || fail "nvswapfs-null-fuse still runs ($run)"
  for left in /dev/shm/nvswapfs-compare-*; do
    if [ -e "$left" ]; then fail "$left was left in /dev/shm ($run)"; fi
  done
}
start=$(date +%s)
"$compare" --bin "$bin" --dir "$scratch" --size 64M --files 500 --rss-size 256M \
  --cold-files 2000 --plot "$out/compare.png" --json "$out/compare.json" ||
  fail "compare.sh exited $?"
echo "compare.sh took $(($(date +%s) - start)) s"

left_clean "full run"
[ -s "$out/compare.png" ] || fail "no PNG written"
[ "$(head -c 8 "$out/compare.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
  fail "compare.png is not a PNG"

/usr/bin/python3 - "$out/compare.json" <<'PY'
import json, sys

r = json.load(open(sys.argv[1]))
assert "error" not in r, f"the run reports an error: {r['error']}"
problems = []

def positive(where, value):
    if not isinstance(value, (int, float)) or not value > 0:
        problems.append(f"{where}: {value!r}")

for key in ("machine", "command", "date"):
    assert key in r, f"missing {key}"
for group in ("limit", "engine"):
    for op in ("write", "read"):
        positive(f"{group}.{op}", r.get(group, {}).get(op, {}).get("MBps"))
cases = ("dd_fsync", "dd_direct", "cp", "fio_psync", "fio_libaio", "python", "torch", "shards")
for case in cases:
    for target in ("nvswapfs", "local", "fuse2fs"):
        entry = r.get("clients", {}).get(case, {}).get(target)
        if entry is None:
            problems.append(f"clients.{case}.{target} missing")
        elif "unsupported" in entry and target != "nvswapfs":
            continue  # a foreign file system may refuse O_DIRECT; the run says so
        else:
            for op in ("write", "read"):
                positive(f"clients.{case}.{target}.{op}", entry.get(op, {}).get("MBps"))
# Every client run's CPU time per GB moved: the machine's, the client's, and
# the daemon's where there is one (not on local). Each can be 0 in a short run
# (the kernel counts the machine's and the daemon's in ticks), not in all.
daemon_seen = client_seen = 0.0
for case in cases:
    for target in ("nvswapfs", "local", "fuse2fs"):
        for op in ("write", "read"):
            x = r["clients"][case][target].get(op, {})
            if "MBps" not in x:
                continue
            cpu = x.get("cpu_s_per_GB", {})
            want = {"machine", "client"} | ({"daemon"} if target != "local" else set())
            runs = x.get("cpu_s_per_GB_runs", {})
            if set(cpu) != want or set(runs) != want or \
                    any(len(v) != len(x["runs_MBps"]) or min(v) < 0 for v in runs.values()):
                problems.append(f"clients.{case}.{target}.{op}.cpu_s_per_GB: {cpu!r} {runs!r}")
                continue
            client_seen += cpu["client"]
            if target == "nvswapfs":
                daemon_seen += cpu["daemon"]
if not (daemon_seen > 0 and client_seen > 0):
    problems.append(f"no CPU time counted: daemon {daemon_seen}, clients {client_seen}")
# Python's and torch's writes are also timed without their fsync: as fast as
# the whole or faster, and the fsync's seconds of every run.
for case, target in ((c, t) for c in ("python", "torch") for t in ("nvswapfs", "local", "fuse2fs")):
    w = r["clients"][case][target]["write"]
    where = f"clients.{case}.{target}.write"
    positive(f"{where}.writes_MBps", w.get("writes_MBps"))
    if len(w.get("flush_seconds", [])) != len(w["runs_MBps"]) or min(w["flush_seconds"]) < 0:
        problems.append(f"{where}.flush_seconds: {w.get('flush_seconds')!r}")
    elif not all(a >= b for a, b in zip(w["writes_runs_MBps"], w["runs_MBps"])):
        problems.append(f"{where}: writes alone slower than with the fsync: {w!r}")
shm = r.get("shm", {})
for part in ("limit", "engine"):
    for op in ("write", "read"):
        positive(f"shm.{part}.{op}", shm.get(part, {}).get(op, {}).get("MBps"))
for case in ("dd_fsync", "dd_direct", "fio_libaio"):
    for op in ("write", "read"):
        positive(f"shm.cases.{case}.{op}",
                 shm.get("cases", {}).get(case, {}).get("nvswapfs", {}).get(op, {}).get("MBps"))
# The limit is measured with fio's own buffers and on huge pages (reserved for
# the run, as root), and is the faster of the two.
for where, limit in (("limit", r.get("limit", {})), ("shm.limit", shm.get("limit", {}))):
    kinds = limit.get("buffers", {})
    if set(kinds) != {"4 KiB pages", "huge pages"}:
        problems.append(f"{where}.buffers: {sorted(kinds)!r}")
        continue
    for op in ("write", "read"):
        best = max(kinds[k][op]["MBps"] for k in kinds)
        if limit.get(op, {}).get("MBps") != best:
            problems.append(f"{where}.{op} is not the faster of {sorted(kinds)}")
# The limit's write ending in a flush, on the storage only (a flush of /dev/shm
# means nothing).
positive("limit.flushed", r.get("limit", {}).get("flushed", {}).get("MBps"))
if "flushed" in shm.get("limit", {}):
    problems.append("shm.limit.flushed: measured on /dev/shm")
for target in ("nvswapfs", "local", "fuse2fs"):
    for op in ("create", "stat", "unlink"):
        positive(f"meta.{target}.{op}", r.get("meta", {}).get(target, {}).get(op, {})
                 .get("files_per_s"))
for key in ("hwm_after_mount_MiB", "hwm_peak_MiB", "write_MBps", "read_MBps"):
    positive(f"rss.{key}", r.get("rss", {}).get(key))
cold = r.get("cold", {})
positive("cold.mount_ms", cold.get("mount_ms"))
if len(cold.get("mount_ms_runs", [])) != 3:
    problems.append(f"cold.mount_ms_runs: {cold.get('mount_ms_runs')!r}")
if cold.get("files") != 2000:
    problems.append(f"cold.files: {cold.get('files')!r}")
# The targets, checked against this run's own figures: every client case that
# both sides ran against local and fuse2fs, the limit's cases, the memory-backed
# image, RSS, metadata and the cold mount; each verdict as its figures say.
checks = r.get("against_targets", [])
seen = {(c.get("case"), c.get("op"), c["what"]) for c in checks}
wanted = {("dd_fsync", "read", "÷limit"), ("dd_direct", "write", "÷limit"),
          ("cp", "write", "÷limit"), ("python", "write", "÷limit"), (None, None, "peak RSS"),
          (None, None, "creates ÷fuse2fs"), (None, None, "cold mount of 2000 files")}
wanted |= {("fio_libaio", op, "on /dev/shm") for op in ("write", "read")}
for case in cases:
    for op in ("write", "read"):
        for ref in ("local", "fuse2fs"):
            both = [r["clients"][case][t].get(op, {}).get("MBps") for t in ("nvswapfs", ref)]
            if all(both):
                wanted.add((case, op, f"÷{ref}"))
if wanted - seen:
    problems.append(f"against_targets lacks {sorted(wanted - seen, key=str)}")
for c in checks:
    if c["met"] != (c["value"] <= c["need"] if c["most"] else c["value"] >= c["need"]):
        problems.append(f"against_targets: a wrong verdict {c!r}")
    # Above the limit only when missed, and only when the rate it needed (the
    # reference's times the ratio) is more than the fastest fio of the case.
    if "above_limit" in c:
        a, case = c["above_limit"], r["clients"].get(c.get("case"), {})
        ref = case.get(c["what"][1:], {}).get(c.get("op"), {}).get("MBps")
        fio = [r["limit"][c["op"]]["MBps"],
               case["nvswapfs"].get("limit_beside", {}).get(c["op"], {}).get("MBps", 0)]
        if (c["met"] or not ref or abs(a["need_MBps"] - c["need"] * ref) > 1e-6 * ref
                or a["limit_MBps"] != max(fio) or a["need_MBps"] <= a["limit_MBps"]):
            problems.append(f"against_targets: a wrong above_limit {c!r}")
assert not problems, "missing or non-positive results:\n  " + "\n  ".join(problems)
print("compare smoke test: every case present, all rates positive, every target checked")
PY

# The fuse module's wake_here, on kernels that have it: shown in the header,
# set for a run by --fuse-wake-here (the null run below flips it) and put back
# at exit. On a kernel without it the option is refused before anything runs.
# The variant target (below, with the null run) sets it back to what it was for
# each of its own runs, and the run's setting after each.
wake=/sys/module/fuse/parameters/wake_here
wake_was="" wake_set="" wake_args=()
if [ -e "$wake" ]; then
  wake_was=$(cat "$wake")
  wake_set=Y
  [ "$wake_was" = Y ] && wake_set=N
  wake_args=(--fuse-wake-here "$wake_set" --variant-wake-here "$wake_was")
else
  for opt in --fuse-wake-here --variant-wake-here; do
    if msg=$("$compare" --bin "$bin" --dir "$scratch" $opt Y 2>&1); then
      fail "compare.sh took $opt on a kernel without the parameter"
    fi
    grep -q "fuse module has no such parameter" <<<"$msg" ||
      fail "no clear message for $opt without the parameter: $msg"
    left_clean "refused $opt run"
  done
fi
if msg=$("$compare" --bin "$bin" --dir "$scratch" --only clients,variant 2>&1); then
  fail "compare.sh took the variant target with nothing to change"
fi
grep -q "the variant target needs --variant-options and/or --variant-wake-here" <<<"$msg" ||
  fail "no clear message for a variant with nothing to change: $msg"

if msg=$("$compare" --bin "$bin" --dir "$scratch" --cases dd_fsync,dd 2>&1); then
  fail "compare.sh took --cases dd"
fi
grep -q -- "--cases: unknown dd (choose from dd_fsync," <<<"$msg" ||
  fail "no clear message for an unknown case: $msg"

# The null target (only when named): nvswapfs-null-fuse mounted beside
# nvswapfs for the client cases, then unmounted like the rest. It keeps no
# directories, so the metadata cases leave it out and run on nvswapfs. The
# variant, a second nvswapfs mount with another read-ahead window, runs in
# turn with them in both groups. All client cases but one (--cases); on null,
# only torch's write (its read would parse what null never kept).
"$compare" --bin "$bin" --dir "$scratch" --size 32M --files 200 --only clients,meta,nvswapfs,null \
  --cases python,dd_fsync,dd_direct,cp,fio_psync,torch,shards --variant-options read_ahead=4M \
  "${wake_args[@]}" \
  --json "$out/null.json" --plot "$out/null.png" >"$out/null.txt" ||
  fail "compare.sh --only null exited $?: $(tail -20 "$out/null.txt")"
left_clean "null run"
clients_head="| case | nvswapfs MB/s | ÷limit | variant MB/s | ÷limit | null MB/s | ÷limit |"
for head in "^$clients_head variant÷nvswapfs | nvswapfs÷null |$" \
  "^| case | nvswapfs | variant | null | variant÷nvswapfs | nvswapfs÷null |$" \
  "^| operation | nvswapfs files/s | variant files/s | variant÷nvswapfs |$"; do
  grep -q "$head" "$out/null.txt" || fail "no table headed $head: $(grep '^| ' "$out/null.txt")"
done
if [ -n "$wake_set" ]; then
  [ "$(cat "$wake")" = "$wake_was" ] ||
    fail "wake_here is $(cat "$wake") after a run with --fuse-wake-here $wake_set, was $wake_was"
  grep -q "^fuse:    wake_here $wake_set (set by --fuse-wake-here)$" "$out/null.txt" ||
    fail "the header does not show wake_here $wake_set: $(head -12 "$out/null.txt")"
  variant_said="variant: nvswapfs mounted with -o read_ahead=4M, the fuse module's wake_here"
  storage="; the fuse module's wake_here $wake_set; $variant_said $wake_was for its runs"
  grep -q "^Storage: .*$storage\.$" "$out/null.txt" ||
    fail "the table's storage line does not show wake_here $wake_set and the variant's" \
      "$wake_was: $(grep ^Storage "$out/null.txt")"
fi
/usr/bin/python3 - "$out/null.json" "$wake_set" "$wake_was" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
wake_set, wake_was = sys.argv[2] or None, sys.argv[3] or None
assert r["machine"]["fuse_wake_here"] == wake_set, r["machine"]
assert r.get("fuse_wake_here_was") == wake_was, r.get("fuse_wake_here_was")
assert r["targets"] == ["nvswapfs", "variant", "null"], r["targets"]
# the cases asked for, in the usual order
assert list(r["clients"]) == ["dd_fsync", "dd_direct", "cp", "fio_psync", "python", "torch",
                              "shards"], r["clients"]
assert r["clients"]["torch"]["null"]["read"] == {"unsupported": "null keeps nothing to parse"}, \
    r["clients"]["torch"]["null"]
for case, entry in r["clients"].items():
    for target in ("null", "variant"):
        for op in ("write", "read"):
            if (case, target, op) == ("torch", "null", "read"):
                continue
            rate = entry.get(target, {}).get(op, {}).get("MBps")
            assert isinstance(rate, (int, float)) and rate > 0, \
                f"clients.{case}.{target}.{op}: {rate!r}"
assert "error" not in r, f"the run reports an error: {r['error']}"
assert list(r["meta"]) == ["nvswapfs", "variant"], list(r["meta"])
assert any("null is left out" in n for n in r["notes"]), r["notes"]
# The variant was mounted with its options on top of the defaults, and its
# mount took the read-ahead window they ask for.
mounts = r["mounts"]
assert mounts["variant"] == {"options": "read_ahead=4M", "read_ahead_kb": 4096}, mounts
assert mounts["nvswapfs"] == {"options": "", "read_ahead_kb": 16384}, mounts
v = r["variant"]
assert v["options"] == "read_ahead=4M" and v["fuse_wake_here"] == wake_was, v
if wake_set:
    # Every run of the variant (7 client cases x write and read, one metadata
    # round) had its own setting; every other run had the run's.
    seen = v["fuse_wake_here_seen"]
    assert seen["variant"] == [wake_was] * 15, seen
    for t in ("nvswapfs", "null"):
        assert set(seen[t]) == {wake_set}, (t, seen)
print("compare smoke test: the null target ran the client cases asked for, and not the metadata "
      "ones; the variant ran both with its own settings")
PY
# The ceiling group (only when named): fio alone, the client on null alone and
# with fio beside it, then on local and nvswapfs, and fio alone again; a
# positive rate for each, and nothing left behind. With --prefault, memory is
# touched before each read on null (none before a write). Python's writes are
# divided by the ceiling with and without their fsync.
"$compare" --bin "$bin" --dir "$scratch" --size 32M --only ceiling --ceiling-seconds 6 --prefault \
  --ceiling-rates 200 --ceiling python:write,dd_fsync:read \
  --json "$out/ceiling.json" --plot "$out/ceiling.png" >"$out/ceiling.txt" ||
  fail "compare.sh --only ceiling exited $?: $(tail -20 "$out/ceiling.txt")"
left_clean "ceiling run"
grep -q "^| python 64 KiB writes + fsync | 200 | 200 |" "$out/ceiling.txt" ||
  fail "no row for the write beside fio at 200 MB/s: $(cat "$out/ceiling.txt")"
row="^\| python 64 KiB writes \+ fsync \| nvswapfs, the writes before the fsync"
grep -Eq "$row \([0-9.]+ s\): [0-9.]+× the ceiling \|" "$out/ceiling.txt" ||
  fail "no row for nvswapfs's writes before the fsync: $(cat "$out/ceiling.txt")"
grep -Eq "^\| dd bs=1M \(read\) \| nvswapfs, alone: [0-9.]+× the ceiling \|" "$out/ceiling.txt" ||
  fail "no row for nvswapfs against the ceiling: $(cat "$out/ceiling.txt")"
/usr/bin/python3 - "$out/ceiling.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert "error" not in r, f"the run reports an error: {r['error']}"
assert r["groups"] == ["ceiling"], r["groups"]
got = [(c["case"], c["op"]) for c in r["ceiling"]]
assert got == [("python", "write"), ("dd_fsync", "read")], got
for c in r["ceiling"]:
    where = f"{c['case']} {c['op']}"
    windows = [c["alone_first"], c["alone_last"]] + c["beside"]
    assert [w["asked"] for w in c["beside"]] == [200], c["beside"]
    assert c["beside"][0]["fio_MBps"] > 0, where
    for w in windows:
        assert w["MBps"] > 0 and len(w["runs_MBps"]) >= 1, (where, w)
    assert c["local"]["MBps"] > 0 and c["fio_alone_MBps"] > 0, where
    runs = c["fio_alone_runs_MBps"]  # before and after
    assert len(runs) == 2 and min(runs) > 0 and c["fio_alone_MBps"] == max(runs), (where, runs)
    both = [min(w["MBps"], w["fio_MBps"]) for w in c["beside"]]
    assert c["ceiling_MBps"] == max(both), (where, c["ceiling_MBps"], both)
    # nvswapfs (a default target) is measured in the same minutes, to divide by the ceiling
    assert c["nvswapfs"]["MBps"] > 0 and len(c["nvswapfs"]["runs_MBps"]) == 1, where
    for t in ("local", "nvswapfs"):
        if c["op"] == "write":
            assert c[t]["writes_MBps"] >= c[t]["MBps"] > 0, (where, t, c[t])
            assert len(c[t]["flush_seconds"]) == 1 and c[t]["flush_seconds"][0] >= 0, (where, t)
        else:
            assert "writes_MBps" not in c[t], (where, t, c[t])
print("compare smoke test: the ceiling group measured null alone, beside fio, local and fio")
PY
if msg=$("$compare" --bin "$bin" --dir "$scratch" --only ceiling --ceiling dd_direct:wrte 2>&1); then
  fail "compare.sh took --ceiling dd_direct:wrte"
fi
grep -q "'dd_direct:wrte' is not CASE:write or CASE:read" <<<"$msg" ||
  fail "no clear message for a bad --ceiling case: $msg"
# torch.load parses what torch.save left, which null does not keep: the ceiling
# group, which runs its clients on null, has no torch case.
if msg=$("$compare" --bin "$bin" --dir "$scratch" --only ceiling --ceiling torch:write 2>&1); then
  fail "compare.sh took --ceiling torch:write"
fi
grep -q -- "--ceiling: 'torch:write': the ceiling runs its clients on null, which keeps nothing" \
  <<<"$msg" ||
  fail "no clear message for a torch ceiling: $msg"
# Halt polling is reported, and --halt-poll offered, only where the haltpoll
# cpuidle driver is in use: its module's parameter may exist and do nothing.
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 - "$(dirname "$compare")" "$out" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[1])
import compare
driver, param = os.path.join(sys.argv[2], "driver"), os.path.join(sys.argv[2], "param")
compare.CPUIDLE_DRIVER, compare.HALT_POLL = driver, param
with open(param, "w") as f:
    f.write("200000\n")
for name, polls in (("none", None), ("haltpoll", 200000), ("acpi_idle", None)):
    with open(driver, "w") as f:
        f.write(name + "\n")
    assert compare.read_cpuidle_driver() == name, compare.read_cpuidle_driver()
    assert compare.read_halt_poll() == polls, (name, compare.read_halt_poll())
os.unlink(driver)
assert compare.read_cpuidle_driver() is None and compare.read_halt_poll() is None
print("compare smoke test: halt polling read only under the haltpoll driver")
PY
# The CPU accounting counts what it says: a "daemon" that spins for a second
# of CPU while the measured "client" spins for half of one, then a second idle.
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 - "$(dirname "$compare")" <<'PY'
import os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
import compare
spin = "import time\nend = time.process_time() + {}\nwhile time.process_time() < end: pass\n"
daemon = subprocess.Popen(["/usr/bin/python3", "-c", "import sys; sys.stdin.readline()\n" +
                           spin.format(1.0) + "print('spun', flush=True); sys.stdin.readline()"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
try:
    time.sleep(0.5)  # the interpreter started before the meter does
    start = time.monotonic()
    with compare.CpuMeter(daemon.pid) as m:
        daemon.stdin.write("go\n")
        daemon.stdin.flush()
        subprocess.run(["/usr/bin/python3", "-c", spin.format(0.5)], check=True)
        assert daemon.stdout.readline() == "spun\n"
        time.sleep(1)  # idle: not counted
    wall = time.monotonic() - start
finally:
    daemon.kill()
    daemon.wait()
got = m.seconds
assert 0.5 <= got["client"] <= 0.7, got  # the spin and an interpreter's start
assert 0.95 <= got["daemon"] <= 1.1, got  # counted in ticks of 10 ms
# The machine's holds both, and not the idle second (a little for the rest of
# the machine).
assert got["client"] + got["daemon"] - 0.05 <= got["machine"] <= got["client"] + got["daemon"] + \
    0.5, (got, wall)
print(f"compare smoke test: CPU accounting counted {got}")
PY
echo "compare smoke test: all checks passed"
