// The crash loops: random operations with random fsyncs and closes on a
// volume over the fault-injecting device, a power cut, and a fresh open in
// another boot (so a close's commit, written without a flush, counts only if
// a flushed commit followed it).
//
// Between operations: the cut comes when the workload stops. What the last
// fsync made durable must come back exactly: the same tree, byte-identical
// files, the same xattrs, and a clean fsck; nothing that was not fsync'd may
// leak into it.
//
// Inside an operation: the device dies at a random write or flush (of file
// data, of a log commit, of a checkpoint), the workload stops at the first
// operation that fails, and the volume must come back as it was at the last
// fsync or at any later point between two operations; a file's bytes may
// also hold what a later write put in place (a flush can make data durable
// before the commit that would have made it visible; the device may keep
// part of the write the cut failed), and nothing else. In half the seeds
// the device keeps a random half of the 4 KiB sectors the cut finds
// unflushed, in any order (tearing writes), so a missing flush between two
// writes that must reach the media in order shows. The log is small in two
// seeds of three, so that cuts fall inside checkpoints.
//
// With two writers: the same, with two workloads at once on two threads,
// each in a directory of its own, so that changes go on while a commit or a
// checkpoint is written and settled; in half the seeds a third thread does
// nothing but fsync, so that commits are often another thread's, and a
// workload's fsync often waits for one being written.
//
// NVSWAPFS_CRASH_SEEDS sets the number of seeds of each (default 1000);
// NVSWAPFS_CRASH_SEED replays one.
#include <gtest/gtest.h>
#include <linux/falloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <thread>
#include <vector>

#include "nvswapfs/aio/aio_engine.h"
#include "nvswapfs/units.h"
#include "volume_test_util.h"

namespace nvswapfs::fs {
namespace {

using testing::BaseName;
using testing::ParentOf;
using testing::Resolve;
using testing::TestImage;
using testing::Tree;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s));
}

// A path of the model: a directory, or a file with its identity (which
// follows it through renames) and size.
struct Node {
  bool dir = false;
  uint64_t id = 0;
  uint64_t size = 0;
  std::map<std::string, std::string> xattrs = {};
};
using Shape = std::map<std::string, Node>;

// A change to a file's bytes at some step: `bytes` put at `offset`, or, with
// `new_size`, the size set (and `bytes` the zeros between old and new size).
struct Change {
  uint64_t step = 0;
  uint64_t offset = 0;
  std::string bytes = {};
  std::optional<uint64_t> new_size = std::nullopt;

  void ApplyTo(std::string* content) const {
    if (new_size.has_value()) {
      content->resize(*new_size, '\0');
      return;
    }
    if (content->size() < offset + bytes.size()) content->resize(offset + bytes.size(), '\0');
    content->replace(offset, bytes.size(), bytes);
  }
  bool Put(uint64_t at, char c) const {
    return at >= offset && at - offset < bytes.size() && bytes[at - offset] == c;
  }
};

// Drives random operations on a volume and on a model of it side by side.
class Workload {
 public:
  // `faults`: the device the volume runs on; once it has crashed, an
  // operation may fail with EIO (or EROFS), which stops the workload.
  // `root`: the directory the workload keeps to ("" for the whole volume),
  // so that workloads on other threads can share the volume.
  Workload(Volume& volume, uint64_t seed, const aio::FaultInjector& faults, std::string root = "")
      : v_(volume), faults_(faults), rng_(seed), root_(std::move(root)) {
    states_.emplace_back(0, shape_);
  }

  // One random operation; false once one has failed (after a power cut) or
  // disagreed with the model (the failure is recorded with the test).
  bool Step() {
    ++step_;
    const int op = static_cast<int>(rng_() % 100);
    bool ok;
    if (op < 12)
      ok = Create();
    else if (op < 40)
      ok = Write();
    else if (op < 48)
      ok = Truncate();
    else if (op < 55)
      ok = Unlink();
    else if (op < 63)
      ok = Rename();
    else if (op < 68)
      ok = Mkdir();
    else if (op < 74)
      ok = Fallocate();
    else if (op < 78)
      ok = SetXattr();
    else if (op < 90)
      ok = Sync();
    else if (op < 94)
      ok = Close();
    else
      ok = Read();
    if (!ok) return false;
    // A sync starts the states over; a read changes nothing.
    if (op < 78 || (op >= 90 && op < 94)) states_.emplace_back(step_, shape_);
    return true;
  }

