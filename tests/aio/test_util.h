// Helpers shared by the engine tests: scratch directories, image files and
// deterministic data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nvswapfs/aio/buffer.h"
#include "nvswapfs/aio/syscalls.h"

namespace nvswapfs::aio::testing {

// Passes every call on to `inner`: the base of devices in tests that watch
// or steer some calls and leave the rest alone.
class Forwarding : public Syscalls {
 public:
  explicit Forwarding(Syscalls& inner) : inner_(inner) {}
  int Setup(unsigned max_events, io_context_t* ctx) override {
    return inner_.Setup(max_events, ctx);
  }
  int Destroy(io_context_t ctx) override { return inner_.Destroy(ctx); }
  int Submit(io_context_t ctx, long n, struct iocb** iocbs) override {
    return inner_.Submit(ctx, n, iocbs);
  }
  int GetEvents(io_context_t ctx, long min_nr, long nr, struct io_event* events,
                struct timespec* timeout) override {
    return inner_.GetEvents(ctx, min_nr, nr, events, timeout);
  }
  ssize_t Pread(int fd, void* buf, size_t count, off_t offset) override {
    return inner_.Pread(fd, buf, count, offset);
  }
  ssize_t Pwrite(int fd, const void* buf, size_t count, off_t offset) override {
    return inner_.Pwrite(fd, buf, count, offset);
  }
  int Flush(int fd) override { return inner_.Flush(fd); }

 protected:
  Syscalls& inner_;
};

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
