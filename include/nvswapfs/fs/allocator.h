// Free space of the data region, in allocation units.
//
// Units are numbered from 0 (the first unit of the data region). Free space is
// kept as sorted, coalesced runs. A unit freed by an uncommitted change is
// "pending": it is not handed out again until CommitFrees() says the change
// that freed it is durable, so a crash can never leave a surviving file
// pointing at another file's new data. A commit that is written while
// further changes go on seals the frees it covers first (SealFrees), and once
// it is durable reuses those alone (CommitFrees(epoch)).
//
// Not thread-safe; the Volume holds its metadata lock around every call.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

namespace nvswapfs::fs {

struct UnitRun {
  uint64_t first = 0;
  uint64_t count = 0;
  friend bool operator==(const UnitRun&, const UnitRun&) = default;
};

class UnitAllocator {
 public:
  // All `total_units` start free.
  explicit UnitAllocator(uint64_t total_units);

  // Marks units used while rebuilding from the metadata at open. Returns
  // false (and changes nothing) if any unit in the run is not free or is out
  // of range: two files claim the same space, or an extent lies outside the
  // data region.
  bool MarkUsed(UnitRun run);

  // Allocates `count` units, preferring one contiguous run starting at `goal`
  // (when free), then the first run at or after `goal` that fits whole, then
  // any run that fits whole, and finally several runs (largest first) when
  // free space is fragmented. Returns the runs in order of use; empty when
  // fewer than `count` units are free (nothing is allocated then).
  std::vector<UnitRun> Allocate(uint64_t count, uint64_t goal = 0);

  // Gives back units a change no longer uses; they stay pending until
  // CommitFrees(). Freeing a unit that is free or pending is a bug the
  // caller must not make; it returns false and changes nothing.
  bool Free(UnitRun run);

  // The change that freed the pending units is durable: reuse them.
  void CommitFrees() { CommitFrees(SealFrees()); }
  // Sets the units pending now apart from those freed later; returns the
  // epoch to pass to CommitFrees once the change that freed them is durable.
  uint64_t SealFrees();
  // Reuses the units sealed in `epoch` and before.
  void CommitFrees(uint64_t epoch);

  uint64_t total_units() const { return total_; }
  uint64_t free_units() const { return free_count_; }  // excludes pending
  uint64_t pending_units() const { return pending_count_; }
  uint64_t used_units() const { return total_ - free_count_ - pending_count_; }
  // The free runs, sorted (for fsck and tests).
  std::vector<UnitRun> FreeRuns() const;
  // The free units from `unit` on to the end of the free run holding it, or
  // else the next free run after it; nullopt when no unit from `unit` on is
  // free.
  std::optional<UnitRun> FreeRunFrom(uint64_t unit) const;
  bool IsFree(uint64_t unit) const;

 private:
  using RunMap = std::map<uint64_t, uint64_t>;  // first unit -> count, coalesced

  // Orders runs largest first, then by position, so that begin() is the run
  // the fragmented path of Allocate() takes next.
  struct LargerFirst {
    bool operator()(const UnitRun& a, const UnitRun& b) const {
      return a.count != b.count ? a.count > b.count : a.first < b.first;
    }
  };

  void InsertFree(uint64_t first, uint64_t count);  // coalesces
  // Takes [first, first + count) out of the free run at `run`, which must
  // contain it.
  void TakeFree(RunMap::iterator run, uint64_t first, uint64_t count);
  bool InRange(UnitRun run) const;

  uint64_t total_;
  uint64_t free_count_;
  uint64_t pending_count_ = 0;
  RunMap free_;
  std::set<UnitRun, LargerFirst> free_by_size_;  // the runs of free_, by size
  RunMap pending_;                               // a map, so Free() finds overlaps in O(log n)
  std::map<uint64_t, RunMap> sealed_;            // epoch -> units pending, sealed in it
  RunMap sealed_runs_;  // the runs of every epoch in sealed_, uncoalesced, for Free()
  uint64_t epoch_ = 0;                           // the latest seal
};

}  // namespace nvswapfs::fs
