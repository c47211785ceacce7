// A mounted nvswapfs volume, usable without FUSE.
//
// The Volume owns the engine, the namespace (metadata.h) and the free space
// (allocator.h). Every call validates its input and returns the error model's
// Status naming the operation and the file's path (and the byte range for
// data operations); it never leaves the metadata half-changed.
//
// Crash consistency:
//  - file data reaches the device before the metadata that points to it
//    commits: a commit flushes the device, writes its log records, and
//    flushes again;
//  - a commit is atomic (all of its records apply after a crash, or none);
//  - Fsync of any file commits everything, so whatever that file depends on
//    (its directory entry, its parent's) is durable when it returns;
//  - a background commit runs every `commit_interval_s` seconds, and Close()
//    commits everything and writes a checkpoint;
//  - space freed by unlink or truncate is not reused before the change that
//    freed it is durable;
//  - bytes never written read as zeros: holes, extension by truncate,
//    fallocate'd space, and the rest of a partly written allocation unit.
//
// Thread safety: every method may be called from any thread concurrently.
// Metadata operations are serialized by one lock; data transfers run outside
// it, asynchronously, serialized per file (reads of a file run in parallel).
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "nvswapfs/aio/buffer.h"
#include "nvswapfs/aio/engine.h"
#include "nvswapfs/fs/allocator.h"
#include "nvswapfs/fs/metadata.h"
#include "nvswapfs/fs/store.h"
#include "nvswapfs/histogram.h"
#include "nvswapfs/status.h"

namespace nvswapfs::fs {

namespace internal {
class Executor;
class IoGate;
}  // namespace internal

// The largest file: 16 TiB.
constexpr uint64_t kMaxFileSize = uint64_t{1} << 44;

struct VolumeOptions {
  bool read_only = false;
  // Seconds between background commits; 0 disables them.
  uint32_t commit_interval_s = 5;
  // 1 MiB aligned staging buffers for data transfers in flight: with
  // `tail_buffers`, the bound on the memory data transfers use, however much
  // data moves.
  size_t staging_buffers = 32;
  // 1 MiB buffers gathering small sequential writes (one per file being
  // written that way) into whole 1 MiB device writes.
  size_t tail_buffers = 16;
  // The machine boot this volume runs in (MetadataStore::Load); unset: this
  // one. Tests set it to act out a restart.
  std::optional<uint64_t> boot_tag = std::nullopt;
};

// When a write reports its outcome.
enum class WriteMode {
  // Once its bytes have reached the device: a device error fails the write
  // itself, and changes nothing.
  kThrough,
  // Once its bytes are copied and queued for the device (write-behind). A
  // device error is reported by the next write, Fsync or FlushErrors of the
  // same file, and the bytes it lost read as EIO until written again.
  kBehind,
};

struct Attr {
  uint64_t ino = 0;
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units allocated
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  int64_t btime_ns = 0;
};

struct SetAttrRequest {
  std::optional<uint32_t> mode = {};  // permission bits only
  std::optional<uint32_t> uid = {};
  std::optional<uint32_t> gid = {};
  std::optional<uint64_t> size = {};
  std::optional<int64_t> atime_ns = {};  // use Volume::kNow for "now"
  std::optional<int64_t> mtime_ns = {};
};

struct VolumeStats {
  uint64_t block_size = 0;
  uint64_t total_blocks = 0;
  uint64_t free_blocks = 0;  // includes space freed by not yet committed changes
  uint64_t files = 0;
  uint64_t free_files = 0;
  uint64_t max_name = kMaxNameLength;
};

struct DirListing {
  uint64_t cookie = 0;  // pass back to continue after this entry
  std::string name;
  Attr attr;
};

enum class RenameMode { kReplace, kNoReplace, kExchange };

// Creation parameters of a new inode.
struct NewInode {
  uint32_t mode = 0;  // permission bits (type comes from the call)
  uint32_t uid = 0;
  uint32_t gid = 0;
};

class Volume {
 public:
  static constexpr int64_t kNow = INT64_MIN;

  // Loads the volume on `engine`'s device: superblocks, newest checkpoint,
  // log replay; frees orphans (inodes unlinked while open before a crash).
  static Result<std::unique_ptr<Volume>> Open(std::unique_ptr<aio::IoEngine> engine,
                                              const VolumeOptions& options);
  // Commits and checkpoints if still open; errors are lost: call Close().
  ~Volume();
  // Commits everything and writes a checkpoint. Idempotent.
  Status Close();

  const Superblock& superblock() const { return store_.superblock(); }
  aio::IoEngine& engine() { return *engine_; }
  // What loading found worth telling (a cut log tail, a bad superblock copy).
  const std::vector<std::string>& notes() const { return notes_; }

