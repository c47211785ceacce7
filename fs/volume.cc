// Volume: opening and closing, commits, names, attributes and xattrs.
// The data path is in volume_data.cc.
#include "nvswapfs/fs/volume.h"

#include <pthread.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "executor.h"
#include "io_gate.h"
#include "nvswapfs/units.h"
#include "volume_internal.h"

namespace nvswapfs::fs {

using internal::DirentBytes;
using internal::InodeAndEntriesBytes;
using internal::InodeBytes;
using internal::UnitsOf;

namespace {

// Checkpoint when the log is this full, so that replay at the next open
// stays short.
constexpr double kCheckpointLogFraction = 0.5;
// Keep this share of a checkpoint slot in reserve for changes already made.
constexpr double kMetadataHeadroom = 0.9;
constexpr uint32_t kMaxLinks = 65000;
constexpr size_t kStagingBufferSize = 1 << 20;
constexpr size_t kGates = 64;
constexpr int kFinishThreads = 2;

}  // namespace

int64_t Volume::NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<Volume>> Volume::Open(std::unique_ptr<aio::IoEngine> engine,
                                             const VolumeOptions& options) {
  if (engine == nullptr) return Status::Error(EINVAL, "open volume", "engine");
  Metadata meta;
  LoadReport report;
  auto store =
      MetadataStore::Load(*engine, &meta, &report, /*accept_loss=*/false, options.boot_tag);
  if (!store.ok()) return store.status();
  VolumeOptions opts = options;
  if (engine->device().read_only) opts.read_only = true;
  std::vector<std::string> notes = report.Notes();
  if ((store->superblock().ro_compat_features & ~kKnownRoCompat) != 0 && !opts.read_only) {
    opts.read_only = true;
    notes.push_back("volume uses features this version can only read: mounted read-only");
  }
  if (report.log_end != kLogEndClean) notes.push_back(report.log_end);

  std::unique_ptr<Volume> volume(
      new Volume(std::move(engine), std::move(store).value(), std::move(meta), opts));
  volume->notes_ = std::move(notes);
  auto pool =
      aio::BufferPool::Create(kStagingBufferSize, std::max<size_t>(opts.staging_buffers, 2));
  if (!pool.ok()) return pool.status();
  volume->staging_ = std::move(pool).value();
  auto tails = aio::BufferPool::Create(kStagingBufferSize, std::max<size_t>(opts.tail_buffers, 2));
  if (!tails.ok()) return tails.status();
  volume->tail_pool_ = std::move(tails).value();
  auto edge = aio::AlignedBuffer::Allocate(kBlockSize);
  if (!edge.ok()) return edge.status();
  volume->edge_block_ = std::move(edge).value();

  // Rebuild free space as the complement of what files use; two files
  // claiming one unit is damage only fsck may repair.
  Volume& v = *volume;
  const Superblock& sb = v.store_.superblock();
  std::vector<uint64_t> orphans;
  for (const auto& [ino, inode] : v.meta_.inodes()) {
    auto runs = UnitsOf(sb, inode->extents.extents());
    if (!runs.ok()) {
      return std::move(runs).take_status().WithSubject(v.meta_.PathOf(ino)).WithOp("open volume");
    }
    for (const UnitRun& run : *runs) {
      if (!v.allocator_.MarkUsed(run)) {
        return Status::Error(EUCLEAN, "open volume", v.meta_.PathOf(ino))
            .WithDetail(
                "its space overlaps another file's or lies outside the data region; run "
                "fsck.nvswapfs");
      }
    }
    v.metadata_bytes_ += InodeAndEntriesBytes(*inode);
    if (inode->attr.nlink == 0) orphans.push_back(ino);
  }
  if (v.meta_.Find(kRootIno) == nullptr || !v.meta_.Find(kRootIno)->is_dir()) {
    return Status::Error(EUCLEAN, "open volume", v.engine_->device().path)
        .WithDetail("the root directory is missing; run fsck.nvswapfs");
  }
  if (!v.options_.read_only) {
    std::lock_guard lock(v.mu_);
    // Files unlinked while open when the volume last went down.
    for (uint64_t ino : orphans) {
      if (Inode* inode = v.meta_.Find(ino); inode != nullptr) v.FreeInode(*inode);
    }
    if (!orphans.empty()) {
      v.notes_.push_back("freed " + std::to_string(orphans.size()) +
                         " files deleted while open before the last shutdown");
      NVSWAPFS_RETURN_IF_ERROR(v.CommitLocked());
    }
    if (v.options_.commit_interval_s > 0) {
      v.commit_thread_ = std::thread([&v] {
        pthread_setname_np(pthread_self(), "nvswapfs-commit");
        v.CommitLoop();
      });
    }
  }
  return volume;
}

Volume::Volume(std::unique_ptr<aio::IoEngine> engine, MetadataStore store, Metadata metadata,
               const VolumeOptions& options)
    : engine_(std::move(engine)),
      store_(std::move(store)),
      options_(options),
      gates_(std::make_unique<internal::IoGate[]>(kGates)),
      executor_(std::make_unique<internal::Executor>(kFinishThreads, "nvswapfs-finish")),
      meta_(std::move(metadata)),
      allocator_(store_.superblock().data_size / store_.superblock().alloc_unit),
      next_ino_(store_.next_ino()) {}

Volume::~Volume() {
  (void)Close();
  // Runs what is still posted before the members it uses go.
  executor_.reset();
}

internal::IoGate& Volume::Gate(uint64_t ino) {
  return gates_[ino % kGates];
}

Status Volume::Close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return Status::Ok();
    stop_commit_thread_ = true;
  }
  commit_wake_.notify_all();
  if (commit_thread_.joinable()) commit_thread_.join();
  std::unique_lock lock(mu_);
  // Transfers still in flight finish (and report) before the last commit,
  // and so does a commit being written.
  transfers_done_.wait(lock, [&] { return transfers_ == 0; });
  commit_idle_.wait(lock, [&] { return !committing_; });
  QuiesceLocked(0);
  closed_ = true;
  if (options_.read_only) return Status::Ok();
  if (!poisoned_.ok()) return poisoned_;
  // Nothing is left to settle: every commit settles its own before it is
  // idle. A checkpoint holds everything, so the next open replays no log.
  std::lock_guard io(store_mu_);
  return CheckpointLocked();
}

