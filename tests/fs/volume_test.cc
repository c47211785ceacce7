// The Volume API without FUSE: names, attributes, data, space, persistence.
#include "nvswapfs/fs/volume.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "nvswapfs/aio/buffer.h"
#include "nvswapfs/aio/fault_injector.h"
#include "nvswapfs/fs/fsck.h"
#include "nvswapfs/fs/store.h"
#include "nvswapfs/unique_fd.h"
#include "nvswapfs/units.h"
#include "volume_test_util.h"

namespace nvswapfs::fs {
namespace {

using testing::DiffTrees;
using testing::ExpectFsckClean;
using testing::ReadTree;
using testing::Resolve;
using testing::TestImage;
using testing::Tree;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s));
}

std::string ReadAll(Volume& v, uint64_t ino) {
  auto attr = v.GetAttr(ino);
  EXPECT_TRUE(attr.ok());
  std::string out(attr.ok() ? attr->size : 0, '\0');
  auto n = v.Read(ino, 0, std::as_writable_bytes(std::span(out)));
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return out;
}

std::string Pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

const NewInode kFile{0644, 0, 0};
const NewInode kDirMode{0755, 0, 0};

class VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    volume_ = image_.Open();
    ASSERT_NE(volume_, nullptr);
  }
  // Closes the volume and opens it again, through `device` if given.
  void Reopen(aio::Syscalls* device = nullptr) {
    ASSERT_TRUE(volume_->Close().ok());
    volume_.reset();
    volume_ = image_.Open(device);
    ASSERT_NE(volume_, nullptr);
  }
  uint64_t MakeFile(const std::string& name, const std::string& content = "") {
    auto a = volume_->Create(kRootIno, name, kFile);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    if (!content.empty()) {
      auto n = volume_->Write(a->ino, 0, Bytes(content));
      EXPECT_TRUE(n.ok()) << n.status().ToString();
    }
    return a.ok() ? a->ino : 0;
  }

  TestImage image_;
  std::unique_ptr<Volume> volume_;
};

TEST_F(VolumeTest, FreshVolumeHasAnEmptyRoot) {
  auto root = volume_->GetAttr(kRootIno);
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(S_ISDIR(root->mode));
  EXPECT_EQ(root->nlink, 2u);
  int entries = 0;
  ASSERT_TRUE(
      volume_->Readdir(kRootIno, 0, [&](const DirListing&) { return ++entries, true; }).ok());
  EXPECT_EQ(entries, 0);
  VolumeStats st = volume_->StatFs();
  EXPECT_EQ(st.block_size, 4096u);
  EXPECT_GT(st.total_blocks, 0u);
  EXPECT_EQ(st.free_blocks, st.total_blocks);
  EXPECT_EQ(st.files, 1u);
}

TEST_F(VolumeTest, CreateLookupAndNameRules) {
  const uint64_t ino = MakeFile("tensor.pt");
  auto found = volume_->Lookup(kRootIno, "tensor.pt");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->ino, ino);
  EXPECT_TRUE(S_ISREG(found->mode));
  EXPECT_EQ(found->mode & 07777, 0644u);

  EXPECT_EQ(volume_->Create(kRootIno, "tensor.pt", kFile).status().code(), EEXIST);
  EXPECT_EQ(volume_->Lookup(kRootIno, "absent").status().code(), ENOENT);
  const std::string long_name(256, 'x');
  Status too_long = volume_->Create(kRootIno, long_name, kFile).status();
  EXPECT_EQ(too_long.code(), ENAMETOOLONG);
  EXPECT_NE(too_long.ToString().find("256 bytes"), std::string::npos) << too_long.ToString();
  EXPECT_TRUE(volume_->Create(kRootIno, std::string(255, 'y'), kFile).ok());
  for (const char* bad : {"", ".", "..", "a/b"}) {
    EXPECT_EQ(volume_->Create(kRootIno, bad, kFile).status().code(), EINVAL) << bad;
  }
  EXPECT_EQ(volume_->Create(kRootIno, std::string("a\0b", 3), kFile).status().code(), EINVAL);
  EXPECT_EQ(volume_->Create(ino, "child", kFile).status().code(), ENOTDIR);
}

TEST_F(VolumeTest, ErrorsNameTheFileAndTheOperation) {
  auto d = volume_->Mkdir(kRootIno, "ckpt", kDirMode);
  ASSERT_TRUE(d.ok());
  Status s = volume_->Create(d->ino, std::string(300, 'z'), kFile).status();
  EXPECT_NE(s.ToString().find("create failed on \"/ckpt/zzz"), std::string::npos) << s.ToString();
  const uint64_t f = MakeFile("big");
  Status efbig = volume_->Write(f, kMaxFileSize, Bytes("x")).status();
  EXPECT_EQ(efbig.code(), EFBIG);
  EXPECT_NE(efbig.ToString().find("write failed on \"/big\" offset=17592186044416 length=1"),
            std::string::npos)
      << efbig.ToString();
}

class VolumeModelTest : public VolumeTest, public ::testing::WithParamInterface<WriteMode> {};

INSTANTIATE_TEST_SUITE_P(BothWriteModes, VolumeModelTest,
                         ::testing::Values(WriteMode::kThrough, WriteMode::kBehind),
                         [](const auto& param_info) {
                           return param_info.param == WriteMode::kThrough ? "Through" : "Behind";
                         });

TEST_P(VolumeModelTest, UnalignedWritesAndReadsMatchAModel) {
  const uint64_t ino = MakeFile("model.bin");
  std::string model;
  std::mt19937_64 rng(7);
  uint64_t next_sequential = 0;
  for (int i = 0; i < 400; ++i) {
    const int op = static_cast<int>(rng() % 12);
    if (op < 8) {
      // Some writes continue the previous one, as streams do.
      const uint64_t off = op >= 6 ? next_sequential : rng() % (3 << 20);
      const size_t len = 1 + rng() % (op == 0 ? (1 << 20) : op >= 6 ? 70000 : 9000);
      const std::string data = Pattern(len, static_cast<uint32_t>(rng()));
      ASSERT_TRUE(volume_->Write(ino, off, Bytes(data), GetParam()).ok());
      next_sequential = off + len;
      if (model.size() < off + len) model.resize(off + len, '\0');
      model.replace(off, len, data);
    } else if (op < 10) {
      const uint64_t size = rng() % (4 << 20);
      ASSERT_TRUE(volume_->SetAttr(ino, SetAttrRequest{.size = size}).ok());
      model.resize(size, '\0');
    } else if (op == 10) {
      const uint64_t off = rng() % (3 << 20);
      const uint64_t len = 1 + rng() % (2 << 20);
      ASSERT_TRUE(
          volume_->Fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len).ok());
      if (off < model.size()) {
        std::fill_n(model.begin() + static_cast<long>(off),
                    std::min<uint64_t>(len, model.size() - off), '\0');
      }
    } else {
      const uint64_t off = rng() % (4 << 20);
      const uint64_t len = 1 + rng() % (1 << 20);
      ASSERT_TRUE(volume_->Fallocate(ino, 0, off, len).ok());
      if (model.size() < off + len) model.resize(off + len, '\0');
    }
    // Random reads of random ranges.
    const uint64_t off = rng() % (model.size() + 1);
    const size_t len = rng() % 20000;
    std::string got(len, '\0');
    auto n = volume_->Read(ino, off, std::as_writable_bytes(std::span(got)));
    ASSERT_TRUE(n.ok());
    const size_t want = off >= model.size() ? 0 : std::min<size_t>(len, model.size() - off);
    ASSERT_EQ(*n, want);
    ASSERT_EQ(got.substr(0, want), model.substr(off, want)) << "step " << i;
  }
  ASSERT_EQ(ReadAll(*volume_, ino), model);
  Reopen();
  ASSERT_EQ(ReadAll(*volume_, Resolve(*volume_, "/model.bin")), model);
}

TEST_F(VolumeTest, SmallSequentialWritesBehindBecomeWholeDeviceWrites) {
  const uint64_t ino = MakeFile("stream");
  const std::string chunk = Pattern(64 << 10, 3);
  const uint64_t before = volume_->engine().stats().requests;
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(volume_->Write(ino, i * chunk.size(), Bytes(chunk), WriteMode::kBehind).ok());
  }
  ASSERT_TRUE(volume_->Fsync(ino).ok());
  // 4 MiB in 64 KiB writes: four 1 MiB device writes, not 64.
  const uint64_t writes = volume_->engine().stats().requests - before;
  EXPECT_LE(writes, 4u + 3u) << "device requests for 64 small writes (plus the commit's)";
  std::string expect;
  for (int i = 0; i < 64; ++i) expect += chunk;
  EXPECT_EQ(ReadAll(*volume_, ino), expect);
  Reopen();
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/stream")), expect);
}

