#include "nvswapfs/aio/block_device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "nvswapfs/unique_fd.h"
#include "nvswapfs/units.h"
#include "test_util.h"

namespace nvswapfs::aio {
namespace {

using testing::MakeImage;
using testing::TempDir;

TEST(BlockDeviceTest, OpensAnImageFileAndLearnsItsGeometry) {
  TempDir dir;
  const std::string path = MakeImage(dir, "dev.img", 8 * kMiB + 1000);
  auto dev = BlockDevice::Open(path);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  const DeviceInfo& info = dev->info();
  EXPECT_EQ(info.path, path);
  EXPECT_FALSE(info.is_block_device);
  EXPECT_GE(info.logical_block_size, 512u);
  EXPECT_TRUE(IsPowerOfTwo(info.logical_block_size));
  // The ragged tail past the last whole block is not usable.
  EXPECT_EQ(info.size, 8 * kMiB);
  EXPECT_GE(dev->fd(), 0);
}

TEST(BlockDeviceTest, DiscardPunchesTheImageAndChecksTheRange) {
  TempDir dir;
  const std::string path = MakeImage(dir, "dev.img", 8 * kMiB);
  {
    std::vector<char> ones(8 * kMiB, 1);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(::pwrite(fd.get(), ones.data(), ones.size(), 0), static_cast<ssize_t>(ones.size()));
  }
  uint32_t lbs = 0;
  {
    auto dev = BlockDevice::Open(path);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    struct stat before {};
    ASSERT_EQ(::stat(path.c_str(), &before), 0);
    Status s = dev->Discard(2 * kMiB, 4 * kMiB);
    ASSERT_TRUE(s.ok()) << s.ToString();
    struct stat after {};
    ASSERT_EQ(::stat(path.c_str(), &after), 0);
    // The filesystem holding the image got the space back.
    EXPECT_LE(after.st_blocks * 512, before.st_blocks * 512 - static_cast<off_t>(4 * kMiB));
    EXPECT_EQ(after.st_size, before.st_size);
    const std::vector<std::byte> back = testing::ReadPlain(path, 0, 8 * kMiB);
    for (uint64_t i = 0; i < 8 * kMiB; i += 4096) {
      const bool discarded = i >= 2 * kMiB && i < 6 * kMiB;
      ASSERT_EQ(back[i], std::byte{discarded ? uint8_t{0} : uint8_t{1}}) << "at " << i;
    }

    // Whole logical blocks inside the device, or EINVAL naming the device.
    lbs = dev->info().logical_block_size;
    EXPECT_EQ(dev->Discard(lbs / 2, lbs).code(), EINVAL);
    EXPECT_EQ(dev->Discard(0, lbs + 1).code(), EINVAL);
    EXPECT_EQ(dev->Discard(0, 0).code(), EINVAL);
    Status past = dev->Discard(8 * kMiB - lbs, 2 * lbs);
    EXPECT_EQ(past.code(), EINVAL);
    EXPECT_NE(past.ToString().find(path), std::string::npos) << past.ToString();
  }
  auto ro = BlockDevice::Open(path, DeviceOptions{.read_only = true});
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_EQ(ro->Discard(0, lbs).code(), EROFS);
}

TEST(BlockDeviceTest, MissingPathNamesThePath) {
  TempDir dir;
  auto dev = BlockDevice::Open(dir.File("absent.img"));
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), ENOENT);
  EXPECT_NE(dev.status().ToString().find("absent.img"), std::string::npos);
}

TEST(BlockDeviceTest, DirectoryIsRefused) {
  TempDir dir;
  auto dev = BlockDevice::Open(dir.path());
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), ENODEV);
  EXPECT_NE(dev.status().ToString().find("not a regular file or a block device"),
            std::string::npos);
}

TEST(BlockDeviceTest, TooSmallIsRefusedWithBothSizes) {
  TempDir dir;
  const std::string path = MakeImage(dir, "small.img", kMiB);
  auto dev = BlockDevice::Open(path, DeviceOptions{.read_only = false, .min_size = 16 * kMiB});
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), ENOSPC);
  const std::string msg = dev.status().ToString();
  EXPECT_NE(msg.find("1 MiB"), std::string::npos) << msg;
  EXPECT_NE(msg.find("16 MiB"), std::string::npos) << msg;
}

TEST(BlockDeviceTest, EmptyFileIsRefused) {
  TempDir dir;
  const std::string path = MakeImage(dir, "empty.img", 0);
  auto dev = BlockDevice::Open(path);
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), ENOSPC);
}

TEST(BlockDeviceTest, SecondExclusiveOpenIsBusy) {
  TempDir dir;
  const std::string path = MakeImage(dir, "busy.img", 4 * kMiB);
  auto first = BlockDevice::Open(path);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = BlockDevice::Open(path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), EBUSY);
  EXPECT_NE(second.status().ToString().find("already mounted"), std::string::npos);
}

TEST(BlockDeviceTest, ReleasedOnDestruction) {
  TempDir dir;
  const std::string path = MakeImage(dir, "reuse.img", 4 * kMiB);
  {
    auto first = BlockDevice::Open(path);
    ASSERT_TRUE(first.ok());
  }
  auto again = BlockDevice::Open(path);
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST(BlockDeviceTest, CreateImageFileExtendsButNeverShrinks) {
  TempDir dir;
  const std::string path = dir.File("grow.img");
  ASSERT_TRUE(CreateImageFile(path, 2 * kMiB, false).ok());
  ASSERT_TRUE(CreateImageFile(path, 4 * kMiB, true).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(4 * kMiB));
  ASSERT_TRUE(CreateImageFile(path, kMiB, false).ok());
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(4 * kMiB));
}

TEST(BlockDeviceTest, CreateImageFileRefusesADirectory) {
  TempDir dir;
  EXPECT_FALSE(CreateImageFile(dir.path(), kMiB, false).ok());
}

}  // namespace
}  // namespace nvswapfs::aio
