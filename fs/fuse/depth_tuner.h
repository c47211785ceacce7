// How many chunks a sequential stream keeps reading ahead; not a public API.
//
// More chunks in flight is not always faster. A device may need several
// requests at once to reach its speed, but every chunk in flight is a buffer
// the device writes into, and some hosts serve a device markedly slower once
// those buffers add up to more than a few MiB (a virtual disk whose host
// copies into guest memory did, here: 1 MiB reads at 3.0 GB/s into 4 MiB of
// buffers, 2.2 GB/s into 16 MiB, at any queue depth). Which depth wins
// differs between machines and, on a virtual machine, between days, so the
// stream measures it: it reads at one depth for a stretch, then tries twice
// as deep, keeps that while it is faster, otherwise tries half as deep and
// keeps that unless it is slower (less memory for the same speed), then holds
// what it found for a while before looking again.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace nvswapfs::fuse::internal {

class DepthTuner {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    size_t min_depth = 2;
    size_t max_depth = 16;
    size_t start_depth = 4;
    // Chunks the client reads at one depth to measure it, after it has read
    // twice the depth's worth (what was in flight when the depth changed).
    uint64_t measure_chunks = 96;
    // Measured stretches a depth is held before it is put to the test again.
    uint32_t hold_stretches = 16;
    // A deeper window is kept when it reads this much faster; a shallower
    // one unless it reads this much slower.
    double margin = 0.04;
  };

  explicit DepthTuner(const Options& options);

  size_t depth() const { return depth_; }
  // The probes are over and the depth they found is being held.
  bool holding() const { return phase_ == Phase::kHold; }
  // What the depth held read at, in bytes/s (the best of the probes at it).
  double rate() const { return base_rate_; }
  // The client has read `chunks` more chunks, `bytes` in all, by `now`.
  void Consumed(uint64_t chunks, uint64_t bytes, Clock::time_point now);
  // The stream stopped (a jump, a write): what is being measured is void.
  void Interrupted();

 private:
  enum class Phase { kBase, kUp, kDown, kHold };

  void Enter(Phase phase, size_t depth);
  // A stretch at the current depth is complete, at `rate` bytes/s.
  void Measured(double rate);

  const Options options_;
  size_t depth_;
  Phase phase_ = Phase::kBase;
  size_t base_depth_;     // the depth the probes are compared with
  double base_rate_ = 0;  // its rate (kDown: the best rate of the probes)
  bool climbed_ = false;  // the probes went deeper at least once
  // The stretch under way.
  uint64_t skip_;  // chunks still to read before it starts
  uint64_t chunks_ = 0;
  uint64_t bytes_ = 0;
  Clock::time_point start_;
  uint32_t held_ = 0;  // stretches held so far (kHold)
};

}  // namespace nvswapfs::fuse::internal
