// The two CRC-32C implementations behind Crc32c(), exposed so that tests can
// check that they agree on every machine, whichever one Crc32c() picks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace nvswapfs::fs::internal {

// Table-driven, runs anywhere.
uint32_t Crc32cPortable(std::span<const std::byte> data, uint32_t seed);

// True when the CPU has the SSE4.2 crc32 instruction.
bool HaveHardwareCrc32c();

// Uses the crc32 instruction. Precondition: HaveHardwareCrc32c().
uint32_t Crc32cHardware(std::span<const std::byte> data, uint32_t seed);

}  // namespace nvswapfs::fs::internal
