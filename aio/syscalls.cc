#include "nvswapfs/aio/syscalls.h"

#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <thread>

namespace nvswapfs::aio {

int Syscalls::Setup(unsigned max_events, io_context_t* ctx) {
  return io_setup(static_cast<int>(max_events), ctx);
}

int Syscalls::Destroy(io_context_t ctx) {
  // io_destroy waits for an RCU grace period (about 30 ms on this kernel)
  // even though nothing is left to wait for: the engines destroy a context
  // only after reaping every control block. Let it finish on its own rather
  // than make every engine's shutdown pay for it.
  try {
    std::thread([ctx] { io_destroy(ctx); }).detach();
    return 0;
  } catch (const std::system_error&) {
    return io_destroy(ctx);
  }
}

int Syscalls::Submit(io_context_t ctx, long n, struct iocb** iocbs) {
  return io_submit(ctx, n, iocbs);
}

int Syscalls::GetEvents(io_context_t ctx, long min_nr, long nr, struct io_event* events,
                        struct timespec* timeout) {
  return io_getevents(ctx, min_nr, nr, events, timeout);
}

ssize_t Syscalls::Pread(int fd, void* buf, size_t count, off_t offset) {
  const ssize_t n = ::pread(fd, buf, count, offset);
  return n < 0 ? -errno : n;
}

ssize_t Syscalls::Pwrite(int fd, const void* buf, size_t count, off_t offset) {
  const ssize_t n = ::pwrite(fd, buf, count, offset);
  return n < 0 ? -errno : n;
}

int Syscalls::Flush(int fd) {
  return ::fdatasync(fd) == 0 ? 0 : -errno;
}

Syscalls& Syscalls::System() {
  static Syscalls instance;
  return instance;
}

}  // namespace nvswapfs::aio
