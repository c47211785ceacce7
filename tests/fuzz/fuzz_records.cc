// Fuzzes DecodeRecords: whatever the payload holds, decoding must not crash
// or allocate without bound, and a payload it accepts must be exactly the
// encoding of the records it returned (the format has one encoding per
// value, so nothing is silently dropped or normalized).
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fuzz_util.h"
#include "nvswapfs/fs/records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nvswapfs;
  const auto input = std::as_bytes(std::span(data, size));
  Result<std::vector<fs::Record>> records = fs::DecodeRecords(input);
  if (!records.ok()) {
    NVSWAPFS_FUZZ_CHECK(records.status().code() == EINVAL);
    return 0;
  }
  std::vector<std::byte> encoded;
  for (const fs::Record& r : *records) fs::EncodeRecord(r, &encoded);
  NVSWAPFS_FUZZ_CHECK(encoded.size() == input.size());
  NVSWAPFS_FUZZ_CHECK(std::equal(encoded.begin(), encoded.end(), input.begin()));
  return 0;
}