void Volume::CommitLoop() {
  std::unique_lock lock(mu_);
  while (!stop_commit_thread_) {
    commit_wake_.wait_for(lock, std::chrono::seconds(options_.commit_interval_s));
    if (stop_commit_thread_) break;
    // A failure poisons the volume and is reported by every later change.
    (void)CommitUnlocking(lock, /*durable=*/true);
  }
}

Status Volume::CommitLocked(bool durable) {
  return Commit(durable, nullptr);
}

Status Volume::CommitUnlocking(std::unique_lock<std::mutex>& lock, bool durable) {
  return Commit(durable, &lock);
}

Status Volume::Commit(bool durable, std::unique_lock<std::mutex>* release) {
  if (options_.read_only) return Status::Ok();
  if (release != nullptr) {
    // One commit without mu_ at a time; a close or fsync that waits here is
    // often covered by the commit it waited for and finds nothing to write.
    commit_idle_.wait(*release, [&] { return !committing_; });
    committing_ = true;
  }
  // Free unless a commit is being written without mu_: that one never needs
  // mu_ to finish writing, and what it left is settled first.
  std::unique_lock io(store_mu_);
  SettleLocked();
  // Data before the metadata that points at it: every write accepted has
  // reached the device before the log write (and before the flush that
  // precedes it in a durable commit).
  if (poisoned_.ok()) QuiesceLocked(0);
  Status written;
  if (poisoned_.ok()) {
    CommitBatch batch = TakeBatchLocked(durable);
    // Without mu_, reads, writes and changes go on while the log is written
    // (and flushed), and what they change joins the next commit.
    if (release != nullptr) release->unlock();
    batch.status = WriteBatch(batch);
    written = batch.status;
    written_ = std::move(batch);
    if (release != nullptr) {
      io.unlock();
      release->lock();  // mu_ before store_mu_, as everywhere
      io.lock();
    }
    SettleLocked();
  }
  io.unlock();
  if (release != nullptr) {
    committing_ = false;
    commit_idle_.notify_all();
  }
  return poisoned_.ok() && written.code() != ENOSPC ? written : poisoned_;
}

Volume::CommitBatch Volume::TakeBatchLocked(bool durable) {
  CommitBatch b;
  b.durable = durable;
  b.next_ino = next_ino_;
  b.data_written = data_written_;
  b.free_epoch = allocator_.SealFrees();
  // Inodes first (so entries can point at them), entries in the order they
  // changed, deletions last.
  b.records.reserve(dirty_.size() + dirent_log_.size() + deleted_.size());
  for (uint64_t ino : dirty_) {
    if (const Inode* inode = meta_.Find(ino); inode != nullptr) {
      b.records.emplace_back(inode->ToRecord());
    }
  }
  for (auto& snapshot : deleted_snapshots_) b.records.emplace_back(std::move(snapshot));
  for (auto& r : dirent_log_) b.records.push_back(std::move(r));
  for (uint64_t ino : deleted_) b.records.emplace_back(InodeDeleteRecord{ino});
  // A durable commit also seals unordered ones before it, with an empty
  // commit if nothing else changed.
  b.log = !b.records.empty() || (durable && store_.unsealed());
  b.flush = durable && data_flushed_ != data_written_;
  if (b.log && static_cast<double>(store_.log_used()) >
                   kCheckpointLogFraction * static_cast<double>(store_.log_capacity())) {
    // The namespace as it is now holds every change the records would
    // have logged, and everything the log holds already.
    b.records.clear();
    b.is_checkpoint = true;
    b.durable = true;
    b.checkpoint_records = EncodeCheckpointLocked(&b.checkpoint);
  }
  ForgetChangesLocked();
  return b;
}

Status Volume::WriteBatch(const CommitBatch& b) {
  if (!b.log) return b.flush ? engine_->Flush() : Status::Ok();
  if (b.is_checkpoint)
    return store_.WriteCheckpoint(b.checkpoint, b.checkpoint_records, b.next_ino);
  // Only a durable commit flushes the data first. Without that flush the
  // commit is unordered: enough for a close, whose promise is to survive
  // the daemon being killed (QuiesceLocked before the batch was taken has
  // the data with the kernel), while a power cut drops it unless a durable
  // commit came after it. So closing a written file costs a log write, not
  // a device flush.
  return store_.Commit(b.records, b.next_ino, /*flush_data_first=*/b.durable, b.durable);
}

