// A formatted image with a Volume on it, and a model of what the volume
// should hold, for the Volume tests.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../aio/test_util.h"
#include "nvswapfs/aio/fault_injector.h"
#include "nvswapfs/fs/superblock.h"
#include "nvswapfs/fs/volume.h"

namespace nvswapfs::fs::testing {

struct ImageOptions {
  uint64_t size = 64 << 20;
  uint64_t alloc_unit = 1 << 20;
  // The metadata log's size; 0: as mkfs plans it (at least 4 MiB). A small
  // log makes the volume write a checkpoint every few commits.
  uint64_t log_size = 0;
  // Each checkpoint slot's size; 0: as mkfs plans it (at least 4 MiB). A
  // small slot fills with little metadata.
  uint64_t ckpt_size = 0;
  // Image files live in /dev/shm when it exists: tmpfs takes O_DIRECT and
  // keeps the crash loop fast.
  bool in_memory = true;
};

// An image file formatted as an empty volume.
class TestImage {
 public:
  explicit TestImage(const ImageOptions& options = {});
  const std::string& path() const { return path_; }
  const ImageOptions& options() const { return options_; }
  // Where the last Format put the superblocks, checkpoint slots, log and data.
  const Superblock& layout() const { return layout_; }
  // (Re)formats the image as an empty volume.
  Status Format();

  // Opens a Volume on the image (optionally through `faults`, usually an
  // aio::FaultInjector); fails the test and returns null on error.
  std::unique_ptr<Volume> Open(aio::Syscalls* faults = nullptr,
                               VolumeOptions options = {.commit_interval_s = 0});
  // Opens it as the machine does after a power cut: in another boot, so
  // that a close's commit the device kept without its data is not trusted.
  std::unique_ptr<Volume> OpenAfterPowerCut();
  Result<std::unique_ptr<Volume>> TryOpen(aio::Syscalls* faults = nullptr,
                                          VolumeOptions options = {.commit_interval_s = 0});

 private:
  ImageOptions options_;
  Superblock layout_;
  std::unique_ptr<aio::testing::TempDir> dir_;
  std::string path_;
};

// What a file or directory should hold.
struct Expected {
  bool dir = false;
  std::string data = {};
  std::map<std::string, std::string> xattrs = {};
  friend bool operator==(const Expected&, const Expected&) = default;
};
using Tree = std::map<std::string, Expected>;  // path -> content ("/" excluded)

// Reads the whole namespace: every path below the root, with file contents
// and xattrs. Fails the test on any error.
Tree ReadTree(Volume& volume);

// Resolves a path such as "/a/b" to an inode number; 0 when absent.
uint64_t Resolve(Volume& volume, const std::string& path);

std::string ParentOf(const std::string& path);
std::string BaseName(const std::string& path);

// Whether a byte of the file at `path`, at `offset`, that differs from the
// one wanted may stand as it is.
using ByteAllowance = std::function<bool(const std::string& path, uint64_t offset, char byte)>;

// Describes the first difference between two trees ("" when equal), passing
// over differing file bytes that `allowed` (when given) accepts.
std::string DiffTrees(const Tree& want, const Tree& got, const ByteAllowance& allowed = nullptr);

// fsck reads the image and finds nothing wrong with it (fails the test
// otherwise, fatally).
void ExpectFsckClean(const std::string& image);

}  // namespace nvswapfs::fs::testing
