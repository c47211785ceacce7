#include "nvswapfs/fs/extent_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <vector>

namespace nvswapfs::fs {
namespace {

constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kMax32 = std::numeric_limits<uint32_t>::max();

Extent Ext(uint64_t logical, uint64_t physical, uint32_t count, bool unwritten = false) {
  return Extent{.logical = logical, .physical = physical, .count = count, .unwritten = unwritten};
}

Segment Mapped(uint64_t logical, uint32_t count, uint64_t physical, bool unwritten = false) {
  return Segment{.logical = logical, .count = count, .physical = physical, .unwritten = unwritten};
}

Segment Hole(uint64_t logical, uint32_t count) {
  return Segment{.logical = logical, .count = count, .physical = std::nullopt, .unwritten = false};
}

// No two neighbours could merge without passing the UINT32_MAX limit.
bool MaximallyMerged(const std::vector<Extent>& extents) {
  for (size_t i = 1; i < extents.size(); ++i) {
    const Extent& a = extents[i - 1];
    const Extent& b = extents[i];
    if (a.logical_end() == b.logical && a.physical_end() == b.physical &&
        a.unwritten == b.unwritten && uint64_t{a.count} + b.count <= kMax32) {
      return false;
    }
  }
  return true;
}

TEST(ExtentMapTest, EmptyMap) {
  ExtentMap map;
  EXPECT_TRUE(map.empty());
  EXPECT_TRUE(map.Valid());
  EXPECT_EQ(map.LogicalEnd(), 0u);
  EXPECT_EQ(map.MappedBlocks(), 0u);
  EXPECT_EQ(map.NextPhysicalGoal(), std::nullopt);
  EXPECT_EQ(map.Lookup(5, 10), std::vector<Segment>{Hole(5, 10)});
  EXPECT_TRUE(map.Remove(0, 100).empty());
  EXPECT_TRUE(map.RemoveFrom(0).empty());
  map.SetUnwritten(0, 100, true);
  EXPECT_TRUE(map.empty());
}

TEST(ExtentMapTest, InsertRejectsZeroCount) {
  ExtentMap map;
  EXPECT_FALSE(map.Insert(0, 0, 0, false));
  EXPECT_TRUE(map.empty());
}

TEST(ExtentMapTest, InsertRejectsAnyOverlapAndChangesNothing) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(10, 100, 10, false));
  ASSERT_TRUE(map.Insert(30, 300, 10, true));
  const std::vector<Extent> before = map.extents();
  EXPECT_FALSE(map.Insert(10, 500, 10, false));  // the same range
  EXPECT_FALSE(map.Insert(12, 500, 2, false));   // inside
  EXPECT_FALSE(map.Insert(5, 500, 6, false));    // over the first block
  EXPECT_FALSE(map.Insert(19, 500, 2, false));   // over the last block
  EXPECT_FALSE(map.Insert(0, 500, 100, false));  // over both extents
  EXPECT_FALSE(map.Insert(20, 500, 11, false));  // fills the gap and one more
  EXPECT_EQ(map.extents(), before);
  EXPECT_TRUE(map.Insert(20, 500, 10, false));  // exactly the gap
}

TEST(ExtentMapTest, InsertRejectsOverflowingEnds) {
  ExtentMap map;
  EXPECT_FALSE(map.Insert(kMax64 - 5, 0, 6, false));
  EXPECT_FALSE(map.Insert(kMax64, 0, 1, false));
  EXPECT_FALSE(map.Insert(0, kMax64 - 5, 6, false));
  EXPECT_FALSE(map.Insert(1, 1, kMax64, false));
  EXPECT_TRUE(map.empty());
  EXPECT_TRUE(map.Insert(kMax64 - 5, kMax64 - 5, 5, false));
  EXPECT_EQ(map.extents(), std::vector<Extent>{Ext(kMax64 - 5, kMax64 - 5, 5)});
  EXPECT_TRUE(map.Valid());
  EXPECT_EQ(map.LogicalEnd(), kMax64);
  EXPECT_EQ(map.NextPhysicalGoal(), kMax64);
}

