#include "nvswapfs/aio/block_device.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>

#include "nvswapfs/units.h"

namespace nvswapfs::aio {
namespace {

constexpr uint32_t kDefaultFileBlockSize = 4096;

}  // namespace

Result<BlockDevice> BlockDevice::Open(const std::string& path, const DeviceOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("open device", path);
  const bool is_block = S_ISBLK(st.st_mode);
  if (!is_block && !S_ISREG(st.st_mode)) {
    return Status::Error(ENODEV, "open device", path)
        .WithDetail("not a regular file or a block device");
  }

  int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC;
  if (is_block) flags |= O_EXCL;
  UniqueFd fd(::open(path.c_str(), flags));
  if (!fd.valid()) {
    Status s = Status::FromErrno("open device", path);
    if (s.code() == EINVAL) {
      return std::move(s).WithDetail("the filesystem holding it does not support O_DIRECT");
    }
    if (s.code() == EBUSY) {
      return std::move(s).WithDetail("the device is in use: mounted, or opened by another daemon");
    }
    return s;
  }
  if (::flock(fd.get(), (options.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    Status s = Status::FromErrno("lock device", path);
    if (s.code() == EWOULDBLOCK) {
      return Status::Error(EBUSY, "open device", path)
          .WithDetail("another process holds it; is it already mounted?");
    }
    return s;
  }

  DeviceInfo info;
  info.path = path;
  info.is_block_device = is_block;
  info.read_only = options.read_only;
  uint64_t raw_size = 0;
  if (is_block) {
    int sector = 0;
    if (::ioctl(fd.get(), BLKGETSIZE64, &raw_size) != 0)
      return Status::FromErrno("BLKGETSIZE64", path);
    if (::ioctl(fd.get(), BLKSSZGET, &sector) != 0) return Status::FromErrno("BLKSSZGET", path);
    info.logical_block_size = static_cast<uint32_t>(sector);
  } else {
    raw_size = static_cast<uint64_t>(st.st_size);
    const uint32_t reported = DirectIoAlignment(fd.get());
    // A reported alignment below 512 (or none) is not something we want to
    // depend on; every device we may later move the image to handles 4096.
    info.logical_block_size = reported >= 512 && reported <= 65536 && IsPowerOfTwo(reported)
                                  ? std::max(reported, kDefaultFileBlockSize)
                                  : kDefaultFileBlockSize;
  }
  if (info.logical_block_size < 512 || !IsPowerOfTwo(info.logical_block_size)) {
    return Status::Error(EINVAL, "open device", path)
        .WithDetail("unsupported logical block size " + std::to_string(info.logical_block_size));
  }
  info.size = RoundDown(raw_size, info.logical_block_size);
  if (info.size < options.min_size || info.size == 0) {
    return Status::Error(ENOSPC, "open device", path)
        .WithDetail("device holds " + FormatSize(info.size) + ", at least " +
                    FormatSize(std::max<uint64_t>(options.min_size, info.logical_block_size)) +
                    " needed");
  }
  return BlockDevice(std::move(fd), std::move(info));
}

Status BlockDevice::Discard(uint64_t offset, uint64_t length) const {
  const uint64_t lbs = info_.logical_block_size;
  if (offset % lbs != 0 || length % lbs != 0 || length == 0 || offset > info_.size ||
      length > info_.size - offset) {
    return Status::Error(EINVAL, "discard", info_.path, offset, length)
        .WithDetail("not whole logical blocks of " + std::to_string(lbs) +
                    " bytes inside the device");
  }
  if (info_.read_only) return Status::Error(EROFS, "discard", info_.path, offset, length);
  int rc = 0;
  if (info_.is_block_device) {
    uint64_t range[2] = {offset, length};
    rc = ::ioctl(fd_.get(), BLKDISCARD, range);
  } else {
    rc = ::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     static_cast<off_t>(offset), static_cast<off_t>(length));
  }
  if (rc == 0) return Status::Ok();
  Status s = Status::FromErrno("discard", info_.path).WithRange(offset, length);
  if (s.code() == EOPNOTSUPP) {
    return std::move(s).WithDetail(info_.is_block_device
                                       ? "the device does not support discard"
                                       : "the filesystem holding the image cannot punch holes");
  }
  return s;
}

Status CreateImageFile(const std::string& path, uint64_t size, bool preallocate) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return Status::FromErrno("create image", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat image", path);
  if (!S_ISREG(st.st_mode)) {
    return Status::Error(ENODEV, "create image", path).WithDetail("not a regular file");
  }
  if (preallocate) {
    if (::fallocate(fd.get(), 0, 0, static_cast<off_t>(size)) != 0) {
      // Not every filesystem preallocates; a sparse file still works.
      if (errno != EOPNOTSUPP) return Status::FromErrno("fallocate image", path).WithRange(0, size);
    }
  }
  if (static_cast<uint64_t>(st.st_size) < size &&
      ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return Status::FromErrno("resize image", path).WithRange(0, size);
  }
  return Status::Ok();
}

}  // namespace nvswapfs::aio
