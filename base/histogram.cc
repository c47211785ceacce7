#include "nvswapfs/histogram.h"

#include <bit>
#include <cmath>

namespace nvswapfs {

int LatencyHistogram::BucketOf(uint64_t nanos) {
  if (nanos < kSubBuckets) return static_cast<int>(nanos);
  const int msb = 63 - std::countl_zero(nanos);  // >= 2
  // The two bits below the leading one pick the sub-bucket.
  const int sub = static_cast<int>((nanos >> (msb - 2)) & (kSubBuckets - 1));
  return msb * kSubBuckets + sub;
}

uint64_t LatencyHistogram::UpperBound(int bucket) {
  if (bucket < kSubBuckets) return static_cast<uint64_t>(bucket);
  const int msb = bucket / kSubBuckets;
  const uint64_t sub = static_cast<uint64_t>(bucket % kSubBuckets);
  const uint64_t base = uint64_t{1} << msb;
  const uint64_t step = base / kSubBuckets;
  return base + (sub + 1) * step - 1;
}

void LatencyHistogram::Record(uint64_t nanos) {
  buckets_[static_cast<size_t>(BucketOf(nanos))].fetch_add(1, std::memory_order_relaxed);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) {
    const uint64_t n = other.buckets_[static_cast<size_t>(i)].load(std::memory_order_relaxed);
    if (n != 0) buckets_[static_cast<size_t>(i)].fetch_add(n, std::memory_order_relaxed);
  }
}

uint64_t LatencyHistogram::count() const {
  uint64_t total = 0;
  for (const auto& b : buckets_) total += b.load(std::memory_order_relaxed);
  return total;
}

uint64_t LatencyHistogram::Percentile(double q) const {
  const uint64_t total = count();
  if (total == 0) return 0;
  const auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[static_cast<size_t>(i)].load(std::memory_order_relaxed);
    if (seen >= rank && seen > 0) return UpperBound(i);
  }
  return UpperBound(kBuckets - 1);
}

}  // namespace nvswapfs
