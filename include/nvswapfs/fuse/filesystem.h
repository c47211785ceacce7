// The FUSE glue: libfuse's low-level requests turned into Volume calls.
//
// Every callback replies exactly once, catches every exception (allocation
// failure becomes ENOMEM, anything else EIO), and reports a failure in one
// place (Reply::Error): the caller gets the Status's errno and the log gets
// one line naming the file, the operation, the byte range and the error.
// Errors that are a normal part of probing (a lookup of a missing name, a
// missing xattr) are not logged.
//
// Counters, readable from the mount through read-only virtual xattrs that
// are never listed (so cp -a and rsync -X do not copy them):
//   user.nvswapfs.errors  on any file: failed operations on that file
//   user.nvswapfs.io      on any file: "reads=N writes=N bytes_read=N
//                         bytes_written=N errors=N read_ahead=N", the last
//                         the reads answered from what was read ahead
//   user.nvswapfs.stats   on any inode: mount-wide "ops=N errors=N
//                         bytes_read=N bytes_written=N in_flight=N
//                         engine_requests=N engine_failed=N"
//   user.nvswapfs.latency on any inode: where the mount's reads and writes
//                         spend their time, median/99th percentile in µs:
//                         "pieces=N queue_us=P/P device_us=P/P reads=N
//                         finish_wait_us=P/P reply_us=P/P", for each engine
//                         piece its wait to be submitted and its time on the
//                         device, for each read from the device its wait for
//                         a volume thread, and for each read reply its
//                         sending (which copies the data into the kernel)
#pragma once

#include <fuse3/fuse_lowlevel.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "nvswapfs/aio/buffer.h"
#include "nvswapfs/fs/volume.h"
#include "nvswapfs/histogram.h"

namespace nvswapfs::fs::internal {
class Executor;
}  // namespace nvswapfs::fs::internal

namespace nvswapfs::fuse {

struct FileCounters {
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t errors = 0;
  uint64_t read_ahead = 0;  // reads answered from what was read ahead
};

// Where a read's bytes came from.
enum class Served { kDevice, kReadAhead };

struct FilesystemOptions {
  bool read_only = false;
  // Write-through instead of write-behind (see fs::WriteMode).
  bool sync_writes = false;
  // Reply buffers (1 MiB each) for the reads the daemon does not answer from
  // its own read-ahead: the kernel's read-ahead windows for cached opens, and
  // the reads of direct opens with many in flight (fio, a loader on libaio).
  // Fewer than the kernel sends at once: a request waits for one without
  // holding up a thread, and 8 MiB in flight read faster than 32 on a host
  // that serves the device faster into less memory (README, *Little memory
  // in flight*).
  size_t read_buffers = 8;
  // Seconds the kernel may cache names and attributes. Every change goes
  // through this daemon, so the kernel's copy never goes stale behind it.
  double attr_timeout_s = 1.0;
  std::string mountpoint;
  // The kernel's read-ahead window for this mount, in KiB (0: leave the
  // kernel's default of 128 KiB). Set once the connection is up, through
  // the mount's backing-device entry in /sys/class/bdi; needs root.
  uint32_t read_ahead_kb = 0;
  // Largest read request, as given with -o max_read (0: no limit of ours).
  uint32_t max_read = 0;
  // 1 MiB buffers for the daemon's own read-ahead, shared by every open
  // that bypasses the page cache.
  size_t read_ahead_buffers = 32;
};

class Filesystem {
 public:
  Filesystem(fs::Volume& volume, const FilesystemOptions& options);
  ~Filesystem();
  Filesystem(const Filesystem&) = delete;
  Filesystem& operator=(const Filesystem&) = delete;

  // The callback table to hand to fuse_session_new, with `this` as userdata.
  static const fuse_lowlevel_ops& Operations();

  fs::Volume& volume() { return volume_; }
  // The session this filesystem serves: attributes the volume changes by
  // itself are invalidated in the kernel's cache through it.
  void Attach(fuse_session* session);