void Volume::SettleLocked() {
  if (!written_.has_value()) return;
  CommitBatch b = std::move(*written_);
  written_.reset();
  if (b.status.code() == ENOSPC && b.log && !b.is_checkpoint) {
    // The log is full and nothing was written: a checkpoint holds the
    // batch's changes, and everything since.
    QuiesceLocked(0);
    (void)CheckpointLocked();
    return;
  }
  if (!b.status.ok()) {
    // A failed flush alone loses nothing the metadata points at; a failed
    // log or checkpoint write leaves the volume's state unknown, so it
    // turns read-only.
    if (b.log) poisoned_ = b.status;
    return;
  }
  if (b.durable) {
    // What the batch freed is durable now: it may be handed out again.
    allocator_.CommitFrees(b.free_epoch);
    data_flushed_ = std::max(data_flushed_, b.data_written);
  } else if (b.log) {
    ++data_written_;  // the log write itself waits for the next flush
  }
}

Status Volume::CheckpointLocked() {
  if (!poisoned_.ok()) return poisoned_;
  std::vector<std::byte> body;
  const uint32_t records = EncodeCheckpointLocked(&body);
  Status s = store_.WriteCheckpoint(body, records, next_ino_);
  if (!s.ok()) {
    poisoned_ = s;
    return s;
  }
  // Everything is in the checkpoint, written between two flushes.
  ForgetChangesLocked();
  allocator_.CommitFrees();
  data_flushed_ = data_written_;
  return Status::Ok();
}

Volume::MetadataCount Volume::MetadataBytes() {
  std::lock_guard lock(mu_);
  MetadataCount count{.kept = metadata_bytes_};
  for (const auto& [ino, inode] : meta_.inodes()) count.recounted += InodeAndEntriesBytes(*inode);
  return count;
}

uint32_t Volume::EncodeCheckpointLocked(std::vector<std::byte>* body) const {
  // metadata_bytes_ estimates the encoding from above (InodeBytes and
  // DirentBytes round up), so the body is not moved while it grows.
  body->reserve(metadata_bytes_);
  return meta_.EncodeCheckpoint(body);
}

void Volume::ForgetChangesLocked() {
  dirty_.clear();
  dirent_log_.clear();
  deleted_.clear();
  deleted_snapshots_.clear();
}

void Volume::MarkDirty(uint64_t ino) {
  dirty_.insert(ino);
}

void Volume::LogDirent(Record record) {
  dirent_log_.push_back(std::move(record));
}

Attr Volume::AttrOf(const Inode& inode) const {
  Attr a;
  a.ino = inode.attr.ino;
  a.mode = inode.attr.mode;
  a.nlink = inode.attr.nlink;
  a.uid = inode.attr.uid;
  a.gid = inode.attr.gid;
  a.size = inode.attr.size;
  a.blocks = inode.extents.MappedBlocks() * (kBlockSize / 512);
  a.atime_ns = inode.attr.atime_ns;
  a.mtime_ns = inode.attr.mtime_ns;
  a.ctime_ns = inode.attr.ctime_ns;
  a.btime_ns = inode.attr.btime_ns;
  return a;
}

Result<uint64_t> Volume::Parent(uint64_t dir) {
  std::lock_guard lock(mu_);
  auto node = Dir("parent", dir);
  if (!node.ok()) return node.status();
  return dir == kRootIno || (*node)->parent == 0 ? dir : (*node)->parent;
}

std::string Volume::PathOf(uint64_t ino) {
  std::lock_guard lock(mu_);
  return meta_.PathOf(ino);
}

Status Volume::CheckWritable(std::string_view op, uint64_t ino) const {
  if (options_.read_only) {
    return Status::Error(EROFS, op, meta_.PathOf(ino)).WithDetail("volume is read-only");
  }
  if (!poisoned_.ok()) {
    return Status::Error(EROFS, op, meta_.PathOf(ino))
        .WithDetail("volume turned read-only after a failed commit: " + poisoned_.ToString());
  }
  return Status::Ok();
}

Status Volume::CheckMetadataRoom(std::string_view op, uint64_t ino, size_t extra_bytes) const {
  const double limit = kMetadataHeadroom * static_cast<double>(store_.checkpoint_capacity());
  if (static_cast<double>(metadata_bytes_ + extra_bytes) > limit) {
    return Status::Error(ENOSPC, op, meta_.PathOf(ino))
        .WithDetail(
            "metadata space is full (" + std::to_string(meta_.inode_count()) +
            " files); the volume needs a larger device, fewer files, or files in "
            "fewer pieces (small writes scattered over allocated space split a file into many)");
  }
  return Status::Ok();
}

Result<Inode*> Volume::Node(std::string_view op, uint64_t ino) {
  Inode* inode = meta_.Find(ino);
  if (inode == nullptr) {
    return Status::Error(ENOENT, op, "<inode " + std::to_string(ino) + ">")
        .WithDetail("no such inode");
  }
  return inode;
}

Result<Inode*> Volume::Dir(std::string_view op, uint64_t ino) {
  auto node = Node(op, ino);
  if (!node.ok()) return node;
  if (!(*node)->is_dir()) return Status::Error(ENOTDIR, op, meta_.PathOf(ino));
  return node;
}

