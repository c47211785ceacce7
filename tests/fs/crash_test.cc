// The crash loop: random operations with random fsyncs on a volume over the
// fault-injecting device, a power cut at a random moment, and a fresh open.
// What the last fsync made durable must come back exactly: the same tree,
// byte-identical files, the same xattrs, and a clean fsck; nothing that was
// not fsync'd may leak into it.
//
// NVSWAPFS_CRASH_SEEDS sets the number of seeds (default 1000);
// NVSWAPFS_CRASH_SEED replays one.
#include <gtest/gtest.h>
#include <linux/falloc.h>

#include <cstdlib>
#include <random>

#include "nvswapfs/aio/aio_engine.h"
#include "volume_test_util.h"

namespace nvswapfs::fs {
namespace {

using testing::BaseName;
using testing::Expected;
using testing::ParentOf;
using testing::Resolve;
using testing::TestImage;
using testing::Tree;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s));
}

// Drives random operations on a volume and on a model of it side by side.
class Workload {
 public:
  Workload(Volume& volume, uint64_t seed) : v_(volume), rng_(seed) {}

  // One random operation; returns false if the volume disagreed with the
  // model (the failure is recorded with the test).
  void Step() {
    const int op = static_cast<int>(rng_() % 100);
    if (op < 12)
      Create();
    else if (op < 40)
      Write();
    else if (op < 48)
      Truncate();
    else if (op < 55)
      Unlink();
    else if (op < 63)
      Rename();
    else if (op < 68)
      Mkdir();
    else if (op < 74)
      Fallocate();
    else if (op < 78)
      SetXattr();
    else if (op < 90)
      Sync();
    else
      Read();
  }

  const Tree& model() const { return model_; }
  const Tree& durable() const { return durable_; }

 private:
  std::vector<std::string> Paths(bool dirs) const {
    std::vector<std::string> out;
    for (const auto& [p, x] : model_) {
      if (x.dir == dirs) out.push_back(p);
    }
    return out;
  }
  std::string AnyDir() {
    auto dirs = Paths(true);
    dirs.push_back("");
    return dirs[rng_() % dirs.size()];
  }
  std::string AnyFile() {
    auto files = Paths(false);
    return files.empty() ? "" : files[rng_() % files.size()];
  }
  std::string NewName() { return "n" + std::to_string(rng_() % 40); }

