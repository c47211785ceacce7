// Loading a volume whose checkpoint slots or log are damaged: what opens,
// what is refused, and what fsck says.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "nvswapfs/fs/fsck.h"
#include "nvswapfs/fs/journal.h"
#include "nvswapfs/unique_fd.h"
#include "volume_test_util.h"

namespace nvswapfs::fs {
namespace {

using testing::Resolve;
using testing::TestImage;

const NewInode kFile{0644, 0, 0};

bool Contains(const std::vector<std::string>& lines, const std::string& what) {
  for (const std::string& line : lines) {
    if (line.find(what) != std::string::npos) return true;
  }
  return false;
}

class DamagedStoreTest : public ::testing::Test {
 protected:
  // "a" checkpointed in generation 2 (slot 1) by a clean close; then "b",
  // "c" and "d" synced to the log, one commit each, and the power cut.
  void SetUp() override {
    {
      auto volume = image_.Open();
      ASSERT_NE(volume, nullptr);
      ASSERT_TRUE(volume->Create(kRootIno, "a", kFile).ok());
      sb_ = volume->superblock();
      ASSERT_TRUE(volume->Close().ok());
    }
    aio::FaultInjector faults;
    faults.TrackUnflushedWrites(true);
    auto volume = image_.Open(&faults);
    ASSERT_NE(volume, nullptr);
    for (const char* name : {"b", "c", "d"}) {
      ASSERT_TRUE(volume->Create(kRootIno, name, kFile).ok());
      ASSERT_TRUE(volume->Sync().ok());
    }
    ASSERT_TRUE(faults.CrashNow().ok());
  }

