// The backing device: a block device (an NVMe namespace, a loop device) or a
// plain image file, opened for direct I/O.
#pragma once

#include <cstdint>
#include <string>

#include "nvswapfs/status.h"
#include "nvswapfs/unique_fd.h"

namespace nvswapfs::aio {

struct DeviceInfo {
  std::string path;
  uint64_t size = 0;                // usable bytes, a multiple of logical_block_size
  uint32_t logical_block_size = 0;  // alignment every direct I/O must respect
  bool is_block_device = false;
  bool read_only = false;
};

struct DeviceOptions {
  bool read_only = false;
  // Refuse devices smaller than this many bytes (ENOSPC, naming both sizes).
  uint64_t min_size = 0;
};

// An open backing device. Opening it:
//  - uses O_DIRECT, so every transfer bypasses the page cache and must be
//    aligned to logical_block_size (offset, length and buffer address);
//  - opens a block device with O_EXCL, so it cannot be opened twice
//    exclusively (a second daemon, or a mounted filesystem, gets EBUSY);
//  - takes an exclusive flock on an image file for the same reason;
//  - learns the size and logical block size: BLKGETSIZE64 / BLKSSZGET for
//    block devices; statx's direct-I/O alignment for files, or 4096 when the
//    filesystem does not report it (safe for every 512e and 4Kn device).
// Fails with a Status naming the path and what was wrong: missing (ENOENT),
// neither file nor block device (ENODEV), busy (EBUSY), too small (ENOSPC),
// no O_DIRECT support (EINVAL).
// Move-only; closes the descriptor on destruction. Thread-safe for I/O.
class BlockDevice {
 public:
  static Result<BlockDevice> Open(const std::string& path, const DeviceOptions& options = {});

  int fd() const { return fd_.get(); }
  const DeviceInfo& info() const { return info_; }

  // Tells the device that [offset, offset + length) holds nothing worth
  // keeping: BLKDISCARD on a block device (TRIM, or deallocate on NVMe), a
  // punched hole in an image file (its space goes back to the filesystem
  // holding it). What the range reads afterwards is unspecified. The range
  // must be aligned to logical_block_size and inside the device (EINVAL);
  // EOPNOTSUPP when the device or the filesystem cannot.
  Status Discard(uint64_t offset, uint64_t length) const;

 private:
  BlockDevice(UniqueFd fd, DeviceInfo info) : fd_(std::move(fd)), info_(std::move(info)) {}
  UniqueFd fd_;
  DeviceInfo info_;
};

// Creates (or extends) an image file of exactly `size` bytes. With
// `preallocate` the blocks are reserved with fallocate (so benchmarks do not
// measure block allocation); otherwise the file is sparse.
Status CreateImageFile(const std::string& path, uint64_t size, bool preallocate);

// The direct-I/O offset alignment the filesystem under `fd` reports, or 0
// when it reports none.
uint32_t DirectIoAlignment(int fd);

}  // namespace nvswapfs::aio