// Where the device's write requests take their bytes from.
class WriteSources : public aio::Syscalls {
 public:
  int Submit(io_context_t ctx, long n, struct iocb** iocbs) override {
    {
      std::lock_guard lock(mu_);
      for (long i = 0; i < n; ++i) {
        if (iocbs[i]->aio_lio_opcode == IO_CMD_PWRITE) sources_.push_back(iocbs[i]->u.c.buf);
      }
    }
    return Syscalls::Submit(ctx, n, iocbs);
  }
  // How many writes took their bytes from [begin, begin + n), and how many
  // started exactly at `begin`.
  std::pair<size_t, size_t> From(const std::byte* begin, size_t n) {
    std::lock_guard lock(mu_);
    size_t inside = 0, at = 0;
    for (const void* p : sources_) {
      const auto* b = static_cast<const std::byte*>(p);
      if (std::less_equal<>()(begin, b) && std::less<>()(b, begin + n)) ++inside;
      if (b == begin) ++at;
    }
    return {inside, at};
  }

 private:
  std::mutex mu_;
  std::vector<void*> sources_;
};

Result<size_t> WriteHandedOver(Volume& v, uint64_t ino, uint64_t offset, std::span<std::byte> data,
                               std::shared_ptr<void> owner, WriteMode mode) {
  std::promise<Result<size_t>> outcome;
  v.WriteAsync(
      ino, offset, data, std::move(owner),
      [&](Result<size_t> r) { outcome.set_value(std::move(r)); }, mode, true);
  return outcome.get_future().get();
}

TEST_F(VolumeTest, HandedOverWholeBlocksGoToTheDeviceFromWhereTheyAre) {
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  WriteSources sources;
  aio::FaultInjector no_faults(1, sources);
  volume_ = image_.Open(&no_faults);
  ASSERT_NE(volume_, nullptr);
  const uint64_t ino = MakeFile("handed");
  const std::string pattern = Pattern((2 << 20) + 5000, 11);
  auto memory = aio::AlignedBuffer::Allocate(pattern.size());
  ASSERT_TRUE(memory.ok());
  std::memcpy(memory->data(), pattern.data(), pattern.size());
  std::atomic<int> owners{0};
  auto hand_over = [&] {
    owners.fetch_add(1);
    return std::shared_ptr<void>(memory->data(), [&](void*) { owners.fetch_sub(1); });
  };
  const std::span<std::byte> all(memory->data(), pattern.size());

  // At a 1 MiB offset: two whole windows straight from the memory; the
  // last 5000 bytes are gathered (copied), not written from it.
  auto n = WriteHandedOver(*volume_, ino, 1 << 20, all, hand_over(), WriteMode::kBehind);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_TRUE(volume_->Fsync(ino).ok());
  auto [inside, at] = sources.From(memory->data(), pattern.size());
  EXPECT_EQ(at, 1u);
  EXPECT_EQ(inside, 2u) << "device writes from the handed-over memory";
  EXPECT_EQ(owners.load(), 0) << "the memory is let go once the device has it";

  // Not block-aligned: every byte is copied first, as with lent bytes.
  n = WriteHandedOver(*volume_, ino, (4 << 20) + 100, all, hand_over(), WriteMode::kThrough);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_TRUE(volume_->Fsync(ino).ok());
  EXPECT_EQ(sources.From(memory->data(), pattern.size()).first, 2u);
  EXPECT_EQ(owners.load(), 0);

  std::string expect((4 << 20) + 100 + pattern.size(), '\0');
  expect.replace(1 << 20, pattern.size(), pattern);
  expect.replace((4 << 20) + 100, pattern.size(), pattern);
  EXPECT_EQ(ReadAll(*volume_, ino), expect);
  Reopen();
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/handed")), expect);
}

// A device whose flushes can be held: Hold() makes the next flush wait, in
// the thread that issued it, until Release(). Everything goes on to `inner`.
class HeldFlushes : public aio::testing::Forwarding {
 public:
  explicit HeldFlushes(aio::Syscalls& inner = aio::Syscalls::System()) : Forwarding(inner) {}
  int Submit(io_context_t ctx, long n, struct iocb** iocbs) override {
    std::function<void()> then;
    {
      std::lock_guard lock(mu_);
      for (long i = 0; i < n; ++i) {
        const auto offset = static_cast<uint64_t>(iocbs[i]->u.c.offset);
        if (iocbs[i]->aio_lio_opcode == IO_CMD_PWRITE && offset >= watch_begin_ &&
            offset < watch_end_) {
          then = std::move(then_);
          watch_end_ = 0;
        }
      }
    }
    if (then) then();
    return inner_.Submit(ctx, n, iocbs);
  }
  int Flush(int fd) override {
    {
      std::unique_lock lock(mu_);
      if (hold_) {
        hold_ = false;
        waiting_ = true;
        changed_.notify_all();
        changed_.wait(lock, [&] { return released_; });
        waiting_ = false;
      }
    }
    return inner_.Flush(fd);
  }
  void Hold() {
    std::lock_guard lock(mu_);
    hold_ = true;
    released_ = false;
  }
  // Calls `then` when the first write that starts in [begin, end) is
  // submitted, before it goes on.
  void WhenWriteIn(uint64_t begin, uint64_t end, std::function<void()> then) {
    std::lock_guard lock(mu_);
    watch_begin_ = begin;
    watch_end_ = end;
    then_ = std::move(then);
  }
  // Holds the first flush after a write that starts in [begin, end).
  void HoldAfterWriteIn(uint64_t begin, uint64_t end) {
    {
      std::lock_guard lock(mu_);
      released_ = false;
    }
    WhenWriteIn(begin, end, [this] {
      std::lock_guard lock(mu_);
      hold_ = true;
    });
  }
  // Whether a flush came to the hold within `timeout`.
  bool WaitHeld(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return waiting_; });
  }
  // Whether a flush came to the hold before `work` ended, within a minute.
  bool WaitHeldWhile(std::future<Status>& work) {
    for (int i = 0; i < 600; ++i) {
      if (WaitHeld(std::chrono::milliseconds(100))) return true;
      if (work.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready) return false;
    }
    return false;
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool hold_ = false;
  bool waiting_ = false;
  bool released_ = false;
  uint64_t watch_begin_ = 0, watch_end_ = 0;
  std::function<void()> then_;
};

// What reading `file`, creating and writing `new_name`, looking it up and
// getting `busy`'s attributes return, or "" when they all succeed.
std::string ReadAndChange(Volume& v, uint64_t file, const std::string& content,
                          const std::string& new_name, uint64_t busy) {
  if (ReadAll(v, file) != content) return "a read back wrong";
  auto c = v.Create(kRootIno, new_name, kFile);
  if (!c.ok()) return c.status().ToString();
  auto n = v.Write(c->ino, 0, Bytes(Pattern(1 << 20, 23)));
  if (!n.ok()) return n.status().ToString();
  if (!v.Lookup(kRootIno, new_name).ok()) return "lookup failed";
  if (!v.GetAttr(busy).ok()) return "getattr failed";
  return "";
}

TEST_F(VolumeTest, AnFsyncWaitingForTheDeviceHoldsUpNoOtherFileOrChange) {
  HeldFlushes device;
  Reopen(&device);
  const std::string first = Pattern(3 << 20, 21);
  const uint64_t a = MakeFile("a", first);
  ASSERT_TRUE(volume_->Sync().ok());
  const uint64_t b = MakeFile("b", Pattern(1 << 20, 22));

  // b's fsync stops at its first flush, holding whatever it holds.
  device.Hold();
  auto fsync = std::async(std::launch::async, [&] { return volume_->Fsync(b); });
  ASSERT_TRUE(device.WaitHeld(std::chrono::seconds(10))) << "the fsync never flushed";
  // Meanwhile another file is read, a new one made and written, a name
  // looked up and a file's attributes read.
  auto others =
      std::async(std::launch::async, [&] { return ReadAndChange(*volume_, a, first, "c", b); });
  const bool others_done = others.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  const bool fsync_done = fsync.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready;
  device.Release();
  ASSERT_TRUE(others_done) << "reads and changes waited for another file's fsync";
  EXPECT_EQ(others.get(), "");
  EXPECT_FALSE(fsync_done) << "the fsync returned before its flush";
  const Status s = fsync.get();
  ASSERT_TRUE(s.ok()) << s.ToString();

  // All of it lasts: b by its fsync, c by the commit after it.
  ASSERT_TRUE(volume_->Sync().ok());
  const Tree before = ReadTree(*volume_);
  Reopen();
  EXPECT_EQ(DiffTrees(before, ReadTree(*volume_)), "");
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/c")), Pattern(1 << 20, 23));
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  ExpectFsckClean(image_.path());
}

