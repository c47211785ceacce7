// The I/O engine: how bytes move between memory and the backing device.
//
// Two implementations share this interface:
//  - AioEngine (aio_engine.h): batched, overlapped libaio with O_DIRECT, the
//    one nvswapfs runs on;
//  - SyncEngine (sync_engine.h): plain pread/pwrite, the reference behaviour
//    tests compare against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "nvswapfs/aio/block_device.h"
#include "nvswapfs/histogram.h"
#include "nvswapfs/status.h"

namespace nvswapfs::aio {

enum class IoOp : uint8_t { kRead, kWrite };

const char* IoOpName(IoOp op);

// One transfer between `buffer` and the device range [offset, offset+length).
// The buffer is borrowed: it must stay valid, and untouched by the caller,
// until the request completes.
struct IoRequest {
  IoOp op = IoOp::kRead;
  uint64_t offset = 0;
  std::byte* buffer = nullptr;
  uint64_t length = 0;
};

// Called exactly once per submitted request with its outcome. A request either
// transfers every byte (OK) or fails; there is no partial success.
using IoCallback = std::function<void(Status)>;

// The knobs users of DeepSpeed's async I/O know. Defaults in brackets.
struct EngineOptions {
  // [1 MiB] Requests are cut into pieces of at most this many bytes; a
  // multiple of the device's logical block size.
  uint64_t block_size = 1 << 20;
  // [32] Pieces kept in flight per worker thread (the io context's depth).
  uint32_t queue_depth = 32;
  // [off] Submit each piece with its own io_submit call instead of one call
  // per batch of contiguous pieces.
  bool single_submit = false;
  // [on] Overlapped completion: refill the queue as each piece completes.
  // Off (sequential): submit up to queue_depth pieces, reap them all, repeat.
  bool overlap = true;
  // [1] Worker threads, each with its own io context; a large request is
  // split across them.
  uint32_t threads = 1;

  // Checks ranges and that block_size suits `logical_block_size`; EINVAL with
  // a message naming the option otherwise.
  Status Validate(uint32_t logical_block_size) const;
  // "block_size=1 MiB queue_depth=32 single_submit=0 overlap=1 threads=1".
  std::string ToString() const;
};

// Counters an engine keeps while it runs (cheap, relaxed atomics).
struct EngineStats {
  uint64_t requests = 0;
  uint64_t failed_requests = 0;
  uint64_t pieces = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t short_transfers = 0;  // completions that moved fewer bytes than asked
  uint64_t submit_retries = 0;   // EAGAIN / EINTR / partial io_submit
  uint64_t in_flight = 0;        // pieces the kernel holds right now
};

class IoEngine {
 public:
  virtual ~IoEngine() = default;

  // Starts `request`; `done` runs once it has finished, on an engine thread
  // (or on the caller's thread when the request is rejected up front, or for
  // engines that complete inline). `done` must not block for long and must not
  // destroy the engine. Thread-safe: any number of threads may submit.
  virtual void Submit(const IoRequest& request, IoCallback done) = 0;

  // Submits `request` and waits for it.
  Status Execute(const IoRequest& request);

  // Makes every write that has completed durable (fdatasync of the device).
  virtual Status Flush() = 0;

  // Tells the device a range holds nothing worth keeping; see
  // BlockDevice::Discard. The caller makes sure no request touches the
  // range meanwhile.
  virtual Status Discard(uint64_t offset, uint64_t length) = 0;

  virtual const DeviceInfo& device() const = 0;
  virtual EngineStats stats() const = 0;
  // Latency of single io_submit / io_getevents calls (engines without them
  // leave these empty).
  virtual void SubmitLatency(LatencyHistogram* out) const { (void)out; }
  virtual void ReapLatency(LatencyHistogram* out) const { (void)out; }
  // Per piece: from reaching its worker (or being put back after a short
  // transfer) to its io_submit, and from there to its completion being
  // reaped.
  virtual void QueueLatency(LatencyHistogram* out) const { (void)out; }
  virtual void DeviceLatency(LatencyHistogram* out) const { (void)out; }

  // The rules checked before any I/O is issued: a non-null buffer, a
  // non-empty length, buffer address, offset and length aligned to the
  // logical block size, and the range inside the device. EINVAL naming the
  // broken rule otherwise.
  Status Validate(const IoRequest& request) const;
};

}  // namespace nvswapfs::aio