TEST(ExtentMapTest, InsertMergesWithContiguousNeighbours) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(0, 100, 10, false));
  ASSERT_TRUE(map.Insert(20, 120, 10, false));
  ASSERT_EQ(map.extents().size(), 2u);
  ASSERT_TRUE(map.Insert(10, 110, 10, false));
  EXPECT_EQ(map.extents(), std::vector<Extent>{Ext(0, 100, 30)});
  ASSERT_TRUE(map.Insert(30, 130, 5, false));
  EXPECT_EQ(map.extents(), std::vector<Extent>{Ext(0, 100, 35)});
}

TEST(ExtentMapTest, InsertKeepsApartWhatIsNotContiguousOrDiffersInState) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(0, 100, 10, false));
  ASSERT_TRUE(map.Insert(10, 111, 10, false));  // physical gap
  ASSERT_TRUE(map.Insert(20, 121, 10, true));   // written state differs
  ASSERT_TRUE(map.Insert(31, 132, 10, true));   // logical gap
  EXPECT_EQ(map.extents(), (std::vector<Extent>{Ext(0, 100, 10), Ext(10, 111, 10),
                                                Ext(20, 121, 10, true), Ext(31, 132, 10, true)}));
  EXPECT_TRUE(MaximallyMerged(map.extents()));
}

TEST(ExtentMapTest, SequentiallyWrittenFileIsOneExtent) {
  // What the Volume does: map whole 256-block units as unwritten, then mark
  // each write's blocks written, in writes of uneven sizes.
  constexpr uint64_t kUnit = 256;
  constexpr uint64_t kFileBlocks = 100 * kUnit + 17;
  ExtentMap map;
  std::mt19937_64 rng(7);
  uint64_t written = 0;
  while (written < kFileBlocks) {
    const uint64_t len = std::min<uint64_t>(1 + rng() % 700, kFileBlocks - written);
    while (map.LogicalEnd() < written + len) {
      const uint64_t goal = map.NextPhysicalGoal().value_or(1000);
      ASSERT_TRUE(map.Insert(map.LogicalEnd(), goal, kUnit, true));
    }
    map.SetUnwritten(written, len, false);
    written += len;
    ASSERT_LE(map.extents().size(), 2u);
    EXPECT_EQ(map.extents().front(), Ext(0, 1000, static_cast<uint32_t>(written)));
  }
  // Truncating the unused tail of the last unit leaves one written extent.
  const std::vector<Extent> tail = map.RemoveFrom(kFileBlocks);
  EXPECT_EQ(tail,
            (std::vector<Extent>{Ext(kFileBlocks, 1000 + kFileBlocks,
                                     static_cast<uint32_t>(101 * kUnit - kFileBlocks), true)}));
  EXPECT_EQ(map.extents(), std::vector<Extent>{Ext(0, 1000, kFileBlocks)});
}

TEST(ExtentMapTest, InsertSplitsRangesLongerThanUint32Max) {
  ExtentMap map;
  const uint64_t count = 2 * uint64_t{kMax32} + 10;
  ASSERT_TRUE(map.Insert(5, 1000, count, true));
  EXPECT_EQ(map.extents(), (std::vector<Extent>{
                               Ext(5, 1000, kMax32, true),
                               Ext(5 + uint64_t{kMax32}, 1000 + uint64_t{kMax32}, kMax32, true),
                               Ext(5 + 2 * uint64_t{kMax32}, 1000 + 2 * uint64_t{kMax32}, 10, true),
                           }));
  EXPECT_TRUE(map.Valid());
  EXPECT_EQ(map.MappedBlocks(), count);
  EXPECT_EQ(map.LogicalEnd(), 5 + count);
  EXPECT_EQ(map.NextPhysicalGoal(), 1000 + count);
}

