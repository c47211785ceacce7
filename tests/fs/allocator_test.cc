#include "nvswapfs/fs/allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <vector>

namespace nvswapfs::fs {
namespace {

using Runs = std::vector<UnitRun>;

constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();

// An allocator of `total` units where exactly the listed runs are used.
UnitAllocator WithUsed(uint64_t total, const Runs& used) {
  UnitAllocator alloc(total);
  for (const UnitRun& run : used) EXPECT_TRUE(alloc.MarkUsed(run));
  return alloc;
}

TEST(UnitAllocatorTest, StartsAllFree) {
  UnitAllocator alloc(100);
  EXPECT_EQ(alloc.total_units(), 100u);
  EXPECT_EQ(alloc.free_units(), 100u);
  EXPECT_EQ(alloc.pending_units(), 0u);
  EXPECT_EQ(alloc.used_units(), 0u);
  EXPECT_EQ(alloc.FreeRuns(), (Runs{{0, 100}}));
  EXPECT_TRUE(alloc.IsFree(0));
  EXPECT_TRUE(alloc.IsFree(99));
  EXPECT_FALSE(alloc.IsFree(100));
}

TEST(UnitAllocatorTest, EmptyDevice) {
  UnitAllocator alloc(0);
  EXPECT_TRUE(alloc.FreeRuns().empty());
  EXPECT_TRUE(alloc.Allocate(1).empty());
  EXPECT_FALSE(alloc.MarkUsed({0, 1}));
  EXPECT_FALSE(alloc.Free({0, 1}));
  EXPECT_FALSE(alloc.IsFree(0));
}

TEST(UnitAllocatorTest, AllocateZeroReturnsNothing) {
  UnitAllocator alloc(10);
  EXPECT_TRUE(alloc.Allocate(0).empty());
  EXPECT_TRUE(alloc.Allocate(0, 5).empty());
  EXPECT_EQ(alloc.free_units(), 10u);
}

TEST(UnitAllocatorTest, AllocateStartsAtAFreeGoal) {
  UnitAllocator alloc = WithUsed(100, {{0, 10}});
  EXPECT_EQ(alloc.Allocate(5, 10), (Runs{{10, 5}}));    // goal at a run's start
  EXPECT_EQ(alloc.Allocate(5, 50), (Runs{{50, 5}}));    // goal inside a run
  EXPECT_EQ(alloc.Allocate(45, 55), (Runs{{55, 45}}));  // exactly to the end
  EXPECT_EQ(alloc.FreeRuns(), (Runs{{15, 35}}));
  EXPECT_EQ(alloc.used_units(), 65u);
}

TEST(UnitAllocatorTest, AllocateTakesTheFirstFittingRunAfterAGoalThatDoesNotFit) {
  UnitAllocator alloc = WithUsed(100, {{10, 10}, {25, 5}, {40, 10}, {80, 20}});
  // Free: [0,10) [20,25) [30,40) [50,80).
  EXPECT_EQ(alloc.Allocate(8, 22), (Runs{{30, 8}}));  // only 3 free from the goal
  EXPECT_EQ(alloc.Allocate(8, 12), (Runs{{50, 8}}));  // goal used; [20,25) too short
  EXPECT_EQ(alloc.Allocate(4, 12), (Runs{{20, 4}}));
}

TEST(UnitAllocatorTest, AllocateWrapsToTheFirstFitFromTheStart) {
  UnitAllocator alloc = WithUsed(100, {{10, 5}, {20, 80}});
  // Free: [0,10) [15,20).
  EXPECT_EQ(alloc.Allocate(6, 8), (Runs{{0, 6}}));     // the goal's run fits, but not from 8
  EXPECT_EQ(alloc.Allocate(4, 50), (Runs{{6, 4}}));    // nothing free at or after 50
  EXPECT_EQ(alloc.Allocate(5, 200), (Runs{{15, 5}}));  // goal past the end
  EXPECT_EQ(alloc.free_units(), 0u);
}

TEST(UnitAllocatorTest, AllocateFragmentedTakesLargestRunsFirst) {
  UnitAllocator alloc = WithUsed(100, {{3, 7}, {15, 5}, {26, 4}, {35, 65}});
  // Free: [0,3) [10,15) [20,26) [30,35).
  EXPECT_EQ(alloc.Allocate(14, 0), (Runs{{20, 6}, {10, 5}, {30, 3}}));
  EXPECT_EQ(alloc.FreeRuns(), (Runs{{0, 3}, {33, 2}}));
  EXPECT_EQ(alloc.Allocate(5, 0), (Runs{{0, 3}, {33, 2}}));
  EXPECT_EQ(alloc.free_units(), 0u);
}

TEST(UnitAllocatorTest, AllocateMoreThanFreeTakesNothing) {
  UnitAllocator alloc = WithUsed(100, {{3, 7}, {15, 80}});
  const Runs before = alloc.FreeRuns();
  EXPECT_TRUE(alloc.Allocate(14).empty());
  EXPECT_TRUE(alloc.Allocate(kMax64).empty());
  EXPECT_EQ(alloc.FreeRuns(), before);
  EXPECT_EQ(alloc.free_units(), 13u);
  EXPECT_EQ(alloc.Allocate(13).size(), 3u);
}

TEST(UnitAllocatorTest, FreedUnitsStayPendingUntilCommitted) {
  UnitAllocator alloc(10);
  ASSERT_EQ(alloc.Allocate(10), (Runs{{0, 10}}));
  ASSERT_TRUE(alloc.Free({2, 3}));
  EXPECT_EQ(alloc.pending_units(), 3u);
  EXPECT_EQ(alloc.free_units(), 0u);
  EXPECT_EQ(alloc.used_units(), 7u);
  EXPECT_FALSE(alloc.IsFree(2));
  EXPECT_TRUE(alloc.Allocate(1).empty());
  EXPECT_TRUE(alloc.Allocate(1, 2).empty());
  alloc.CommitFrees();
  EXPECT_EQ(alloc.pending_units(), 0u);
  EXPECT_EQ(alloc.free_units(), 3u);
  EXPECT_EQ(alloc.Allocate(3, 0), (Runs{{2, 3}}));
}

TEST(UnitAllocatorTest, ASealedCommitReusesOnlyWhatWasFreedBeforeItsSeal) {
  UnitAllocator alloc(10);
  ASSERT_EQ(alloc.Allocate(10), (Runs{{0, 10}}));
  ASSERT_TRUE(alloc.Free({0, 2}));
  const uint64_t first = alloc.SealFrees();
  // Freed while the first commit is being written: not in it.
  ASSERT_TRUE(alloc.Free({4, 2}));
  const uint64_t second = alloc.SealFrees();
  ASSERT_TRUE(alloc.Free({8, 1}));
  EXPECT_GT(second, first);
  EXPECT_EQ(alloc.pending_units(), 5u);
  // A unit pending in any epoch cannot be freed again.
  EXPECT_FALSE(alloc.Free({1, 1}));
  EXPECT_FALSE(alloc.Free({5, 2}));
  EXPECT_FALSE(alloc.Free({8, 1}));

  alloc.CommitFrees(first);
  EXPECT_EQ(alloc.FreeRuns(), (Runs{{0, 2}}));
  EXPECT_EQ(alloc.pending_units(), 3u);
  EXPECT_FALSE(alloc.IsFree(4));
  alloc.CommitFrees(first);  // again: nothing more
  EXPECT_EQ(alloc.free_units(), 2u);
  alloc.CommitFrees(second);
  EXPECT_EQ(alloc.FreeRuns(), (Runs{{0, 2}, {4, 2}}));
  EXPECT_FALSE(alloc.IsFree(8));
  alloc.CommitFrees();  // seals and reuses the rest
  EXPECT_EQ(alloc.FreeRuns(), (Runs{{0, 2}, {4, 2}, {8, 1}}));
  EXPECT_EQ(alloc.pending_units(), 0u);
  EXPECT_EQ(alloc.used_units(), 5u);

  // Reused units that were sealed once are freed again like any others.
  ASSERT_EQ(alloc.Allocate(5), (Runs{{0, 2}, {4, 2}, {8, 1}}));
  EXPECT_TRUE(alloc.Free({4, 1}));
  EXPECT_TRUE(alloc.Free({8, 1}));
  alloc.SealFrees();
  EXPECT_FALSE(alloc.Free({4, 1}));
  EXPECT_TRUE(alloc.Free({5, 1}));
  EXPECT_EQ(alloc.pending_units(), 3u);
}

TEST(UnitAllocatorTest, CommitFreesCoalescesWithFreeNeighbours) {
  UnitAllocator alloc = WithUsed(30, {{10, 10}});
  ASSERT_TRUE(alloc.Free({10, 4}));
  ASSERT_TRUE(alloc.Free({16, 4}));
  ASSERT_TRUE(alloc.Free({14, 2}));  // joins the two pending runs
  alloc.CommitFrees();
  EXPECT_EQ(alloc.FreeRuns(), (Runs{{0, 30}}));
  EXPECT_EQ(alloc.used_units(), 0u);
  EXPECT_EQ(alloc.Allocate(30, 5), (Runs{{0, 30}}));
}

TEST(UnitAllocatorTest, FreeRejectsBadRunsAndChangesNothing) {
  UnitAllocator alloc = WithUsed(100, {{10, 20}});
  ASSERT_TRUE(alloc.Free({15, 5}));
  EXPECT_FALSE(alloc.Free({12, 0}));      // empty
  EXPECT_FALSE(alloc.Free({100, 1}));     // past the end
  EXPECT_FALSE(alloc.Free({95, 6}));      // crosses the end
  EXPECT_FALSE(alloc.Free({kMax64, 2}));  // end overflows
  EXPECT_FALSE(alloc.Free({0, 5}));       // free
  EXPECT_FALSE(alloc.Free({8, 4}));       // partly free
  EXPECT_FALSE(alloc.Free({28, 4}));      // partly free at the other end
  EXPECT_FALSE(alloc.Free({15, 5}));      // double free
  EXPECT_FALSE(alloc.Free({17, 1}));      // inside a pending run
  EXPECT_FALSE(alloc.Free({12, 4}));      // overlaps a pending run's start
  EXPECT_FALSE(alloc.Free({19, 3}));      // overlaps a pending run's end
  EXPECT_EQ(alloc.pending_units(), 5u);
  EXPECT_EQ(alloc.used_units(), 15u);
  EXPECT_TRUE(alloc.Free({10, 5}));
  EXPECT_TRUE(alloc.Free({20, 10}));
  EXPECT_EQ(alloc.pending_units(), 20u);
}

TEST(UnitAllocatorTest, MarkUsedRejectsBadRunsAndChangesNothing) {
  UnitAllocator alloc(100);
  ASSERT_TRUE(alloc.MarkUsed({10, 10}));
  EXPECT_FALSE(alloc.MarkUsed({10, 10}));     // two files claim the same units
  EXPECT_FALSE(alloc.MarkUsed({5, 6}));       // partly used
  EXPECT_FALSE(alloc.MarkUsed({19, 2}));      // partly used at the other end
  EXPECT_FALSE(alloc.MarkUsed({30, 0}));      // empty
  EXPECT_FALSE(alloc.MarkUsed({100, 1}));     // outside the data region
  EXPECT_FALSE(alloc.MarkUsed({99, 2}));      // crosses the end
  EXPECT_FALSE(alloc.MarkUsed({kMax64, 2}));  // end overflows
  ASSERT_EQ(alloc.Allocate(1, 50), (Runs{{50, 1}}));
  ASSERT_TRUE(alloc.Free({50, 1}));
  EXPECT_FALSE(alloc.MarkUsed({50, 1}));  // pending
  EXPECT_EQ(alloc.FreeRuns(), (Runs{{0, 10}, {20, 30}, {51, 49}}));
  EXPECT_EQ(alloc.used_units(), 10u);
  EXPECT_TRUE(alloc.MarkUsed({0, 10}));
  EXPECT_TRUE(alloc.MarkUsed({99, 1}));
  EXPECT_EQ(alloc.FreeRuns(), (Runs{{20, 30}, {51, 48}}));
}

TEST(UnitAllocatorTest, IsFreeSeesRunEdges) {
  UnitAllocator alloc = WithUsed(20, {{5, 5}});
  EXPECT_TRUE(alloc.IsFree(4));
  EXPECT_FALSE(alloc.IsFree(5));
  EXPECT_FALSE(alloc.IsFree(9));
  EXPECT_TRUE(alloc.IsFree(10));
  EXPECT_FALSE(alloc.IsFree(kMax64));
}

TEST(UnitAllocatorTest, FreeRunFromStartsInsideARunOrAtTheNextOne) {
  UnitAllocator alloc = WithUsed(20, {{0, 2}, {5, 5}, {15, 5}});
  EXPECT_EQ(alloc.FreeRunFrom(0), (UnitRun{2, 3}));
  EXPECT_EQ(alloc.FreeRunFrom(3), (UnitRun{3, 2}));
  EXPECT_EQ(alloc.FreeRunFrom(4), (UnitRun{4, 1}));
  EXPECT_EQ(alloc.FreeRunFrom(5), (UnitRun{10, 5}));
  EXPECT_EQ(alloc.FreeRunFrom(14), (UnitRun{14, 1}));
  EXPECT_EQ(alloc.FreeRunFrom(15), std::nullopt);
  EXPECT_EQ(alloc.FreeRunFrom(kMax64), std::nullopt);
  // Pending units are not free yet.
  ASSERT_TRUE(alloc.Free({15, 5}));
  EXPECT_EQ(alloc.FreeRunFrom(15), std::nullopt);
  alloc.CommitFrees();
  EXPECT_EQ(alloc.FreeRunFrom(12), (UnitRun{12, 8}));
}

// --- Randomized comparison against a per-unit model. ---

enum class State { kFree, kUsed, kPending };

class AllocatorProperty {
 public:
  AllocatorProperty(uint64_t seed, uint64_t total)
      : rng_(seed), total_(total), alloc_(total), model_(total, State::kFree) {}

