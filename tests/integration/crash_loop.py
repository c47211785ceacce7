#!/usr/bin/python3
"""The crash loop on a real mount: writers at work, kill -9, check, repeat.

    crash_loop.py BIN_DIR [--iterations N] [--writers K] [--seed S] [--dir D]

Each iteration mounts the volume, starts K writer processes (create files,
fsync at random points, rename and unlink them), kills the daemon with
SIGKILL at a random moment, clears the dead mount, requires fsck to be
clean, mounts again and checks that every file whose fsync or close returned
is byte-identical, and that no file holds a byte it was never given (bytes not
yet durable read as zeros or as what was written, nothing else). Writers
journal what they did outside the mount, so the checker knows what must
have survived. Exits 1 at the first violation, printing the seed.
"""

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

WRITER = r'''
import hashlib, os, random, sys
mnt, journal_path, seed, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rng = random.Random(seed)
journal = open(journal_path, "a")
def note(*fields):
    journal.write(" ".join(map(str, fields)) + "\n"); journal.flush(); os.fsync(journal.fileno())
def data(s, n):
    return random.Random(s).randbytes(n)
n = 0
synced = []
try:
    while True:
        n += 1
        name = f"w{k}-{seed}-{n}"
        s, size = rng.randrange(1 << 30), rng.randrange(1, 3 << 20)
        note("INTENT", name, s, size)
        with open(os.path.join(mnt, name), "wb") as f:
            f.write(data(s, size))
            if rng.random() < 0.6:
                f.flush(); os.fsync(f.fileno())
                note("SYNCED", name, hashlib.sha256(data(s, size)).hexdigest(), size)
                synced.append(name)
        # Closed: it must survive the daemon being killed, fsync'd or not.
        note("CLOSED", name, hashlib.sha256(data(s, size)).hexdigest(), size)
        if synced and rng.random() < 0.25:
            old = synced.pop(rng.randrange(len(synced)))
            new = old + "r"
            note("RENAMING", old, new)
            os.rename(os.path.join(mnt, old), os.path.join(mnt, new))
            fd = os.open(mnt, os.O_RDONLY); os.fsync(fd); os.close(fd)
            note("RENAMED", old, new)
            synced.append(new)
        if synced and rng.random() < 0.2:
            old = synced.pop(rng.randrange(len(synced)))
            note("UNLINKING", old)
            os.unlink(os.path.join(mnt, old))
            fd = os.open(mnt, os.O_RDONLY); os.fsync(fd); os.close(fd)
            note("UNLINKED", old)
except OSError:
    pass  # the daemon is gone
'''


