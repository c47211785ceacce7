#include "nvswapfs/fs/extent_map.h"

#include <algorithm>
#include <limits>

namespace nvswapfs::fs {
namespace {

constexpr uint64_t kMaxBlock = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kMaxExtentBlocks = std::numeric_limits<uint32_t>::max();

// Keeps logical + count representable; see the header on block UINT64_MAX.
uint64_t ClampCount(uint64_t logical, uint64_t count) {
  return std::min(count, kMaxBlock - logical);
}

bool CanMerge(const Extent& left, const Extent& right) {
  return left.logical_end() == right.logical && left.physical_end() == right.physical &&
         left.unwritten == right.unwritten && left.count <= kMaxExtentBlocks - right.count;
}

}  // namespace

bool ExtentMap::Valid() const {
  for (size_t i = 0; i < extents_.size(); ++i) {
    const Extent& e = extents_[i];
    if (e.count == 0 || e.logical > kMaxBlock - e.count || e.physical > kMaxBlock - e.count) {
      return false;
    }
    if (i > 0 && extents_[i - 1].logical_end() > e.logical) return false;
  }
  return true;
}

size_t ExtentMap::FirstEndingAfter(uint64_t logical) const {
  // Sorted, non-overlapping extents are sorted by their ends too.
  auto it = std::partition_point(extents_.begin(), extents_.end(),
                                 [logical](const Extent& e) { return e.logical_end() <= logical; });
  return static_cast<size_t>(it - extents_.begin());
}

void ExtentMap::SplitAt(size_t index, uint64_t at) {
  Extent right = extents_[index];
  const uint64_t left_count = at - right.logical;
  right.logical = at;
  right.physical += left_count;
  right.count -= static_cast<uint32_t>(left_count);
  extents_[index].count = static_cast<uint32_t>(left_count);
  extents_.insert(extents_.begin() + static_cast<ptrdiff_t>(index) + 1, right);
}

void ExtentMap::MergeRange(size_t begin, size_t end) {
  if (end - begin < 2) return;
  // Compacts in place so that a merge costs one erase, not one per pair.
  size_t kept = begin;
  for (size_t next = begin + 1; next < end; ++next) {
    if (CanMerge(extents_[kept], extents_[next])) {
      extents_[kept].count += extents_[next].count;
    } else {
      extents_[++kept] = extents_[next];
    }
  }
  extents_.erase(extents_.begin() + static_cast<ptrdiff_t>(kept) + 1,
                 extents_.begin() + static_cast<ptrdiff_t>(end));
}

std::vector<Segment> ExtentMap::Lookup(uint64_t logical, uint64_t count) const {
  std::vector<Segment> segments;
  count = ClampCount(logical, count);
  if (count == 0) return segments;
  const uint64_t end = logical + count;
  size_t i = FirstEndingAfter(logical);
  // One segment per extent in the range and one per hole between them (long
  // holes aside), so reads across many extents allocate once.
  const auto past =
      std::partition_point(extents_.begin() + static_cast<ptrdiff_t>(i), extents_.end(),
                           [end](const Extent& e) { return e.logical < end; });
  segments.reserve(2 * (static_cast<size_t>(past - extents_.begin()) - i) + 1);
  uint64_t pos = logical;
  while (pos < end) {
    if (i < extents_.size() && extents_[i].logical <= pos) {
      const Extent& e = extents_[i++];
      const uint64_t piece_end = std::min(end, e.logical_end());
      segments.push_back(Segment{.logical = pos,
                                 .count = static_cast<uint32_t>(piece_end - pos),
                                 .physical = e.physical + (pos - e.logical),
                                 .unwritten = e.unwritten});
      pos = piece_end;
      continue;
    }
    const uint64_t hole_end = i < extents_.size() ? std::min(end, extents_[i].logical) : end;
    while (pos < hole_end) {
      const uint64_t piece = std::min(hole_end - pos, kMaxExtentBlocks);
      segments.push_back(Segment{.logical = pos,
                                 .count = static_cast<uint32_t>(piece),
                                 .physical = std::nullopt,
                                 .unwritten = false});
      pos += piece;
    }
  }
  return segments;
}

bool ExtentMap::Insert(uint64_t logical, uint64_t physical, uint64_t count, bool unwritten) {
  if (count == 0 || count > kMaxBlock - logical || count > kMaxBlock - physical) return false;
  const size_t at = FirstEndingAfter(logical);
  if (at < extents_.size() && extents_[at].logical < logical + count) return false;

  const size_t pieces =
      static_cast<size_t>(count / kMaxExtentBlocks + (count % kMaxExtentBlocks != 0 ? 1 : 0));
  extents_.insert(extents_.begin() + static_cast<ptrdiff_t>(at), pieces, Extent{});
  for (size_t k = 0; k < pieces; ++k) {
    const uint64_t piece = std::min(count, kMaxExtentBlocks);
    extents_[at + k] = Extent{.logical = logical,
                              .physical = physical,
                              .count = static_cast<uint32_t>(piece),
                              .unwritten = unwritten};
    logical += piece;
    physical += piece;
    count -= piece;
  }
  MergeRange(at == 0 ? 0 : at - 1, std::min(at + pieces + 1, extents_.size()));
  return true;
}

void ExtentMap::SetUnwritten(uint64_t logical, uint64_t count, bool unwritten) {
  count = ClampCount(logical, count);
  if (count == 0) return;
  const uint64_t end = logical + count;
  const size_t first = FirstEndingAfter(logical);

  // Only extents whose state changes are split, so a range that already has
  // the requested state leaves the map untouched.
  size_t i = first;
  if (i < extents_.size() && extents_[i].logical < logical && extents_[i].unwritten != unwritten) {
    SplitAt(i, logical);
    ++i;
  }
  while (i < extents_.size() && extents_[i].logical_end() <= end) {
    extents_[i].unwritten = unwritten;
    ++i;
  }
  if (i < extents_.size() && extents_[i].logical < end && extents_[i].unwritten != unwritten) {
    SplitAt(i, end);
    extents_[i].unwritten = unwritten;
    ++i;
  }
  // Changed extents may now merge with each other and with the unchanged
  // neighbour on either side.
  MergeRange(first == 0 ? 0 : first - 1, std::min(i + 1, extents_.size()));
}

std::vector<Extent> ExtentMap::RemoveFrom(uint64_t logical) {
  return Remove(logical, kMaxBlock - logical);
}

std::vector<Extent> ExtentMap::Remove(uint64_t logical, uint64_t count) {
  std::vector<Extent> removed;
  count = ClampCount(logical, count);
  if (count == 0) return removed;
  const uint64_t end = logical + count;
  size_t i = FirstEndingAfter(logical);

  if (i < extents_.size() && extents_[i].logical < logical) {
    Extent& head = extents_[i];
    const uint64_t offset = logical - head.logical;
    if (head.logical_end() > end) {
      // A hole punched inside one extent leaves both of its ends mapped.
      removed.push_back(Extent{.logical = logical,
                               .physical = head.physical + offset,
                               .count = static_cast<uint32_t>(count),
                               .unwritten = head.unwritten});
      SplitAt(i, end);
      extents_[i].count = static_cast<uint32_t>(offset);
      return removed;
    }
    removed.push_back(Extent{.logical = logical,
                             .physical = head.physical + offset,
                             .count = static_cast<uint32_t>(head.count - offset),
                             .unwritten = head.unwritten});
    head.count = static_cast<uint32_t>(offset);
    ++i;
  }

  size_t last = i;
  while (last < extents_.size() && extents_[last].logical_end() <= end) {
    removed.push_back(extents_[last]);
    ++last;
  }
  if (last < extents_.size() && extents_[last].logical < end) {
    Extent& tail = extents_[last];
    const uint64_t cut = end - tail.logical;
    removed.push_back(Extent{.logical = tail.logical,
                             .physical = tail.physical,
                             .count = static_cast<uint32_t>(cut),
                             .unwritten = tail.unwritten});
    tail.logical += cut;
    tail.physical += cut;
    tail.count -= static_cast<uint32_t>(cut);
  }
  extents_.erase(extents_.begin() + static_cast<ptrdiff_t>(i),
                 extents_.begin() + static_cast<ptrdiff_t>(last));
  return removed;
}

uint64_t ExtentMap::LogicalEnd() const {
  return extents_.empty() ? 0 : extents_.back().logical_end();
}

uint64_t ExtentMap::MappedBlocks() const {
  uint64_t blocks = 0;
  for (const Extent& e : extents_) blocks += e.count;
  return blocks;
}

std::optional<uint64_t> ExtentMap::NextPhysicalGoal() const {
  if (extents_.empty()) return std::nullopt;
  return extents_.back().physical_end();
}

}  // namespace nvswapfs::fs