  void Run(int ops) {
    for (int op = 0; op < ops; ++op) {
      Step();
      if (::testing::Test::HasFatalFailure()) return;
      Check();
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

 private:
  uint64_t Uniform(uint64_t lo, uint64_t hi) {  // inclusive
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }

  // Runs near, inside and just outside the device.
  UnitRun RandomRun() {
    const uint64_t first = Uniform(0, 9) == 0 ? kMax64 - Uniform(0, 3) : Uniform(0, total_ + 2);
    return UnitRun{first, Uniform(0, 9) == 0 ? 0 : Uniform(1, 12)};
  }

  // A run of units that are all in `state`, or a random one if there is none.
  UnitRun RunIn(State state) {
    const uint64_t start = Uniform(0, total_);
    for (uint64_t k = 0; k < total_; ++k) {
      const uint64_t unit = (start + k) % total_;
      if (model_[unit] != state) continue;
      uint64_t end = unit + 1;
      const uint64_t want = Uniform(1, 12);
      while (end < total_ && end - unit < want && model_[end] == state) ++end;
      return UnitRun{unit, end - unit};
    }
    return RandomRun();
  }

  bool All(UnitRun run, State state) const {
    if (run.count == 0 || run.first >= total_ || run.count > total_ - run.first) return false;
    for (uint64_t u = run.first; u < run.first + run.count; ++u) {
      if (model_[u] != state) return false;
    }
    return true;
  }

  void Set(UnitRun run, State state) {
    for (uint64_t u = run.first; u < run.first + run.count; ++u) model_[u] = state;
  }

  Runs ModelFreeRuns() const {
    Runs runs;
    uint64_t unit = 0;
    while (unit < total_) {
      if (model_[unit] != State::kFree) {
        ++unit;
        continue;
      }
      uint64_t end = unit + 1;
      while (end < total_ && model_[end] == State::kFree) ++end;
      runs.push_back(UnitRun{unit, end - unit});
      unit = end;
    }
    return runs;
  }

  // The policy of the header, computed the slow way.
  Runs ExpectedAllocation(uint64_t count, uint64_t goal) const {
    const Runs free_runs = ModelFreeRuns();
    uint64_t free_total = 0;
    for (const UnitRun& r : free_runs) free_total += r.count;
    if (count == 0 || count > free_total) return {};
    for (const UnitRun& r : free_runs) {
      if (r.first <= goal && goal < r.first + r.count && r.first + r.count - goal >= count) {
        return {UnitRun{goal, count}};
      }
    }
    for (const UnitRun& r : free_runs) {
      if (r.first >= goal && r.count >= count) return {UnitRun{r.first, count}};
    }
    for (const UnitRun& r : free_runs) {
      if (r.count >= count) return {UnitRun{r.first, count}};
    }
    Runs by_size = free_runs;
    std::stable_sort(by_size.begin(), by_size.end(),
                     [](const UnitRun& a, const UnitRun& b) { return a.count > b.count; });
    Runs taken;
    for (const UnitRun& r : by_size) {
      const uint64_t take = std::min(count, r.count);
      taken.push_back(UnitRun{r.first, take});
      count -= take;
      if (count == 0) break;
    }
    return taken;
  }

  void DoAllocate() {
    const uint64_t count = Uniform(0, 5) == 0 ? Uniform(0, total_ + 1) : Uniform(0, 10);
    // Goals mostly where a file would want them: right after used units.
    uint64_t goal = Uniform(0, total_ + 1);
    if (Uniform(0, 1) == 0) goal = RunIn(State::kUsed).first;
    const Runs expected = ExpectedAllocation(count, goal);
    const Runs got = alloc_.Allocate(count, goal);
    ASSERT_EQ(got, expected) << "Allocate(" << count << ", " << goal << ")";
    uint64_t sum = 0;
    for (const UnitRun& r : got) {
      ASSERT_TRUE(All(r, State::kFree)) << "handed out a unit that is not free";
      Set(r, State::kUsed);  // a later overlapping run is then caught as not free
      sum += r.count;
    }
    ASSERT_TRUE(got.empty() || sum == count);
  }

  void DoFree() {
    const UnitRun run = Uniform(0, 3) == 0   ? RandomRun()
                        : Uniform(0, 4) == 0 ? RunIn(State::kPending)
                                             : RunIn(State::kUsed);
    const bool expected = All(run, State::kUsed);
    ASSERT_EQ(alloc_.Free(run), expected) << "Free({" << run.first << ", " << run.count << "})";
    if (expected) Set(run, State::kPending);
  }

  void DoMarkUsed() {
    const UnitRun run = Uniform(0, 2) == 0 ? RandomRun() : RunIn(State::kFree);
    const bool expected = All(run, State::kFree);
    ASSERT_EQ(alloc_.MarkUsed(run), expected)
        << "MarkUsed({" << run.first << ", " << run.count << "})";
    if (expected) Set(run, State::kUsed);
  }

  void DoCommit() {
    alloc_.CommitFrees();
    for (State& s : model_) {
      if (s == State::kPending) s = State::kFree;
    }
  }

  void Step() {
    const uint64_t kind = Uniform(0, 99);
    if (kind < 40) {
      DoAllocate();
    } else if (kind < 80) {
      DoFree();
    } else if (kind < 90) {
      DoMarkUsed();
    } else {
      DoCommit();
    }
  }

  void Check() {
    const Runs free_runs = ModelFreeRuns();
    uint64_t free_units = 0;
    for (const UnitRun& r : free_runs) free_units += r.count;
    const auto pending_units =
        static_cast<uint64_t>(std::count(model_.begin(), model_.end(), State::kPending));
    ASSERT_EQ(alloc_.free_units(), free_units);
    ASSERT_EQ(alloc_.pending_units(), pending_units);
    ASSERT_EQ(alloc_.used_units(), total_ - free_units - pending_units);
    ASSERT_EQ(alloc_.FreeRuns(), free_runs);
    for (int i = 0; i < 4; ++i) {
      const uint64_t unit = Uniform(0, total_);
      ASSERT_EQ(alloc_.IsFree(unit), unit < total_ && model_[unit] == State::kFree) << unit;
    }
    const uint64_t from = Uniform(0, total_);
    std::optional<UnitRun> want;
    for (uint64_t u = from; u < total_ && !want.has_value(); ++u) {
      if (model_[u] != State::kFree) continue;
      uint64_t end = u;
      while (end < total_ && model_[end] == State::kFree) ++end;
      want = UnitRun{u, end - u};
    }
    ASSERT_EQ(alloc_.FreeRunFrom(from), want) << "FreeRunFrom(" << from << ")";
  }

  std::mt19937_64 rng_;
  uint64_t total_;
  UnitAllocator alloc_;
  std::vector<State> model_;
};

TEST(UnitAllocatorPropertyTest, AgreesWithUnitModel) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    AllocatorProperty(seed, 1 + seed % 4 * 14).Run(2000);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace nvswapfs::fs