  // A page-aligned buffer for one read reply, from a bounded pool of
  // `read_buffers`: into `*now` when one is free and no read waits (true),
  // otherwise `later` gets the next one given back
  // (aio::BufferPool::AcquireOrQueue). `size` is at most 1 MiB, libfuse's
  // request size.
  bool AcquireReadBuffer(size_t size, aio::BufferPool::Lease* now,
                         std::function<void(aio::BufferPool::Lease)> later);
  aio::BufferPool& read_ahead_pool() { return *read_ahead_buffers_; }
  // One read from the device on a client's behalf, from its request until
  // its reply is sent: whatever carries it along (a start that waits for a
  // buffer, the transfer's completion) holds the token, and WaitForReads
  // returns once every token is gone.
  std::shared_ptr<void> BeginRead();
  // Called once the request loop has stopped, before the volume closes: a
  // read that waited for a buffer starts only when another read gives one
  // back, after the volume's own transfers may all have finished, and its
  // reply needs the session.
  void WaitForReads();
  // Runs `start` on the mount's own thread for starting reads that waited
  // for a buffer: the thread that gave it back may be one that finishes
  // transfers, which must never wait for another (fs/executor.h).
  void StartLater(std::function<void()> start);
  // The most chunks the daemon reads ahead of a direct open: as far as the
  // kernel's window reaches for cached ones (`read_ahead_kb`, 0 for its
  // 128 KiB), a chunk per MiB, at least one, at most the pool. Each stream
  // measures how many of them read fastest (see fs/fuse/depth_tuner.h).
  size_t read_ahead_depth() const { return read_ahead_depth_; }
  // The depth the latest stream to settle found fastest (0: none yet), where
  // the next stream starts.
  std::atomic<size_t>& learned_read_ahead_depth() { return learned_read_ahead_depth_; }
  const FilesystemOptions& options() const { return options_; }

  // Called by every callback: counts it, and after the connection's set-up
  // (which caps the kernel's read-ahead) applies the read-ahead window once.
  void CountOp() {
    ops_.fetch_add(1, std::memory_order_relaxed);
    if (!tuned_.load(std::memory_order_acquire)) TuneKernel();
  }
  void CountError(uint64_t ino);
  void CountRead(uint64_t ino, uint64_t bytes, Served from = Served::kDevice);
  void CountWrite(uint64_t ino, uint64_t bytes);
  // Sending one read's reply, begun at `start`, is over.
  void TimeReadReply(std::chrono::steady_clock::time_point start) {
    read_reply_.RecordSince(start);
  }
  // Whether an open of `ino` may keep what the kernel has cached of its
  // bytes (FOPEN_KEEP_CACHE), so that reading an unchanged file again, in a
  // new open, comes from memory. Every change to a file's bytes goes through
  // this daemon and moves its data version (fs::Volume::DataVersion): an
  // open keeps the cache when the version is the one the previous open saw;
  // the first open after a change drops it, and the pages the kernel caches
  // from then on are of the new version.
  bool KeepsCache(uint64_t ino);
  // What the kernel holds of `ino` is not known (an open's reply was lost):
  // the next open drops it.
  void CacheUnknown(uint64_t ino);
  // The kernel's references to inodes (lookup counts): counters of an inode
  // the kernel forgot are dropped, so their memory stays bounded.
  void Remember(uint64_t ino);
  void Forget(uint64_t ino, uint64_t nlookup);

  // Values of the virtual xattrs; empty when `name` is not one of them.
  std::string VirtualXattr(uint64_t ino, std::string_view name);

 private:
  void TuneKernel();
  void EndRead();

  fs::Volume& volume_;
  const FilesystemOptions options_;
  std::atomic<bool> tuned_{false};
  std::once_flag tune_once_;
  std::unique_ptr<aio::BufferPool> read_buffers_;
  std::unique_ptr<aio::BufferPool> read_ahead_buffers_;
  // After the pools: destroyed first, with nothing left to start.
  std::unique_ptr<fs::internal::Executor> starter_;
  const size_t read_ahead_depth_;
  std::atomic<size_t> learned_read_ahead_depth_{0};
  std::atomic<uint64_t> ops_{0}, errors_{0}, bytes_read_{0}, bytes_written_{0};
  std::mutex reads_mu_;
  std::condition_variable reads_done_;
  size_t reads_ = 0;  // guarded by reads_mu_: tokens BeginRead gave out
  LatencyHistogram read_reply_;
  std::mutex mu_;
  std::unordered_map<uint64_t, uint64_t> lookups_;       // guarded by mu_
  std::unordered_map<uint64_t, FileCounters> counters_;  // guarded by mu_
  // The data version each inode's last open saw; guarded by mu_.
  std::unordered_map<uint64_t, uint64_t> cached_versions_;
};

}  // namespace nvswapfs::fuse