TEST(ExtentMapTest, MergingNeverPassesUint32Max) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(0, 0, kMax32 - 1, false));
  ASSERT_TRUE(map.Insert(kMax32 - 1, kMax32 - 1, 1, false));
  EXPECT_EQ(map.extents(), std::vector<Extent>{Ext(0, 0, kMax32)});  // exactly at the limit
  ASSERT_TRUE(map.Insert(kMax32, kMax32, 1, false));
  EXPECT_EQ(map.extents(), (std::vector<Extent>{Ext(0, 0, kMax32), Ext(kMax32, kMax32, 1)}));
  EXPECT_TRUE(MaximallyMerged(map.extents()));
  EXPECT_TRUE(map.Valid());
}

TEST(ExtentMapTest, SetUnwrittenNeverMergesPastUint32Max) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(0, 0, kMax32 - 5, false));
  ASSERT_TRUE(map.Insert(kMax32 - 5, kMax32 - 5, 10, true));
  map.SetUnwritten(kMax32 - 5, 10, false);
  EXPECT_EQ(map.extents(),
            (std::vector<Extent>{Ext(0, 0, kMax32 - 5), Ext(kMax32 - 5, kMax32 - 5, 10)}));
  // Re-marking an already written range changes nothing.
  map.SetUnwritten(0, uint64_t{kMax32} + 5, false);
  EXPECT_EQ(map.extents().size(), 2u);
  // Splitting the big extent and writing the piece back restores the two extents.
  map.SetUnwritten(100, 10, true);
  EXPECT_EQ(map.extents().size(), 4u);
  map.SetUnwritten(100, 10, false);
  EXPECT_TRUE(MaximallyMerged(map.extents()));
  EXPECT_EQ(map.MappedBlocks(), uint64_t{kMax32} + 5);
  EXPECT_EQ(map.Lookup(0, uint64_t{kMax32} + 5),
            (std::vector<Segment>{Mapped(0, kMax32 - 5, 0), Mapped(kMax32 - 5, 10, kMax32 - 5)}));
}

TEST(ExtentMapTest, SetUnwrittenSplitsThenMergesBack) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(0, 100, 30, true));
  map.SetUnwritten(10, 5, false);
  EXPECT_EQ(map.extents(),
            (std::vector<Extent>{Ext(0, 100, 10, true), Ext(10, 110, 5), Ext(15, 115, 15, true)}));
  map.SetUnwritten(0, 10, false);  // joins the written piece on its left
  EXPECT_EQ(map.extents(), (std::vector<Extent>{Ext(0, 100, 15), Ext(15, 115, 15, true)}));
  map.SetUnwritten(15, 15, false);
  EXPECT_EQ(map.extents(), std::vector<Extent>{Ext(0, 100, 30)});
  map.SetUnwritten(5, 20, true);
  EXPECT_EQ(map.extents(),
            (std::vector<Extent>{Ext(0, 100, 5), Ext(5, 105, 20, true), Ext(25, 125, 5)}));
  map.SetUnwritten(0, 30, true);
  EXPECT_EQ(map.extents(), std::vector<Extent>{Ext(0, 100, 30, true)});
}

TEST(ExtentMapTest, SetUnwrittenLeavesHolesAndNonContiguousNeighbours) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(0, 100, 10, true));
  ASSERT_TRUE(map.Insert(20, 120, 10, true));  // logical hole before it
  ASSERT_TRUE(map.Insert(30, 200, 10, true));  // physically elsewhere
  map.SetUnwritten(0, 100, false);
  EXPECT_EQ(map.extents(),
            (std::vector<Extent>{Ext(0, 100, 10), Ext(20, 120, 10), Ext(30, 200, 10)}));
  EXPECT_EQ(map.MappedBlocks(), 30u);
  map.SetUnwritten(5, 0, true);  // empty range
  EXPECT_EQ(map.extents().size(), 3u);
}

