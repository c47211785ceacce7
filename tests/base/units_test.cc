#include "nvswapfs/units.h"

#include <gtest/gtest.h>

namespace nvswapfs {
namespace {

uint64_t Parse(const char* text) {
  auto r = ParseSize(text, "size");
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
  return r.ok() ? *r : 0;
}

TEST(ParseSizeTest, AcceptsPlainNumbersAndBinarySuffixes) {
  EXPECT_EQ(Parse("4096"), 4096u);
  EXPECT_EQ(Parse("0"), 0u);
  EXPECT_EQ(Parse("64K"), 64 * kKiB);
  EXPECT_EQ(Parse("64k"), 64 * kKiB);
  EXPECT_EQ(Parse("1M"), kMiB);
  EXPECT_EQ(Parse("1MiB"), kMiB);
  EXPECT_EQ(Parse("1MB"), kMiB);
  EXPECT_EQ(Parse("2G"), 2 * kGiB);
  EXPECT_EQ(Parse("3T"), 3 * 1024 * kGiB);
  EXPECT_EQ(Parse("512B"), 512u);
}

TEST(ParseSizeTest, RejectsJunkWithTheOptionName) {
  for (const char* bad : {"", "M", "1X", "1.5G", "-1", "1 G", "12MiBs", "99999999999999999999"}) {
    auto r = ParseSize(bad, "--block-size");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), EINVAL);
    EXPECT_NE(r.status().ToString().find("--block-size"), std::string::npos);
  }
}

TEST(ParseSizeTest, RejectsOverflowingSuffix) {
  EXPECT_FALSE(ParseSize("20000000P", "size").ok());
}

TEST(FormatSizeTest, PicksTheLargestExactUnit) {
  EXPECT_EQ(FormatSize(512), "512 B");
  EXPECT_EQ(FormatSize(4096), "4 KiB");
  EXPECT_EQ(FormatSize(kMiB), "1 MiB");
  EXPECT_EQ(FormatSize(kGiB + kGiB / 2), "1.50 GiB");
}

TEST(AlignmentTest, Helpers) {
  EXPECT_TRUE(IsPowerOfTwo(4096));
  EXPECT_FALSE(IsPowerOfTwo(0));
  EXPECT_FALSE(IsPowerOfTwo(3 * 1024));
  EXPECT_EQ(RoundUp(4097, 4096), 8192u);
  EXPECT_EQ(RoundDown(8191, 4096), 4096u);
}

}  // namespace
}  // namespace nvswapfs
