// The seam between the engines and the kernel.
//
// Every system call the engines make on the backing device goes through a
// Syscalls object. Production uses Syscalls::System(), which calls libaio and
// libc directly; tests substitute a FaultInjector (fault_injector.h) to make
// the device fail, transfer short, or lose unflushed writes.
//
// Every method follows libaio's convention: a negative errno on failure,
// otherwise the call's ordinary result. Implementations must be thread-safe.
#pragma once

#include <libaio.h>
#include <sys/types.h>

namespace nvswapfs::aio {

class Syscalls {
 public:
  virtual ~Syscalls() = default;

  virtual int Setup(unsigned max_events, io_context_t* ctx);
  // Precondition: no control block of `ctx` is in flight. May return before
  // the kernel has finished tearing the context down.
  virtual int Destroy(io_context_t ctx);
  // Returns how many of the `n` control blocks were queued (possibly fewer).
  virtual int Submit(io_context_t ctx, long n, struct iocb** iocbs);
  virtual int GetEvents(io_context_t ctx, long min_nr, long nr, struct io_event* events,
                        struct timespec* timeout);
  virtual ssize_t Pread(int fd, void* buf, size_t count, off_t offset);
  virtual ssize_t Pwrite(int fd, const void* buf, size_t count, off_t offset);
  // Makes every completed write durable (the device's cache flush).
  virtual int Flush(int fd);

  // The process-wide instance that talks to the kernel.
  static Syscalls& System();
};

}  // namespace nvswapfs::aio
