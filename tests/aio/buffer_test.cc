#include "nvswapfs/aio/buffer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

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

// The VmFlags line of /proc/self/smaps for the mapping that holds `p`.
std::string VmFlagsOf(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {
      inside = lo <= at && at < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

TEST(AlignedBufferTest, LargeBuffersAreHugePageAlignedAndAdvised) {
  auto b = AlignedBuffer::Allocate(3 * 1024 * 1024);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % kHugePageSize, 0u);
  EXPECT_EQ(b->size(), 3u * 1024 * 1024);  // the mapping is larger; the buffer is as asked
  for (std::byte x : b->span()) ASSERT_EQ(x, std::byte{0});
  // "hg": the kernel was asked for transparent huge pages (MADV_HUGEPAGE).
  const std::string flags = VmFlagsOf(b->data());
  ASSERT_FALSE(flags.empty()) << "no mapping holds the buffer";
  EXPECT_NE(flags.find(" hg"), std::string::npos) << flags;
  // Small buffers stay on the heap, with no advice of their own.
  auto small = AlignedBuffer::Allocate(4096);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small->data()) % kBufferAlignment, 0u);
}

TEST(AlignedBufferTest, MovedLargeBufferIsFreedOnce) {
  auto b = AlignedBuffer::Allocate(kHugePageSize);
  ASSERT_TRUE(b.ok());
  AlignedBuffer a = std::move(b).value();
  AlignedBuffer c;
  c = std::move(a);
  c.data()[kHugePageSize - 1] = std::byte{7};
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(c.size(), kHugePageSize);
}

TEST(BufferPoolTest, BuffersAreDisjointAlignedSlicesOfHugePages) {
  const size_t size = 1024 * 1024;
  auto pool = BufferPool::Create(size, 6);
  ASSERT_TRUE(pool.ok());
  std::vector<BufferPool::Lease> all = (*pool)->Acquire(6);
  ASSERT_EQ(all.size(), 6u);
  std::set<uintptr_t> starts;
  for (auto& l : all) {
    const auto at = reinterpret_cast<uintptr_t>(l.data());
    EXPECT_EQ(at % size, 0u) << "a 1 MiB buffer straddles a huge page";
    EXPECT_EQ(l.size(), size);
    starts.insert(at);
    std::memset(l.data(), 0xab, l.size());  // each is writable end to end
  }
  ASSERT_EQ(starts.size(), 6u);
  for (auto it = std::next(starts.begin()); it != starts.end(); ++it) {
    EXPECT_GE(*it - *std::prev(it), size) << "buffers overlap";
  }
  EXPECT_NE(VmFlagsOf(all[0].data()).find(" hg"), std::string::npos);
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

TEST(BufferPoolTest, TheBufferGivenBackLastComesOutFirst) {
  // So that a pool larger than what is in flight keeps using the same few
  // buffers, still in the caches, rather than going round all of them.
  auto pool = BufferPool::Create(4096, 4);
  ASSERT_TRUE(pool.ok());
  BufferPool& p = **pool;
  std::vector<BufferPool::Lease> all = p.Acquire(4);
  std::byte* second = all[1].data();
  std::byte* third = all[2].data();
  all[2] = BufferPool::Lease();
  all[1] = BufferPool::Lease();
  for (int i = 0; i < 10; ++i) {
    BufferPool::Lease x = p.TryAcquire();
    EXPECT_EQ(x.data(), second);
    BufferPool::Lease y = p.Acquire();
    EXPECT_EQ(y.data(), third);
  }
}

TEST(BufferPoolTest, QueuedAcquiresGetReturnedBuffersInOrder) {
  auto pool = BufferPool::Create(4096, 1);
  ASSERT_TRUE(pool.ok());
  BufferPool& p = **pool;
  BufferPool::Lease first;
  ASSERT_TRUE(p.AcquireOrQueue(&first, [](BufferPool::Lease) { FAIL() << "not queued"; }));
  ASSERT_TRUE(first.valid());
  std::byte* const only = first.data();

  // Two more queue; nobody waits.
  std::vector<int> order;
  BufferPool::Lease second;
  BufferPool::Lease third;
  BufferPool::Lease unused;
  EXPECT_FALSE(p.AcquireOrQueue(&unused, [&](BufferPool::Lease l) {
    order.push_back(2);
    second = std::move(l);
  }));
  EXPECT_FALSE(p.AcquireOrQueue(&unused, [&](BufferPool::Lease l) {
    order.push_back(3);
    third = std::move(l);
  }));
  EXPECT_FALSE(unused.valid());
  EXPECT_TRUE(order.empty());

  // Each buffer given back goes to the next in line, not to the pool.
  first = BufferPool::Lease();
  ASSERT_EQ(order, std::vector<int>({2}));
  EXPECT_EQ(second.data(), only);
  EXPECT_EQ(p.available(), 0u);
  second = BufferPool::Lease();
  ASSERT_EQ(order, std::vector<int>({2, 3}));
  EXPECT_EQ(third.data(), only);
  third = BufferPool::Lease();
  EXPECT_EQ(p.available(), 1u);
  BufferPool::Lease again;
  EXPECT_TRUE(p.AcquireOrQueue(&again, [](BufferPool::Lease) { FAIL() << "not queued"; }));
  EXPECT_EQ(again.data(), only);
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