namespace {

// Names as POSIX allows them, minus what no file may be called.
Status ValidateName(std::string_view op, const std::string& parent_path, std::string_view name) {
  auto subject = [&] {
    return (parent_path == "/" ? "" : parent_path) + "/" + std::string(name.substr(0, 64)) +
           (name.size() > 64 ? "..." : "");
  };
  if (name.size() > kMaxNameLength) {
    return Status::Error(ENAMETOOLONG, op, subject())
        .WithDetail("name is " + std::to_string(name.size()) + " bytes, at most " +
                    std::to_string(kMaxNameLength) + " allowed");
  }
  if (name.empty() || name == "." || name == ".." ||
      name.find_first_of(std::string_view("/\0", 2)) != std::string_view::npos) {
    return Status::Error(EINVAL, op, subject()).WithDetail("invalid file name");
  }
  return Status::Ok();
}

std::string ChildPath(const std::string& parent_path, std::string_view name) {
  return (parent_path == "/" ? "" : parent_path) + "/" + std::string(name);
}

}  // namespace

Result<Attr> Volume::Lookup(uint64_t parent, std::string_view name) {
  std::lock_guard lock(mu_);
  auto dir = Dir("lookup", parent);
  if (!dir.ok()) return dir.status();
  const std::string parent_path = meta_.PathOf(parent);
  NVSWAPFS_RETURN_IF_ERROR(ValidateName("lookup", parent_path, name));
  const DirEntry* entry = (*dir)->dir->Find(name);
  if (entry == nullptr) return Status::Error(ENOENT, "lookup", ChildPath(parent_path, name));
  const Inode* inode = meta_.Find(entry->ino);
  if (inode == nullptr) {
    return Status::Error(EUCLEAN, "lookup", ChildPath(parent_path, name))
        .WithDetail("entry points to missing inode " + std::to_string(entry->ino));
  }
  return AttrOf(*inode);
}

Result<Attr> Volume::MakeNode(std::string_view op, uint64_t parent, std::string_view name,
                              uint32_t type, const NewInode& how, std::string_view target) {
  std::lock_guard lock(mu_);
  auto dir = Dir(op, parent);
  if (!dir.ok()) return dir.status();
  const std::string parent_path = meta_.PathOf(parent);
  NVSWAPFS_RETURN_IF_ERROR(CheckWritable(op, parent));
  NVSWAPFS_RETURN_IF_ERROR(ValidateName(op, parent_path, name));
  if ((*dir)->attr.nlink == 0) {
    return Status::Error(ENOENT, op, ChildPath(parent_path, name))
        .WithDetail("the directory was removed");
  }
  if ((*dir)->dir->Find(name) != nullptr) {
    return Status::Error(EEXIST, op, ChildPath(parent_path, name));
  }
  if (type == S_IFDIR && (*dir)->attr.nlink >= kMaxLinks) {
    return Status::Error(EMLINK, op, ChildPath(parent_path, name));
  }
  const size_t bytes = 96 + target.size() + DirentBytes(name);
  NVSWAPFS_RETURN_IF_ERROR(CheckMetadataRoom(op, parent, bytes));

  InodeRecord r;
  r.ino = next_ino_++;
  r.mode = type | (how.mode & 07777);
  r.uid = how.uid;
  r.gid = how.gid;
  r.nlink = type == S_IFDIR ? 2 : 1;
  r.size = target.size();
  r.atime_ns = r.mtime_ns = r.ctime_ns = r.btime_ns = NowNs();
  r.next_cookie = type == S_IFDIR ? 1 : 0;
  r.symlink = std::string(target);
  Inode& inode = meta_.Upsert(r);
  inode.parent = parent;
  inode.name = std::string(name);

  Inode* d = *dir;
  const uint64_t cookie = d->attr.next_cookie++;
  d->dir->Add(cookie, r.ino, std::string(name));
  if (type == S_IFDIR) d->attr.nlink++;
  d->attr.mtime_ns = d->attr.ctime_ns = r.ctime_ns;
  metadata_bytes_ += bytes;
  MarkDirty(r.ino);
  MarkDirty(parent);
  LogDirent(DirentAddRecord{parent, r.ino, cookie, std::string(name)});
  return AttrOf(inode);
}

Result<Attr> Volume::Create(uint64_t parent, std::string_view name, const NewInode& how) {
  return MakeNode("create", parent, name, S_IFREG, how, "");
}

Result<Attr> Volume::Mkdir(uint64_t parent, std::string_view name, const NewInode& how) {
  return MakeNode("mkdir", parent, name, S_IFDIR, how, "");
}

Result<Attr> Volume::Symlink(uint64_t parent, std::string_view name, std::string_view target,
                             const NewInode& how) {
  if (target.empty()) {
    return Status::Error(ENOENT, "symlink", name).WithDetail("empty link target");
  }
  if (target.size() > kMaxSymlinkLength || target.find('\0') != std::string_view::npos) {
    return Status::Error(ENAMETOOLONG, "symlink", name)
        .WithDetail("link target longer than " + std::to_string(kMaxSymlinkLength) + " bytes");
  }
  return MakeNode("symlink", parent, name, S_IFLNK, NewInode{0777, how.uid, how.gid}, target);
}

