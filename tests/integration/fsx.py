#!/usr/bin/python3
"""A model-checked random tester for files on a mounted nvswapfs, after fsx.

Runs a long random sequence of operations on files in DIR and checks every
read against an in-memory copy of what each file must hold:

    fsx.py DIR [--ops N] [--seed S] [--files K] [--max-size BYTES]
           [--region START:LENGTH]   (confine writes to one region of a shared file)

Operations: write, read, truncate, fallocate (allocate and punch hole), mmap
read, mmap write, read-write opens writing and streaming reads (which the
daemon reads ahead for), fsync, rename and unlink-and-recreate. On a mismatch it
prints the seed and the last operations, and exits 1.
"""

import argparse
import ctypes
import mmap
import os
import random
import sys

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def fallocate(fd, mode, offset, length):
    if _libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Mismatch(Exception):
    pass


class Tester:
    """Random operations with a model of every file's bytes.

    In region mode the tester owns [start, start + length) of one shared,
    pre-sized file: its model is that region, and file offsets are model
    offsets plus `start`.
    """

    def __init__(self, directory, seed, files, max_size, region):
        self.dir = directory
        self.rng = random.Random(seed)
        self.max_size = max_size
        self.base = region[0] if region else 0
        self.shared = region is not None
        self.history = []
        if self.shared:
            self.names = ["shared"]
            with open(self.path("shared"), "rb") as f:
                f.seek(region[0])
                self.model = {"shared": bytearray(f.read(region[1]))}
        else:
            self.names = [f"fsx{seed}-{i}" for i in range(files)]
            self.model = {}
            for name in self.names:
                with open(self.path(name), "wb"):
                    pass
                self.model[name] = bytearray()

    def path(self, name):
        return os.path.join(self.dir, name)

    def log(self, text):
        self.history.append(text)
        del self.history[:-40]

    def check(self, name, offset, got):
        """`offset` is a model offset; `got` what the file held there."""
        want = bytes(self.model[name][offset:offset + len(got)])
        if got != want:
            at = next(i for i in range(min(len(got), len(want)) + 1)
                      if i >= len(got) or i >= len(want) or got[i] != want[i])
            raise Mismatch(f"{name}: {len(got)} bytes at {self.base + offset} differ from the "
                           f"model at byte {self.base + offset + at} (want {len(want)} bytes)")

    def write_range(self, name):
        limit = len(self.model[name]) if self.shared else self.max_size
        if not self.shared:
            limit = min(len(self.model[name]) + 100_000, self.max_size)
        off = self.rng.randrange(max(limit, 1))
        room = (len(self.model[name]) if self.shared else self.max_size) - off
        return off, 1 + self.rng.randrange(max(1, min(room, 300_000)))

    def read_range(self, name):
        size = len(self.model[name])
        off = self.rng.randrange(size + 1) if size else 0
        return off, self.rng.randrange(400_000)

    def step(self):
        name = self.rng.choice(self.names)
        ops = ["write", "write", "read", "read", "mmap_read", "mmap_write", "rdwr_write",
               "rdwr_stream", "fsync"]
        if not self.shared:
            ops += ["truncate", "fallocate", "punch", "rename", "recreate"]
        getattr(self, "op_" + self.rng.choice(ops))(name)

    def apply(self, name, off, data):
        m = self.model[name]
        if len(m) < off + len(data):
            m.extend(bytes(off + len(data) - len(m)))
        m[off:off + len(data)] = data

    def write_args(self, name):
        """Where the next write goes and its bytes (a shared region's writes stay inside it)."""
        off, n = self.write_range(name)
        if self.shared:
            n = min(n, len(self.model[name]) - off)
        return off, self.rng.randbytes(n)

    def op_write(self, name):
        off, data = self.write_args(name)
        self.log(f"write {name} {self.base + off}+{len(data)}")
        self.write_alone(name, off, data)

    def write_alone(self, name, off, data):
        """Writes `data` at model offset `off` through a write-only open of its own."""
        fd = os.open(self.path(name), os.O_WRONLY)
        try:
            if os.pwrite(fd, data, self.base + off) != len(data):
                raise Mismatch(f"short write to {name}")
        finally:
            os.close(fd)
        self.apply(name, off, data)

    def op_read(self, name):
        off, n = self.read_range(name)
        if self.shared:
            n = min(n, len(self.model[name]) - off)
        self.log(f"read {name} {self.base + off}+{n}")
        fd = os.open(self.path(name), os.O_RDONLY)
        try:
            got = os.pread(fd, n, self.base + off)
        finally:
            os.close(fd)
        self.check(name, off, got)

    def op_mmap_read(self, name):
        size = len(self.model[name])
        if size == 0:
            return
        off, n = self.read_range(name)
        off = min(off, size - 1)
        n = min(n, size - off)
        self.log(f"mmap_read {name} {self.base + off}+{n}")
        with open(self.path(name), "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
            got = m[self.base + off:self.base + off + n]
        self.check(name, off, got)

    def op_mmap_write(self, name):
        size = len(self.model[name])
        if size == 0:
            return
        off, n = self.write_range(name)
        if off >= size:
            return
        n = min(n, size - off)
        data = self.rng.randbytes(n)
        self.log(f"mmap_write {name} {self.base + off}+{n}")
        with open(self.path(name), "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
            m[self.base + off:self.base + off + n] = data
            m.flush()
        self.apply(name, off, data)

    def op_rdwr_write(self, name):
        # A read-write open writes past the page cache while a shared mapping
        # of the same descriptor holds dirty pages; each sees the other.
        off, data = self.write_args(name)
        n = len(data)
        size = len(self.model[name])
        moff = mn = 0
        if size:
            moff = self.rng.randrange(size)
            mn = 1 + self.rng.randrange(min(size - moff, 100_000))
        mdata = self.rng.randbytes(mn)
        self.log(f"rdwr_write {name} {self.base + off}+{n}, mapped {self.base + moff}+{mn}")
        fd = os.open(self.path(name), os.O_RDWR)
        m = None
        try:
            if mn:
                m = mmap.mmap(fd, self.base + size)
                m[self.base + moff:self.base + moff + mn] = mdata
                self.apply(name, moff, mdata)
            if os.pwrite(fd, data, self.base + off) != n:
                raise Mismatch(f"short write to {name}")
            self.apply(name, off, data)
            self.check(name, off, os.pread(fd, n, self.base + off))
            if m is not None:
                self.check(name, moff, m[self.base + moff:self.base + moff + mn])
        finally:
            if m is not None:
                m.close()
            os.close(fd)

    def op_rdwr_stream(self, name):
        """Sequential reads through a read-write open (which bypasses the page cache, so the
        daemon reads ahead), of odd sizes, some into a buffer off a page boundary (which the
        kernel sends as two requests), and now and then a write ahead of the stream by another
        descriptor, which what was read ahead must not hide."""
        size = len(self.model[name])
        at = self.rng.randrange(size + 1) if size else 0
        reads = self.rng.randrange(2, 12)
        write_at = self.rng.randrange(reads) if self.rng.random() < 0.4 else -1
        self.log(f"rdwr_stream {name} from {self.base + at}, {reads} reads, write before "
                 f"read {write_at}")
        fd = os.open(self.path(name), os.O_RDWR)
        try:
            with mmap.mmap(-1, 2 << 20) as buf:
                for i in range(reads):
                    if i == write_at:
                        off = min(at + self.rng.randrange(1 << 20), len(self.model[name]))
                        limit = len(self.model[name]) if self.shared else self.max_size
                        n = min(self.rng.randrange(1, 200_000), max(0, limit - off))
                        data = self.rng.randbytes(n)
                        self.log(f"  write {self.base + off}+{n}")
                        self.write_alone(name, off, data)
                    n = self.rng.choice([1 << 20, 65536, self.rng.randrange(1, 1_200_000)])
                    if self.shared:
                        n = min(n, len(self.model[name]) - at)
                    skew = self.rng.choice([0, 16, 4095])
                    view = memoryview(buf)[skew:skew + n]
                    try:
                        got = bytes(view[:os.preadv(fd, [view], self.base + at)])
                    finally:
                        view.release()
                    want = max(0, min(n, len(self.model[name]) - at))
                    if len(got) != want:
                        raise Mismatch(f"{name}: read {len(got)} bytes at {self.base + at}, "
                                       f"want {want}")
                    self.check(name, at, got)
                    at += len(got)
        finally:
            os.close(fd)

    def op_fsync(self, name):
        self.log(f"fsync {name}")
        fd = os.open(self.path(name), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def op_truncate(self, name):
        size = self.rng.randrange(self.max_size)
        self.log(f"truncate {name} {size}")
        os.truncate(self.path(name), size)
        m = self.model[name]
        if size < len(m):
            del m[size:]
        else:
            m.extend(bytes(size - len(m)))

    def op_fallocate(self, name):
        off, n = self.write_range(name)
        self.log(f"fallocate {name} {off}+{n}")
        fd = os.open(self.path(name), os.O_WRONLY)
        try:
            fallocate(fd, 0, off, n)
        finally:
            os.close(fd)
        m = self.model[name]
        if len(m) < off + n:
            m.extend(bytes(off + n - len(m)))

    def op_punch(self, name):
        off, n = self.write_range(name)
        self.log(f"punch {name} {off}+{n}")
        fd = os.open(self.path(name), os.O_WRONLY)
        try:
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n)
        finally:
            os.close(fd)
        m = self.model[name]
        end = min(off + n, len(m))
        if off < end:
            m[off:end] = bytes(end - off)

    def op_rename(self, name):
        new = name[:-1] if name.endswith("r") else name + "r"
        self.log(f"rename {name} {new}")
        os.rename(self.path(name), self.path(new))
        self.names[self.names.index(name)] = new
        self.model[new] = self.model.pop(name)

    def op_recreate(self, name):
        self.log(f"recreate {name}")
        os.unlink(self.path(name))
        with open(self.path(name), "wb"):
            pass
        self.model[name] = bytearray()

    def verify_all(self):
        for name in self.names:
            with open(self.path(name), "rb") as f:
                f.seek(self.base)
                got = f.read(len(self.model[name]) if self.shared else -1)
            if len(got) != len(self.model[name]):
                raise Mismatch(f"{name}: size {len(got)}, model {len(self.model[name])}")
            self.check(name, 0, got)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--files", type=int, default=3)
    ap.add_argument("--max-size", type=int, default=6 << 20)
    ap.add_argument("--region", default=None, help="START:LENGTH of a shared file")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    region = tuple(map(int, args.region.split(":"))) if args.region else None
    print(f"fsx: seed {seed} (replay with --seed {seed}), {args.ops} operations", flush=True)
    t = Tester(args.dir, seed, args.files, args.max_size, region)
    try:
        for i in range(args.ops):
            t.step()
        t.verify_all()
    except (Mismatch, OSError) as e:
        print(f"fsx: FAILED at operation {i} with seed {seed}: {e}", file=sys.stderr)
        print("fsx: last operations:\n  " + "\n  ".join(t.history), file=sys.stderr)
        return 1
    print(f"fsx: {args.ops} operations, every read matched the model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