  uint64_t step() const { return step_; }

  // Why `got`, the tree read back after the cut, is not what the volume may
  // hold ("" when it is). `inside`: the cut came inside an operation, so any
  // state since the last sync will do, with bytes written in place after it;
  // otherwise exactly the state of the last sync.
  std::string Mismatch(const Tree& volume, bool inside, size_t* matched = nullptr) const {
    Tree got;
    for (const auto& [path, x] : volume) {
      if (path.starts_with(root_ + "/")) got.emplace(path, x);
    }
    const size_t candidates = inside ? states_.size() : 1;
    std::string why;
    for (size_t i = 0; i < candidates; ++i) {
      std::string w = MismatchWith(states_[i].first, states_[i].second, got, inside);
      if (w.empty()) {
        if (matched != nullptr) *matched = i;
        return "";
      }
      if (i == 0) why = "against the last sync: " + w;
      if (i > 0 && i + 1 == candidates) {
        why += "; against the last of the " + std::to_string(i) + " states after it: " + w;
      }
    }
    return why;
  }

 private:
  // What the file `id` held after step `step` (a step since the last sync),
  // cut or extended to `size`.
  std::string ContentAt(uint64_t id, uint64_t step, uint64_t size) const {
    auto base = synced_.find(id);
    std::string content = base != synced_.end() ? base->second : std::string();
    if (auto it = changes_.find(id); it != changes_.end()) {
      for (const Change& c : it->second) {
        if (c.step <= step) c.ApplyTo(&content);
      }
    }
    content.resize(size, '\0');
    return content;
  }

  bool PutAfter(uint64_t id, uint64_t step, uint64_t at, char c) const {
    auto it = changes_.find(id);
    if (it == changes_.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(),
                       [&](const Change& ch) { return ch.step > step && ch.Put(at, c); });
  }

  // The state after `step` with each file's bytes in full, against `got`;
  // with `later_bytes`, a byte a later change put in place may stand.
  std::string MismatchWith(uint64_t step, const Shape& shape, const Tree& got,
                           bool later_bytes) const {
    Tree want;
    for (const auto& [path, node] : shape) {
      testing::Expected& x = want[path];
      x.dir = node.dir;
      x.xattrs = node.xattrs;
      if (!node.dir) x.data = ContentAt(node.id, step, node.size);
    }
    if (!later_bytes) return testing::DiffTrees(want, got);
    return testing::DiffTrees(want, got, [&](const std::string& path, uint64_t at, char c) {
      return PutAfter(shape.at(path).id, step, at, c);
    });
  }

  // True for success; false (and the workload stops) for a failure the
  // power cut explains, or, recorded with the test, any other.
  bool Ok(const Status& s, std::string_view what) {
    if (s.ok()) return true;
    if (!faults_.crashed() || (s.code() != EIO && s.code() != EROFS)) {
      ADD_FAILURE() << what << " at step " << step_ << ": " << s.ToString();
    }
    return false;
  }

  std::vector<std::string> Paths(bool dirs) const {
    std::vector<std::string> out;
    for (const auto& [p, x] : shape_) {
      if (x.dir == dirs) out.push_back(p);
    }
    return out;
  }
  std::string AnyDir() {
    auto dirs = Paths(true);
    dirs.push_back(root_);
    return dirs[rng_() % dirs.size()];
  }
  std::string AnyFile() {
    auto files = Paths(false);
    return files.empty() ? "" : files[rng_() % files.size()];
  }
  std::string NewName() { return "n" + std::to_string(rng_() % 40); }

  // A change to the file at `path`, made (its data and size follow), or
  // only tried by an operation the power cut failed: bytes it was putting
  // in place may have reached the media all the same.
  void Record(const std::string& path, Change c, bool made = true) {
    Node& node = shape_.at(path);
    c.step = step_;
    if (made) {
      std::string& content = data_[node.id];
      c.ApplyTo(&content);
      node.size = content.size();
    }
    changes_[node.id].push_back(std::move(c));
  }
  Change Resizing(const std::string& path, uint64_t size) const {
    const uint64_t old = shape_.at(path).size;
    return {.offset = std::min(old, size),
            .bytes = std::string(std::max(old, size) - std::min(old, size), '\0'),
            .new_size = size};
  }
  // The file at `path` leaves the namespace (unlinked or replaced).
  void Drop(const std::string& path) {
    data_.erase(shape_.at(path).id);
    shape_.erase(path);
  }