  // The metadata's encoded size as the volume keeps count of it, change by
  // change (what keeps the next checkpoint inside its slot, and refuses
  // what would not fit), and as counted afresh from the whole namespace:
  // the two agree after any sequence of operations.
  struct MetadataCount {
    size_t kept = 0;
    size_t recounted = 0;
  };
  MetadataCount MetadataBytes();

  // --- Names
  Result<Attr> Lookup(uint64_t parent, std::string_view name);
  Result<Attr> Create(uint64_t parent, std::string_view name, const NewInode& how);
  Result<Attr> Mkdir(uint64_t parent, std::string_view name, const NewInode& how);
  Result<Attr> Symlink(uint64_t parent, std::string_view name, std::string_view target,
                       const NewInode& how);
  Result<std::string> Readlink(uint64_t ino);
  Result<Attr> Link(uint64_t ino, uint64_t new_parent, std::string_view new_name);
  Status Unlink(uint64_t parent, std::string_view name);
  Status Rmdir(uint64_t parent, std::string_view name);
  Status Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                std::string_view new_name, RenameMode mode);
  // Calls `emit` for entries after `cookie` (0: from the start) in a stable
  // order, until it returns false. `emit` runs under the metadata lock and
  // must not call back into the Volume.
  Status Readdir(uint64_t dir, uint64_t cookie, const std::function<bool(const DirListing&)>& emit);

  // --- Attributes
  // Called, with no lock held, when the volume changes an inode's attributes
  // by itself (a write dropping set-ID bits), so that a cache of them can be
  // refreshed. Set before the volume is shared.
  void SetAttrChangeListener(std::function<void(uint64_t ino)> listener) {
    attr_listener_ = std::move(listener);
  }
  Result<Attr> GetAttr(uint64_t ino);
  Result<Attr> SetAttr(uint64_t ino, const SetAttrRequest& request);
  VolumeStats StatFs();
  std::string PathOf(uint64_t ino);
  // The directory holding `dir` (the root is its own parent).
  Result<uint64_t> Parent(uint64_t dir);

  // --- Data
  // The outcome of a transfer: the bytes moved, or why none were.
  using TransferDone = std::function<void(Result<size_t>)>;

