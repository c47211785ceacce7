#include "pattern.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "nvswapfs/unique_fd.h"

namespace nvswapfs::bench {
namespace {

constexpr uint64_t kSeed = 0x6e7673776170ULL;  // "nvswap"
constexpr size_t kWord = sizeof(uint64_t);
constexpr size_t kReadChunk = 4 << 20;

// splitmix64's finaliser: cheap, and neighbouring words share no bytes, so a
// shifted or half-written piece cannot pass for the right one.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t WordAt(uint64_t file_offset) {
  return Mix((file_offset / kWord) ^ kSeed);
}

}  // namespace

void FillPattern(std::span<std::byte> data, uint64_t file_offset) {
  const size_t words = data.size() / kWord;
  for (size_t i = 0; i < words; ++i) {
    const uint64_t word = WordAt(file_offset + i * kWord);
    std::memcpy(data.data() + i * kWord, &word, kWord);
  }
  // A tail shorter than a word gets the leading bytes of its word.
  const size_t tail = data.size() % kWord;
  if (tail != 0) {
    const uint64_t word = WordAt(file_offset + words * kWord);
    std::memcpy(data.data() + words * kWord, &word, tail);
  }
}

std::optional<uint64_t> FindMismatch(std::span<const std::byte> data, uint64_t file_offset) {
  for (size_t at = 0; at < data.size(); at += kWord) {
    const size_t n = std::min(kWord, data.size() - at);
    const uint64_t word = WordAt(file_offset + at);
    if (std::memcmp(data.data() + at, &word, n) == 0) continue;
    const auto* expected = reinterpret_cast<const std::byte*>(&word);
    for (size_t i = 0; i < n; ++i) {
      if (data[at + i] != expected[i]) return file_offset + at + i;
    }
  }
  return std::nullopt;
}

Result<std::optional<uint64_t>> CheckFileAgainstPattern(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("open for validation", path);
  std::vector<std::byte> chunk(kReadChunk);
  uint64_t offset = 0;
  std::optional<uint64_t> mismatch;
  while (offset < size && !mismatch) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kReadChunk, size - offset));
    const ssize_t n = ::read(fd.get(), chunk.data(), want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("read for validation", path).WithRange(offset, want);
    if (n == 0) {
      return Status::Error(EIO, "read for validation", path, offset, want)
          .WithDetail("the file ends before the benchmarked range does");
    }
    mismatch = FindMismatch({chunk.data(), static_cast<size_t>(n)}, offset);
    offset += static_cast<uint64_t>(n);
  }
  // Only advice: failing to drop the cache changes nothing that was checked.
  (void)::posix_fadvise(fd.get(), 0, static_cast<off_t>(size), POSIX_FADV_DONTNEED);
  return mismatch;
}

}  // namespace nvswapfs::bench