TEST(ExtentMapTest, SetUnwrittenClampsAtTheTopOfTheBlockSpace) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(kMax64 - 10, 0, 10, true));
  map.SetUnwritten(kMax64 - 4, kMax64, false);
  EXPECT_EQ(map.extents(),
            (std::vector<Extent>{Ext(kMax64 - 10, 0, 6, true), Ext(kMax64 - 4, 6, 4)}));
}

TEST(ExtentMapTest, LookupSplitsAtExtentBoundariesAndHoles) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(10, 100, 10, false));
  ASSERT_TRUE(map.Insert(20, 500, 10, true));
  ASSERT_TRUE(map.Insert(40, 700, 5, false));
  EXPECT_EQ(map.Lookup(0, 50),
            (std::vector<Segment>{Hole(0, 10), Mapped(10, 10, 100), Mapped(20, 10, 500, true),
                                  Hole(30, 10), Mapped(40, 5, 700), Hole(45, 5)}));
  EXPECT_EQ(map.Lookup(15, 7),
            (std::vector<Segment>{Mapped(15, 5, 105), Mapped(20, 2, 500, true)}));
  EXPECT_EQ(map.Lookup(12, 3), std::vector<Segment>{Mapped(12, 3, 102)});
  EXPECT_EQ(map.Lookup(32, 3), std::vector<Segment>{Hole(32, 3)});
  EXPECT_TRUE(map.Lookup(12, 0).empty());
}

TEST(ExtentMapTest, LookupSplitsLongHolesAtUint32Max) {
  ExtentMap map;
  const uint64_t start = 3 * uint64_t{kMax32} + 7;
  ASSERT_TRUE(map.Insert(start, 9, 1, false));
  EXPECT_EQ(map.Lookup(0, start + 2),
            (std::vector<Segment>{Hole(0, kMax32), Hole(kMax32, kMax32),
                                  Hole(2 * uint64_t{kMax32}, kMax32), Hole(3 * uint64_t{kMax32}, 7),
                                  Mapped(start, 1, 9), Hole(start + 1, 1)}));
}

TEST(ExtentMapTest, LookupClampsAtTheTopOfTheBlockSpace) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(kMax64 - 2, 4, 2, false));
  EXPECT_EQ(map.Lookup(kMax64 - 3, kMax64),
            (std::vector<Segment>{Hole(kMax64 - 3, 1), Mapped(kMax64 - 2, 2, 4)}));
  EXPECT_TRUE(map.Lookup(kMax64, 1).empty());
}

TEST(ExtentMapTest, RemoveInsideOneExtentSplitsIt) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(0, 100, 30, false));
  EXPECT_EQ(map.Remove(10, 5), std::vector<Extent>{Ext(10, 110, 5)});
  EXPECT_EQ(map.extents(), (std::vector<Extent>{Ext(0, 100, 10), Ext(15, 115, 15)}));
  EXPECT_EQ(map.MappedBlocks(), 25u);
  // Mapping the hole again restores one extent.
  ASSERT_TRUE(map.Insert(10, 110, 5, false));
  EXPECT_EQ(map.extents(), std::vector<Extent>{Ext(0, 100, 30)});
}

TEST(ExtentMapTest, RemoveAcrossExtentsAndHolesReturnsExactlyWhatWasMapped) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(0, 100, 10, false));
  ASSERT_TRUE(map.Insert(15, 300, 10, true));
  ASSERT_TRUE(map.Insert(30, 400, 10, false));
  EXPECT_EQ(map.Remove(5, 30),
            (std::vector<Extent>{Ext(5, 105, 5), Ext(15, 300, 10, true), Ext(30, 400, 5)}));
  EXPECT_EQ(map.extents(), (std::vector<Extent>{Ext(0, 100, 5), Ext(35, 405, 5)}));
  EXPECT_TRUE(map.Remove(10, 20).empty());  // only a hole there now
  EXPECT_TRUE(map.Remove(0, 0).empty());
  EXPECT_EQ(map.Remove(0, 5), std::vector<Extent>{Ext(0, 100, 5)});  // whole extent
  EXPECT_EQ(map.extents(), std::vector<Extent>{Ext(35, 405, 5)});
}