  bool Create() {
    const std::string path = AnyDir() + "/" + NewName();
    if (shape_.contains(path)) return true;
    auto a = v_.Create(Resolve(v_, ParentOf(path)), BaseName(path), NewInode{0644, 0, 0});
    if (!Ok(a.status(), "create " + path)) return false;
    shape_[path] = Node{.id = next_id_++};
    return true;
  }
  bool Mkdir() {
    const std::string path = AnyDir() + "/" + NewName();
    if (shape_.contains(path)) return true;
    auto a = v_.Mkdir(Resolve(v_, ParentOf(path)), BaseName(path), NewInode{0755, 0, 0});
    if (!Ok(a.status(), "mkdir " + path)) return false;
    shape_[path] = Node{.dir = true};
    return true;
  }
  bool Write() {
    const std::string path = AnyFile();
    if (path.empty()) return true;
    const uint64_t off = rng_() % (3 << 20);
    const size_t most = rng_() % 4 == 0 ? (1 << 20) : 20000;
    const size_t len = 1 + rng_() % most;
    std::string data(len, '\0');
    const char fill = static_cast<char>('a' + rng_() % 26);
    for (size_t i = 0; i < len; ++i) data[i] = static_cast<char>(fill + (i % 7));
    // Half the writes are write-behind: a crash must find them either whole
    // or (when not yet fsync'd) absent, exactly like the others.
    const WriteMode mode = rng_() % 2 == 0 ? WriteMode::kBehind : WriteMode::kThrough;
    auto n = v_.Write(Resolve(v_, path), off, Bytes(data), mode);
    const bool made = Ok(n.status(), "write " + path);
    Record(path, {.offset = off, .bytes = std::move(data)}, made);
    return made;
  }
  bool Truncate() {
    const std::string path = AnyFile();
    if (path.empty()) return true;
    const uint64_t size = rng_() % (4 << 20);
    const bool made = Ok(v_.SetAttr(Resolve(v_, path), SetAttrRequest{.size = size}).status(),
                         "truncate " + path);
    Record(path, Resizing(path, size), made);
    return made;
  }
  bool Fallocate() {
    const std::string path = AnyFile();
    if (path.empty()) return true;
    const uint64_t off = rng_() % (3 << 20);
    const uint64_t len = 1 + rng_() % (2 << 20);
    const uint64_t size = shape_.at(path).size;
    if (rng_() % 2 == 0) {
      const bool made =
          Ok(v_.Fallocate(Resolve(v_, path), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len),
             "punch " + path);
      if (off < size) {
        Record(path, {.offset = off, .bytes = std::string(std::min(len, size - off), '\0')}, made);
      }
      return made;
    }
    if (!Ok(v_.Fallocate(Resolve(v_, path), 0, off, len), "fallocate " + path)) return false;
    if (size < off + len) Record(path, Resizing(path, off + len));
    return true;
  }
  bool Unlink() {
    const std::string path = AnyFile();
    if (path.empty()) return true;
    if (!Ok(v_.Unlink(Resolve(v_, ParentOf(path)), BaseName(path)), "unlink " + path)) return false;
    Drop(path);
    return true;
  }
  bool Rename() {
    const std::string from = AnyFile();
    if (from.empty()) return true;
    const std::string to = AnyDir() + "/" + NewName();
    if (shape_.contains(to) && shape_[to].dir) return true;
    const bool exchange = shape_.contains(to) && rng_() % 3 == 0;
    Status s = v_.Rename(Resolve(v_, ParentOf(from)), BaseName(from), Resolve(v_, ParentOf(to)),
                         BaseName(to), exchange ? RenameMode::kExchange : RenameMode::kReplace);
    if (!Ok(s, "rename " + from + " to " + to)) return false;
    if (from == to) return true;
    if (exchange) {
      std::swap(shape_[from], shape_[to]);
    } else {
      if (shape_.contains(to)) Drop(to);
      shape_[to] = shape_[from];
      shape_.erase(from);
    }
    return true;
  }
  bool SetXattr() {
    auto paths = Paths(false);
    if (paths.empty()) return true;
    const std::string path = paths[rng_() % paths.size()];
    const std::string name = "user.k" + std::to_string(rng_() % 3);
    const std::string value = "v" + std::to_string(rng_());
    if (!Ok(v_.SetXattr(Resolve(v_, path), name, value, 0), "setxattr " + path)) return false;
    shape_[path].xattrs[name] = value;
    return true;
  }
  bool Sync() {
    // fsync of a file commits everything, so the whole model is durable.
    const std::string path = AnyFile();
    Status s = path.empty() ? v_.Sync() : v_.Fsync(Resolve(v_, path));
    if (!Ok(s, "fsync " + path)) return false;
    for (const auto& [id, _] : changes_) {
      if (auto it = data_.find(id); it != data_.end()) synced_[id] = it->second;
    }
    changes_.clear();
    std::erase_if(synced_, [&](const auto& entry) { return !data_.contains(entry.first); });
    states_.clear();
    states_.emplace_back(step_, shape_);
    return true;
  }
  bool Close() {
    // A close commits without a device flush: after a power cut its commit
    // counts only if a flushed one came after it (and then that one is the
    // last sync), so the state it leaves is one of those after the sync.
    const std::string path = AnyFile();
    if (path.empty()) return true;
    return Ok(v_.Persist(Resolve(v_, path)), "close " + path);
  }
  bool Read() {
    const std::string path = AnyFile();
    if (path.empty()) return true;
    const std::string& m = data_[shape_.at(path).id];
    const uint64_t off = m.empty() ? 0 : rng_() % m.size();
    std::string got(std::min<size_t>(m.size() - off, 50000), '\0');
    auto n = v_.Read(Resolve(v_, path), off, std::as_writable_bytes(std::span(got)));
    if (!Ok(n.status(), "read " + path)) return false;
    EXPECT_EQ(got, m.substr(off, got.size())) << path << " at step " << step_;
    return got == m.substr(off, got.size());
  }

