// A real block device: an image attached to a loop device. Needs root and
// /dev/loop-control, which CI has; elsewhere the test says why it cannot run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "nvswapfs/aio/aio_engine.h"
#include "nvswapfs/unique_fd.h"
#include "nvswapfs/units.h"
#include "test_util.h"

namespace nvswapfs::aio {
namespace {

using testing::MakeImage;
using testing::PatternBuffer;
using testing::TempDir;

// Attaches a file to a free loop device with a 4096-byte logical block size;
// detached automatically when the last descriptor closes.
class LoopDevice {
 public:
  static Result<LoopDevice> Attach(const std::string& image, uint32_t block_size) {
    UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
    if (!control.valid()) return Status::FromErrno("open", "/dev/loop-control");
    const int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return Status::FromErrno("LOOP_CTL_GET_FREE", "/dev/loop-control");
    const std::string path = "/dev/loop" + std::to_string(n);
    // Containers often lack device nodes for loop devices made on demand.
    if (::access(path.c_str(), F_OK) != 0 &&
        ::mknod(path.c_str(), S_IFBLK | 0660, makedev(7, static_cast<unsigned>(n))) != 0) {
      return Status::FromErrno("mknod", path);
    }
    UniqueFd backing(::open(image.c_str(), O_RDWR | O_CLOEXEC));
    if (!backing.valid()) return Status::FromErrno("open", image);
    UniqueFd loop(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!loop.valid()) return Status::FromErrno("open", path);
    struct loop_config config;
    std::memset(&config, 0, sizeof config);
    config.fd = static_cast<uint32_t>(backing.get());
    config.block_size = block_size;
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (::ioctl(loop.get(), LOOP_CONFIGURE, &config) != 0) {
      return Status::FromErrno("LOOP_CONFIGURE", path);
    }
    return LoopDevice(path, std::move(loop));
  }

  const std::string& path() const { return path_; }

 private:
  LoopDevice(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

TEST(LoopDeviceTest, EngineRunsOnARealBlockDevice) {
  if (::geteuid() != 0 || ::access("/dev/loop-control", R_OK | W_OK) != 0) {
    if (std::getenv("CI") != nullptr) FAIL() << "CI must run as root with /dev/loop-control";
    GTEST_SKIP() << "CANNOT RUN: needs root and /dev/loop-control to attach a loop device";
  }
  TempDir dir;
  const std::string image = MakeImage(dir, "loop.img", 64 * kMiB);
  auto loop = LoopDevice::Attach(image, 4096);
  ASSERT_TRUE(loop.ok()) << loop.status().ToString();

  auto dev = BlockDevice::Open(loop->path());
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_TRUE(dev->info().is_block_device);
  EXPECT_EQ(dev->info().size, 64 * kMiB);
  EXPECT_EQ(dev->info().logical_block_size, 4096u);

  // Opened exclusively: a second opener is told the device is busy.
  auto second = BlockDevice::Open(loop->path());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), EBUSY);
  EXPECT_NE(second.status().ToString().find(loop->path()), std::string::npos);

  auto engine = AioEngine::Create(
      std::move(dev).value(), EngineOptions{.block_size = kMiB, .queue_depth = 8, .threads = 2});
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  AlignedBuffer data = PatternBuffer(16 * kMiB, 21);
  ASSERT_TRUE((*engine)->Execute({IoOp::kWrite, 48 * kMiB, data.data(), 16 * kMiB}).ok());
  ASSERT_TRUE((*engine)->Flush().ok());
  AlignedBuffer back = AlignedBuffer::Allocate(16 * kMiB).value();
  ASSERT_TRUE((*engine)->Execute({IoOp::kRead, 48 * kMiB, back.data(), 16 * kMiB}).ok());
  EXPECT_EQ(std::memcmp(back.data(), data.data(), 16 * kMiB), 0);
  // A 512-byte aligned request is refused on this 4Kn device.
  EXPECT_EQ((*engine)->Execute({IoOp::kRead, 512, back.data(), 4096}).code(), EINVAL);
  // Past the end of the device.
  EXPECT_EQ((*engine)->Execute({IoOp::kRead, 64 * kMiB, back.data(), 4096}).code(), EINVAL);

  // What went through the block device is in the image file.
  EXPECT_EQ(testing::ReadPlain(image, 48 * kMiB, 16 * kMiB),
            std::vector<std::byte>(data.data(), data.data() + 16 * kMiB));

  // A discard (BLKDISCARD) reaches the device: the loop driver punches the
  // range out of its image, which then reads as zeros; the rest stays.
  struct stat before {};
  ASSERT_EQ(::stat(image.c_str(), &before), 0);
  Status discarded = (*engine)->Discard(48 * kMiB, 8 * kMiB);
  ASSERT_TRUE(discarded.ok()) << discarded.ToString();
  ASSERT_TRUE((*engine)->Execute({IoOp::kRead, 48 * kMiB, back.data(), 16 * kMiB}).ok());
  EXPECT_EQ(std::vector<std::byte>(back.data(), back.data() + 8 * kMiB),
            std::vector<std::byte>(8 * kMiB));
  EXPECT_EQ(std::memcmp(back.data() + 8 * kMiB, data.data() + 8 * kMiB, 8 * kMiB), 0);
  struct stat after {};
  ASSERT_EQ(::stat(image.c_str(), &after), 0);
  EXPECT_LE(after.st_blocks * 512, before.st_blocks * 512 - static_cast<off_t>(8 * kMiB));
  // Blocks of the device, inside it, only.
  EXPECT_EQ((*engine)->Discard(512, 4096).code(), EINVAL);
  EXPECT_EQ((*engine)->Discard(60 * kMiB, 8 * kMiB).code(), EINVAL);
  engine->reset();
}

}  // namespace
}  // namespace nvswapfs::aio