TEST(ExtentMapTest, RemoveFromTruncates) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(0, 100, 10, false));
  ASSERT_TRUE(map.Insert(20, 300, 10, true));
  EXPECT_TRUE(map.RemoveFrom(30).empty());
  EXPECT_EQ(map.RemoveFrom(5), (std::vector<Extent>{Ext(5, 105, 5), Ext(20, 300, 10, true)}));
  EXPECT_EQ(map.extents(), std::vector<Extent>{Ext(0, 100, 5)});
  EXPECT_EQ(map.LogicalEnd(), 5u);
  EXPECT_EQ(map.NextPhysicalGoal(), 105u);
  EXPECT_EQ(map.RemoveFrom(0), std::vector<Extent>{Ext(0, 100, 5)});
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.NextPhysicalGoal(), std::nullopt);
}

TEST(ExtentMapTest, RemoveFromAtTheTopOfTheBlockSpace) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(kMax64 - 3, 0, 3, false));
  EXPECT_TRUE(map.RemoveFrom(kMax64).empty());
  EXPECT_EQ(map.RemoveFrom(kMax64 - 1), std::vector<Extent>{Ext(kMax64 - 1, 2, 1)});
  EXPECT_EQ(map.Remove(kMax64 - 3, kMax64), std::vector<Extent>{Ext(kMax64 - 3, 0, 2)});
  EXPECT_TRUE(map.empty());
}

TEST(ExtentMapTest, NextPhysicalGoalFollowsTheHighestLogicalExtent) {
  ExtentMap map;
  ASSERT_TRUE(map.Insert(100, 50, 10, false));
  ASSERT_TRUE(map.Insert(0, 900, 10, false));
  EXPECT_EQ(map.NextPhysicalGoal(), 60u);
  EXPECT_EQ(map.LogicalEnd(), 110u);
  EXPECT_EQ(map.MappedBlocks(), 20u);
}

TEST(ExtentMapTest, ValidRejectsBrokenInvariants) {
  EXPECT_TRUE(ExtentMap({Ext(0, 0, 5), Ext(5, 100, 5)}).Valid());
  EXPECT_TRUE(ExtentMap({Ext(0, 0, 5), Ext(5, 5, 5)}).Valid());      // unmerged is still valid
  EXPECT_FALSE(ExtentMap({Ext(5, 100, 5), Ext(0, 0, 5)}).Valid());   // unsorted
  EXPECT_FALSE(ExtentMap({Ext(0, 0, 6), Ext(5, 100, 5)}).Valid());   // overlapping
  EXPECT_FALSE(ExtentMap({Ext(0, 0, 5), Ext(10, 100, 0)}).Valid());  // zero count
  EXPECT_FALSE(ExtentMap({Ext(kMax64 - 2, 0, 3)}).Valid());          // logical end overflows
  EXPECT_FALSE(ExtentMap({Ext(0, kMax64 - 2, 3)}).Valid());          // physical end overflows
  EXPECT_TRUE(ExtentMap({Ext(kMax64 - 3, kMax64 - 3, 3)}).Valid());
  // The constructor keeps what it is given, so the record can be checked.
  ExtentMap unmerged({Ext(0, 0, 5), Ext(5, 5, 5)});
  EXPECT_EQ(unmerged.extents().size(), 2u);
}

// --- Randomized comparison against a block-by-block model. ---

struct ModelBlock {
  uint64_t physical;
  bool unwritten;
};
using Model = std::map<uint64_t, ModelBlock>;

class ExtentMapProperty {
 public:
  // Logical blocks near `base`, laid out mostly from `phys_base`.
  ExtentMapProperty(uint64_t seed, uint64_t base, uint64_t phys_base, uint64_t window)
      : rng_(seed), base_(base), phys_base_(phys_base), window_(window) {}

