#!/usr/bin/python3
"""Sequential I/O, metadata, memory and mount time of nvswapfs next to its references.

On one backing storage (the file system that holds --dir), in one run:

  limit     fio, libaio, direct=1, bs=1M, iodepth=32 on a written-out image file,
            with fio's own buffers and with buffers on huge pages (--iomem=shmhuge,
            24 pages reserved for the run): the faster is the most that storage
            gives, and every figure on it is divided by that. The same write
            ending in a flush (end_fsync=1) is what it gives a writer that
            waits for durability at the end: where the storage has a volatile
            cache (a virtual disk whose host caches it, say), the flush waits
            for that cache to reach the disk, and the writes that end in fsync
            or sync are also divided by it. It is a reference, not a bound: a
            slower writer leaves the cache time to drain as it goes
  engine    nvswapfs-bench: the nvswapfs I/O engine alone on an image file; with
            the limit group, on the limit's file, taking turns with fio
  clients   dd (conv=fsync, and O_DIRECT), cp, fio psync, fio libaio direct,
            Python, PyTorch's torch.save and torch.load of a tensor, and four
            Python threads at once on a quarter each (a sharded checkpoint),
            writing and then reading a --size file, on three targets:
              nvswapfs  an nvswapfs image file in --dir, mounted
              local     a plain directory in --dir (the kernel's own file system)
              fuse2fs   an ext4 image file in --dir, mounted with fuse2fs
              null      (only with --only null; not in meta) nvswapfs-null-fuse, a FUSE
                        file system that keeps nothing (writes dropped,
                        reads zeros) with nvswapfs's connection settings:
                        the ceiling of any FUSE daemon on this machine
              variant   (with --variant-options and/or --variant-wake-here; in
                        clients and meta) a second nvswapfs mount with other
                        options, or the fuse module's wake_here set otherwise
                        for its runs: a setting against the defaults, in turn
                        with them in the same minutes
  shm       the limit, the engine and the nvswapfs image on /dev/shm (memory):
            what is left is the software's own overhead
  meta      create + 4 KiB write + close, stat, unlink of --files files
  rss       the daemon's peak resident memory while --rss-size is written and
            read back through the mount
  cold      the time `nvswapfs IMAGE MOUNTPOINT` takes to return on a volume
            holding --cold-files files, with a cold page cache
  ceiling   (only with --only ceiling) the most any FUSE daemon that keeps its
            data could reach here: a client case (--ceiling) runs again and
            again on nvswapfs-null-fuse while fio (as the limit, on huge pages,
            capped at each of --ceiling-rates) keeps the storage busy beside it
            on a file of its own, as such a daemon would. A daemon cannot go
            faster than a rate both sides reach at the same time. References:
            fio alone before and after, the client on the local directory, and
            on nvswapfs (unless --skip nvswapfs), divided by the ceiling

Every image file whose speed is measured (the limit's, nvswapfs's, fuse2fs's) is
written out whole before its volume is made, as a device would be: the first write
to a block of an image file costs the file system holding it an allocation, which
halves what a fresh image takes in here (see write_out).

The page cache is dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before
every measured phase, so every read comes from the storage. In a virtual
machine whose host takes back the memory a guest frees (free page reporting,
ballooning), the pages the cache is refilled with then cost a host fault each
on first touch; --prefault touches that much memory right after the drop, so
that every target reads into memory that is really there, as on bare metal.
In a guest whose idle CPUs halt at once (no cpuidle driver, or
cpuidle-haltpoll with guest_halt_poll_ns 0), every wake-up is a round trip
through the host, which a client making one synchronous request at a time
pays twice per request; with the haltpoll driver, --halt-poll NS runs with the
kernel's usual polling instead, to show how much of a figure that is. Some
kernels' fuse module has a wake_here parameter that, when set, runs the daemon's
thread taking a request on the requesting client's CPU, and the client woken by
its reply on the daemon's; the header shows it where it exists, and
--fuse-wake-here Y|N sets it for the run (every FUSE target alike). MB/s
means 10^6 bytes per second. Each client run also records the CPU time it cost
per GB moved: the whole machine's busy time (every process and the kernel's own
work), the client's, and the daemon's; a table shows them beside the rates.
Run as root: tools/bench/compare.sh [options]
(it installs what is missing and runs this file with /usr/bin/python3).
"""

import argparse
import atexit
import contextlib
import ctypes
import datetime
import errno
import json
import mmap
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
MB = 1e6  # every rate printed is in MB/s = 10^6 bytes per second

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GROUPS = ["limit", "engine", "clients", "shm", "meta", "rss", "cold", "ceiling"]
DEFAULT_GROUPS = GROUPS[:-1]  # the ceiling only when named
TARGETS = ["nvswapfs", "variant", "local", "fuse2fs", "null"]
DEFAULT_TARGETS = ["nvswapfs", "local", "fuse2fs"]  # null only when named; variant when set
SHM_CAP = 2 * GIB       # the memory-backed cases move at most this much
SHM_BUDGET = 6 * GIB    # what this script may keep in /dev/shm at once, roughly
COLD_MOUNTS = 3         # cold mounts timed; the median is reported
PER_DIR = 1000          # files per directory of the cold-mount volume
NVSWAPFS_READ_AHEAD_KB = 16 * 1024  # nvswapfs's read_ahead=16M, given to the null mount too
# Client writes that end in a flush.
FLUSHED_WRITES = ("dd_fsync", "cp", "fio_psync", "python", "torch", "shards")
CASE_KEYS = ("dd_fsync", "dd_direct", "cp", "fio_psync", "fio_libaio", "python",
             "torch", "shards")  # client_cases()
# Cases whose read parses what the write left: null keeps nothing, so on null only
# their write runs.
PARSING_READS = ("torch",)
SHARDS = 4  # the shards case's files, each written and read by a thread of its own
# Cases the ceiling group cannot run, and why.
NO_CEILING = {
    "torch": "the ceiling runs its clients on null, which keeps nothing for torch's read to "
             "parse",
    "shards": "the ceiling evicts one file between runs, and shards makes four",
}
CEILING_CASES = "dd_direct:write,dd_direct:read,python:write"
CEILING_RATES = "1000,2000,3000,max"
# The performance targets (README, *Performance*), each checked against references measured in
# the same run. Through the mount, as a fraction of the limit: (case, op) -> the least.
LIMIT_TARGETS = {("dd_fsync", "write"): 0.9, ("dd_fsync", "read"): 0.9,
                 ("dd_direct", "write"): 0.9, ("dd_direct", "read"): 0.9,
                 ("fio_psync", "write"): 0.9, ("fio_psync", "read"): 0.9,
                 ("cp", "write"): 0.8, ("cp", "read"): 0.8, ("python", "write"): 0.8}
LOCAL_TARGET = 1.0     # every client case, ÷ the local file system
FUSE2FS_TARGET = 3.0   # every client case, ÷ fuse2fs
SHM_TARGET_MBPS = 2000  # every case on the memory-backed image, write and read
RSS_TARGET_MIB = 256   # the daemon's peak RSS with default options
COLD_TARGET_MS = 1000  # mounting the cold-files volume


class Failure(Exception):
    """A measurement that could not be made; the message names the case."""


# ---------------------------------------------------------------- helpers


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 512M, 2G)")
    scale = {"": 1, "k": KIB, "m": MIB, "g": GIB, "t": 1 << 40}[m.group(2).lower()]
    value = int(float(m.group(1)) * scale)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return value


def human(nbytes):
    for unit, scale in (("TiB", 1 << 40), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if nbytes >= scale:
            return f"{round(nbytes / scale, 2):g} {unit}"
    return f"{nbytes} B"


def fmt_rate(x):
    if x is None:
        return "–"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 1 else f"{x:.3f}"


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def median(values):
    return statistics.median(values) if values else None


def say(*parts):
    print(*parts, flush=True)


def cmdline(cmd):
    return " ".join(shlex.quote(str(c)) for c in cmd)


def command_timeout(nbytes=0):
    """Generous: only there so that a hung file system cannot hang the run."""
    return 300 + nbytes / (2 * MB)


def run(cmd, case, nbytes=0, check=True, env=None):
    """Runs cmd; a non-zero exit raises Failure naming the case and the command."""
    cmd = [str(c) for c in cmd]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=command_timeout(nbytes), env=env)
    except subprocess.TimeoutExpired:
        raise Failure(f"{case}: `{cmdline(cmd)}` did not finish within "
                      f"{command_timeout(nbytes):.0f} s")
    except OSError as e:
        raise Failure(f"{case}: cannot run `{cmdline(cmd)}`: {e}")
    if check and p.returncode != 0:
        tail = "\n".join((p.stderr.strip() or p.stdout.strip()).splitlines()[-15:])
        raise Failure(f"{case}: `{cmdline(cmd)}` exited {p.returncode}" +
                      (f":\n{tail}" if tail else ""))
    return p


def timed(cmd, case, nbytes=0):
    start = time.monotonic()
    p = run(cmd, case, nbytes)
    return time.monotonic() - start, p


def mounted_at(path):
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 1 and fields[1].replace("\\040", " ") == path:
                return True
    return False


def mounts_under(path):
    path = os.path.realpath(path).rstrip("/") + "/"
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 1:
                mp = fields[1].replace("\\040", " ")
                if (mp + "/").startswith(path):
                    found.append(mp)
    return found


