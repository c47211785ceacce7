// One timed run of an nvswapfs I/O engine over the benchmarked range.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "nvswapfs/aio/block_device.h"
#include "nvswapfs/aio/engine.h"
#include "nvswapfs/histogram.h"
#include "nvswapfs/status.h"
#include "options.h"

namespace nvswapfs::bench {

struct EngineRun {
  double seconds = 0;         // first submit to last completion
  double submit_seconds = 0;  // first submit until the caller's last Submit() returned
  aio::EngineStats stats;
};

// io_submit / io_getevents call latencies gathered over several runs.
struct EngineLatency {
  LatencyHistogram submit;
  LatencyHistogram reap;
};

// Opens `path` (briefly) to learn its size and logical block size.
Result<aio::DeviceInfo> ProbeDevice(const std::string& path);

// Opens `path`, creates a fresh engine of kind `m.engine_kind` with
// `m.engine`, and moves [0, m.size) between `buffer` (at least m.size bytes,
// byte i standing for file offset i) and the file:
//  - seq:  one request for the whole range, cut into pieces by the engine;
//  - rand: one request per block in a fixed pseudo-random order, all
//          submitted up front (the engine queues what does not fit).
// The sync engine has no queue, so it is driven with one block-sized request
// at a time per thread, in the same order.
// Merges the engine's call latencies into `latency` when it is non-null.
// Fails with the first failed request's status, or EIO when the engine's
// counters disagree with the bytes asked for.
Result<EngineRun> RunEngine(const std::string& path, const Measurement& m,
                            std::span<std::byte> buffer, EngineLatency* latency);

}  // namespace nvswapfs::bench
