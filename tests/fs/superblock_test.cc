#include "nvswapfs/fs/superblock.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "nvswapfs/fs/codec.h"
#include "nvswapfs/units.h"

namespace nvswapfs::fs {
namespace {

using Block = std::array<std::byte, kBlockSize>;

Superblock Planned(uint64_t device_size = 2 * kGiB, uint64_t alloc_unit = kDefaultAllocUnit,
                   std::string label = "swap0") {
  Result<Superblock> sb = PlanLayout(device_size, alloc_unit, std::move(label));
  EXPECT_TRUE(sb.ok()) << sb.status().ToString();
  return sb.ok() ? *sb : Superblock{};
}

Block Encode(const Superblock& sb) {
  Block block;
  EncodeSuperblock(sb, block);
  return block;
}

// Recomputes the checksum, so that a test can hand the decoder a block that
// is well-formed except for the one field under test.
void Reseal(Block& block) {
  StoreLe32(block.data() + 4092, Crc32c(std::span(block).first(4092)));
}

void ExpectSameSuperblock(const Superblock& a, const Superblock& b) {
  EXPECT_EQ(a.format_version, b.format_version);
  EXPECT_EQ(a.copy, b.copy);
  EXPECT_EQ(a.compat_features, b.compat_features);
  EXPECT_EQ(a.ro_compat_features, b.ro_compat_features);
  EXPECT_EQ(a.incompat_features, b.incompat_features);
  EXPECT_EQ(a.uuid, b.uuid);
  EXPECT_EQ(a.label, b.label);
  EXPECT_EQ(a.block_size, b.block_size);
  EXPECT_EQ(a.alloc_unit, b.alloc_unit);
  EXPECT_EQ(a.device_size, b.device_size);
  EXPECT_EQ(a.ckpt_offset[0], b.ckpt_offset[0]);
  EXPECT_EQ(a.ckpt_offset[1], b.ckpt_offset[1]);
  EXPECT_EQ(a.ckpt_size, b.ckpt_size);
  EXPECT_EQ(a.log_offset, b.log_offset);
  EXPECT_EQ(a.log_size, b.log_size);
  EXPECT_EQ(a.data_offset, b.data_offset);
  EXPECT_EQ(a.data_size, b.data_size);
  EXPECT_EQ(a.created_ns, b.created_ns);
}

Status DecodeStatus(const Block& block, uint64_t device_size = 0) {
  return DecodeSuperblock(block, device_size, "primary superblock").status();
}

TEST(PlanLayoutTest, RegionsFitAlignedAndInOrderForManySizes) {
  for (uint64_t device : {64 * kMiB, 2 * kGiB, 1024 * kGiB}) {
    for (uint64_t unit : {64 * kKiB, 1 * kMiB, 64 * kMiB}) {
      SCOPED_TRACE("device " + FormatSize(device) + " alloc unit " + FormatSize(unit));
      Result<Superblock> r = PlanLayout(device, unit, "");
      if (device == 64 * kMiB && unit == 64 * kMiB) {
        // 12 MiB of metadata rounds the data start up to 64 MiB: no room.
        EXPECT_EQ(r.status().code(), ENOSPC);
        continue;
      }
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      const Superblock& sb = *r;
      EXPECT_EQ(sb.device_size, device);
      EXPECT_EQ(sb.alloc_unit, unit);
      EXPECT_EQ(sb.ckpt_offset[0], kBlockSize);
      EXPECT_EQ(sb.ckpt_offset[1], sb.ckpt_offset[0] + sb.ckpt_size);
      EXPECT_EQ(sb.log_offset, sb.ckpt_offset[1] + sb.ckpt_size);
      EXPECT_EQ(sb.log_size, sb.ckpt_size);
      EXPECT_GE(sb.ckpt_size, 4 * kMiB);
      EXPECT_LE(sb.ckpt_size, 1 * kGiB);
      EXPECT_EQ(sb.ckpt_size % kMiB, 0u);
      for (uint64_t v : {sb.ckpt_offset[0], sb.ckpt_offset[1], sb.ckpt_size, sb.log_offset,
                         sb.log_size, sb.data_offset, sb.data_size}) {
        EXPECT_EQ(v % kBlockSize, 0u);
      }
      EXPECT_GE(sb.data_offset, sb.log_offset + sb.log_size);
      EXPECT_EQ(sb.data_offset % unit, 0u);
      EXPECT_EQ(sb.data_size % unit, 0u);
      EXPECT_GE(sb.data_size, 4 * unit);
      EXPECT_LE(sb.data_offset + sb.data_size, sb.backup_offset());
      // Whatever is left over is less than one allocation unit.
      EXPECT_LT(sb.backup_offset() - (sb.data_offset + sb.data_size), unit);
      // A planned layout is always one the decoder accepts.
      Block block = Encode(sb);
      Result<Superblock> back = DecodeSuperblock(block, device, "primary superblock");
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      ExpectSameSuperblock(*back, sb);
    }
  }
}

TEST(PlanLayoutTest, MetadataGrowsWithTheDeviceWithinLimits) {
  // 2^20 units of 1 MiB at 512 bytes each.
  EXPECT_EQ(Planned(1024 * kGiB, kMiB).ckpt_size, 512 * kMiB);
  EXPECT_EQ(Planned(1024 * kGiB, 64 * kKiB).ckpt_size, 1 * kGiB) << "capped";
  EXPECT_EQ(Planned(2 * kGiB, kMiB).ckpt_size, 4 * kMiB) << "floor";
  EXPECT_EQ(Planned(64 * kGiB, kMiB).ckpt_size, 32 * kMiB);
}

TEST(PlanLayoutTest, ExactLayoutOfASmallDevice) {
  const Superblock sb = Planned(64 * kMiB, kMiB, "tiny");
  EXPECT_EQ(sb.ckpt_offset[0], 4096u);
  EXPECT_EQ(sb.ckpt_offset[1], 4096u + 4 * kMiB);
  EXPECT_EQ(sb.log_offset, 4096u + 8 * kMiB);
  EXPECT_EQ(sb.data_offset, 13 * kMiB);
  // 64 MiB minus the backup block, rounded down to whole MiB after 13 MiB.
  EXPECT_EQ(sb.data_size, 50 * kMiB);
  EXPECT_EQ(sb.label, "tiny");
  EXPECT_EQ(sb.format_version, kFormatVersion);
  EXPECT_EQ(sb.copy, 0u);
  EXPECT_GT(sb.created_ns, 1'600'000'000'000'000'000) << "a current wall-clock time";
}

TEST(PlanLayoutTest, TooSmallIsNoSpaceAndSaysHowMuchIsNeeded) {
  Result<Superblock> r = PlanLayout(16 * kMiB, kMiB, "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ENOSPC);
  const std::string message = r.status().ToString();
  EXPECT_NE(message.find("16777216"), std::string::npos) << message;
  // 4 KiB + 12 MiB of metadata rounds up to 13 MiB, plus 4 units and the backup.
  EXPECT_NE(message.find(std::to_string(17 * kMiB + 4096)), std::string::npos) << message;

  EXPECT_TRUE(PlanLayout(17 * kMiB + 4096, kMiB, "").ok()) << "the minimum it named is enough";
  EXPECT_EQ(PlanLayout(17 * kMiB, kMiB, "").status().code(), ENOSPC);
  EXPECT_EQ(PlanLayout(0, kMiB, "").status().code(), ENOSPC);
  EXPECT_EQ(PlanLayout(4096, kMiB, "").status().code(), ENOSPC);
}

TEST(PlanLayoutTest, BadAllocationUnitIsInvalidAndNamesTheRange) {
  for (uint64_t unit : {uint64_t{0}, uint64_t{4096}, 32 * kKiB, 96 * kKiB, 3 * kMiB, 128 * kMiB,
                        uint64_t{1} << 63}) {
    Result<Superblock> r = PlanLayout(2 * kGiB, unit, "");
    ASSERT_FALSE(r.ok()) << unit;
    EXPECT_EQ(r.status().code(), EINVAL);
    EXPECT_NE(r.status().detail().find("64 KiB"), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().detail().find("64 MiB"), std::string::npos) << r.status().ToString();
  }
}

TEST(PlanLayoutTest, LabelLimits) {
  EXPECT_TRUE(PlanLayout(2 * kGiB, kMiB, std::string(63, 'x')).ok());
  Result<Superblock> r = PlanLayout(2 * kGiB, kMiB, std::string(64, 'x'));
  EXPECT_EQ(r.status().code(), EINVAL);
  EXPECT_NE(r.status().detail().find("63"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(PlanLayout(2 * kGiB, kMiB, std::string("a\0b", 3)).status().code(), EINVAL);
}

TEST(PlanLayoutTest, DeviceSizeMustBeWholeBlocks) {
  EXPECT_EQ(PlanLayout(2 * kGiB + 512, kMiB, "").status().code(), EINVAL);
}

TEST(PlanLayoutTest, EachVolumeGetsItsOwnUuid) {
  EXPECT_NE(Planned().uuid, Planned().uuid);
}

TEST(UuidTest, RandomUuidsAreVersion4AndDistinct) {
  std::set<Uuid> seen;
  for (int i = 0; i < 100; ++i) {
    const Uuid u = RandomUuid();
    EXPECT_EQ(u[6] >> 4, 4) << UuidToString(u);
    EXPECT_EQ(u[8] >> 6, 2) << UuidToString(u);
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(UuidTest, PrintsTheUsualForm) {
  Uuid u;
  for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<uint8_t>(i * 17);
  EXPECT_EQ(UuidToString(u), "00112233-4455-6677-8899-aabbccddeeff");
  EXPECT_EQ(UuidToString(Uuid{}), "00000000-0000-0000-0000-000000000000");
}

// Pins the byte layout: if a field moves, this fails even when encode and
// decode still agree with each other.
TEST(SuperblockEncodingTest, GoldenBytes) {
  Superblock sb;
  sb.copy = 1;
  sb.compat_features = 0x0102030405060708ull;
  sb.ro_compat_features = 0x11;
  sb.incompat_features = 0;
  for (size_t i = 0; i < sb.uuid.size(); ++i) sb.uuid[i] = static_cast<uint8_t>(0xA0 + i);
  sb.label = "golden";
  sb.alloc_unit = kMiB;
  sb.device_size = 64 * kMiB;
  sb.ckpt_offset[0] = 4096;
  sb.ckpt_offset[1] = 4096 + 4 * kMiB;
  sb.ckpt_size = 4 * kMiB;
  sb.log_offset = 4096 + 8 * kMiB;
  sb.log_size = 4 * kMiB;
  sb.data_offset = 13 * kMiB;
  sb.data_size = 50 * kMiB;
  sb.created_ns = 1'700'000'000'123'456'789;
  const Block b = Encode(sb);
  const std::byte* p = b.data();

  EXPECT_EQ(std::memcmp(p, "NVSWAPFS", 8), 0);
  EXPECT_EQ(LoadLe32(p + 8), 1u);
  EXPECT_EQ(LoadLe32(p + 12), 1u);
  EXPECT_EQ(LoadLe64(p + 16), 0x0102030405060708ull);
  EXPECT_EQ(p[16], std::byte{0x08}) << "little-endian";
  EXPECT_EQ(LoadLe64(p + 24), 0x11u);
  EXPECT_EQ(LoadLe64(p + 32), 0u);
  EXPECT_EQ(p[40], std::byte{0xA0});
  EXPECT_EQ(p[55], std::byte{0xAF});
  EXPECT_EQ(std::memcmp(p + 56, "golden", 6), 0);
  for (size_t i = 62; i < 120; ++i) EXPECT_EQ(p[i], std::byte{0}) << "label padding at " << i;
  EXPECT_EQ(LoadLe32(p + 120), 4096u);
  EXPECT_EQ(LoadLe32(p + 124), 0u);
  EXPECT_EQ(LoadLe64(p + 128), kMiB);
  EXPECT_EQ(LoadLe64(p + 136), 64 * kMiB);
  EXPECT_EQ(LoadLe64(p + 144), 4096u);
  EXPECT_EQ(LoadLe64(p + 152), 4096 + 4 * kMiB);
  EXPECT_EQ(LoadLe64(p + 160), 4 * kMiB);
  EXPECT_EQ(LoadLe64(p + 168), 4096 + 8 * kMiB);
  EXPECT_EQ(LoadLe64(p + 176), 4 * kMiB);
  EXPECT_EQ(LoadLe64(p + 184), 13 * kMiB);
  EXPECT_EQ(LoadLe64(p + 192), 50 * kMiB);
  EXPECT_EQ(LoadLe64(p + 200), 1'700'000'000'123'456'789u);
  for (size_t i = 208; i < 4092; ++i) ASSERT_EQ(p[i], std::byte{0}) << "reserved byte " << i;
  EXPECT_EQ(LoadLe32(p + 4092), Crc32c(std::span(b).first(4092)));
  EXPECT_EQ(LoadLe32(p + 4092), 0xF44EFB21u)
      << "computed independently from the table in superblock.h";

  Result<Superblock> back = DecodeSuperblock(b, 64 * kMiB, "backup superblock");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameSuperblock(*back, sb);
}

TEST(SuperblockEncodingTest, RoundTripsVariedFields) {
  for (int i = 0; i < 50; ++i) {
    Superblock sb = Planned((2 + i) * kGiB, uint64_t{64 * kKiB} << (i % 11),
                            std::string(static_cast<size_t>(i), static_cast<char>('a' + i % 26)));
    sb.copy = static_cast<uint32_t>(i % 2);
    sb.compat_features = ~uint64_t{0} >> i;    // unknown compat bits are ignored
    sb.ro_compat_features = uint64_t{1} << i;  // and ro_compat bits decoded
    sb.created_ns = -i;
    const Block b = Encode(sb);
    Result<Superblock> back = DecodeSuperblock(b, sb.device_size, "primary superblock");
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ExpectSameSuperblock(*back, sb);
  }
}

TEST(SuperblockEncodingTest, LabelOfMaximumLength) {
  const Superblock sb = Planned(2 * kGiB, kMiB, std::string(63, 'L'));
  Result<Superblock> back = DecodeSuperblock(Encode(sb), 0, "primary superblock");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->label, std::string(63, 'L'));
}

TEST(SuperblockDecodeTest, ShortBlockIsInvalid) {
  const Block b = Encode(Planned());
  Result<Superblock> r = DecodeSuperblock(std::span(b).first(4095), 0, "primary superblock");
  EXPECT_EQ(r.status().code(), EINVAL);
  EXPECT_EQ(DecodeSuperblock({}, 0, "x").status().code(), EINVAL);
}

TEST(SuperblockDecodeTest, BadMagic) {
  Block b = Encode(Planned());
  b[3] = std::byte{'X'};
  Reseal(b);
  const Status s = DecodeStatus(b);
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_EQ(s.detail(), "bad magic: not an nvswapfs superblock");
  EXPECT_FALSE(HasSuperblockMagic(b));
  Block zeros{};
  EXPECT_EQ(DecodeStatus(zeros).detail(), "bad magic: not an nvswapfs superblock");
}

TEST(SuperblockDecodeTest, BadChecksumMessage) {
  Block b = Encode(Planned());
  b[100] ^= std::byte{0x40};
  const Status s = DecodeStatus(b);
  EXPECT_EQ(s.ToString(),
            "read superblock failed on \"primary superblock\": Invalid argument (bad checksum) "
            "(errno 22)");
  EXPECT_TRUE(HasSuperblockMagic(b)) << "the magic survives; only the checksum tells";
}

TEST(SuperblockDecodeTest, EverySingleByteCorruptionIsRejected) {
  const Block good = Encode(Planned());
  ASSERT_TRUE(DecodeStatus(good).ok());
  std::vector<size_t> offsets;
  for (size_t i = 0; i < 208; ++i) offsets.push_back(i);
  for (size_t i = 4092; i < 4096; ++i) offsets.push_back(i);
  offsets.push_back(208);
  offsets.push_back(2000);
  offsets.push_back(4091);
  for (size_t at : offsets) {
    for (uint8_t flip : {0x01, 0x80, 0xFF, 0x5A}) {
      Block b = good;
      b[at] ^= std::byte{flip};
      const Status s = DecodeStatus(b);
      ASSERT_FALSE(s.ok()) << "offset " << at << " xor " << int{flip};
      EXPECT_EQ(s.code(), EINVAL) << s.ToString();
    }
  }
}

TEST(SuperblockDecodeTest, NewerFormatVersionIsNotSupported) {
  Superblock sb = Planned();
  sb.format_version = 2;
  const Status s = DecodeStatus(Encode(sb));
  EXPECT_EQ(s.code(), EPROTONOSUPPORT);
  EXPECT_EQ(s.detail(), "format version 2 is not supported (this build reads version 1)");
  sb.format_version = 0;
  EXPECT_EQ(DecodeStatus(Encode(sb)).code(), EPROTONOSUPPORT);
}

TEST(SuperblockDecodeTest, UnknownIncompatibleFeatureRefuses) {
  Superblock sb = Planned();
  sb.incompat_features = uint64_t{1} << 40;
  const Status s = DecodeStatus(Encode(sb));
  EXPECT_EQ(s.code(), EPROTONOSUPPORT);
  EXPECT_NE(s.detail().find("0x10000000000"), std::string::npos) << s.ToString();
}

TEST(SuperblockDecodeTest, UnknownCompatAndRoCompatFeaturesAreAccepted) {
  Superblock sb = Planned();
  sb.compat_features = ~uint64_t{0};
  sb.ro_compat_features = ~uint64_t{0};
  Result<Superblock> back = DecodeSuperblock(Encode(sb), 0, "primary superblock");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ro_compat_features, ~uint64_t{0}) << "the mount decides what to do with them";
}

TEST(SuperblockDecodeTest, DeviceSizeMismatch) {
  const Superblock sb = Planned(2 * kGiB);
  const Block b = Encode(sb);
  EXPECT_TRUE(DecodeStatus(b, 2 * kGiB).ok());
  EXPECT_TRUE(DecodeStatus(b, 0).ok()) << "0 means: do not compare";
  const Status s = DecodeStatus(b, 4 * kGiB);
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_EQ(s.detail(), "device is 4294967296 bytes but the superblock says 2147483648");
}

TEST(SuperblockDecodeTest, ErrorsNameTheCopy) {
  Block b = Encode(Planned());
  b[9] ^= std::byte{1};
  const Status s = DecodeSuperblock(b, 0, "backup superblock").status();
  EXPECT_EQ(s.op(), "read superblock");
  EXPECT_EQ(s.subject(), "backup superblock");
}

// Blocks with a correct checksum but a broken layout: what a buggy mkfs, or a
// different program using the same magic, could leave behind.
class SuperblockLayoutTest : public ::testing::Test {
 protected:
  Status DecodeWith(void (*mutate)(Superblock&)) {
    Superblock sb = Planned(2 * kGiB, kMiB);
    mutate(sb);
    return DecodeStatus(Encode(sb));
  }
};

TEST_F(SuperblockLayoutTest, Baseline) {
  EXPECT_TRUE(DecodeWith([](Superblock&) {}).ok());
}

TEST_F(SuperblockLayoutTest, BlockSize) {
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.block_size = 512; }).code(), EINVAL);
}

TEST_F(SuperblockLayoutTest, AllocUnit) {
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.alloc_unit = 0; }).code(), EINVAL);
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.alloc_unit = 3 * kMiB; }).code(), EINVAL);
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.alloc_unit = 128 * kMiB; }).code(), EINVAL);
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.alloc_unit = 32 * kKiB; }).code(), EINVAL);
}

