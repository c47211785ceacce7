// The data nvswapfs-bench writes, and the checks that it came back intact.
//
// Every 8-byte word holds a mix of its own file offset and a seed, so a piece
// written to (or read from) the wrong offset, a torn piece, or a stale buffer
// all show up as a mismatch at the first wrong byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "nvswapfs/status.h"

namespace nvswapfs::bench {

// Fills `data`, which stands for the file range starting at `file_offset`
// (a multiple of 8), with the pattern.
void FillPattern(std::span<std::byte> data, uint64_t file_offset);

// The file offset of the first byte of `data` (standing for the range at
// `file_offset`) that differs from the pattern; nullopt when all match.
std::optional<uint64_t> FindMismatch(std::span<const std::byte> data, uint64_t file_offset);

// Reads [0, size) of `path` through the page cache with plain read() calls
// (deliberately not the engine's O_DIRECT path) and compares it with the
// pattern. Returns the first mismatching offset, nullopt when all match, or
// the error that stopped the read. Drops the pages it read from the cache
// afterwards so later direct-I/O runs start from the same state.
Result<std::optional<uint64_t>> CheckFileAgainstPattern(const std::string& path, uint64_t size);

}  // namespace nvswapfs::bench
