// The daemon's request loop: worker threads that read FUSE requests into
// aligned buffers of their own, so that a write's bytes can go to the device
// from where the kernel put them.
#pragma once

#include <fuse3/fuse_lowlevel.h>

#include <cstddef>
#include <memory>
#include <span>

#include "nvswapfs/status.h"

namespace nvswapfs::fuse::internal {

// Serves `se` on `threads` threads until the filesystem is unmounted or
// StopServing() is called. Fails only if it cannot start, or if reading the
// FUSE device fails for another reason than the unmount.
Status Serve(fuse_session* se, size_t threads);

// Makes Serve return: async-signal-safe (what SIGINT, SIGTERM and SIGHUP
// call).
void StopServing();

// Installs the handlers that stop serving on SIGINT, SIGTERM and SIGHUP, and
// ignores SIGPIPE (a client that went away), for the guard's life.
class StopSignals {
 public:
  explicit StopSignals(fuse_session* se);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
};

// Called from a write callback run by Serve, with the bytes libfuse handed
// it: gives the caller the buffer they lie in, to keep for as long as it
// needs them (the worker reads its next request into another one), and the
// same bytes, writable. Returns nullptr (and leaves `bytes` alone) when
// they are not in such a buffer.
std::shared_ptr<void> TakeRequestBuffer(const char* data, size_t size, std::span<std::byte>* bytes);

}  // namespace nvswapfs::fuse::internal