TEST_F(VolumeTest, ACheckpointWaitingForTheDeviceHoldsUpNoOtherFileOrChange) {
  aio::FaultInjector power(5);  // to cut the power at the end
  HeldFlushes device(power);
  Reopen(&device);
  const std::string first = Pattern(3 << 20, 31);
  const uint64_t a = MakeFile("a", first);
  ASSERT_TRUE(volume_->Sync().ok());

  // Empty files, each fsync'd, until the log is half full and a commit
  // writes a checkpoint instead: it stops at the flush after its write to
  // a checkpoint slot.
  const Superblock sb = volume_->superblock();
  device.HoldAfterWriteIn(std::min(sb.ckpt_offset[0], sb.ckpt_offset[1]), sb.log_offset);
  std::atomic<bool> stop = false;
  auto fsyncs = std::async(std::launch::async, [&]() -> Status {
    for (int i = 0; !stop; ++i) {
      auto f = volume_->Create(kRootIno, "small" + std::to_string(i), kFile);
      if (!f.ok()) return f.status();
      NVSWAPFS_RETURN_IF_ERROR(volume_->Fsync(f->ino));
    }
    return Status::Ok();
  });
  const bool held = device.WaitHeldWhile(fsyncs);
  stop = true;
  std::string others_said = "never ran";
  bool others_done = false;
  bool fsync_done = true;
  if (held) {
    auto others = std::async(std::launch::async,
                             [&] { return ReadAndChange(*volume_, a, first, "after", a); });
    others_done = others.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    fsync_done = fsyncs.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready;
    device.Release();
    others_said = others.get();
  }
  const Status s = fsyncs.get();
  ASSERT_TRUE(held) << "no checkpoint was written: " << s.ToString();
  ASSERT_TRUE(others_done) << "reads and changes waited for a checkpoint";
  EXPECT_EQ(others_said, "");
  EXPECT_FALSE(fsync_done) << "the fsync returned before its checkpoint was flushed";
  ASSERT_TRUE(s.ok()) << s.ToString();

  // The checkpoint and the changes made while it was written both last,
  // without a closing checkpoint to fold the log after it away.
  ASSERT_TRUE(volume_->Sync().ok());
  const Tree before = ReadTree(*volume_);
  ASSERT_TRUE(power.CrashNow().ok());
  volume_.reset();
  volume_ = image_.Open();
  ASSERT_NE(volume_, nullptr);
  EXPECT_EQ(DiffTrees(before, ReadTree(*volume_)), "");
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/after")), Pattern(1 << 20, 23));
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  ExpectFsckClean(image_.path());
}

TEST_F(VolumeTest, AFailedCheckpointTurnsTheVolumeReadOnlyAndLosesNothingSynced) {
  aio::FaultInjector faults(7);
  HeldFlushes device(faults);
  Reopen(&device);
  const std::string kept = Pattern(1 << 20, 41);
  const uint64_t a = MakeFile("kept", kept);
  ASSERT_TRUE(volume_->Sync().ok());

  // Empty files, each fsync'd, until the log is half full and a commit
  // writes a checkpoint: the flush after its write to the slot fails.
  const Superblock sb = volume_->superblock();
  device.WhenWriteIn(std::min(sb.ckpt_offset[0], sb.ckpt_offset[1]), sb.log_offset,
                     [&] { faults.FailNth(aio::FaultOp::kFlush, 1); });
  std::vector<std::string> synced;
  Status failed;
  for (int i = 0; i < 5000 && failed.ok(); ++i) {
    const std::string name = "small" + std::to_string(i);
    auto f = volume_->Create(kRootIno, name, kFile);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    failed = volume_->Fsync(f->ino);
    if (failed.ok()) synced.push_back(name);
  }
  ASSERT_EQ(failed.code(), EIO) << "no checkpoint failed: " << failed.ToString();
  EXPECT_GT(synced.size(), 100u);

  // From then on the volume refuses changes, saying why, and still reads.
  const Status change = volume_->Create(kRootIno, "after", kFile).status();
  EXPECT_EQ(change.code(), EROFS) << change.ToString();
  EXPECT_NE(change.ToString().find("read-only after a failed commit"), std::string::npos)
      << change.ToString();
  EXPECT_EQ(volume_->Fsync(a).code(), EIO);
  EXPECT_EQ(ReadAll(*volume_, a), kept);
  EXPECT_EQ(volume_->Close().code(), EIO);
  volume_.reset();

  // Whatever was synced before the failure is there, and nothing after it.
  volume_ = image_.Open();
  ASSERT_NE(volume_, nullptr);
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/kept")), kept);
  for (const std::string& name : synced) EXPECT_NE(Resolve(*volume_, "/" + name), 0u) << name;
  EXPECT_EQ(Resolve(*volume_, "/after"), 0u);
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  ExpectFsckClean(image_.path());
}

TEST_F(VolumeTest, APowerCutWhileACheckpointIsWrittenLosesNothingSyncedBeforeIt) {
  aio::FaultInjector power(9);
  power.TrackUnflushedWrites(true);
  HeldFlushes device(power);
  Reopen(&device);
  const std::string kept = Pattern(2 << 20, 51);
  MakeFile("kept", kept);
  ASSERT_TRUE(volume_->Sync().ok());

  // Files, each fsync'd (every 64th with a block of data), until the log
  // is half full and a commit writes a checkpoint instead: it stops at the
  // flush after its write to a checkpoint slot.
  const Superblock sb = volume_->superblock();
  device.HoldAfterWriteIn(std::min(sb.ckpt_offset[0], sb.ckpt_offset[1]), sb.log_offset);
  // Only the fsync thread adds to it; read once that thread is joined.
  std::vector<std::pair<std::string, std::string>> synced;  // name, content
  std::atomic<bool> stop = false;
  auto fsyncs = std::async(std::launch::async, [&]() -> Status {
    for (uint32_t i = 0; !stop; ++i) {
      const std::string name = "small" + std::to_string(i);
      const std::string content = i % 64 == 0 ? Pattern(4096, i) : "";
      auto f = volume_->Create(kRootIno, name, kFile);
      if (!f.ok()) return f.status();
      if (!content.empty()) {
        auto n = volume_->Write(f->ino, 0, Bytes(content));
        if (!n.ok()) return n.status();
      }
      NVSWAPFS_RETURN_IF_ERROR(volume_->Fsync(f->ino));
      synced.emplace_back(name, content);
    }
    return Status::Ok();
  });
  const bool held = device.WaitHeldWhile(fsyncs);
  stop = true;
  std::string unsynced_said = "never ran";
  Status cut;
  if (held) {
    // A change made while the checkpoint is written, never synced: it may
    // be lost, but must not damage anything.
    auto f = volume_->Create(kRootIno, "unsynced", kFile);
    unsynced_said = f.ok() ? "" : f.status().ToString();
    if (f.ok()) (void)volume_->Write(f->ino, 0, Bytes(Pattern(1 << 20, 52)));
    // The power goes while the checkpoint's flush waits: the slot write
    // it was to make durable is undone.
    cut = power.CrashNow();
  }
  device.Release();
  const Status s = fsyncs.get();
  ASSERT_TRUE(held) << "no checkpoint was written: " << s.ToString();
  ASSERT_TRUE(cut.ok()) << cut.ToString();
  EXPECT_EQ(unsynced_said, "");
  EXPECT_EQ(s.code(), EIO) << "the fsync that wrote the checkpoint: " << s.ToString();
  ASSERT_GT(synced.size(), 100u);
  volume_.reset();

  // Every fsync that returned before the power went is there, with its
  // bytes, from the checkpoint before and the log after it.
  volume_ = image_.Open();
  ASSERT_NE(volume_, nullptr);
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/kept")), kept);
  for (const auto& [name, content] : synced) {
    const uint64_t ino = Resolve(*volume_, "/" + name);
    ASSERT_NE(ino, 0u) << name << " was fsync'd and is gone";
    EXPECT_EQ(ReadAll(*volume_, ino), content) << name;
  }
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  ExpectFsckClean(image_.path());
}

TEST_F(VolumeTest, SpaceFreedByACommitBeingWrittenIsNotReusedBeforeItIsDurable) {
  aio::FaultInjector power(11);
  power.TrackUnflushedWrites(true);
  HeldFlushes device(power);
  Reopen(&device);
  const std::string old_bytes = Pattern(4 << 20, 61);
  MakeFile("old", old_bytes);
  ASSERT_TRUE(volume_->Sync().ok());
  ASSERT_TRUE(volume_->Unlink(kRootIno, "old").ok());

  // The fsync that commits the unlink waits at its first flush, its commit
  // taken and the volume free for other work; the power goes at the flush
  // after its log write, so the unlink never becomes durable.
  device.Hold();
  power.CrashAtNth(aio::FaultOp::kFlush, 2);
  auto sync = std::async(std::launch::async, [&] { return volume_->Sync(); });
  const bool held = device.WaitHeldWhile(sync);
  std::string wrote = "never ran";
  if (held) {
    // Meanwhile another file is written; the held flush, once it goes on,
    // makes these bytes durable wherever they went.
    auto f = volume_->Create(kRootIno, "new", kFile);
    wrote = f.ok() ? "" : f.status().ToString();
    if (f.ok()) {
      auto n = volume_->Write(f->ino, 0, Bytes(Pattern(4 << 20, 62)), WriteMode::kThrough);
      if (!n.ok()) wrote = n.status().ToString();
    }
  }
  device.Release();
  const Status s = sync.get();
  ASSERT_TRUE(held) << "the fsync never flushed: " << s.ToString();
  EXPECT_EQ(wrote, "");
  EXPECT_EQ(s.code(), EIO) << s.ToString();
  EXPECT_TRUE(power.crashed());
  volume_.reset();
  ASSERT_TRUE(power.CrashNow().ok());

  // After the restart the unlink is undone, and the old file's space held
  // nothing but its own bytes all along.
  volume_ = image_.OpenAfterPowerCut();
  ASSERT_NE(volume_, nullptr);
  const uint64_t old_file = Resolve(*volume_, "/old");
  ASSERT_NE(old_file, 0u) << "the unlink was never durable";
  const std::string got = ReadAll(*volume_, old_file);
  ASSERT_EQ(got.size(), old_bytes.size());
  const auto differs = std::mismatch(got.begin(), got.end(), old_bytes.begin()).first;
  EXPECT_EQ(differs, got.end()) << "the old file's bytes were overwritten from offset "
                                << (differs - got.begin());
  EXPECT_EQ(Resolve(*volume_, "/new"), 0u);
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  ExpectFsckClean(image_.path());
}