TEST_F(SuperblockLayoutTest, CopyNumber) {
  EXPECT_TRUE(DecodeWith([](Superblock& sb) { sb.copy = 1; }).ok());
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.copy = 2; }).code(), EINVAL);
}

TEST_F(SuperblockLayoutTest, MisalignedRegions) {
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.ckpt_offset[0] += 512; }).code(), EINVAL);
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.ckpt_size -= 512; }).code(), EINVAL);
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.log_size += 1; }).code(), EINVAL);
}

TEST_F(SuperblockLayoutTest, EmptyRegions) {
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.ckpt_size = 0; }).code(), EINVAL);
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.log_size = 0; }).code(), EINVAL);
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.data_size = 0; }).code(), EINVAL);
}

TEST_F(SuperblockLayoutTest, OverlapsAndOrder) {
  // Over the primary superblock.
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.ckpt_offset[0] = 0; }).code(), EINVAL);
  // Slot 1 inside slot 0.
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.ckpt_offset[1] -= 4096; }).code(), EINVAL);
  // Log before the checkpoints.
  EXPECT_EQ(DecodeWith([](Superblock& sb) { std::swap(sb.log_offset, sb.ckpt_offset[0]); }).code(),
            EINVAL);
  // Data over the log.
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.data_offset = sb.log_offset; }).code(), EINVAL);
}