  Volume& v_;
  const aio::FaultInjector& faults_;
  std::mt19937_64 rng_;
  const std::string root_;
  uint64_t step_ = 0;
  uint64_t next_id_ = 1;
  Shape shape_;
  std::map<uint64_t, std::string> data_;  // each file's bytes now, by identity
  // Since the last sync: each file's bytes then, what changed them after,
  // and the namespace after the sync and after each operation since.
  std::map<uint64_t, std::string> synced_;
  std::map<uint64_t, std::vector<Change>> changes_;
  std::vector<std::pair<uint64_t, Shape>> states_;
};

// Sits between the engine and the fault injector, notes what the power cut
// interrupted (a write to which part of the device, or a flush after one),
// and can aim the cut at a checkpoint.
class CutWitness final : public aio::testing::Forwarding {
 public:
  CutWitness(aio::FaultInjector& device, const Superblock& layout)
      : Forwarding(device), device_(device), layout_(layout) {}

  // The n-th write to a checkpoint slot from now on cuts the power, or with
  // `after`, the flush that follows it (which would make it durable).
  void CutAtCheckpointWrite(uint64_t n, bool after) {
    std::lock_guard lock(mu_);
    checkpoint_writes_left_ = n;
    cut_after_ = after;
  }

  std::string cut() const {
    std::lock_guard lock(mu_);
    return cut_;
  }

  // Every flush and every write to the log or a checkpoint slot takes
  // `delay` longer, as on a device slower than memory, so that other
  // threads' changes go on while a commit is written.
  void SlowMetadata(std::chrono::microseconds delay) { delay_ = delay; }

