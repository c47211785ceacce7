#include "nvswapfs/aio/buffer.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "nvswapfs/units.h"

namespace nvswapfs::aio {

namespace {

// A private anonymous mapping of `size` bytes (a multiple of kHugePageSize)
// aligned to kHugePageSize, advised to use huge pages; nullptr on failure.
void* MapHuge(size_t size) {
  // Map one huge page more than asked and trim both ends to the alignment.
  const size_t span = size + kHugePageSize;
  void* p = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = RoundUp(start, kHugePageSize);
  if (aligned > start) ::munmap(p, aligned - start);
  const uintptr_t end = start + span;
  if (end > aligned + size) ::munmap(reinterpret_cast<void*>(aligned + size), end - aligned - size);
  // Only advice: without transparent huge pages (EINVAL) the mapping is
  // still good memory.
  (void)::madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

}  // namespace

Result<AlignedBuffer> AlignedBuffer::Allocate(size_t size) {
  AlignedBuffer buffer;
  if (size == 0) return buffer;
  const size_t rounded = RoundUp(size, kBufferAlignment);
  const size_t mapped = size >= kHugePageSize ? RoundUp(size, kHugePageSize) : 0;
  void* p = mapped != 0 ? MapHuge(mapped) : std::aligned_alloc(kBufferAlignment, rounded);
  if (p == nullptr) {
    return Status::Error(ENOMEM, "allocate buffer", "memory", 0, rounded);
  }
  // Touched now, so that the memory is there (and faulted in as huge pages)
  // before the first transfer rather than during it. A fresh mapping is
  // zero already; writing makes it resident.
  std::memset(p, 0, rounded);
  buffer.data_ = static_cast<std::byte*>(p);
  buffer.size_ = rounded;
  buffer.mapped_ = mapped;
  return buffer;
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    Free();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

AlignedBuffer::~AlignedBuffer() {
  Free();
}

void AlignedBuffer::Free() {
  if (data_ == nullptr) return;
  if (mapped_ != 0) {
    ::munmap(data_, mapped_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
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
  const size_t slot = RoundUp(buffer_size, kBufferAlignment);
  auto memory = AlignedBuffer::Allocate(slot * count);
  if (!memory.ok()) return std::move(memory).take_status();
  return std::unique_ptr<BufferPool>(new BufferPool(buffer_size, count, std::move(memory).value()));
}

BufferPool::BufferPool(size_t buffer_size, size_t count, AlignedBuffer memory)
    : buffer_size_(buffer_size), memory_(std::move(memory)) {
  // Create sized the memory as `count` aligned slots.
  const size_t slot = memory_.size() / count;
  buffers_.reserve(count);
  for (size_t i = 0; i < count; ++i) buffers_.push_back(memory_.span().subspan(i * slot, slot));
  free_.reserve(count);
  for (auto& b : buffers_) free_.push_back(&b);
}

BufferPool::Lease BufferPool::Acquire() {
  std::unique_lock lock(mu_);
  freed_.wait(lock, [&] { return !free_.empty(); });
  std::span<std::byte>* b = free_.back();
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
  std::span<std::byte>* b = free_.back();
  free_.pop_back();
  return Lease(this, b);
}

bool BufferPool::AcquireOrQueue(Lease* now, std::function<void(Lease)> later) {
  std::span<std::byte>* b = nullptr;
  {
    std::lock_guard lock(mu_);
    if (free_.empty() || !waiters_.empty()) {
      waiters_.push_back(std::move(later));
      return false;
    }
    b = free_.back();
    free_.pop_back();
  }
  // Outside the lock: whatever `*now` held goes back to its pool.
  *now = Lease(this, b);
  return true;
}

size_t BufferPool::available() const {
  std::lock_guard lock(mu_);
  return free_.size();
}

void BufferPool::Return(std::span<std::byte>* buffer) {
  std::function<void(Lease)> next;
  {
    // Notified under the lock: the returning lease may be the last thing
    // that keeps the pool's owner from destroying it.
    std::lock_guard lock(mu_);
    if (waiters_.empty()) {
      free_.push_back(buffer);
      // All: a waiter for several buffers may not be the one this one
      // completes.
      freed_.notify_all();
      return;
    }
    next = std::move(waiters_.front());
    waiters_.pop_front();
  }
  // Handed on directly: outside the lock, as `next` may give a buffer back.
  next(Lease(this, buffer));
}

}  // namespace nvswapfs::aio