  // Reads up to out.size() bytes at `offset`; fewer at the end of the file.
  // `out` must stay valid until `done` runs. `done` runs exactly once, on one
  // of the volume's threads once the engine has finished, or on the caller's
  // thread when the request fails before any I/O. The call itself may wait
  // for staging buffers or for a truncate of the same file.
  void ReadAsync(uint64_t ino, uint64_t offset, std::span<std::byte> out, TransferDone done);
  // How long finished reads waited for one of the volume's threads to run
  // their `done` (the engine's threads hand it over; see Executor).
  const LatencyHistogram& read_finish_wait() const { return read_finish_wait_; }
  // Writes all of `data` at `offset` (any offset and length), or fails
  // having changed no metadata (ENOSPC, EFBIG, EIO, ...). `data` is copied
  // before WriteAsync returns. `done` as for ReadAsync; see WriteMode for
  // when it runs. Small sequential writes are gathered in memory into whole
  // 1 MiB device writes; reads, Fsync and every commit see them. A writer
  // that is not `privileged` (root keeps them, as CAP_FSETID does) clears
  // the file's set-user-ID bit, and its set-group-ID bit when group-execute
  // is set, as every local filesystem does.
  void WriteAsync(uint64_t ino, uint64_t offset, std::span<const std::byte> data, TransferDone done,
                  WriteMode mode = WriteMode::kThrough, bool privileged = true);
  // The same for bytes handed over rather than lent: `data` stays valid for
  // as long as `owner` is held. Whole aligned blocks of it that would go to
  // the device at once are written from where they are (no staging copy),
  // and `owner` is kept until they are on the device; the rest is copied as
  // above.
  void WriteAsync(uint64_t ino, uint64_t offset, std::span<std::byte> data,
                  std::shared_ptr<void> owner, TransferDone done, WriteMode mode, bool privileged);
  // The same, waiting for the outcome.
  Result<size_t> Read(uint64_t ino, uint64_t offset, std::span<std::byte> out);
  Result<size_t> Write(uint64_t ino, uint64_t offset, std::span<const std::byte> data,
                       WriteMode mode = WriteMode::kThrough);
  // Commits everything so that it survives the daemon being killed, but
  // without the flush that makes it survive a power cut (Fsync does that),
  // and reports a write-behind failure of `ino` as Fsync does. What close()
  // of a written file costs.
  Status Persist(uint64_t ino);
  // Reports (once) a write-behind failure of `ino` not yet reported, after
  // waiting for its writes in flight; Ok when there is none.
  Status FlushErrors(uint64_t ino);
  // Changes whenever the bytes of `ino` may have changed (writes, truncate,
  // fallocate): a cache of its bytes taken at one version is valid while the
  // version stays the same.
  uint64_t DataVersion(uint64_t ino);
  // mode: 0, FALLOC_FL_KEEP_SIZE, or FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE.
  Status Fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length);
  // Commits everything (see the crash-consistency rules above).
  Status Fsync(uint64_t ino);
  Status Sync();

  // Discards the free space of the data region inside the device byte range
  // [start, start + length) (see aio::BlockDevice::Discard), skipping free
  // runs shorter than `min_length` bytes: what fstrim asks for. Commits
  // first, so that the space of files deleted just before is free to
  // discard. Free space is discarded a bounded piece at a time under the
  // metadata lock, so nothing is allocated in a piece while it is being
  // discarded. Returns the bytes discarded; EROFS on a read-only volume,
  // EOPNOTSUPP when the device cannot discard.
  Result<uint64_t> Trim(uint64_t start, uint64_t length, uint64_t min_length);

  // --- Open files: an inode unlinked while open lives until its last Release.
  Status Open(uint64_t ino);
  void Release(uint64_t ino);

  // --- Extended attributes (names as given, e.g. "user.x")
  Result<std::string> GetXattr(uint64_t ino, std::string_view name);
  // flags: 0, XATTR_CREATE or XATTR_REPLACE.
  Status SetXattr(uint64_t ino, std::string_view name, std::string_view value, int flags);
  Result<std::vector<std::string>> ListXattr(uint64_t ino);
  Status RemoveXattr(uint64_t ino, std::string_view name);

 private:
  Volume(std::unique_ptr<aio::IoEngine> engine, MetadataStore store, Metadata metadata,
         const VolumeOptions& options);

  // Everything below requires mu_ unless it says otherwise.
  //
  // Commits. One takes the change so far from the volume (a CommitBatch)
  // under mu_, then writes it to the log through store_, which store_mu_
  // guards; the next commit's batch is written only after it, so the log
  // keeps the changes in order. Lock order: mu_, then store_mu_; a commit
  // being written holds store_mu_ alone and never waits for mu_ while it
  // does. Whoever next holds both settles what it left (SettleLocked).
  //
  // Without `durable`, a commit survives the process being killed but not
  // a power cut (no flush after it); space it frees stays pending. Once
  // the log is half full, the next commit that has something to log is a
  // checkpoint instead: the whole namespace, encoded under mu_ and written
  // like any other batch, after which the log starts empty.
  struct CommitBatch {
    std::vector<Record> records;
    std::vector<std::byte> checkpoint;  // a checkpoint's encoded body
    uint32_t checkpoint_records = 0;    // ... and how many records it holds
    bool is_checkpoint = false;
    uint64_t next_ino = 0;
    uint64_t free_epoch = 0;    // the allocator's seal of the frees it covers
    uint64_t data_written = 0;  // data_written_ when it was taken
    bool durable = false;
    bool log = false;    // a log write (else at most a flush)
    bool flush = false;  // a durable batch with nothing to log: a device flush
    Status status;       // once written
  };
  // Keeps mu_ throughout, waiting for a commit being written without it.
  Status CommitLocked(bool durable = true);
  // Lets mu_ go while the log is written and flushed, so reads, writes and
  // other changes go on meanwhile (they join the next commit); one such
  // commit at a time. `lock` holds mu_, and holds it again on return.
  Status CommitUnlocking(std::unique_lock<std::mutex>& lock, bool durable);
  // Both of the above: `release` (holding mu_) is let go around the write,
  // or null to keep mu_.
  Status Commit(bool durable, std::unique_lock<std::mutex>* release);
  // After QuiesceLocked; requires store_mu_ too. Forgets the changes taken.
  CommitBatch TakeBatchLocked(bool durable);
  // Requires store_mu_ (not mu_).
  Status WriteBatch(const CommitBatch& batch);
  // The effects of a written batch, once: requires store_mu_ too.
  void SettleLocked();
  // Requires store_mu_ too.
  Status CheckpointLocked();
  // The whole namespace as a checkpoint body, into storage reserved once
  // for it (from metadata_bytes_); returns the record count.
  uint32_t EncodeCheckpointLocked(std::vector<std::byte>* body) const;
  void ForgetChangesLocked();
  void MarkDirty(uint64_t ino);
  void LogDirent(Record record);
  Attr AttrOf(const Inode& inode) const;
  Status CheckWritable(std::string_view op, uint64_t ino) const;
  Result<Inode*> Dir(std::string_view op, uint64_t ino);
  Result<Inode*> Node(std::string_view op, uint64_t ino);
  Result<Attr> MakeNode(std::string_view op, uint64_t parent, std::string_view name, uint32_t type,
                        const NewInode& how, std::string_view target);
  // Unlink (`directory` false) and rmdir: the name goes from `parent` and
  // its inode loses a link.
  Status RemoveName(std::string_view op, uint64_t parent, std::string_view name, bool directory);
  void DropLink(Inode& inode);
  void FreeInode(Inode& inode);
  void FreeExtents(const std::vector<Extent>& extents);
  Status EnsureMapped(Inode& inode, uint64_t first_block, uint64_t end_block, std::string_view op,
                      uint64_t offset, uint64_t length);
  Status CheckMetadataRoom(std::string_view op, uint64_t ino, size_t extra_bytes) const;
  // Runs `change` on the extents of `inode` and returns what it returns,
  // keeping metadata_bytes_ in step with how many extents there are: a
  // write or a punched hole inside an extent splits it in up to three,
  // freeing or writing next to others joins them.
  template <typename Change>
  auto ChangeExtentsLocked(Inode& inode, Change change);
  // Both hold the file's I/O lock exclusively (and mu_) while they run.
  Status TruncateLocked(Inode& inode, uint64_t new_size, std::unique_lock<std::mutex>& lock);
  Status PunchLocked(Inode& inode, uint64_t offset, uint64_t length);
  // Zeroes bytes [from, to) of one mapped, written block on the device.
  Status ZeroInBlock(uint64_t physical_block, uint32_t from, uint32_t to);

  // --- Writes in flight and write-behind (volume_data.cc). A write is
  // accepted under mu_ (blocks mapped and marked written, size updated) and
  // registered in flight before its bytes are copied and submitted without
  // mu_; its completion never takes mu_, so code holding mu_ may wait for it.
  struct BlockRange {
    uint64_t first = 0;
    uint64_t end = 0;
    bool Overlaps(const BlockRange& o) const { return first < o.end && o.first < end; }
  };
  struct WriteOp;
  // Bytes of one file gathered in memory: file bytes [lo, hi) of the window
  // starting at file byte `window`, at the same offsets in the buffer.
  struct Tail {
    aio::BufferPool::Lease lease;
    uint64_t window = 0;
    uint64_t lo = 0;
    uint64_t hi = 0;
    uint64_t last_used = 0;
  };
  struct WriteFailure {
    uint64_t ino;
    BlockRange blocks;
    Status status;
    bool report_later;  // write-behind: by the file's next write or fsync
    bool unwrite;       // the blocks read as zeros again
  };
  // Makes every accepted write of `ino` (0: of every file) durable-ready:
  // gathered bytes submitted, writes in flight finished, failures applied.
  void QuiesceLocked(uint64_t ino);
  // Submits the bytes gathered for `ino`, if any; DropTailLocked forgets them.
  void FlushTailLocked(uint64_t ino);
  void DropTailLocked(uint64_t ino);
  // Waits for the writes in flight of `ino` that overlap `blocks` (ino 0:
  // every write).
  void WaitWritesLocked(uint64_t ino, BlockRange blocks);
  // Turns finished failed writes into unwritten, lost ranges and an error
  // to report.
  void ReapWriteFailuresLocked();
  // A write-behind failure of `ino` not reported yet, now reported (once);
  // Ok if there is none.
  Status TakeWriteErrorLocked(uint64_t ino);
  // Commits as Fsync (durable) or Persist does, then reports as they do;
  // `op` names the caller's operation in errors.
  Status CommitFor(uint64_t ino, std::string_view op, bool durable);
  // A write by someone without CAP_FSETID: set-user-ID and set-group-ID go.
  // True if a bit went.
  bool DropSetIdLocked(Inode& inode);
  // About to write file bytes [from, to) from `window_data` (the bytes of
  // the file window starting at byte `window`): fills the rest of their
  // partly covered first and last blocks with what the file holds there,
  // zeros where nothing was ever written.
  Status FillEdgesLocked(const Inode& inode, uint64_t from, uint64_t to, uint64_t window,
                         std::byte* window_data);
  // Marks `blocks` written and registers them in flight; returns their
  // mapping.
  std::vector<Segment> AcceptBlocksLocked(Inode& inode, BlockRange blocks);
  // Submits file blocks `segments` of `ino` from memory holding the file's
  // bytes from byte `origin` on at `origin_data`; `keep` holds that memory
  // until the device is done with it.
  void SubmitBlocks(const std::shared_ptr<WriteOp>& op, uint64_t ino,
                    const std::vector<Segment>& segments, uint64_t origin, std::byte* origin_data,
                    std::shared_ptr<void> keep);
  // `fresh`: the blocks were unwritten before this write.
  void WriteDone(const std::shared_ptr<WriteOp>& op, uint64_t ino, BlockRange blocks, bool fresh,
                 Status s);
  void ReleaseWriteOp(const std::shared_ptr<WriteOp>& op);
  // Calls the write's `done`; a kThrough write is counted out of transfers_
  // once it has returned.
  void ReportWrite(WriteOp& op, Result<size_t> result);
  // One read or write-through is over, reported and let go: counted out of
  // transfers_, which Close waits to see reach zero.
  void EndTransfer();
  // A buffer gathering `ino`'s bytes of the file window at `window`.
  Tail* NewTailLocked(uint64_t ino, uint64_t window);
  void BumpVersionLocked(uint64_t ino) { ++data_versions_[ino]; }
  void Unpin(uint64_t ino);
  void CommitLoop();
  static int64_t NowNs();
  internal::IoGate& Gate(uint64_t ino);

  // One read or write in flight (volume_data.cc).
  struct Transfer;
  void SubmitPiece(Transfer* t, const aio::IoRequest& request, aio::BufferPool::Lease lease,
                   std::function<void()> after);
  void ReleaseTransfer(Transfer* t);
  void FinishTransfer(Transfer* t);

  std::unique_ptr<aio::IoEngine> engine_;
  MetadataStore store_;
  const VolumeOptions options_;
  std::vector<std::string> notes_;
  std::unique_ptr<aio::BufferPool> staging_;
  std::unique_ptr<aio::BufferPool> tail_pool_;
  std::unique_ptr<internal::IoGate[]> gates_;
  std::unique_ptr<internal::Executor> executor_;
  LatencyHistogram read_finish_wait_;

  std::function<void(uint64_t)> attr_listener_;
  mutable std::mutex mu_;
  Metadata meta_;
  UnitAllocator allocator_;
  uint64_t next_ino_ = 0;
  // The change not yet committed: inodes to log whole, entries added and
  // removed in order, inodes deleted.
  std::set<uint64_t> dirty_;
  std::vector<Record> dirent_log_;
  std::set<uint64_t> deleted_;
  // Data (and unordered log writes) counted as they go to the device, and
  // the count the latest device flush covered.
  uint64_t data_written_ = 0;
  uint64_t data_flushed_ = 0;
  std::vector<InodeRecord> deleted_snapshots_;  // deleted inodes changed in this commit
  // Open handles plus data transfers in flight, per inode: a pinned inode
  // whose last link goes stays until it is unpinned.
  std::unordered_map<uint64_t, uint32_t> pins_;
  size_t metadata_bytes_ = 0;  // estimate of the next checkpoint's size
  bool closed_ = false;
  int transfers_ = 0;  // reads, and writes that report on the device: in flight or reporting
  std::condition_variable transfers_done_;
  Status poisoned_;  // set when a commit failed: the volume turns read-only

  // Write-behind state, guarded by mu_: bytes gathered per file, ranges a
  // failed write lost (reads give EIO), the first unreported failure per
  // file, data versions, and one block for read-modify-write.
  std::unordered_map<uint64_t, std::unique_ptr<Tail>> tails_;
  uint64_t tail_clock_ = 0;
  std::unordered_map<uint64_t, std::vector<BlockRange>> lost_;
  std::unordered_map<uint64_t, Status> write_errors_;
  std::unordered_map<uint64_t, uint64_t> data_versions_;
  aio::AlignedBuffer edge_block_;
  // Writes in flight, guarded by inflight_mu_ (never held with anything else
  // taken after it).
  std::mutex inflight_mu_;
  std::condition_variable inflight_done_;
  std::unordered_multimap<uint64_t, BlockRange> inflight_;
  std::vector<WriteFailure> failures_;

  // Commits (see CommitBatch): store_ and written_ are guarded by store_mu_.
  std::mutex store_mu_;
  std::optional<CommitBatch> written_;  // written, not settled yet
  bool committing_ = false;             // guarded by mu_: a CommitUnlocking runs
  std::condition_variable commit_idle_;

  std::condition_variable commit_wake_;
  bool stop_commit_thread_ = false;
  std::thread commit_thread_;
};

}  // namespace nvswapfs::fs
