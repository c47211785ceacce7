// The session side of the FUSE glue: the callback table, connection set-up,
// replies shared by every kind of request, and the counters.
#include "nvswapfs/fuse/filesystem.h"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "../executor.h"
#include "mount_table.h"
#include "nvswapfs/fuse/connection.h"
#include "nvswapfs/units.h"
#include "ops_internal.h"

namespace nvswapfs::fuse {

using internal::FsOf;

namespace internal {

void Init(void* userdata, fuse_conn_info* conn) {
  const auto* fs = static_cast<const Filesystem*>(userdata);
  // libfuse 3.14 refuses a connection whose init() disagrees with the
  // max_read mount option.
  conn->max_read = fs->options().max_read;
  AskForLargeRequests(conn);
  conn->time_gran = 1;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
}

void ReplyError(fuse_req_t req, const Status& status, uint64_t ino, bool quiet) {
  // Probing answers (no such name, no such xattr) are not failures.
  if (!quiet) {
    FsOf(req).CountError(ino);
    LogError(status.ToString());
  }
  fuse_reply_err(req, status.code() > 0 ? status.code() : EIO);
}

void ToStat(const fs::Attr& attr, struct stat* st) {
  *st = {};
  st->st_ino = attr.ino;
  st->st_mode = attr.mode;
  st->st_nlink = attr.nlink;
  st->st_uid = attr.uid;
  st->st_gid = attr.gid;
  st->st_size = static_cast<off_t>(attr.size);
  st->st_blocks = static_cast<blkcnt_t>(attr.blocks);
  // Tools size their buffers by this (cp, Python's io): ask for large I/O.
  st->st_blksize = kMaxRequest;
  st->st_atim.tv_sec = attr.atime_ns / 1'000'000'000;
  st->st_atim.tv_nsec = attr.atime_ns % 1'000'000'000;
  st->st_mtim.tv_sec = attr.mtime_ns / 1'000'000'000;
  st->st_mtim.tv_nsec = attr.mtime_ns % 1'000'000'000;
  st->st_ctim.tv_sec = attr.ctime_ns / 1'000'000'000;
  st->st_ctim.tv_nsec = attr.ctime_ns % 1'000'000'000;
}

fuse_entry_param ToEntry(Filesystem& fs, const fs::Attr& attr) {
  fuse_entry_param e{};
  e.ino = attr.ino;
  e.generation = 1;
  ToStat(attr, &e.attr);
  e.attr_timeout = fs.options().attr_timeout_s;
  e.entry_timeout = fs.options().attr_timeout_s;
  return e;
}

void ReplyEntry(fuse_req_t req, const fs::Attr& attr) {
  Filesystem& fs = FsOf(req);
  const fuse_entry_param e = ToEntry(fs, attr);
  if (fuse_reply_entry(req, &e) == 0) fs.Remember(attr.ino);
}

}  // namespace internal

Filesystem::Filesystem(fs::Volume& volume, const FilesystemOptions& options)
    : volume_(volume),
      options_(options),
      read_ahead_depth_(std::clamp<size_t>(options.read_ahead_kb / 1024, 1,
                                           std::max<size_t>(options.read_ahead_buffers, 1))) {
  auto pool = aio::BufferPool::Create(kMaxRequest, std::max<size_t>(options.read_buffers, 1));
  if (!pool.ok()) throw std::bad_alloc();
  read_buffers_ = std::move(pool).value();
  auto ahead =
      aio::BufferPool::Create(kMaxRequest, std::max<size_t>(options.read_ahead_buffers, 1));
  if (!ahead.ok()) throw std::bad_alloc();
  read_ahead_buffers_ = std::move(ahead).value();
  starter_ = std::make_unique<fs::internal::Executor>(1, "nvswapfs-rstart");
}

Filesystem::~Filesystem() = default;

void Filesystem::StartLater(std::function<void()> start) {
  starter_->Post(std::move(start));
}

bool Filesystem::AcquireReadBuffer(size_t size, aio::BufferPool::Lease* now,
                                   std::function<void(aio::BufferPool::Lease)> later) {
  if (size > kMaxRequest) throw std::length_error("read larger than the negotiated maximum");
  return read_buffers_->AcquireOrQueue(now, std::move(later));
}

std::shared_ptr<void> Filesystem::BeginRead() {
  {
    std::lock_guard lock(reads_mu_);
    ++reads_;
  }
  return std::shared_ptr<void>(this, [](void* fs) { static_cast<Filesystem*>(fs)->EndRead(); });
}

void Filesystem::EndRead() {
  std::lock_guard lock(reads_mu_);
  if (--reads_ == 0) reads_done_.notify_all();
}

void Filesystem::WaitForReads() {
  std::unique_lock lock(reads_mu_);
  reads_done_.wait(lock, [&] { return reads_ == 0; });
}

const fuse_lowlevel_ops& Filesystem::Operations() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o{};
    using namespace internal;
    o.init = Init;
    o.forget = internal::Forget;
    o.lookup = Lookup;
    o.forget_multi = ForgetMulti;
    o.getattr = GetAttr;
    o.setattr = SetAttr;
    o.readlink = Readlink;
    o.mknod = Mknod;
    o.mkdir = Mkdir;
    o.unlink = Unlink;
    o.rmdir = Rmdir;
    o.symlink = Symlink;
    o.rename = Rename;
    o.link = Link;
    o.open = Open;
    o.read = Read;
    o.write = Write;
    o.flush = Flush;
    o.release = Release;
    o.fsync = Fsync;
    o.opendir = OpenDir;
    o.readdir = ReadDir;
    o.readdirplus = ReadDirPlus;
    o.releasedir = ReleaseDir;
    o.fsyncdir = FsyncDir;
    o.statfs = StatFs;
    o.setxattr = SetXattr;
    o.getxattr = GetXattr;
    o.listxattr = ListXattr;
    o.removexattr = RemoveXattr;
    o.access = Access;
    o.create = Create;
    o.fallocate = Fallocate;
    o.ioctl = Ioctl;
    return o;
  }();
  return ops;
}

