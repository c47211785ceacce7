#include "nvswapfs/fs/allocator.h"

#include <algorithm>
#include <iterator>

namespace nvswapfs::fs {
namespace {

using RunMap = std::map<uint64_t, uint64_t>;

// True when [first, first + count) shares a unit with a run of `runs`.
bool Overlaps(const RunMap& runs, uint64_t first, uint64_t count) {
  auto next = runs.lower_bound(first);
  if (next != runs.end() && next->first - first < count) return true;
  if (next == runs.begin()) return false;
  auto prev = std::prev(next);
  return prev->first + prev->second > first;
}

// Adds [first, first + count), which must not overlap `runs`, coalescing it
// with the runs it touches.
void AddCoalesced(RunMap* runs, uint64_t first, uint64_t count) {
  auto next = runs->lower_bound(first);
  if (next != runs->end() && next->first == first + count) {
    count += next->second;
    next = runs->erase(next);
  }
  if (next != runs->begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == first) {
      prev->second += count;
      return;
    }
  }
  runs->emplace_hint(next, first, count);
}

}  // namespace

UnitAllocator::UnitAllocator(uint64_t total_units) : total_(total_units), free_count_(0) {
  if (total_units > 0) InsertFree(0, total_units);
}

bool UnitAllocator::InRange(UnitRun run) const {
  return run.count > 0 && run.first < total_ && run.count <= total_ - run.first;
}

void UnitAllocator::InsertFree(uint64_t first, uint64_t count) {
  free_count_ += count;
  auto next = free_.lower_bound(first);
  if (next != free_.end() && next->first == first + count) {
    free_by_size_.erase(UnitRun{next->first, next->second});
    count += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == first) {
      free_by_size_.erase(UnitRun{prev->first, prev->second});
      prev->second += count;
      free_by_size_.insert(UnitRun{prev->first, prev->second});
      return;
    }
  }
  free_.emplace_hint(next, first, count);
  free_by_size_.insert(UnitRun{first, count});
}

void UnitAllocator::TakeFree(RunMap::iterator run, uint64_t first, uint64_t count) {
  const uint64_t run_first = run->first;
  const uint64_t run_end = run->first + run->second;
  free_by_size_.erase(UnitRun{run->first, run->second});
  free_count_ -= count;
  auto hint = std::next(run);
  if (first > run_first) {
    run->second = first - run_first;
    free_by_size_.insert(UnitRun{run_first, run->second});
  } else {
    free_.erase(run);
  }
  const uint64_t end = first + count;
  if (end < run_end) {
    free_.emplace_hint(hint, end, run_end - end);
    free_by_size_.insert(UnitRun{end, run_end - end});
  }
}

bool UnitAllocator::MarkUsed(UnitRun run) {
  if (!InRange(run)) return false;
  auto it = free_.upper_bound(run.first);
  if (it == free_.begin()) return false;
  --it;
  if (it->first + it->second < run.first + run.count) return false;
  TakeFree(it, run.first, run.count);
  return true;
}

std::vector<UnitRun> UnitAllocator::Allocate(uint64_t count, uint64_t goal) {
  if (count == 0 || count > free_count_) return {};

  if (goal < total_) {
    auto it = free_.upper_bound(goal);
    if (it != free_.begin()) {
      --it;
      const uint64_t run_end = it->first + it->second;
      if (run_end > goal && run_end - goal >= count) {
        TakeFree(it, goal, count);
        return {UnitRun{goal, count}};
      }
    }
  }

  // The size index says in O(1) whether any run fits whole, so the scans
  // below run only when they are bound to succeed.
  if (free_by_size_.begin()->count >= count) {
    auto fits = [count](const RunMap::value_type& run) { return run.second >= count; };
    auto it = std::find_if(free_.lower_bound(goal), free_.end(), fits);
    if (it == free_.end()) it = std::find_if(free_.begin(), free_.end(), fits);
    const uint64_t first = it->first;
    TakeFree(it, first, count);
    return {UnitRun{first, count}};
  }

  // Fragmented: the largest runs keep the number of pieces (and so of
  // extents in the file) smallest.
  std::vector<UnitRun> runs;
  uint64_t left = count;
  while (left > 0) {
    const UnitRun largest = *free_by_size_.begin();
    const uint64_t take = std::min(left, largest.count);
    TakeFree(free_.find(largest.first), largest.first, take);
    runs.push_back(UnitRun{largest.first, take});
    left -= take;
  }
  return runs;
}

bool UnitAllocator::Free(UnitRun run) {
  if (!InRange(run)) return false;
  // Runs of different epochs never overlap, so one map of them all finds an
  // overlap in O(log n) however many commits are in flight or unflushed.
  if (Overlaps(free_, run.first, run.count) || Overlaps(pending_, run.first, run.count) ||
      Overlaps(sealed_runs_, run.first, run.count)) {
    return false;
  }
  AddCoalesced(&pending_, run.first, run.count);
  pending_count_ += run.count;
  return true;
}

uint64_t UnitAllocator::SealFrees() {
  ++epoch_;
  if (!pending_.empty()) {
    sealed_runs_.insert(pending_.begin(), pending_.end());
    sealed_.emplace(epoch_, std::move(pending_));
  }
  pending_.clear();
  return epoch_;
}

void UnitAllocator::CommitFrees(uint64_t epoch) {
  while (!sealed_.empty() && sealed_.begin()->first <= epoch) {
    for (const auto& [first, count] : sealed_.begin()->second) {
      InsertFree(first, count);
      pending_count_ -= count;
      sealed_runs_.erase(first);
    }
    sealed_.erase(sealed_.begin());
  }
}

std::vector<UnitRun> UnitAllocator::FreeRuns() const {
  std::vector<UnitRun> runs;
  runs.reserve(free_.size());
  for (const auto& [first, count] : free_) runs.push_back(UnitRun{first, count});
  return runs;
}

std::optional<UnitRun> UnitAllocator::FreeRunFrom(uint64_t unit) const {
  auto next = free_.upper_bound(unit);
  if (next != free_.begin()) {
    auto holding = std::prev(next);
    const uint64_t end = holding->first + holding->second;
    if (end > unit) return UnitRun{unit, end - unit};
  }
  if (next == free_.end()) return std::nullopt;
  return UnitRun{next->first, next->second};
}

bool UnitAllocator::IsFree(uint64_t unit) const {
  const std::optional<UnitRun> run = FreeRunFrom(unit);
  return run.has_value() && run->first == unit;
}

}  // namespace nvswapfs::fs
