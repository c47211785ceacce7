#include "volume_test_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <tuple>

#include "nvswapfs/aio/aio_engine.h"
#include "nvswapfs/fs/fsck.h"
#include "nvswapfs/fs/store.h"
#include "nvswapfs/fs/superblock.h"
#include "nvswapfs/units.h"

namespace nvswapfs::fs::testing {

TestImage::TestImage(const ImageOptions& options) : options_(options) {
  if (options.in_memory && ::access("/dev/shm", W_OK) == 0 && std::getenv("TMPDIR") == nullptr) {
    ::setenv("TMPDIR", "/dev/shm", 0);
    dir_ = std::make_unique<aio::testing::TempDir>();
    ::unsetenv("TMPDIR");
  } else {
    dir_ = std::make_unique<aio::testing::TempDir>();
  }
  path_ = aio::testing::MakeImage(*dir_, "volume.img", options.size);
  Status s = Format();
  EXPECT_TRUE(s.ok()) << s.ToString();
}

Status TestImage::Format() {
  auto dev = aio::BlockDevice::Open(path_);
  if (!dev.ok()) return dev.status();
  auto engine = aio::AioEngine::Create(std::move(dev).value(), aio::EngineOptions{});
  if (!engine.ok()) return engine.status();
  const uint64_t size = RoundDown(options_.size, kBlockSize);
  auto sb = PlanLayout(size, options_.alloc_unit, "test");
  if (!sb.ok()) return sb.status();
  if (options_.ckpt_size != 0) {
    sb->ckpt_size = options_.ckpt_size;
    sb->ckpt_offset[1] = sb->ckpt_offset[0] + sb->ckpt_size;
    sb->log_offset = sb->ckpt_offset[1] + sb->ckpt_size;
  }
  if (options_.log_size != 0 || options_.ckpt_size != 0) {
    if (options_.log_size != 0) sb->log_size = options_.log_size;
    sb->data_offset = RoundUp(sb->log_offset + sb->log_size, sb->alloc_unit);
    sb->data_size = RoundDown(size - kBlockSize - sb->data_offset, sb->alloc_unit);
  }
  layout_ = *sb;
  return MetadataStore::Format(**engine, *sb, ::getuid(), ::getgid());
}

Result<std::unique_ptr<Volume>> TestImage::TryOpen(aio::Syscalls* faults, VolumeOptions options) {
  auto dev = aio::BlockDevice::Open(path_);
  if (!dev.ok()) return dev.status();
  auto engine = faults != nullptr
                    ? aio::AioEngine::Create(std::move(dev).value(), aio::EngineOptions{}, *faults)
                    : aio::AioEngine::Create(std::move(dev).value(), aio::EngineOptions{});
  if (!engine.ok()) return engine.status();
  return Volume::Open(std::move(engine).value(), options);
}

std::unique_ptr<Volume> TestImage::Open(aio::Syscalls* faults, VolumeOptions options) {
  auto volume = TryOpen(faults, options);
  EXPECT_TRUE(volume.ok()) << volume.status().ToString();
  return volume.ok() ? std::move(volume).value() : nullptr;
}

std::unique_ptr<Volume> TestImage::OpenAfterPowerCut() {
  constexpr uint64_t kNextBoot = 1;
  return Open(nullptr, VolumeOptions{.commit_interval_s = 0, .boot_tag = kNextBoot});
}

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

uint64_t Resolve(Volume& volume, const std::string& path) {
  uint64_t ino = kRootIno;
  size_t pos = 1;
  while (pos < path.size()) {
    const size_t next = path.find('/', pos);
    const std::string part =
        path.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    auto attr = volume.Lookup(ino, part);
    if (!attr.ok()) return 0;
    ino = attr->ino;
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return ino;
}

namespace {

void Walk(Volume& volume, uint64_t dir, const std::string& prefix, Tree* tree) {
  std::vector<DirListing> entries;
  Status s = volume.Readdir(dir, 0, [&](const DirListing& e) {
    entries.push_back(e);
    return true;
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (const DirListing& e : entries) {
    const std::string path = prefix + "/" + e.name;
    Expected& x = (*tree)[path];
    auto attr = volume.GetAttr(e.attr.ino);
    ASSERT_TRUE(attr.ok()) << attr.status().ToString();
    EXPECT_EQ(attr->size, e.attr.size) << path;
    auto names = volume.ListXattr(e.attr.ino);
    ASSERT_TRUE(names.ok());
    for (const std::string& n : *names) x.xattrs[n] = *volume.GetXattr(e.attr.ino, n);
    if (S_ISDIR(attr->mode)) {
      x.dir = true;
      Walk(volume, e.attr.ino, path, tree);
    } else {
      std::string data(attr->size, '\0');
      auto n = volume.Read(e.attr.ino, 0, std::as_writable_bytes(std::span(data)));
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      ASSERT_EQ(*n, attr->size) << path;
      x.data = std::move(data);
    }
  }
}

}  // namespace

Tree ReadTree(Volume& volume) {
  Tree tree;
  Walk(volume, kRootIno, "", &tree);
  return tree;
}

std::string DiffTrees(const Tree& want, const Tree& got, const ByteAllowance& allowed) {
  for (const auto& [path, x] : want) {
    auto it = got.find(path);
    if (it == got.end()) return "missing " + path;
    if (it->second.dir != x.dir) return "type of " + path;
    if (it->second.data.size() != x.data.size()) {
      return "size of " + path + ": want " + std::to_string(x.data.size()) + " got " +
             std::to_string(it->second.data.size());
    }
    const std::string& data = it->second.data;
    for (auto g = data.begin(), w = x.data.begin();; ++g, ++w) {
      std::tie(g, w) = std::mismatch(g, data.end(), w);
      if (g == data.end()) break;
      const auto at = static_cast<uint64_t>(g - data.begin());
      if (!allowed || !allowed(path, at, *g)) {
        return "content of " + path + " differs at byte " + std::to_string(at);
      }
    }
    if (it->second.xattrs != x.xattrs) return "xattrs of " + path;
  }
  for (const auto& [path, x] : got) {
    if (!want.contains(path)) return "unexpected " + path;
  }
  return "";
}

void ExpectFsckClean(const std::string& image) {
  auto report = CheckImage(image);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->problems, std::vector<std::string>{});
}

}  // namespace nvswapfs::fs::testing
