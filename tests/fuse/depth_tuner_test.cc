#include "fs/fuse/depth_tuner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>

namespace nvswapfs::fuse::internal {
namespace {

using Clock = DepthTuner::Clock;
constexpr uint64_t kChunk = 1 << 20;

// A stream read chunk by chunk from a device whose speed (bytes/s) depends
// on the depth the tuner asks for.
class Stream {
 public:
  Stream(DepthTuner& tuner, std::function<double(size_t)> speed)
      : tuner_(tuner), speed_(std::move(speed)) {}

  // Reads `chunks` chunks; returns the depth each was read at.
  std::map<size_t, uint64_t> Read(uint64_t chunks) {
    std::map<size_t, uint64_t> at;
    for (uint64_t i = 0; i < chunks; ++i) {
      const size_t depth = tuner_.depth();
      ++at[depth];
      now_ += std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(kChunk / speed_(depth)));
      tuner_.Consumed(1, kChunk, now_);
    }
    return at;
  }

 private:
  DepthTuner& tuner_;
  std::function<double(size_t)> speed_;
  Clock::time_point now_ = Clock::now();
};

std::function<double(size_t)> Speeds(std::map<size_t, double> gbps) {
  return [gbps](size_t depth) { return gbps.at(depth) * 1e9; };
}

DepthTuner::Options Defaults() {
  DepthTuner::Options o;
  o.min_depth = 2;
  o.max_depth = 16;
  o.start_depth = 4;
  return o;
}

TEST(DepthTunerTest, GoesDeeperWhileDeeperIsFaster) {
  DepthTuner tuner(Defaults());
  Stream stream(tuner, Speeds({{2, 1.0}, {4, 2.0}, {8, 3.0}, {16, 3.05}}));
  stream.Read(1000);
  // 16 is not enough faster than 8 to be worth its memory.
  EXPECT_TRUE(tuner.holding());
  EXPECT_EQ(tuner.depth(), 8u);
  EXPECT_NEAR(tuner.rate(), 3.0e9, 0.01e9);
}

TEST(DepthTunerTest, StaysWhereMoreInFlightReadsSlower) {
  // A host that serves the device more slowly into more memory.
  DepthTuner tuner(Defaults());
  Stream stream(tuner, Speeds({{2, 2.5}, {4, 3.0}, {8, 2.6}, {16, 2.1}}));
  stream.Read(1000);
  EXPECT_TRUE(tuner.holding());
  EXPECT_EQ(tuner.depth(), 4u);
  // Settled, it reads at 4 but for its looks around now and then.
  const auto at = stream.Read(5000);
  EXPECT_GE(at.at(4), 5000 * 85 / 100);
  EXPECT_EQ(tuner.depth(), 4u);
}

TEST(DepthTunerTest, TakesLessMemoryForTheSameSpeed) {
  // A client slower than the device: every depth reads as fast.
  DepthTuner tuner(Defaults());
  Stream stream(tuner, Speeds({{2, 1.0}, {4, 1.0}, {8, 1.0}, {16, 1.0}}));
  stream.Read(1000);
  EXPECT_TRUE(tuner.holding());
  EXPECT_EQ(tuner.depth(), 2u);
}

TEST(DepthTunerTest, SmallLossesDoNotAddUp) {
  // Each halving loses 3%, within the margin; against the best rate seen,
  // the second halving loses 6% and is refused.
  DepthTuner::Options o = Defaults();
  o.start_depth = 16;
  DepthTuner tuner(o);
  Stream stream(tuner, Speeds({{2, 2.7}, {4, 2.82}, {8, 2.91}, {16, 3.0}}));
  stream.Read(1000);
  EXPECT_TRUE(tuner.holding());
  EXPECT_EQ(tuner.depth(), 8u);
}

TEST(DepthTunerTest, LooksAgainAndFollowsADeviceThatChanged) {
  DepthTuner tuner(Defaults());
  bool changed = false;
  Stream stream(tuner, [&](size_t depth) {
    const std::map<size_t, double> before{{2, 2.5}, {4, 3.0}, {8, 2.6}, {16, 2.1}};
    const std::map<size_t, double> after{{2, 1.0}, {4, 2.0}, {8, 3.0}, {16, 4.0}};
    return (changed ? after : before).at(depth) * 1e9;
  });
  stream.Read(1000);
  ASSERT_EQ(tuner.depth(), 4u);
  changed = true;
  // Held for 16 stretches of 96 chunks, then measured again and probed.
  uint64_t read = 0;
  while (!(tuner.holding() && tuner.depth() == 16) && read < 3000) read += stream.Read(1).size();
  EXPECT_TRUE(tuner.holding());
  EXPECT_EQ(tuner.depth(), 16u);
}

TEST(DepthTunerTest, AnInterruptedStretchDecidesNothing) {
  DepthTuner tuner(Defaults());
  Stream stream(tuner, Speeds({{2, 1.0}, {4, 2.0}, {8, 3.0}, {16, 4.0}}));
  // Never a whole stretch between interruptions: the depth never moves.
  for (int i = 0; i < 50; ++i) {
    stream.Read(90);
    tuner.Interrupted();
  }
  EXPECT_EQ(tuner.depth(), 4u);
  EXPECT_FALSE(tuner.holding());
}

TEST(DepthTunerTest, KeepsWithinItsBounds) {
  DepthTuner::Options o = Defaults();
  o.max_depth = 1;  // read_ahead=1M
  DepthTuner one(o);
  EXPECT_EQ(one.depth(), 1u);
  Stream(one, Speeds({{1, 1.0}})).Read(2000);
  EXPECT_EQ(one.depth(), 1u);

  o = Defaults();
  o.max_depth = 8;
  o.start_depth = 32;  // learned under a wider window
  DepthTuner eight(o);
  EXPECT_EQ(eight.depth(), 8u);
  Stream(eight, Speeds({{2, 1.0}, {4, 2.0}, {8, 3.0}})).Read(2000);
  EXPECT_EQ(eight.depth(), 8u);
}

}  // namespace
}  // namespace nvswapfs::fuse::internal