Result<std::string> Volume::Readlink(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto node = Node("readlink", ino);
  if (!node.ok()) return node.status();
  if (!(*node)->is_symlink()) return Status::Error(EINVAL, "readlink", meta_.PathOf(ino));
  return (*node)->attr.symlink;
}

Result<Attr> Volume::Link(uint64_t ino, uint64_t new_parent, std::string_view new_name) {
  std::lock_guard lock(mu_);
  auto node = Node("link", ino);
  if (!node.ok()) return node.status();
  auto dir = Dir("link", new_parent);
  if (!dir.ok()) return dir.status();
  const std::string parent_path = meta_.PathOf(new_parent);
  NVSWAPFS_RETURN_IF_ERROR(CheckWritable("link", ino));
  NVSWAPFS_RETURN_IF_ERROR(ValidateName("link", parent_path, new_name));
  Inode* inode = *node;
  if (inode->is_dir()) {
    return Status::Error(EPERM, "link", meta_.PathOf(ino)).WithDetail("hard links to directories");
  }
  if (inode->attr.nlink == 0) {
    return Status::Error(ENOENT, "link", meta_.PathOf(ino)).WithDetail("the file was deleted");
  }
  if (inode->attr.nlink >= kMaxLinks) return Status::Error(EMLINK, "link", meta_.PathOf(ino));
  if ((*dir)->dir->Find(new_name) != nullptr) {
    return Status::Error(EEXIST, "link", ChildPath(parent_path, new_name));
  }
  NVSWAPFS_RETURN_IF_ERROR(CheckMetadataRoom("link", ino, DirentBytes(new_name)));
  Inode* d = *dir;
  const uint64_t cookie = d->attr.next_cookie++;
  d->dir->Add(cookie, ino, std::string(new_name));
  const int64_t now = NowNs();
  d->attr.mtime_ns = d->attr.ctime_ns = now;
  inode->attr.nlink++;
  inode->attr.ctime_ns = now;
  inode->parent = new_parent;
  inode->name = std::string(new_name);
  metadata_bytes_ += DirentBytes(new_name);
  MarkDirty(ino);
  MarkDirty(new_parent);
  LogDirent(DirentAddRecord{new_parent, ino, cookie, std::string(new_name)});
  return AttrOf(*inode);
}

void Volume::DropLink(Inode& inode) {
  inode.attr.nlink = inode.is_dir() ? 0 : inode.attr.nlink - 1;
  inode.attr.ctime_ns = NowNs();
  if (inode.attr.nlink == 0 && pins_.find(inode.attr.ino) == pins_.end()) {
    FreeInode(inode);
  } else {
    // Still open: it lives on, unnamed, until its last Release (or, after a
    // crash, until the next open frees it).
    MarkDirty(inode.attr.ino);
  }
}

void Volume::FreeInode(Inode& inode) {
  const uint64_t ino = inode.attr.ino;
  // Bytes gathered for a file that is going are not worth writing; writes
  // in flight finish before the next commit, before its space is reused.
  DropTailLocked(ino);
  lost_.erase(ino);
  write_errors_.erase(ino);
  data_versions_.erase(ino);
  if (dirty_.erase(ino) > 0) {
    // Changed in this commit: log it before its deletion so that entries
    // logged in between find it.
    deleted_snapshots_.push_back(inode.ToRecord());
  }
  FreeExtents(inode.extents.extents());
  metadata_bytes_ -= std::min(metadata_bytes_, InodeBytes(inode));
  deleted_.insert(ino);
  meta_.Erase(ino);
}

Status Volume::Unlink(uint64_t parent, std::string_view name) {
  return RemoveName("unlink", parent, name, /*directory=*/false);
}

Status Volume::Rmdir(uint64_t parent, std::string_view name) {
  return RemoveName("rmdir", parent, name, /*directory=*/true);
}

Status Volume::RemoveName(std::string_view op, uint64_t parent, std::string_view name,
                          bool directory) {
  std::lock_guard lock(mu_);
  auto dir = Dir(op, parent);
  if (!dir.ok()) return dir.status();
  const std::string path = ChildPath(meta_.PathOf(parent), name);
  NVSWAPFS_RETURN_IF_ERROR(CheckWritable(op, parent));
  if (directory && name == ".") return Status::Error(EINVAL, op, path);
  if (directory && name == "..") return Status::Error(ENOTEMPTY, op, path);
  NVSWAPFS_RETURN_IF_ERROR(ValidateName(op, meta_.PathOf(parent), name));
  const DirEntry* entry = (*dir)->dir->Find(name);
  if (entry == nullptr) return Status::Error(ENOENT, op, path);
  Inode* inode = meta_.Find(entry->ino);
  if (inode == nullptr) {
    return Status::Error(EUCLEAN, op, path).WithDetail("entry points to a missing inode");
  }
  if (directory) {
    if (!inode->is_dir()) return Status::Error(ENOTDIR, op, path);
    if (!inode->dir->empty()) return Status::Error(ENOTEMPTY, op, path);
  } else if (inode->is_dir()) {
    return Status::Error(EISDIR, op, path);
  }
  (*dir)->dir->Remove(name);
  if (directory) (*dir)->attr.nlink--;
  (*dir)->attr.mtime_ns = (*dir)->attr.ctime_ns = NowNs();
  metadata_bytes_ -= std::min(metadata_bytes_, DirentBytes(name));
  MarkDirty(parent);
  LogDirent(DirentRemoveRecord{parent, std::string(name)});
  DropLink(*inode);
  return Status::Ok();
}