// A read's or a write-through's callback may hold or use what its caller
// lent (the daemon's reply buffers, from a pool it destroys once the volume
// is closed; its FUSE session): Close waits until every callback has
// returned and let go of what it holds.
class CloseWaitsTest : public VolumeTest, public ::testing::WithParamInterface<bool> {};

TEST_P(CloseWaitsTest, ForEveryReportAndWhatItsCallbackHolds) {
  const bool write = GetParam();
  const uint64_t f = MakeFile("f", Pattern(1 << 20, 3));
  std::atomic<bool> let_go = false;
  struct Held {
    std::atomic<bool>* let_go;
    ~Held() { *let_go = true; }
  };
  auto held = std::make_shared<Held>(&let_go);
  std::promise<void> reporting;
  std::promise<void> go_on;
  Volume::TransferDone done = [held = std::move(held), &reporting,
                               waiting = go_on.get_future().share()](Result<size_t> n) {
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    reporting.set_value();
    waiting.wait();
  };
  std::string data(1 << 20, 'w');
  if (write) {
    volume_->WriteAsync(f, 4096, Bytes(data), std::move(done), WriteMode::kThrough);
  } else {
    volume_->ReadAsync(f, 0, std::as_writable_bytes(std::span(data)), std::move(done));
  }
  reporting.get_future().wait();
  std::atomic<bool> closed = false;
  bool let_go_when_closed = false;
  auto close = std::async(std::launch::async, [&] {
    const Status s = volume_->Close();
    let_go_when_closed = let_go;
    closed = true;
    return s;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(closed) << "Close returned while a callback was still running";
  go_on.set_value();
  EXPECT_TRUE(close.get().ok());
  EXPECT_TRUE(let_go_when_closed) << "Close returned before the callback let go of what it held";
}

INSTANTIATE_TEST_SUITE_P(ReadAndWriteThrough, CloseWaitsTest, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "Write" : "Read"; });

TEST_F(VolumeTest, WriteBehindFailureIsReportedLaterAndItsBytesReadAsEio) {
  const uint64_t f = MakeFile("victim", std::string(2 << 20, 'v'));
  const uint64_t other = MakeFile("other", "fine");
  aio::FaultInjector faults(5);
  Reopen(&faults);
  (void)f;
  (void)other;
  const uint64_t victim = Resolve(*volume_, "/victim");
  faults.FailNth(aio::FaultOp::kWrite, 1);
  const std::string fresh(1 << 20, 'n');
  // Accepted: the device has not failed yet.
  ASSERT_TRUE(volume_->Write(victim, 1 << 20, Bytes(fresh), WriteMode::kBehind).ok());
  // The bytes it lost read as EIO, never as stale or made-up data.
  std::string buf(4096, '\0');
  Status r =
      volume_->Read(victim, (1 << 20) + 8192, std::as_writable_bytes(std::span(buf))).status();
  EXPECT_EQ(r.code(), EIO) << r.ToString();
  // The rest of the file is intact.
  EXPECT_TRUE(volume_->Read(victim, 0, std::as_writable_bytes(std::span(buf))).ok());
  EXPECT_EQ(buf, std::string(4096, 'v'));
  // Fsync of that file reports the failure once, naming the file and range.
  Status s = volume_->Fsync(victim);
  EXPECT_EQ(s.code(), EIO);
  EXPECT_NE(s.ToString().find("write failed on \"/victim\" offset=1048576"), std::string::npos)
      << s.ToString();
  EXPECT_TRUE(volume_->Fsync(victim).ok());
  EXPECT_TRUE(volume_->Fsync(Resolve(*volume_, "/other")).ok());
  // Writing the bytes again makes them readable again.
  ASSERT_TRUE(volume_->Write(victim, 1 << 20, Bytes(fresh), WriteMode::kBehind).ok());
  EXPECT_TRUE(volume_->Fsync(victim).ok());
  EXPECT_EQ(ReadAll(*volume_, victim), std::string(1 << 20, 'v') + fresh);
  // Or the file's next write reports it, once.
  faults.FailNth(aio::FaultOp::kWrite, 1);
  ASSERT_TRUE(volume_->Write(victim, 0, Bytes(std::string(8192, 'x')), WriteMode::kBehind).ok());
  ASSERT_TRUE(volume_->Sync().ok());
  EXPECT_EQ(volume_->Write(victim, 1 << 20, Bytes("y"), WriteMode::kBehind).status().code(), EIO);
  EXPECT_TRUE(volume_->FlushErrors(victim).ok());
  EXPECT_TRUE(volume_->Write(victim, 1 << 20, Bytes("y"), WriteMode::kBehind).ok());
  EXPECT_TRUE(volume_->Close().ok());
  volume_.reset();
}

TEST_F(VolumeTest, SequentialWritesStayInOneExtent) {
  const uint64_t ino = MakeFile("seq");
  const std::string chunk = Pattern(64 << 10, 1);
  for (int i = 0; i < 64; ++i)
    ASSERT_TRUE(volume_->Write(ino, i * chunk.size(), Bytes(chunk)).ok());
  auto attr = volume_->GetAttr(ino);
  EXPECT_EQ(attr->size, 4u << 20);
  EXPECT_EQ(attr->blocks, (4u << 20) / 512);
}

TEST_F(VolumeTest, NeverWrittenBytesReadAsZerosNotDeletedData) {
  // Fill most of the device with a recognisable byte, then delete it.
  const uint64_t old = MakeFile("old", std::string(32 << 20, '\xAB'));
  ASSERT_NE(old, 0u);
  ASSERT_TRUE(volume_->Unlink(kRootIno, "old").ok());
  ASSERT_TRUE(volume_->Sync().ok());
  const uint64_t f = MakeFile("new");
  // A small write (rest of its unit never written), a hole, truncate up,
  // fallocate, and a partial block.
  ASSERT_TRUE(volume_->Write(f, 5000, Bytes("hello")).ok());
  ASSERT_TRUE(volume_->SetAttr(f, SetAttrRequest{.size = 3 << 20}).ok());
  ASSERT_TRUE(volume_->Fallocate(f, 0, 4 << 20, 8 << 20).ok());
  ASSERT_TRUE(volume_->Write(f, (13 << 20) + 100, Bytes("tail")).ok());
  const std::string all = ReadAll(*volume_, f);
  EXPECT_EQ(all.find('\xAB'), std::string::npos) << "stale data at " << all.find('\xAB');
  EXPECT_EQ(all.substr(5000, 5), "hello");
  // Shrinking then growing again must not bring back the cut bytes.
  ASSERT_TRUE(volume_->SetAttr(f, SetAttrRequest{.size = 5002}).ok());
  ASSERT_TRUE(volume_->SetAttr(f, SetAttrRequest{.size = 9000}).ok());
  const std::string regrown = ReadAll(*volume_, f);
  EXPECT_EQ(regrown.substr(5000, 2), "he");
  EXPECT_EQ(regrown.substr(5002), std::string(9000 - 5002, '\0'));
}

TEST_F(VolumeTest, DirectoriesAndLinkCounts) {
  auto d = volume_->Mkdir(kRootIno, "d", kDirMode);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(volume_->GetAttr(kRootIno)->nlink, 3u);
  auto sub = volume_->Mkdir(d->ino, "sub", kDirMode);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(volume_->GetAttr(d->ino)->nlink, 3u);
  EXPECT_EQ(volume_->Rmdir(kRootIno, "d").code(), ENOTEMPTY);
  EXPECT_EQ(volume_->Unlink(kRootIno, "d").code(), EISDIR);
  const uint64_t f = MakeFile("f");
  EXPECT_EQ(volume_->Rmdir(kRootIno, "f").code(), ENOTDIR);
  EXPECT_EQ(volume_->Mkdir(kRootIno, "f", kDirMode).status().code(), EEXIST);
  ASSERT_TRUE(volume_->Rmdir(d->ino, "sub").ok());
  ASSERT_TRUE(volume_->Rmdir(kRootIno, "d").ok());
  EXPECT_EQ(volume_->GetAttr(kRootIno)->nlink, 2u);
  EXPECT_EQ(volume_->GetAttr(d->ino).status().code(), ENOENT);

  auto l = volume_->Link(f, kRootIno, "g");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->nlink, 2u);
  ASSERT_TRUE(volume_->Write(f, 0, Bytes("shared")).ok());
  ASSERT_TRUE(volume_->Unlink(kRootIno, "f").ok());
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/g")), "shared");
  EXPECT_EQ(volume_->GetAttr(f)->nlink, 1u);
}

