// Helpers shared by the engine tests: scratch directories, image files and
// deterministic data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nvswapfs/aio/buffer.h"

namespace nvswapfs::aio::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its content.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Creates a sparse image file of `size` bytes; fails the test on error.
std::string MakeImage(const TempDir& dir, const std::string& name, uint64_t size);

// Fills `out` with bytes that depend on `seed` and on each byte's position.
void FillPattern(std::byte* out, size_t size, uint64_t seed);

// An aligned buffer of `size` bytes holding FillPattern(seed).
AlignedBuffer PatternBuffer(size_t size, uint64_t seed);

// Reads a file through the page cache, as a user's tool would.
std::vector<std::byte> ReadPlain(const std::string& path, uint64_t offset, size_t length);

// Writes a file through the page cache and syncs it.
void WritePlain(const std::string& path, uint64_t offset, const std::byte* data, size_t length);

}  // namespace nvswapfs::aio::testing