Status Volume::Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                      std::string_view new_name, RenameMode mode) {
  std::lock_guard lock(mu_);
  auto src_dir = Dir("rename", parent);
  if (!src_dir.ok()) return src_dir.status();
  auto dst_dir = Dir("rename", new_parent);
  if (!dst_dir.ok()) return dst_dir.status();
  const std::string src_path = ChildPath(meta_.PathOf(parent), name);
  const std::string dst_path = ChildPath(meta_.PathOf(new_parent), new_name);
  NVSWAPFS_RETURN_IF_ERROR(CheckWritable("rename", parent));
  NVSWAPFS_RETURN_IF_ERROR(ValidateName("rename", meta_.PathOf(parent), name));
  NVSWAPFS_RETURN_IF_ERROR(ValidateName("rename", meta_.PathOf(new_parent), new_name));
  const DirEntry* src_entry = (*src_dir)->dir->Find(name);
  if (src_entry == nullptr) return Status::Error(ENOENT, "rename", src_path);
  const DirEntry* dst_entry = (*dst_dir)->dir->Find(new_name);
  Inode* src = meta_.Find(src_entry->ino);
  Inode* dst = dst_entry != nullptr ? meta_.Find(dst_entry->ino) : nullptr;
  if (src == nullptr || (dst_entry != nullptr && dst == nullptr)) {
    return Status::Error(EUCLEAN, "rename", src_path).WithDetail("entry points to a missing inode");
  }
  if (parent == new_parent && name == new_name) return Status::Ok();

  // A directory may not move into its own subtree.
  auto inside = [&](uint64_t dir_ino, uint64_t ancestor) {
    for (int depth = 0; depth < 4096 && dir_ino != 0; ++depth) {
      if (dir_ino == ancestor) return true;
      if (dir_ino == kRootIno) return false;
      const Inode* n = meta_.Find(dir_ino);
      dir_ino = n != nullptr ? n->parent : 0;
    }
    return false;
  };
  if (src->is_dir() && inside(new_parent, src->attr.ino)) {
    return Status::Error(EINVAL, "rename", src_path)
        .WithDetail("cannot move a directory into itself (" + dst_path + ")");
  }
  const int64_t now = NowNs();
  Inode* sd = *src_dir;
  Inode* dd = *dst_dir;
  auto move_entry = [&](Inode* from_dir, std::string_view from_name, Inode* to_dir,
                        std::string_view to_name, Inode* node) {
    from_dir->dir->Remove(from_name);
    LogDirent(DirentRemoveRecord{from_dir->attr.ino, std::string(from_name)});
    const uint64_t cookie = to_dir->attr.next_cookie++;
    to_dir->dir->Add(cookie, node->attr.ino, std::string(to_name));
    metadata_bytes_ += DirentBytes(to_name);
    metadata_bytes_ -= std::min(metadata_bytes_, DirentBytes(from_name));
    LogDirent(DirentAddRecord{to_dir->attr.ino, node->attr.ino, cookie, std::string(to_name)});
    if (node->is_dir() && from_dir != to_dir) {
      from_dir->attr.nlink--;
      to_dir->attr.nlink++;
    }
    node->parent = to_dir->attr.ino;
    node->name = std::string(to_name);
    node->attr.ctime_ns = now;
    MarkDirty(node->attr.ino);
  };

  if (mode == RenameMode::kExchange) {
    if (dst == nullptr) return Status::Error(ENOENT, "rename", dst_path);
    if (dst->is_dir() && inside(parent, dst->attr.ino)) {
      return Status::Error(EINVAL, "rename", dst_path)
          .WithDetail("cannot move a directory into itself (" + src_path + ")");
    }
    const std::string src_name(name), dst_name(new_name);
    // Remove both names first, then add them back crossed.
    sd->dir->Remove(src_name);
    dd->dir->Remove(dst_name);
    LogDirent(DirentRemoveRecord{parent, src_name});
    LogDirent(DirentRemoveRecord{new_parent, dst_name});
    const uint64_t c1 = dd->attr.next_cookie++;
    dd->dir->Add(c1, src->attr.ino, dst_name);
    LogDirent(DirentAddRecord{new_parent, src->attr.ino, c1, dst_name});
    const uint64_t c2 = sd->attr.next_cookie++;
    sd->dir->Add(c2, dst->attr.ino, src_name);
    LogDirent(DirentAddRecord{parent, dst->attr.ino, c2, src_name});
    if (sd != dd && src->is_dir() != dst->is_dir()) {
      if (src->is_dir()) {
        sd->attr.nlink--;
        dd->attr.nlink++;
      } else {
        dd->attr.nlink--;
        sd->attr.nlink++;
      }
    }
    src->parent = new_parent;
    src->name = dst_name;
    dst->parent = parent;
    dst->name = src_name;
    src->attr.ctime_ns = dst->attr.ctime_ns = now;
    MarkDirty(src->attr.ino);
    MarkDirty(dst->attr.ino);
  } else {
    // A longer name is more metadata (a replaced entry's goes, but only
    // once the checks below have passed: counted as it stays).
    if (new_name.size() > name.size()) {
      NVSWAPFS_RETURN_IF_ERROR(CheckMetadataRoom("rename", parent, new_name.size() - name.size()));
    }
    if (dst != nullptr) {
      if (mode == RenameMode::kNoReplace) return Status::Error(EEXIST, "rename", dst_path);
      // Two names of one file: POSIX says do nothing.
      if (dst == src) return Status::Ok();
      if (src->is_dir() && !dst->is_dir()) return Status::Error(ENOTDIR, "rename", dst_path);
      if (!src->is_dir() && dst->is_dir()) return Status::Error(EISDIR, "rename", dst_path);
      if (dst->is_dir() && !dst->dir->empty()) return Status::Error(ENOTEMPTY, "rename", dst_path);
      dd->dir->Remove(new_name);
      LogDirent(DirentRemoveRecord{new_parent, std::string(new_name)});
      metadata_bytes_ -= std::min(metadata_bytes_, DirentBytes(new_name));
      if (dst->is_dir()) dd->attr.nlink--;
      DropLink(*dst);
    }
    move_entry(sd, name, dd, new_name, src);
  }
  sd->attr.mtime_ns = sd->attr.ctime_ns = now;
  dd->attr.mtime_ns = dd->attr.ctime_ns = now;
  MarkDirty(parent);
  MarkDirty(new_parent);
  return Status::Ok();
}

