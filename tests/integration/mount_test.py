#!/usr/bin/python3
"""nvswapfs really mounted and used the way people use it.

Every test here mounts a fresh volume (an image file) with the daemon and
drives it with ordinary tools, Python, numpy, torch and fio. Run as root
with /dev/fuse:

    /usr/bin/python3 tests/integration/mount_test.py BIN_DIR [unittest args]

BIN_DIR holds nvswapfs, mkfs.nvswapfs and fsck.nvswapfs.
"""

import errno
import hashlib
import json
import mmap
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BIN = None  # set from the command line


def run(*cmd, check=True, **kw):
    """Runs a command; returns CompletedProcess with text output."""
    p = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {p.returncode}:\n"
                             f"{p.stdout}\n{p.stderr}")
    return p


def sha256(path, mode="rb", chunk_size=1 << 20):
    h = hashlib.sha256()
    with open(path, mode, buffering=0) as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_pages(fd, length):
    """Pages of the first `length` bytes of `fd` in the page cache (cachestat, Linux 6.5)."""
    import ctypes
    import struct
    libc = ctypes.CDLL(None, use_errno=True)
    stats = ctypes.create_string_buffer(5 * 8)  # nr_cache, nr_dirty, nr_writeback, ...
    if libc.syscall(451, fd, struct.pack("QQ", 0, length), stats, 0) != 0:
        raise OSError(ctypes.get_errno(), "cachestat")
    return struct.unpack("5Q", stats.raw)[0]


def io_counters(path):
    """The file's user.nvswapfs.io counters, by name."""
    text = os.getxattr(path, "user.nvswapfs.io").decode()
    return {k: int(v) for k, v in (kv.split("=") for kv in text.split())}


