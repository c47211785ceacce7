// Volume: the data path (read, write, truncate, fallocate) and space.
//
// A transfer first maps its range under the metadata lock (allocating whole
// allocation units, mapped as unwritten), then moves the bytes with no
// metadata lock held, through bounded aligned staging buffers with several
// engine requests in flight, and finally marks what it wrote as written. The
// file's I/O lock (exclusive for writes, shared for reads) keeps truncation
// and hole punching out of the way meanwhile, and a pin keeps the inode alive
// if its last name goes.
#include <linux/falloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <type_traits>

#include "executor.h"
#include "io_gate.h"
#include "nvswapfs/fs/volume.h"
#include "nvswapfs/units.h"
#include "volume_internal.h"

namespace nvswapfs::fs {

using aio::BufferPool;
using aio::IoOp;
using aio::IoRequest;

namespace internal {

uint64_t UnitToBlock(const Superblock& sb, uint64_t unit) {
  return (sb.data_offset + unit * sb.alloc_unit) / kBlockSize;
}

uint64_t BlockToUnit(const Superblock& sb, uint64_t block) {
  return (block * kBlockSize - sb.data_offset) / sb.alloc_unit;
}

Result<std::vector<UnitRun>> UnitsOf(const Superblock& sb, const std::vector<Extent>& extents) {
  const uint64_t first = sb.data_offset / kBlockSize;
  const uint64_t end = (sb.data_offset + sb.data_size) / kBlockSize;
  const uint64_t per_unit = sb.alloc_unit / kBlockSize;
  std::vector<UnitRun> runs;
  runs.reserve(extents.size());
  for (const Extent& e : extents) {
    if (e.physical < first || e.physical > end || e.count > end - e.physical) {
      return Status::Error(EUCLEAN, "check extents", "metadata")
          .WithDetail("extent at device block " + std::to_string(e.physical) + " (+" +
                      std::to_string(e.count) + ") lies outside the data region");
    }
    const uint64_t u0 = (e.physical - first) / per_unit;
    const uint64_t u1 = (e.physical_end() - first + per_unit - 1) / per_unit;
    runs.push_back({u0, u1 - u0});
  }
  std::sort(runs.begin(), runs.end(),
            [](const UnitRun& a, const UnitRun& b) { return a.first < b.first; });
  std::vector<UnitRun> merged;
  for (const UnitRun& r : runs) {
    if (!merged.empty() && r.first <= merged.back().first + merged.back().count) {
      const uint64_t end_unit =
          std::max(merged.back().first + merged.back().count, r.first + r.count);
      merged.back().count = end_unit - merged.back().first;
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

size_t InodeBytes(const Inode& inode) {
  size_t bytes = 96 + inode.attr.symlink.size() + kExtentBytes * inode.extents.extents().size();
  for (const auto& [k, v] : inode.attr.xattrs) bytes += 3 + k.size() + v.size();
  return bytes;
}

size_t DirentBytes(std::string_view name) {
  return 30 + name.size();
}

size_t InodeAndEntriesBytes(const Inode& inode) {
  size_t bytes = InodeBytes(inode);
  if (inode.dir) {
    for (const auto& [cookie, entry] : inode.dir->entries()) bytes += DirentBytes(entry.name);
  }
  return bytes;
}

}  // namespace internal

namespace {

using internal::kExtentBytes;
using internal::UnitToBlock;

// Free space Trim discards in one hold of the metadata lock.
constexpr uint64_t kTrimPiece = 64 << 20;

// Where one staging-sized piece of a transfer goes: file bytes [chunk,
// chunk_end) live at device block `physical`; the caller's bytes cover
// [from, to) of it.
struct Chunk {
  const Segment& segment;
  uint64_t chunk;
  uint64_t chunk_end;
  uint64_t from;
  uint64_t to;
  uint64_t physical;
};

// Calls `visit` for each staging-sized piece of the mapped segments that
// overlap [offset, end), in order, until it returns false.
template <typename Visit>
void ForEachChunk(const std::vector<Segment>& segments, uint64_t offset, uint64_t end,
                  uint64_t chunk_size, Visit visit) {
  for (const Segment& seg : segments) {
    const uint64_t seg_begin = seg.logical * kBlockSize;
    const uint64_t seg_end = (seg.logical + seg.count) * kBlockSize;
    for (uint64_t chunk = seg_begin; chunk < seg_end; chunk += chunk_size) {
      const uint64_t chunk_end = std::min(seg_end, chunk + chunk_size);
      const uint64_t physical =
          seg.physical.has_value() ? *seg.physical + (chunk / kBlockSize - seg.logical) : 0;
      if (!visit(Chunk{seg, chunk, chunk_end, std::max(offset, chunk), std::min(end, chunk_end),
                       physical})) {
        return;
      }
    }
  }
}

Status ReadBlock(aio::IoEngine& engine, uint64_t physical_block, std::byte* out) {
  return engine.Execute({IoOp::kRead, physical_block * kBlockSize, out, kBlockSize});
}

// The error a caller sees for a failed transfer: the file op, with the
// device's error kept as detail.
Status FileError(std::string_view op, const std::string& path, uint64_t offset, uint64_t length,
                 const Status& device_error) {
  return Status::Error(device_error.code(), op, path, offset, length)
      .WithDetail(device_error.ToString());
}

}  // namespace

void Volume::FreeExtents(const std::vector<Extent>& extents) {
  auto runs = internal::UnitsOf(store_.superblock(), extents);
  if (!runs.ok()) return;  // checked at open; cannot happen for live extents
  for (const UnitRun& run : *runs) (void)allocator_.Free(run);
}

Result<uint64_t> Volume::Trim(uint64_t start, uint64_t length, uint64_t min_length) {
  const Superblock& sb = store_.superblock();
  const uint64_t unit = sb.alloc_unit;
  const uint64_t total = allocator_.total_units();
  // The units wholly inside [start, end).
  const uint64_t end = length > UINT64_MAX - start ? UINT64_MAX : start + length;
  uint64_t next = start <= sb.data_offset ? 0 : RoundUp(start - sb.data_offset, unit) / unit;
  const uint64_t limit = end <= sb.data_offset ? 0 : std::min(total, (end - sb.data_offset) / unit);
  // Rounded up without overflowing: fstrim passes any 64-bit minimum.
  const uint64_t min_units = std::max<uint64_t>(1, min_length / unit + (min_length % unit != 0));
  const uint64_t piece_units = std::max<uint64_t>(1, kTrimPiece / unit);
  {
    std::lock_guard lock(mu_);
    NVSWAPFS_RETURN_IF_ERROR(CheckWritable("trim", kRootIno));
    NVSWAPFS_RETURN_IF_ERROR(CommitLocked());
  }
  uint64_t trimmed = 0;
  bool continuing = false;  // `next` is where the last piece, cut short, ended
  while (next < limit) {
    std::lock_guard lock(mu_);
    NVSWAPFS_RETURN_IF_ERROR(CheckWritable("trim", kRootIno));
    const std::optional<UnitRun> run = allocator_.FreeRunFrom(next);
    if (!run.has_value() || run->first >= limit) break;
    const uint64_t available = std::min(run->first + run->count, limit) - run->first;
    if (available < min_units && !(continuing && run->first == next)) {
      next = run->first + available;
      continuing = false;
      continue;
    }
    const uint64_t count = std::min(available, piece_units);
    const uint64_t offset = UnitToBlock(sb, run->first) * kBlockSize;
    Status s = engine_->Discard(offset, count * unit);
    if (!s.ok()) return FileError("trim", meta_.PathOf(kRootIno), offset, count * unit, s);
    trimmed += count * unit;
    next = run->first + count;
    continuing = count < available;
  }
  return trimmed;
}

template <typename Change>
auto Volume::ChangeExtentsLocked(Inode& inode, Change change) {
  const size_t before = inode.extents.extents().size();
  auto account = [&] {
    const size_t after = inode.extents.extents().size();
    if (after >= before) {
      metadata_bytes_ += kExtentBytes * (after - before);
    } else {
      metadata_bytes_ -= std::min(metadata_bytes_, kExtentBytes * (before - after));
    }
  };
  if constexpr (std::is_void_v<decltype(change())>) {
    change();
    account();
  } else {
    auto result = change();
    account();
    return result;
  }
}

Status Volume::EnsureMapped(Inode& inode, uint64_t first_block, uint64_t end_block,
                            std::string_view op, uint64_t offset, uint64_t length) {
  const Superblock& sb = store_.superblock();
  const uint64_t per_unit = sb.alloc_unit / kBlockSize;
  const uint64_t u0 = first_block / per_unit;
  const uint64_t u1 = (end_block + per_unit - 1) / per_unit;
  std::vector<Segment> holes;
  uint64_t needed = 0;
  for (const Segment& s : inode.extents.Lookup(u0 * per_unit, (u1 - u0) * per_unit)) {
    if (!s.hole()) continue;
    holes.push_back(s);
    needed += s.count / per_unit;
  }
  if (needed == 0) return Status::Ok();
  const uint64_t ino = inode.attr.ino;
  NVSWAPFS_RETURN_IF_ERROR(CheckMetadataRoom(op, ino, kExtentBytes * (holes.size() + 1)));

  uint64_t goal = 0;
  if (auto next = inode.extents.NextPhysicalGoal(); next.has_value()) {
    const uint64_t first_data = sb.data_offset / kBlockSize;
    if (*next >= first_data) goal = (*next - first_data) / per_unit;
  }
  std::vector<UnitRun> runs = allocator_.Allocate(needed, goal);
  if (runs.empty() && allocator_.pending_units() > 0) {
    // Space freed by changes not yet durable becomes usable once they are.
    NVSWAPFS_RETURN_IF_ERROR(CommitLocked());
    runs = allocator_.Allocate(needed, goal);
  }
  if (runs.empty()) {
    return Status::Error(ENOSPC, op, meta_.PathOf(ino), offset, length)
        .WithDetail("needs " + FormatSize(needed * sb.alloc_unit) + ", " +
                    FormatSize(allocator_.free_units() * sb.alloc_unit) + " free");
  }
  // Hand the runs out to the holes in order.
  size_t run = 0;
  uint64_t used_in_run = 0;
  for (const Segment& hole : holes) {
    uint64_t logical_unit = hole.logical / per_unit;
    uint64_t units = hole.count / per_unit;
    while (units > 0) {
      const uint64_t take = std::min(units, runs[run].count - used_in_run);
      const uint64_t physical = UnitToBlock(sb, runs[run].first + used_in_run);
      ChangeExtentsLocked(inode, [&] {
        inode.extents.Insert(logical_unit * per_unit, physical, take * per_unit,
                             /*unwritten=*/true);
      });
      logical_unit += take;
      units -= take;
      used_in_run += take;
      if (used_in_run == runs[run].count) {
        ++run;
        used_in_run = 0;
      }
    }
  }
  MarkDirty(ino);
  return Status::Ok();
}

// One read in flight. It holds a reference for every engine request it
// issued plus one for its submitter; the last one to let go hands the finish
// to the executor.
struct Volume::Transfer {
  uint64_t ino;
  std::string path;
  uint64_t offset;
  uint64_t length;
  TransferDone done;
  std::atomic<int> references{1};
  std::chrono::steady_clock::time_point finished;  // by the engine: set by the last reference
  std::mutex mu;
  Status error;  // the first failure; guarded by mu

  void Fail(Status s) {
    std::lock_guard lock(mu);
    if (error.ok()) error = std::move(s);
  }
  bool failed() {
    std::lock_guard lock(mu);
    return !error.ok();
  }
};

void Volume::SubmitPiece(Transfer* t, const IoRequest& request, BufferPool::Lease lease,
                         std::function<void()> after) {
  t->references.fetch_add(1, std::memory_order_relaxed);
  auto held = std::make_shared<BufferPool::Lease>(std::move(lease));
  engine_->Submit(request, [this, t, held, after = std::move(after)](Status s) mutable {
    if (s.ok() && after) after();
    held.reset();
    if (!s.ok()) t->Fail(std::move(s));
    ReleaseTransfer(t);
  });
}

void Volume::ReleaseTransfer(Transfer* t) {
  if (t->references.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // Finishing takes the metadata lock; keep that off the engine's threads.
  t->finished = std::chrono::steady_clock::now();
  executor_->Post([this, t] { FinishTransfer(t); });
}

void Volume::FinishTransfer(Transfer* t) {
  std::unique_ptr<Transfer> owned(t);
  read_finish_wait_.RecordSince(t->finished);
  Status error;
  {
    std::lock_guard lock(t->mu);
    error = std::move(t->error);
  }
  {
    std::lock_guard lock(mu_);
    Unpin(t->ino);
  }
  Gate(t->ino).UnlockShared();
  if (!error.ok()) {
    t->done(FileError("read", t->path, t->offset, t->length, error));
  } else {
    t->done(static_cast<size_t>(t->length));
  }
  // Counted out only once reported and let go: what `done` holds (a reply
  // buffer from its caller's pool) is given back before Close returns and
  // the caller tears down what it lent.
  owned.reset();
  EndTransfer();
}

void Volume::EndTransfer() {
  std::lock_guard lock(mu_);
  if (--transfers_ == 0) transfers_done_.notify_all();
}

// One WriteAsync call: its engine requests hold a reference each, the
// submitter one more. In WriteMode::kThrough the last one reports.
struct Volume::WriteOp {
  uint64_t ino = 0;
  uint64_t old_size = 0;
  std::string path;
  uint64_t offset = 0;
  uint64_t length = 0;
  WriteMode mode = WriteMode::kThrough;
  TransferDone done;
  // Set before the submitter lets go when `done` has already run.
  bool reported = false;
  std::atomic<int> references{1};
  std::mutex mu;
  Status error;  // the first failure; guarded by mu
};

void Volume::WaitWritesLocked(uint64_t ino, BlockRange blocks) {
  std::unique_lock lock(inflight_mu_);
  inflight_done_.wait(lock, [&] {
    if (ino == 0) return inflight_.empty();
    auto [begin, end] = inflight_.equal_range(ino);
    return std::none_of(begin, end, [&](const auto& e) { return e.second.Overlaps(blocks); });
  });
}

void Volume::ReapWriteFailuresLocked() {
  std::vector<WriteFailure> failures;
  {
    std::lock_guard lock(inflight_mu_);
    failures.swap(failures_);
  }
  for (WriteFailure& f : failures) {
    Inode* inode = meta_.Find(f.ino);
    if (inode == nullptr) continue;
    // What the device holds there is unknown now: never show it. Bytes a
    // caller was told were written read as EIO until written again.
    if (f.unwrite) {
      ChangeExtentsLocked(*inode, [&] {
        inode->extents.SetUnwritten(f.blocks.first, f.blocks.end - f.blocks.first, true);
      });
    }
    if (f.report_later) {
      lost_[f.ino].push_back(f.blocks);
      write_errors_.emplace(f.ino, std::move(f.status));
    }
    BumpVersionLocked(f.ino);
    MarkDirty(f.ino);
  }
}

void Volume::QuiesceLocked(uint64_t ino) {
  if (ino == 0) {
    while (!tails_.empty()) FlushTailLocked(tails_.begin()->first);
  } else {
    FlushTailLocked(ino);
  }
  WaitWritesLocked(ino, {0, UINT64_MAX});
  ReapWriteFailuresLocked();
}

void Volume::DropTailLocked(uint64_t ino) {
  tails_.erase(ino);
}

Status Volume::FillEdgesLocked(const Inode& inode, uint64_t from, uint64_t to, uint64_t window,
                               std::byte* window_data) {
  const uint64_t first = from / kBlockSize;
  const uint64_t last = (to - 1) / kBlockSize;
  const std::vector<Segment> segments = inode.extents.Lookup(first, last + 1 - first);
  // Bytes [begin, end) of file block `block`: zeros where nothing was ever
  // written, else what the device holds.
  auto fill = [&](uint64_t block, size_t begin, size_t end) -> Status {
    std::byte* dest = window_data + (block * kBlockSize - window);
    for (const Segment& seg : segments) {
      if (block < seg.logical || block >= seg.logical + seg.count) continue;
      if (seg.hole() || seg.unwritten) break;
      NVSWAPFS_RETURN_IF_ERROR(
          ReadBlock(*engine_, *seg.physical + (block - seg.logical), edge_block_.data()));
      std::memcpy(dest + begin, edge_block_.data() + begin, end - begin);
      return Status::Ok();
    }
    std::memset(dest + begin, 0, end - begin);
    return Status::Ok();
  };
  if (from % kBlockSize != 0) NVSWAPFS_RETURN_IF_ERROR(fill(first, 0, from % kBlockSize));
  if (to % kBlockSize != 0) NVSWAPFS_RETURN_IF_ERROR(fill(last, to % kBlockSize, kBlockSize));
  return Status::Ok();
}

std::vector<Segment> Volume::AcceptBlocksLocked(Inode& inode, BlockRange blocks) {
  const uint64_t ino = inode.attr.ino;
  std::vector<Segment> segments = inode.extents.Lookup(blocks.first, blocks.end - blocks.first);
  ChangeExtentsLocked(
      inode, [&] { inode.extents.SetUnwritten(blocks.first, blocks.end - blocks.first, false); });
  if (auto it = lost_.find(ino); it != lost_.end()) {
    // Rewritten whole: no longer lost.
    std::erase_if(it->second, [&](const BlockRange& r) {
      return r.first >= blocks.first && r.end <= blocks.end;
    });
    if (it->second.empty()) lost_.erase(it);
  }
  {
    std::lock_guard lock(inflight_mu_);
    for (const Segment& s : segments)
      inflight_.emplace(ino, BlockRange{s.logical, s.logical + s.count});
  }
  ++data_written_;
  return segments;
}

void Volume::SubmitBlocks(const std::shared_ptr<WriteOp>& op, uint64_t ino,
                          const std::vector<Segment>& segments, uint64_t origin,
                          std::byte* origin_data, std::shared_ptr<void> keep) {
  for (const Segment& s : segments) {
    const BlockRange blocks{s.logical, s.logical + s.count};
    op->references.fetch_add(1, std::memory_order_relaxed);
    engine_->Submit({IoOp::kWrite, *s.physical * kBlockSize,
                     origin_data + (s.logical * kBlockSize - origin), s.count * kBlockSize},
                    [this, op, ino, blocks, keep, fresh = s.unwritten](Status st) mutable {
                      keep.reset();
                      WriteDone(op, ino, blocks, fresh, std::move(st));
                    });
  }
}

void Volume::ReleaseWriteOp(const std::shared_ptr<WriteOp>& op) {
  if (op->references.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (op->mode != WriteMode::kThrough || op->reported) return;
  // Reporting may need mu_ (to undo a failure first): not on an engine
  // thread.
  executor_->Post([this, op] {
    Status error;
    {
      std::lock_guard lock(op->mu);
      error = op->error;
    }
    if (error.ok()) return ReportWrite(*op, static_cast<size_t>(op->length));
    {
      std::lock_guard lock(mu_);
      ReapWriteFailuresLocked();
      // Undo the extension too, unless the file changed size since.
      Inode* inode = meta_.Find(op->ino);
      if (inode != nullptr && inode->attr.size == op->offset + op->length &&
          op->old_size < inode->attr.size) {
        inode->attr.size = op->old_size;
        MarkDirty(op->ino);
      }
    }
    ReportWrite(*op, FileError("write", op->path, op->offset, op->length, error));
  });
}

void Volume::ReportWrite(WriteOp& op, Result<size_t> result) {
  op.done(std::move(result));
  if (op.mode != WriteMode::kThrough) return;
  // Counted out only once reported, as reads are (FinishTransfer): the
  // caller's reply must not outlive what Close's caller tears down next.
  EndTransfer();
}

void Volume::WriteDone(const std::shared_ptr<WriteOp>& op, uint64_t ino, BlockRange blocks,
                       bool fresh, Status s) {
  if (!s.ok()) {
    std::lock_guard lock(op->mu);
    if (op->error.ok()) op->error = s;
  }
  {
    std::lock_guard lock(inflight_mu_);
    if (!s.ok()) {
      // A write that reports for itself is not reported again later, and
      // gives back what it changed.
      const bool behind = op->mode == WriteMode::kBehind;
      failures_.push_back({ino, blocks,
                           FileError("write", op->path, blocks.first * kBlockSize,
                                     (blocks.end - blocks.first) * kBlockSize, s),
                           behind, behind || fresh});
    }
  }
  // Before the request leaves the in-flight set, so that a volume closing
  // waits for the report to be posted.
  ReleaseWriteOp(op);
  // Last, and notified under the lock: a waiter may go on to destroy the
  // volume.
  std::lock_guard lock(inflight_mu_);
  auto [begin, end] = inflight_.equal_range(ino);
  for (auto it = begin; it != end; ++it) {
    if (it->second.first == blocks.first && it->second.end == blocks.end) {
      inflight_.erase(it);
      break;
    }
  }
  inflight_done_.notify_all();
}

Volume::Tail* Volume::NewTailLocked(uint64_t ino, uint64_t window) {
  BufferPool::Lease lease = tail_pool_->TryAcquire();
  if (!lease.valid()) {
    // Every buffer gathers some file's bytes or is on its way to the device:
    // send the least recently used on, and take the first to come back.
    auto lru = std::min_element(tails_.begin(), tails_.end(), [](const auto& a, const auto& b) {
      return a.second->last_used < b.second->last_used;
    });
    if (lru != tails_.end()) FlushTailLocked(lru->first);
    lease = tail_pool_->Acquire();
  }
  auto tail = std::make_unique<Tail>();
  tail->lease = std::move(lease);
  tail->window = window;
  tail->last_used = ++tail_clock_;
  Tail* raw = tail.get();
  tails_[ino] = std::move(tail);
  return raw;
}

void Volume::FlushTailLocked(uint64_t ino) {
  auto it = tails_.find(ino);
  if (it == tails_.end()) return;
  std::unique_ptr<Tail> tail = std::move(it->second);
  tails_.erase(it);
  Inode* inode = meta_.Find(ino);
  if (inode == nullptr) return;
  const BlockRange blocks{tail->lo / kBlockSize, (tail->hi + kBlockSize - 1) / kBlockSize};
  WaitWritesLocked(ino, blocks);
  ReapWriteFailuresLocked();
  auto op = std::make_shared<WriteOp>();
  op->ino = ino;
  op->mode = WriteMode::kBehind;
  op->path = meta_.PathOf(ino);
  op->offset = tail->lo;
  op->length = tail->hi - tail->lo;
  std::byte* data = tail->lease.data();
  // The rest of partly gathered first and last blocks: what the file holds.
  Status s = FillEdgesLocked(*inode, tail->lo, tail->hi, tail->window, data);
  if (!s.ok()) {
    // The gathered bytes cannot be placed: lost, like a failed write.
    {
      std::lock_guard lock(inflight_mu_);
      failures_.push_back(
          {ino, blocks, FileError("write", op->path, op->offset, op->length, s), true, true});
    }
    ReapWriteFailuresLocked();
    return;
  }
  const std::vector<Segment> segments = AcceptBlocksLocked(*inode, blocks);
  SubmitBlocks(op, ino, segments, tail->window, data,
               std::make_shared<BufferPool::Lease>(std::move(tail->lease)));
  ReleaseWriteOp(op);
}

void Volume::WriteAsync(uint64_t ino, uint64_t offset, std::span<const std::byte> data,
                        TransferDone done, WriteMode mode, bool privileged) {
  // Lent bytes are only ever read: the other form writes to the device
  // from them only when handed over.
  WriteAsync(ino, offset, std::span(const_cast<std::byte*>(data.data()), data.size()), nullptr,
             std::move(done), mode, privileged);
}

void Volume::WriteAsync(uint64_t ino, uint64_t offset, std::span<std::byte> data,
                        std::shared_ptr<void> owner, TransferDone done, WriteMode mode,
                        bool privileged) {
  auto op = std::make_shared<WriteOp>();
  op->ino = ino;
  op->offset = offset;
  op->length = data.size();
  op->mode = mode;
  op->done = std::move(done);
  // Check and map the whole range first, so that a write that cannot be
  // done changes nothing.
  bool dropped_set_id = false;
  Status refused = [&]() -> Status {
    std::lock_guard lock(mu_);
    // A write that reports once on the device counts as in flight until it
    // has (ReportWrite); Close waits for it.
    if (mode == WriteMode::kThrough) ++transfers_;
    auto node = Node("write", ino);
    if (!node.ok()) return node.status();
    Inode& inode = **node;
    op->path = meta_.PathOf(ino);
    op->old_size = inode.attr.size;
    if (inode.is_dir()) return Status::Error(EISDIR, "write", op->path, offset, op->length);
    if (!inode.is_reg()) return Status::Error(EINVAL, "write", op->path, offset, op->length);
    NVSWAPFS_RETURN_IF_ERROR(CheckWritable("write", ino));
    if (offset > kMaxFileSize || op->length > kMaxFileSize - offset) {
      return Status::Error(EFBIG, "write", op->path, offset, op->length)
          .WithDetail("files are at most " + FormatSize(kMaxFileSize));
    }
    // An earlier write-behind failure of this file is reported now.
    ReapWriteFailuresLocked();
    NVSWAPFS_RETURN_IF_ERROR(TakeWriteErrorLocked(ino));
    if (op->length == 0) return Status::Ok();
    // Into allocated space, a write can split an extent in three.
    NVSWAPFS_RETURN_IF_ERROR(CheckMetadataRoom("write", ino, 2 * kExtentBytes));
    NVSWAPFS_RETURN_IF_ERROR(EnsureMapped(inode, offset / kBlockSize,
                                          (offset + op->length + kBlockSize - 1) / kBlockSize,
                                          "write", offset, op->length));
    if (!privileged) dropped_set_id = DropSetIdLocked(inode);
    return Status::Ok();
  }();
  if (dropped_set_id && attr_listener_) attr_listener_(ino);
  if (!refused.ok() || op->length == 0) {
    op->reported = true;
    ReportWrite(*op, refused.ok() ? Result<size_t>(size_t{0}) : Result<size_t>(std::move(refused)));
    return;
  }

  // One piece per file window (a staging buffer's worth, aligned): a piece
  // that reaches its window's end goes to the device now; one that stops
  // short (the end of a small write) is gathered until its window fills,
  // the file is read, synced or committed, or its buffer is needed.
  // A piece that goes to the device at once is written from the caller's
  // memory when that was handed over and the piece is whole aligned blocks
  // (a 1 MiB write at a 1 MiB offset, as dd bs=1M and fio make them).
  struct Piece {
    uint64_t from;
    uint64_t to;
    uint64_t origin;         // the file byte at `origin_data`
    std::byte* origin_data;  // a staging buffer (copied into) or `data`
    std::shared_ptr<void> keep;
    bool copy;
    std::vector<Segment> segments;
  };
  const bool handed_over = owner != nullptr && offset % kBlockSize == 0 &&
                           reinterpret_cast<uintptr_t>(data.data()) % aio::kBufferAlignment == 0;
  // Whether a piece going to the device at once, ending at file byte `to`,
  // is written from `data` rather than copied into staging.
  auto from_caller = [&](uint64_t to) { return handed_over && to % kBlockSize == 0; };
  const uint64_t window_size = staging_->buffer_size();
  const uint64_t end = offset + op->length;
  const size_t batch = std::max<size_t>(1, std::min<size_t>(4, staging_->capacity() / 4));
  uint64_t pos = offset;
  while (pos < end && refused.ok()) {
    size_t direct = 0;
    for (uint64_t p = pos, i = 0; i < batch && p < end; ++i) {
      const uint64_t w_end = RoundDown(p, window_size) + window_size;
      const uint64_t to = std::min(end, w_end);
      if ((end >= w_end || mode == WriteMode::kThrough) && !from_caller(to)) ++direct;
      p = to;
    }
    std::vector<BufferPool::Lease> leases;
    if (direct > 0) leases = staging_->Acquire(direct);
    std::vector<Piece> pieces;
    {
      std::lock_guard lock(mu_);
      Inode* inode = meta_.Find(ino);
      if (inode == nullptr) {
        refused = Status::Error(ENOENT, "write", op->path, pos, end - pos)
                      .WithDetail("the file was deleted during the write");
        break;
      }
      size_t next_lease = 0;
      for (size_t i = 0; i < batch && pos < end; ++i) {
        const uint64_t window = RoundDown(pos, window_size);
        const uint64_t w_end = window + window_size;
        const uint64_t to = std::min(end, w_end);
        const std::byte* src = data.data() + (pos - offset);
        const bool gather = mode == WriteMode::kBehind && to < w_end;
        auto t = tails_.find(ino);
        if (t != tails_.end() && mode == WriteMode::kBehind && t->second->window == window &&
            t->second->hi == pos) {
          Tail& tail = *t->second;
          std::memcpy(tail.lease.data() + (pos - window), src, to - pos);
          tail.hi = to;
          tail.last_used = ++tail_clock_;
          if (to == w_end) FlushTailLocked(ino);
        } else {
          if (t != tails_.end()) FlushTailLocked(ino);
          if (gather) {
            Tail* tail = NewTailLocked(ino, window);
            std::memcpy(tail->lease.data() + (pos - window), src, to - pos);
            tail->lo = pos;
            tail->hi = to;
          } else {
            const BlockRange blocks{pos / kBlockSize, (to + kBlockSize - 1) / kBlockSize};
            WaitWritesLocked(ino, blocks);
            ReapWriteFailuresLocked();
            Piece piece;
            piece.from = pos;
            piece.to = to;
            if (from_caller(to)) {
              piece.origin = offset;
              piece.origin_data = data.data();
              piece.keep = owner;
              piece.copy = false;
            } else {
              auto lease = std::make_shared<BufferPool::Lease>(std::move(leases[next_lease++]));
              piece.origin = window;
              piece.origin_data = lease->data();
              piece.keep = std::move(lease);
              piece.copy = true;
              // The rest of partly written first and last blocks: what the
              // file holds there.
              Status s = FillEdgesLocked(*inode, pos, to, window, piece.origin_data);
              if (!s.ok()) {
                refused = FileError("write", op->path, offset, op->length, s);
                break;
              }
            }
            piece.segments = AcceptBlocksLocked(*inode, blocks);
            pieces.push_back(std::move(piece));
          }
        }
        inode->attr.size = std::max(inode->attr.size, to);
        pos = to;
      }
      inode->attr.mtime_ns = inode->attr.ctime_ns = NowNs();
      MarkDirty(ino);
      BumpVersionLocked(ino);
    }
    // Registered in flight above: the copies and submissions must follow.
    for (Piece& p : pieces) {
      if (p.copy) {
        std::memcpy(p.origin_data + (p.from - p.origin), data.data() + (p.from - offset),
                    p.to - p.from);
      }
      SubmitBlocks(op, ino, p.segments, p.origin, p.origin_data, std::move(p.keep));
    }
  }
  if (mode == WriteMode::kBehind || !refused.ok()) {
    op->reported = true;
    ReportWrite(*op, refused.ok() ? Result<size_t>(static_cast<size_t>(op->length))
                                  : Result<size_t>(std::move(refused)));
  }
  ReleaseWriteOp(op);
}

bool Volume::DropSetIdLocked(Inode& inode) {
  uint32_t kill = inode.attr.mode & S_ISUID;
  if ((inode.attr.mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) kill |= S_ISGID;
  if (kill == 0) return false;
  inode.attr.mode &= ~kill;
  inode.attr.ctime_ns = NowNs();
  MarkDirty(inode.attr.ino);
  return true;
}

void Volume::ReadAsync(uint64_t ino, uint64_t offset, std::span<std::byte> out, TransferDone done) {
  internal::IoGate& gate = Gate(ino);
  gate.LockShared();
  auto t = std::make_unique<Transfer>();
  t->ino = ino;
  t->offset = offset;
  t->done = std::move(done);
  std::vector<Segment> segments;
  Status refused;
  {
    std::lock_guard lock(mu_);
    refused = [&]() -> Status {
      auto node = Node("read", ino);
      if (!node.ok()) return node.status();
      const Inode& inode = **node;
      t->path = meta_.PathOf(ino);
      if (inode.is_dir()) return Status::Error(EISDIR, "read", t->path, offset, out.size());
      if (!inode.is_reg()) return Status::Error(EINVAL, "read", t->path, offset, out.size());
      if (offset >= inode.attr.size || out.empty()) return Status::Ok();
      t->length = std::min<uint64_t>(out.size(), inode.attr.size - offset);
      const uint64_t first_block = offset / kBlockSize;
      const uint64_t end_block = (offset + t->length + kBlockSize - 1) / kBlockSize;
      // Reads see every write accepted before them.
      if (tails_.contains(ino)) FlushTailLocked(ino);
      WaitWritesLocked(ino, {first_block, end_block});
      ReapWriteFailuresLocked();
      if (auto it = lost_.find(ino); it != lost_.end()) {
        for (const BlockRange& r : it->second) {
          if (r.Overlaps({first_block, end_block})) {
            return Status::Error(EIO, "read", t->path, offset, t->length)
                .WithDetail("an earlier write of these bytes failed on the device (reported then)");
          }
        }
      }
      segments = inode.extents.Lookup(first_block, end_block - first_block);
      pins_[ino]++;
      transfers_++;
      return Status::Ok();
    }();
  }
  if (!refused.ok() || t->length == 0) {
    gate.UnlockShared();
    if (!refused.ok()) return t->done(std::move(refused));
    return t->done(size_t{0});
  }

  Transfer* raw = t.release();
  ForEachChunk(
      segments, offset, offset + raw->length, staging_->buffer_size(), [&](const Chunk& c) {
        std::byte* dest = out.data() + (c.from - offset);
        if (c.segment.hole() || c.segment.unwritten) {
          std::memset(dest, 0, c.to - c.from);
          return true;
        }
        std::byte* direct = out.data() + (c.chunk - offset);
        if (c.from == c.chunk && c.to == c.chunk_end &&
            reinterpret_cast<uintptr_t>(direct) % aio::kBufferAlignment == 0) {
          // Aligned on both sides: straight into the caller's memory.
          SubmitPiece(raw, {IoOp::kRead, c.physical * kBlockSize, direct, c.chunk_end - c.chunk},
                      BufferPool::Lease(), nullptr);
          return !raw->failed();
        }
        BufferPool::Lease lease = staging_->Acquire();
        std::byte* buf = lease.data();
        const std::byte* src = buf + (c.from - c.chunk);
        const uint64_t n = c.to - c.from;
        SubmitPiece(raw, {IoOp::kRead, c.physical * kBlockSize, buf, c.chunk_end - c.chunk},
                    std::move(lease), [dest, src, n] { std::memcpy(dest, src, n); });
        return !raw->failed();
      });
  ReleaseTransfer(raw);
}

namespace {

// Waits for one transfer's outcome.
class Waiter {
 public:
  Volume::TransferDone Callback() {
    return [this](Result<size_t> r) {
      std::lock_guard lock(mu_);
      result_ = std::move(r);
      cv_.notify_all();
    };
  }
  Result<size_t> Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return result_.has_value(); });
    return std::move(*result_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Result<size_t>> result_;
};

}  // namespace

Result<size_t> Volume::Read(uint64_t ino, uint64_t offset, std::span<std::byte> out) {
  Waiter w;
  ReadAsync(ino, offset, out, w.Callback());
  return w.Wait();
}

Result<size_t> Volume::Write(uint64_t ino, uint64_t offset, std::span<const std::byte> data,
                             WriteMode mode) {
  Waiter w;
  WriteAsync(ino, offset, data, w.Callback(), mode);
  return w.Wait();
}

Status Volume::ZeroInBlock(uint64_t physical_block, uint32_t from, uint32_t to) {
  std::byte* block = edge_block_.data();
  NVSWAPFS_RETURN_IF_ERROR(ReadBlock(*engine_, physical_block, block));
  std::memset(block + from, 0, to - from);
  NVSWAPFS_RETURN_IF_ERROR(
      engine_->Execute({IoOp::kWrite, physical_block * kBlockSize, block, kBlockSize}));
  ++data_written_;
  return Status::Ok();
}

Status Volume::TruncateLocked(Inode& inode, uint64_t new_size, std::unique_lock<std::mutex>&) {
  const uint64_t ino = inode.attr.ino;
  QuiesceLocked(ino);
  BumpVersionLocked(ino);
  if (auto it = lost_.find(ino); it != lost_.end() && new_size < inode.attr.size) {
    const uint64_t keep = (new_size + kBlockSize - 1) / kBlockSize;
    std::erase_if(it->second, [&](const BlockRange& r) { return r.first >= keep; });
  }
  if (new_size > kMaxFileSize) {
    return Status::Error(EFBIG, "truncate", meta_.PathOf(ino), new_size, 0)
        .WithDetail("files are at most " + FormatSize(kMaxFileSize));
  }
  if (new_size < inode.attr.size) {
    const uint64_t per_unit = store_.superblock().alloc_unit / kBlockSize;
    // The bytes after the new end in its block must read as zeros if the
    // file grows again; zero them on the device before anything else.
    if (new_size % kBlockSize != 0) {
      for (const Segment& s : inode.extents.Lookup(new_size / kBlockSize, 1)) {
        if (s.hole() || s.unwritten) continue;
        Status z =
            ZeroInBlock(*s.physical, static_cast<uint32_t>(new_size % kBlockSize), kBlockSize);
        if (!z.ok()) return FileError("truncate", meta_.PathOf(ino), new_size, 0, z);
      }
    }
    const uint64_t keep_blocks = (new_size + kBlockSize - 1) / kBlockSize;
    const uint64_t unit_end = RoundUp(keep_blocks, per_unit);
    // Truncating never waits for metadata room: it is how room is made (the
    // one extent its last unit may split into two fits the headroom).
    const std::vector<Extent> removed = ChangeExtentsLocked(inode, [&] {
      std::vector<Extent> gone = inode.extents.RemoveFrom(unit_end);
      if (unit_end > keep_blocks)
        inode.extents.SetUnwritten(keep_blocks, unit_end - keep_blocks, true);
      return gone;
    });
    FreeExtents(removed);
  }
  inode.attr.size = new_size;
  inode.attr.mtime_ns = inode.attr.ctime_ns = NowNs();
  MarkDirty(ino);
  return Status::Ok();
}

Status Volume::PunchLocked(Inode& inode, uint64_t offset, uint64_t length) {
  const uint64_t ino = inode.attr.ino;
  QuiesceLocked(ino);
  BumpVersionLocked(ino);
  const uint64_t per_unit = store_.superblock().alloc_unit / kBlockSize;
  const uint64_t end = offset + length;
  const uint64_t first_full = (offset + kBlockSize - 1) / kBlockSize;
  const uint64_t end_full = end / kBlockSize;
  const uint64_t u0 = (first_full + per_unit - 1) / per_unit;
  const uint64_t u1 = end_full / per_unit;
  // Whole blocks that free no whole unit can split an extent, as a write
  // can, and need the same metadata room; a hole that frees units makes
  // room, and is never refused for it.
  if (end_full > first_full && u1 <= u0) {
    NVSWAPFS_RETURN_IF_ERROR(CheckMetadataRoom("fallocate", ino, 2 * kExtentBytes));
  }
  // Partial blocks at either end: zeros on the device where data was written.
  auto zero_part = [&](uint64_t block, uint32_t from, uint32_t to) -> Status {
    for (const Segment& s : inode.extents.Lookup(block, 1)) {
      if (s.hole() || s.unwritten) continue;
      Status z = ZeroInBlock(*s.physical, from, to);
      if (!z.ok()) return FileError("fallocate", meta_.PathOf(ino), offset, length, z);
    }
    return Status::Ok();
  };
  const uint64_t head_block = offset / kBlockSize;
  const uint64_t tail_block = end / kBlockSize;
  if (offset % kBlockSize != 0) {
    const auto from = static_cast<uint32_t>(offset % kBlockSize);
    const auto to = head_block == tail_block ? static_cast<uint32_t>(end % kBlockSize) : kBlockSize;
    NVSWAPFS_RETURN_IF_ERROR(zero_part(head_block, from, to));
  }
  if (end % kBlockSize != 0 && (tail_block != head_block || offset % kBlockSize == 0)) {
    NVSWAPFS_RETURN_IF_ERROR(zero_part(tail_block, 0, static_cast<uint32_t>(end % kBlockSize)));
  }
  if (end_full > first_full) {
    // Whole units go back to free space; the rest of the range stays
    // allocated but reads as zeros.
    ChangeExtentsLocked(inode, [&] {
      if (u1 > u0) FreeExtents(inode.extents.Remove(u0 * per_unit, (u1 - u0) * per_unit));
      inode.extents.SetUnwritten(first_full, end_full - first_full, true);
    });
  }
  inode.attr.mtime_ns = inode.attr.ctime_ns = NowNs();
  MarkDirty(ino);
  return Status::Ok();
}

Status Volume::Fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length) {
  const bool punch = mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE && !punch) {
    return Status::Error(EOPNOTSUPP, "fallocate", PathOf(ino), offset, length)
        .WithDetail("supported modes: allocate, keep size, punch hole");
  }
  internal::IoGate& gate = Gate(ino);
  gate.Lock();
  struct Unlock {
    internal::IoGate& g;
    ~Unlock() { g.Unlock(); }
  } unlock_gate{gate};
  std::unique_lock lock(mu_);
  auto node = Node("fallocate", ino);
  if (!node.ok()) return node.status();
  Inode& inode = **node;
  const std::string path = meta_.PathOf(ino);
  if (inode.is_dir()) return Status::Error(EISDIR, "fallocate", path, offset, length);
  if (!inode.is_reg()) return Status::Error(ENODEV, "fallocate", path, offset, length);
  NVSWAPFS_RETURN_IF_ERROR(CheckWritable("fallocate", ino));
  if (length == 0) {
    return Status::Error(EINVAL, "fallocate", path, offset, length).WithDetail("empty range");
  }
  if (offset > kMaxFileSize || length > kMaxFileSize - offset) {
    return Status::Error(EFBIG, "fallocate", path, offset, length)
        .WithDetail("files are at most " + FormatSize(kMaxFileSize));
  }
  if (punch) return PunchLocked(inode, offset, length);
  QuiesceLocked(ino);
  BumpVersionLocked(ino);
  const uint64_t first_block = offset / kBlockSize;
  const uint64_t end_block = (offset + length + kBlockSize - 1) / kBlockSize;
  NVSWAPFS_RETURN_IF_ERROR(
      EnsureMapped(inode, first_block, end_block, "fallocate", offset, length));
  const int64_t now = NowNs();
  if (mode == 0 && offset + length > inode.attr.size) {
    inode.attr.size = offset + length;
    inode.attr.mtime_ns = now;
  }
  inode.attr.ctime_ns = now;
  MarkDirty(ino);
  return Status::Ok();
}

}  // namespace nvswapfs::fs
