#include "nvswapfs/fs/codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "fs/format/crc32c_internal.h"

namespace nvswapfs::fs {
namespace {

std::span<const std::byte> AsBytes(std::string_view s) {
  return std::as_bytes(std::span(s));
}

std::vector<std::byte> RandomBytes(std::mt19937_64& rng, size_t n) {
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

TEST(Crc32cTest, MatchesPublishedVectors) {
  EXPECT_EQ(Crc32c(AsBytes("123456789")), 0xE3069283u);
  EXPECT_EQ(Crc32c({}), 0u);
  // The iSCSI test patterns of RFC 3720, appendix B.4.
  std::vector<std::byte> zeros(32, std::byte{0});
  std::vector<std::byte> ones(32, std::byte{0xFF});
  std::vector<std::byte> ascending(32);
  for (size_t i = 0; i < ascending.size(); ++i) ascending[i] = static_cast<std::byte>(i);
  EXPECT_EQ(Crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32cTest, PortablePathMatchesPublishedVectors) {
  EXPECT_EQ(internal::Crc32cPortable(AsBytes("123456789"), 0), 0xE3069283u);
  EXPECT_EQ(internal::Crc32cPortable({}, 0), 0u);
}

TEST(Crc32cTest, SeedChainsPieces) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    const auto data = RandomBytes(rng, rng() % 600);
    const size_t split = data.empty() ? 0 : rng() % (data.size() + 1);
    const std::span<const std::byte> all(data);
    const uint32_t whole = Crc32c(all);
    EXPECT_EQ(Crc32c(all.subspan(split), Crc32c(all.first(split))), whole) << "split " << split;
    EXPECT_EQ(
        internal::Crc32cPortable(all.subspan(split), internal::Crc32cPortable(all.first(split), 0)),
        whole);
  }
}

TEST(Crc32cTest, HardwareAndPortableAgree) {
  if (!internal::HaveHardwareCrc32c()) {
    GTEST_SKIP() << "this CPU has no SSE4.2 crc32 instruction; only the portable path runs here";
  }
  std::mt19937_64 rng(11);
  for (int round = 0; round < 2000; ++round) {
    // Odd lengths and offsets exercise the unaligned head and the byte tail.
    const auto data = RandomBytes(rng, rng() % 1100);
    const size_t skip = data.empty() ? 0 : rng() % std::min<size_t>(data.size(), 9);
    const auto piece = std::span<const std::byte>(data).subspan(skip);
    const auto seed = static_cast<uint32_t>(rng());
    ASSERT_EQ(internal::Crc32cHardware(piece, seed), internal::Crc32cPortable(piece, seed))
        << "round " << round << " length " << piece.size();
  }
}

TEST(Crc32cTest, DetectsEverySingleBitFlip) {
  std::mt19937_64 rng(3);
  auto data = RandomBytes(rng, 256);
  const uint32_t good = Crc32c(data);
  for (size_t bit = 0; bit < data.size() * 8; ++bit) {
    data[bit / 8] ^= std::byte{1} << (bit % 8);
    EXPECT_NE(Crc32c(data), good) << "bit " << bit;
    data[bit / 8] ^= std::byte{1} << (bit % 8);
  }
}

TEST(EncoderTest, WritesLittleEndianFixedWidthFields) {
  std::vector<std::byte> out;
  Encoder e(&out);
  e.U8(0xAB);
  e.U16(0x0102);
  e.U32(0x03040506);
  e.U64(0x0708090A0B0C0D0Eull);
  e.I64(-2);
  const std::vector<uint8_t> expected = {
      0xAB,                                            // u8
      0x02, 0x01,                                      // u16
      0x06, 0x05, 0x04, 0x03,                          // u32
      0x0E, 0x0D, 0x0C, 0x0B, 0x0A, 0x09, 0x08, 0x07,  // u64
      0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  // i64 -2
  };
  ASSERT_EQ(out.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(static_cast<uint8_t>(out[i]), expected[i]) << "byte " << i;
  }
  EXPECT_EQ(e.size(), expected.size());
}

TEST(EncoderTest, StringsCarryTheirLength) {
  std::vector<std::byte> out;
  Encoder e(&out);
  e.String8("ab");
  e.String16("xyz");
  const std::vector<uint8_t> expected = {2, 'a', 'b', 3, 0, 'x', 'y', 'z'};
  ASSERT_EQ(out.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(static_cast<uint8_t>(out[i]), expected[i]);
}

TEST(EncoderTest, OverlongStringsAreCutSoTheFramingHolds) {
  std::vector<std::byte> out;
  Encoder e(&out);
  e.String8(std::string(300, 'n'));
  e.U8(0x5A);
  Decoder d(out);
  EXPECT_EQ(d.String8(), std::string(255, 'n'));
  EXPECT_EQ(d.U8(), 0x5A);
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(EncoderTest, PadToAndPatch) {
  std::vector<std::byte> out;
  Encoder e(&out);
  e.U8(1);
  e.U32(0);
  e.PadTo(16);
  EXPECT_EQ(out.size(), 16u);
  e.PadTo(16);
  EXPECT_EQ(out.size(), 16u) << "already aligned: no padding";
  e.PatchU32(1, 0xDEADBEEF);
  EXPECT_EQ(LoadLe32(out.data() + 1), 0xDEADBEEFu);
  for (size_t i = 5; i < out.size(); ++i) EXPECT_EQ(out[i], std::byte{0});
  e.PatchU32(14, 1);  // would run past the end: ignored
  EXPECT_EQ(out.size(), 16u);
}

TEST(DecoderTest, RoundTripsEveryFieldKind) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 100; ++round) {
    const auto a = static_cast<uint8_t>(rng());
    const auto b = static_cast<uint16_t>(rng());
    const auto c = static_cast<uint32_t>(rng());
    const uint64_t d64 = rng();
    const auto i = static_cast<int64_t>(rng());
    const std::string s8(rng() % 256, static_cast<char>(rng()));
    const std::string s16(rng() % 5000, static_cast<char>(rng()));
    std::vector<std::byte> out;
    Encoder e(&out);
    e.U8(a);
    e.U16(b);
    e.U32(c);
    e.U64(d64);
    e.I64(i);
    e.String8(s8);
    e.String16(s16);
    e.Bytes(AsBytes("raw"));
    Decoder d(out);
    EXPECT_EQ(d.U8(), a);
    EXPECT_EQ(d.U16(), b);
    EXPECT_EQ(d.U32(), c);
    EXPECT_EQ(d.U64(), d64);
    EXPECT_EQ(d.I64(), i);
    EXPECT_EQ(d.String8(), s8);
    EXPECT_EQ(d.String16(), s16);
    const auto raw = d.Bytes(3);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(raw.data()), raw.size()), "raw");
    EXPECT_TRUE(d.ok());
    EXPECT_EQ(d.remaining(), 0u);
  }
}

