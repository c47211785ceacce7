// A fixed-size, log-scaled latency histogram: constant memory however many
// samples it takes, about 19% relative error on percentiles (4 buckets per
// power of two). Any number of threads may record and read at once: each
// bucket is an atomic counter, so no sample is lost.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace nvswapfs {

class LatencyHistogram {
 public:
  void Record(uint64_t nanos);
  // The time from `from` to `to`, or to now.
  void RecordBetween(std::chrono::steady_clock::time_point from,
                     std::chrono::steady_clock::time_point to) {
    Record(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count()));
  }
  void RecordSince(std::chrono::steady_clock::time_point from) {
    RecordBetween(from, std::chrono::steady_clock::now());
  }
  // Adds every sample of `other` (read once, not atomically as a whole).
  void Merge(const LatencyHistogram& other);
  uint64_t count() const;
  // The upper bound of the bucket holding quantile q (0 < q <= 1), in ns;
  // 0 when empty.
  uint64_t Percentile(double q) const;

 private:
  static constexpr int kSubBuckets = 4;
  static constexpr int kBuckets = 64 * kSubBuckets;
  static int BucketOf(uint64_t nanos);
  static uint64_t UpperBound(int bucket);
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
};

}  // namespace nvswapfs