TEST_F(VolumeTest, Symlinks) {
  auto s = volume_->Symlink(kRootIno, "latest", "ckpt/step-1000.pt", kFile);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(S_ISLNK(s->mode));
  EXPECT_EQ(s->size, 17u);
  EXPECT_EQ(*volume_->Readlink(s->ino), "ckpt/step-1000.pt");
  EXPECT_EQ(volume_->Readlink(kRootIno).status().code(), EINVAL);
  EXPECT_EQ(volume_->Symlink(kRootIno, "x", std::string(5000, 'a'), kFile).status().code(),
            ENAMETOOLONG);
  Reopen();
  EXPECT_EQ(*volume_->Readlink(Resolve(*volume_, "/latest")), "ckpt/step-1000.pt");
}

TEST_F(VolumeTest, RenameInAllItsForms) {
  const uint64_t a = MakeFile("a", "AAA");
  const uint64_t b = MakeFile("b", "BBBB");
  auto d = volume_->Mkdir(kRootIno, "d", kDirMode);
  ASSERT_TRUE(d.ok());

  EXPECT_EQ(volume_->Rename(kRootIno, "a", kRootIno, "b", RenameMode::kNoReplace).code(), EEXIST);
  ASSERT_TRUE(volume_->Rename(kRootIno, "a", kRootIno, "b", RenameMode::kExchange).ok());
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/a")), "BBBB");
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/b")), "AAA");

  // Replacing: the target's old inode goes away atomically.
  ASSERT_TRUE(volume_->Rename(kRootIno, "a", kRootIno, "b", RenameMode::kReplace).ok());
  EXPECT_EQ(Resolve(*volume_, "/a"), 0u);
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/b")), "BBBB");
  EXPECT_EQ(volume_->GetAttr(a).status().code(), ENOENT);
  EXPECT_EQ(Resolve(*volume_, "/b"), b);

  // Into a directory, and a directory across directories.
  ASSERT_TRUE(volume_->Rename(kRootIno, "b", d->ino, "b2", RenameMode::kReplace).ok());
  EXPECT_EQ(Resolve(*volume_, "/d/b2"), b);
  auto e = volume_->Mkdir(kRootIno, "e", kDirMode);
  ASSERT_TRUE(volume_->Rename(kRootIno, "d", e->ino, "d", RenameMode::kReplace).ok());
  EXPECT_EQ(volume_->GetAttr(kRootIno)->nlink, 3u);
  EXPECT_EQ(volume_->GetAttr(e->ino)->nlink, 3u);
  EXPECT_EQ(volume_->PathOf(b), "/e/d/b2");

  // Never into its own subtree; never a directory over a file or a full one.
  EXPECT_EQ(volume_->Rename(kRootIno, "e", d->ino, "x", RenameMode::kReplace).code(), EINVAL);
  MakeFile("plain");
  EXPECT_EQ(volume_->Rename(kRootIno, "e", kRootIno, "plain", RenameMode::kReplace).code(),
            ENOTDIR);
  EXPECT_EQ(volume_->Rename(kRootIno, "plain", kRootIno, "e", RenameMode::kReplace).code(), EISDIR);
  auto full = volume_->Mkdir(kRootIno, "full", kDirMode);
  ASSERT_TRUE(volume_->Create(full->ino, "x", kFile).ok());
  EXPECT_EQ(volume_->Rename(kRootIno, "e", kRootIno, "full", RenameMode::kReplace).code(),
            ENOTEMPTY);
  EXPECT_EQ(volume_->Rename(kRootIno, "nope", kRootIno, "x", RenameMode::kReplace).code(), ENOENT);

  Reopen();
  EXPECT_NE(Resolve(*volume_, "/e/d/b2"), 0u);
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/e/d/b2")), "BBBB");
}

TEST_F(VolumeTest, ExtendedAttributes) {
  const uint64_t f = MakeFile("x");
  ASSERT_TRUE(volume_->SetXattr(f, "user.step", "1000", 0).ok());
  EXPECT_EQ(*volume_->GetXattr(f, "user.step"), "1000");
  EXPECT_EQ(volume_->SetXattr(f, "user.step", "1", XATTR_CREATE).code(), EEXIST);
  EXPECT_EQ(volume_->SetXattr(f, "user.new", "1", XATTR_REPLACE).code(), ENODATA);
  ASSERT_TRUE(volume_->SetXattr(f, "user.step", "2000", XATTR_REPLACE).ok());
  ASSERT_TRUE(volume_->SetXattr(f, "user.dtype", "bf16", 0).ok());
  EXPECT_EQ(*volume_->ListXattr(f), (std::vector<std::string>{"user.dtype", "user.step"}));
  EXPECT_EQ(volume_->GetXattr(f, "user.none").status().code(), ENODATA);
  EXPECT_EQ(volume_->SetXattr(f, "user.big", std::string(5000, 'v'), 0).code(), E2BIG);
  EXPECT_EQ(volume_->SetXattr(f, std::string(300, 'n'), "v", 0).code(), ERANGE);
  ASSERT_TRUE(volume_->RemoveXattr(f, "user.dtype").ok());
  EXPECT_EQ(volume_->RemoveXattr(f, "user.dtype").code(), ENODATA);
  Reopen();
  const uint64_t again = Resolve(*volume_, "/x");
  EXPECT_EQ(*volume_->GetXattr(again, "user.step"), "2000");
  EXPECT_EQ(volume_->ListXattr(again)->size(), 1u);
}

