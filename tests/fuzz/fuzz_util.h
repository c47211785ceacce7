// Shared by the fuzz targets and the seed corpus generator.
//
// Checksums stop almost every random mutation at the first check, so each
// target also decodes a copy whose checksums have been recomputed: that copy
// is what lets the fuzzer reach the field, layout and record checks behind
// them. The offsets below restate the tables in superblock.h and journal.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "nvswapfs/fs/codec.h"
#include "nvswapfs/fs/superblock.h"

namespace nvswapfs::fuzz {

// The volume every seed belongs to, so that seeds pass the uuid check.
constexpr fs::Uuid kVolume = {0x6e, 0x76, 0x73, 0x77, 0x61, 0x70, 0x66, 0x73,
                              0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x21, 0x00, 0x01};
constexpr uint64_t kDeviceSize = 2ull << 30;

// A property the decoders promise was broken: stop so that libFuzzer saves
// the input.
#define NVSWAPFS_FUZZ_CHECK(cond)                                                   \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

// Stores the crc32c of bytes [from, from + length) at `at`, when both lie
// inside `data`.
inline void Reseal(std::span<std::byte> data, size_t at, size_t from, uint64_t length) {
  if (at + 4 > data.size() || from > data.size() || length > data.size() - from) return;
  fs::StoreLe32(data.data() + at, fs::Crc32c(data.subspan(from, length)));
}

inline void ResealSuperblock(std::span<std::byte> block) {
  Reseal(block, fs::kBlockSize - 4, 0, fs::kBlockSize - 4);
}

// Payload crc at 48 over the payload length at 32, then the header crc at 60.
inline void ResealCommit(std::span<std::byte> commit) {
  if (commit.size() < 64) return;
  Reseal(commit, 48, 64, fs::LoadLe32(commit.data() + 32));
  Reseal(commit, 60, 0, 60);
}

// Body crc at 60 over the body length at 48 (the body starts a block in),
// then the header crc at 124.
inline void ResealCheckpoint(std::span<std::byte> slot) {
  if (slot.size() < fs::kBlockSize) return;
  Reseal(slot, 60, fs::kBlockSize, fs::LoadLe64(slot.data() + 48));
  Reseal(slot, 124, 0, 124);
}

}  // namespace nvswapfs::fuzz