Status Volume::Readdir(uint64_t dir, uint64_t cookie,
                       const std::function<bool(const DirListing&)>& emit) {
  std::lock_guard lock(mu_);
  auto d = Dir("readdir", dir);
  if (!d.ok()) return d.status();
  const Directory& entries = *(*d)->dir;
  for (auto it = entries.UpperBound(cookie); it != entries.end(); ++it) {
    const Inode* child = meta_.Find(it->second.ino);
    if (child == nullptr) continue;  // damage fsck reports; nothing to list
    if (!emit(DirListing{it->first, it->second.name, AttrOf(*child)})) break;
  }
  return Status::Ok();
}

Result<Attr> Volume::GetAttr(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto node = Node("getattr", ino);
  if (!node.ok()) return node.status();
  return AttrOf(**node);
}

Result<Attr> Volume::SetAttr(uint64_t ino, const SetAttrRequest& request) {
  // Size changes move data: hold the file's gate first (lock order).
  struct GateHold {
    internal::IoGate* gate = nullptr;
    ~GateHold() {
      if (gate != nullptr) gate->Unlock();
    }
  } hold;
  if (request.size.has_value()) {
    hold.gate = &Gate(ino);
    hold.gate->Lock();
  }
  std::unique_lock lock(mu_);
  auto node = Node("setattr", ino);
  if (!node.ok()) return node.status();
  Inode* inode = *node;
  NVSWAPFS_RETURN_IF_ERROR(CheckWritable("setattr", ino));
  const int64_t now = NowNs();
  if (request.size.has_value()) {
    if (inode->is_dir()) return Status::Error(EISDIR, "truncate", meta_.PathOf(ino));
    if (!inode->is_reg()) return Status::Error(EINVAL, "truncate", meta_.PathOf(ino));
    NVSWAPFS_RETURN_IF_ERROR(TruncateLocked(*inode, *request.size, lock));
  }
  if (request.mode.has_value()) {
    inode->attr.mode = (inode->attr.mode & S_IFMT) | (*request.mode & 07777);
  }
  if (request.uid.has_value()) inode->attr.uid = *request.uid;
  if (request.gid.has_value()) inode->attr.gid = *request.gid;
  if (request.atime_ns.has_value()) {
    inode->attr.atime_ns = *request.atime_ns == kNow ? now : *request.atime_ns;
  }
  if (request.mtime_ns.has_value()) {
    inode->attr.mtime_ns = *request.mtime_ns == kNow ? now : *request.mtime_ns;
  }
  inode->attr.ctime_ns = now;
  MarkDirty(ino);
  return AttrOf(*inode);
}

VolumeStats Volume::StatFs() {
  std::lock_guard lock(mu_);
  const Superblock& sb = store_.superblock();
  const uint64_t blocks_per_unit = sb.alloc_unit / kBlockSize;
  VolumeStats s;
  s.block_size = kBlockSize;
  s.total_blocks = sb.data_size / kBlockSize;
  s.free_blocks = (allocator_.free_units() + allocator_.pending_units()) * blocks_per_unit;
  s.files = meta_.inode_count();
  const double room = kMetadataHeadroom * static_cast<double>(store_.checkpoint_capacity()) -
                      static_cast<double>(metadata_bytes_);
  s.free_files = room > 0 ? static_cast<uint64_t>(room / 160) : 0;
  return s;
}

Status Volume::Fsync(uint64_t ino) {
  return CommitFor(ino, "fsync", /*durable=*/true);
}

Status Volume::Persist(uint64_t ino) {
  return CommitFor(ino, "close", /*durable=*/false);
}

Status Volume::CommitFor(uint64_t ino, std::string_view op, bool durable) {
  std::unique_lock lock(mu_);
  auto node = Node(op, ino);
  if (!node.ok()) return node.status();
  Status s = CommitUnlocking(lock, durable);
  if (!s.ok()) return std::move(s).WithOp(op).WithSubject(meta_.PathOf(ino));
  return TakeWriteErrorLocked(ino);
}