def run(*cmd, check=True):
    p = subprocess.run(list(map(str, cmd)), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {p.returncode}: {p.stderr}{p.stdout}")
    return p


def mount_fg(bin_, image, mnt, log):
    """Starts the daemon in the foreground and waits for the mount."""
    daemon = subprocess.Popen([os.path.join(bin_, "nvswapfs"), "-f", "-o", f"log={log}", image,
                               mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while not mounted(mnt):
        if daemon.poll() is not None or time.time() > deadline:
            raise Violation("the volume did not mount (see the daemon log)")
        time.sleep(0.02)
    return daemon


def unmount(daemon, mnt):
    """A clean unmount: the daemon commits, checkpoints and exits 0."""
    run("fusermount3", "-u", mnt)
    if daemon.wait(timeout=60) != 0:
        raise Violation(f"the daemon exited {daemon.returncode} after a clean unmount")


def mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Violation(Exception):
    pass


def expected_state(journals):
    """From the writers' journals: name -> (seed, size, sha or None, maybe_absent)."""
    files = {}
    for path in journals:
        with open(path) as f:
            lines = [l.split() for l in f if l.endswith("\n")]
        for fields in lines:
            kind, args = fields[0], fields[1:]
            if kind == "INTENT":
                files[args[0]] = {"seed": int(args[1]), "size": int(args[2]), "sha": None,
                                  "must_exist": False, "alias": None}
            elif kind in ("SYNCED", "CLOSED"):
                files[args[0]]["sha"] = args[1]
                files[args[0]]["must_exist"] = True
            elif kind == "RENAMING":
                f = files.pop(args[0])
                f["alias"] = args[0]  # until RENAMED, either name may hold it
                files[args[1]] = f
            elif kind == "RENAMED":
                files[args[1]]["alias"] = None
            elif kind == "UNLINKING":
                files[args[0]]["must_exist"] = False
                files[args[0]]["unlinking"] = True
            elif kind == "UNLINKED":
                files.pop(args[0])
    return files


def check(mnt, journals):
    present = set(os.listdir(mnt))
    for name, f in expected_state(journals).items():
        where = name if name in present else f["alias"] if f["alias"] in present else None
        if where is None:
            if f["must_exist"]:
                raise Violation(f"{name} was fsync'd or closed but is gone")
            continue
        with open(os.path.join(mnt, where), "rb") as fh:
            got = fh.read()
        want = random.Random(f["seed"]).randbytes(f["size"])
        if f["sha"] is not None and f["must_exist"]:
            if hashlib.sha256(got).hexdigest() != f["sha"]:
                raise Violation(f"{where}: fsync'd or closed content differs "
                                f"({len(got)} of {f['size']} bytes)")
            continue
        # Not (yet) durable: any byte present is zero or what was written.
        if len(got) > len(want):
            raise Violation(f"{where}: {len(got)} bytes, only {len(want)} were ever written")
        for i in range(0, len(got), 4096):
            chunk, ref = got[i:i + 4096], want[i:i + 4096]
            if chunk != ref and any(a != 0 and a != b for a, b in zip(chunk, ref)):
                raise Violation(f"{where}: bytes near offset {i} were never written there")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bin")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="nvswapfs-crash-", dir=args.dir or "/var/tmp")
    image, mnt = os.path.join(work, "v.img"), os.path.join(work, "mnt")
    os.mkdir(mnt)
    bin_ = os.path.abspath(args.bin)
    run(os.path.join(bin_, "mkfs.nvswapfs"), "--size", "2G", image)
    journals = [os.path.join(work, f"journal{k}") for k in range(args.writers)]
    for j in journals:
        open(j, "w").close()
    print(f"crash loop: seed {seed} (replay with --seed {seed}), {args.iterations} iterations, "
          f"{args.writers} writers", flush=True)
    try:
        for it in range(args.iterations):
            log = os.path.join(work, "daemon.log")
            daemon = mount_fg(bin_, image, mnt, log)
            check(mnt, journals)  # what the last crash left must still hold
            writers = [subprocess.Popen([sys.executable, "-c", WRITER, mnt, journals[k],
                                         str(rng.randrange(1 << 30)), str(k)])
                       for k in range(args.writers)]
            time.sleep(rng.uniform(0.05, 1.5))
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            for w in writers:
                w.wait(timeout=60)
            run("fusermount3", "-u", mnt)
            p = run(os.path.join(bin_, "fsck.nvswapfs"), "-n", image, check=False)
            if p.returncode != 0:
                raise Violation(f"iteration {it}: fsck exited {p.returncode}: {p.stdout}")
            # Keep the volume from filling up over many iterations.
            if it % 10 == 9:
                daemon = mount_fg(bin_, image, mnt, log)
                for name in os.listdir(mnt):
                    os.unlink(os.path.join(mnt, name))
                unmount(daemon, mnt)
                for j in journals:
                    open(j, "w").close()
        # A last clean mount checks the final crash too.
        daemon = mount_fg(bin_, image, mnt, os.path.join(work, "daemon.log"))
        check(mnt, journals)
        unmount(daemon, mnt)
    except (Violation, RuntimeError) as e:
        print(f"crash loop: FAILED with seed {seed}: {e}", file=sys.stderr)
        print(f"crash loop: volume and journals kept in {work}", file=sys.stderr)
        return 1
    print(f"crash loop: {args.iterations} kill -9 iterations, fsck clean every time, "
          "no fsync'd or closed byte lost")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