  int Submit(io_context_t ctx, long n, struct iocb** iocbs) override {
    std::unique_lock lock(mu_);
    uint64_t writes = 0;
    bool cut_after = false;
    for (long i = 0; i < n; ++i) {
      if (iocbs[i]->aio_lio_opcode != IO_CMD_PWRITE) continue;
      ++writes;
      cut_after |= Aim(iocbs[i]->u.c.offset, writes);
    }
    if (last_write_ == "log" || last_write_ == "checkpoint") Delay(lock);
    const int rc = Witness(device_.Submit(ctx, n, iocbs), "write to " + last_write_);
    if (cut_after) device_.CrashAtNth(aio::FaultOp::kFlush, 1);
    return rc;
  }
  ssize_t Pwrite(int fd, const void* buf, size_t count, off_t offset) override {
    std::unique_lock lock(mu_);
    const bool cut_after = Aim(static_cast<uint64_t>(offset), 1);
    if (last_write_ == "log" || last_write_ == "checkpoint") Delay(lock);
    const ssize_t rc = Witness(device_.Pwrite(fd, buf, count, offset), "write to " + last_write_);
    if (cut_after) device_.CrashAtNth(aio::FaultOp::kFlush, 1);
    return rc;
  }
  int Flush(int fd) override {
    std::unique_lock lock(mu_);
    Delay(lock);
    return Witness(device_.Flush(fd), "flush after " + last_write_);
  }

 private:
  std::string Part(uint64_t offset) const {
    if (offset < layout_.ckpt_offset[0] || offset >= layout_.backup_offset()) return "superblock";
    if (offset < layout_.log_offset) return "checkpoint";
    if (offset < layout_.data_offset) return "log";
    return "data";
  }
  // Notes a write to `offset`, the `nth` write of the call passing it on;
  // true when the flush after it is to cut the power.
  bool Aim(uint64_t offset, uint64_t nth) {
    last_write_ = Part(offset);
    if (last_write_ != "checkpoint" || checkpoint_writes_left_ == 0) return false;
    if (--checkpoint_writes_left_ != 0) return false;
    if (cut_after_) return true;
    device_.CrashAtNth(aio::FaultOp::kWrite, nth);
    return false;
  }
  void Delay(std::unique_lock<std::mutex>& lock) {
    if (delay_.count() == 0) return;
    lock.unlock();
    std::this_thread::sleep_for(delay_);
    lock.lock();
  }
  template <typename T>
  T Witness(T rc, const std::string& what) {
    if (cut_.empty() && device_.crashed()) cut_ = what;
    return rc;
  }

  aio::FaultInjector& device_;
  const Superblock layout_;
  mutable std::mutex mu_;
  uint64_t checkpoint_writes_left_ = 0;
  bool cut_after_ = false;
  std::chrono::microseconds delay_{0};
  std::string last_write_ = "nothing";
  std::string cut_;
};

void CrashAndCheck(uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed) +
               " (replay: NVSWAPFS_CRASH_SEED=" + std::to_string(seed) + ")");
  TestImage image(testing::ImageOptions{.size = 96 << 20});
  aio::FaultInjector faults(seed);
  faults.TrackUnflushedWrites(true);
  std::string mismatch;
  {
    auto volume = image.Open(&faults);
    ASSERT_NE(volume, nullptr);
    Workload w(*volume, seed, faults);
    std::mt19937_64 rng(seed ^ 0x5eed);
    const int steps = 20 + static_cast<int>(rng() % 60);
    for (int i = 0; i < steps; ++i) {
      if (!w.Step()) return;
      // The count that keeps checkpoints inside their slot moved with the
      // step exactly as the namespace did.
      const Volume::MetadataCount count = volume->MetadataBytes();
      ASSERT_EQ(count.kept, count.recounted) << "after step " << i;
    }
    ASSERT_TRUE(faults.CrashNow().ok());
    // The volume goes down with the device; nothing more reaches it.
    volume.reset();
    auto reopened = image.OpenAfterPowerCut();
    ASSERT_NE(reopened, nullptr);
    mismatch = w.Mismatch(testing::ReadTree(*reopened), /*inside=*/false);
    ASSERT_TRUE(reopened->Close().ok());
  }
  ASSERT_EQ(mismatch, "");
  // And fsck finds nothing to say about the recovered volume.
  testing::ExpectFsckClean(image.path());
}

// What the cuts inside operations interrupted, over all seeds.
struct CutTally {
  std::map<std::string, int> cuts;  // "write to log": 12, "flush after checkpoint": 3...
  int later_state = 0;              // came back newer than the last sync
  int with_syncer = 0;              // seeds with a thread doing only fsyncs
};