  void Run(int ops) {
    for (int op = 0; op < ops; ++op) {
      Step();
      if (::testing::Test::HasFatalFailure()) return;
      CheckCheap();
      if (op % 64 == 63) CheckFull();
      if (::testing::Test::HasFatalFailure()) return;
    }
    CheckFull();
  }

 private:
  uint64_t Uniform(uint64_t lo, uint64_t hi) {  // inclusive
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }

  // Positions spill a little past the window so that, at the top of the block
  // space, some ranges overflow.
  uint64_t RandomLogical() { return base_ + Uniform(0, window_ + 8); }
  uint64_t RandomCount() {
    switch (Uniform(0, 9)) {
      case 0:
        return 0;
      case 1:
        return Uniform(0, 2 * window_);
      default:
        return Uniform(1, 24);
    }
  }
  uint64_t Clamp(uint64_t logical, uint64_t count) { return std::min(count, kMax64 - logical); }

  uint64_t RandomPhysical(uint64_t logical) {
    // Mostly a physical layout where neighbours are contiguous, so merges
    // happen often; sometimes a different one.
    switch (Uniform(0, 5)) {
      case 0:
        return phys_base_ + Uniform(0, 4 * window_);
      case 1: {
        auto goal = map_.NextPhysicalGoal();
        return goal ? *goal : logical;
      }
      default:
        return logical - base_ + phys_base_;
    }
  }

  void Step() {
    const uint64_t kind = Uniform(0, 99);
    if (kind < 40) {
      DoInsert();
    } else if (kind < 70) {
      DoSetUnwritten();
    } else if (kind < 88) {
      DoRemove();
    } else if (kind < 92) {
      DoRemoveFrom();
    } else {
      CheckLookup(RandomLogical(), RandomCount());
    }
  }

  // Plain comparisons rather than per-block assertions keep the long runs
  // fast; a mismatch is reported by the caller.
  bool Matches(Model::const_iterator it, uint64_t logical, uint64_t physical,
               bool unwritten) const {
    return it != model_.end() && it->first == logical && it->second.physical == physical &&
           it->second.unwritten == unwritten;
  }

  void DoInsert() {
    const uint64_t logical = RandomLogical();
    const uint64_t count = RandomCount();
    const uint64_t physical = RandomPhysical(logical);
    const bool unwritten = Uniform(0, 1) == 1;
    bool expected = count > 0 && count <= kMax64 - logical && count <= kMax64 - physical;
    if (expected) {
      auto it = model_.lower_bound(logical);
      expected = it == model_.end() || it->first - logical >= count;
    }
    ASSERT_EQ(map_.Insert(logical, physical, count, unwritten), expected)
        << "Insert(" << logical << ", " << physical << ", " << count << ")";
    if (!expected) return;
    for (uint64_t i = 0; i < count; ++i) model_[logical + i] = {physical + i, unwritten};
  }

  void DoSetUnwritten() {
    const uint64_t logical = RandomLogical();
    const uint64_t count = Clamp(logical, RandomCount());
    const bool unwritten = Uniform(0, 1) == 1;
    map_.SetUnwritten(logical, count, unwritten);
    for (auto it = model_.lower_bound(logical); it != model_.end() && it->first - logical < count;
         ++it) {
      it->second.unwritten = unwritten;
    }
  }

  // The returned extents, block by block, must be exactly the model's blocks
  // of the range, which are then erased from the model.
  void CheckRemoved(const std::vector<Extent>& removed, uint64_t logical, uint64_t count) {
    auto it = model_.lower_bound(logical);
    uint64_t previous_end = 0;
    for (const Extent& e : removed) {
      ASSERT_GT(e.count, 0u);
      ASSERT_GE(e.logical, previous_end) << "removed extents out of order";
      previous_end = e.logical_end();
      ASSERT_LE(e.logical_end() - logical, count) << "removed a block outside the range";
      for (uint64_t i = 0; i < e.count; ++i) {
        if (!Matches(it, e.logical + i, e.physical + i, e.unwritten)) {
          FAIL() << "removed block " << e.logical + i << " differs from the model";
        }
        it = model_.erase(it);
      }
    }
    ASSERT_TRUE(it == model_.end() || it->first - logical >= count)
        << "a mapped block at " << it->first << " was not returned";
  }