Status Volume::FlushErrors(uint64_t ino) {
  std::lock_guard lock(mu_);
  QuiesceLocked(ino);
  return TakeWriteErrorLocked(ino);
}

Status Volume::TakeWriteErrorLocked(uint64_t ino) {
  auto it = write_errors_.find(ino);
  if (it == write_errors_.end()) return Status::Ok();
  Status s = std::move(it->second);
  write_errors_.erase(it);
  return s;
}

uint64_t Volume::DataVersion(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto it = data_versions_.find(ino);
  return it == data_versions_.end() ? 0 : it->second;
}

Status Volume::Sync() {
  std::unique_lock lock(mu_);
  return CommitUnlocking(lock, /*durable=*/true);
}

Status Volume::Open(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto node = Node("open", ino);
  if (!node.ok()) return node.status();
  pins_[ino]++;
  return Status::Ok();
}

void Volume::Release(uint64_t ino) {
  std::lock_guard lock(mu_);
  Unpin(ino);
}

void Volume::Unpin(uint64_t ino) {
  auto it = pins_.find(ino);
  if (it == pins_.end()) return;
  if (--it->second > 0) return;
  pins_.erase(it);
  Inode* inode = meta_.Find(ino);
  if (inode != nullptr && inode->attr.nlink == 0 && !options_.read_only) FreeInode(*inode);
}

// --- Extended attributes

Result<std::string> Volume::GetXattr(uint64_t ino, std::string_view name) {
  std::lock_guard lock(mu_);
  auto node = Node("getxattr", ino);
  if (!node.ok()) return node.status();
  for (const auto& [k, v] : (*node)->attr.xattrs) {
    if (k == name) return v;
  }
  return Status::Error(ENODATA, "getxattr", meta_.PathOf(ino)).WithDetail(std::string(name));
}

Status Volume::SetXattr(uint64_t ino, std::string_view name, std::string_view value, int flags) {
  std::lock_guard lock(mu_);
  auto node = Node("setxattr", ino);
  if (!node.ok()) return node.status();
  NVSWAPFS_RETURN_IF_ERROR(CheckWritable("setxattr", ino));
  const std::string path = meta_.PathOf(ino);
  if (name.empty() || name.size() > kMaxXattrNameLength) {
    return Status::Error(ERANGE, "setxattr", path)
        .WithDetail("attribute names are 1 to " + std::to_string(kMaxXattrNameLength) + " bytes");
  }
  if (value.size() > kMaxXattrValueLength) {
    return Status::Error(E2BIG, "setxattr", path)
        .WithDetail("attribute values are at most " + std::to_string(kMaxXattrValueLength) +
                    " bytes");
  }
  auto& xattrs = (*node)->attr.xattrs;
  auto it = std::lower_bound(xattrs.begin(), xattrs.end(), name,
                             [](const auto& kv, std::string_view n) { return kv.first < n; });
  const bool exists = it != xattrs.end() && it->first == name;
  if (exists && (flags & XATTR_CREATE)) return Status::Error(EEXIST, "setxattr", path);
  if (!exists && (flags & XATTR_REPLACE)) return Status::Error(ENODATA, "setxattr", path);
  if (!exists && xattrs.size() >= kMaxXattrsPerInode) {
    return Status::Error(ENOSPC, "setxattr", path)
        .WithDetail("at most " + std::to_string(kMaxXattrsPerInode) + " attributes per file");
  }
  const size_t bytes = 3 + name.size() + value.size();
  NVSWAPFS_RETURN_IF_ERROR(CheckMetadataRoom("setxattr", ino, bytes));
  if (exists) {
    metadata_bytes_ -= std::min(metadata_bytes_, 3 + it->first.size() + it->second.size());
    it->second = std::string(value);
  } else {
    xattrs.insert(it, {std::string(name), std::string(value)});
  }
  metadata_bytes_ += bytes;
  (*node)->attr.ctime_ns = NowNs();
  MarkDirty(ino);
  return Status::Ok();
}

Result<std::vector<std::string>> Volume::ListXattr(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto node = Node("listxattr", ino);
  if (!node.ok()) return node.status();
  std::vector<std::string> names;
  for (const auto& kv : (*node)->attr.xattrs) names.push_back(kv.first);
  return names;
}

Status Volume::RemoveXattr(uint64_t ino, std::string_view name) {
  std::lock_guard lock(mu_);
  auto node = Node("removexattr", ino);
  if (!node.ok()) return node.status();
  NVSWAPFS_RETURN_IF_ERROR(CheckWritable("removexattr", ino));
  auto& xattrs = (*node)->attr.xattrs;
  auto it =
      std::find_if(xattrs.begin(), xattrs.end(), [&](const auto& kv) { return kv.first == name; });
  if (it == xattrs.end()) {
    return Status::Error(ENODATA, "removexattr", meta_.PathOf(ino)).WithDetail(std::string(name));
  }
  metadata_bytes_ -= std::min(metadata_bytes_, 3 + it->first.size() + it->second.size());
  xattrs.erase(it);
  (*node)->attr.ctime_ns = NowNs();
  MarkDirty(ino);
  return Status::Ok();
}

}  // namespace nvswapfs::fs
