#include "nvswapfs/aio/sync_engine.h"

#include <cerrno>

#include "nvswapfs/units.h"

namespace nvswapfs::aio {

void SyncEngine::Submit(const IoRequest& request, IoCallback done) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  Status s = Validate(request);
  if (s.ok()) s = Transfer(request);
  if (!s.ok()) failed_.fetch_add(1, std::memory_order_relaxed);
  done(std::move(s));
}

Status SyncEngine::Transfer(const IoRequest& request) {
  const uint64_t lbs = device().logical_block_size;
  uint64_t done = 0;
  int no_progress = 0;
  while (done < request.length) {
    std::byte* buf = request.buffer + done;
    const uint64_t len = request.length - done;
    const auto off = static_cast<off_t>(request.offset + done);
    const ssize_t n = request.op == IoOp::kRead ? syscalls_.Pread(device_.fd(), buf, len, off)
                                                : syscalls_.Pwrite(device_.fd(), buf, len, off);
    if (n == -EINTR) continue;
    if (n < 0) {
      return Status::Error(static_cast<int>(-n), IoOpName(request.op), device().path,
                           request.offset + done, len);
    }
    const uint64_t progress = RoundDown(static_cast<uint64_t>(n), lbs);
    if (static_cast<uint64_t>(n) < len) short_.fetch_add(1, std::memory_order_relaxed);
    if (progress == 0 && ++no_progress > 8) {
      return Status::Error(EIO, IoOpName(request.op), device().path, request.offset + done, len)
          .WithDetail("the device moved no data");
    }
    if (progress > 0) no_progress = 0;
    done += progress;
  }
  (request.op == IoOp::kRead ? read_ : written_).fetch_add(request.length);
  return Status::Ok();
}

Status SyncEngine::Flush() {
  const int rc = syscalls_.Flush(device_.fd());
  if (rc < 0) return Status::Error(-rc, "flush", device().path);
  return Status::Ok();
}

EngineStats SyncEngine::stats() const {
  EngineStats s;
  s.requests = requests_.load();
  s.failed_requests = failed_.load();
  s.pieces = s.requests;
  s.bytes_read = read_.load();
  s.bytes_written = written_.load();
  s.short_transfers = short_.load();
  return s;
}

}  // namespace nvswapfs::aio