void Filesystem::Attach(fuse_session* session) {
  volume_.SetAttrChangeListener([session](uint64_t ino) {
    // Attributes only (a negative offset): safe from inside a request.
    fuse_lowlevel_notify_inval_inode(session, ino, -1, 0);
  });
}

void Filesystem::TuneKernel() {
  std::call_once(tune_once_, [&] {
    tuned_.store(true, std::memory_order_release);
    if (options_.read_ahead_kb == 0 || options_.mountpoint.empty()) return;
    const auto mount = internal::MountedAt(options_.mountpoint);
    const std::string dev = mount.has_value() ? mount->device : "";
    const std::string path = "/sys/class/bdi/" + dev + "/read_ahead_kb";
    std::ofstream out(path);
    if (!dev.empty() && out) out << options_.read_ahead_kb << "\n";
    out.flush();
    if (dev.empty() || !out) {
      LogWarning("cannot set the kernel's read-ahead for " + options_.mountpoint + " (" + path +
                 "); sequential reads keep the default 128 KiB window");
      return;
    }
    LogInfo("kernel read-ahead for " + options_.mountpoint + ": " +
            std::to_string(options_.read_ahead_kb) + " KiB");
  });
}

void Filesystem::CountError(uint64_t ino) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  if (ino == 0) return;
  std::lock_guard lock(mu_);
  counters_[ino].errors++;
}

void Filesystem::CountRead(uint64_t ino, uint64_t bytes, Served from) {
  bytes_read_.fetch_add(bytes, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  FileCounters& c = counters_[ino];
  c.reads++;
  c.bytes_read += bytes;
  if (from == Served::kReadAhead) c.read_ahead++;
}

void Filesystem::CountWrite(uint64_t ino, uint64_t bytes) {
  bytes_written_.fetch_add(bytes, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  FileCounters& c = counters_[ino];
  c.writes++;
  c.bytes_written += bytes;
}

bool Filesystem::KeepsCache(uint64_t ino) {
  const uint64_t version = volume_.DataVersion(ino);
  std::lock_guard lock(mu_);
  auto [it, first] = cached_versions_.try_emplace(ino, version);
  if (first) return false;
  const bool unchanged = it->second == version;
  it->second = version;
  return unchanged;
}

void Filesystem::CacheUnknown(uint64_t ino) {
  std::lock_guard lock(mu_);
  cached_versions_.erase(ino);
}

void Filesystem::Remember(uint64_t ino) {
  std::lock_guard lock(mu_);
  lookups_[ino]++;
}

void Filesystem::Forget(uint64_t ino, uint64_t nlookup) {
  std::lock_guard lock(mu_);
  auto it = lookups_.find(ino);
  if (it == lookups_.end()) return;
  if (it->second > nlookup) {
    it->second -= nlookup;
    return;
  }
  lookups_.erase(it);
  counters_.erase(ino);
  // The kernel let go of the inode, and of its cached pages with it.
  cached_versions_.erase(ino);
}

std::string Filesystem::VirtualXattr(uint64_t ino, std::string_view name) {
  if (name == "user.nvswapfs.stats") {
    const aio::EngineStats e = volume_.engine().stats();
    return "ops=" + std::to_string(ops_.load()) + " errors=" + std::to_string(errors_.load()) +
           " bytes_read=" + std::to_string(bytes_read_.load()) +
           " bytes_written=" + std::to_string(bytes_written_.load()) +
           " in_flight=" + std::to_string(e.in_flight) +
           " engine_requests=" + std::to_string(e.requests) +
           " engine_failed=" + std::to_string(e.failed_requests);
  }
  if (name == "user.nvswapfs.latency") {
    // Median and 99th percentile, in µs rounded up.
    const auto quantiles = [](const LatencyHistogram& h) {
      const auto us = [&](double q) { return std::to_string((h.Percentile(q) + 999) / 1000); };
      return us(0.5) + "/" + us(0.99);
    };
    LatencyHistogram queue, device;
    volume_.engine().QueueLatency(&queue);
    volume_.engine().DeviceLatency(&device);
    const LatencyHistogram& finish = volume_.read_finish_wait();
    return "pieces=" + std::to_string(device.count()) + " queue_us=" + quantiles(queue) +
           " device_us=" + quantiles(device) + " reads=" + std::to_string(finish.count()) +
           " finish_wait_us=" + quantiles(finish) + " reply_us=" + quantiles(read_reply_);
  }
  FileCounters c;
  {
    std::lock_guard lock(mu_);
    auto it = counters_.find(ino);
    if (it != counters_.end()) c = it->second;
  }
  if (name == "user.nvswapfs.errors") return std::to_string(c.errors);
  if (name == "user.nvswapfs.io") {
    return "reads=" + std::to_string(c.reads) + " writes=" + std::to_string(c.writes) +
           " bytes_read=" + std::to_string(c.bytes_read) +
           " bytes_written=" + std::to_string(c.bytes_written) +
           " errors=" + std::to_string(c.errors) + " read_ahead=" + std::to_string(c.read_ahead);
  }
  return "";
}

}  // namespace nvswapfs::fuse