TEST_F(VolumeTest, AttributesPersist) {
  const uint64_t f = MakeFile("attrs", "data");
  ASSERT_TRUE(volume_
                  ->SetAttr(f, SetAttrRequest{.mode = 0600,
                                              .uid = 1234,
                                              .gid = 99,
                                              .atime_ns = 1'000'000'007,
                                              .mtime_ns = 2'000'000'009})
                  .ok());
  Reopen();
  auto a = volume_->GetAttr(Resolve(*volume_, "/attrs"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mode, S_IFREG | 0600u);
  EXPECT_EQ(a->uid, 1234u);
  EXPECT_EQ(a->gid, 99u);
  EXPECT_EQ(a->atime_ns, 1'000'000'007);
  EXPECT_EQ(a->mtime_ns, 2'000'000'009);
  EXPECT_EQ(a->size, 4u);
  EXPECT_EQ(volume_->SetAttr(kRootIno, SetAttrRequest{.size = 0}).status().code(), EISDIR);
}

TEST_F(VolumeTest, UnprivilegedWritesDropSetIdBitsAndTellTheListener) {
  std::vector<uint64_t> told;
  volume_->SetAttrChangeListener([&](uint64_t ino) { told.push_back(ino); });
  const uint64_t f = MakeFile("setid", "data");
  auto mode_of = [&] { return volume_->GetAttr(f)->mode & 07777; };
  auto write = [&](bool privileged) {
    std::promise<Result<size_t>> done;
    volume_->WriteAsync(
        f, 0, Bytes("x"), [&](Result<size_t> n) { done.set_value(std::move(n)); },
        WriteMode::kThrough, privileged);
    return done.get_future().get();
  };
  ASSERT_TRUE(volume_->SetAttr(f, SetAttrRequest{.mode = 06777}).ok());
  ASSERT_TRUE(write(/*privileged=*/true).ok());
  EXPECT_EQ(mode_of(), 06777u);
  EXPECT_TRUE(told.empty());
  ASSERT_TRUE(write(/*privileged=*/false).ok());
  EXPECT_EQ(mode_of(), 0777u);
  EXPECT_EQ(told, std::vector<uint64_t>{f});
  // Set-group-ID without group-execute marks mandatory locking, not a
  // privilege: it stays, and nothing changed to tell.
  ASSERT_TRUE(volume_->SetAttr(f, SetAttrRequest{.mode = 02767}).ok());
  ASSERT_TRUE(write(/*privileged=*/false).ok());
  EXPECT_EQ(mode_of(), 02767u);
  EXPECT_EQ(told.size(), 1u);
  volume_->SetAttrChangeListener(nullptr);
  ASSERT_TRUE(volume_->SetAttr(f, SetAttrRequest{.mode = 04755}).ok());
  ASSERT_TRUE(write(/*privileged=*/false).ok());
  Reopen();
  EXPECT_EQ(volume_->GetAttr(Resolve(*volume_, "/setid"))->mode & 07777, 0755u);
}

TEST_F(VolumeTest, FullDeviceGivesEnospcAndDeletingGivesSpaceBack) {
  const VolumeStats before = volume_->StatFs();
  const std::string chunk(1 << 20, 'q');
  std::vector<uint64_t> files;
  Status failure;
  for (int i = 0; i < 200 && failure.ok(); ++i) {
    const uint64_t f = MakeFile("fill" + std::to_string(i));
    files.push_back(f);
    for (int j = 0; j < 4 && failure.ok(); ++j) {
      auto n = volume_->Write(f, j * chunk.size(), Bytes(chunk));
      if (!n.ok()) failure = n.status();
    }
  }
  ASSERT_EQ(failure.code(), ENOSPC) << failure.ToString();
  EXPECT_NE(failure.ToString().find("free"), std::string::npos) << failure.ToString();
  EXPECT_EQ(volume_->StatFs().free_blocks, 0u);
  // The failed write changed nothing: earlier data is intact.
  EXPECT_EQ(ReadAll(*volume_, files.front()), std::string(4 << 20, 'q'));
  for (size_t i = 0; i < files.size(); ++i) {
    ASSERT_TRUE(volume_->Unlink(kRootIno, "fill" + std::to_string(i)).ok());
  }
  EXPECT_EQ(volume_->StatFs().free_blocks, before.free_blocks);
  // Freed space is usable again (after the deletions are committed).
  const uint64_t again = MakeFile("again");
  EXPECT_TRUE(volume_->Write(again, 0, Bytes(std::string(8 << 20, 'r'))).ok());
  Reopen();
  EXPECT_EQ(volume_->StatFs().free_blocks, before.free_blocks - (8 << 20) / 4096);
}

// Small writes scattered over allocated space split its extents, and each
// piece is metadata as a new file's inode is: when they fill the metadata
// space, the write that would not fit is refused with ENOSPC, and the volume
// stays writable, instead of a checkpoint failing later and turning it
// read-only.
TEST(VolumeMetadataTest, ScatteredWritesThatFillTheMetadataAreRefusedAndTheVolumeGoesOn) {
  TestImage image(
      testing::ImageOptions{.size = 256 << 20, .log_size = 64 << 10, .ckpt_size = 64 << 10});
  auto volume = image.Open();
  ASSERT_NE(volume, nullptr);
  auto f = volume->Create(kRootIno, "scattered", NewInode{0644, 0, 0});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const uint64_t ino = f->ino;
  ASSERT_TRUE(volume->Fallocate(ino, 0, 0, 64 << 20).ok());
  // A block written, a block left, again and again: every write splits an
  // unwritten extent in three.
  const std::string block(4096, 'w');
  Status refused;
  uint64_t written = 0;
  for (uint64_t i = 0; i < (64 << 20) / 8192 && refused.ok(); ++i) {
    auto n = volume->Write(ino, i * 8192, Bytes(block));
    if (n.ok()) {
      ++written;
    } else {
      refused = n.status();
    }
  }
  ASSERT_EQ(refused.code(), ENOSPC) << refused.ToString() << " after " << written << " writes";
  EXPECT_NE(refused.ToString().find("metadata"), std::string::npos) << refused.ToString();
  // A 60 KiB slot holds some 2,500 extents: the metadata filled up, not the data.
  EXPECT_GT(written, 500u);
  EXPECT_LT(written, 2000u);
  // A small hole could split an extent as a write does: refused too. One
  // that frees whole units makes room, and is not.
  constexpr int kPunch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  EXPECT_EQ(volume->Fallocate(ino, kPunch, 8192 * 3, 4096).code(), ENOSPC);
  ASSERT_TRUE(volume->Fallocate(ino, kPunch, 48 << 20, 16 << 20).ok());
  // Nothing failed to commit: the volume is writable, and what was written stays.
  ASSERT_TRUE(volume->Sync().ok());
  ASSERT_TRUE(volume->SetAttr(ino, SetAttrRequest{.size = 8192 * (written / 2)}).ok())
      << "giving metadata back";
  ASSERT_TRUE(volume->Write(ino, 1, Bytes(std::string("x"))).ok());
  ASSERT_TRUE(volume->Close().ok());
  volume.reset();
  auto reopened = image.Open();
  ASSERT_NE(reopened, nullptr);
  const std::string got = ReadAll(*reopened, ino);
  ASSERT_EQ(got.size(), 8192 * (written / 2));
  for (uint64_t i = 0; i < written / 2; ++i) {
    const std::string expected = i == 0 ? "wx" + std::string(4094, 'w') : block;
    ASSERT_EQ(got.substr(i * 8192, 4096), expected) << "block " << 2 * i;
    ASSERT_EQ(got.substr(i * 8192 + 4096, 4096), std::string(4096, '\0')) << "block " << 2 * i + 1;
  }
  reopened.reset();
  testing::ExpectFsckClean(image.path());
}

// Bytes the image takes on the filesystem holding it.
uint64_t AllocatedBytes(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

TEST_F(VolumeTest, TrimDiscardsFreeSpaceAndNothingAFileHolds) {
  const std::string kept = Pattern(8 << 20, 1);
  const std::string held = Pattern(4 << 20, 3);
  const uint64_t k = MakeFile("kept", kept);
  MakeFile("deleted", Pattern(8 << 20, 2));
  const uint64_t h = MakeFile("held", held);
  ASSERT_TRUE(volume_->Sync().ok());
  const uint64_t before = AllocatedBytes(image_.path());
  // Deleted but not yet committed: the trim commits first, so their space
  // goes too; a file deleted while open keeps its space until released.
  ASSERT_TRUE(volume_->Open(h).ok());
  ASSERT_TRUE(volume_->Unlink(kRootIno, "held").ok());
  ASSERT_TRUE(volume_->Unlink(kRootIno, "deleted").ok());
  auto trimmed = volume_->Trim(0, UINT64_MAX, 0);
  ASSERT_TRUE(trimmed.ok()) << trimmed.status().ToString();
  EXPECT_EQ(*trimmed, volume_->StatFs().free_blocks * kBlockSize);
  // 8 MiB less, but for the log blocks of the commit the trim made.
  EXPECT_LE(AllocatedBytes(image_.path()), before - (8 << 20) + (64 << 10));
  EXPECT_EQ(ReadAll(*volume_, k), kept);
  EXPECT_EQ(ReadAll(*volume_, h), held);
  volume_->Release(h);

  // Discarded space is used again like any other, and the volume is whole.
  const std::string fresh = Pattern(20 << 20, 4);
  MakeFile("fresh", fresh);
  Reopen();
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/kept")), kept);
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/fresh")), fresh);
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  testing::ExpectFsckClean(image_.path());
}

TEST_F(VolumeTest, TrimKeepsToItsRangeAndSkipsShortFreeRuns) {
  const uint64_t unit = volume_->superblock().alloc_unit;
  const uint64_t data = volume_->superblock().data_offset;
  // Free space: two units, then one used, then the rest of the device.
  MakeFile("first", std::string(2 * unit, 'a'));
  MakeFile("second", std::string(unit, 'b'));
  ASSERT_TRUE(volume_->Unlink(kRootIno, "first").ok());
  ASSERT_TRUE(volume_->Sync().ok());
  const uint64_t free_bytes = volume_->StatFs().free_blocks * kBlockSize;
  ASSERT_GT(free_bytes, 4 * unit);

  auto r = volume_->Trim(0, UINT64_MAX, 3 * unit);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, free_bytes - 2 * unit);
  r = volume_->Trim(0, UINT64_MAX, 0);
  EXPECT_EQ(*r, free_bytes);
  // Only whole free units inside the range count.
  EXPECT_EQ(*volume_->Trim(0, data, 0), 0u);
  EXPECT_EQ(*volume_->Trim(data, unit, 0), unit);
  EXPECT_EQ(*volume_->Trim(data + 1, 2 * unit, 0), unit);
  EXPECT_EQ(*volume_->Trim(data, 4 * unit, 0), 3 * unit);
  EXPECT_EQ(*volume_->Trim(UINT64_MAX - 1, 10, 0), 0u);
  EXPECT_EQ(*volume_->Trim(0, UINT64_MAX, UINT64_MAX), 0u);
  EXPECT_EQ(*volume_->Trim(0, UINT64_MAX, free_bytes - 2 * unit), free_bytes - 2 * unit);
  EXPECT_EQ(*volume_->Trim(0, UINT64_MAX, free_bytes - 2 * unit + 1), 0u);
  EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/second")), std::string(unit, 'b'));
}

TEST_F(VolumeTest, UnlinkedWhileOpenLivesUntilRelease) {
  const uint64_t f = MakeFile("tmp", std::string(2 << 20, 't'));
  const uint64_t free_with_file = volume_->StatFs().free_blocks;
  ASSERT_TRUE(volume_->Open(f).ok());
  ASSERT_TRUE(volume_->Unlink(kRootIno, "tmp").ok());
  EXPECT_EQ(Resolve(*volume_, "/tmp"), 0u);
  EXPECT_EQ(ReadAll(*volume_, f), std::string(2 << 20, 't'));
  ASSERT_TRUE(volume_->Write(f, 0, Bytes("still here")).ok());
  EXPECT_EQ(volume_->StatFs().free_blocks, free_with_file);
  volume_->Release(f);
  EXPECT_EQ(volume_->GetAttr(f).status().code(), ENOENT);
  EXPECT_GT(volume_->StatFs().free_blocks, free_with_file);
}

TEST_F(VolumeTest, OrphansLeftByACrashAreFreedAtOpen) {
  const uint64_t f = MakeFile("orphan", std::string(3 << 20, 'o'));
  const uint64_t free_before = volume_->StatFs().free_blocks;
  ASSERT_TRUE(volume_->Open(f).ok());
  ASSERT_TRUE(volume_->Unlink(kRootIno, "orphan").ok());
  ASSERT_TRUE(volume_->Sync().ok());
  // Gone without a Release, as when the daemon is killed.
  Reopen();
  EXPECT_GT(volume_->StatFs().free_blocks, free_before);
  bool noted = false;
  for (const std::string& n : volume_->notes())
    noted |= n.find("deleted while open") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST_F(VolumeTest, ReadOnlyVolumeRefusesChanges) {
  MakeFile("ro", "data");
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  volume_ = image_.Open(nullptr, VolumeOptions{.read_only = true, .commit_interval_s = 0});
  ASSERT_NE(volume_, nullptr);
  const uint64_t f = Resolve(*volume_, "/ro");
  EXPECT_EQ(ReadAll(*volume_, f), "data");
  EXPECT_EQ(volume_->Write(f, 0, Bytes("x")).status().code(), EROFS);
  EXPECT_EQ(volume_->Create(kRootIno, "new", kFile).status().code(), EROFS);
  EXPECT_EQ(volume_->Unlink(kRootIno, "ro").code(), EROFS);
  EXPECT_EQ(volume_->Trim(0, UINT64_MAX, 0).status().code(), EROFS);
}

TEST_F(VolumeTest, DeviceErrorFailsTheOpAndNamesTheFile) {
  const uint64_t f = MakeFile("victim", std::string(1 << 20, 'v'));
  aio::FaultInjector faults(3);
  Reopen(&faults);
  const uint64_t victim = Resolve(*volume_, "/victim");
  ASSERT_NE(victim, 0u);
  (void)f;
  faults.FailNth(aio::FaultOp::kRead, 1);
  std::string buf(4096, '\0');
  Status s = volume_->Read(victim, 8192, std::as_writable_bytes(std::span(buf))).status();
  EXPECT_EQ(s.code(), EIO);
  EXPECT_NE(s.ToString().find("read failed on \"/victim\" offset=8192 length=4096"),
            std::string::npos)
      << s.ToString();
  // The next read of the same file works.
  EXPECT_TRUE(volume_->Read(victim, 8192, std::as_writable_bytes(std::span(buf))).ok());
  faults.FailNth(aio::FaultOp::kWrite, 1);
  Status w = volume_->Write(victim, 0, Bytes("new")).status();
  EXPECT_EQ(w.code(), EIO);
  EXPECT_EQ(ReadAll(*volume_, victim).substr(0, 3), "vvv");
  // The volume goes before the device it runs on.
  EXPECT_TRUE(volume_->Close().ok());
  volume_.reset();
}

TEST_F(VolumeTest, ConcurrentWritersOnSeparateFiles) {
  constexpr int kThreads = 6;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto a = volume_->Create(kRootIno, "w" + std::to_string(t), kFile);
      if (!a.ok()) return void(++failures);
      const std::string data = Pattern(3 << 20, static_cast<uint32_t>(t));
      for (size_t off = 0; off < data.size(); off += 100000) {
        const size_t n = std::min<size_t>(100000, data.size() - off);
        if (!volume_->Write(a->ino, off, Bytes(data.substr(off, n))).ok()) ++failures;
      }
      if (ReadAll(*volume_, a->ino) != data) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  Reopen();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(ReadAll(*volume_, Resolve(*volume_, "/w" + std::to_string(t))),
              Pattern(3 << 20, static_cast<uint32_t>(t)));
  }
}

}  // namespace
}  // namespace nvswapfs::fs

namespace nvswapfs::fs {
namespace {

// Byte access to an image behind the volume's back.
class RawImage {
 public:
  explicit RawImage(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CLOEXEC)) {
    EXPECT_TRUE(fd_.valid()) << path;
  }
  char ReadByte(uint64_t at) {
    char c = 0;
    EXPECT_EQ(::pread(fd_.get(), &c, 1, static_cast<off_t>(at)), 1);
    return c;
  }
  void WriteByte(uint64_t at, char c) {
    EXPECT_EQ(::pwrite(fd_.get(), &c, 1, static_cast<off_t>(at)), 1);
  }

 private:
  UniqueFd fd_;
};

// Bytes flipped anywhere in the metadata (both superblocks, the checkpoint in
// use, the log) give an error or a volume that still reads; never a crash, a
// hang, or a volume fsck cannot look at.
TEST(CorruptionTest, FlippedMetadataBytesNeverCrash) {
  TestImage image;
  {
    auto v = image.Open();
    ASSERT_NE(v, nullptr);
    auto d = v->Mkdir(kRootIno, "dir", kDirMode);
    ASSERT_TRUE(d.ok());
    for (int i = 0; i < 20; ++i) {
      auto f = v->Create(d->ino, "f" + std::to_string(i), kFile);
      ASSERT_TRUE(f.ok());
      ASSERT_TRUE(v->Write(f->ino, 0, Bytes(Pattern(5000 * i + 1, i))).ok());
      ASSERT_TRUE(v->SetXattr(f->ino, "user.i", std::to_string(i), 0).ok());
    }
    ASSERT_TRUE(v->Close().ok());
  }
  Superblock sb;
  {
    // Some commits in the log after the checkpoint, too: "crash" after they
    // are durable, so that no closing checkpoint folds them away.
    aio::FaultInjector device(5);
    auto v = image.Open(&device);
    ASSERT_NE(v, nullptr);
    sb = v->superblock();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(v->Create(kRootIno, "log" + std::to_string(i), kFile).ok());
      ASSERT_TRUE(v->Sync().ok());
    }
    ASSERT_TRUE(device.CrashNow().ok());
  }
  struct Region {
    uint64_t offset;
    uint64_t length;
  };
  const Region regions[] = {
      {0, 512},                    // primary superblock fields
      {sb.backup_offset(), 512},   // backup superblock fields
      {sb.ckpt_offset[0], 16384},  // checkpoint slot 0
      {sb.ckpt_offset[1], 16384},  // checkpoint slot 1
      {sb.log_offset, 16384},      // the log
  };
  RawImage fd(image.path());
  std::mt19937_64 rng(99);
  int opened = 0, refused = 0;
  for (int i = 0; i < 250; ++i) {
    const Region& r = regions[rng() % std::size(regions)];
    const uint64_t at = r.offset + rng() % r.length;
    const auto old = fd.ReadByte(at);
    fd.WriteByte(at, static_cast<char>(old ^ (1 + rng() % 255)));
    {
      auto v = image.TryOpen(nullptr, VolumeOptions{.read_only = true, .commit_interval_s = 0});
      if (v.ok()) {
        ++opened;
        (void)testing::ReadTree(**v);
      } else {
        ++refused;
        EXPECT_FALSE(v.status().ToString().empty());
      }
    }
    (void)CheckImage(image.path());
    fd.WriteByte(at, old);
  }
  // One damaged copy of anything is survivable (the other superblock, the
  // other checkpoint, a log cut short), so most of these still open.
  EXPECT_GT(opened, 0);
  std::cout << "corruption: " << opened << " opened, " << refused << " refused\n";
  // Both checkpoint slots damaged: refused, naming the checkpoints.
  const auto c0 = fd.ReadByte(sb.ckpt_offset[0] + 8), c1 = fd.ReadByte(sb.ckpt_offset[1] + 8);
  fd.WriteByte(sb.ckpt_offset[0] + 8, static_cast<char>(c0 ^ 0x5a));
  fd.WriteByte(sb.ckpt_offset[1] + 8, static_cast<char>(c1 ^ 0x5a));
  {
    auto no_ckpt = image.TryOpen();
    ASSERT_FALSE(no_ckpt.ok());
    EXPECT_NE(no_ckpt.status().ToString().find("no valid checkpoint"), std::string::npos)
        << no_ckpt.status().ToString();
  }
  fd.WriteByte(sb.ckpt_offset[0] + 8, c0);
  fd.WriteByte(sb.ckpt_offset[1] + 8, c1);
  // Both superblocks destroyed: refused, naming them.
  const auto p0 = fd.ReadByte(0), p1 = fd.ReadByte(sb.backup_offset());
  fd.WriteByte(0, static_cast<char>(p0 ^ 0xff));
  fd.WriteByte(sb.backup_offset(), static_cast<char>(p1 ^ 0xff));
  auto gone = image.TryOpen();
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().ToString().find("primary superblock"), std::string::npos);
  EXPECT_NE(gone.status().ToString().find("backup superblock"), std::string::npos);
  // One copy is enough to open, and the damage is reported.
  fd.WriteByte(sb.backup_offset(), p1);
  auto one = image.TryOpen();
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_FALSE((*one)->notes().empty());
  EXPECT_NE((*one)->notes()[0].find("primary superblock"), std::string::npos);
}

}  // namespace
}  // namespace nvswapfs::fs