// `writers`: 1, one workload on the whole volume; 2, two at once, each in
// a directory of its own on a thread of its own, so that one's changes go
// on while the other's commit or checkpoint is written (without the
// volume's lock) and is settled, and the device takes a little longer over
// the log, the checkpoints and flushes so that this happens often. Each
// directory must then come back as it was at its own workload's last fsync
// or at a later point between two of its operations, with nothing of the
// other's in it. With two, in half the seeds a third thread fsyncs (the
// volume) again and again while they work. A seed replays the workloads,
// not how their operations interleaved.
void CrashInsideAndCheck(uint64_t seed, int writers, CutTally* tally) {
  SCOPED_TRACE("seed " + std::to_string(seed) +
               " (replay: NVSWAPFS_CRASH_SEED=" + std::to_string(seed) + ")");
  std::mt19937_64 rng(seed ^ 0xc07);
  static constexpr uint64_t kLogSizes[] = {16 * kKiB, 64 * kKiB, 0};
  TestImage image(testing::ImageOptions{.size = static_cast<uint64_t>(64 + 96 * writers) << 20,
                                        .log_size = kLogSizes[seed % 3]});
  aio::FaultInjector device(seed);
  device.TrackUnflushedWrites(true);
  device.KeepUnflushedOneIn(seed / 3 % 2 == 0 ? 0 : 2);
  CutWitness witness(device, image.layout());
  const uint64_t steps = 20 + rng() % 180;
  // One seed in four aims at a checkpoint (the one closing writes, if the
  // workload writes none or too few); the others at a random moment during
  // the first workload.
  const bool at_checkpoint = seed % 4 == 3;
  const uint64_t cut_step = at_checkpoint ? steps : rng() % steps;
  if (at_checkpoint) {
    const uint64_t nth = 1 + rng() % 3;
    witness.CutAtCheckpointWrite(nth, /*after=*/rng() % 2 == 0);
  }
  // Drawn apart, so that the other draws stay as they were without it.
  const bool syncer = writers > 1 && std::mt19937_64(seed ^ 0x5c)() % 2 == 0;
  std::vector<std::string> mismatch(writers);
  std::vector<size_t> matched(writers);
  // With several writers, the root holds their directories and nothing else.
  std::vector<std::string> roots;
  std::string top_level;  // what is wrong there ("" when nothing)
  {
    auto volume = image.Open(&witness);
    ASSERT_NE(volume, nullptr);
    std::vector<std::unique_ptr<Workload>> w;
    if (writers == 1) {
      w.push_back(std::make_unique<Workload>(*volume, seed, device));
    } else {
      for (int i = 0; i < writers; ++i) {
        const std::string dir = "t" + std::to_string(i);
        ASSERT_TRUE(volume->Mkdir(kRootIno, dir, NewInode{0755, 0, 0}).ok());
        roots.push_back("/" + dir);
        w.push_back(std::make_unique<Workload>(*volume, seed + i, device, roots.back()));
      }
      ASSERT_TRUE(volume->Sync().ok());
      witness.SlowMetadata(std::chrono::microseconds(250 * (rng() % 4)));
    }
    std::vector<std::thread> others;
    for (int i = 1; i < writers; ++i) {
      others.emplace_back([&, i, steps = 20 + rng() % 180] {
        while (w[i]->step() < steps && w[i]->Step()) {
        }
      });
    }
    std::atomic<bool> workloads_done = false;
    std::thread syncing;
    if (syncer) {
      // Until the workloads stop, or the device does.
      syncing = std::thread([&] {
        while (!workloads_done && volume->Sync().ok())
          std::this_thread::sleep_for(std::chrono::microseconds(100));
      });
    }
    while (w[0]->step() < steps) {
      if (w[0]->step() == cut_step) {
        // One of the next few writes or flushes, whoever issues it.
        const aio::FaultOp op = rng() % 3 == 0 ? aio::FaultOp::kFlush : aio::FaultOp::kWrite;
        device.CrashAtNth(op, 1 + rng() % 3);
      }
      if (!w[0]->Step()) break;
      // The metadata count agrees with a recount whatever the cut broke off
      // (and, with two writers, whatever the other is doing).
      const Volume::MetadataCount count = volume->MetadataBytes();
      ASSERT_EQ(count.kept, count.recounted) << "after step " << w[0]->step();
    }
    for (std::thread& t : others) t.join();
    workloads_done = true;
    if (syncing.joinable()) syncing.join();
    if (::testing::Test::HasFailure()) return;
    // A cut that has not come yet comes at the first flush of closing (or,
    // aimed at a checkpoint, at closing's checkpoint if at all). What the
    // device loses of the unflushed writes is undone once the volume, and
    // whatever it had in flight, is gone.
    if (!device.crashed() && !at_checkpoint) device.CrashAtNth(aio::FaultOp::kFlush, 1);
    volume.reset();
    ASSERT_TRUE(device.CrashNow().ok());
    auto reopened = image.OpenAfterPowerCut();
    ASSERT_NE(reopened, nullptr);
    const Tree got = testing::ReadTree(*reopened);
    for (int i = 0; i < writers; ++i) {
      mismatch[i] = w[i]->Mismatch(got, /*inside=*/true, &matched[i]);
    }
    for (const auto& [path, x] : got) {
      const std::string top = path.substr(0, path.find('/', 1));
      if (!roots.empty() && std::find(roots.begin(), roots.end(), top) == roots.end()) {
        top_level = "unexpected " + path;
      }
    }
    for (const std::string& root : roots) {
      if (!got.contains(root) || !got.at(root).dir) top_level = "no directory " + root;
    }
    ASSERT_TRUE(reopened->Close().ok());
  }
  const std::string cut = witness.cut();
  ASSERT_EQ(top_level, "");
  for (int i = 0; i < writers; ++i) {
    ASSERT_EQ(mismatch[i], "") << (writers > 1 ? "in /t" + std::to_string(i) + "; " : "")
                               << "the cut: " << (cut.empty() ? "none, closed cleanly" : cut);
  }
  testing::ExpectFsckClean(image.path());
  ++tally->cuts[cut.empty() ? "none (closed cleanly)" : cut];
  if (syncer) ++tally->with_syncer;
  if (std::any_of(matched.begin(), matched.end(), [](size_t m) { return m > 0; })) {
    ++tally->later_state;
  }
}

