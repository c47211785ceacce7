// Memory for O_DIRECT: aligned buffers and a bounded pool that reuses them.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "nvswapfs/status.h"

namespace nvswapfs::aio {

// Alignment that satisfies every logical block size we accept (512..4096)
// and keeps buffers on their own pages.
constexpr size_t kBufferAlignment = 4096;

// Buffers of at least this size are mapped on their own, aligned to it, and
// the kernel is asked to back them with transparent huge pages.
constexpr size_t kHugePageSize = size_t{2} << 20;

// An owned, zero-filled, kBufferAlignment-aligned byte buffer. Move-only.
//
// One of kHugePageSize or more is a private mapping aligned to kHugePageSize
// and advised MADV_HUGEPAGE. An O_DIRECT transfer from a huge page is one
// physically contiguous segment; from 4 KiB pages a 1 MiB transfer is 256
// segments, which a device taking fewer per request splits in two (a virtio
// disk here takes 254: 1 MiB reads reached it as ~510 KiB requests), and
// which cannot merge with its neighbours into the larger requests the device
// would take. Without huge pages (disabled, or none free) it is the same
// buffer on ordinary pages.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Allocates `size` bytes (rounded up to the alignment). Fails with ENOMEM.
  static Result<AlignedBuffer> Allocate(size_t size);

  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer();

  std::byte* data() { return data_; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> span() { return {data_, size_}; }
  std::span<const std::byte> span() const { return {data_, size_}; }

 private:
  void Free();

  std::byte* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // the mapping's length if mmap'd, else 0 (aligned_alloc'd)
};

// A fixed set of equally sized aligned buffers, allocated once and handed out
// again and again, so that memory stays bounded however much data moves.
// Thread-safe. The pool must outlive every Lease it hands out.
class BufferPool {
 public:
  // A borrowed buffer, given back to the pool when destroyed.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { Release(); }

    bool valid() const { return pool_ != nullptr; }
    std::byte* data() { return buffer_->data(); }
    size_t size() const { return buffer_->size(); }
    std::span<std::byte> span() { return *buffer_; }

   private:
    friend class BufferPool;
    Lease(BufferPool* pool, std::span<std::byte>* buffer) : pool_(pool), buffer_(buffer) {}
    void Release();
    BufferPool* pool_ = nullptr;
    std::span<std::byte>* buffer_ = nullptr;
  };

  // Allocates `count` buffers of `buffer_size` bytes up front, side by side
  // in one AlignedBuffer (so on huge pages where there are some).
  static Result<std::unique_ptr<BufferPool>> Create(size_t buffer_size, size_t count);

  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Blocks until a buffer is free.
  Lease Acquire();
  // Blocks until `n` buffers are free and takes them together (at most the
  // pool's capacity), so that callers needing several cannot deadlock by each
  // holding some.
  std::vector<Lease> Acquire(size_t n);
  // Returns an invalid Lease when every buffer is out.
  Lease TryAcquire();
  // Takes a buffer into `*now` and returns true when one is free and no
  // earlier call is queued; otherwise queues `later` and returns false:
  // `later` gets the next buffer given back, on the thread that gives it
  // back, in the order the calls were made. Nobody waits, so a pool smaller
  // than the work queued on it bounds what is in flight without holding up
  // the threads that queue.
  bool AcquireOrQueue(Lease* now, std::function<void(Lease)> later);

  size_t buffer_size() const { return buffer_size_; }
  size_t capacity() const { return buffers_.size(); }
  size_t available() const;

 private:
  BufferPool(size_t buffer_size, size_t count, AlignedBuffer memory);
  void Return(std::span<std::byte>* buffer);

  const size_t buffer_size_;
  AlignedBuffer memory_;
  std::vector<std::span<std::byte>> buffers_;  // slices of memory_
  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::span<std::byte>*> free_;  // guarded by mu_
  std::deque<std::function<void(Lease)>> waiters_;  // guarded by mu_: AcquireOrQueue's
};

}  // namespace nvswapfs::aio
