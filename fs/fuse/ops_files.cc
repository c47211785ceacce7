// FUSE callbacks for file data: open, read, write, flush, sync, release;
// and the volume's free space (fstrim).
#include <fcntl.h>
#include <linux/fs.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "init_reply.h"
#include "nvswapfs/aio/buffer.h"
#include "nvswapfs/fuse/connection.h"
#include "nvswapfs/units.h"
#include "ops_internal.h"
#include "read_ahead.h"
#include "serve.h"

namespace nvswapfs::fuse::internal {

namespace {

// What one open file remembers between calls.
struct Handle {
  // Written since the last flush: closing it commits, so that a file that
  // was closed survives the daemon being killed.
  std::atomic<bool> wrote{false};
  // For opens that bypass the page cache (and so the kernel's read-ahead).
  std::unique_ptr<ReadAhead> ahead;
};

Handle* HandleOf(fuse_file_info* fi) {
  return reinterpret_cast<Handle*>(fi->fh);
}

// Prepares `fi` for an open of `ino`: pins the inode (it outlives an unlink
// while open) and chooses the cache policy.
Status OpenFile(Filesystem& fs, uint64_t ino, fuse_file_info* fi) {
  NVSWAPFS_RETURN_IF_ERROR(fs.volume().Open(ino));
  fi->direct_io = BypassesPageCache(fi->flags, DirectIoMmapGranted());
  auto handle = std::make_unique<Handle>();
  if (fi->direct_io && (fi->flags & O_ACCMODE) != O_WRONLY) {
    handle->ahead =
        std::make_unique<ReadAhead>(fs.volume(), fs.read_ahead_pool(), ino, fs.read_ahead_depth(),
                                    fs.learned_read_ahead_depth());
  }
  // Last: from here on only the reply can fail (see AbandonUnsentOpen).
  fi->keep_cache = fs.KeepsCache(ino) ? 1 : 0;
  fi->fh = reinterpret_cast<uint64_t>(handle.release());
  return Status::Ok();
}

void AbandonOpen(Filesystem& fs, uint64_t ino, fuse_file_info* fi) {
  delete HandleOf(fi);
  fs.volume().Release(ino);
}

// An open whose reply never reached the kernel (the caller was interrupted):
// the kernel did not drop its cache as the reply may have told it to.
void AbandonUnsentOpen(Filesystem& fs, uint64_t ino, fuse_file_info* fi) {
  fs.CacheUnknown(ino);
  AbandonOpen(fs, ino, fi);
}

}  // namespace

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guarded(req, [&] {
    Filesystem& fs = FsOf(req);
    Status s = OpenFile(fs, ino, fi);
    if (!s.ok()) return ReplyError(req, s, ino);
    if (fuse_reply_open(req, fi) != 0) AbandonUnsentOpen(fs, ino, fi);
  });
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Guarded(req, [&] {
    Filesystem& fs = FsOf(req);
    const fuse_ctx* ctx = fuse_req_ctx(req);
    auto attr = fs.volume().Create(
        parent, name, fs::NewInode{static_cast<uint32_t>(mode & 07777), ctx->uid, ctx->gid});
    if (!attr.ok()) return ReplyError(req, attr.status(), 0, attr.status().code() == EEXIST);
    Status s = OpenFile(fs, attr->ino, fi);
    if (!s.ok()) return ReplyError(req, s, attr->ino);
    const fuse_entry_param e = ToEntry(fs, *attr);
    if (fuse_reply_create(req, &e, fi) == 0) {
      fs.Remember(attr->ino);
    } else {
      AbandonUnsentOpen(fs, attr->ino, fi);
    }
  });
}

