#include "nvswapfs/histogram.h"

#include <gtest/gtest.h>

namespace nvswapfs {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(0.5), 0u);
}

TEST(LatencyHistogramTest, PercentilesAreWithinTheBucketError) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 10000; ++v) h.Record(v * 1000);  // 1 us .. 10 ms
  EXPECT_EQ(h.count(), 10000u);
  const double p50 = static_cast<double>(h.Percentile(0.5));
  const double p99 = static_cast<double>(h.Percentile(0.99));
  EXPECT_GE(p50, 5'000'000.0);
  EXPECT_LE(p50, 5'000'000.0 * 1.26);
  EXPECT_GE(p99, 9'900'000.0);
  EXPECT_LE(p99, 9'900'000.0 * 1.26);
  EXPECT_LE(h.Percentile(0.5), h.Percentile(0.99));
}

TEST(LatencyHistogramTest, MergeAddsCounts) {
  LatencyHistogram a, b;
  a.Record(10);
  b.Record(1'000'000);
  b.Record(2'000'000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_GE(a.Percentile(1.0), 2'000'000u);
}

TEST(LatencyHistogramTest, RecordsTheTimeBetweenTwoPoints) {
  LatencyHistogram h;
  const auto start = std::chrono::steady_clock::now();
  h.RecordBetween(start, start + std::chrono::milliseconds(3));
  EXPECT_EQ(h.count(), 1u);
  EXPECT_GE(h.Percentile(1.0), 3'000'000u);
  EXPECT_LE(h.Percentile(1.0), 3'000'000u * 5 / 4);
  h.RecordSince(start);
  EXPECT_EQ(h.count(), 2u);
}

TEST(LatencyHistogramTest, HandlesExtremes) {
  LatencyHistogram h;
  h.Record(0);
  h.Record(UINT64_MAX);
  EXPECT_EQ(h.Percentile(0.5), 0u);
  EXPECT_EQ(h.Percentile(1.0), UINT64_MAX);
}

}  // namespace
}  // namespace nvswapfs