def is_mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Mount:
    """A formatted image and a daemon serving it in the foreground."""

    def __init__(self, workdir, size="4G", options=""):
        self.workdir = workdir
        self.image = os.path.join(workdir, "volume.img")
        self.mnt = os.path.join(workdir, "mnt")
        self.log = os.path.join(workdir, "daemon.log")
        self.options = options
        self.proc = None
        os.makedirs(self.mnt, exist_ok=True)
        run(os.path.join(BIN, "mkfs.nvswapfs"), "-f", "--size", size, self.image)

    def start(self, options=None):
        opts = options if options is not None else self.options
        cmd = [os.path.join(BIN, "nvswapfs"), "-f", "-o", f"log={self.log}" +
               (f",{opts}" if opts else ""), self.image, self.mnt]
        self.stderr = os.path.join(self.workdir, "daemon.stderr")
        with open(self.stderr, "w") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.time() + 20
        while not is_mounted(self.mnt):
            if self.proc.poll() is not None:
                with open(self.stderr) as err:
                    raise AssertionError(f"daemon exited {self.proc.returncode}: {err.read()}")
            if time.time() > deadline:
                raise AssertionError("mount did not appear within 20 s")
            time.sleep(0.05)
        return self

    def stop(self):
        """Unmounts and requires a clean exit."""
        if self.proc is None:
            return
        run("fusermount3", "-u", self.mnt)
        rc = self.proc.wait(timeout=60)
        self.proc = None
        if rc != 0:
            raise AssertionError(f"daemon exited {rc} after unmount; log:\n{self.log_text()}")

    def kill(self):
        """kill -9: the daemon gets no chance to commit anything."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None
        run("fusermount3", "-u", self.mnt, check=False)

    def fsck(self):
        p = run(os.path.join(BIN, "fsck.nvswapfs"), "-n", self.image, check=False)
        if p.returncode != 0:
            raise AssertionError(f"fsck exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p.stdout

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""


class MountTest(unittest.TestCase):
    size = "4G"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nvswapfs-it-", dir="/var/tmp")
        # tearDown does not run when setUp fails: the image goes either way.
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.m = Mount(self.tmp, size=self.size).start()

    def tearDown(self):
        try:
            if self.m.proc is not None:
                self.m.stop()
            self.m.fsck()
        finally:
            if is_mounted(self.m.mnt):
                run("fusermount3", "-u", self.m.mnt, check=False)
            shutil.rmtree(self.tmp, ignore_errors=True)

    def remount(self):
        self.m.stop()
        self.m.fsck()
        self.m.start()

    def make_source(self, size_mb=8, files=5):
        """A local tree with a few files, subdirectories and a symlink."""
        src = os.path.join(self.tmp, "src")
        os.makedirs(os.path.join(src, "sub", "deeper"), exist_ok=True)
        for i in range(files):
            with open(os.path.join(src, f"f{i}.bin"), "wb") as f:
                f.write(os.urandom(size_mb * (1 << 20) // (i + 1) + i))
        with open(os.path.join(src, "sub", "deeper", "note.txt"), "w") as f:
            f.write("checkpoint metadata\n")
        os.symlink("f0.bin", os.path.join(src, "latest"))
        os.chmod(os.path.join(src, "f1.bin"), 0o600)
        return src


class ShellToolsTest(MountTest):
    def test_copy_and_compare_with_coreutils(self):
        src = os.path.join(self.tmp, "blob")
        with open(src, "wb") as f:
            f.write(os.urandom(96 << 20))
        run("cp", src, self.m.path("blob"))
        run("cmp", src, self.m.path("blob"))
        self.assertEqual(sha256(src), run("sha256sum", self.m.path("blob")).stdout.split()[0])
        run("dd", f"if={src}", f"of={self.m.path('dd_fsync')}", "bs=1M", "conv=fsync",
            "status=none")
        run("dd", f"if={src}", f"of={self.m.path('dd_direct')}", "bs=1M", "oflag=direct",
            "status=none")
        out = os.path.join(self.tmp, "back")
        run("dd", f"if={self.m.path('dd_direct')}", f"of={out}", "bs=1M", "iflag=direct",
            "status=none")
        run("cmp", src, out)
        run("cmp", src, self.m.path("dd_fsync"))
        with open(os.path.join(self.tmp, "via_cat"), "wb") as out_f:
            subprocess.run(["cat", self.m.path("blob")], stdout=out_f, check=True)
        run("cmp", src, os.path.join(self.tmp, "via_cat"))

        # Unaligned O_DIRECT is refused by the kernel's rules, not by a crash.
        p = run("dd", f"if={src}", f"of={self.m.path('odd')}", "bs=1000", "count=3",
                "oflag=direct", "status=none", check=False)
        self.assertIn(p.returncode, (0, 1))

        run("mv", self.m.path("blob"), self.m.path("moved"))
        self.assertFalse(os.path.exists(self.m.path("blob")))
        run("ln", self.m.path("moved"), self.m.path("hard"))
        self.assertEqual(os.stat(self.m.path("moved")).st_nlink, 2)
        run("ln", "-s", "moved", self.m.path("soft"))
        self.assertEqual(os.readlink(self.m.path("soft")), "moved")
        run("cmp", src, self.m.path("soft"))
        run("truncate", "-s", "5000", self.m.path("hard"))
        self.assertEqual(os.path.getsize(self.m.path("moved")), 5000)
        run("truncate", "-s", "1G", self.m.path("moved"))
        with open(self.m.path("moved"), "rb") as f:
            f.seek(5000)
            self.assertEqual(f.read(1 << 20), bytes(1 << 20))
        run("touch", "-d", "2020-01-02 03:04:05", self.m.path("touched"))
        self.assertEqual(time.gmtime(os.stat(self.m.path("touched")).st_mtime)[:3], (2020, 1, 2))
        run("chmod", "640", self.m.path("touched"))
        self.assertEqual(os.stat(self.m.path("touched")).st_mode & 0o777, 0o640)
        self.assertIn("regular", run("stat", self.m.path("touched")).stdout)

        df = run("df", "-B1", "--output=size,avail", self.m.mnt).stdout.split()
        self.assertGreater(int(df[2]), 3 << 30)  # most of 4 GiB is free
        du = int(run("du", "-sk", self.m.path("dd_fsync")).stdout.split()[0])
        self.assertGreaterEqual(du, 96 << 10)
        os.makedirs(self.m.path("a", "b", "c"))
        open(self.m.path("a", "b", "c", "x"), "w").close()
        found = run("find", self.m.path("a")).stdout.split()
        self.assertIn(self.m.path("a", "b", "c", "x"), found)
        run("rm", "-r", self.m.path("a"))
        self.assertFalse(os.path.exists(self.m.path("a")))

    def test_rsync_round_trip(self):
        src = self.make_source()
        run("rsync", "-a", src + "/", self.m.path("tree") + "/")
        back = os.path.join(self.tmp, "back")
        run("rsync", "-a", self.m.path("tree") + "/", back + "/")
        run("diff", "-r", "--no-dereference", src, back)
        self.assertEqual(os.stat(os.path.join(back, "f1.bin")).st_mode & 0o777, 0o600)
        self.assertEqual(os.readlink(os.path.join(back, "latest")), "f0.bin")

    def test_tar_round_trip_and_remount(self):
        src = self.make_source()
        archive = os.path.join(self.tmp, "t.tar")
        run("tar", "cf", archive, "-C", src, ".")
        os.mkdir(self.m.path("x"))
        run("tar", "xf", archive, "-C", self.m.path("x"))
        self.remount()
        out = os.path.join(self.tmp, "out.tar")
        run("tar", "cf", out, "-C", self.m.path("x"), ".")
        back = os.path.join(self.tmp, "back")
        os.mkdir(back)
        run("tar", "xf", out, "-C", back)
        run("diff", "-r", "--no-dereference", src, back)


class PersistenceTest(MountTest):
    def test_tree_and_bytes_survive_remount(self):
        want = {}
        os.makedirs(self.m.path("ckpt", "step-100"))
        for i in range(6):
            p = self.m.path("ckpt", "step-100", f"shard-{i}.pt")
            data = os.urandom((i + 1) * 3_000_017)
            with open(p, "wb") as f:
                f.write(data)
            want[p] = hashlib.sha256(data).hexdigest()
        os.setxattr(self.m.path("ckpt"), "user.step", b"100")
        self.remount()
        for p, h in want.items():
            self.assertEqual(sha256(p), h)
        self.assertEqual(os.getxattr(self.m.path("ckpt"), "user.step"), b"100")

    def stop_by_signal(self, sig, clients=()):
        """Sends `sig` to the daemon: it must exit 0 having unmounted (one
        more "unmounted" in its log) and left the volume clean. `clients`,
        the processes using the mount, end with it."""
        unmounts = self.m.log_text().count("unmounted ")
        self.m.proc.send_signal(sig)
        self.assertEqual(self.m.proc.wait(timeout=60), 0, self.m.log_text())
        for c in clients:
            c.wait(timeout=60)
        self.m.proc = None
        self.assertFalse(is_mounted(self.m.mnt))
        self.assertEqual(self.m.log_text().count("unmounted "), unmounts + 1)
        self.m.fsck()

    def test_sigterm_unmounts_and_commits(self):
        os.mkdir(self.m.path("d"))
        with open(self.m.path("d", "f"), "wb") as f:
            f.write(b"x" * 100_000)
        os.rename(self.m.path("d", "f"), self.m.path("d", "g"))
        self.stop_by_signal(signal.SIGTERM)
        self.m.start()
        with open(self.m.path("d", "g"), "rb") as f:
            self.assertEqual(f.read(), b"x" * 100_000)

    def test_sigint_and_sighup_unmount_cleanly_while_a_writer_streams(self):
        data = os.urandom(8 << 20)
        for sig in (signal.SIGINT, signal.SIGHUP):
            name = f"{sig.name}.bin"
            with open(self.m.path(name), "wb") as f:
                f.write(data)
            # A writer in the middle of a stream when the signal comes: the
            # daemon stops serving, but the file it closed before is whole.
            writer = subprocess.Popen(["dd", "if=/dev/zero", f"of={self.m.path('stream')}",
                                       "bs=1M", "count=100000", "oflag=direct"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            self.stop_by_signal(sig, [writer])
            self.m.start()
            with open(self.m.path(name), "rb") as f:
                self.assertEqual(f.read(), data, sig.name)

    def test_sigterm_while_readers_stream_answers_them_and_exits_cleanly(self):
        # Readers through the page cache and fio with 32 direct reads in
        # flight: far more requests than read buffers, many of them waiting
        # for one when the signal comes. Each is answered (or dropped with
        # the connection) before the volume closes, and the daemon exits 0.
        data = os.urandom(64 << 20)
        with open(self.m.path("r.bin"), "wb") as f:
            f.write(data)
        for attempt in range(5):
            self.remount()  # the readers start from a cold cache
            readers = [subprocess.Popen(
                ["sh", "-c", f"while dd if={self.m.path('r.bin')} of=/dev/null bs=1M; do :; done"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
            readers.append(subprocess.Popen(
                ["fio", "--name=r", f"--filename={self.m.path('r.bin')}", "--rw=read",
                 "--bs=1M", "--ioengine=libaio", "--iodepth=32", "--direct=1", "--time_based",
                 "--runtime=60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for r in readers:
                self.addCleanup(r.wait, timeout=60)
                self.addCleanup(r.kill)
            time.sleep(0.3 + 0.15 * attempt)
            self.stop_by_signal(signal.SIGTERM, readers)
            self.m.start()
        with open(self.m.path("r.bin"), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_closed_files_survive_kill_9(self):
        data = os.urandom(20 << 20)
        with open(self.m.path("closed.bin"), "wb") as f:
            f.write(data)
        os.mkdir(self.m.path("dir"))
        with open(self.m.path("dir", "synced.bin"), "wb") as f:
            f.write(data[:12345])
            f.flush()
            os.fsync(f.fileno())
        self.m.kill()
        self.m.fsck()
        self.m.start()
        with open(self.m.path("closed.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        with open(self.m.path("dir", "synced.bin"), "rb") as f:
            self.assertEqual(f.read(), data[:12345])


class PythonClientsTest(MountTest):
    def test_numpy_save_load_and_memmap(self):
        import numpy as np
        a = np.random.default_rng(1).standard_normal((1024, 1024, 8), dtype=np.float32)
        np.save(self.m.path("a.npy"), a)
        self.assertTrue(np.array_equal(np.load(self.m.path("a.npy")), a))
        mm = np.memmap(self.m.path("m.dat"), dtype=np.float32, mode="w+", shape=(4096, 1024))
        mm[:] = 3.5
        mm[100, :] = np.arange(1024, dtype=np.float32)
        mm.flush()
        del mm
        self.remount()
        r = np.memmap(self.m.path("m.dat"), dtype=np.float32, mode="r", shape=(4096, 1024))
        self.assertTrue(np.all(r[0] == 3.5))
        self.assertTrue(np.array_equal(r[100], np.arange(1024, dtype=np.float32)))
        self.assertTrue(np.array_equal(np.load(self.m.path("a.npy"), mmap_mode="r"), a))

    def test_torch_state_dict_round_trip(self):
        import torch
        torch.manual_seed(0)
        state = {f"layer{i}.weight": torch.randn(2048, 4096) for i in range(10)}  # ~320 MiB
        state["step"] = torch.tensor(1000)
        torch.save(state, self.m.path("model.pt"))
        self.remount()
        loaded = torch.load(self.m.path("model.pt"))
        self.assertEqual(set(loaded), set(state))
        for k, v in state.items():
            self.assertTrue(torch.equal(loaded[k], v), k)

    def test_write_only_opens_keep_cached_readers_coherent(self):
        # A write-only open bypasses the page cache; a reader that already
        # holds the file in its cache, or mapped, sees the new bytes at once.
        path = self.m.path("coherent")
        with open(path, "wb") as f:
            f.write(b"A" * (1 << 20))
        r = os.open(path, os.O_RDWR)
        try:
            self.assertEqual(os.pread(r, 4, 4096), b"AAAA")  # now cached
            m = mmap.mmap(r, 1 << 20)
            self.assertEqual(m[8192:8196], b"AAAA")
            w = os.open(path, os.O_WRONLY)
            os.pwrite(w, b"B" * 12288, 4096)
            self.assertEqual(os.pread(r, 4, 4096), b"BBBB")
            self.assertEqual(m[8192:8196], b"BBBB")
            # And the other way: bytes the reader's open wrote through the
            # cache, then overwritten by the writer.
            os.pwrite(r, b"C" * 4, 0)
            os.pwrite(w, b"D" * 4, 2)
            self.assertEqual(os.pread(r, 6, 0), b"CCDDDD")
            os.close(w)
            a = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.write(a, b"E" * 10)
            os.close(a)
            self.assertEqual(os.fstat(r).st_size, (1 << 20) + 10)
            self.assertEqual(os.pread(r, 11, 1 << 20), b"E" * 10)
            m.close()
        finally:
            os.close(r)
        with open(path, "rb") as f:
            data = f.read()
        self.assertEqual(data[:8], b"CCDDDDAA")
        self.assertEqual(data[4096:16384], b"B" * 12288)
        self.assertEqual(len(data), (1 << 20) + 10)

    def test_a_new_open_of_an_unchanged_file_reads_it_from_memory(self):
        # Loading the same checkpoint twice (torch.load, np.load, cat) opens
        # it twice: the second open keeps what the first one cached. After
        # any change to the file's bytes, whatever made it, the next open
        # drops the cache and reads the new bytes from the daemon.
        MIB = 1 << 20
        path = self.m.path("again")
        model = bytearray(os.urandom(8 * MIB))
        with open(path, "wb") as f:
            f.write(model)

        def open_and_read():
            """(pages cached when the open returned, the bytes read, reads the daemon served)"""
            before = io_counters(path)["reads"]
            fd = os.open(path, os.O_RDONLY)
            try:
                cached = cached_pages(fd, len(model))
                chunks = []
                while chunk := os.read(fd, MIB):
                    chunks.append(chunk)
            finally:
                os.close(fd)
            return cached, b"".join(chunks), io_counters(path)["reads"] - before

        def expect_kept():
            """A new open that keeps the cache: the daemon reads only what the kernel lost.

            The kernel here reclaims page cache now and then with memory free: between
            two opens a second or so apart the file lost 10-52 of its pages in about one
            pair in eight (cachestat counted each as evicted), and the daemon then reads
            those, one or more per request. Pages lost while the file is read are ridden
            out by reading it once more. An open that dropped the cache leaves none.
            """
            pages = len(model) // 4096
            for _ in range(2):
                cached, data, served = open_and_read()
                self.assertGreater(cached, pages // 2, "the open dropped the cache")
                self.assertEqual(data, model)
                if served <= pages - cached:
                    return
            self.fail(f"{served} reads served with {cached} of {pages} pages cached at the open")

        cached, data, served = open_and_read()
        self.assertEqual(data, model)
        self.assertEqual(served, 8)  # 1 MiB requests, the kernel's read-ahead
        expect_kept()

        def through(flags, offset, data):
            fd = os.open(path, flags)
            try:
                os.pwrite(fd, data, offset)
            finally:
                os.close(fd)

        def mapped_store():
            fd = os.open(path, os.O_RDWR)
            try:
                with mmap.mmap(fd, len(model)) as m:
                    m[5 * MIB:5 * MIB + 4] = b"MAPS"
                    m.flush()
            finally:
                os.close(fd)

        def punch():
            fd = os.open(path, os.O_WRONLY)
            try:
                fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * MIB, MIB)
            finally:
                os.close(fd)

        changes = [
            ("write-only open", lambda: through(os.O_WRONLY, 100, b"w" * 5000),
             lambda: model.__setitem__(slice(100, 5100), b"w" * 5000)),
            ("read-write open", lambda: through(os.O_RDWR, 3 * MIB - 7, b"rw" * 9),
             lambda: model.__setitem__(slice(3 * MIB - 7, 3 * MIB + 11), b"rw" * 9)),
            ("shared mapping", mapped_store,
             lambda: model.__setitem__(slice(5 * MIB, 5 * MIB + 4), b"MAPS")),
            ("O_DIRECT write", lambda: write_direct(path, b"D" * 8192),
             lambda: model.__setitem__(slice(0, 8192), b"D" * 8192)),
            ("punched hole", punch, lambda: model.__setitem__(slice(2 * MIB, 3 * MIB), bytes(MIB))),
            ("truncate", lambda: os.truncate(path, 7 * MIB),
             lambda: model.__delitem__(slice(7 * MIB, None))),
            ("extend", lambda: os.truncate(path, 8 * MIB), lambda: model.extend(bytes(MIB))),
        ]
        for name, change, expect in changes:
            with self.subTest(change=name):
                change()
                expect()
                cached, data, served = open_and_read()
                self.assertEqual(cached, 0)  # dropped at the open
                self.assertEqual(len(data), len(model))
                self.assertEqual(data, model)
                self.assertGreater(served, 0)
                expect_kept()  # and kept again after

    def test_write_only_open_writes_from_a_mapping_of_the_same_file(self):
        # A write that bypasses the page cache pins the writer's pages; when
        # they are a mapping of the file being written, faulting them in
        # must not wait on the write itself.
        path = self.m.path("self")
        with open(path, "wb") as f:
            f.write(os.urandom(4 << 20))
        r = os.open(path, os.O_RDWR)
        try:
            with mmap.mmap(r, 4 << 20) as m:
                first = bytes(m[:2 << 20])
                w = os.open(path, os.O_WRONLY)
                try:
                    self.assertEqual(os.pwrite(w, memoryview(m)[:2 << 20], 2 << 20), 2 << 20)
                finally:
                    os.close(w)
                self.assertEqual(m[2 << 20:], first)
        finally:
            os.close(r)
        with open(path, "rb") as f:
            self.assertEqual(f.read()[2 << 20:], first)

    def test_read_write_opens_bypass_the_page_cache_and_still_map_shared(self):
        # fio, Python's "w+b"/"r+b" and numpy.memmap open read-write. Their
        # writes bypass the page cache (nothing of them is cached after),
        # yet a shared mapping of the same descriptor works and stays
        # coherent with them both ways.
        path = self.m.path("rw")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"a" * (4 << 20), 0)
            self.assertEqual(cached_pages(fd, 4 << 20), 0)
            with mmap.mmap(fd, 4 << 20) as m:
                self.assertEqual(m[:4], b"aaaa")
                m[4096:4100] = b"MMMM"  # dirty in the cache, not yet written back
                self.assertEqual(os.pread(fd, 4, 4096), b"MMMM")
                os.pwrite(fd, b"WW", 4097)
                self.assertEqual(m[4096:4100], b"MWWM")
                os.pwrite(fd, b"b" * 8192, 1 << 20)
                self.assertEqual(m[(1 << 20) + 8190:(1 << 20) + 8194], b"bbaa")
            os.fsync(fd)
        finally:
            os.close(fd)
        # A read-only open keeps the page cache, for the kernel's read-ahead.
        with open(path, "rb") as f:
            f.read(1 << 20)
            self.assertGreater(cached_pages(f.fileno(), 1 << 20), 0)
        self.remount()
        with open(path, "rb") as f:
            data = f.read()
        self.assertEqual(len(data), 4 << 20)
        self.assertEqual(data[4096:4100], b"MWWM")
        self.assertEqual(data[1 << 20:(1 << 20) + 8192], b"b" * 8192)
        self.assertEqual(data.count(b"a"), (4 << 20) - 4 - 8192)

    def test_read_write_opens_read_ahead_whatever_the_request_sizes(self):
        # A 1 MiB read into a buffer that is not page-aligned (Python's bytes,
        # fio's own buffers) reaches the daemon as two requests of unequal
        # sizes; so do reads of odd sizes. The daemon reads ahead all the same,
        # answers them right up to the end of the file, and never answers from
        # before a write.
        path = self.m.path("ahead")
        data = bytearray(os.urandom((24 << 20) + 12345))
        with open(path, "wb") as f:
            f.write(data)

        def counters():
            c = io_counters(path)
            return c["reads"], c["read_ahead"]

        fd = os.open(path, os.O_RDWR)
        try:
            with mmap.mmap(-1, 2 << 20) as buf:
                misaligned = memoryview(buf)[16:16 + (1 << 20)]
                reads0, ahead0 = counters()
                at = 0
                while True:
                    n = os.readv(fd, [misaligned])
                    self.assertEqual(bytes(misaligned[:n]), bytes(data[at:at + n]), f"at {at}")
                    if n == 0:
                        break
                    at += n
                misaligned.release()
            self.assertEqual(at, len(data))
            reads, ahead = counters()
            # Two requests per MiB; the first two come before the stream is seen.
            self.assertGreaterEqual(reads - reads0, 48)
            self.assertGreaterEqual(ahead - ahead0, reads - reads0 - 3)

            # Odd sizes, and a write by another descriptor into what was read ahead.
            os.lseek(fd, 0, os.SEEK_SET)
            at = 0
            for i in range(300):
                n = 10_000 + 37 * i
                if i == 150:
                    patch = os.urandom(100_000)
                    w = os.open(path, os.O_WRONLY)
                    try:
                        os.pwrite(w, patch, at + 5000)
                    finally:
                        os.close(w)
                    data[at + 5000:at + 5000 + len(patch)] = patch
                self.assertEqual(os.read(fd, n), bytes(data[at:at + n]), f"at {at}")
                at += n
            self.assertGreater(counters()[1] - ahead, 250)

            # On to the end of the file in 64 KiB reads, which fall inside
            # chunks read short and past the end.
            at = len(data) - 300_000
            os.lseek(fd, at, os.SEEK_SET)
            ahead = counters()[1]
            while True:
                got = os.read(fd, 64 << 10)
                self.assertEqual(got, bytes(data[at:at + (64 << 10)]), f"at {at}")
                if not got:
                    break
                at += len(got)
            self.assertEqual(at, len(data))
            self.assertGreaterEqual(counters()[1] - ahead, 3)
        finally:
            os.close(fd)

    def test_python_open_in_64k_chunks(self):
        chunk = os.urandom(64 << 10)
        with open(self.m.path("chunks"), "wb") as f:
            for _ in range(512):
                f.write(chunk)
        with open(self.m.path("chunks"), "rb") as f:
            for _ in range(512):
                self.assertEqual(f.read(64 << 10), chunk)
            self.assertEqual(f.read(), b"")


FUSECTL = "/sys/fs/fuse/connections"


class ConnectionTest(MountTest):
    """What the daemon asks of the kernel's FUSE connection, read back from the
    fuse control file system (mounted for the test when it is not)."""

    def connection(self):
        if not is_mounted(FUSECTL):
            run("mount", "-t", "fusectl", "none", FUSECTL)
            self.addCleanup(run, "umount", FUSECTL, check=False)
        return os.path.join(FUSECTL, str(os.stat(self.m.mnt).st_dev))

    def test_the_kernel_reads_ahead_past_libfuses_congestion_threshold(self):
        # libfuse 3.14 holds the threshold at max_background (64); the daemon's
        # INIT reply raises it, so several streams keep reading ahead.
        conn = self.connection()
        with open(os.path.join(conn, "max_background")) as f:
            self.assertEqual(f.read().strip(), "64")
        with open(os.path.join(conn, "congestion_threshold")) as f:
            self.assertEqual(f.read().strip(), "240")

    def test_parallel_streams_read_back_what_was_written(self):
        # Four readers through the page cache at once, from a cold cache, and
        # one through a read-write open (which bypasses it): far more reads
        # in flight than the daemon has read buffers, all taking turns.
        want = {}
        for i in range(4):
            data = os.urandom(48 << 20)
            with open(self.m.path(f"shard{i}"), "wb") as f:
                f.write(data)
            want[f"shard{i}"] = hashlib.sha256(data).hexdigest()
        self.remount()  # nothing of the files left in the page cache
        got, errors = {}, []

        def read(name):
            try:
                got[name] = sha256(self.m.path(name))
            except OSError as e:
                errors.append(e)

        def read_direct(name):
            try:
                got["direct " + name] = sha256(self.m.path(name), "r+b", 768 << 10)
            except OSError as e:
                errors.append(e)

        readers = [threading.Thread(target=read, args=(n,)) for n in want]
        readers.append(threading.Thread(target=read_direct, args=("shard3",)))
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(got, dict(want, **{"direct shard3": want["shard3"]}))


class TrimTest(MountTest):
    size = "256M"

    def test_fstrim_gives_free_space_back_and_keeps_the_files(self):
        kept = os.urandom(32 << 20)
        with open(self.m.path("kept"), "wb") as f:
            f.write(kept)
        with open(self.m.path("gone"), "wb") as f:
            f.write(os.urandom(64 << 20))
        before = os.stat(self.m.image).st_blocks * 512
        # Deleted just before: fstrim still gets its space (the daemon
        # commits first).
        os.unlink(self.m.path("gone"))
        out = run("fstrim", "-v", self.m.mnt).stdout
        trimmed = int(re.search(r"\((\d+) bytes\) trimmed", out).group(1))
        st = os.statvfs(self.m.mnt)
        self.assertEqual(trimmed, st.f_bfree * st.f_frsize, out)
        # The image gave the deleted file's space back to the filesystem
        # holding it (but for a few metadata blocks the commit wrote).
        after = os.stat(self.m.image).st_blocks * 512
        self.assertLessEqual(after, before - (64 << 20) + (1 << 20))
        self.assertIn("trim: discarded", self.m.log_text())
        with open(self.m.path("kept"), "rb") as f:
            self.assertEqual(f.read(), kept)
        # Free space taken again after a trim holds what is written to it.
        again = os.urandom(96 << 20)
        with open(self.m.path("again"), "wb") as f:
            f.write(again)
        self.remount()
        for name, data in (("kept", kept), ("again", again)):
            with open(self.m.path(name), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).digest(),
                                 hashlib.sha256(data).digest(), name)

        # Only root may trim, as on a local filesystem; a read-only mount
        # refuses.
        os.chmod(self.tmp, 0o755)
        self.m.stop()
        self.m.start(options="allow_other")
        p = as_nobody("fstrim", self.m.mnt)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Operation not permitted", p.stderr)
        self.m.stop()
        self.m.start(options="ro")
        p = run("fstrim", self.m.mnt, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Read-only file system", p.stderr)


class FioTest(MountTest):
    def test_fio_libaio_direct_with_verify(self):
        p = run("fio", "--name=verify", f"--filename={self.m.path('fio.dat')}", "--size=256M",
                "--bs=1M", "--iodepth=32", "--ioengine=libaio", "--direct=1", "--rw=write",
                "--verify=crc32c", "--do_verify=1", "--verify_state_save=0",
                "--output-format=terse", check=False, cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = run("fio", "--name=rand", f"--filename={self.m.path('fio.dat')}", "--size=256M",
                "--bs=4k", "--iodepth=32", "--ioengine=libaio", "--direct=1", "--rw=randwrite",
                "--verify=crc32c", "--do_verify=1", "--verify_state_save=0",
                "--output-format=terse", check=False, cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


def read_direct(path, length):
    """Reads through O_DIRECT (bypassing the page cache) into aligned memory."""
    import mmap
    buf = mmap.mmap(-1, length)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        n = os.readv(fd, [buf])
        return bytes(buf[:n])
    finally:
        os.close(fd)


def write_direct(path, data):
    import mmap
    buf = mmap.mmap(-1, len(data))
    buf[:] = data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    try:
        return os.writev(fd, [buf])
    finally:
        os.close(fd)


class DeviceFaultTest(MountTest):
    def test_a_device_error_fails_exactly_its_op(self):
        a, b = os.urandom(4 << 20), os.urandom(4 << 20)
        for name, data in (("a.bin", a), ("b.bin", b)):
            with open(self.m.path(name), "wb") as f:
                f.write(data)
        self.m.stop()
        # The first device read and the first device write after mounting fail.
        self.m.start(options="fault_read_nth=1,fault_write_nth=1")
        self.assertIn("FAULT INJECTION ENABLED", self.m.log_text())
        with self.assertRaises(OSError) as e:
            read_direct(self.m.path("a.bin"), 1 << 20)
        self.assertEqual(e.exception.errno, errno.EIO)
        self.assertEqual(read_direct(self.m.path("b.bin"), 4 << 20), b)  # others still served
        self.assertEqual(read_direct(self.m.path("a.bin"), 4 << 20), a)  # and the data is intact
        self.assertEqual(os.getxattr(self.m.path("a.bin"), "user.nvswapfs.errors"), b"1")
        self.assertEqual(os.getxattr(self.m.path("b.bin"), "user.nvswapfs.errors"), b"0")
        # Writes are write-behind: the failure reaches the same file's close
        # (or its next write or fsync), never another file's.
        with self.assertRaises(OSError) as e:
            write_direct(self.m.path("c.bin"), bytes(1 << 20))
        self.assertEqual(e.exception.errno, errno.EIO)
        self.assertEqual(write_direct(self.m.path("d.bin"), b"d" * 4096), 4096)
        self.assertEqual(os.getxattr(self.m.path("c.bin"), "user.nvswapfs.errors"), b"1")
        # The bytes that never reached the device read as EIO, not zeros.
        with self.assertRaises(OSError) as e:
            read_direct(self.m.path("c.bin"), 4096)
        self.assertEqual(e.exception.errno, errno.EIO)
        log = self.m.log_text()
        self.assertRegex(log, r'read failed on "/a\.bin" offset=0 length=1048576: '
                              r'Input/output error .*\(errno 5\)')
        self.assertRegex(log, r'write failed on "/c\.bin" offset=0 length=1048576: '
                              r'Input/output error .*\(errno 5\)')
        self.assertIn("reported at close", log)
        self.remount()  # fsck must be clean after the faults
        self.assertEqual(read_direct(self.m.path("d.bin"), 4096), b"d" * 4096)

    def read_mib_by_mib_failing(self, name, options):
        """Writes 8 MiB to `name`, remounts with `options` (a read fault among
        them) and reads the file back 1 MiB at a time through a direct open.
        Returns the file's bytes and the MiBs whose reads failed with EIO;
        every other read must return the file's bytes."""
        data = os.urandom(8 << 20)
        with open(self.m.path(name), "wb") as f:
            f.write(data)
        self.m.stop()
        self.m.start(options=options)
        buf = mmap.mmap(-1, 1 << 20)
        fd = os.open(self.m.path(name), os.O_RDONLY | os.O_DIRECT)
        failed = []
        try:
            for i in range(8):
                try:
                    n = os.preadv(fd, [buf], i << 20)
                except OSError as e:
                    self.assertEqual(e.errno, errno.EIO)
                    failed.append(i)
                    continue
                self.assertEqual(bytes(buf[:n]), data[i << 20:(i + 1) << 20], f"MiB {i}")
        finally:
            os.close(fd)
        return data, failed

    def test_a_device_error_read_ahead_fails_only_the_read_it_answers(self):
        # Reads of 1 MiB in a row. The first goes to the device as asked; the
        # second starts the read-ahead of the chunks after it before its own
        # device read, so the third device read is the chunk at MiB 3: it
        # fails, and only the read it answers fails with it.
        data, failed = self.read_mib_by_mib_failing("seq.bin", "fault_read_nth=3")
        self.assertEqual(failed, [3])
        self.assertEqual(os.getxattr(self.m.path("seq.bin"), "user.nvswapfs.errors"), b"1")
        self.assertEqual(io_counters(self.m.path("seq.bin"))["read_ahead"], 5)  # MiB 2, 4 to 7
        self.assertRegex(self.m.log_text(), r'read failed on "/seq\.bin" offset=3145728 '
                                            r'length=1048576: Input/output error')
        self.assertEqual(read_direct(self.m.path("seq.bin"), 8 << 20), data)

    def test_direct_opens_read_ahead_as_far_as_the_read_ahead_window(self):
        # With read_ahead=2M the daemon keeps two chunks ahead of a direct
        # reader, not sixteen: after MiB 0 (asked) come MiB 2 and 3 (ahead),
        # MiB 1 (asked), then MiB 4 as MiB 2 is answered. So the fifth device
        # read is the chunk at MiB 4; sixteen ahead, it would be MiB 5.
        _, failed = self.read_mib_by_mib_failing("window.bin", "read_ahead=2M,fault_read_nth=5")
        self.assertEqual(failed, [4])
        self.assertRegex(self.m.log_text(), r'read failed on "/window\.bin" offset=4194304 ')

    def test_a_direct_stream_settles_on_how_far_to_read_ahead(self):
        # Each direct stream measures depths up to the window's and settles
        # on one; the log says which, and reads stay byte-exact meanwhile.
        self.m.stop()
        self.m.start(options="read_ahead=4M")
        chunk = os.urandom(1 << 20)
        with open(self.m.path("tuned.bin"), "wb") as f:
            for i in range(320):
                f.write(chunk[i:] + chunk[:i])
        buf = mmap.mmap(-1, 1 << 20)
        fd = os.open(self.m.path("tuned.bin"), os.O_RDONLY | os.O_DIRECT)
        try:
            for i in range(320):
                self.assertEqual(os.readv(fd, [buf]), 1 << 20)
                self.assertEqual(buf[:], chunk[i:] + chunk[:i], f"MiB {i}")
        finally:
            os.close(fd)
        self.assertRegex(self.m.log_text(), r"read-ahead for direct opens: [24] chunks ahead read "
                                            r"fastest \(\d+ MB/s, file \d+\)")

    def test_with_sync_writes_the_write_itself_fails(self):
        self.m.stop()
        self.m.start(options="sync_writes,fault_write_nth=1")
        fd = os.open(self.m.path("e.bin"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            with self.assertRaises(OSError) as e:
                os.write(fd, b"e" * 8192)
            self.assertEqual(e.exception.errno, errno.EIO)
            self.assertEqual(os.write(fd, b"f" * 8192), 8192)
        finally:
            os.close(fd)  # nothing left to report
        with open(self.m.path("e.bin"), "rb") as f:
            self.assertEqual(f.read(), b"f" * 8192)
        self.assertRegex(self.m.log_text(), r'write failed on "/e\.bin" offset=0 length=8192: ')
        self.remount()


FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02


def fallocate(fd, mode, offset, length):
    """fallocate(2) with a mode, which os.posix_fallocate cannot pass."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    if libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def read_whole_direct(path):
    """A whole file through O_DIRECT, in aligned 8 MiB reads."""
    import mmap
    buf = mmap.mmap(-1, 8 << 20)
    out = bytearray()
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        while True:
            n = os.preadv(fd, [buf], len(out))
            if n == 0:
                return bytes(out)
            out += buf[:n]
    finally:
        os.close(fd)
        buf.close()


def read_whole_uncached(path):
    """A whole file through the page cache, after dropping what it held."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        chunks = []
        while True:
            chunk = os.read(fd, 8 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def read_whole_mmap(path):
    import mmap
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
            return m[:]


class StaleDataTest(MountTest):
    """No file ever shows a deleted file's bytes.

    The whole volume is filled with a distinctive pattern and deleted, so
    every allocation unit a new file gets held the old bytes on the device.
    New files then leave bytes unwritten in every way there is, and every
    byte not written must read as zero: buffered, O_DIRECT and mmap, before
    and after a remount. Finally the device itself is read under the new
    files' unwritten extents, to show the old bytes really are there (so the
    zeros come from the filesystem, not from luck).
    """

    size = "128M"
    MIB = 1 << 20
    MARK = b"\xa5OLD-FILE-BYTES\x5a"  # 16 bytes: tiles 4 KiB blocks exactly

    def fill_and_delete(self):
        chunk = self.MARK * (self.MIB // len(self.MARK))
        free_before = os.statvfs(self.m.mnt).f_bfree
        names, full = [], False
        while not full:
            name = self.m.path(f"old{len(names)}")
            names.append(name)
            try:
                with open(name, "wb") as f:
                    for _ in range(16):
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:
                self.assertEqual(e.errno, errno.ENOSPC, e)
                full = True
        # Every allocation unit of the data region now holds the pattern.
        self.assertEqual(os.statvfs(self.m.mnt).f_bfree, 0)
        for name in names:
            os.unlink(name)
        # The space is reusable once the unlinks are committed: fsync commits.
        with open(self.m.path("commit"), "wb") as f:
            os.fsync(f.fileno())
        self.assertEqual(os.statvfs(self.m.mnt).f_bfree, free_before)
        return len(names)

    def make_new_files(self):
        """Creates the new files; returns {name: the bytes each must hold}."""
        MIB = self.MIB
        want = {}

        def fresh(name):
            return os.open(self.m.path(name), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)

        # A write far into a file: the hole before it, and the rest of its
        # unit, read as zeros.
        fd = fresh("sparse")
        os.pwrite(fd, b"S" * 4096, 40 * MIB + 8192)
        os.fsync(fd)
        os.close(fd)
        want["sparse"] = bytes(40 * MIB + 8192) + b"S" * 4096

        # Truncate-extend, then a few bytes written into the middle.
        fd = fresh("extended")
        os.ftruncate(fd, 8 * MIB)
        os.pwrite(fd, b"E" * 10, 3 * MIB + 1)
        os.fsync(fd)
        os.close(fd)
        w = bytearray(8 * MIB)
        w[3 * MIB + 1:3 * MIB + 11] = b"E" * 10
        want["extended"] = bytes(w)

        # posix_fallocate: allocated units, nothing written yet; then a
        # little written into one of them.
        fd = fresh("fallocated")
        os.posix_fallocate(fd, 0, 8 * MIB)
        self.assertEqual(os.fstat(fd).st_size, 8 * MIB)
        os.pwrite(fd, b"F" * 100, 2 * MIB + 300)
        os.fsync(fd)
        os.close(fd)
        w = bytearray(8 * MIB)
        w[2 * MIB + 300:2 * MIB + 400] = b"F" * 100
        want["fallocated"] = bytes(w)

        # fallocate with KEEP_SIZE: space beyond the end of the file, which
        # a truncate-extend and a write then bring inside it.
        fd = fresh("keep_size")
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 8 * MIB)
        self.assertEqual(os.fstat(fd).st_size, 0)
        os.ftruncate(fd, 6 * MIB)
        os.pwrite(fd, b"K" * 50, 7 * MIB + 7)
        os.fsync(fd)
        os.close(fd)
        w = bytearray(7 * MIB + 57)
        w[7 * MIB + 7:] = b"K" * 50
        want["keep_size"] = bytes(w)

        # 100 bytes at an unaligned offset: the rest of its 4 KiB block and
        # of its 1 MiB unit; the file is then extended by a write in the next
        # unit (no truncate involved), and by a truncate.
        fd = fresh("unaligned")
        os.pwrite(fd, b"U" * 100, 5000)
        os.fsync(fd)
        os.pwrite(fd, b"u", MIB + 10)
        os.fsync(fd)
        os.close(fd)
        w = bytearray(MIB + 11)
        w[5000:5100] = b"U" * 100
        w[MIB + 10] = ord("u")
        want["unaligned"] = bytes(w)
        fd = fresh("unaligned_truncated")
        os.pwrite(fd, b"V" * 100, 5000)
        os.ftruncate(fd, 2 * MIB)
        os.fsync(fd)
        os.close(fd)
        w = bytearray(2 * MIB)
        w[5000:5100] = b"V" * 100
        want["unaligned_truncated"] = bytes(w)

        # Written, truncated down to the middle of a block, extended again:
        # zeros past the cut, by truncate and by a write beyond it.
        for name, extend_by_write in (("cut", False), ("cut_then_write", True)):
            fd = fresh(name)
            os.pwrite(fd, b"C" * (3 * MIB), 0)
            os.fsync(fd)
            os.ftruncate(fd, MIB + 777)
            if extend_by_write:
                os.pwrite(fd, b"W" * 3, 3 * MIB - 3)
            else:
                os.ftruncate(fd, 3 * MIB)
            os.fsync(fd)
            os.close(fd)
            w = bytearray(3 * MIB)
            w[:MIB + 777] = b"C" * (MIB + 777)
            if extend_by_write:
                w[3 * MIB - 3:] = b"W" * 3
            want[name] = bytes(w)

        # Punched holes, unaligned and covering whole units.
        fd = fresh("punched")
        os.pwrite(fd, b"P" * (6 * MIB), 0)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MIB + 100, 2 * MIB)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4 * MIB, MIB)
        os.fsync(fd)
        os.close(fd)
        w = bytearray(b"P" * (6 * MIB))
        w[MIB + 100:3 * MIB + 100] = bytes(2 * MIB)
        w[4 * MIB:5 * MIB] = bytes(MIB)
        want["punched"] = bytes(w)

        # An O_DIRECT write of one block into a new unit.
        buf = mmap.mmap(-1, 4096)
        buf[:] = b"D" * 4096
        fd = os.open(self.m.path("direct"), os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
        os.pwritev(fd, [buf], MIB + 4096)
        os.close(fd)
        os.truncate(self.m.path("direct"), 3 * MIB)
        want["direct"] = bytes(MIB + 4096) + b"D" * 4096 + bytes(2 * MIB - 8192)
        return want

    def check_files(self, want, when):
        readers = (("buffered", read_whole_uncached), ("O_DIRECT", read_whole_direct),
                   ("mmap", read_whole_mmap))
        for name, expected in want.items():
            for how, reader in readers:
                got = reader(self.m.path(name))
                if got == expected:
                    continue
                self.assertEqual(len(got), len(expected), f"{name} ({how}, {when}): size")
                at = next(i for i in range(len(got)) if got[i] != expected[i])
                stale = self.MARK[:6] in got
                self.fail(f"{name} ({how} read, {when}): byte {at} is {got[at]:#x}, should be "
                          f"{expected[at]:#x}" +
                          ("; the deleted files' pattern shows through" if stale else ""))

    def stale_bytes_under_unwritten_extents(self, names):
        """Reads the device beneath the files' unwritten extents."""
        p = run(os.path.join(BIN, "nvswapfs-dump"), "--json", self.m.image,
                *("/" + n for n in names))
        found = 0
        with open(self.m.image, "rb") as img:
            for entry in json.loads(p.stdout)["paths"]:
                for ext in entry["extents"]:
                    if ext["unwritten"]:
                        img.seek(ext["device_offset"])
                        found += img.read(ext["bytes"]).count(self.MARK) * len(self.MARK)
        return found

    def test_new_files_never_show_deleted_bytes(self):
        filled = self.fill_and_delete()
        want = self.make_new_files()
        self.check_files(want, "before remount")
        self.m.stop()
        self.m.fsck()
        stale = self.stale_bytes_under_unwritten_extents(want)
        # The new files live in space that held the pattern, and much of it
        # is still there on the device, unwritten: only the filesystem keeps
        # it from being read.
        self.assertGreater(stale, 16 * self.MIB, "the new files did not reuse the freed space")
        self.m.start()
        self.check_files(want, "after remount")
        print(f"\n  stale data: volume filled with {filled} files and emptied; "
              f"{len(want)} new files read as written; {stale >> 20} MiB of the old pattern "
              "lie on the device under their unwritten extents", file=sys.stderr)


def as_nobody(*cmd):
    """Runs a command as the unprivileged user nobody."""
    return run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd, check=False)


def _crc32c_table():
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), as the on-device format uses."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


