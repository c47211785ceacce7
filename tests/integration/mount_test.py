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
import os
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


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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

    def test_sigterm_unmounts_and_commits(self):
        os.mkdir(self.m.path("d"))
        with open(self.m.path("d", "f"), "wb") as f:
            f.write(b"x" * 100_000)
        os.rename(self.m.path("d", "f"), self.m.path("d", "g"))
        self.m.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.m.proc.wait(timeout=60), 0, self.m.log_text())
        self.m.proc = None
        self.assertFalse(is_mounted(self.m.mnt))
        self.assertIn("unmounted", self.m.log_text())
        self.m.fsck()
        self.m.start()
        with open(self.m.path("d", "g"), "rb") as f:
            self.assertEqual(f.read(), b"x" * 100_000)

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

    def test_python_open_in_64k_chunks(self):
        chunk = os.urandom(64 << 10)
        with open(self.m.path("chunks"), "wb") as f:
            for _ in range(512):
                f.write(chunk)
        with open(self.m.path("chunks"), "rb") as f:
            for _ in range(512):
                self.assertEqual(f.read(64 << 10), chunk)
            self.assertEqual(f.read(), b"")


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
        with self.assertRaises(OSError) as e:
            write_direct(self.m.path("c.bin"), bytes(1 << 20))
        self.assertEqual(e.exception.errno, errno.EIO)
        self.assertEqual(write_direct(self.m.path("d.bin"), b"d" * 4096), 4096)
        log = self.m.log_text()
        self.assertRegex(log, r'read failed on "/a\.bin" offset=0 length=1048576: '
                              r'Input/output error .*\(errno 5\)')
        self.assertRegex(log, r'write failed on "/c\.bin" offset=0 length=1048576: '
                              r'Input/output error .*\(errno 5\)')
        self.remount()  # fsck must be clean after the faults
        self.assertEqual(read_direct(self.m.path("d.bin"), 4096), b"d" * 4096)


def as_nobody(*cmd):
    """Runs a command as the unprivileged user nobody."""
    return run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd, check=False)


def crc32c(data):
    """CRC-32C (Castagnoli), as the on-device format uses."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


class BadVolumeTest(unittest.TestCase):
    """Images a user might point the daemon at by mistake, or after damage."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nvswapfs-bad-", dir="/var/tmp")
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


FSX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fsx.py")


class RandomTesterTest(MountTest):
    """fsx.py: long random sequences checked against a model of every file."""

    def fsx(self, *args):
        return subprocess.Popen([sys.executable, FSX, self.m.mnt, *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def expect_clean(self, procs):
        for p in procs:
            out, _ = p.communicate(timeout=900)
            self.assertEqual(p.returncode, 0, out)
            self.assertIn("every read matched the model", out)

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
        self.expect_clean(procs)
        self.remount()  # and the volume they leave behind is consistent


class KillLoopTest(unittest.TestCase):
    def test_kill_9_loop_loses_nothing_fsynced(self):
        # A short run of crash_loop.py; run it by hand for any number.
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crash_loop.py")
        p = run(sys.executable, script, BIN, "--iterations", "5", "--seed", "17", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("no fsync'd byte lost", p.stdout)


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

    def test_mount_t_fuse_nvswapfs(self):
        # mount(8) hands fuse.nvswapfs to mount.fuse3, which runs the daemon
        # found on PATH with the options given.
        with open(self.m.path("via-mount"), "wb") as f:
            f.write(b"mount -t works")
        self.m.stop()
        env = dict(os.environ, PATH=BIN + ":" + os.environ.get("PATH", ""))
        run("mount", "-t", "fuse.nvswapfs", "-o", "commit=2", self.m.image, self.m.mnt, env=env)
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


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    BIN = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