  void Create() {
    const std::string path = AnyDir() + "/" + NewName();
    if (model_.contains(path)) return;
    auto a = v_.Create(Resolve(v_, ParentOf(path)), BaseName(path), NewInode{0644, 0, 0});
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    model_[path] = Expected{};
  }
  void Mkdir() {
    const std::string path = AnyDir() + "/" + NewName();
    if (model_.contains(path)) return;
    auto a = v_.Mkdir(Resolve(v_, ParentOf(path)), BaseName(path), NewInode{0755, 0, 0});
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    model_[path] = Expected{.dir = true};
  }
  void Write() {
    const std::string path = AnyFile();
    if (path.empty()) return;
    const uint64_t off = rng_() % (3 << 20);
    const size_t len = 1 + rng_() % (rng_() % 4 == 0 ? (1 << 20) : 20000);
    std::string data(len, '\0');
    const char fill = static_cast<char>('a' + rng_() % 26);
    for (size_t i = 0; i < len; ++i) data[i] = static_cast<char>(fill + (i % 7));
    // Half the writes are write-behind: a crash must find them either whole
    // or (when not yet fsync'd) absent, exactly like the others.
    const WriteMode mode = rng_() % 2 == 0 ? WriteMode::kBehind : WriteMode::kThrough;
    auto n = v_.Write(Resolve(v_, path), off, Bytes(data), mode);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    std::string& m = model_[path].data;
    if (m.size() < off + len) m.resize(off + len, '\0');
    m.replace(off, len, data);
  }
  void Truncate() {
    const std::string path = AnyFile();
    if (path.empty()) return;
    const uint64_t size = rng_() % (4 << 20);
    ASSERT_TRUE(v_.SetAttr(Resolve(v_, path), SetAttrRequest{.size = size}).ok());
    model_[path].data.resize(size, '\0');
  }
  void Fallocate() {
    const std::string path = AnyFile();
    if (path.empty()) return;
    const uint64_t off = rng_() % (3 << 20);
    const uint64_t len = 1 + rng_() % (2 << 20);
    std::string& m = model_[path].data;
    if (rng_() % 2 == 0) {
      ASSERT_TRUE(
          v_.Fallocate(Resolve(v_, path), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len)
              .ok());
      if (off < m.size())
        std::fill_n(m.begin() + static_cast<long>(off), std::min<uint64_t>(len, m.size() - off),
                    '\0');
    } else {
      ASSERT_TRUE(v_.Fallocate(Resolve(v_, path), 0, off, len).ok());
      if (m.size() < off + len) m.resize(off + len, '\0');
    }
  }
  void Unlink() {
    const std::string path = AnyFile();
    if (path.empty()) return;
    ASSERT_TRUE(v_.Unlink(Resolve(v_, ParentOf(path)), BaseName(path)).ok());
    model_.erase(path);
  }
  void Rename() {
    const std::string from = AnyFile();
    if (from.empty()) return;
    const std::string to = AnyDir() + "/" + NewName();
    if (model_.contains(to) && model_[to].dir) return;
    const bool exchange = model_.contains(to) && rng_() % 3 == 0;
    Status s = v_.Rename(Resolve(v_, ParentOf(from)), BaseName(from), Resolve(v_, ParentOf(to)),
                         BaseName(to), exchange ? RenameMode::kExchange : RenameMode::kReplace);
    ASSERT_TRUE(s.ok()) << s.ToString();
    if (from == to) return;
    if (exchange) {
      std::swap(model_[from], model_[to]);
    } else {
      model_[to] = model_[from];
      model_.erase(from);
    }
  }
  void SetXattr() {
    auto paths = Paths(false);
    if (paths.empty()) return;
    const std::string path = paths[rng_() % paths.size()];
    const std::string name = "user.k" + std::to_string(rng_() % 3);
    const std::string value = "v" + std::to_string(rng_());
    ASSERT_TRUE(v_.SetXattr(Resolve(v_, path), name, value, 0).ok());
    model_[path].xattrs[name] = value;
  }
  void Sync() {
    // fsync of a file commits everything, so the whole model is durable.
    const std::string path = AnyFile();
    Status s = path.empty() ? v_.Sync() : v_.Fsync(Resolve(v_, path));
    ASSERT_TRUE(s.ok()) << s.ToString();
    durable_ = model_;
  }
  void Read() {
    const std::string path = AnyFile();
    if (path.empty()) return;
    const std::string& m = model_[path].data;
    const uint64_t off = m.empty() ? 0 : rng_() % m.size();
    std::string got(std::min<size_t>(m.size() - off, 50000), '\0');
    auto n = v_.Read(Resolve(v_, path), off, std::as_writable_bytes(std::span(got)));
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(got, m.substr(off, got.size())) << path;
  }

  Volume& v_;
  std::mt19937_64 rng_;
  Tree model_;
  Tree durable_;
};

void CrashAndCheck(uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed) +
               " (replay: NVSWAPFS_CRASH_SEED=" + std::to_string(seed) + ")");
  TestImage image(testing::ImageOptions{.size = 96 << 20});
  aio::FaultInjector faults(seed);
  faults.TrackUnflushedWrites(true);
  Tree durable;
  {
    auto volume = image.Open(&faults);
    ASSERT_NE(volume, nullptr);
    Workload w(*volume, seed);
    std::mt19937_64 rng(seed ^ 0x5eed);
    const int steps = 20 + static_cast<int>(rng() % 60);
    for (int i = 0; i < steps; ++i) {
      w.Step();
      if (::testing::Test::HasFatalFailure()) return;
    }
    durable = w.durable();
    ASSERT_TRUE(faults.CrashNow().ok());
    // The volume goes down with the device; nothing more reaches it.
  }
  auto volume = image.Open();
  ASSERT_NE(volume, nullptr);
  const Tree got = testing::ReadTree(*volume);
  ASSERT_EQ(testing::DiffTrees(durable, got), "");
  ASSERT_TRUE(volume->Close().ok());
  volume.reset();
  // And fsck finds nothing to say about the recovered volume.
  testing::ExpectFsckClean(image.path());
}

TEST(CrashTest, FsyncedStateSurvivesAPowerCutAtAnyMoment) {
  if (const char* one = std::getenv("NVSWAPFS_CRASH_SEED"); one != nullptr) {
    CrashAndCheck(std::strtoull(one, nullptr, 10));
    return;
  }
  const char* n = std::getenv("NVSWAPFS_CRASH_SEEDS");
  const uint64_t seeds = n != nullptr ? std::strtoull(n, nullptr, 10) : 1000;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    CrashAndCheck(seed);
    if (HasFatalFailure()) return;
  }
  std::cout << "crash loop: " << seeds << " seeds, no fsync'd byte lost\n";
}

}  // namespace
}  // namespace nvswapfs::fs