TEST_F(SuperblockLayoutTest, RegionsPastTheEnd) {
  // Data running into the backup superblock.
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.data_size += sb.alloc_unit; }).code(), EINVAL);
  // A size so large that offset + size wraps around.
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.data_size = ~uint64_t{0} - 4095; }).code(), EINVAL);
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.data_offset = ~uint64_t{0} - 4095; }).code(),
            EINVAL);
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.device_size = 4096; }).code(), EINVAL);
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.device_size = 0; }).code(), EINVAL);
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.device_size += 512; }).code(), EINVAL);
}

TEST_F(SuperblockLayoutTest, DataInWholeAllocationUnits) {
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.data_offset += 4096; }).code(), EINVAL);
  EXPECT_EQ(DecodeWith([](Superblock& sb) { sb.data_size -= 4096; }).code(), EINVAL);
}

TEST(SuperblockDecodeTest, LabelMustBeTerminatedAndPadded) {
  Block b = Encode(Planned());
  for (size_t i = 56; i < 120; ++i) b[i] = std::byte{'x'};
  Reseal(b);
  EXPECT_EQ(DecodeStatus(b).code(), EINVAL);

  b = Encode(Planned(2 * kGiB, kMiB, "ab"));
  b[60] = std::byte{'z'};  // after the NUL at 58
  Reseal(b);
  EXPECT_EQ(DecodeStatus(b).code(), EINVAL);

  b = Encode(Planned(2 * kGiB, kMiB, "ab"));
  b[119] = std::byte{'z'};  // the 64th byte may only ever be the NUL
  Reseal(b);
  EXPECT_EQ(DecodeStatus(b).code(), EINVAL);
}

TEST(SuperblockDecodeTest, ReservedBytesAreLeftToLaterVersions) {
  // A later compat feature may store fields in the zero area; an older
  // reader must still mount.
  Block b = Encode(Planned());
  b[124] = std::byte{1};
  b[300] = std::byte{7};
  Reseal(b);
  EXPECT_TRUE(DecodeStatus(b).ok());
}

}  // namespace
}  // namespace nvswapfs::fs