class BadVolumeTest(unittest.TestCase):
    """Images a user might point the daemon at by mistake, or after damage."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nvswapfs-bad-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)  # also if mkfs fails
        self.mnt = os.path.join(self.tmp, "mnt")
        os.mkdir(self.mnt)
        self.image = os.path.join(self.tmp, "v.img")
        run(os.path.join(BIN, "mkfs.nvswapfs"), "--size", "256M", self.image)

    def tearDown(self):
        if is_mounted(self.mnt):
            run("fusermount3", "-u", self.mnt, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def mount_fails(self, image=None, mnt=None):
        p = run(os.path.join(BIN, "nvswapfs"), image or self.image, mnt or self.mnt, check=False)
        self.assertNotEqual(p.returncode, 0, "the mount should have been refused")
        self.assertFalse(is_mounted(self.mnt))
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        return p.stderr

    def patch(self, offset, data):
        with open(self.image, "r+b") as f:
            f.seek(offset)
            f.write(data)

    def test_foreign_filesystem(self):
        ext4 = os.path.join(self.tmp, "ext4.img")
        run("truncate", "-s", "64M", ext4)
        run("mkfs.ext4", "-q", "-F", ext4)
        err = self.mount_fails(image=ext4)
        self.assertIn("no valid nvswapfs superblock", err)
        self.assertIn("not an nvswapfs superblock", err)

    def test_both_superblocks_zeroed(self):
        size = os.path.getsize(self.image)
        self.patch(0, bytes(4096))
        self.patch(size - 4096, bytes(4096))
        err = self.mount_fails()
        self.assertIn("primary superblock", err)
        self.assertIn("backup superblock", err)

    def test_one_superblock_zeroed_still_mounts(self):
        self.patch(0, bytes(4096))
        log = os.path.join(self.tmp, "log")
        run(os.path.join(BIN, "nvswapfs"), "-o", f"log={log}", self.image, self.mnt)
        try:
            self.assertTrue(is_mounted(self.mnt))
        finally:
            run("fusermount3", "-u", self.mnt)
        time.sleep(0.5)
        with open(log) as f:
            self.assertIn("primary superblock is damaged", f.read())

    def test_wrong_format_version(self):
        size = os.path.getsize(self.image)
        for offset in (0, size - 4096):
            with open(self.image, "rb") as f:
                f.seek(offset)
                block = bytearray(f.read(4096))
            block[8:12] = (99).to_bytes(4, "little")
            block[4092:4096] = crc32c(bytes(block[:4092])).to_bytes(4, "little")
            self.patch(offset, bytes(block))
        err = self.mount_fails()
        self.assertIn("format version 99", err)

    def test_truncated_image(self):
        run("truncate", "-s", "128M", self.image)
        self.assertIn("truncated", self.mount_fails())

    def test_missing_and_dead_mount_points(self):
        err = self.mount_fails(mnt=os.path.join(self.tmp, "nowhere"))
        self.assertIn("nowhere", err)
        self.assertIn("No such file or directory", err)
        # A daemon killed with -9 leaves a mount point that answers ENOTCONN.
        proc = subprocess.Popen([os.path.join(BIN, "nvswapfs"), "-f", self.image, self.mnt],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while not is_mounted(self.mnt) and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        p = run(os.path.join(BIN, "nvswapfs"), self.image, self.mnt, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("whose daemon died", p.stderr)
        self.assertIn("fusermount3 -u", p.stderr)
        run("fusermount3", "-u", self.mnt)
        # Cleared, the same volume mounts again (and was left consistent).
        run(os.path.join(BIN, "fsck.nvswapfs"), "-n", self.image)
        run(os.path.join(BIN, "nvswapfs"), self.image, self.mnt)
        self.assertTrue(is_mounted(self.mnt))


WALKER = r'''
import errno, hashlib, json, os, sys
root = sys.argv[1]
seen = {"files_read": 0, "errors": {}, "tree": {}}
def failed(path, e):
    name = errno.errorcode.get(e.errno, str(e.errno))
    seen["errors"][name] = seen["errors"].get(name, 0) + 1
    seen["tree"][path] = "error " + name
def visit(path):
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as e:
        failed(path, e)
        return
    for entry in entries:
        rel = os.path.relpath(entry.path, root)
        try:
            st = entry.stat(follow_symlinks=False)
            what = f"mode {st.st_mode:o} size {st.st_size}"
            for name in sorted(os.listxattr(entry.path, follow_symlinks=False)):
                value = os.getxattr(entry.path, name, follow_symlinks=False)
                what += f" {name}={value.hex()}"
            if entry.is_symlink():
                what += " -> " + os.readlink(entry.path)
            elif entry.is_file(follow_symlinks=False):
                h = hashlib.sha256()
                with open(entry.path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                what += " sha256 " + h.hexdigest()
                seen["files_read"] += 1
            seen["tree"][rel] = what
            if entry.is_dir(follow_symlinks=False):
                visit(entry.path)
        except OSError as e:
            failed(rel, e)
visit(root)
print(json.dumps(seen))
'''


class CorruptMetadataTest(unittest.TestCase):
    """Random bytes flipped in every metadata region, then fsck and a mount.

    A small volume is populated through a mount and left either cleanly
    unmounted (everything in a checkpoint) or killed with -9 after more
    fsync'd changes (commits in the log to replay). For each metadata region
    (both superblocks, both checkpoint slots, the log) and several seeds, a
    copy of the image gets a few random bytes flipped, either as they come
    (the checksums catch them) or with the checksums recomputed (so the
    decoders and the volume's own checks see the damage). Then `fsck -n` and
    a mount must neither die by a signal nor hang; a refused mount says why
    in one line; a mount that succeeds lists and reads everything (EIO is
    allowed for damaged files) and unmounts; when fsck finds nothing wrong
    the mount must succeed. And damage the checksums catch never goes
    unnoticed: if the mount shows anything other than the undamaged volume,
    fsck or the daemon must have reported it (the one exception is the last
    commit of the log, which damage makes look like a commit a crash tore).

    NVSWAPFS_CORRUPT_SEEDS=N tries N seeds per region and mode (default 3);
    NVSWAPFS_CORRUPT_VERBOSE=1 prints one line per image.
    """

    TIMEOUT = 30
    counts = {}

    @classmethod
    def tearDownClass(cls):
        c = cls.counts
        if c:
            print(f"\n  corrupt images: {c.get('tried', 0)} tried, {c.get('refused', 0)} refused, "
                  f"{c.get('clean', 0)} mounted clean, {c.get('damaged', 0)} mounted with damage "
                  f"reported; fsck exits {dict(sorted(c.get('fsck', {}).items()))}",
                  file=sys.stderr)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nvswapfs-corrupt-", dir="/var/tmp")
        self.seeds = int(os.environ.get("NVSWAPFS_CORRUPT_SEEDS", "3"))

    def tearDown(self):
        for d in (os.path.join(self.tmp, "w", "mnt"), os.path.join(self.tmp, "mnt")):
            if is_mounted(d):
                run("fusermount3", "-u", d, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the volume to damage -------------------------------------------

    def populate(self, killed):
        m = Mount(os.path.join(self.tmp, "w"), size="64M").start()
        os.makedirs(m.path("ckpt", "step-1"))
        os.mkdir(m.path("empty"))
        for i in range(8):
            with open(m.path("ckpt", "step-1", f"shard{i}"), "wb") as f:
                f.write(bytes([i + 1]) * (i * 300_000 + 17))
            os.setxattr(m.path("ckpt", "step-1", f"shard{i}"), "user.i", str(i).encode())
        fd = os.open(m.path("sparse"), os.O_WRONLY | os.O_CREAT, 0o600)
        os.pwrite(fd, b"s" * 5000, 3 << 20)
        os.posix_fallocate(fd, 0, 1 << 20)
        os.close(fd)
        os.symlink("ckpt/step-1/shard3", m.path("latest"))
        os.link(m.path("ckpt", "step-1", "shard2"), m.path("hard"))
        m.stop()
        if killed:
            # More changes, each fsync'd, then no chance to checkpoint them.
            m.start()
            os.mkdir(m.path("ckpt", "step-2"))
            for i in range(5):
                with open(m.path("ckpt", "step-2", f"shard{i}"), "wb") as f:
                    f.write(bytes([0x40 + i]) * (i * 200_000 + 1))
                    os.fsync(f.fileno())
            os.rename(m.path("ckpt", "step-1", "shard0"), m.path("renamed"))
            os.unlink(m.path("ckpt", "step-1", "shard1"))
            os.truncate(m.path("ckpt", "step-1", "shard4"), 1000)
            with open(m.path("synced"), "wb") as f:
                f.write(b"last")
                os.fsync(f.fileno())
            m.kill()
        m.fsck()
        return m.image

    def layout(self, image):
        """Each metadata region as a list of structures (offset, length,
        spans), where spans are the (start, length) parts of the structure
        that carry meaning, padding left out."""
        info = json.loads(run(os.path.join(BIN, "nvswapfs-dump"), "--json", image).stdout)
        regions = {r["name"]: (r["offset"], r["size"]) for r in info["superblock"]["regions"]}
        with open(image, "rb") as f:
            def block(offset):
                f.seek(offset)
                return f.read(4096)

            def checkpoint(offset, size):
                head = block(offset)
                if head[:8] != b"NVSWCKPT":
                    return [(offset, 4096, [(0, 128)])]  # a slot never written
                body = int.from_bytes(head[48:56], "little")
                length = min(size, 4096 + -(-body // 4096) * 4096)
                return [(offset, length, [(0, 128), (4096, min(body, length - 4096))])]

            def log(offset, size):
                """Every commit found from the log's start."""
                commits, at = [], 0
                while at + 4096 <= size:
                    head = block(offset + at)
                    if head[:8] != b"NVSWLOG1":
                        break
                    payload = int.from_bytes(head[32:36], "little")
                    length = min(size - at, -(-(64 + payload) // 4096) * 4096)
                    commits.append((offset + at, length, [(0, 64), (64, payload)]))
                    at += length
                return commits or [(offset, 4096, [(0, 64)])]

            superblock = [(0, 208), (4092, 4)]  # the fields and the checksum
            return info, {
                "primary superblock": [(0, 4096, superblock)],
                "backup superblock": [(regions["backup superblock"][0], 4096, superblock)],
                "checkpoint slot 0": checkpoint(*regions["checkpoint slot 0"]),
                "checkpoint slot 1": checkpoint(*regions["checkpoint slot 1"]),
                "log": log(*regions["log"]),
            }

    # -- damage -----------------------------------------------------------

    @staticmethod
    def damage(image, region, structures, rng, reseal):
        """Flips 1-4 random meaningful bytes of one structure of `region`;
        with `reseal`, then recomputes its checksums. Returns which one."""
        index = rng.randrange(len(structures))
        offset, length, spans = structures[index]
        if reseal and region.endswith("superblock"):
            spans = spans[:1]  # the checksum is about to be rewritten anyway
        spans = [s for s in spans if s[1] > 0]
        with open(image, "r+b") as f:
            f.seek(offset)
            data = bytearray(f.read(length))
            for _ in range(rng.randint(1, 4)):
                # Headers are small but dense: give them a fair share.
                start, span = spans[0] if rng.random() < 0.4 else rng.choice(spans)
                data[start + rng.randrange(span)] ^= rng.randint(1, 255)
            if reseal:
                CorruptMetadataTest.reseal(region, data)
            f.seek(offset)
            f.write(data)
        return index

    @staticmethod
    def reseal(region, data):
        """Recomputes the checksums of a damaged structure, as far as it can."""
        def put(at, value):
            data[at:at + 4] = value.to_bytes(4, "little")

        if region.endswith("superblock"):
            put(4092, crc32c(bytes(data[:4092])))
        elif region.startswith("checkpoint"):
            body = int.from_bytes(data[48:56], "little")
            if 4096 + body <= len(data):
                put(60, crc32c(bytes(data[4096:4096 + body])))
            put(124, crc32c(bytes(data[:124])))
        else:
            payload = int.from_bytes(data[32:36], "little")
            if 64 + payload <= len(data):
                put(48, crc32c(bytes(data[64:64 + payload])))
            put(60, crc32c(bytes(data[:60])))

    # -- what must hold for each damaged image ---------------------------

    def try_image(self, image, label, baseline=None):
        """fsck -n and a mount of `image`; returns what the mount showed.

        With `baseline` (the undamaged volume's tree), damage that the
        checksums should catch may not go unreported: if the mount shows
        anything else, fsck or the daemon must have said so.
        """
        c = type(self).counts
        c["tried"] = c.get("tried", 0) + 1
        try:
            p = subprocess.run([os.path.join(BIN, "fsck.nvswapfs"), "-n", image],
                               capture_output=True, text=True, timeout=self.TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail(f"{label}: fsck -n hung")
        self.assertGreaterEqual(p.returncode, 0, f"{label}: fsck died by signal "
                                f"{-p.returncode}:\n{p.stdout}{p.stderr}")
        self.assertIn(p.returncode, (0, 4, 8), f"{label}: fsck -n exited {p.returncode}:\n"
                      f"{p.stdout}{p.stderr}")
        fsck_rc = p.returncode
        c.setdefault("fsck", {})
        c["fsck"][fsck_rc] = c["fsck"].get(fsck_rc, 0) + 1

        mnt = os.path.join(self.tmp, "mnt")
        os.makedirs(mnt, exist_ok=True)
        log = os.path.join(self.tmp, "daemon.log")
        if os.path.exists(log):
            os.unlink(log)
        err_path = os.path.join(self.tmp, "daemon.stderr")
        with open(err_path, "w") as err:
            daemon = subprocess.Popen([os.path.join(BIN, "nvswapfs"), "-f", "-o", f"log={log}",
                                       image, mnt], stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.time() + self.TIMEOUT
        while not is_mounted(mnt) and daemon.poll() is None:
            if time.time() > deadline:
                daemon.kill()
                daemon.wait()
                self.fail(f"{label}: the mount neither appeared nor failed within "
                          f"{self.TIMEOUT} s")
            time.sleep(0.01)
        with open(err_path) as f:
            stderr = f.read()

        if not is_mounted(mnt):
            rc = daemon.wait()
            self.assertGreater(rc, 0, f"{label}: refused mount exited {rc}:\n{stderr}")
            lines = stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, f"{label}: a refused mount should say why in one "
                             f"line, said:\n{stderr}")
            # What failed, on what (the device, or the file whose metadata
            # is wrong), why, and the errno.
            self.assertRegex(lines[0], r'^nvswapfs: open (volume|device) failed on "[^"]+": '
                             r'.+ \(.+\) \(errno \d+\)$', label)
            self.assertNotEqual(fsck_rc, 0, f"{label}: fsck found the volume clean, yet the "
                                f"mount was refused: {lines[0]}")
            c["refused"] = c.get("refused", 0) + 1
            self.outcome(label, "refused", fsck_rc, lines[0])
            return None

        try:
            w = subprocess.run([sys.executable, "-c", WALKER, mnt], capture_output=True,
                               text=True, timeout=self.TIMEOUT)
            walk_error = None if w.returncode == 0 else w.stdout + w.stderr
        except subprocess.TimeoutExpired:
            walk_error = f"listing and reading the mount hung for {self.TIMEOUT} s"
        alive = daemon.poll() is None
        if walk_error is not None or not alive:
            if alive:
                daemon.kill()
            daemon.wait()
            run("fusermount3", "-u", mnt, check=False)
            with open(log) as f:
                self.fail(f"{label}: {walk_error or 'the daemon died'} (daemon exit "
                          f"{daemon.returncode}); log:\n{f.read()}")
        seen = json.loads(w.stdout)
        run("fusermount3", "-u", mnt)
        try:
            rc = daemon.wait(timeout=self.TIMEOUT)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
            self.fail(f"{label}: the daemon did not exit after the unmount")
        with open(log) as f:
            log_text = f.read()
        self.assertGreaterEqual(rc, 0, f"{label}: the daemon died by signal {-rc}:\n{log_text}")
        unexpected = set(seen["errors"]) - {"EIO"}
        self.assertFalse(unexpected, f"{label}: reading the mount failed with {seen['errors']}")
        warnings = [line for line in log_text.splitlines()
                    if re.search(r"\] (warning|error): ", line)]
        reported = fsck_rc != 0 or rc != 0 or seen["errors"] or warnings
        if fsck_rc == 0:
            self.assertEqual(rc, 0, f"{label}: fsck found nothing wrong, yet the daemon exited "
                             f"{rc}:\n{log_text}")
            self.assertEqual(seen["errors"], {}, f"{label}: fsck found nothing wrong, yet reads "
                             f"failed: {seen['errors']}")
        if baseline is not None and not reported and seen["tree"] != baseline:
            lost = sorted(set(baseline) - set(seen["tree"]))
            changed = sorted(k for k in baseline if k in seen["tree"] and
                             seen["tree"][k] != baseline[k])
            self.fail(f"{label}: the volume changed without a word: fsck -n exited 0, the daemon "
                      f"logged no warning, yet {len(lost)} of {len(baseline)} entries are gone "
                      f"({', '.join(lost[:6])}) and {len(changed)} differ "
                      f"({', '.join(changed[:6])})")
        kind = "damaged" if reported else "clean"
        c[kind] = c.get(kind, 0) + 1
        self.outcome(label, f"mounted, {kind}", fsck_rc,
                     f"read {seen['files_read']} files, errors {seen['errors']}, exit {rc}" +
                     "".join("; " + line.split("] ", 1)[-1] for line in warnings))
        return seen["tree"]

    @staticmethod
    def outcome(label, what, fsck_rc, detail):
        """With NVSWAPFS_CORRUPT_VERBOSE=1, one line per image tried."""
        if os.environ.get("NVSWAPFS_CORRUPT_VERBOSE"):
            print(f"\n  {label}: fsck {fsck_rc}, {what}: {detail}", file=sys.stderr)

    def flip_everywhere(self, killed):
        base = self.populate(killed)
        info, regions = self.layout(base)
        if killed:
            self.assertGreater(info["log"]["commits_replayed"], 0, "no commits in the log")
        image = os.path.join(self.tmp, "damaged.img")
        shutil.copyfile(base, image)
        baseline = self.try_image(image, "undamaged image")
        self.assertIsNotNone(baseline)
        self.assertGreater(len(baseline), 10)
        for region, structures in regions.items():
            for reseal in (False, True):
                for seed in range(self.seeds):
                    shutil.copyfile(base, image)
                    rng = random.Random(f"{region}/{reseal}/{seed}/{killed}")
                    at = self.damage(image, region, structures, rng, reseal)
                    # Recomputed checksums make any damage look valid; and the
                    # last commit of the log, damaged, is a commit a crash tore:
                    # in both cases nothing can tell that something is missing.
                    last_commit = info["log"]["commits_replayed"] - 1
                    undetectable = reseal or (region == "log" and at == last_commit)
                    label = (f"{'killed' if killed else 'clean'} volume, {region} "
                             f"{'' if len(structures) == 1 else f'(commit {at}) '}"
                             f"{'checksums recomputed' if reseal else 'raw flips'}, seed {seed}")
                    with self.subTest(label):
                        self.try_image(image, label,
                                       baseline=None if undetectable else baseline)

    def test_flips_after_a_clean_unmount(self):
        self.flip_everywhere(killed=False)

    def test_flips_with_commits_in_the_log(self):
        self.flip_everywhere(killed=True)


class PermissionTest(MountTest):
    def test_other_users_are_kept_out_by_default(self):
        os.chmod(self.tmp, 0o755)
        # Without allow_other only the user who mounted may enter at all.
        p = as_nobody("ls", self.m.mnt)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Permission denied", p.stderr)

    def test_modes_are_enforced_for_other_users(self):
        os.chmod(self.tmp, 0o755)  # mkdtemp's 0700 would stop nobody before the mount
        self.m.stop()
        self.m.start(options="allow_other")
        with open(self.m.path("secret"), "wb") as f:
            f.write(b"root only")
        os.chmod(self.m.path("secret"), 0o600)
        with open(self.m.path("public"), "wb") as f:
            f.write(b"everyone")
        os.chmod(self.m.path("public"), 0o644)
        os.mkdir(self.m.path("shared"))
        os.chmod(self.m.path("shared"), 0o1777)

        self.assertIn("Permission denied", as_nobody("cat", self.m.path("secret")).stderr)
        self.assertEqual(as_nobody("cat", self.m.path("public")).stdout, "everyone")
        p = as_nobody("sh", "-c", f"echo x >> {self.m.path('public')}")
        self.assertIn("Permission denied", p.stderr)
        p = as_nobody("touch", self.m.path("not-mine"))
        self.assertIn("Permission denied", p.stderr)
        p = as_nobody("rm", "-f", self.m.path("public"))
        self.assertIn("Permission denied", p.stderr)
        self.assertTrue(os.path.exists(self.m.path("public")))
        p = as_nobody("sh", "-c", f"echo mine > {self.m.path('shared', 'n')}")
        self.assertEqual(p.returncode, 0, p.stderr)
        st = os.stat(self.m.path("shared", "n"))
        self.assertEqual((st.st_uid, st.st_gid), (65534, 65534))
        # The sticky bit: nobody may not remove root's file from the shared dir.
        with open(self.m.path("shared", "roots"), "w") as f:
            f.write("r")
        self.assertIn("not permitted", as_nobody("rm", "-f", self.m.path("shared", "roots")).stderr)

    def test_writes_by_other_users_drop_set_id_bits(self):
        # Where a write bypasses the page cache (O_DIRECT, and every
        # write-only open) the kernel leaves set-ID bits to the filesystem:
        # writes by anyone but root drop them, through every kind of open, as
        # on a local filesystem.
        os.chmod(self.tmp, 0o755)
        self.m.stop()
        self.m.start(options="allow_other")
        cases = [  # (mode, how nobody writes, mode after)
            (0o6777, "append", 0o0777),
            (0o6777, "rdwr", 0o0777),
            (0o6777, "direct", 0o0777),
            (0o2767, "append", 0o2767),  # set-group-ID without group-execute stays
        ]
        writer = ("import os, sys, mmap\n"
                  "p, how = sys.argv[1], sys.argv[2]\n"
                  "if how == 'append':\n"
                  "    fd = os.open(p, os.O_WRONLY | os.O_APPEND); os.write(fd, b'x')\n"
                  "elif how == 'rdwr':\n"
                  "    fd = os.open(p, os.O_RDWR); os.pwrite(fd, b'x', 0)\n"
                  "else:\n"
                  "    fd = os.open(p, os.O_WRONLY | os.O_DIRECT); buf = mmap.mmap(-1, 4096)\n"
                  "    os.pwritev(fd, [buf], 0)\n"
                  "os.close(fd)\n")
        for i, (mode, how, after) in enumerate(cases):
            path = self.m.path(f"setid{i}")
            with open(path, "wb") as f:
                f.write(b"\0" * 4096)
            os.chown(path, 65534, 65534)
            os.chmod(path, mode)
            p = as_nobody("/usr/bin/python3", "-c", writer, path, how)
            self.assertEqual(p.returncode, 0, p.stderr)
            # Seen at once (the kernel's cached attributes are refreshed) and
            # after a remount (committed).
            self.assertEqual(oct(os.stat(path).st_mode & 0o7777), oct(after), (mode, how))
        # Root keeps them (it has CAP_FSETID).
        os.chmod(self.m.path("setid0"), 0o6777)
        with open(self.m.path("setid0"), "ab") as f:
            f.write(b"root")
        self.assertEqual(os.stat(self.m.path("setid0")).st_mode & 0o7777, 0o6777)
        self.remount()
        for i, (_, _, after) in enumerate(cases[1:], start=1):
            self.assertEqual(os.stat(self.m.path(f"setid{i}")).st_mode & 0o7777, after)
        self.assertEqual(os.stat(self.m.path("setid0")).st_mode & 0o7777, 0o6777)


FSX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fsx.py")


class RandomTesterTest(MountTest):
    """fsx.py: long random sequences checked against a model of every file."""

    def fsx(self, *args):
        return subprocess.Popen([sys.executable, FSX, self.m.mnt, *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def expect_clean(self, procs):
        try:
            for p in procs:
                out, _ = p.communicate(timeout=900)
                self.assertEqual(p.returncode, 0, out)
                self.assertIn("every read matched the model", out)
        finally:
            # After a failure, the clients still running would keep the
            # mount busy and leave it behind.
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()

    def test_random_operations_match_the_model(self):
        self.expect_clean([self.fsx("--ops", 2500, "--seed", seed) for seed in (11,)])
        self.expect_clean([self.fsx("--ops", 1500, "--seed", seed) for seed in (12, 13)])

    def test_concurrent_clients_on_separate_and_shared_files(self):
        region = 2 << 20
        with open(self.m.path("shared"), "wb") as f:
            f.truncate(4 * region)
        procs = [self.fsx("--ops", 800, "--seed", 200 + i) for i in range(3)]
        procs += [self.fsx("--ops", 500, "--seed", 300 + i, "--region", f"{i * region}:{region}")
                  for i in range(4)]
        # fstrim over and over beside them: discarding the free space must
        # never touch a byte a file holds, nor space a writer is taking.
        stop = threading.Event()
        trims = []

        def trim_loop():
            while not stop.is_set():
                p = run("fstrim", self.m.mnt, check=False)
                trims.append((p.returncode, p.stderr))
                stop.wait(0.1)

        trimmer = threading.Thread(target=trim_loop)
        trimmer.start()
        try:
            self.expect_clean(procs)
        finally:
            stop.set()
            trimmer.join()
        self.assertGreaterEqual(len(trims), 5)
        self.assertEqual([t for t in trims if t[0] != 0], [])
        self.remount()  # and the volume they leave behind is consistent


class KillLoopTest(unittest.TestCase):
    def test_kill_9_loop_loses_nothing_fsynced_or_closed(self):
        # A short run of crash_loop.py; run it by hand for any number.
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crash_loop.py")
        p = run(sys.executable, script, BIN, "--iterations", "5", "--seed", "17", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("no fsync'd or closed byte lost", p.stdout)


class ConcurrencyTest(MountTest):
    def test_concurrent_writers_and_readers(self):
        errors = []
        payloads = {i: os.urandom((i + 1) << 20) * 4 for i in range(6)}

        def writer(i):
            try:
                with open(self.m.path(f"w{i}"), "wb") as f:
                    for off in range(0, len(payloads[i]), 300_000):
                        f.write(payloads[i][off:off + 300_000])
                with open(self.m.path(f"w{i}"), "rb") as f:
                    if f.read() != payloads[i]:
                        errors.append(f"w{i} read back differently")
            except OSError as e:
                errors.append(f"w{i}: {e}")

        shared = os.urandom(8 << 20)
        with open(self.m.path("shared"), "wb") as f:
            f.write(shared)

        def reader():
            try:
                for _ in range(5):
                    with open(self.m.path("shared"), "rb") as f:
                        if f.read() != shared:
                            errors.append("shared read back differently")
            except OSError as e:
                errors.append(f"reader: {e}")

        threads = [threading.Thread(target=writer, args=(i,)) for i in payloads]
        threads += [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])


class ErrorsTest(MountTest):
    size = "256M"

    def test_errors_reach_the_caller_and_the_log(self):
        with self.assertRaises(OSError) as e:
            open(self.m.path("x" * 256), "w")
        self.assertEqual(e.exception.errno, errno.ENAMETOOLONG)
        with open(self.m.path("f"), "wb") as f:
            with self.assertRaises(OSError) as e:
                f.truncate(1 << 45)
            self.assertEqual(e.exception.errno, errno.EFBIG)
        # Fill the volume: ENOSPC, the daemon keeps working, deleting frees.
        free_before = os.statvfs(self.m.mnt).f_bfree
        with self.assertRaises(OSError) as e:
            with open(self.m.path("fill"), "wb") as f:
                chunk = bytes(1 << 20)
                for _ in range(1024):
                    f.write(chunk)
        self.assertEqual(e.exception.errno, errno.ENOSPC)
        self.assertEqual(os.statvfs(self.m.mnt).f_bfree, 0)
        os.unlink(self.m.path("fill"))
        self.assertEqual(os.statvfs(self.m.mnt).f_bfree, free_before)
        with open(self.m.path("after"), "wb") as f:
            f.write(b"still serving")
        log = self.m.log_text()
        self.assertIn("No space left on device", log)
        self.assertIn('"/fill"', log)
        self.assertIn("File too large", log)
        stats = os.getxattr(self.m.mnt, "user.nvswapfs.stats").decode()
        self.assertRegex(stats, r"errors=[1-9]")
        with self.assertRaises(OSError) as e:
            os.setxattr(self.m.path("after"), "user.nvswapfs.errors", b"0")
        self.assertEqual(e.exception.errno, errno.EPERM)
        self.assertNotIn("user.nvswapfs.errors", os.listxattr(self.m.path("after")))

    def test_latency_xattr_times_the_data_path(self):
        # Median and 99th percentile of each stage, in µs, since the mount.
        def latency():
            text = os.getxattr(self.m.mnt, "user.nvswapfs.latency").decode()
            fields = dict(kv.split("=") for kv in text.split())
            return {k: tuple(int(x) for x in v.split("/")) if "/" in v else int(v)
                    for k, v in fields.items()}

        before = latency()
        data = os.urandom(8 << 20)
        with open(self.m.path("timed"), "wb") as f:
            f.write(data)
        # Written past the page cache, so this read goes to the daemon.
        with open(self.m.path("timed"), "rb") as f:
            self.assertEqual(f.read(), data)
        after = latency()
        self.assertEqual(set(after), {"pieces", "queue_us", "device_us", "reads",
                                      "finish_wait_us", "reply_us"})
        # At least 8 MiB written and 8 MiB read, in 1 MiB pieces.
        self.assertGreaterEqual(after["pieces"] - before["pieces"], 16)
        self.assertGreaterEqual(after["reads"] - before["reads"], 8)
        for stage in ("queue_us", "device_us", "finish_wait_us", "reply_us"):
            p50, p99 = after[stage]
            self.assertLessEqual(p50, p99, stage)
        self.assertGreater(after["device_us"][0], 0)
        self.assertGreater(after["reply_us"][1], 0)
        with self.assertRaises(OSError) as e:
            os.setxattr(self.m.mnt, "user.nvswapfs.latency", b"0")
        self.assertEqual(e.exception.errno, errno.EPERM)
        self.assertNotIn("user.nvswapfs.latency", os.listxattr(self.m.mnt))

    def test_read_only_mount(self):
        with open(self.m.path("kept"), "wb") as f:
            f.write(b"data")
        self.m.stop()
        self.m.start(options="ro")
        with open(self.m.path("kept"), "rb") as f:
            self.assertEqual(f.read(), b"data")
        with self.assertRaises(OSError) as e:
            open(self.m.path("new"), "w")
        self.assertEqual(e.exception.errno, errno.EROFS)

    def test_libfuse_max_read_option(self):
        # libfuse wants max_read from both the mount option and init().
        self.m.stop()
        self.m.start(options="max_read=131072")
        data = os.urandom(3 << 20)
        with open(self.m.path("r.bin"), "wb") as f:
            f.write(data)
        self.assertEqual(read_direct(self.m.path("r.bin"), len(data)), data)
        with open(self.m.path("r.bin"), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_mount_t_fuse_nvswapfs(self):
        # mount(8) hands fuse.nvswapfs to mount.fuse3, which runs the daemon
        # with the options given. mount(8) passes its helpers no PATH of ours,
        # so the shell mount.fuse3 starts finds the daemon on its default PATH,
        # where it is installed (scripts/test.sh installs this build there).
        default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        self.assertIsNotNone(shutil.which("nvswapfs", path=default_path),
                             "nvswapfs is not installed where mount.fuse3 looks for it "
                             f"({default_path}): run cmake --install build")
        with open(self.m.path("via-mount"), "wb") as f:
            f.write(b"mount -t works")
        self.m.stop()
        run("mount", "-t", "fuse.nvswapfs", "-o", "commit=2", self.m.image, self.m.mnt)
        try:
            self.assertTrue(is_mounted(self.m.mnt))
            with open("/proc/mounts") as f:
                line = next(l for l in f if l.split()[1] == self.m.mnt)
            self.assertIn("fuse.nvswapfs", line)
            with open(self.m.path("via-mount"), "rb") as f:
                self.assertEqual(f.read(), b"mount -t works")
        finally:
            run("umount", self.m.mnt)
        # The daemon commits and exits after the unmount; wait for its lock.
        deadline = time.time() + 20
        while run(os.path.join(BIN, "fsck.nvswapfs"), "-n", self.m.image,
                  check=False).returncode == 8 and time.time() < deadline:
            time.sleep(0.1)
        self.m.start()

    def test_second_mount_and_bad_options_are_refused(self):
        other = os.path.join(self.tmp, "other")
        os.mkdir(other)
        p = run(os.path.join(BIN, "nvswapfs"), self.m.image, other, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("already mounted", p.stderr)
        p = run(os.path.join(BIN, "nvswapfs"), "-o", "queue_depth=zero", self.m.image, other,
                check=False)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        p = run(os.path.join(BIN, "nvswapfs"), os.path.join(self.tmp, "missing.img"), other,
                check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("missing.img", p.stderr)

    def test_a_busy_mount_point_is_refused(self):
        # Another volume pointed at a mount point already in use must not be
        # stacked on top of it, hiding the files of the first.
        with open(self.m.path("mine"), "wb") as f:
            f.write(b"first volume")
        other = os.path.join(self.tmp, "other.img")
        run(os.path.join(BIN, "mkfs.nvswapfs"), "--size", "64M", other)
        p = run(os.path.join(BIN, "nvswapfs"), "-o", f"log={self.tmp}/other.log", other,
                self.m.mnt, check=False)
        with open("/proc/mounts") as f:
            mounts = [line for line in f if line.split()[1] == self.m.mnt]
        if len(mounts) > 1:
            run("fusermount3", "-u", self.m.mnt)  # takes the top one off
            deadline = time.time() + 20
            while run(os.path.join(BIN, "fsck.nvswapfs"), "-n", other,
                      check=False).returncode == 8 and time.time() < deadline:
                time.sleep(0.1)
        self.assertEqual(len(mounts), 1, f"a second volume was mounted over {self.m.mnt} "
                         f"(exit {p.returncode}):\n{''.join(mounts)}")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn(self.m.mnt, p.stderr)
        with open(self.m.path("mine"), "rb") as f:
            self.assertEqual(f.read(), b"first volume")

    def test_each_bad_option_is_refused_and_named(self):
        other = os.path.join(self.tmp, "other")
        os.mkdir(other)
        image = os.path.join(self.tmp, "other.img")
        run(os.path.join(BIN, "mkfs.nvswapfs"), "--size", "64M", image)
        bad = ["queue_depth=0", "queue_depth=zero", "threads=0", "threads=65", "commit=-1",
               "commit=abc", "single_submit=7", "overlap=2", "max_threads=0", "block_size=3",
               "block_size=1X", "fault_read=x", "log=/nonexistent/dir/log", "no_such_option=1",
               "ro=5"]
        for option in bad:
            with self.subTest(option=option):
                p = run(os.path.join(BIN, "nvswapfs"), "-o", option, image, other, check=False)
                mounted = is_mounted(other)
                if mounted:
                    run("fusermount3", "-u", other)
                    time.sleep(0.5)  # the daemon commits and lets go of the image
                self.assertFalse(mounted, f"-o {option} mounted")
                self.assertNotEqual(p.returncode, 0, f"-o {option} was accepted")
                # The message points at the culprit: the option or its value.
                key, value = option.split("=")
                self.assertTrue(key in p.stderr or f'"{value}"' in p.stderr, p.stderr)
                self.assertTrue(p.stderr.strip().splitlines()[-1].startswith("nvswapfs: "),
                                p.stderr)
                self.assertNotIn("terminate called", p.stderr)
        # None of them left the image locked or changed.
        run(os.path.join(BIN, "fsck.nvswapfs"), "-n", image)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    BIN = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
