#include "depth_tuner.h"

#include <algorithm>

namespace nvswapfs::fuse::internal {

DepthTuner::DepthTuner(const Options& options)
    : options_([&] {
        Options o = options;
        o.max_depth = std::max<size_t>(o.max_depth, 1);
        o.min_depth = std::clamp<size_t>(o.min_depth, 1, o.max_depth);
        o.start_depth = std::clamp(o.start_depth, o.min_depth, o.max_depth);
        o.measure_chunks = std::max<uint64_t>(o.measure_chunks, 1);
        return o;
      }()),
      depth_(options_.start_depth),
      base_depth_(options_.start_depth),
      skip_(2 * depth_) {}

void DepthTuner::Enter(Phase phase, size_t depth) {
  // What the old depth has in flight arrives first; the new depth shows
  // once the client has read past it. At the same depth the next stretch
  // starts with the next chunk read.
  skip_ = depth == depth_ ? 1 : 2 * std::max(depth_, depth);
  if (phase != Phase::kHold || phase_ != Phase::kHold) held_ = 0;
  depth_ = depth;
  phase_ = phase;
  chunks_ = 0;
  bytes_ = 0;
}

void DepthTuner::Interrupted() {
  skip_ = 2 * depth_;
  chunks_ = 0;
  bytes_ = 0;
}

void DepthTuner::Consumed(uint64_t chunks, uint64_t bytes, Clock::time_point now) {
  if (skip_ > 0) {
    // The stretch starts when the last chunk to skip has been read.
    skip_ -= std::min(skip_, chunks);
    if (skip_ == 0) start_ = now;
    return;
  }
  chunks_ += chunks;
  bytes_ += bytes;
  if (chunks_ < options_.measure_chunks) return;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  // A stretch read in no measurable time was not held up by the device.
  Measured(seconds > 0 ? static_cast<double>(bytes_) / seconds : 1e18);
}

void DepthTuner::Measured(double rate) {
  const size_t deeper = depth_ * 2;
  const size_t shallower = depth_ / 2;
  switch (phase_) {
    case Phase::kBase:
      base_depth_ = depth_;
      base_rate_ = rate;
      climbed_ = false;
      if (deeper <= options_.max_depth) return Enter(Phase::kUp, deeper);
      if (shallower >= options_.min_depth) return Enter(Phase::kDown, shallower);
      return Enter(Phase::kHold, depth_);
    case Phase::kUp:
      if (rate > base_rate_ * (1 + options_.margin)) {
        base_depth_ = depth_;
        base_rate_ = rate;
        climbed_ = true;
        if (deeper <= options_.max_depth) return Enter(Phase::kUp, deeper);
        return Enter(Phase::kHold, depth_);
      }
      // Deeper was no faster. Having just climbed to the base, shallower
      // was slower; otherwise it may be as fast.
      if (!climbed_ && base_depth_ / 2 >= options_.min_depth) {
        return Enter(Phase::kDown, base_depth_ / 2);
      }
      return Enter(Phase::kHold, base_depth_);
    case Phase::kDown:
      // Compared with the best rate seen, so that steps each a little slower
      // cannot add up.
      if (rate >= base_rate_ * (1 - options_.margin)) {
        base_depth_ = depth_;
        base_rate_ = std::max(base_rate_, rate);
        if (shallower >= options_.min_depth) return Enter(Phase::kDown, shallower);
        return Enter(Phase::kHold, depth_);
      }
      return Enter(Phase::kHold, base_depth_);
    case Phase::kHold:
      if (++held_ < options_.hold_stretches) return Enter(Phase::kHold, depth_);
      return Enter(Phase::kBase, depth_);
  }
}

}  // namespace nvswapfs::fuse::internal