namespace nvswapfs::fs {
namespace {

TEST(DeviceSizeTest, AGrownImageStillOpensAndATruncatedOneIsRefused) {
  TestImage image;
  {
    auto v = image.Open();
    ASSERT_NE(v, nullptr);
    auto f = v->Create(kRootIno, "kept", kFile);
    ASSERT_TRUE(v->Write(f->ino, 0, Bytes("still here")).ok());
    ASSERT_TRUE(v->Close().ok());
  }
  ASSERT_EQ(::truncate(image.path().c_str(), (64 << 20) + (16 << 20)), 0);
  {
    auto v = image.TryOpen();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(ReadAll(**v, Resolve(**v, "/kept")), "still here");
    bool noted = false;
    for (const std::string& n : (*v)->notes())
      noted |= n.find("larger than the volume") != std::string::npos;
    EXPECT_TRUE(noted);
  }
  testing::ExpectFsckClean(image.path());
  ASSERT_EQ(::truncate(image.path().c_str(), 48 << 20), 0);
  auto v = image.TryOpen();
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().ToString().find("truncated"), std::string::npos) << v.status().ToString();
}

// Closing a written file commits it without flushing the device first: the
// commit is unordered, tagged with the boot. It must survive the daemon being
// killed, and must not survive a power cut unless a durable commit (fsync,
// the background commit) followed it, since the device may have kept the
// commit and lost the data it points to.
class CloseCommitTest : public ::testing::Test {
 protected:
  // The device's bytes as they are now: what a killed process leaves.
  std::vector<std::byte> Snapshot() {
    return aio::testing::ReadPlain(image_.path(), 0, image_.options().size);
  }
  void Restore(const std::vector<std::byte>& bytes) {
    aio::testing::WritePlain(image_.path(), 0, bytes.data(), bytes.size());
  }
  // Writes `name` and closes it (Persist), returning the device as a kill
  // at that moment would leave it; the volume is then closed normally.
  std::vector<std::byte> WriteCloseAndKill(const std::string& name, const std::string& content,
                                           bool sync_after = false) {
    auto volume = image_.Open();
    EXPECT_NE(volume, nullptr);
    if (volume == nullptr) return {};
    auto a = volume->Create(kRootIno, name, kFile);
    EXPECT_TRUE(a.ok());
    EXPECT_TRUE(volume->Write(a->ino, 0, Bytes(content)).ok());
    EXPECT_TRUE(volume->Persist(a->ino).ok());
    if (sync_after) {
      EXPECT_TRUE(volume->Sync().ok());
    }
    std::vector<std::byte> at_kill = Snapshot();
    EXPECT_TRUE(volume->Close().ok());
    return at_kill;
  }
  VolumeOptions Boot(uint64_t tag) { return {.commit_interval_s = 0, .boot_tag = tag}; }
  void ExpectFsckClean() { testing::ExpectFsckClean(image_.path()); }
  static bool Noted(Volume& v, const std::string& what) {
    for (const std::string& n : v.notes())
      if (n.find(what) != std::string::npos) return true;
    return false;
  }