def pids_with_arg(arg, programs):
    """Processes whose command line holds arg and whose program is one of programs."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) in programs and arg in argv[1:]:
            found.append(int(entry))
    return found


def proc_stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (which may hold spaces and
    parentheses): state first, then ppid, ... (proc(5)'s field 3 is index 0)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def alive(pid):
    try:
        return proc_stat_fields(pid)[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def proc_status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise Failure(f"no {field} in /proc/{pid}/status")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds():
    """CPU time the machine has spent busy since boot, on all CPUs: user (guests
    included), nice, system, irq and softirq; not idle, iowait or steal."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq = map(int, fields[1:8])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def process_cpu_seconds(pid):
    """User and system time of process `pid`, all its threads, those gone included."""
    fields = proc_stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_cpu_seconds():
    """User and system time of this script's children that have been waited for."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class CpuMeter:
    """The CPU time a client run costs: `with CpuMeter(pid) as m: ...`, then
    m.seconds = {"machine": ..., "client": ..., "daemon": ...} ("daemon" only
    with a daemon's pid). The client is every process this script ran and
    waited for meanwhile; the machine's figure holds the client's, the daemon's
    and what the kernel did on nobody's account (writeback, interrupts)."""

    def __init__(self, daemon_pid=None):
        self.pid = daemon_pid
        self.seconds = {}

    def _sample(self):
        daemon = process_cpu_seconds(self.pid) if self.pid is not None else None
        return machine_busy_seconds(), children_cpu_seconds(), daemon

    def __enter__(self):
        self.start = self._sample()
        return self

    def __exit__(self, kind, *_):
        if kind is None:
            machine, client, daemon = (None if b is None else b - a
                                       for a, b in zip(self.start, self._sample()))
            self.seconds = {"machine": machine, "client": client}
            if daemon is not None:
                self.seconds["daemon"] = daemon
        return False


def fio_job(text, case):
    """The one job of fio's JSON output; an error fio reports for it raises Failure."""
    start = text.find("{")
    if start < 0:
        raise Failure(f"{case}: fio printed no JSON:\n{text[-2000:]}")
    try:
        job = json.loads(text[start:])["jobs"][0]
    except (ValueError, KeyError, IndexError) as e:
        raise Failure(f"{case}: cannot parse fio's JSON: {e}")
    if job.get("error"):
        raise Failure(f"{case}: fio reports error {job['error']}")
    return job


_LIBC = ctypes.CDLL(None, use_errno=True)


def sync_directory(path):
    """syncfs() of the file system holding path, then fsync() of the directory itself
    (a FUSE file system sees the latter: FUSE_FSYNCDIR)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _LIBC.syncfs(fd) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"syncfs: {os.strerror(e)}")
        os.fsync(fd)
    finally:
        os.close(fd)


def write_out(path, nbytes, case):
    """Creates `path` as `nbytes` of zeros with every block written once, so that the
    file system holding it has allocated them all before anything is timed. The first
    write to a block of an image file costs that file system an allocation (sparse
    space) or an extent conversion (fallocate'd space): ext4 on this machine's disk took
    1 MiB O_DIRECT writes through the mount at 1.1-1.2 GB/s into a new image and at
    1.7-2.1 GB/s into a written one. A device has no such cost, so the limit's file and
    every image meet the storage written, alike. Writes O_DIRECT where the file system
    allows it, so that the page cache is not filled with zeros."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        try:
            fd = os.open(path, flags | os.O_DIRECT, 0o600)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            fd = os.open(path, flags, 0o600)
        try:
            chunk = mmap.mmap(-1, 4 * MIB)  # zeros, page-aligned as O_DIRECT wants
            whole = nbytes - nbytes % (4 * KIB)
            done = 0
            while done < whole:
                done += os.write(fd, memoryview(chunk)[:min(len(chunk), whole - done)])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.truncate(path, nbytes)  # a tail shorter than a page stays a hole
    except OSError as e:
        raise Failure(f"{case}: cannot write out {path} ({human(nbytes)}): {e.strerror}")


def meminfo_kib(field):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


HALT_POLL = "/sys/module/haltpoll/parameters/guest_halt_poll_ns"
CPUIDLE_DRIVER = "/sys/devices/system/cpu/cpuidle/current_driver"


def read_cpuidle_driver():
    """The cpuidle driver in use ('none': an idle CPU halts at once), or None if unknown."""
    try:
        with open(CPUIDLE_DRIVER) as f:
            return f.read().strip()
    except OSError:
        return None


def read_halt_poll():
    """How long an idle CPU of a haltpoll guest polls before halting, in ns (None: that
    driver is not in use; the module's parameter may exist and do nothing). Each halt is an
    exit to the host, and a wake-up from it costs tens of µs."""
    if read_cpuidle_driver() != "haltpoll":
        return None
    try:
        with open(HALT_POLL) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def write_halt_poll(ns):
    with open(HALT_POLL, "w") as f:
        f.write(f"{ns}\n")


FUSE_WAKE_HERE = "/sys/module/fuse/parameters/wake_here"
NO_WAKE_HERE = f"this kernel's fuse module has no such parameter ({FUSE_WAKE_HERE} does not exist)"


def read_fuse_wake_here():
    """The fuse module's wake_here parameter, 'Y' or 'N' (None: this kernel has none).
    Not in every kernel: where it is set, a request wakes the daemon's reader on the
    client's CPU and the reply wakes the client on the daemon's, so one synchronous
    request need not wake a second, possibly halted, CPU twice."""
    try:
        with open(FUSE_WAKE_HERE) as f:
            return f.read().strip()
    except OSError:
        return None


def write_fuse_wake_here(value):
    with open(FUSE_WAKE_HERE, "w") as f:
        f.write(f"{value}\n")


def wake_here_said(machine):
    """The fuse module's wake_here for a table's storage line, where the kernel has it."""
    value = machine.get("fuse_wake_here")
    return "" if value is None else f"; the fuse module's wake_here {value}"


def read_ahead_path(mnt):
    """The sysfs file of the kernel's read-ahead window for the file system mounted at `mnt`."""
    st = os.stat(mnt)
    return f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb"


def read_ahead_kb(mnt):
    """The read-ahead window, in KiB, of the mount at `mnt` (None if unreadable)."""
    try:
        with open(read_ahead_path(mnt)) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"
# Huge pages reserved for the limit's fio buffers (--iomem=shmhuge): iodepth 32
# x 1 MiB is 16 pages of 2 MiB; the rest is room for alignment.
LIMIT_HUGEPAGES = 24


def read_nr_hugepages():
    with open(NR_HUGEPAGES) as f:
        return int(f.read())


def write_nr_hugepages(n):
    with open(NR_HUGEPAGES, "w") as f:
        f.write(f"{n}\n")


# The Python client: runs in its own /usr/bin/python3 process, writes or
# reads the file in 64 KiB chunks through an unbuffered file object
# (buffering=0: one write()/read() system call per chunk), fsyncs before
# closing a written file, and prints the seconds from open to close, the
# bytes moved and, for a write, the seconds its fsync and close took.
PY_CLIENT = r"""
import os, sys, time
path, op, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
CHUNK = 64 * 1024
moved = 0
if op == "write":
    data = memoryview(os.urandom(CHUNK))
    start = time.monotonic()
    with open(path, "wb", buffering=0) as f:
        while moved < size:
            piece = data[: min(CHUNK, size - moved)]
            done = 0
            while done < len(piece):
                n = f.write(piece[done:])
                if not n:
                    sys.exit("write returned 0")
                done += n
            moved += done
        wrote = time.monotonic()
        os.fsync(f.fileno())
    flush = time.monotonic() - wrote
else:
    buf = memoryview(bytearray(CHUNK))
    start = time.monotonic()
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            moved += n
    flush = None
print(f"{time.monotonic() - start:.9f} {moved}" + ("" if flush is None else f" {flush:.9f}"))
"""

# The PyTorch client, what a training job does with a checkpoint: torch.save of
# one int32 tensor of the file's size (a multiple of 1 MiB; its values 0, 1, 2,
# ..., made before the clock starts), then an fsync of the file through a new
# open, as `sync FILE` does; torch.load of it into memory, its values checked
# after the clock stops. Its output is the Python client's.
TORCH_CLIENT = r"""
import os, sys, time
import torch
path, op, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
if op == "write":
    tensor = torch.arange(size // 4, dtype=torch.int32)
    start = time.monotonic()
    torch.save({"tensor": tensor}, path)
    saved = time.monotonic()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    end = time.monotonic()
    print(f"{end - start:.9f} {tensor.numel() * 4} {end - saved:.9f}")
else:
    start = time.monotonic()
    tensor = torch.load(path, map_location="cpu")["tensor"]
    seconds = time.monotonic() - start
    if tensor.dtype != torch.int32 or not torch.equal(
            tensor, torch.arange(tensor.numel(), dtype=torch.int32)):
        sys.exit("torch.load gave back a tensor other than the one torch.save wrote")
    print(f"{seconds:.9f} {tensor.numel() * 4}")
"""


# The sharded client, what the ranks of a data-parallel job do with a
# checkpoint: SHARDS threads at once, each writing (1 MiB write() calls from
# one random MiB, then fsync) or reading (1 MiB readinto() calls) a file of
# its own, PATH.0, PATH.1, ..., a quarter of the size each. Prints the
# seconds from the first thread's start to the last one's end and the bytes
# moved.
SHARDS_CLIENT = r"""
import os, sys, threading, time
path, op, size, shards = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
CHUNK = 1 << 20
each = size // shards
moved, errors = {}, []

def write(name):
    data = memoryview(os.urandom(CHUNK))
    with open(name, "wb", buffering=0) as f:
        done = 0
        while done < each:
            n = f.write(data[: min(CHUNK, each - done)])
            if not n:
                raise OSError(f"write returned 0 at {done}")
            done += n
        os.fsync(f.fileno())
    moved[name] = done

def read(name):
    buf = memoryview(bytearray(CHUNK))
    done = 0
    with open(name, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            done += n
    moved[name] = done

def run(name):
    try:
        (write if op == "write" else read)(name)
    except OSError as e:
        errors.append(f"{name}: {e}")

threads = [threading.Thread(target=run, args=(f"{path}.{i}",)) for i in range(shards)]
start = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
seconds = time.monotonic() - start
if errors:
    sys.exit("; ".join(errors))
print(f"{seconds:.9f} {sum(moved.values())}")
"""


# ---------------------------------------------------------------- the run


class Compare:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin)
        self.size = args.size
        self.shm_size = min(args.size, SHM_CAP)
        self.notes = []
        self.mounts = []          # live mounts, unmounted in reverse order on exit
        self.cleaned = False
        self.dir = os.path.abspath(args.dir)
        self.made_dir = False
        self.shm_dir = None
        self.results = {
            "command": cmdline([sys.executable] + sys.argv),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "units": "MB/s = 10^6 bytes/s; files/s; MiB; ms",
            "size": self.size,
            "shm_size": self.shm_size,
            "files": args.files,
            "rss_size": args.rss_size,
            "cold_files": args.cold_files,
            "repeat": args.repeat,
            "prefault": args.prefault,
            "halt_poll": args.halt_poll,
            "fuse_wake_here": args.fuse_wake_here,
            "options": args.options,
            "groups": args.groups,
            "targets": args.targets,
            "cases": args.cases,
            "notes": self.notes,
        }
        if "variant" in args.targets:
            self.results["variant"] = {"options": args.variant_options,
                                       "fuse_wake_here": args.variant_wake_here}
        self.run_wake_here = None  # the run's own wake_here, where the variant sets another
        self.can_drop = True
        self.restore_knobs = []  # (write, value) of settings changed, put back last first
        self.saved_hugepages = None
        self.limit_hugepages = False

    # ---------------------------------------------------------- set-up

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)
            say(f"note: {text}")

    def tool(self, name):
        return os.path.join(self.bin, name)

    def check_tools(self):
        needed = set()
        if "engine" in self.args.groups or "shm" in self.args.groups:
            needed.add("nvswapfs-bench")
        groups = set(self.args.groups)
        if ({"nvswapfs", "variant"} & set(self.args.targets) and
                {"clients", "meta", "ceiling"} & groups) or \
                {"shm", "rss", "cold"} & groups:
            needed |= {"nvswapfs", "mkfs.nvswapfs", "fsck.nvswapfs"}
        if "cold" in self.args.groups:
            needed.add("nvswapfs-scale-bench")
        missing = [t for t in sorted(needed) if not os.access(self.tool(t), os.X_OK)]
        if missing:
            raise Failure(f"set-up: {', '.join(missing)} not found in {self.bin} "
                          f"(build with scripts/build.sh release, or point --bin at the programs)")
        programs = ["fio", "dd", "cp", "sync", "cmp", "fusermount3", "df"]
        if "fuse2fs" in self.args.targets and {"clients", "meta"} & groups:
            programs += ["fuse2fs", "mkfs.ext4"]
        if ("null" in self.args.targets or "ceiling" in groups) and \
                not os.access(self.tool("nvswapfs-null-fuse"), os.X_OK):
            raise Failure(f"set-up: nvswapfs-null-fuse not found in {self.bin}")
        gone = [p for p in programs if shutil.which(p) is None]
        if gone:
            raise Failure(f"set-up: {', '.join(gone)} not installed (tools/bench/compare.sh "
                          f"installs what is missing)")
        if "clients" in groups and "torch" in self.args.cases:
            p = run(["/usr/bin/python3", "-c", "import torch"], "set-up", check=False)
            if p.returncode != 0:
                raise Failure("set-up: /usr/bin/python3 cannot import torch, which the torch "
                              "case needs (tools/bench/compare.sh installs python3-torch; or "
                              "leave the case out with --cases)")
        if os.geteuid() != 0:
            self.note("not running as root: mounting and dropping the page cache may fail")

    def make_dirs(self):
        if os.path.exists(self.dir):
            if not os.path.isdir(self.dir) or os.listdir(self.dir):
                raise Failure(f"set-up: {self.dir} exists and is not an empty directory; "
                              f"remove it or choose another --dir (this script deletes its --dir "
                              f"when it is done)")
        else:
            os.makedirs(self.dir)
        self.made_dir = True
        os.makedirs(os.path.join(self.dir, "local"))
        self.shm_dir = f"/dev/shm/nvswapfs-compare-{os.getpid()}"
        os.makedirs(self.shm_dir)

    def describe_machine(self):
        cpu = "unknown CPU"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        ram = meminfo_kib("MemTotal") * KIB
        source = run(["findmnt", "-no", "SOURCE,FSTYPE", "--target", self.dir], "machine",
                     check=False).stdout.split()
        device = source[0] if source else "?"
        fstype = source[1] if len(source) > 1 else "?"
        df = run(["df", "-h", self.dir], "machine").stdout.rstrip()
        df_shm = run(["df", "-h", "/dev/shm"], "machine").stdout.rstrip().splitlines()[-1]
        fio_version = run(["fio", "--version"], "machine").stdout.strip()
        machine = {
            "cpu": cpu,
            "nproc": os.cpu_count(),
            "ram_bytes": ram,
            "kernel": platform.release(),
            "device": device,
            "fstype": fstype,
            "df": df,
            "df_shm": df_shm,
            "fio": fio_version,
            "hostname": platform.node(),
            "cpuidle_driver": read_cpuidle_driver(),
            "guest_halt_poll_ns": read_halt_poll(),
            "fuse_wake_here": read_fuse_wake_here(),
        }
        self.results["machine"] = machine
        say(f"command: {self.results['command']}")
        say(f"date:    {self.results['date']}")
        say(f"machine: {cpu}, nproc {machine['nproc']}, {ram / GIB:.1f} GiB RAM, "
            f"kernel {machine['kernel']}, {machine['fio']}")
        if machine["guest_halt_poll_ns"] is not None:
            say(f"cpuidle: haltpoll, guest_halt_poll_ns {machine['guest_halt_poll_ns']}"
                f"{' (set by --halt-poll)' if self.args.halt_poll is not None else ''}")
        elif machine["cpuidle_driver"] is not None:
            say(f"cpuidle: driver {machine['cpuidle_driver']}"
                f"{' (an idle CPU halts at once)' if machine['cpuidle_driver'] == 'none' else ''}")
        if machine["fuse_wake_here"] is not None:
            say(f"fuse:    wake_here {machine['fuse_wake_here']}"
                f"{' (set by --fuse-wake-here)' if self.args.fuse_wake_here else ''}")
        say(f"storage: {self.dir} on {device} ({fstype})")
        for line in df.splitlines():
            say(f"  {line}")
        say(f"  {df_shm}")
        say(f"binaries: {self.bin}")
        say(f"size {human(self.size)} (memory-backed: {human(self.shm_size)}), files "
            f"{self.args.files}, rss-size {human(self.args.rss_size)}, cold-files "
            f"{self.args.cold_files}, repeat {self.args.repeat}"
            f"{', prefault' if self.args.prefault else ''}")
        groups = set(self.args.groups)
        if {"clients", "meta"} & groups:
            targets = ", ".join(self.args.targets)
        elif "ceiling" in groups:
            targets = "none; the ceiling group runs on null, the local directory" + \
                (" and nvswapfs" if "nvswapfs" in self.args.targets else "")
        else:
            targets = "none"
        say(f"groups: {', '.join(self.args.groups)}; targets: {targets}")
        if self.args.options:
            say(f"nvswapfs mounted with -o {self.args.options}")
        if "variant" in self.args.targets:
            say(f"variant: {self.variant_said()}")
        say("")

    def variant_said(self):
        """What the variant target changes, in words."""
        a = self.args
        parts = [f"nvswapfs mounted with -o {self.nvswapfs_options(a.variant_options)}"
                 if a.variant_options else "nvswapfs as mounted for the nvswapfs target"]
        if a.variant_wake_here:
            parts.append(f"the fuse module's wake_here {a.variant_wake_here} for its runs")
        return ", ".join(parts)

    def set_variant_wake_here(self):
        """The variant's wake_here is set before each of its runs and the run's own put back
        after; at exit, should a run stop inside one, the run's own is put back too."""
        value = read_fuse_wake_here()
        if value is None:
            raise Failure(f"--variant-wake-here: {NO_WAKE_HERE}")
        self.run_wake_here = value
        self.restore_knobs.append((write_fuse_wake_here, value))
        self.results["variant"]["fuse_wake_here_seen"] = {}

    @contextlib.contextmanager
    def settings_of(self, name):
        """Runs the body with target `name`'s kernel settings: the variant's wake_here for
        the variant, the run's own for the others. What was in force is recorded per target."""
        if self.run_wake_here is None:
            yield
            return
        value = self.args.variant_wake_here if name == "variant" else self.run_wake_here
        try:
            write_fuse_wake_here(value)
        except OSError as e:
            raise Failure(f"--variant-wake-here: cannot write {FUSE_WAKE_HERE}: {e.strerror}")
        seen = self.results["variant"]["fuse_wake_here_seen"]
        seen.setdefault(name, []).append(read_fuse_wake_here())
        try:
            yield
        finally:
            write_fuse_wake_here(self.run_wake_here)

    def set_knob(self, option, path, read, write, value, absent):
        """Sets a kernel setting for this run, to be put back at exit; returns what it was.
        `read` gives None where the setting does not apply, and the run is refused with
        `absent`."""
        was = read()
        if was is None:
            raise Failure(f"{option}: {absent}")
        try:
            write(value)
        except OSError as e:
            raise Failure(f"{option}: cannot write {path}: {e.strerror} (run as root)")
        self.restore_knobs.append((write, was))
        return was

    def set_halt_poll(self, ns):
        was = self.set_knob("--halt-poll", HALT_POLL, read_halt_poll, write_halt_poll, ns,
                            f"the cpuidle driver is {read_cpuidle_driver() or 'unknown'}, not "
                            f"haltpoll, so there is no polling to set ({HALT_POLL} does nothing "
                            f"then)")
        self.results["halt_poll_was"] = was
        self.note(f"guest_halt_poll_ns set from {was} to {ns} for this run (--halt-poll)")

    def set_fuse_wake_here(self, value):
        was = self.set_knob("--fuse-wake-here", FUSE_WAKE_HERE, read_fuse_wake_here,
                            write_fuse_wake_here, value, NO_WAKE_HERE)
        self.results["fuse_wake_here_was"] = was
        self.note(f"the fuse module's wake_here set from {was} to {value} for this run "
                  f"(--fuse-wake-here)")

    def reserve_hugepages(self):
        """Huge pages for the limit's fio buffers, given back at exit. From 4 KiB pages a 1 MiB
        O_DIRECT transfer is 256 segments, which a device taking fewer per request splits (a
        virtio disk takes 254): fio with its own buffers can understate the device."""
        try:
            was = read_nr_hugepages()
            write_nr_hugepages(was + LIMIT_HUGEPAGES)
            self.saved_hugepages = was
            got = read_nr_hugepages() - was
        except (OSError, ValueError) as e:
            self.note(f"no huge pages for the limit ({NR_HUGEPAGES}: {e}); fio uses its own "
                      f"buffers only")
            return
        if got < LIMIT_HUGEPAGES:
            self.note(f"only {got} of {LIMIT_HUGEPAGES} huge pages could be reserved; the limit "
                      f"uses fio's own buffers only")
            return
        self.limit_hugepages = True
        self.results["limit_hugepages"] = LIMIT_HUGEPAGES

    def check_space(self):
        st = os.statvfs(self.dir)
        free = st.f_bavail * st.f_frsize
        groups = set(self.args.groups)
        need = 0
        if "clients" in groups:
            # the images, written out whole, and one file at a time elsewhere
            images = {"nvswapfs": self.nvswapfs_image_size(), "variant": self.nvswapfs_image_size(),
                      "fuse2fs": self.fuse2fs_image_size()}
            need = max(need, sum(images.get(t, self.size) for t in self.args.targets)
                       + (self.size if "limit" in groups else 0))  # the limit beside
        if {"limit", "engine"} & groups:
            need = max(need, self.size)
        if "rss" in groups:
            need = max(need, self.args.rss_size)
        if "ceiling" in groups:
            # fio's file beside, the local reference, and nvswapfs's image
            need = max(need, 2 * self.size + (self.nvswapfs_image_size()
                                              if "nvswapfs" in self.args.targets else 0))
        need += GIB
        if free < need:
            raise Failure(f"set-up: {self.dir} has {human(free)} free, this run needs about "
                          f"{human(need)}; use a smaller --size/--rss-size or another --dir")
        if "shm" in groups:
            shm = os.statvfs("/dev/shm")
            shm_free = shm.f_bavail * shm.f_frsize
            if shm_free < 2 * self.shm_size + GIB:
                raise Failure(f"set-up: /dev/shm has {human(shm_free)} free, the memory-backed "
                              f"cases need about {human(2 * self.shm_size + GIB)} "
                              f"(or --skip shm)")

    def make_source(self):
        """The data written by dd and cp: random bytes, generated once, outside the timing."""
        shm = os.statvfs("/dev/shm")
        shm_free = shm.f_bavail * shm.f_frsize
        fits = (self.size <= 4 * GIB and self.size <= meminfo_kib("MemAvailable") * KIB // 4
                and 2 * self.size + self.shm_size + GIB <= shm_free)
        if fits:
            self.source = os.path.join(self.shm_dir, "source.bin")
            self.dd_source = self.source
            self.cp_out = os.path.join(self.shm_dir, "cp-out.bin")
            where = "/dev/shm"
        else:
            # Too big for memory: dd writes zeros, cp copies a file on the storage itself.
            self.source = os.path.join(self.dir, "source.bin")
            self.dd_source = "/dev/zero"
            self.cp_out = "/dev/null"
            where = "the storage under test (too big for /dev/shm)"
        need_source = bool({"clients", "shm", "ceiling"} & set(self.args.groups))
        if not need_source:
            return
        say(f"generating the source file ({human(self.size)} of random bytes) in {where} ...")
        block = os.urandom(MIB)
        with open(self.source, "wb") as f:
            for i in range(self.size // MIB):
                # each MiB differs, so a block written to the wrong place is found
                f.write(i.to_bytes(8, "little") + block[8:])
            rest = self.size % MIB
            if rest:
                f.write(block[:rest])
        self.results["source"] = {"path": self.source, "dd_reads": self.dd_source,
                                  "cp_reads_back_to": self.cp_out}
        if self.dd_source == "/dev/zero":
            self.note("dd writes read /dev/zero (the source file does not fit in /dev/shm)")

    def drop_caches(self):
        os.sync()
        if not self.can_drop:
            return
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
        except OSError as e:
            self.can_drop = False
            self.note(f"cannot drop the page cache ({e.strerror}): reads may come from memory, "
                      f"run as root")
            return
        # Enough for the page cache of a whole file and, for cp out, its copy in tmpfs.
        self.prefault(2 * self.size + 512 * MIB)

    def prefault(self, n):
        """With --prefault, `n` bytes of memory touched, then let go: the kernel hands these
        warm pages out first, before the host has taken them back. Slow where the host has
        (about 4 s per GiB on this project's machine)."""
        if not self.args.prefault:
            return
        n = min(n, meminfo_kib("MemAvailable") * KIB // 2)
        n -= n % MIB
        if n <= 0:
            return
        m = mmap.mmap(-1, n)
        zeros = bytes(64 * MIB)
        for at in range(0, n, len(zeros)):
            k = min(len(zeros), n - at)
            m[at:at + k] = zeros[:k]
        m.close()

    def evict(self, path, prefault):
        """The page cache of one file dropped (it must hold nothing unwritten), and with
        --prefault `prefault` bytes touched. The rest of the cache stays: the client's own
        program and libraries are not read back from a busy disk."""
        if os.path.exists(path):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        self.prefault(prefault)

    # ---------------------------------------------------------- mounts

    def mkfs_nvswapfs(self, image, size, written=False):
        """A fresh volume in an image file of `size` bytes: sparse, or `written` out first
        (see write_out) where its write speed is measured."""
        if os.path.exists(image):
            os.unlink(image)
        if written:
            write_out(image, size, f"image for {image}")
        run([self.tool("mkfs.nvswapfs"), "-f", "-L", "compare", "--size", str(size), image],
            f"mkfs.nvswapfs {image}")

    def mount_nvswapfs(self, image, mnt, name, more=""):
        """Mounts `image` at `mnt` with --options and `more`; the mount's -o options and the
        read-ahead window it ended up with are kept in the results under `name`."""
        os.makedirs(mnt, exist_ok=True)
        log = os.path.join(self.dir, f"{name}.log")
        options = self.nvswapfs_options(more)
        cmd = [self.tool("nvswapfs"), "-o", ",".join(filter(None, [f"log={log}", options])),
               image, mnt]
        seconds, m = self._mount(cmd, image, mnt, f"mount nvswapfs ({name})", ["nvswapfs"], log)
        self.results.setdefault("mounts", {})[name] = {"options": options,
                                                       "read_ahead_kb": read_ahead_kb(mnt)}
        return seconds, m

    def nvswapfs_options(self, more=""):
        """The -o options of an nvswapfs mount besides its log: --options, then `more`."""
        return ",".join(filter(None, [self.args.options, more]))

    def mount_fuse2fs(self, image, mnt):
        os.makedirs(mnt, exist_ok=True)
        return self._mount(["fuse2fs", image, mnt], image, mnt, "mount fuse2fs", ["fuse2fs"],
                           None)

    def _mount(self, cmd, image, mnt, case, programs, log):
        if mounted_at(mnt):
            raise Failure(f"{case}: {mnt} is already a mount point")
        start = time.monotonic()
        p = run(cmd, case, check=False)
        seconds = time.monotonic() - start
        if p.returncode != 0:
            detail = (p.stderr.strip() or p.stdout.strip())
            if log and os.path.exists(log):
                with open(log, errors="replace") as f:
                    detail += "\n" + "".join(f.readlines()[-10:])
            raise Failure(f"{case}: `{cmdline(cmd)}` exited {p.returncode}: {detail.strip()}")
        if not mounted_at(mnt):
            raise Failure(f"{case}: `{cmdline(cmd)}` returned but {mnt} is not mounted")
        m = {"mnt": mnt, "image": image, "case": case, "pid": None, "log": log}
        self.mounts.append(m)
        deadline = time.monotonic() + 5
        while True:
            pids = [p for p in pids_with_arg(image, programs) if alive(p)]
            if len(pids) == 1:
                m["pid"] = pids[0]
                break
            if time.monotonic() > deadline:
                raise Failure(f"{case}: cannot tell the daemon serving {mnt} "
                              f"(processes with {image}: {pids or 'none'})")
            time.sleep(0.05)
        return seconds, m

    def unmount(self, m, quiet=False):
        """fusermount3 -u, then waits until the daemon has written everything and exited."""
        if m not in self.mounts:
            return
        mnt = m["mnt"]
        deadline = time.monotonic() + 30
        err = ""
        while mounted_at(mnt):
            p = subprocess.run(["fusermount3", "-u", mnt], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
            if p.returncode == 0:
                break
            err = p.stderr.strip()
            if time.monotonic() > deadline:
                subprocess.run(["fusermount3", "-uz", mnt], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                self.mounts.remove(m)
                msg = f"unmount {mnt}: busy for 30 s ({err}); detached it lazily"
                if quiet:
                    print(f"warning: {msg}", file=sys.stderr)
                    return
                raise Failure(msg)
            time.sleep(0.2)
        self.mounts.remove(m)
        pid = m["pid"]
        if pid is None:
            return
        deadline = time.monotonic() + 600
        while alive(pid):
            if time.monotonic() > deadline:
                msg = f"unmount {mnt}: the daemon (pid {pid}) did not exit within 600 s"
                if quiet:
                    print(f"warning: {msg}", file=sys.stderr)
                    return
                raise Failure(msg)
            time.sleep(0.05)

    def fsck_nvswapfs(self, image, case):
        p = run([self.tool("fsck.nvswapfs"), "-n", image], f"fsck after {case}", check=False)
        if p.returncode != 0:
            raise Failure(f"fsck after {case}: fsck.nvswapfs -n {image} exited {p.returncode}:\n"
                          f"{(p.stdout + p.stderr).strip()[-2000:]}")

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        for write, was in reversed(self.restore_knobs):
            write(was)
        if self.saved_hugepages is not None:
            write_nr_hugepages(self.saved_hugepages)
        for m in reversed(list(self.mounts)):
            try:
                self.unmount(m, quiet=True)
            except Exception as e:  # keep cleaning up whatever happens
                print(f"warning: unmounting {m['mnt']}: {e}", file=sys.stderr)
        if self.shm_dir and os.path.isdir(self.shm_dir):
            shutil.rmtree(self.shm_dir, ignore_errors=True)
        if self.made_dir and os.path.isdir(self.dir):
            left = mounts_under(self.dir)
            if left:
                print(f"warning: {', '.join(left)} still mounted; left {self.dir} in place",
                      file=sys.stderr)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    # ---------------------------------------------------------- fio

    @staticmethod
    def fio_cmd(path, rw, nbytes, engine, direct, iodepth, extra=()):
        """fio's command line for one sequential 1 MiB job on `path`, JSON out."""
        return ["fio", "--name=compare", f"--filename={path}", f"--rw={rw}", "--bs=1M",
                f"--size={nbytes}", f"--ioengine={engine}", f"--direct={1 if direct else 0}",
                f"--iodepth={iodepth}", "--fallocate=none", "--output-format=json", *extra]

    def fio(self, case, path, rw, nbytes, engine, direct, iodepth, end_fsync=False, extra=()):
        """One fio job; returns MB/s from fio's own byte count and run time."""
        cmd = self.fio_cmd(path, rw, nbytes, engine, direct, iodepth, extra)
        if end_fsync:
            cmd.append("--end_fsync=1")
        wall, p = timed(cmd, case, nbytes)
        job = fio_job(p.stdout, case)
        side = job["write" if rw == "write" else "read"]
        moved, ms = side["io_bytes"], side["runtime"]
        if moved != nbytes:
            raise Failure(f"{case}: fio moved {moved} bytes, expected {nbytes}")
        # fio's run time includes end_fsync; it leaves out fio's own start-up
        seconds = ms / 1000 if ms > 0 else wall
        return {"MBps": moved / seconds / MB, "seconds": seconds, "wall_seconds": wall}

    def limit_kinds(self):
        """The kinds of fio buffer the limit is measured with, and fio's options for each:
        its own, and huge pages where they were reserved (the last, when there)."""
        kinds = {"4 KiB pages": ()}
        if self.limit_hugepages:
            kinds["huge pages"] = ("--iomem=shmhuge",)
        return kinds

    def fastest_limit_kind(self):
        """The kind of buffer, and its fio options, for limit runs measured on one kind only
        (the flushed write, the limit beside nvswapfs): huge pages where reserved, the faster
        wherever the disk splits transfers from small pages."""
        return list(self.limit_kinds().items())[-1]

    def fio_limit(self, case, path, op, nbytes, extra=(), end_fsync=False):
        """fio as the limit runs it: libaio, O_DIRECT, 1 MiB, queue depth 32."""
        return self.fio(case, path, op, nbytes, "libaio", True, 32, end_fsync=end_fsync,
                        extra=extra)

    def limit_on(self, path, nbytes, label, engine=False, flush=True):
        """fio libaio direct QD32 on a written-out file: write, drop caches, read; with fio's
        own buffers and, where huge pages were reserved, with buffers on huge pages, the two
        alternating. The limit, per direction, is the faster median. With `flush`, the write
        also runs ending in a flush (end_fsync=1), in turn with the others. With `engine`, the
        engine alone (nvswapfs-bench) takes its turn after fio's on the same file, so that the
        two are measured side by side. Returns (limit, engine), engine None without it."""
        write_out(path, nbytes, f"{label} file")
        kinds = self.limit_kinds()
        flush_kind, flush_extra = self.fastest_limit_kind()
        out = {kind: {"write": [], "read": []} for kind in kinds}
        flushed = []
        engine_runs = {"write": [], "read": []}
        for _ in range(self.args.repeat):
            for op in ("write", "read"):
                for kind, extra in kinds.items():
                    self.drop_caches()
                    out[kind][op].append(self.fio_limit(f"{label} {op} ({kind})", path, op,
                                                        nbytes, extra))
                if op == "write" and flush:
                    self.drop_caches()
                    flushed.append(self.fio_limit(f"{label} write, end_fsync", path, op,
                                                  nbytes, flush_extra, end_fsync=True))
                if engine:
                    self.drop_caches()
                    engine_runs[op].append(self.engine_run(f"{label} engine {op}", path, nbytes,
                                                           op, 1))
        os.unlink(path)
        buffers = {kind: {op: summarize(runs) for op, runs in ops.items()}
                   for kind, ops in out.items()}
        result = {}
        for op in ("write", "read"):
            kind = max(buffers, key=lambda k: buffers[k][op]["MBps"])
            result[op] = dict(buffers[kind][op], buffers=kind)
        result["buffers"] = buffers
        if flush:
            result["flushed"] = dict(summarize(flushed), buffers=flush_kind)
        if not engine:
            return result, None
        return result, {op: dict(summarize(runs), side_by_side=True)
                        for op, runs in engine_runs.items()}

    def say_limit(self, name, r):
        """One line per kind of fio buffer; the limit is marked. Then the flushed write."""
        for kind, ops in r["buffers"].items():
            marks = {op: "*" if r[op]["buffers"] == kind else " " for op in ("write", "read")}
            say(f"  {name:8} write {fmt_rate(ops['write']['MBps']):>7} MB/s{marks['write']}  "
                f"read {fmt_rate(ops['read']['MBps']):>7} MB/s{marks['read']}  (fio buffers on "
                f"{kind})")
        if "flushed" in r:
            say(f"  {name:8} write {fmt_rate(r['flushed']['MBps']):>7} MB/s   ending in a flush "
                f"(end_fsync=1, buffers on {r['flushed']['buffers']})")

    def engine_run(self, case, path, nbytes, op, repeat):
        """nvswapfs-bench on `path`: the engine's median MB/s over `repeat` runs."""
        p = run([self.tool("nvswapfs-bench"), "--file", path, "--size", str(nbytes), "--op",
                 op, "--json", "--repeat", str(repeat)], case, 2 * nbytes)
        rows = [json.loads(line) for line in p.stdout.splitlines()
                if line.strip().startswith("{")]
        if not rows or "engine_MiBps" not in rows[-1]:
            raise Failure(f"{case}: nvswapfs-bench printed no JSON result:\n{p.stdout[-1000:]}")
        row = rows[-1]
        runs = [r * MIB / MB for r in row.get("engine_runs_MiBps", [row["engine_MiBps"]])]
        return {"MBps": row["engine_MiBps"] * MIB / MB, "runs_MBps": runs, "bench": row}

    def engine_on(self, path, nbytes, label):
        """The engine alone on its own file, its runs back to back (when the limit is not
        measured in the same run)."""
        out = {}
        for op in ("write", "read"):
            self.drop_caches()
            out[op] = self.engine_run(f"{label} {op}", path, nbytes, op, self.args.repeat)
        os.unlink(path)
        return out

    # ---------------------------------------------------------- client cases

    def dd_write(self, case, path, nbytes, direct):
        count = nbytes // MIB
        flag = "oflag=direct" if direct else "conv=fsync"
        cmd = ["dd", f"if={self.dd_source}", f"of={path}", "bs=1M", f"count={count}",
               "iflag=fullblock", flag]
        seconds, p = timed(cmd, case, nbytes)
        self.check_dd(case, p, nbytes)
        return {"MBps": nbytes / seconds / MB, "seconds": seconds}

    def dd_read(self, case, path, nbytes, direct):
        cmd = ["dd", f"if={path}", "of=/dev/null", "bs=1M"] + (["iflag=direct"] if direct else [])
        seconds, p = timed(cmd, case, nbytes)
        self.check_dd(case, p, nbytes)
        return {"MBps": nbytes / seconds / MB, "seconds": seconds}

    @staticmethod
    def check_dd(case, p, nbytes):
        m = re.search(r"^(\d+) bytes", p.stderr, re.M)
        if not m or int(m.group(1)) != nbytes:
            raise Failure(f"{case}: dd moved {m.group(1) if m else '?'} bytes, expected {nbytes}:"
                          f"\n{p.stderr.strip()}")

    def cp_write(self, case, path, nbytes):
        if nbytes != self.size:
            raise Failure(f"{case}: cp copies the whole source ({self.size} bytes)")
        start = time.monotonic()
        run(["cp", self.source, path], case, nbytes)
        run(["sync", path], case)  # fsync of the copy
        seconds = time.monotonic() - start
        return {"MBps": nbytes / seconds / MB, "seconds": seconds}

    def cp_read(self, case, path, nbytes):
        start = time.monotonic()
        run(["cp", path, self.cp_out], case, nbytes)
        seconds = time.monotonic() - start
        size = os.path.getsize(self.cp_out) if self.cp_out != "/dev/null" else nbytes
        if self.cp_out != "/dev/null":
            os.unlink(self.cp_out)
        if size != nbytes:
            raise Failure(f"{case}: cp copied {size} bytes, expected {nbytes}")
        return {"MBps": nbytes / seconds / MB, "seconds": seconds}

    def py_client(self, case, path, nbytes, op, script=PY_CLIENT, name="Python", more=(),
                  flush_timed=True):
        """Runs a client script in its own /usr/bin/python3 (PATH OP SIZE, then `more`), which
        prints its seconds and the bytes it moved. For a write of a client whose flush is timed
        apart, also the rate of the writes alone (`writes_MBps`, open to the last write) and
        the seconds the fsync and close took (`flush_seconds`): on storage with a volatile
        cache the flush waits for it to drain, whatever the file system."""
        timed_apart = op == "write" and flush_timed
        p = run(["/usr/bin/python3", "-c", script, path, op, str(nbytes), *map(str, more)], case,
                nbytes)
        fields = p.stdout.split()
        try:
            if len(fields) != (3 if timed_apart else 2):
                raise ValueError
            seconds, moved = float(fields[0]), int(fields[1])
            flush = float(fields[2]) if timed_apart else None
        except ValueError:
            raise Failure(f"{case}: unexpected output from the {name} client: {p.stdout!r}")
        if moved != nbytes:
            raise Failure(f"{case}: the {name} client moved {moved} bytes, expected {nbytes}")
        out = {"MBps": nbytes / seconds / MB, "seconds": seconds}
        if flush is not None:
            out["flush_seconds"] = flush
            out["writes_MBps"] = nbytes / max(seconds - flush, 1e-9) / MB
        return out

    def client_cases(self, shm=False):
        """(key, write label, read label, write fn, read fn, needs O_DIRECT, what was written
        (for cmp after reading back) or None)"""
        cases = [
            ("dd_fsync", "dd bs=1M conv=fsync", "dd bs=1M",
             lambda c, p, n: self.dd_write(c, p, n, False),
             lambda c, p, n: self.dd_read(c, p, n, False), False, self.dd_source),
            ("dd_direct", "dd bs=1M oflag=direct", "dd bs=1M iflag=direct",
             lambda c, p, n: self.dd_write(c, p, n, True),
             lambda c, p, n: self.dd_read(c, p, n, True), True, self.dd_source),
            ("cp", "cp, then sync FILE", "cp to " +
             ("/dev/shm" if self.cp_out.startswith("/dev/shm") else "/dev/null"),
             self.cp_write, self.cp_read, False, self.source),
            ("fio_psync", "fio psync bs=1M end_fsync=1", "fio psync bs=1M",
             lambda c, p, n: self.fio(c, p, "write", n, "psync", False, 1, end_fsync=True),
             lambda c, p, n: self.fio(c, p, "read", n, "psync", False, 1), False, None),
            ("fio_libaio", "fio libaio direct=1 bs=1M QD32", "fio libaio direct=1 bs=1M QD32",
             lambda c, p, n: self.fio_limit(c, p, "write", n),
             lambda c, p, n: self.fio_limit(c, p, "read", n), True, None),
            ("python", "python 64 KiB writes + fsync", "python 64 KiB reads",
             lambda c, p, n: self.py_client(c, p, n, "write"),
             lambda c, p, n: self.py_client(c, p, n, "read"), False, None),
            ("torch", "torch.save + fsync", "torch.load",
             lambda c, p, n: self.py_client(c, p, n, "write", TORCH_CLIENT, "torch"),
             lambda c, p, n: self.py_client(c, p, n, "read", TORCH_CLIENT, "torch"), False,
             None),
            ("shards", f"{SHARDS} writers at once, 1 MiB writes + fsync",
             f"{SHARDS} readers at once, 1 MiB reads",
             lambda c, p, n: self.py_client(c, p, n, "write", SHARDS_CLIENT, "sharded",
                                            (SHARDS,), flush_timed=False),
             lambda c, p, n: self.py_client(c, p, n, "read", SHARDS_CLIENT, "sharded",
                                            (SHARDS,)), False, None),
        ]
        if shm:
            keep = ("dd_fsync", "dd_direct", "fio_libaio")
            cases = [c for c in cases if c[0] in keep]
        return cases

    def verify(self, case, path, nbytes, ref):
        """cmp against what dd/cp wrote, outside the timing (caches dropped first)."""
        self.drop_caches()
        if os.path.getsize(path) != nbytes:
            raise Failure(f"{case}: the file has {os.path.getsize(path)} bytes, expected {nbytes}")
        p = run(["cmp", "-n", str(nbytes), path, ref], f"{case} (verify)", nbytes, check=False)
        if p.returncode != 0:
            raise Failure(f"{case}: what was read back differs from what was written "
                          f"({(p.stdout + p.stderr).strip()})")

    @staticmethod
    def direct_io_works(directory):
        """Whether the file system takes O_DIRECT opens and aligned 1 MiB writes."""
        probe = os.path.join(directory, ".compare-odirect-probe")
        buf = mmap.mmap(-1, MIB)
        try:
            fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_DIRECT, 0o644)
            try:
                os.write(fd, buf)
            finally:
                os.close(fd)
            return True, ""
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                return False, e.strerror
            raise Failure(f"O_DIRECT probe in {directory}: {e}")
        finally:
            buf.close()
            if os.path.exists(probe):
                os.unlink(probe)

    def run_cases(self, cases, targets, nbytes, group, beside=None):
        """Every case on every target: write, drop caches, read; targets alternate. With
        `beside` (op, case -> a fio run), the limit is measured again right before each of
        nvswapfs's phases, so that its figures have a reference from the same minute."""
        out = {key: {} for key, *_ in cases}
        # The daemon serving each target that has one (not local).
        daemons = {name: m["pid"] for name, directory in targets.items() for m in self.mounts
                   if m["mnt"] == directory and m["pid"] is not None}
        direct_ok = {}
        for name, directory in targets.items():
            ok, why = self.direct_io_works(directory)
            direct_ok[name] = ok
            if not ok:
                self.note(f"{name} refuses O_DIRECT ({why}): its direct cases are skipped")
        for key, wlabel, rlabel, write, read, direct, written in cases:
            runs = {name: {"write": [], "read": []} for name in targets}
            near = {"write": [], "read": []}
            for rep in range(self.args.repeat):
                for name, directory in targets.items():
                    if direct and not direct_ok[name]:
                        continue
                    path = os.path.join(directory, "compare.dat")
                    remove_case_files(path)
                    pair = beside is not None and name == "nvswapfs"
                    if pair:
                        self.drop_caches()
                        near["write"].append(beside("write", f"{group} {key} limit beside"))
                    self.drop_caches()
                    with self.settings_of(name), CpuMeter(daemons.get(name)) as cpu:
                        w = write(f"{group} {name} {key} write", path, nbytes)
                    w["cpu_s_per_GB"] = per_gb(cpu.seconds, nbytes)
                    runs[name]["write"].append(w)
                    if name == "null" and key in PARSING_READS:
                        say(f"  {group:8} {name:9} {key:11} write {fmt_rate(w['MBps']):>7} MB/s   "
                            f"read: nothing kept to parse")
                        remove_case_files(path)
                        continue
                    if pair:
                        self.drop_caches()
                        near["read"].append(beside("read", f"{group} {key} limit beside"))
                    self.drop_caches()
                    with self.settings_of(name), CpuMeter(daemons.get(name)) as cpu:
                        r = read(f"{group} {name} {key} read", path, nbytes)
                    r["cpu_s_per_GB"] = per_gb(cpu.seconds, nbytes)
                    runs[name]["read"].append(r)
                    say(f"  {group:8} {name:9} {key:11} write {fmt_rate(w['MBps']):>7} MB/s   "
                        f"read {fmt_rate(r['MBps']):>7} MB/s")
                    # null keeps nothing to compare
                    if written and rep == 0 and name != "null":
                        self.verify(f"{group} {name} {key}", path, nbytes, written)
                    remove_case_files(path)
            for name in targets:
                if direct and not direct_ok[name]:
                    out[key][name] = {"unsupported": "O_DIRECT refused"}
                else:
                    out[key][name] = {op: summarize(runs[name][op]) for op in ("write", "read")
                                      if runs[name][op]}
                    if name == "null" and key in PARSING_READS:
                        out[key][name]["read"] = {"unsupported": "null keeps nothing to parse"}
                    if near["write"] and name == "nvswapfs":
                        out[key][name]["limit_beside"] = {op: summarize(near[op])
                                                          for op in ("write", "read")}
            out[key]["labels"] = {"write": wlabel, "read": rlabel}
        return out

    # ---------------------------------------------------------- groups

    def nvswapfs_image_size(self):
        return max(3 * self.size + GIB, int(self.args.rss_size * 1.1) + GIB)

    def fuse2fs_image_size(self):
        return 3 * self.size + GIB

    def target_mounts(self, targets=None):
        """Mounts the targets (all by default); returns ({name: directory}, [mounts],
        {name: image})."""
        dirs, mounts, images = {}, [], {}
        for name in self.args.targets if targets is None else targets:
            if name in ("nvswapfs", "variant"):
                image = os.path.join(self.dir, f"{name}.img")
                self.mkfs_nvswapfs(image, self.nvswapfs_image_size(), written=True)
                _, m = self.mount_nvswapfs(image, os.path.join(self.dir, f"mnt-{name}"), name,
                                           self.args.variant_options if name == "variant" else "")
                dirs[name], images[name] = m["mnt"], image
                mounts.append(m)
            elif name == "local":
                dirs[name] = os.path.join(self.dir, "local")
            elif name == "null":
                mnt = os.path.join(self.dir, "mnt-null")
                os.makedirs(mnt, exist_ok=True)
                # No image: the daemon is told apart by its mount point.
                _, m = self._mount([self.tool("nvswapfs-null-fuse"), mnt], mnt, mnt,
                                   "mount nvswapfs-null-fuse", ["nvswapfs-null-fuse"], None)
                # The kernel read-ahead window nvswapfs sets for its own mount.
                bdi = read_ahead_path(mnt)
                try:
                    with open(bdi, "w") as f:
                        f.write(f"{NVSWAPFS_READ_AHEAD_KB}\n")
                except OSError as e:
                    self.note(f"null: cannot set {bdi} ({e.strerror}); its reads keep the "
                              f"kernel's default read-ahead")
                dirs[name] = mnt
                mounts.append(m)
            elif name == "fuse2fs":
                image = os.path.join(self.dir, "ext4.img")
                write_out(image, self.fuse2fs_image_size(), "image for fuse2fs")
                # nodiscard: mke2fs would punch the written-out file full of holes again
                run(["mkfs.ext4", "-F", "-q", "-E", "nodiscard", image], "mkfs.ext4 for fuse2fs")
                _, m = self.mount_fuse2fs(image, os.path.join(self.dir, "mnt-fuse2fs"))
                dirs[name], images[name] = m["mnt"], image
                mounts.append(m)
        return dirs, mounts, images

    def daemon_stats(self, m, case):
        """The mount-wide counters; a daemon that counted failed operations is pointed out."""
        try:
            text = os.getxattr(m["mnt"], "user.nvswapfs.stats").decode(errors="replace").strip()
        except OSError as e:
            self.note(f"cannot read user.nvswapfs.stats after {case}: {e.strerror}")
            return
        self.results.setdefault("daemon_stats", {})[case] = text
        fields = dict(kv.split("=", 1) for kv in text.split() if "=" in kv)
        for key in ("errors", "engine_failed"):
            if fields.get(key, "0") not in ("0", ""):
                self.note(f"the nvswapfs daemon counted {key}={fields[key]} during {case}")

    def print_daemon_logs(self):
        if not os.path.isdir(self.dir):
            return
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".log"):
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    lines = f.readlines()[-10:]
                if lines:
                    print(f"--- last lines of {name}:", file=sys.stderr)
                    sys.stderr.write("".join(lines))

    def release_targets(self, mounts, images, case):
        ours = {images[t]: t for t in ("nvswapfs", "variant") if t in images}
        for m in mounts:
            name = ours.get(m["image"])
            if name:
                self.daemon_stats(m, case if name == "nvswapfs" else f"{case} ({name})")
            self.unmount(m)
        for image in ours:
            self.fsck_nvswapfs(image, case)
        for image in images.values():
            os.unlink(image)

    def group_limit(self):
        # With the engine group too, the engine takes turns with fio on the limit's file.
        both = "engine" in self.args.groups
        say(f"limit: fio libaio direct=1 bs=1M iodepth=32, {human(self.size)} image file in "
            f"{self.dir}" + ("; the engine alone (nvswapfs-bench) in turn with it" if both else ""))
        r, engine = self.limit_on(os.path.join(self.dir, "limit.img"), self.size, "limit",
                                  engine=both)
        self.results["limit"] = r
        self.say_limit("limit", r)
        if engine is not None:
            self.results["engine"] = engine
            self.say_engine("engine", engine)

    def group_engine(self):
        say(f"engine: nvswapfs-bench --size {human(self.size)} on an image file in {self.dir}")
        r = self.engine_on(os.path.join(self.dir, "engine.img"), self.size, "engine")
        self.results["engine"] = r
        self.say_engine("engine", r)

    @staticmethod
    def say_engine(name, r):
        say(f"  {name:8} write {fmt_rate(r['write']['MBps']):>7} MB/s   read "
            f"{fmt_rate(r['read']['MBps']):>7} MB/s  (the engine alone"
            f"{', in turn with fio' if r['write'].get('side_by_side') else ''})")

    def group_clients(self):
        say(f"clients: {human(self.size)} written then read, on {', '.join(self.args.targets)}")
        dirs, mounts, images = self.target_mounts()
        beside, ref = None, None
        if "limit" in self.args.groups and "nvswapfs" in dirs:
            # The disk's speed swings within minutes: nvswapfs's phases each get the limit
            # measured again right before them, on a file of their own.
            ref = os.path.join(self.dir, "limit-beside.img")
            write_out(ref, self.size, "limit beside file")
            kind, extra = self.fastest_limit_kind()
            say(f"  (the limit, fio on buffers on {kind}, runs again before each nvswapfs "
                f"phase)")

            def beside(op, case):
                return self.fio_limit(case, ref, op, self.size, extra)
        try:
            cases = [c for c in self.client_cases() if c[0] in self.args.cases]
            self.results["clients"] = self.run_cases(cases, dirs, self.size,
                                                     "clients", beside)
        finally:
            if ref is not None and os.path.exists(ref):
                os.unlink(ref)
        self.release_targets(mounts, images, "the client cases")

    def group_shm(self):
        n = self.shm_size
        say(f"memory-backed: {human(n)} on /dev/shm")
        out = {}
        out["limit"], out["engine"] = self.limit_on(os.path.join(self.shm_dir, "limit.img"), n,
                                                    "shm limit", engine=True,
                                                    flush=False)
        self.say_limit("shm", out["limit"])
        self.say_engine("shm", out["engine"])
        image = os.path.join(self.shm_dir, "nvswapfs.img")
        self.mkfs_nvswapfs(image, 2 * n + 512 * MIB, written=True)
        _, m = self.mount_nvswapfs(image, os.path.join(self.dir, "mnt-shm"), "nvswapfs-shm")
        out["cases"] = self.run_cases(self.client_cases(shm=True), {"nvswapfs": m["mnt"]}, n,
                                      "shm")
        self.daemon_stats(m, "the memory-backed cases")
        self.unmount(m)
        self.fsck_nvswapfs(image, "the memory-backed cases")
        out["shm_image_bytes_used"] = os.stat(image).st_blocks * 512
        os.unlink(image)
        self.results["shm"] = out

    def group_meta(self):
        files = self.args.files
        # null has a root directory and nothing else to create files in.
        targets = [t for t in self.args.targets if t != "null"]
        if len(targets) < len(self.args.targets):
            self.note("metadata: null is left out; it keeps no directories")
        if not targets:
            say("metadata: no target that keeps files; skipped")
            return
        say(f"metadata: {files} files in one directory, on {', '.join(targets)}")
        dirs, mounts, images = self.target_mounts(targets)
        runs = {name: {"create": [], "stat": [], "unlink": []} for name in dirs}
        payload = os.urandom(4 * KIB)
        for rep in range(self.args.repeat):
            for name, base in dirs.items():
                d = os.path.join(base, f"meta-{rep}")
                os.mkdir(d)
                paths = [os.path.join(d, f"f{i:07d}") for i in range(files)]
                case = f"metadata {name}"
                self.drop_caches()
                try:
                    with self.settings_of(name):
                        create, stat, unlink = self.meta_ops(paths, payload, d, case)
                except OSError as e:
                    raise Failure(f"{case}: {e}")
                if os.listdir(d):
                    raise Failure(f"{case}: the directory is not empty after unlinking every file")
                os.rmdir(d)
                for op, seconds in (("create", create), ("stat", stat), ("unlink", unlink)):
                    runs[name][op].append(files / seconds)
                say(f"  meta     {name:9} create {files / create:9.0f}/s   stat "
                    f"{files / stat:9.0f}/s   unlink {files / unlink:9.0f}/s")
        self.results["meta"] = {
            name: {op: {"files_per_s": median(v), "runs": v} for op, v in ops.items()}
            for name, ops in runs.items()}
        self.release_targets(mounts, images, "the metadata cases")

    def meta_ops(self, paths, payload, d, case):
        """Seconds to create (with a 4 KiB write), stat and unlink `paths` in directory `d`;
        the page cache is dropped before the stat and the unlink (the caller drops it before
        the create)."""
        start = time.monotonic()
        for path in paths:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            try:
                if os.write(fd, payload) != len(payload):
                    raise Failure(f"{case} create: short write to {path}")
            finally:
                os.close(fd)
        sync_directory(d)
        create = time.monotonic() - start
        self.drop_caches()
        start = time.monotonic()
        for path in paths:
            if os.stat(path).st_size != len(payload):
                raise Failure(f"{case} stat: {path} has the wrong size")
        stat = time.monotonic() - start
        self.drop_caches()
        start = time.monotonic()
        for path in paths:
            os.unlink(path)
        sync_directory(d)
        unlink = time.monotonic() - start
        return create, stat, unlink

    def group_rss(self):
        n = self.args.rss_size
        say(f"rss: {human(n)} written (dd bs=1M conv=fsync, from /dev/zero) and read back "
            f"(dd bs=1M) through a mount")
        image = os.path.join(self.dir, "rss.img")
        self.mkfs_nvswapfs(image, self.nvswapfs_image_size())
        _, m = self.mount_nvswapfs(image, os.path.join(self.dir, "mnt-rss"), "nvswapfs-rss")
        pid = m["pid"]
        after_mount = proc_status_kib(pid, "VmHWM")
        path = os.path.join(m["mnt"], "rss.dat")
        count = n // MIB
        self.drop_caches()
        seconds, p = timed(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={count}",
                            "conv=fsync"], "rss write", n)
        self.check_dd("rss write", p, count * MIB)
        write = count * MIB / seconds / MB
        after_write = proc_status_kib(pid, "VmHWM")
        self.drop_caches()
        seconds, p = timed(["dd", f"if={path}", "of=/dev/null", "bs=1M"], "rss read", n)
        self.check_dd("rss read", p, count * MIB)
        read = count * MIB / seconds / MB
        peak = proc_status_kib(pid, "VmHWM")
        rss_now = proc_status_kib(pid, "VmRSS")
        os.unlink(path)
        self.daemon_stats(m, "the rss case")
        self.unmount(m)
        self.fsck_nvswapfs(image, "the rss case")
        os.unlink(image)
        r = {"bytes": count * MIB, "pid": pid, "hwm_after_mount_MiB": after_mount / KIB,
             "hwm_after_write_MiB": after_write / KIB, "hwm_peak_MiB": peak / KIB,
             "rss_at_end_MiB": rss_now / KIB, "write_MBps": write, "read_MBps": read}
        self.results["rss"] = r
        say(f"  rss      after mount {r['hwm_after_mount_MiB']:.1f} MiB, peak "
            f"{r['hwm_peak_MiB']:.1f} MiB (write {fmt_rate(write)} MB/s, read "
            f"{fmt_rate(read)} MB/s)")

    def scale_bench_keeps(self):
        p = run([self.tool("nvswapfs-scale-bench"), "--help"], "cold: nvswapfs-scale-bench --help",
                check=False)
        return "--keep" in p.stdout

    def group_cold(self):
        files = self.args.cold_files
        image = os.path.join(self.dir, "cold.img")
        mnt = os.path.join(self.dir, "mnt-cold")
        out = {"files": files, "per_dir": PER_DIR}
        start = time.monotonic()
        if self.scale_bench_keeps():
            say(f"cold mount: building a volume of {files} files with nvswapfs-scale-bench --keep")
            p = run([self.tool("nvswapfs-scale-bench"), "--files", str(files), "--per-dir",
                     str(PER_DIR), "--keep", image], "cold: nvswapfs-scale-bench --keep",
                    files * 64 * KIB)
            out["populated_by"] = "nvswapfs-scale-bench --keep"
            m = re.search(r"open after a clean close: (\d+(?:\.\d+)?) ms", p.stdout)
            if m:
                out["volume_open_in_process_ms"] = float(m.group(1))
        else:
            self.note("nvswapfs-scale-bench has no --keep: the cold-mount volume is filled "
                      "through a mount")
            say(f"cold mount: creating {files} files through a mount")
            self.mkfs_nvswapfs(image, max(4 * GIB, files * 128 * KIB))
            _, m = self.mount_nvswapfs(image, mnt, "nvswapfs-cold")
            payload = b"x" * (4 * KIB)
            try:
                for i in range(files):
                    d = os.path.join(mnt, f"d{i // PER_DIR}")
                    if i % PER_DIR == 0:
                        os.mkdir(d)
                    fd = os.open(os.path.join(d, f"tensor-{i}.pt"),
                                 os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                    try:
                        os.write(fd, payload)
                    finally:
                        os.close(fd)
            except OSError as e:
                raise Failure(f"cold: creating files through the mount: {e}")
            self.unmount(m)
            out["populated_by"] = "files created through a mount"
        out["populate_seconds"] = time.monotonic() - start
        say(f"  cold     volume ready in {out['populate_seconds']:.1f} s")
        ms = []
        for i in range(COLD_MOUNTS):
            self.drop_caches()
            seconds, m = self.mount_nvswapfs(image, mnt, "nvswapfs-cold")
            ms.append(seconds * 1000)
            if i == 0:
                count = 0
                try:
                    for d in os.listdir(mnt):
                        if d.startswith("d"):
                            count += len(os.listdir(os.path.join(mnt, d)))
                except OSError as e:
                    raise Failure(f"cold: listing the mounted volume: {e}")
                if count != files:
                    raise Failure(f"cold: the mounted volume lists {count} files, expected {files}")
            self.unmount(m)
            say(f"  cold     mount {i + 1}: {ms[-1]:.0f} ms")
        self.fsck_nvswapfs(image, "the cold mounts")
        os.unlink(image)
        out["mount_ms_runs"] = ms
        out["mount_ms"] = median(ms)
        self.results["cold"] = out

    def fio_beside(self, path, op, rate, seconds, output):
        """Starts fio as the limit runs it (libaio, O_DIRECT, 1 MiB, QD32, on huge pages where
        reserved), going round `path` for `seconds`, capped at `rate` MB/s (None: uncapped);
        returns the process. Its JSON goes to `output`."""
        _, extra = self.fastest_limit_kind()
        cmd = self.fio_cmd(path, op, self.size, "libaio", True, 32,
                           ("--time_based", f"--runtime={seconds}", f"--output={output}", *extra))
        if rate is not None:
            cmd.append(f"--rate={rate * 1000000}")
        try:
            return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
        except OSError as e:
            raise Failure(f"ceiling: cannot run `{cmdline(cmd)}`: {e}")

    def fio_beside_result(self, proc, op, output, case):
        _, err = proc.communicate(timeout=command_timeout(self.size))
        if proc.returncode != 0:
            raise Failure(f"{case}: fio exited {proc.returncode}: {err.strip()[-1000:]}")
        with open(output) as f:
            return fio_job(f.read(), case)[op]["bw_bytes"] / MB

    def ceiling_case(self, key, op, null_dir, local_dir, fio_file, nvswapfs_dir=None):
        """One client case and direction: fio alone, the client on null alone and beside fio
        at each rate, on the local directory and on nvswapfs (when mounted), and fio alone
        again."""
        found = [c for c in self.client_cases() if c[0] == key]
        if not found:  # CASE_KEYS out of step with client_cases()
            raise Failure(f"ceiling: no client case {key}")
        _, wlabel, rlabel, write, read, direct, _ = found[0]
        label, client = (wlabel, write) if op == "write" else (rlabel, read)
        n, seconds = self.size, self.args.ceiling_seconds
        output = os.path.join(self.dir, "ceiling-fio.json")
        say(f"ceiling: {label} ({key} {op}) on null, fio {op} beside it, {seconds} s per rate")

        def one(directory, case):
            path = os.path.join(directory, "ceiling.dat")
            if op == "read" and not os.path.exists(path):
                write(f"{case} (the file to read)", path, n)
            if directory == null_dir:
                # null keeps nothing to write back, and its writes bypass the page cache: only
                # a read that is not O_DIRECT fills it (and cp's copy in tmpfs)
                fill = 0 if op == "write" or direct else n + 256 * MIB + (n if key == "cp" else 0)
                self.evict(path, fill)
            else:
                self.drop_caches()
            return client(case, path, n)

        def window(rate):
            """The client's runs inside one window of fio beside it (rate None: alone)."""
            proc = None
            if rate is not None:
                proc = self.fio_beside(fio_file, op, None if rate == "max" else rate,
                                       seconds, output)
                time.sleep(1)  # fio up to speed first
            case = f"ceiling {key} {op} on null" + (f", fio at {rate}" if rate else "")
            runs = []
            end = time.monotonic() + seconds - 2
            try:
                while True:
                    x = one(null_dir, case)["MBps"]
                    # a run that ended after fio did was not measured beside it
                    if proc is not None and proc.poll() is not None:
                        break
                    runs.append(x)
                    if time.monotonic() >= end:
                        break
            except BaseException:
                if proc is not None:
                    proc.kill()
                    proc.wait()
                raise
            got = self.fio_beside_result(proc, op, output, case) if proc else None
            if not runs:
                raise Failure(f"{case}: no client run finished inside fio's {seconds} s "
                              f"(raise --ceiling-seconds)")
            mean = statistics.mean(runs)
            w = {"asked": rate, "fio_MBps": got, "MBps": mean, "runs_MBps": runs,
                 "both_MBps": None if got is None else min(mean, got)}
            beside = "alone" if rate is None else f"fio asked {rate}, got {fmt_rate(got)}"
            say(f"  null      {beside:32} {fmt_rate(w['MBps']):>7} MB/s ({len(runs)} runs)")
            return w

        def fio_alone():
            self.drop_caches()
            proc = self.fio_beside(fio_file, op, None, seconds, output)
            got = self.fio_beside_result(proc, op, output, f"ceiling fio {op} alone")
            os.unlink(output)
            say(f"  fio alone {'':32} {fmt_rate(got):>7} MB/s")
            return got

        out = {"label": label, "case": key, "op": op, "seconds": seconds}
        fio_first = fio_alone()
        out["alone_first"] = window(None)
        out["beside"] = [window(rate) for rate in self.args.ceiling_rates]
        out["alone_last"] = window(None)
        path = os.path.join(null_dir, "ceiling.dat")
        if os.path.exists(path):
            os.unlink(path)
        # The references that drive the disk themselves, so nothing runs beside them.
        for name, directory in (("local", local_dir), ("nvswapfs", nvswapfs_dir)):
            if directory is None:
                continue
            runs = [one(directory, f"ceiling {key} {op} on {name}")
                    for _ in range(self.args.repeat)]
            os.unlink(os.path.join(directory, "ceiling.dat"))
            out[name] = summarize(runs)
            say(f"  {name:9} {'alone':32} {fmt_rate(out[name]['MBps']):>7} MB/s "
                f"({len(runs)} runs, median){writes_and_flush(out[name])}")
        # The storage's speed swings within minutes: the faster of fio's runs alone counts.
        out["fio_alone_runs_MBps"] = [fio_first, fio_alone()]
        out["fio_alone_MBps"] = max(out["fio_alone_runs_MBps"])
        # What a daemon that keeps the data could reach: the most both sides did at once.
        out["ceiling_MBps"] = max(w["both_MBps"] for w in out["beside"])
        say(f"  the ceiling (both at once, at most) {fmt_rate(out['ceiling_MBps']):>11} MB/s: "
            f"{fmt_ratio(ratio(out['ceiling_MBps'], out['fio_alone_MBps']))}× fio alone "
            f"(the faster), "
            f"{fmt_ratio(ratio(out['ceiling_MBps'], out['local']['MBps']))}× local")
        if "nvswapfs" in out:
            nv = out["nvswapfs"]
            say(f"  nvswapfs at {fmt_ratio(ratio(nv['MBps'], out['ceiling_MBps']))}× the ceiling"
                + (f", its writes before the fsync at "
                   f"{fmt_ratio(ratio(nv['writes_MBps'], out['ceiling_MBps']))}×"
                   if "writes_MBps" in nv else ""))
        return out

    def group_ceiling(self):
        say(f"ceiling: client cases on nvswapfs-null-fuse while fio keeps {self.dir} busy, "
            f"{human(self.size)} per file")
        if not self.limit_hugepages:
            self.note("ceiling: fio beside runs on its own buffers (no huge pages)")
        # nvswapfs too, unless left out: its figure in the same minutes, ÷ the ceiling
        dirs, mounts, images = self.target_mounts(
            ["null"] + (["nvswapfs"] if "nvswapfs" in self.args.targets else []))
        fio_file = os.path.join(self.dir, "ceiling-fio.img")
        write_out(fio_file, self.size, "ceiling: fio's file")
        try:
            self.results["ceiling"] = [
                self.ceiling_case(key, op, dirs["null"], os.path.join(self.dir, "local"),
                                  fio_file, dirs.get("nvswapfs"))
                for key, op in self.args.ceiling]
        finally:
            os.unlink(fio_file)
        self.release_targets(mounts, images, "the ceiling cases")

    # ---------------------------------------------------------- report

    @staticmethod
    def limit_rows(label, limit):
        """Markdown rows for the limit: one per kind of fio buffer, as ratios to the faster
        (the limit, in bold)."""
        rows = []
        for kind, ops in limit["buffers"].items():
            cells = []
            for op in ("write", "read"):
                rate = ops[op]["MBps"]
                text = fmt_rate(rate)
                if limit[op]["buffers"] == kind:
                    text = f"**{text}**"
                cells += [text, fmt_ratio(ratio(rate, limit[op]["MBps"]))]
            rows.append(f"| {label}, buffers on {kind} | " + " | ".join(cells) + " |")
        return rows

    def report(self):
        r = self.results
        lim = r.get("limit", {})
        lw = lim.get("write", {}).get("MBps")
        lr = lim.get("read", {}).get("MBps")
        machine = r["machine"]
        say("")
        say(f"## nvswapfs compared, sequential I/O of {human(self.size)} "
            f"(MB/s = 10^6 bytes/s; ÷limit = ÷ fio libaio direct QD32 on the same storage, "
            f"the faster of its own buffers and buffers on huge pages, in bold)")
        say("")
        say(f"Storage: {self.dir} on {machine['device']} ({machine['fstype']}); "
            f"{machine['nproc']} CPUs, {machine['ram_bytes'] / GIB:.0f} GiB RAM, kernel "
            f"{machine['kernel']}; {r['date']}; repeat {self.args.repeat} (medians)"
            f"{f'; nvswapfs mounted with -o {self.args.options}' if self.args.options else ''}"
            f"{wake_here_said(machine)}"
            f"{f'; variant: {self.variant_said()}' if 'variant' in self.args.targets else ''}.")
        say("")
        if "limit" in r or "engine" in r:
            say("| reference | write MB/s | ÷limit | read MB/s | ÷limit |")
            say("|---|---:|---:|---:|---:|")
            if "limit" in r:
                for row in self.limit_rows("fio libaio direct=1 bs=1M iodepth=32, image file",
                                           r["limit"]):
                    say(row)
                if "flushed" in r["limit"]:
                    fw = r["limit"]["flushed"]
                    say(f"| the same write ending in a flush (end_fsync=1), buffers on "
                        f"{fw['buffers']} (**the flushed limit**) | {fmt_rate(fw['MBps'])} | "
                        f"{fmt_ratio(ratio(fw['MBps'], lw))} | | |")
            if "engine" in r:
                ew, er = r["engine"]["write"]["MBps"], r["engine"]["read"]["MBps"]
                turn = ", in turn with fio" if r["engine"]["write"].get("side_by_side") else ""
                say(f"| nvswapfs engine alone (nvswapfs-bench), image file{turn} | {fmt_rate(ew)} | "
                    f"{fmt_ratio(ratio(ew, lw))} | {fmt_rate(er)} | {fmt_ratio(ratio(er, lr))} |")
            say("")
        if "clients" in r:
            targets = self.args.targets
            paired = any("limit_beside" in case.get("nvswapfs", {})
                         for case in r["clients"].values())
            head = ["case"]
            for t in targets:
                head += [f"{t} MB/s", "÷limit"]
                if t == "nvswapfs" and paired:
                    head += ["÷limit beside"]
            cross = cross_targets(targets)
            head += [f"{a}÷{b}" for a, b in cross]
            # Writes that end in fsync/sync, divided by the flushed limit too.
            lf = lim.get("flushed", {}).get("MBps")
            flushed_cols = [t for t in ("nvswapfs", "variant", "local") if t in targets] if lf \
                else []
            head += [f"{t} ÷flushed limit" for t in flushed_cols]
            say("| " + " | ".join(head) + " |")
            say("|---|" + "---:|" * (len(head) - 1))
            for op, limit in (("write", lw), ("read", lr)):
                for key, case in r["clients"].items():
                    row = [case_label(case, op)]
                    rates = {}
                    for t in targets:
                        rate = case[t].get(op, {}).get("MBps")
                        rates[t] = rate
                        row += [fmt_rate(rate), fmt_ratio(ratio(rate, limit))]
                        if t == "nvswapfs" and paired:
                            near = case[t].get("limit_beside", {}).get(op, {}).get("MBps")
                            row += [fmt_ratio(ratio(rate, near))]
                    row += [fmt_ratio(ratio(rates[a], rates[b])) for a, b in cross]
                    flushed = op == "write" and key in FLUSHED_WRITES
                    row += [fmt_ratio(ratio(rates[t], lf)) if flushed else ""
                            for t in flushed_cols]
                    say("| " + " | ".join(row) + " |")
            say("")
            src = ("a random source file in /dev/shm" if self.dd_source.startswith("/dev/shm")
                   else self.dd_source)
            cp_out = self.cp_out if self.cp_out == "/dev/null" else "/dev/shm"
            say(f"Writes: dd reads {src}; cp copies the random source file "
                f"{'in /dev/shm' if self.source.startswith('/dev/shm') else 'on the storage'}, "
                f"then `sync FILE`; the cp read copies to {cp_out}; fio runs with "
                f"--fallocate=none (rates from fio's own run time, which includes end_fsync); "
                f"Python uses open(..., buffering=0), 64 KiB per call, fsync before close; torch "
                f"saves one int32 tensor of the file's size, then fsyncs the file through a new "
                f"open, and loads it (its values checked outside the timing); the shards case runs "
                f"{SHARDS} Python threads at once, each on a file of its own, a {SHARDS}th of the "
                f"size, 1 MiB per call, each fsyncing its file. Every "
                f"write starts from a new file; the page cache is dropped before every phase"
                f"{' (and as much memory touched and freed again, --prefault)' if self.args.prefault else ''}. What "
                f"dd and cp wrote was read back and compared with cmp (first run, outside the "
                f"timing) on every target{' but null, which keeps nothing' if 'null' in targets else ''}."
                + (" ÷limit beside: ÷ the limit (fio, the same settings, on a file of its own) "
                   "measured right before each nvswapfs phase, the median of those runs."
                   if paired else "")
                + (" ÷flushed limit: the writes that end in fsync or sync, ÷ the limit's write "
                   "ending in a flush (end_fsync=1); on storage with a volatile cache the flush "
                   "waits for that cache to drain, on every target (a slower writer gives it "
                   "time to drain as it goes, so a ratio above 1 is possible)."
                   + (" null's fsync does nothing." if "null" in targets else "")
                   if flushed_cols else ""))
            say("")
            py = r["clients"].get("python", {})
            split = [(t, py[t]["write"]) for t in targets
                     if "writes_MBps" in py.get(t, {}).get("write", {})]
            if split:
                say("Python's writes alone (from open to the last write, before the fsync), "
                    "MB/s, and the seconds the fsync took (median): " +
                    "; ".join(f"{t} {fmt_rate(w['writes_MBps'])}, "
                              f"fsync {w['flush_seconds_median']:.2f} s" for t, w in split) +
                    "." + (" local's writes only fill its page cache, which its fsync writes "
                           "out." if any(t == "local" for t, _ in split) else ""))
                say("")
            self.report_cpu(r["clients"], targets)
        if "shm" in r:
            s = r["shm"]
            sw, sr = s["limit"]["write"]["MBps"], s["limit"]["read"]["MBps"]
            say(f"### memory-backed (/dev/shm, {human(self.shm_size)}): the software's own "
                f"overhead")
            say("")
            say("| case | write MB/s | ÷fio on shm | read MB/s | ÷fio on shm |")
            say("|---|---:|---:|---:|---:|")
            for row in self.limit_rows("fio libaio direct=1 bs=1M iodepth=32 on an image file",
                                       s["limit"]):
                say(row)
            ew, er = s["engine"]["write"]["MBps"], s["engine"]["read"]["MBps"]
            say(f"| nvswapfs engine alone (nvswapfs-bench) | {fmt_rate(ew)} | "
                f"{fmt_ratio(ratio(ew, sw))} | {fmt_rate(er)} | {fmt_ratio(ratio(er, sr))} |")
            for key, case in s["cases"].items():
                w = case["nvswapfs"].get("write", {}).get("MBps")
                rd = case["nvswapfs"].get("read", {}).get("MBps")
                labels = case["labels"]
                label = labels["write"] if labels["write"] == labels["read"] else \
                    f"{labels['write']} / {labels['read']}"
                say(f"| nvswapfs mount: {label} | "
                    f"{fmt_rate(w)} | {fmt_ratio(ratio(w, sw))} | {fmt_rate(rd)} | "
                    f"{fmt_ratio(ratio(rd, sr))} |")
            say("")
        if "meta" in r:
            m = r["meta"]
            targets = [t for t in self.args.targets if t in m]
            cross = cross_targets(targets)
            say(f"### metadata: {self.args.files} files in one directory, files/s "
                f"(create = open(O_CREAT) + 4 KiB write + close; create and unlink end with "
                f"syncfs() and fsync() of the directory; caches dropped before each phase)")
            say("")
            head = ["operation"] + [f"{t} files/s" for t in targets] + \
                   [f"{a}÷{b}" for a, b in cross]
            say("| " + " | ".join(head) + " |")
            say("|---|" + "---:|" * (len(head) - 1))
            for op in ("create", "stat", "unlink"):
                rates = {t: m[t][op]["files_per_s"] for t in targets}
                row = [op] + [f"{rates[t]:.0f}" for t in targets]
                row += [fmt_ratio(ratio(rates[a], rates[b])) for a, b in cross]
                say("| " + " | ".join(row) + " |")
            say("")
        if "rss" in r or "cold" in r:
            say("| nvswapfs daemon | value |")
            say("|---|---:|")
            if "rss" in r:
                x = r["rss"]
                say(f"| peak RSS (VmHWM) after mounting | {x['hwm_after_mount_MiB']:.1f} MiB |")
                say(f"| peak RSS (VmHWM) writing and reading {human(x['bytes'])} | "
                    f"{x['hwm_peak_MiB']:.1f} MiB |")
                say(f"| dd conv=fsync write / dd read of {human(x['bytes'])} | "
                    f"{fmt_rate(x['write_MBps'])} / {fmt_rate(x['read_MBps'])} MB/s |")
            if "cold" in r:
                x = r["cold"]
                runs = ", ".join(f"{v:.0f}" for v in x["mount_ms_runs"])
                say(f"| cold mount, {x['files']} files (median of {len(x['mount_ms_runs'])}: "
                    f"{runs}) | {x['mount_ms']:.0f} ms |")
                if "volume_open_in_process_ms" in x:
                    say(f"| volume open in process (nvswapfs-scale-bench, warm) | "
                        f"{x['volume_open_in_process_ms']:.0f} ms |")
            say("")
        self.report_targets(r)
        if "ceiling" in r:
            say("### the ceiling while the storage works: the client on nvswapfs-null-fuse "
                "with fio (libaio direct QD32, capped) beside it on the same storage, MB/s "
                "(means of the client's runs inside fio's window)")
            say("")
            say("| case | fio beside: asked | fio got | null | both at once | "
                "÷fio alone (the faster) | ÷local |")
            say("|---|---:|---:|---:|---:|---:|---:|")
            for c in r["ceiling"]:
                name = f"{c['label']} ({c['op']})" if c["op"] not in c["label"] else c["label"]
                fa, lo = c["fio_alone_MBps"], c["local"]["MBps"]
                windows = ([("none (first)", c["alone_first"])] +
                           [(str(w["asked"]), w) for w in c["beside"]] +
                           [("none (last)", c["alone_last"])])
                for asked, w in windows:
                    both = w["both_MBps"]
                    say(f"| {name} | {asked} | {fmt_rate(w['fio_MBps'])} | "
                        f"{fmt_rate(w['MBps'])} | {fmt_rate(both)} | "
                        f"{fmt_ratio(ratio(both, fa))} | {fmt_ratio(ratio(both, lo))} |")
                first, last = c["fio_alone_runs_MBps"]
                say(f"| {name} | fio alone (first; last) | {fmt_rate(first)}; {fmt_rate(last)} "
                    f"| | | | |")
                say(f"| {name} | the client on local, alone | | | {fmt_rate(lo)} | "
                    f"{fmt_ratio(ratio(lo, fa))} | |")
                ce = c["ceiling_MBps"]
                say(f"| {name} | **the ceiling**: the most both did at once | | | "
                    f"**{fmt_rate(ce)}** | {fmt_ratio(ratio(ce, fa))} | "
                    f"{fmt_ratio(ratio(ce, lo))} |")
                if "nvswapfs" in c:
                    nv = c["nvswapfs"]["MBps"]
                    say(f"| {name} | nvswapfs, alone: {fmt_ratio(ratio(nv, ce))}× the ceiling | "
                        f"| | {fmt_rate(nv)} | {fmt_ratio(ratio(nv, fa))} | "
                        f"{fmt_ratio(ratio(nv, lo))} |")
                # Python's writes: the rate before the fsync, which waits for a volatile
                # cache to drain (null's does nothing). local's writes only fill its page
                # cache, which its fsync then writes out: no ratio to the ceiling.
                for t in ("local", "nvswapfs"):
                    x = c.get(t, {})
                    if "writes_MBps" in x:
                        wr = x["writes_MBps"]
                        what = (f"{fmt_ratio(ratio(wr, ce))}× the ceiling" if t == "nvswapfs"
                                else "into its page cache")
                        say(f"| {name} | {t}, the writes before the fsync "
                            f"({x['flush_seconds_median']:.2f} s): {what} | | | "
                            f"{fmt_rate(wr)} | {fmt_ratio(ratio(wr, fa))} | |")
            say("")
            say("A daemon that keeps the data moves every byte through the FUSE transport and "
                "through the storage at once, on the same CPUs; it can go no faster than both "
                "sides reach at the same time. Before each of the client's runs on null, its "
                "file's page cache is dropped"
                + (" and, before a read, memory touched (--prefault)" if self.args.prefault else "")
                + "; on local, the whole page cache.")
            say("")
        for n in self.notes:
            say(f"note: {n}")

    @staticmethod
    def report_targets(r):
        """The performance targets against this run's figures; kept in the results too."""
        checks = r["against_targets"] = check_targets(r)
        if not checks:
            return
        say("### against the targets (nvswapfs; each ratio to a reference in this run)")
        say("")
        clients = [c for c in checks if "case" in c and c["unit"] == "x"]
        if clients:
            columns = [("÷limit", f"÷limit (≥{min(LIMIT_TARGETS.values())}-"
                                  f"{max(LIMIT_TARGETS.values())})"),
                       ("÷local", f"÷local (≥{LOCAL_TARGET})"),
                       ("÷fuse2fs", f"÷fuse2fs (≥{FUSE2FS_TARGET:g})")]
            say("| case | " + " | ".join(head for _, head in columns) + " |")
            say("|---|" + "---:|" * len(columns))
            for op in ("write", "read"):
                for key, case in r["clients"].items():
                    row = {c["what"]: c for c in clients if c["case"] == key and c["op"] == op}
                    if not row:
                        continue
                    cells = []
                    for what, _ in columns:
                        c = row.get(what)
                        cell = "" if c is None else target_verdict(c, need=what == "÷limit")
                        if c is not None and c.get("flushed"):
                            cell = "† " + cell
                        cells.append(cell)
                    say(f"| {case_label(case, op)} | " + " | ".join(cells) + " |")
            say("")
            if any(c.get("flushed") for c in clients):
                say("† ÷ the flushed limit: a write that ends in a flush, against the limit's "
                    "write ending in one (end_fsync=1).")
                say("")
        for c in checks:
            if c not in clients:
                where = f", {r['shm']['cases'][c['case']]['labels'][c['op']]} ({c['op']})" \
                    if "case" in c else ""
                bound = "at most" if c["most"] else "at least"
                need = f"{c['need']:g}" + ("" if c["unit"] == "x" else f" {c['unit']}")
                say(f"- {c['what']}{where}: {target_verdict(c)} ({bound} {need})")
        short = [c for c in checks if not c["met"]]
        out = [c for c in short if c.get("out_of_reach")]
        above = [c for c in short if "above_limit" in c and not c.get("out_of_reach")]
        rest = len(short) - len(out) - len(above)
        say("")
        say(f"Met: {len(checks) - len(short)} of {len(checks)}. "
            + (f"Short, out of reach for any FUSE daemon in this run (null, keeping nothing, "
               f"short too): {len(out)}. " if out else "")
            + (f"Short, needing more than fio moved on this storage in this run: "
               f"{len(above)}. " if above else "")
            + (f"Short otherwise: {rest}." if rest else ""))
        say("")

    @staticmethod
    def report_cpu(clients, targets):
        """The CPU time each client case cost per GB moved, beside the rates."""
        def cell(x):
            if not x:
                return ""
            d = f"{x['daemon']:.2f}" if "daemon" in x else "–"
            return f"{x['machine']:.2f} / {x['client']:.2f} / {d}"

        cross = cross_targets(targets)
        head = ["case"] + targets + [f"{a}÷{b}" for a, b in cross]
        say("CPU seconds per GB moved (medians), each cell the whole machine's busy time / the "
            "client's own / the daemon's; the machine's holds both and what the kernel did on "
            "nobody's account (writeback, interrupts). Ratios are of the machine's time.")
        say("")
        say("| " + " | ".join(head) + " |")
        say("|---|" + "---:|" * (len(head) - 1))
        for op in ("write", "read"):
            for key, case in clients.items():
                if key == "torch":
                    continue  # the client's figure would be mostly the import of torch
                cpu = {t: case.get(t, {}).get(op, {}).get("cpu_s_per_GB") for t in targets}
                row = [case_label(case, op)] + [cell(cpu[t]) for t in targets]
                row += [fmt_ratio(ratio((cpu[a] or {}).get("machine"),
                                        (cpu[b] or {}).get("machine"))) for a, b in cross]
                say("| " + " | ".join(row) + " |")
        say("")

    def write_json(self):
        if not self.args.json:
            return
        with open(self.args.json, "w") as f:
            json.dump(self.results, f, indent=1, sort_keys=False)
            f.write("\n")
        say(f"wrote {self.args.json}")

    def plot(self):
        r = self.results
        if "clients" not in r and "shm" not in r:
            return
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise Failure(f"plot: {e} (tools/bench/compare.sh installs python3-matplotlib and "
                          f"runs this file with /usr/bin/python3)")

        colors = {"nvswapfs": "#1f77b4", "variant": "#9467bd", "local": "#2ca02c",
                  "fuse2fs": "#ff7f0e", "null": "#7f7f7f"}
        panels = [p for p in ("clients", "shm") if p in r]
        fig, axes = plt.subplots(len(panels), 1, figsize=(15, 5.2 * len(panels) + 1.2),
                                 squeeze=False,
                                 gridspec_kw={"height_ratios": [3, 2][:len(panels)]})
        lim = r.get("limit", {})

        def bars(ax, cases, targets, limits, engine, title, names=None):
            groups = []
            for op in ("write", "read"):
                for key, case in cases.items():
                    groups.append((op, key, case))
            width = 0.8 / len(targets)
            top = 0
            for j, t in enumerate(targets):
                xs, hs = [], []
                for i, (op, key, case) in enumerate(groups):
                    v = case.get(t, {}).get(op, {}).get("MBps")
                    if v is not None:
                        xs.append(i - 0.4 + width * (j + 0.5))
                        hs.append(v)
                        top = max(top, v)
                ax.bar(xs, hs, width, label=(names or {}).get(t, t), color=colors.get(t))
                for x, h in zip(xs, hs):
                    ax.text(x, h, f"{h:.0f}", ha="center", va="bottom", fontsize=6, rotation=90)
            half = len(groups) // 2
            for k, (op, spans) in enumerate((("write", (-0.5, half - 0.5)),
                                             ("read", (half - 0.5, len(groups) - 0.5)))):
                v = limits.get(op, {}).get("MBps")
                if v:
                    ax.hlines(v, *spans, colors="k", linestyles="--",
                              label="limit: fio libaio direct QD32" if k == 0 else None)
                    top = max(top, v)
                e = engine.get(op, {}).get("MBps") if engine else None
                if e:
                    ax.hlines(e, *spans, colors="gray", linestyles=":",
                              label="engine alone (nvswapfs-bench)" if k == 0 else None)
                    top = max(top, e)
            f = limits.get("flushed", {}).get("MBps")
            if f:
                # A short mark over each write that ends in a flush, labelled once.
                marked = [i for i, (op, key, _) in enumerate(groups)
                          if op == "write" and key in FLUSHED_WRITES]
                for n, i in enumerate(marked):
                    ax.hlines(f, i - 0.45, i + 0.45, colors="firebrick", linestyles="-",
                              label="the limit ending in a flush (end_fsync=1)" if n == 0 else None)
            ax.axvline(half - 0.5, color="lightgray", linewidth=1)
            ax.set_xticks(range(len(groups)))
            ax.set_xticklabels([f"{case['labels'][op]}\n({op})".replace(" bs=1M", "")
                                for op, key, case in groups], fontsize=7, rotation=20,
                               ha="right")
            ax.set_ylabel("MB/s (10^6 B/s)")
            ax.set_ylim(0, top * 1.15 if top else 1)
            ax.set_title(title, fontsize=10)
            ax.legend(fontsize=8, loc="upper left", ncol=3)
            ax.grid(axis="y", alpha=0.3)

        row = 0
        if "clients" in r:
            bars(axes[row][0], r["clients"], self.args.targets, lim, r.get("engine"),
                 f"client cases, {human(self.size)} per file, on {r['machine']['device']}",
                 names={"variant": f"variant: {self.variant_said()}"}
                 if "variant" in self.args.targets else None)
            row += 1
        if "shm" in r:
            s = r["shm"]
            bars(axes[row][0], s["cases"], ["nvswapfs"], s["limit"], s["engine"],
                 f"memory-backed (/dev/shm), {human(self.shm_size)}: nvswapfs image on tmpfs",
                 names={"nvswapfs": "nvswapfs, image on /dev/shm"})
        m = r["machine"]
        fig.suptitle(f"nvswapfs vs the limit, the local file system and fuse2fs — "
                     f"sequential 1 MiB I/O, MB/s\n{m['nproc']} CPUs, "
                     f"{m['ram_bytes'] / GIB:.0f} GiB RAM, kernel {m['kernel']}, backing "
                     f"{m['device']} ({m['fstype']}), {r['date'][:10]}", fontsize=11)
        fig.tight_layout()
        fig.savefig(self.args.plot, dpi=110)
        plt.close(fig)
        say(f"wrote {self.args.plot}")

    # ---------------------------------------------------------- main

    def main(self):
        self.check_tools()
        self.make_dirs()
        if self.args.halt_poll is not None:
            self.set_halt_poll(self.args.halt_poll)
        if self.args.fuse_wake_here:
            self.set_fuse_wake_here(self.args.fuse_wake_here)
        if self.args.variant_wake_here and "variant" in self.args.targets:  # not --skip variant
            self.set_variant_wake_here()
        if {"limit", "shm", "ceiling"} & set(self.args.groups):
            self.reserve_hugepages()
        self.describe_machine()
        self.check_space()
        self.make_source()
        steps = [("limit", self.group_limit), ("engine", self.group_engine),
                 ("clients", self.group_clients), ("shm", self.group_shm),
                 ("meta", self.group_meta), ("rss", self.group_rss), ("cold", self.group_cold),
                 ("ceiling", self.group_ceiling)]
        took = self.results["group_seconds"] = {}
        for name, step in steps:
            if name == "engine" and "engine" in self.results:
                continue  # measured in turn with the limit
            if name in self.args.groups:
                start = time.monotonic()
                step()
                took[name] = time.monotonic() - start
                say(f"  ({name}: {took[name]:.1f} s)")
                say("")
        self.report()


def cross_targets(targets):
    """A table's ratio columns, (a, b) for a÷b: the variant to nvswapfs, and nvswapfs to
    each reference."""
    if "nvswapfs" not in targets:
        return []
    return ([("variant", "nvswapfs")] if "variant" in targets else []) + \
        [("nvswapfs", t) for t in ("local", "fuse2fs", "null") if t in targets]


def writes_and_flush(result):
    """`result`'s writes alone and its fsync, for the Python client's writes; else ''."""
    if "writes_MBps" not in result:
        return ""
    return (f"; the writes alone {fmt_rate(result['writes_MBps'])} MB/s, the fsync "
            f"{result['flush_seconds_median']:.2f} s")


def check_targets(r):
    """Each performance target that run `r` measured, as a dict: what, case and op (client
    cases), value, need, most (need is a ceiling, not a floor), unit ("x" for a ratio, else the
    figure's unit), met, flushed (a ÷limit check of a write ending in a flush, divided by the
    flushed limit), and for a ratio missed, null's ratio where null ran: a FUSE daemon that
    keeps nothing missing it too shows the target out of reach for any FUSE daemon in this
    run. A ratio to local or fuse2fs missed also carries above_limit when the rate it needed
    (need_MBps) is more than fio read or wrote in this run (limit_MBps: the limit, or its run
    right before the case, whichever was faster)."""
    checks = []

    def add(what, value, need, unit="x", most=False, case=None, op=None, null=None,
            flushed=False, reference=None, device=None):
        if value is None:
            return
        met = value <= need if most else value >= need
        c = {"what": what, "value": value, "need": need, "most": most, "unit": unit, "met": met}
        if case:
            c.update(case=case, op=op)
        if flushed:
            c["flushed"] = True
        if not met and null is not None:
            c["null"] = null
            c["out_of_reach"] = null < need
        if not met and reference and device and need * reference > device:
            c["above_limit"] = {"need_MBps": need * reference, "limit_MBps": device}
        checks.append(c)

    lim = r.get("limit", {})
    flushed = lim.get("flushed", {}).get("MBps")
    for key, case in r.get("clients", {}).items():
        nv, null = case.get("nvswapfs", {}), case.get("null", {})
        for op in ("write", "read"):
            rate = nv.get(op, {}).get("MBps")
            null_rate = null.get(op, {}).get("MBps")
            if (key, op) in LIMIT_TARGETS:
                # A write ending in a flush against the limit's write ending in one.
                by_flushed = op == "write" and key in FLUSHED_WRITES and flushed
                reference = flushed if by_flushed else lim.get(op, {}).get("MBps")
                add("÷limit", ratio(rate, reference), LIMIT_TARGETS[key, op], case=key, op=op,
                    null=ratio(null_rate, reference), flushed=bool(by_flushed))
            # The fastest fio moved the data in this run, for this case.
            fio = [lim.get(op, {}).get("MBps"), nv.get("limit_beside", {}).get(op, {}).get("MBps")]
            device = max((x for x in fio if x), default=None)
            for ref, need in (("local", LOCAL_TARGET), ("fuse2fs", FUSE2FS_TARGET)):
                other = case.get(ref, {}).get(op, {}).get("MBps")
                add(f"÷{ref}", ratio(rate, other), need, case=key, op=op,
                    null=ratio(null_rate, other), reference=other, device=device)
    for key, case in r.get("shm", {}).get("cases", {}).items():
        for op in ("write", "read"):
            add("on /dev/shm", case.get("nvswapfs", {}).get(op, {}).get("MBps"),
                SHM_TARGET_MBPS, unit="MB/s", case=key, op=op)
    if "rss" in r:
        add("peak RSS", r["rss"]["hwm_peak_MiB"], RSS_TARGET_MIB, unit="MiB", most=True)
    meta = r.get("meta", {})
    if "nvswapfs" in meta and "fuse2fs" in meta:
        for op in ("create", "stat", "unlink"):
            add(f"{op}s ÷fuse2fs", ratio(meta["nvswapfs"][op]["files_per_s"],
                                          meta["fuse2fs"][op]["files_per_s"]), 1.0)
    if "cold" in r:
        add(f"cold mount of {r['cold']['files']} files", r["cold"]["mount_ms"], COLD_TARGET_MS,
            unit="ms", most=True)
    return checks


def target_verdict(c, need=False):
    """A check's value and how it stands: "1.07", "0.57 **short**", "0.57 **short** (null
    0.66, out of reach)", "2.30 **short** (null 8.88; needs 2470 MB/s, fio read 2007)"; with
    `need`, the least it needed after the value ("1.07 ≥0.9")."""
    text = fmt_ratio(c["value"]) if c["unit"] == "x" else \
        f"{fmt_rate(c['value'])} {c['unit']}"
    if need:
        text += f" ≥{c['need']:g}"
    if c["met"]:
        return text
    text += " **short**"
    notes = []
    if "null" in c:
        notes.append(f"null {fmt_ratio(c['null'])}{', out of reach' if c['out_of_reach'] else ''}")
    if "above_limit" in c:
        a = c["above_limit"]
        moved = "read" if c.get("op") == "read" else "wrote"
        notes.append(f"needs {fmt_rate(a['need_MBps'])} MB/s, fio {moved} "
                     f"{fmt_rate(a['limit_MBps'])}")
    if notes:
        text += f" ({'; '.join(notes)})"
    return text


def case_label(case, op):
    """A client case's row label for `op`, naming the op unless the label does."""
    label = case["labels"][op]
    return label if op in label else f"{label} ({op})"


def remove_case_files(path):
    """A client case's file, and the shards case's PATH.0, PATH.1, ..."""
    for p in [path] + [f"{path}.{i}" for i in range(SHARDS)]:
        if os.path.exists(p):
            os.unlink(p)


def per_gb(seconds, nbytes):
    """CPU seconds (CpuMeter.seconds) per 10^9 bytes moved."""
    return {k: v / (nbytes / 1e9) for k, v in seconds.items()}


def summarize(runs):
    rates = [x["MBps"] for x in runs]
    out = {"MBps": median(rates), "runs_MBps": rates}
    if runs and "cpu_s_per_GB" in runs[0]:
        cpu = {k: [x["cpu_s_per_GB"][k] for x in runs] for k in runs[0]["cpu_s_per_GB"]}
        out["cpu_s_per_GB"] = {k: median(v) for k, v in cpu.items()}
        out["cpu_s_per_GB_runs"] = cpu
    for key in ("seconds", "wall_seconds", "flush_seconds"):
        if runs and key in runs[0]:
            out[key] = [x[key] for x in runs]
    if runs and "writes_MBps" in runs[0]:
        out["writes_runs_MBps"] = [x["writes_MBps"] for x in runs]
        out["writes_MBps"] = median(out["writes_runs_MBps"])
        out["flush_seconds_median"] = median(out["flush_seconds"])
    return out


def ceiling_cases(p, text):
    out = []
    keys = [k for k in CASE_KEYS if k not in NO_CEILING]
    for item in (x.strip() for x in text.split(",") if x.strip()):
        key, _, op = item.partition(":")
        if key in NO_CEILING:
            p.error(f"--ceiling: {item!r}: {NO_CEILING[key]} (cases: {', '.join(keys)})")
        if key not in keys or op not in ("write", "read"):
            p.error(f"--ceiling: {item!r} is not CASE:write or CASE:read (cases: "
                    f"{', '.join(keys)})")
        out.append((key, op))
    if not out:
        p.error("--ceiling: no case")
    return out


def ceiling_rates(p, text):
    out = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        if item == "max":
            out.append(item)
        elif item.isdigit() and int(item) > 0:
            out.append(int(item))
        else:
            p.error(f"--ceiling-rates: {item!r} is not a rate in MB/s or max")
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="compare.py",
        description="Compares nvswapfs with the storage's limit (fio), its own engine, the "
                    "kernel's file system and fuse2fs on the same storage.",
        epilog=f"groups: {', '.join(GROUPS)} (ceiling only when named); targets: "
               f"{', '.join(TARGETS)} (null only when named). "
               "--only and --skip take a comma-separated mix of both, "
               "e.g. --skip fuse2fs,rss,cold.")
    p.add_argument("--bin", default=os.path.join(REPO, "build", "bin"),
                   help="directory holding nvswapfs, mkfs.nvswapfs, fsck.nvswapfs, nvswapfs-bench, "
                        "nvswapfs-scale-bench [%(default)s]")
    p.add_argument("--dir", default="/var/tmp/nvswapfs-compare",
                   help="scratch directory on the storage to measure; created and removed by "
                        "this script, must not exist or be empty [%(default)s]")
    p.add_argument("--size", type=parse_size, default=parse_size("2G"),
                   help="bytes per file for the sequential cases, a multiple of 1M [2G]")
    p.add_argument("--files", type=int, default=10000, help="files for the metadata cases [10000]")
    p.add_argument("--rss-size", type=parse_size, default=parse_size("8G"),
                   help="bytes written and read back while the daemon's memory is watched [8G]")
    p.add_argument("--cold-files", type=int, default=100000,
                   help="files in the volume whose cold mount is timed [100000]")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs of each case, alternating the targets; medians are reported [1]")
    p.add_argument("--prefault", action="store_true",
                   help="after each page-cache drop, touch and free twice --size plus 512 MiB of "
                        "memory (for virtual machines whose host reclaims freed guest memory)")
    p.add_argument("--halt-poll", type=int, default=None, metavar="NS",
                   help="in a virtual machine with the cpuidle-haltpoll driver, let an idle CPU "
                        "poll up to NS nanoseconds before halting (the kernel's default is "
                        "200000) for this run; the setting in force is restored at exit")
    p.add_argument("--fuse-wake-here", choices=("Y", "N"), default=None,
                   help="set the fuse module's wake_here parameter, where the kernel has it, "
                        "for this run (it applies to every FUSE mount: nvswapfs, fuse2fs and "
                        "null alike); the setting in force is restored at exit")
    p.add_argument("--options", default="", metavar="OPTS",
                   help="more -o options for every nvswapfs mount, such as "
                        "queue_depth=64,sync_writes")
    p.add_argument("--variant-options", default="", metavar="OPTS",
                   help="adds the variant target: a second nvswapfs mount with these -o options "
                        "as well (after --options), in turn with nvswapfs in the clients and "
                        "meta groups, such as read_ahead=32M")
    p.add_argument("--variant-wake-here", choices=("Y", "N"), default=None,
                   help="adds the variant target (with --variant-options, or nvswapfs as "
                        "mounted otherwise) and sets the fuse module's wake_here to this for "
                        "each of its runs, putting the run's own back after each")
    p.add_argument("--cases", default=",".join(CASE_KEYS), metavar="CASE,...",
                   help="the client cases the clients group runs [%(default)s]")
    p.add_argument("--ceiling", default=CEILING_CASES, metavar="CASE:OP,...",
                   help=f"client cases the ceiling group runs on null, each write or read "
                        f"(cases: {', '.join(CASE_KEYS)}) [%(default)s]")
    p.add_argument("--ceiling-rates", default=CEILING_RATES, metavar="MBPS,...",
                   help="the rates fio beside the client is capped at, in MB/s, or max "
                        "(uncapped); the client also runs alone before and after [%(default)s]")
    p.add_argument("--ceiling-seconds", type=int, default=15, metavar="S",
                   help="seconds fio runs beside the client at each rate [%(default)s]")
    p.add_argument("--only", default="", help="comma-separated groups and/or targets to run")
    p.add_argument("--skip", default="", help="comma-separated groups and/or targets to leave out")
    p.add_argument("--json", default=None, help="write all raw results to this file")
    p.add_argument("--plot", default=None,
                   help="PNG chart [compare.png beside --json, or in the current directory]")
    a = p.parse_args(argv)
    for name, value in (("--size", a.size), ("--rss-size", a.rss_size)):
        if value % MIB:
            p.error(f"{name} must be a multiple of 1M")
    if a.files <= 0 or a.cold_files <= 0 or a.repeat <= 0:
        p.error("--files, --cold-files and --repeat must be positive")
    known = set(GROUPS) | set(TARGETS)

    def names(text, opt):
        items = [x.strip() for x in text.split(",") if x.strip()]
        bad = [x for x in items if x not in known]
        if bad:
            p.error(f"{opt}: unknown {', '.join(bad)} (choose from {', '.join(GROUPS + TARGETS)})")
        return items

    only, skip = names(a.only, "--only"), names(a.skip, "--skip")
    a.groups = [g for g in GROUPS if g not in skip and (
        g in only or (not set(only) & set(GROUPS) and g in DEFAULT_GROUPS))]
    variant_set = bool(a.variant_options or a.variant_wake_here)
    a.targets = [t for t in TARGETS if t not in skip and (
        t in only or (not set(only) & set(TARGETS) and t in DEFAULT_TARGETS) or
        (t == "variant" and variant_set))]
    if "variant" in a.targets and not variant_set:
        p.error("the variant target needs --variant-options and/or --variant-wake-here: what "
                "it changes")
    if "variant" in a.targets and not {"clients", "meta"} & set(a.groups):
        p.error("--variant-options and --variant-wake-here: only the clients and meta groups "
                "run the variant")
    if not a.groups:
        p.error("nothing left to run")
    for opt, value in (("--options", a.options), ("--variant-options", a.variant_options)):
        if any(o.strip().startswith("log=") for o in value.split(",")):
            p.error(f"{opt}: log= is the benchmark's own: it keeps each mount's log to show "
                    f"when the mount fails")
    a.cases = [x.strip() for x in a.cases.split(",") if x.strip()]
    bad = [x for x in a.cases if x not in CASE_KEYS]
    if bad or not a.cases:
        p.error(f"--cases: {'unknown ' + ', '.join(bad) if bad else 'none given'} (choose from "
                f"{', '.join(CASE_KEYS)})")
    a.ceiling = ceiling_cases(p, a.ceiling)
    a.ceiling_rates = ceiling_rates(p, a.ceiling_rates)
    if a.ceiling_seconds < 3:
        p.error(f"--ceiling-seconds: at least 3, not {a.ceiling_seconds}")
    if a.halt_poll is not None and a.halt_poll < 0:
        p.error(f"--halt-poll: not a time in ns: {a.halt_poll}")
    if not a.targets and {"clients", "meta"} & set(a.groups):
        p.error("the clients and meta groups need at least one target")
    if a.plot is None:
        a.plot = os.path.join(os.path.dirname(os.path.abspath(a.json)) if a.json else os.getcwd(),
                              "compare.png")
    return a


def main(argv):
    args = parse_args(argv)
    c = Compare(args)
    atexit.register(c.cleanup)

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    rc = 0
    try:
        c.main()
        c.write_json()
        c.plot()
    except Failure as e:
        print(f"compare.py: FAILED: {e}", file=sys.stderr)
        c.print_daemon_logs()
        c.results["error"] = str(e)
        rc = 1
    except KeyboardInterrupt:
        print("compare.py: interrupted; unmounting and removing the scratch files", file=sys.stderr)
        c.results["error"] = "interrupted"
        rc = 130
    except Exception as e:  # a bug here must not cost the hour measured before it
        traceback.print_exc()
        c.print_daemon_logs()
        c.results["error"] = f"{type(e).__name__}: {e}"
        rc = 1
    finally:
        c.cleanup()
    if rc and args.json:
        try:
            c.write_json()  # what was measured before the failure, and the error
        except OSError:
            pass
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