  void DoRemove() {
    const uint64_t logical = RandomLogical();
    const uint64_t count = RandomCount();
    CheckRemoved(map_.Remove(logical, count), logical, Clamp(logical, count));
  }

  void DoRemoveFrom() {
    const uint64_t logical = RandomLogical();
    CheckRemoved(map_.RemoveFrom(logical), logical, kMax64 - logical);
  }

  void CheckLookup(uint64_t logical, uint64_t count) {
    const std::vector<Segment> segments = map_.Lookup(logical, count);
    const uint64_t end = logical + Clamp(logical, count);
    uint64_t pos = logical;
    // Walks the model alongside the segments: `next` is the first mapped
    // block at or after `pos`.
    auto next = model_.lower_bound(logical);
    for (const Segment& s : segments) {
      ASSERT_EQ(s.logical, pos) << "Lookup(" << logical << ", " << count << ") has a gap";
      ASSERT_GT(s.count, 0u);
      ASSERT_LE(s.count, end - pos);
      if (s.hole()) {
        ASSERT_TRUE(next == model_.end() || next->first - pos >= s.count)
            << "block " << next->first << " reads as a hole";
      } else {
        for (uint64_t i = 0; i < s.count; ++i, ++next) {
          if (!Matches(next, pos + i, *s.physical + i, s.unwritten)) {
            FAIL() << "block " << pos + i << " reads differently from the model";
          }
        }
      }
      pos += s.count;
    }
    ASSERT_EQ(pos, end);
  }

  void CheckCheap() {
    const std::vector<Extent>& extents = map_.extents();
    ASSERT_TRUE(map_.Valid());
    ASSERT_TRUE(MaximallyMerged(extents));
    ASSERT_EQ(map_.MappedBlocks(), model_.size());
    ASSERT_EQ(map_.empty(), model_.empty());
    if (model_.empty()) {
      ASSERT_EQ(map_.LogicalEnd(), 0u);
      ASSERT_EQ(map_.NextPhysicalGoal(), std::nullopt);
    } else {
      const auto& [last, block] = *model_.rbegin();
      ASSERT_EQ(map_.LogicalEnd(), last + 1);
      ASSERT_EQ(map_.NextPhysicalGoal(), block.physical + 1);
    }
    CheckLookup(RandomLogical(), Uniform(0, 40));
  }

  // The extents, expanded, are exactly the model.
  void CheckFull() {
    auto it = model_.begin();
    for (const Extent& e : map_.extents()) {
      for (uint64_t i = 0; i < e.count; ++i, ++it) {
        if (!Matches(it, e.logical + i, e.physical + i, e.unwritten)) {
          FAIL() << "block " << e.logical + i << " differs from the model";
        }
      }
    }
    ASSERT_TRUE(it == model_.end());
  }

  std::mt19937_64 rng_;
  uint64_t base_;
  uint64_t phys_base_;
  uint64_t window_;
  ExtentMap map_;
  Model model_;
};

TEST(ExtentMapPropertyTest, AgreesWithBlockModel) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    const uint64_t window = 32 + seed % 4 * 24;
    ExtentMapProperty(seed, 0, 1000, window).Run(2000);
    if (HasFatalFailure()) return;
  }
}

TEST(ExtentMapPropertyTest, AgreesWithBlockModelAtTheTopOfTheBlockSpace) {
  for (uint64_t seed = 1001; seed <= 1025; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    // Physical blocks near the top too, so that some inserts overflow there.
    constexpr uint64_t kWindow = 128;
    ExtentMapProperty(seed, kMax64 - kWindow, kMax64 - kWindow - 16, kWindow).Run(2000);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace nvswapfs::fs