TEST(DecoderTest, OverrunStopsEveryLaterRead) {
  const std::vector<std::byte> in = {std::byte{1}, std::byte{2}, std::byte{3}};
  Decoder d(in);
  EXPECT_EQ(d.U16(), 0x0201);
  EXPECT_EQ(d.U32(), 0u) << "only one byte left";
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(d.remaining(), 0u);
  EXPECT_EQ(d.U8(), 0u) << "the byte that was left is not handed out after an overrun";
  EXPECT_TRUE(d.Bytes(1).empty());
  EXPECT_EQ(d.String8(), "");
  EXPECT_FALSE(d.ok());
}

TEST(DecoderTest, StringLongerThanInputIsAnOverrun) {
  const std::vector<std::byte> in = {std::byte{10}, std::byte{'a'}, std::byte{'b'}};
  Decoder d(in);
  EXPECT_EQ(d.String8(), "");
  EXPECT_FALSE(d.ok());
}

TEST(DecoderTest, HugeLengthDoesNotWrapTheBoundsCheck) {
  const std::vector<std::byte> in(16);
  Decoder d(in);
  d.Skip(4);
  EXPECT_TRUE(d.Bytes(SIZE_MAX - 2).empty());
  EXPECT_FALSE(d.ok());
}

TEST(DecoderTest, EmptyInput) {
  Decoder d({});
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.remaining(), 0u);
  EXPECT_TRUE(d.Bytes(0).empty());
  EXPECT_TRUE(d.ok()) << "reading nothing from nothing is fine";
  EXPECT_EQ(d.U8(), 0u);
  EXPECT_FALSE(d.ok());
}

TEST(LittleEndianTest, StoreAndLoadAtFixedOffsets) {
  std::byte block[16] = {};
  StoreLe32(block + 1, 0x11223344);
  StoreLe64(block + 5, 0x5566778899AABBCCull);
  EXPECT_EQ(block[1], std::byte{0x44});
  EXPECT_EQ(block[4], std::byte{0x11});
  EXPECT_EQ(block[5], std::byte{0xCC});
  EXPECT_EQ(block[12], std::byte{0x55});
  EXPECT_EQ(block[0], std::byte{0});
  EXPECT_EQ(block[13], std::byte{0});
  EXPECT_EQ(LoadLe32(block + 1), 0x11223344u);
  EXPECT_EQ(LoadLe64(block + 5), 0x5566778899AABBCCull);
}

}  // namespace
}  // namespace nvswapfs::fs