  // Flips the bits of one byte of the image.
  void Flip(uint64_t offset) {
    UniqueFd fd(::open(image_.path().c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    char byte = 0;
    ASSERT_EQ(::pread(fd.get(), &byte, 1, static_cast<off_t>(offset)), 1);
    byte = static_cast<char>(~byte);
    ASSERT_EQ(::pwrite(fd.get(), &byte, 1, static_cast<off_t>(offset)), 1);
  }

  // The offsets (within the log) of the commits replay would apply.
  std::vector<uint64_t> Commits() {
    UniqueFd fd(::open(image_.path().c_str(), O_RDONLY | O_CLOEXEC));
    std::vector<uint64_t> found;
    std::vector<std::byte> block(kBlockSize);
    for (uint64_t at = 0; at + kBlockSize <= sb_.log_size;) {
      if (::pread(fd.get(), block.data(), kBlockSize, static_cast<off_t>(sb_.log_offset + at)) !=
          static_cast<ssize_t>(kBlockSize)) {
        break;
      }
      auto header = DecodeCommitHeader(block, sb_.uuid);
      if (!header.ok()) break;
      if (!found.empty() && header->sequence != last_sequence_ + 1) break;
      last_sequence_ = header->sequence;
      found.push_back(at);
      at += CommitSpan(*header);
    }
    return found;
  }

  void ExpectAllFiles(Volume& volume) {
    for (const char* name : {"a", "b", "c", "d"})
      EXPECT_NE(Resolve(volume, std::string("/") + name), 0u) << name;
  }

  TestImage image_;
  Superblock sb_;
  uint64_t last_sequence_ = 0;
};

TEST_F(DamagedStoreTest, UndamagedOpensWithEverything) {
  auto volume = image_.Open();
  ASSERT_NE(volume, nullptr);
  ExpectAllFiles(*volume);
  EXPECT_EQ(volume->notes(), std::vector<std::string>{});
  ASSERT_EQ(Commits().size(), 3u);
}

TEST_F(DamagedStoreTest, DamagedNewestCheckpointHeaderIsRefusedNotRolledBack) {
  Flip(sb_.ckpt_offset[1] + 100);  // a reserved byte: only the checksum notices
  auto volume = image_.TryOpen();
  ASSERT_FALSE(volume.ok()) << "opened an older state read-write";
  EXPECT_EQ(volume.status().code(), EUCLEAN);
  const std::string message = volume.status().ToString();
  EXPECT_NE(message.find("checkpoint slot 1 is damaged"), std::string::npos) << message;
  EXPECT_NE(message.find("run fsck.nvswapfs"), std::string::npos) << message;

  // fsck -n says so and leaves it; fsck -y keeps what loads.
  auto checked = CheckImage(image_.path());
  ASSERT_TRUE(checked.ok()) << checked.status().ToString();
  EXPECT_TRUE(Contains(checked->problems, "checkpoint slot 1 is damaged"));
  EXPECT_EQ(checked->ExitCode(), 4);
  EXPECT_FALSE(image_.TryOpen().ok()) << "fsck -n changed the volume";

  FsckOptions repair;
  repair.repair = true;
  auto repaired = CheckImage(image_.path(), repair);
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_EQ(repaired->ExitCode(), 1);
  auto again = CheckImage(image_.path());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->problems, std::vector<std::string>{});

  // The commits left in the log are never taken for new ones.
  {
    aio::FaultInjector faults;
    faults.TrackUnflushedWrites(true);
    auto reopened = image_.Open(&faults);
    ASSERT_NE(reopened, nullptr);
    EXPECT_EQ(Resolve(*reopened, "/b"), 0u);
    ASSERT_TRUE(reopened->Create(kRootIno, "new", kFile).ok());
    ASSERT_TRUE(reopened->Sync().ok());
    ASSERT_TRUE(faults.CrashNow().ok());
  }
  auto volume2 = image_.Open();
  ASSERT_NE(volume2, nullptr);
  EXPECT_NE(Resolve(*volume2, "/new"), 0u);
  EXPECT_EQ(Resolve(*volume2, "/c"), 0u);
  ASSERT_TRUE(volume2->Close().ok());
  volume2.reset();
  auto last = CheckImage(image_.path());
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->problems, std::vector<std::string>{});
}

TEST_F(DamagedStoreTest, DamagedOlderCheckpointHeaderStillOpens) {
  Flip(sb_.ckpt_offset[0] + 100);
  auto checked = CheckImage(image_.path());
  ASSERT_TRUE(checked.ok());
  EXPECT_TRUE(Contains(checked->problems, "checkpoint slot 0 not used"));
  EXPECT_EQ(checked->ExitCode(), 4);
  EXPECT_EQ(checked->files, 4u);
  auto volume = image_.Open();
  ASSERT_NE(volume, nullptr);
  ExpectAllFiles(*volume);
  EXPECT_TRUE(Contains(volume->notes(), "checkpoint slot 0 not used"));
}

TEST_F(DamagedStoreTest, TornLastCommitIsAQuietEndOfLog) {
  const std::vector<uint64_t> commits = Commits();
  ASSERT_EQ(commits.size(), 3u);
  Flip(sb_.log_offset + commits.back() + 100);  // its payload
  auto volume = image_.TryOpen();
  ASSERT_TRUE(volume.ok()) << volume.status().ToString();
  EXPECT_NE(Resolve(**volume, "/c"), 0u);
  EXPECT_EQ(Resolve(**volume, "/d"), 0u);
  volume->reset();
  auto checked = CheckImage(image_.path());
  ASSERT_TRUE(checked.ok());
  EXPECT_EQ(checked->problems, std::vector<std::string>{});
}

TEST_F(DamagedStoreTest, DamagedMiddleCommitIsRefusedAndReported) {
  const std::vector<uint64_t> commits = Commits();
  ASSERT_EQ(commits.size(), 3u);
  Flip(sb_.log_offset + commits[1] + 100);
  auto volume = image_.TryOpen();
  ASSERT_FALSE(volume.ok()) << "dropped the commits after a damaged one";
  EXPECT_NE(volume.status().ToString().find("later ones follow it"), std::string::npos)
      << volume.status().ToString();
  auto checked = CheckImage(image_.path());
  ASSERT_TRUE(checked.ok());
  EXPECT_TRUE(Contains(checked->problems, "later ones follow it"));
  EXPECT_EQ(checked->ExitCode(), 4);
}

// A checkpoint's slot holds its header block, its body and zeros to the
// end of its last block, whatever the slot held before: here both slots
// are overwritten with 0xA5 while the volume is open, and the one its close
// writes must be exactly what EncodeCheckpoint makes of the body in it.
TEST(CheckpointSlotTest, TheSlotWrittenHoldsTheEncodedCheckpointAndZeroPadding) {
  TestImage image;
  Superblock sb;
  {
    auto volume = image.Open();
    ASSERT_NE(volume, nullptr);
    // Names of every length up to 40, so that the body ends inside a block.
    for (size_t n = 1; n <= 40; ++n)
      ASSERT_TRUE(volume->Create(kRootIno, std::string(n, 'f'), kFile).ok());
    sb = volume->superblock();
    UniqueFd fd(::open(image.path().c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    const std::vector<std::byte> junk(sb.ckpt_size, std::byte{0xA5});
    for (uint64_t offset : sb.ckpt_offset) {
      ASSERT_EQ(::pwrite(fd.get(), junk.data(), junk.size(), static_cast<off_t>(offset)),
                static_cast<ssize_t>(junk.size()));
    }
    ASSERT_TRUE(volume->Close().ok());
  }
  UniqueFd fd(::open(image.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  int written = 0;
  for (uint64_t offset : sb.ckpt_offset) {
    std::vector<std::byte> slot(sb.ckpt_size);
    ASSERT_EQ(::pread(fd.get(), slot.data(), slot.size(), static_cast<off_t>(offset)),
              static_cast<ssize_t>(slot.size()));
    auto header = DecodeCheckpointHeader(slot, sb.uuid);
    if (!header.ok()) continue;
    ++written;
    ASSERT_NE(header->body_length % kBlockSize, 0u) << "the body fills its last block";
    const std::span<const std::byte> body(slot.data() + kBlockSize, header->body_length);
    std::vector<std::byte> expected;
    EncodeCheckpoint(*header, body, &expected);
    ASSERT_LT(expected.size(), slot.size());
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), slot.begin()))
        << "the slot differs from the checkpoint encoded from its own body";
    // Past the checkpoint, the slot still holds what was there.
    EXPECT_EQ(slot[expected.size()], std::byte{0xA5});
  }
  EXPECT_EQ(written, 1);
  auto volume = image.Open();
  ASSERT_NE(volume, nullptr);
  for (size_t n = 1; n <= 40; ++n) EXPECT_NE(Resolve(*volume, "/" + std::string(n, 'f')), 0u) << n;
}

}  // namespace
}  // namespace nvswapfs::fs
