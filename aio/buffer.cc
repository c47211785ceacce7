#include "nvswapfs/aio/buffer.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "nvswapfs/units.h"

namespace nvswapfs::aio {

Result<AlignedBuffer> AlignedBuffer::Allocate(size_t size) {
  AlignedBuffer buffer;
  if (size == 0) return buffer;
  const size_t rounded = RoundUp(size, kBufferAlignment);
  void* p = std::aligned_alloc(kBufferAlignment, rounded);
  if (p == nullptr) {
    return Status::Error(ENOMEM, "allocate buffer", "memory", 0, rounded);
  }
  std::memset(p, 0, rounded);
  buffer.data_ = static_cast<std::byte*>(p);
  buffer.size_ = rounded;
  return buffer;
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

AlignedBuffer::~AlignedBuffer() {
  std::free(data_);
}

BufferPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), buffer_(std::exchange(other.buffer_, nullptr)) {}

BufferPool::Lease& BufferPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::exchange(other.pool_, nullptr);
    buffer_ = std::exchange(other.buffer_, nullptr);
  }
  return *this;
}

void BufferPool::Lease::Release() {
  if (pool_ != nullptr) pool_->Return(buffer_);
  pool_ = nullptr;
  buffer_ = nullptr;
}

Result<std::unique_ptr<BufferPool>> BufferPool::Create(size_t buffer_size, size_t count) {
  if (buffer_size == 0 || count == 0) {
    return Status::Error(EINVAL, "create buffer pool", "memory")
        .WithDetail("buffer size and count must be non-zero");
  }
  std::vector<AlignedBuffer> buffers;
  buffers.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    auto b = AlignedBuffer::Allocate(buffer_size);
    if (!b.ok()) return std::move(b).take_status();
    buffers.push_back(std::move(b).value());
  }
  return std::unique_ptr<BufferPool>(new BufferPool(buffer_size, std::move(buffers)));
}

BufferPool::BufferPool(size_t buffer_size, std::vector<AlignedBuffer> buffers)
    : buffer_size_(buffer_size), buffers_(std::move(buffers)) {
  free_.reserve(buffers_.size());
  for (auto& b : buffers_) free_.push_back(&b);
}

BufferPool::Lease BufferPool::Acquire() {
  std::unique_lock lock(mu_);
  freed_.wait(lock, [&] { return !free_.empty(); });
  AlignedBuffer* b = free_.back();
  free_.pop_back();
  return Lease(this, b);
}

std::vector<BufferPool::Lease> BufferPool::Acquire(size_t n) {
  n = std::min(n, buffers_.size());
  std::unique_lock lock(mu_);
  freed_.wait(lock, [&] { return free_.size() >= n; });
  std::vector<Lease> leases;
  leases.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    leases.push_back(Lease(this, free_.back()));
    free_.pop_back();
  }
  return leases;
}

BufferPool::Lease BufferPool::TryAcquire() {
  std::lock_guard lock(mu_);
  if (free_.empty()) return Lease();
  AlignedBuffer* b = free_.back();
  free_.pop_back();
  return Lease(this, b);
}

size_t BufferPool::available() const {
  std::lock_guard lock(mu_);
  return free_.size();
}

void BufferPool::Return(AlignedBuffer* buffer) {
  // Notified under the lock: the returning lease may be the last thing that
  // keeps the pool's owner from destroying it.
  std::lock_guard lock(mu_);
  free_.push_back(buffer);
  // All: a waiter for several buffers may not be the one this one completes.
  freed_.notify_all();
}

}  // namespace nvswapfs::aio
