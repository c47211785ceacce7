// A file's map from its blocks to device blocks.
//
// Extents are kept sorted by logical block, never overlapping, and merged
// whenever two neighbours are contiguous both logically and physically and
// have the same written state, so a sequentially written tensor is one extent
// (one per UINT32_MAX blocks, 16 TiB: a merge that would pass the 32-bit
// count leaves two extents). Unwritten extents are allocated space that reads
// as zeros.
//
// Block UINT64_MAX can never be mapped (its end would not fit in 64 bits),
// so every range argument is clamped to end at UINT64_MAX at most.
//
// Not thread-safe; the Volume serializes access per file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "nvswapfs/fs/records.h"

namespace nvswapfs::fs {

// A piece of a lookup: `count` blocks from `logical`, either a hole
// (physical unset) or mapped.
struct Segment {
  uint64_t logical = 0;
  uint32_t count = 0;
  std::optional<uint64_t> physical;
  bool unwritten = false;
  bool hole() const { return !physical.has_value(); }
  friend bool operator==(const Segment&, const Segment&) = default;
};

class ExtentMap {
 public:
  ExtentMap() = default;
  // Takes extents as decoded from a record; Valid() tells whether they obey
  // the invariants.
  explicit ExtentMap(std::vector<Extent> extents) : extents_(std::move(extents)) {}

  const std::vector<Extent>& extents() const { return extents_; }
  bool empty() const { return extents_.empty(); }

  // True when sorted, non-overlapping, with non-zero counts, and free of
  // overflowing ends.
  bool Valid() const;

  // Covers [logical, logical + count) with segments in order: mapped pieces
  // and holes, split at extent boundaries, never longer than UINT32_MAX.
  // Empty when count is 0. A hole of n blocks takes n / UINT32_MAX segments,
  // so the caller bounds count (by the file size or the request).
  std::vector<Segment> Lookup(uint64_t logical, uint64_t count) const;

  // Maps [logical, logical + count) -> [physical, ...). The logical range must
  // be entirely unmapped, count non-zero, and neither end may pass UINT64_MAX
  // (returns false and changes nothing otherwise). Ranges longer than
  // UINT32_MAX blocks become several extents.
  bool Insert(uint64_t logical, uint64_t physical, uint64_t count, bool unwritten);

  // Sets the written state of every mapped block in the range (holes stay
  // holes), splitting and merging extents as needed.
  void SetUnwritten(uint64_t logical, uint64_t count, bool unwritten);

  // Unmaps every block at or after `logical`, returning the physical ranges
  // that were mapped there (as extents, with their logical positions).
  std::vector<Extent> RemoveFrom(uint64_t logical);

  // Unmaps every block in [logical, logical + count), returning what was
  // mapped there.
  std::vector<Extent> Remove(uint64_t logical, uint64_t count);

  // One past the last mapped logical block (0 when empty).
  uint64_t LogicalEnd() const;
  // Mapped blocks, written or not.
  uint64_t MappedBlocks() const;
  // The physical block right after the extent that maps the highest logical
  // block, to place the next allocation contiguously; nullopt when empty.
  std::optional<uint64_t> NextPhysicalGoal() const;

 private:
  // Index of the first extent that ends after `logical` (size() if none).
  size_t FirstEndingAfter(uint64_t logical) const;
  // Splits extents_[index] so that a new extent starts at `at`, which must lie
  // strictly inside it.
  void SplitAt(size_t index, uint64_t at);
  // Merges every mergeable neighbour pair within extents_[begin, end).
  void MergeRange(size_t begin, size_t end);

  std::vector<Extent> extents_;
};

}  // namespace nvswapfs::fs