uint64_t Seeds() {
  const char* n = std::getenv("NVSWAPFS_CRASH_SEEDS");
  return n != nullptr ? std::strtoull(n, nullptr, 10) : 1000;
}

std::optional<uint64_t> OneSeed() {
  const char* one = std::getenv("NVSWAPFS_CRASH_SEED");
  if (one == nullptr) return std::nullopt;
  return std::strtoull(one, nullptr, 10);
}

TEST(CrashTest, FsyncedStateSurvivesAPowerCutAtAnyMoment) {
  if (auto one = OneSeed(); one.has_value()) {
    CrashAndCheck(*one);
    return;
  }
  const uint64_t seeds = Seeds();
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    CrashAndCheck(seed);
    if (HasFailure()) return;
  }
  std::cout << "crash loop: " << seeds << " seeds, no fsync'd byte lost\n";
}

// Runs CrashInsideAndCheck over the seeds (or the one to replay) and says
// what the cuts interrupted.
void CrashInsideLoop(int writers, std::string_view name) {
  CutTally tally;
  if (auto one = OneSeed(); one.has_value()) {
    CrashInsideAndCheck(*one, writers, &tally);
    return;
  }
  const uint64_t seeds = Seeds();
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    CrashInsideAndCheck(seed, writers, &tally);
    if (::testing::Test::HasFailure()) return;
  }
  std::cout << name << ": " << seeds << " seeds, no fsync'd byte lost; " << tally.later_state
            << " came back newer than a last fsync;";
  if (tally.with_syncer > 0) std::cout << " " << tally.with_syncer << " with a thread syncing;";
  std::cout << " the cuts:";
  for (const auto& [what, count] : tally.cuts) std::cout << " " << what << ": " << count << ";";
  std::cout << "\n";
}

TEST(CrashTest, FsyncedStateSurvivesAPowerCutInsideAnOperation) {
  CrashInsideLoop(1, "crash loop inside operations");
}

TEST(CrashTest, FsyncedStateSurvivesAPowerCutWithTwoWritersAtWork) {
  CrashInsideLoop(2, "crash loop with two writers");
}

}  // namespace
}  // namespace nvswapfs::fs