  const uint64_t other_boot_ = BootTag() + 1;
  const std::string tensor_ = std::string(3 << 20, 't') + "end";
  TestImage image_;
};

TEST_F(CloseCommitTest, ThisMachineHasABootTag) {
  EXPECT_NE(BootTag(), 0u) << "/proc/sys/kernel/random/boot_id unreadable: closes would flush";
}

TEST_F(CloseCommitTest, CloseWritesTheCommitWithoutAFlush) {
  aio::FaultInjector faults;
  faults.TrackUnflushedWrites(true);
  auto volume = image_.Open(&faults);
  ASSERT_NE(volume, nullptr);
  ASSERT_TRUE(volume->Sync().ok());
  ASSERT_EQ(faults.unflushed_writes(), 0u);
  auto a = volume->Create(kRootIno, "t", kFile);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(volume->Write(a->ino, 0, Bytes(tensor_)).ok());
  ASSERT_TRUE(volume->Persist(a->ino).ok());
  // The data and the commit are written, and nothing has flushed them.
  EXPECT_GT(faults.unflushed_writes(), 1u);
  ASSERT_TRUE(volume->Fsync(a->ino).ok());
  EXPECT_EQ(faults.unflushed_writes(), 0u);
}

TEST_F(CloseCommitTest, KilledAfterCloseKeepsTheFile) {
  Restore(WriteCloseAndKill("t", tensor_));
  auto volume = image_.Open();  // the same boot
  ASSERT_NE(volume, nullptr);
  const uint64_t f = Resolve(*volume, "/t");
  ASSERT_NE(f, 0u);
  EXPECT_EQ(ReadAll(*volume, f), tensor_);
  ASSERT_TRUE(volume->Close().ok());
  volume.reset();
  ExpectFsckClean();
}

TEST_F(CloseCommitTest, RestartAfterCloseWithoutAFlushDropsTheCommit) {
  uint64_t free_with_synced = 0;
  {
    auto volume = image_.Open();
    ASSERT_NE(volume, nullptr);
    auto a = volume->Create(kRootIno, "synced", kFile);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(volume->Write(a->ino, 0, Bytes("kept")).ok());
    ASSERT_TRUE(volume->Fsync(a->ino).ok());
    free_with_synced = volume->StatFs().free_blocks;
    ASSERT_TRUE(volume->Close().ok());
  }
  Restore(WriteCloseAndKill("t", tensor_));
  // Unmounted cleanly before the machine went down, nothing would be lost.
  {
    auto volume = image_.Open(nullptr, Boot(other_boot_));
    ASSERT_NE(volume, nullptr);
    EXPECT_EQ(Resolve(*volume, "/t"), 0u);
    const uint64_t kept = Resolve(*volume, "/synced");
    ASSERT_NE(kept, 0u);
    EXPECT_EQ(ReadAll(*volume, kept), "kept");
    EXPECT_TRUE(Noted(*volume, "1 log commit(s) made at close"))
        << ::testing::PrintToString(volume->notes());
    // The space the dropped commit pointed to is free again, and what is
    // committed next takes the dropped commit's place in the log.
    EXPECT_EQ(volume->StatFs().free_blocks, free_with_synced);
    auto b = volume->Create(kRootIno, "after", kFile);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(volume->Write(b->ino, 0, Bytes("next")).ok());
    ASSERT_TRUE(volume->Fsync(b->ino).ok());
    const std::vector<std::byte> at_kill = Snapshot();
    ASSERT_TRUE(volume->Close().ok());
    Restore(at_kill);
  }
  auto volume = image_.Open(nullptr, Boot(other_boot_));
  ASSERT_NE(volume, nullptr);
  EXPECT_EQ(Resolve(*volume, "/t"), 0u);
  ASSERT_NE(Resolve(*volume, "/after"), 0u);
  EXPECT_EQ(ReadAll(*volume, Resolve(*volume, "/after")), "next");
  EXPECT_FALSE(Noted(*volume, "made at close"));
  ASSERT_TRUE(volume->Close().ok());
  volume.reset();
  ExpectFsckClean();
}

TEST_F(CloseCommitTest, ADurableCommitAfterTheCloseKeepsItThroughARestart) {
  // Nothing else changed before the Sync: it seals with an empty commit.
  Restore(WriteCloseAndKill("t", tensor_, /*sync_after=*/true));
  auto volume = image_.Open(nullptr, Boot(other_boot_));
  ASSERT_NE(volume, nullptr);
  const uint64_t f = Resolve(*volume, "/t");
  ASSERT_NE(f, 0u);
  EXPECT_EQ(ReadAll(*volume, f), tensor_);
  EXPECT_FALSE(Noted(*volume, "made at close"));
  ASSERT_TRUE(volume->Close().ok());
  volume.reset();
  ExpectFsckClean();
}

TEST_F(CloseCommitTest, TheBackgroundCommitSealsAClose) {
  std::vector<std::byte> at_kill;
  {
    auto volume = image_.Open(nullptr, VolumeOptions{.commit_interval_s = 1});
    ASSERT_NE(volume, nullptr);
    auto a = volume->Create(kRootIno, "t", kFile);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(volume->Write(a->ino, 0, Bytes(tensor_)).ok());
    ASSERT_TRUE(volume->Persist(a->ino).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    at_kill = Snapshot();
    ASSERT_TRUE(volume->Close().ok());
  }
  Restore(at_kill);
  auto volume = image_.Open(nullptr, Boot(other_boot_));
  ASSERT_NE(volume, nullptr);
  const uint64_t f = Resolve(*volume, "/t");
  ASSERT_NE(f, 0u);
  EXPECT_EQ(ReadAll(*volume, f), tensor_);
}

}  // namespace
}  // namespace nvswapfs::fs
