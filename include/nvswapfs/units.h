// Sizes as users type them ("1M", "64KiB", "2G", "4096") and as we print them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "nvswapfs/status.h"

namespace nvswapfs {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

// Parses a byte count with an optional binary suffix: K, M, G, T (also KiB,
// MiB, ..., and KB/MB/... which mean the same powers of 1024 here, as in dd
// and fio). Rejects empty input, junk, and overflow with EINVAL; `what` names
// the option in the error.
Result<uint64_t> ParseSize(std::string_view text, std::string_view what);

// "1 MiB", "4 KiB", "1.5 GiB", "512 B".
std::string FormatSize(uint64_t bytes);

constexpr bool IsPowerOfTwo(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}
constexpr uint64_t RoundUp(uint64_t v, uint64_t align) {
  return (v + align - 1) / align * align;
}
constexpr uint64_t RoundDown(uint64_t v, uint64_t align) {
  return v / align * align;
}

}  // namespace nvswapfs
