// Memory for O_DIRECT: aligned buffers and a bounded pool that reuses them.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "nvswapfs/status.h"

namespace nvswapfs::aio {

// Alignment that satisfies every logical block size we accept (512..4096)
// and keeps buffers on their own pages.
constexpr size_t kBufferAlignment = 4096;

// An owned, zero-filled, kBufferAlignment-aligned byte buffer. Move-only.
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
  std::byte* data_ = nullptr;
  size_t size_ = 0;
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
    std::span<std::byte> span() { return buffer_->span(); }

   private:
    friend class BufferPool;
    Lease(BufferPool* pool, AlignedBuffer* buffer) : pool_(pool), buffer_(buffer) {}
    void Release();
    BufferPool* pool_ = nullptr;
    AlignedBuffer* buffer_ = nullptr;
  };

  // Allocates `count` buffers of `buffer_size` bytes up front.
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

  size_t buffer_size() const { return buffer_size_; }
  size_t capacity() const { return buffers_.size(); }
  size_t available() const;

 private:
  BufferPool(size_t buffer_size, std::vector<AlignedBuffer> buffers);
  void Return(AlignedBuffer* buffer);

  const size_t buffer_size_;
  std::vector<AlignedBuffer> buffers_;
  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::vector<AlignedBuffer*> free_;  // guarded by mu_
};

}  // namespace nvswapfs::aio