// Reads [off, off + size) of `ino` from the device into `buffer` and answers
// `req` from it. The reply buffer lives until the engine is done with it; the
// reply is sent from the completion, and this thread goes on. `read` is the
// read's token (Filesystem::BeginRead), let go once the reply is sent.
void ReadIntoAndReply(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, ReadAhead* ahead,
                      std::shared_ptr<aio::BufferPool::Lease> buffer, std::shared_ptr<void> read) {
  Guarded(req, [&] {
    std::span<std::byte> out(buffer->data(), size);
    FsOf(req).volume().ReadAsync(
        ino, static_cast<uint64_t>(off), out, [req, ino, buffer, ahead, read](Result<size_t> n) {
          // Before the reply: once answered, the kernel may release the
          // handle the read-ahead belongs to.
          if (ahead != nullptr) ahead->Finished();
          Guarded(req, [&] {
            if (!n.ok()) return ReplyError(req, n.status(), ino);
            Filesystem& mount = FsOf(req);
            mount.CountRead(ino, *n);
            TimedReadReply(mount, [&] {
              fuse_reply_buf(req, reinterpret_cast<const char*>(buffer->data()), *n);
            });
          });
        });
  });
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Guarded(req, [&] {
    Filesystem& fs = FsOf(req);
    Handle* h = HandleOf(fi);
    ReadAhead* ahead = h != nullptr ? h->ahead.get() : nullptr;
    if (ahead != nullptr && ahead->Serve(req, static_cast<uint64_t>(off), size)) return;
    // A window of the kernel's read-ahead, or a direct open's read that the
    // daemon's read-ahead does not answer: in turn for one of a few buffers,
    // so that however many requests come at once only that much memory is
    // busy. One that waits starts on the mount's starter thread once a
    // buffer is given back.
    std::shared_ptr<void> read = fs.BeginRead();
    aio::BufferPool::Lease lease;
    auto later = [req, ino, size, off, ahead, read](aio::BufferPool::Lease l) {
      auto held = std::make_shared<aio::BufferPool::Lease>(std::move(l));
      FsOf(req).StartLater([req, ino, size, off, ahead, held, read] {
        ReadIntoAndReply(req, ino, size, off, ahead, held, read);
      });
    };
    if (fs.AcquireReadBuffer(size, &lease, std::move(later))) {
      ReadIntoAndReply(req, ino, size, off, ahead,
                       std::make_shared<aio::BufferPool::Lease>(std::move(lease)), std::move(read));
    }
  });
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
           fuse_file_info* fi) {
  Guarded(req, [&] {
    Handle* h = HandleOf(fi);
    Filesystem& fs = FsOf(req);
    // Write-behind unless asked otherwise: the reply goes out once the bytes
    // are queued, so the next request overlaps this one's device write.
    const fs::WriteMode mode =
        fs.options().sync_writes ? fs::WriteMode::kThrough : fs::WriteMode::kBehind;
    // The kernel leaves set-ID bits to us on writes that bypass its cache.
    const bool privileged = fuse_req_ctx(req)->uid == 0;
    auto done = [req, ino, h](Result<size_t> n) {
      Guarded(req, [&] {
        if (!n.ok()) return ReplyError(req, n.status(), ino);
        if (h != nullptr) h->wrote.store(true, std::memory_order_relaxed);
        FsOf(req).CountWrite(ino, *n);
        fuse_reply_write(req, *n);
      });
    };
    // `buf` is the request buffer's: taken along, its aligned blocks go to
    // the device from there. Otherwise the volume copies what it keeps
    // before WriteAsync returns, as libfuse may reuse `buf`.
    std::span<std::byte> bytes;
    if (std::shared_ptr<void> owner = TakeRequestBuffer(buf, size, &bytes)) {
      fs.volume().WriteAsync(ino, static_cast<uint64_t>(off), bytes, std::move(owner),
                             std::move(done), mode, privileged);
    } else {
      fs.volume().WriteAsync(ino, static_cast<uint64_t>(off), std::as_bytes(std::span(buf, size)),
                             std::move(done), mode, privileged);
    }
  });
}

// A write-behind failure keeps its own op and range; it says where it was
// reported.
static Status ReportedAt(Status s, std::string_view op) {
  if (s.op() == "write")
    return std::move(s).WithDetail(std::string(s.detail()) + "; reported at " + std::string(op));
  return std::move(s).WithOp(op);
}

void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guarded(req, [&] {
    Handle* h = HandleOf(fi);
    if (h != nullptr && h->wrote.exchange(false)) {
      // close() of a written file commits it, so that it survives the daemon
      // being killed (fsync adds the flush a power cut needs), and reports
      // what went wrong.
      Status s = FsOf(req).volume().Persist(ino);
      if (!s.ok()) return ReplyError(req, ReportedAt(std::move(s), "close"), ino);
    }
    fuse_reply_err(req, 0);
  });
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guarded(req, [&] {
    AbandonOpen(FsOf(req), ino, fi);
    fuse_reply_err(req, 0);
  });
}

void Fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  Guarded(req, [&] {
    Status s = FsOf(req).volume().Fsync(ino);
    if (!s.ok()) return ReplyError(req, ReportedAt(std::move(s), "fsync"), ino);
    fuse_reply_err(req, 0);
  });
}

void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
               fuse_file_info*) {
  Guarded(req, [&] {
    Status s = FsOf(req).volume().Fallocate(ino, mode, static_cast<uint64_t>(offset),
                                            static_cast<uint64_t>(length));
    if (!s.ok()) return ReplyError(req, s, ino, s.code() == EOPNOTSUPP);
    fuse_reply_err(req, 0);
  });
}

// FITRIM, which `fstrim MOUNTPOINT` sends to the mount point: discards the
// volume's free space on the device. The kernel copies the range in and out
// itself (a restricted ioctl, its size encoded in the command). Any other
// ioctl is not one of ours.
void Ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void*, fuse_file_info*, unsigned,
           const void* in_buf, size_t in_size, size_t out_size) {
  Guarded(req, [&] {
    if (cmd != FITRIM) return (void)fuse_reply_err(req, ENOTTY);
    fstrim_range range{};
    if (in_size < sizeof range || out_size < sizeof range) {
      return (void)fuse_reply_err(req, EINVAL);
    }
    // As on a local filesystem, discarding is for the administrator.
    if (fuse_req_ctx(req)->uid != 0) return (void)fuse_reply_err(req, EPERM);
    std::memcpy(&range, in_buf, sizeof range);
    Filesystem& fs = FsOf(req);
    const auto start = std::chrono::steady_clock::now();
    Result<uint64_t> trimmed = fs.volume().Trim(range.start, range.len, range.minlen);
    if (!trimmed.ok()) return ReplyError(req, trimmed.status(), ino);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    LogInfo("trim: discarded " + FormatSize(*trimmed) + " of free space in " + std::to_string(ms) +
            " ms");
    range.len = *trimmed;
    fuse_reply_ioctl(req, 0, &range, sizeof range);
  });
}

}  // namespace nvswapfs::fuse::internal
