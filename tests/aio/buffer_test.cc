#include "nvswapfs/aio/buffer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace nvswapfs::aio {
namespace {

TEST(AlignedBufferTest, IsAlignedZeroedAndRoundedUp) {
  auto b = AlignedBuffer::Allocate(5000);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % kBufferAlignment, 0u);
  EXPECT_EQ(b->size(), 8192u);
  for (std::byte x : b->span()) ASSERT_EQ(x, std::byte{0});
}

TEST(AlignedBufferTest, MoveTransfersOwnership) {
  auto b = AlignedBuffer::Allocate(4096);
  ASSERT_TRUE(b.ok());
  std::byte* p = b->data();
  AlignedBuffer moved = std::move(b).value();
  EXPECT_EQ(moved.data(), p);
}

TEST(BufferPoolTest, RejectsEmptyPools) {
  EXPECT_EQ(BufferPool::Create(0, 4).status().code(), EINVAL);
  EXPECT_EQ(BufferPool::Create(4096, 0).status().code(), EINVAL);
}

TEST(BufferPoolTest, HandsOutAtMostCapacityAndReusesBuffers) {
  auto pool = BufferPool::Create(64 * 1024, 2);
  ASSERT_TRUE(pool.ok());
  BufferPool& p = **pool;
  BufferPool::Lease a = p.TryAcquire();
  BufferPool::Lease b = p.TryAcquire();
  ASSERT_TRUE(a.valid());
  ASSERT_TRUE(b.valid());
  EXPECT_FALSE(p.TryAcquire().valid());
  EXPECT_EQ(p.available(), 0u);
  std::byte* first = a.data();
  a = BufferPool::Lease();  // give it back
  EXPECT_EQ(p.available(), 1u);
  BufferPool::Lease c = p.TryAcquire();
  ASSERT_TRUE(c.valid());
  EXPECT_EQ(c.data(), first);
  EXPECT_EQ(c.size(), 64u * 1024);
}

TEST(BufferPoolTest, AcquireWaitsForAReturn) {
  auto pool = BufferPool::Create(4096, 1);
  ASSERT_TRUE(pool.ok());
  BufferPool::Lease held = (*pool)->Acquire();
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    BufferPool::Lease l = (*pool)->Acquire();
    got = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(got.load());
  held = BufferPool::Lease();
  waiter.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ((*pool)->available(), 1u);
}

}  // namespace
}  // namespace nvswapfs::aio
