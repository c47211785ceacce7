#include "read_ahead.h"

#include <optional>

#include "ops_internal.h"

namespace nvswapfs::fuse::internal {

// One request's worth read ahead. Shared by the window and the engine's
// completion, so that either may go first.
struct ReadAhead::Entry {
  uint64_t ino = 0;
  uint64_t offset = 0;
  size_t size = 0;
  uint64_t version = 0;
  aio::BufferPool::Lease lease;
  std::mutex mu;
  std::optional<Result<size_t>> result;  // guarded by mu
  fuse_req_t waiting = nullptr;          // guarded by mu: answered on completion

  void Answer(fuse_req_t req) {
    Guarded(req, [&] {
      if (!result->ok()) return ReplyError(req, result->status(), ino);
      const size_t n = std::min(**result, size);
      FsOf(req).CountRead(ino, n);
      fuse_reply_buf(req, reinterpret_cast<const char*>(lease.data()), n);
    });
  }

  void Complete(Result<size_t> n) {
    fuse_req_t req = nullptr;
    {
      std::lock_guard lock(mu);
      result = std::move(n);
      req = waiting;
      waiting = nullptr;
    }
    if (req != nullptr) Answer(req);
  }
};

ReadAhead::ReadAhead(fs::Volume& volume, aio::BufferPool& pool, uint64_t ino, size_t depth)
    : volume_(volume), pool_(pool), ino_(ino), depth_(depth) {}

ReadAhead::~ReadAhead() {
  std::lock_guard lock(mu_);
  DropLocked();
}

bool ReadAhead::Serve(fuse_req_t req, uint64_t offset, size_t size) {
  std::shared_ptr<Entry> hit;
  {
    std::lock_guard lock(mu_);
    const uint64_t version = volume_.DataVersion(ino_);
    if (!ahead_.empty()) {
      const std::shared_ptr<Entry>& front = ahead_.front();
      if (front->offset == offset && front->size == size && front->version == version) {
        hit = front;
        ahead_.pop_front();
        next_ = offset + size;
        FillLocked(version);
      } else {
        DropLocked();
      }
    }
    if (hit == nullptr) {
      streak_ = offset == next_ && size == size_ ? streak_ + 1 : 0;
      next_ = offset + size;
      size_ = size;
      ++outstanding_;
      // Only for a client waiting on one request at a time: one with several
      // in flight keeps the device busy by itself.
      if (streak_ >= 1 && outstanding_ == 1) FillLocked(version);
      return false;
    }
  }
  {
    std::lock_guard lock(hit->mu);
    if (!hit->result.has_value()) {
      hit->waiting = req;
      return true;
    }
  }
  hit->Answer(req);
  return true;
}

void ReadAhead::Finished() {
  std::lock_guard lock(mu_);
  --outstanding_;
}

void ReadAhead::DropLocked() {
  // Entries still being read let go of their buffers when the read ends.
  ahead_.clear();
}

void ReadAhead::FillLocked(uint64_t version) {
  uint64_t at = ahead_.empty() ? next_ : ahead_.back()->offset + size_;
  while (ahead_.size() < depth_ && size_ > 0 && size_ <= pool_.buffer_size()) {
    aio::BufferPool::Lease lease = pool_.TryAcquire();
    if (!lease.valid()) break;  // the pool is shared: take only what is free
    auto e = std::make_shared<Entry>();
    e->ino = ino_;
    e->offset = at;
    e->size = size_;
    e->version = version;
    e->lease = std::move(lease);
    ahead_.push_back(e);
    volume_.ReadAsync(ino_, at, std::span<std::byte>(e->lease.data(), size_),
                      [e](Result<size_t> n) { e->Complete(std::move(n)); });
    at += size_;
  }
}

}  // namespace nvswapfs::fuse::internal
