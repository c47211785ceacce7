#include "test_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "nvswapfs/aio/block_device.h"
#include "nvswapfs/unique_fd.h"

namespace nvswapfs::aio::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/nvswapfs-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << tmpl << ": " << std::strerror(errno);
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string MakeImage(const TempDir& dir, const std::string& name, uint64_t size) {
  const std::string path = dir.File(name);
  const Status s = CreateImageFile(path, size, /*preallocate=*/false);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return path;
}

void FillPattern(std::byte* out, size_t size, uint64_t seed) {
  // splitmix64 over the 8-byte word index: cheap, and every word differs.
  for (size_t i = 0; i < size; i += 8) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i / 8 + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    std::memcpy(out + i, &z, std::min<size_t>(8, size - i));
  }
}

AlignedBuffer PatternBuffer(size_t size, uint64_t seed) {
  auto b = AlignedBuffer::Allocate(size);
  EXPECT_TRUE(b.ok());
  FillPattern(b->data(), size, seed);
  return std::move(b).value();
}

std::vector<std::byte> ReadPlain(const std::string& path, uint64_t offset, size_t length) {
  std::vector<std::byte> out(length);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(fd.valid()) << path;
  size_t done = 0;
  while (fd.valid() && done < length) {
    const ssize_t n =
        ::pread(fd.get(), out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  EXPECT_EQ(done, length) << "short plain read of " << path;
  return out;
}

void WritePlain(const std::string& path, uint64_t offset, const std::byte* data, size_t length) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << path;
  ASSERT_EQ(::pwrite(fd.get(), data, length, static_cast<off_t>(offset)),
            static_cast<ssize_t>(length));
  ASSERT_EQ(::fsync(fd.get()), 0);
}

}  // namespace nvswapfs::aio::testing
