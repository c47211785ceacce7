// The engines against their contract: validation before any I/O, byte-exact
// round trips in every combination of the knobs, and many submitters at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "nvswapfs/aio/aio_engine.h"
#include "nvswapfs/aio/sync_engine.h"
#include "nvswapfs/histogram.h"
#include "nvswapfs/units.h"
#include "test_util.h"

namespace nvswapfs::aio {
namespace {

using testing::FillPattern;
using testing::MakeImage;
using testing::PatternBuffer;
using testing::ReadPlain;
using testing::TempDir;

constexpr uint64_t kDeviceSize = 32 * kMiB;

std::unique_ptr<AioEngine> OpenAio(const std::string& path, const EngineOptions& options,
                                   Syscalls& syscalls = Syscalls::System(),
                                   bool read_only = false) {
  auto dev = BlockDevice::Open(path, DeviceOptions{.read_only = read_only});
  EXPECT_TRUE(dev.ok()) << dev.status().ToString();
  if (!dev.ok()) return nullptr;
  auto engine = AioEngine::Create(std::move(dev).value(), options, syscalls);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

// Waits for a known number of asynchronous completions.
class Completions {
 public:
  IoCallback Expect(Status* slot) {
    std::lock_guard lock(mu_);
    ++expected_;
    return [this, slot](Status s) {
      std::lock_guard guard(mu_);
      *slot = std::move(s);
      ++finished_;
      cv_.notify_all();
    };
  }
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return finished_ == expected_; });
  }
  int finished() {
    std::lock_guard lock(mu_);
    return finished_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int expected_ = 0;
  int finished_ = 0;
};

// ---------------------------------------------------------------------------
// Validation

class ValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = MakeImage(dir_, "v.img", kDeviceSize);
    engine_ = OpenAio(path_, EngineOptions{});
    ASSERT_NE(engine_, nullptr);
    lbs_ = engine_->device().logical_block_size;
    buffer_ = PatternBuffer(4 * kMiB, 7);
  }

  // Submits `req` and expects it to be rejected with `code` and a message
  // containing `rule`, without any I/O reaching the device.
  void ExpectRejected(const IoRequest& req, int code, const std::string& rule) {
    int calls = 0;
    Status got;
    engine_->Submit(req, [&](Status s) {
      ++calls;
      got = std::move(s);
    });
    EXPECT_EQ(calls, 1) << "a rejected request completes at once, exactly once";
    EXPECT_EQ(got.code(), code) << got.ToString();
    EXPECT_NE(got.ToString().find(rule), std::string::npos) << got.ToString();
    EXPECT_NE(got.ToString().find(path_), std::string::npos) << got.ToString();
    EXPECT_EQ(engine_->stats().pieces, 0u);
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<AioEngine> engine_;
  uint64_t lbs_ = 0;
  AlignedBuffer buffer_;
};

TEST_F(ValidationTest, EmptyRequest) {
  ExpectRejected({IoOp::kWrite, 0, buffer_.data(), 0}, EINVAL, "length must be non-zero");
}

TEST_F(ValidationTest, NullBuffer) {
  ExpectRejected({IoOp::kRead, 0, nullptr, lbs_}, EINVAL, "buffer must not be null");
}

TEST_F(ValidationTest, MisalignedBuffer) {
  ExpectRejected({IoOp::kRead, 0, buffer_.data() + 512, lbs_}, EINVAL,
                 "buffer address must be aligned");
}

TEST_F(ValidationTest, MisalignedOffset) {
  ExpectRejected({IoOp::kWrite, 512, buffer_.data(), lbs_}, EINVAL, "offset must be aligned");
}

TEST_F(ValidationTest, MisalignedLength) {
  ExpectRejected({IoOp::kWrite, 0, buffer_.data(), lbs_ + 512}, EINVAL,
                 "length must be a multiple");
}

TEST_F(ValidationTest, StartPastTheEnd) {
  ExpectRejected({IoOp::kRead, kDeviceSize, buffer_.data(), lbs_}, EINVAL,
                 "range must lie inside the device");
}

TEST_F(ValidationTest, EndPastTheEnd) {
  ExpectRejected({IoOp::kWrite, kDeviceSize - lbs_, buffer_.data(), 2 * lbs_}, EINVAL,
                 "range must lie inside the device");
}

TEST_F(ValidationTest, OffsetThatWouldOverflow) {
  ExpectRejected({IoOp::kWrite, RoundDown(UINT64_MAX, lbs_), buffer_.data(), 2 * lbs_}, EINVAL,
                 "range must lie inside the device");
}

TEST_F(ValidationTest, RejectedWriteLeavesTheDeviceUntouched) {
  const auto before = ReadPlain(path_, kDeviceSize - 4 * kMiB, 4 * kMiB);
  Status s = engine_->Execute({IoOp::kWrite, kDeviceSize - 2 * kMiB, buffer_.data(), 4 * kMiB});
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_EQ(ReadPlain(path_, kDeviceSize - 4 * kMiB, 4 * kMiB), before);
}

TEST_F(ValidationTest, LastBlockIsAccepted) {
  EXPECT_TRUE(engine_->Execute({IoOp::kWrite, kDeviceSize - lbs_, buffer_.data(), lbs_}).ok());
  EXPECT_EQ(engine_->stats().pieces, 1u);
}

TEST(ReadOnlyTest, WritesFailWithErofs) {
  TempDir dir;
  const std::string path = MakeImage(dir, "ro.img", kDeviceSize);
  auto engine = OpenAio(path, EngineOptions{}, Syscalls::System(), /*read_only=*/true);
  ASSERT_NE(engine, nullptr);
  AlignedBuffer buf = PatternBuffer(kMiB, 1);
  Status w = engine->Execute({IoOp::kWrite, 0, buf.data(), kMiB});
  EXPECT_EQ(w.code(), EROFS) << w.ToString();
  EXPECT_TRUE(engine->Execute({IoOp::kRead, 0, buf.data(), kMiB}).ok());
}

TEST(EngineOptionsTest, RejectsBadKnobsByName) {
  struct Case {
    EngineOptions options;
    const char* names;
  };
  const Case cases[] = {
      {{.block_size = 1000}, "block_size"},
      {{.block_size = 0}, "block_size"},
      {{.block_size = 512 * kMiB}, "block_size"},
      {{.queue_depth = 0}, "queue_depth"},
      {{.queue_depth = 100000}, "queue_depth"},
      {{.threads = 0}, "threads"},
      {{.threads = 1000}, "threads"},
  };
  for (const Case& c : cases) {
    Status s = c.options.Validate(4096);
    EXPECT_EQ(s.code(), EINVAL);
    EXPECT_NE(s.ToString().find(c.names), std::string::npos) << s.ToString();
  }
  EXPECT_TRUE(EngineOptions{}.Validate(4096).ok());
  EXPECT_TRUE(EngineOptions{}.Validate(512).ok());
}

TEST(EngineOptionsTest, CreateRefusesBadOptions) {
  TempDir dir;
  const std::string path = MakeImage(dir, "o.img", kDeviceSize);
  auto dev = BlockDevice::Open(path);
  ASSERT_TRUE(dev.ok());
  auto engine = AioEngine::Create(std::move(dev).value(), EngineOptions{.queue_depth = 0});
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), EINVAL);
}

// ---------------------------------------------------------------------------
// Round trips in every combination of the knobs

// block_size, queue_depth, single_submit, overlap, threads
using Knobs = std::tuple<uint64_t, uint32_t, bool, bool, uint32_t>;

class RoundTripTest : public ::testing::TestWithParam<Knobs> {
 protected:
  EngineOptions Options() const {
    const auto [bs, qd, single, overlap, threads] = GetParam();
    return EngineOptions{.block_size = bs,
                         .queue_depth = qd,
                         .single_submit = single,
                         .overlap = overlap,
                         .threads = threads};
  }
};

struct Range {
  uint64_t offset;
  uint64_t length;
};

// Up to `count` random, pairwise disjoint, block-aligned ranges.
std::vector<Range> DisjointRanges(std::mt19937_64& rng, size_t count, uint64_t lbs,
                                  uint64_t max_length) {
  std::vector<Range> out;
  const uint64_t blocks = kDeviceSize / lbs;
  for (size_t tries = 0; out.size() < count && tries < count * 20; ++tries) {
    const uint64_t len = lbs * (1 + rng() % (max_length / lbs));
    const uint64_t off = lbs * (rng() % (blocks - len / lbs + 1));
    bool clash = false;
    for (const Range& r : out) clash |= off < r.offset + r.length && r.offset < off + len;
    if (!clash) out.push_back({off, len});
  }
  return out;
}

TEST_P(RoundTripTest, RandomRequestsMatchTheReferenceEngineByteForByte) {
  TempDir dir;
  const std::string aio_path = MakeImage(dir, "aio.img", kDeviceSize);
  const std::string ref_path = MakeImage(dir, "ref.img", kDeviceSize);
  auto engine = OpenAio(aio_path, Options());
  ASSERT_NE(engine, nullptr);
  auto ref_dev = BlockDevice::Open(ref_path);
  ASSERT_TRUE(ref_dev.ok());
  SyncEngine reference(std::move(ref_dev).value());
  const uint64_t lbs = engine->device().logical_block_size;
  const uint64_t max_len = std::min<uint64_t>(3 * Options().block_size + 5 * lbs, 6 * kMiB);

  std::mt19937_64 rng(std::hash<std::string>{}(Options().ToString()));
  std::vector<std::byte> model(kDeviceSize);
  for (int round = 0; round < 4; ++round) {
    // Writes in flight together must not overlap, or their order is undefined.
    const auto ranges = DisjointRanges(rng, 6, lbs, max_len);
    std::vector<AlignedBuffer> data;
    std::vector<Status> results(ranges.size());
    Completions done;
    for (size_t i = 0; i < ranges.size(); ++i) {
      data.push_back(PatternBuffer(ranges[i].length, rng()));
      engine->Submit({IoOp::kWrite, ranges[i].offset, data.back().data(), ranges[i].length},
                     done.Expect(&results[i]));
      ASSERT_TRUE(
          reference.Execute({IoOp::kWrite, ranges[i].offset, data.back().data(), ranges[i].length})
              .ok());
      std::memcpy(model.data() + ranges[i].offset, data.back().data(), ranges[i].length);
    }
    done.Wait();
    for (const Status& s : results) ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Reads of random ranges, all in flight at once.
  const auto reads = DisjointRanges(rng, 8, lbs, max_len);
  std::vector<AlignedBuffer> got;
  std::vector<Status> results(reads.size());
  Completions done;
  for (size_t i = 0; i < reads.size(); ++i) {
    got.push_back(AlignedBuffer::Allocate(reads[i].length).value());
    engine->Submit({IoOp::kRead, reads[i].offset, got.back().data(), reads[i].length},
                   done.Expect(&results[i]));
  }
  done.Wait();
  for (size_t i = 0; i < reads.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].ToString();
    ASSERT_EQ(std::memcmp(got[i].data(), model.data() + reads[i].offset, reads[i].length), 0)
        << "read at " << reads[i].offset << " length " << reads[i].length;
  }

  // The whole device, through the engine and through the page cache, equals
  // the model and the reference engine's device.
  AlignedBuffer whole = AlignedBuffer::Allocate(kDeviceSize).value();
  ASSERT_TRUE(engine->Execute({IoOp::kRead, 0, whole.data(), kDeviceSize}).ok());
  ASSERT_EQ(std::memcmp(whole.data(), model.data(), kDeviceSize), 0);
  EXPECT_EQ(ReadPlain(aio_path, 0, kDeviceSize), model);
  EXPECT_EQ(ReadPlain(ref_path, 0, kDeviceSize), model);

  const EngineStats stats = engine->stats();
  EXPECT_EQ(stats.failed_requests, 0u);
  EXPECT_EQ(stats.short_transfers, 0u);
  EXPECT_EQ(stats.in_flight, 0u);
  EXPECT_GE(stats.pieces, stats.requests);
}

std::string KnobsName(const ::testing::TestParamInfo<Knobs>& param) {
  const auto [bs, qd, single, overlap, threads] = param.param;
  return "bs" + std::to_string(bs / kKiB) + "k_qd" + std::to_string(qd) +
         (single ? "_single" : "_batch") + (overlap ? "_overlap" : "_sequential") + "_t" +
         std::to_string(threads);
}

INSTANTIATE_TEST_SUITE_P(AllModes, RoundTripTest,
                         ::testing::Combine(::testing::Values(4 * kKiB, 64 * kKiB,
                                                              kMiB),         // block_size
                                            ::testing::Values(1u, 3u, 32u),  // queue_depth
                                            ::testing::Bool(),               // single_submit
                                            ::testing::Bool(),               // overlap
                                            ::testing::Values(1u, 3u)),      // threads
                         KnobsName);

TEST(SplittingTest, RequestsAreCutIntoBlockSizePieces) {
  TempDir dir;
  const std::string path = MakeImage(dir, "split.img", kDeviceSize);
  auto engine = OpenAio(path, EngineOptions{.block_size = kMiB, .queue_depth = 4, .threads = 4});
  ASSERT_NE(engine, nullptr);
  AlignedBuffer buf = PatternBuffer(8 * kMiB + 4 * kKiB, 3);
  ASSERT_TRUE(engine->Execute({IoOp::kWrite, 0, buf.data(), buf.size()}).ok());
  EXPECT_EQ(engine->stats().pieces, 9u);
  EXPECT_EQ(engine->stats().bytes_written, buf.size());
  EXPECT_EQ(ReadPlain(path, 0, buf.size()),
            std::vector<std::byte>(buf.data(), buf.data() + buf.size()));
}

// Records how many pieces each io_submit carried, and pauses before each
// io_getevents so that several completions are waiting by then.
class SubmitRecorder final : public Syscalls {
 public:
  int Submit(io_context_t ctx, long n, struct iocb** iocbs) override {
    {
      std::lock_guard lock(mu_);
      sizes_.push_back(n);
    }
    return Syscalls::Submit(ctx, n, iocbs);
  }
  int GetEvents(io_context_t ctx, long min_nr, long nr, struct io_event* events,
                struct timespec* timeout) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return Syscalls::GetEvents(ctx, min_nr, nr, events, timeout);
  }
  std::vector<long> sizes() {
    std::lock_guard lock(mu_);
    return sizes_;
  }

 private:
  std::mutex mu_;
  std::vector<long> sizes_;
};

TEST(OverlapTest, EachCompletedPieceIsReplacedOnItsOwn) {
  // The queue is filled with one contiguous run, then every completion is
  // replaced by one piece of its own: refilling with all that completed at
  // once would hand the block layer neighbours to merge into larger
  // requests, which a virtio disk serves more slowly.
  TempDir dir;
  const std::string path = MakeImage(dir, "overlap.img", kDeviceSize);
  SubmitRecorder recorder;
  auto engine = OpenAio(
      path, EngineOptions{.block_size = 4 * kKiB, .queue_depth = 8, .overlap = true}, recorder);
  ASSERT_NE(engine, nullptr);
  AlignedBuffer buf = PatternBuffer(64 * 4 * kKiB, 9);
  ASSERT_TRUE(engine->Execute({IoOp::kWrite, 0, buf.data(), buf.size()}).ok());
  const std::vector<long> sizes = recorder.sizes();
  ASSERT_EQ(sizes.size(), 1u + 56u);
  EXPECT_EQ(sizes.front(), 8);
  EXPECT_EQ(std::count(sizes.begin() + 1, sizes.end(), 1L), 56);
  EXPECT_EQ(ReadPlain(path, 0, buf.size()),
            std::vector<std::byte>(buf.data(), buf.data() + buf.size()));
}

TEST(LatencyTest, EveryPieceIsTimedInTheQueueAndOnTheDevice) {
  TempDir dir;
  const std::string path = MakeImage(dir, "latency.img", kDeviceSize);
  auto engine = OpenAio(path, EngineOptions{.block_size = kMiB, .queue_depth = 4, .threads = 2});
  ASSERT_NE(engine, nullptr);
  AlignedBuffer buf = PatternBuffer(6 * kMiB, 5);
  ASSERT_TRUE(engine->Execute({IoOp::kWrite, 0, buf.data(), buf.size()}).ok());
  ASSERT_TRUE(engine->Execute({IoOp::kRead, 0, buf.data(), buf.size()}).ok());
  LatencyHistogram queue, device;
  engine->QueueLatency(&queue);
  engine->DeviceLatency(&device);
  EXPECT_EQ(queue.count(), 12u);
  EXPECT_EQ(device.count(), 12u);
  EXPECT_GT(device.Percentile(0.5), 0u);
  EXPECT_LE(device.Percentile(0.5), device.Percentile(1.0));
}

// ---------------------------------------------------------------------------
// Concurrency

TEST(ConcurrencyTest, ManyThreadsSubmittingAtOnce) {
  TempDir dir;
  const std::string path = MakeImage(dir, "mt.img", kDeviceSize);
  auto engine =
      OpenAio(path, EngineOptions{.block_size = 64 * kKiB, .queue_depth = 8, .threads = 2});
  ASSERT_NE(engine, nullptr);
  constexpr int kThreads = 8;
  constexpr uint64_t kRegion = kDeviceSize / kThreads;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t));
      const uint64_t base = static_cast<uint64_t>(t) * kRegion;
      AlignedBuffer want = PatternBuffer(kRegion, 100 + static_cast<uint64_t>(t));
      AlignedBuffer got = AlignedBuffer::Allocate(kRegion).value();
      for (int i = 0; i < 40; ++i) {
        const uint64_t len = 4096 * (1 + rng() % 64);
        const uint64_t off = 4096 * (rng() % ((kRegion - len) / 4096 + 1));
        if (!engine->Execute({IoOp::kWrite, base + off, want.data() + off, len}).ok()) ++failures;
        if (!engine->Execute({IoOp::kRead, base + off, got.data() + off, len}).ok()) ++failures;
        if (std::memcmp(got.data() + off, want.data() + off, len) != 0) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(engine->stats().requests, static_cast<uint64_t>(kThreads * 80));
}

TEST(ConcurrencyTest, DestroyingTheEngineFinishesEverySubmittedRequest) {
  TempDir dir;
  const std::string path = MakeImage(dir, "drain.img", kDeviceSize);
  AlignedBuffer buf = PatternBuffer(kDeviceSize, 9);
  std::atomic<int> ok{0};
  {
    auto engine = OpenAio(path, EngineOptions{.block_size = 256 * kKiB, .queue_depth = 2});
    ASSERT_NE(engine, nullptr);
    for (uint64_t off = 0; off < kDeviceSize; off += kMiB) {
      engine->Submit({IoOp::kWrite, off, buf.data() + off, kMiB}, [&](Status s) {
        if (s.ok()) ++ok;
      });
    }
  }
  EXPECT_EQ(ok.load(), static_cast<int>(kDeviceSize / kMiB));
  EXPECT_EQ(ReadPlain(path, 0, kDeviceSize),
            std::vector<std::byte>(buf.data(), buf.data() + kDeviceSize));
}

TEST(SyncEngineTest, ValidatesLikeTheAioEngine) {
  TempDir dir;
  const std::string path = MakeImage(dir, "s.img", kDeviceSize);
  auto dev = BlockDevice::Open(path);
  ASSERT_TRUE(dev.ok());
  SyncEngine engine(std::move(dev).value());
  AlignedBuffer buf = PatternBuffer(kMiB, 5);
  EXPECT_EQ(engine.Execute({IoOp::kWrite, 512, buf.data(), 4096}).code(), EINVAL);
  EXPECT_EQ(engine.Execute({IoOp::kWrite, kDeviceSize, buf.data(), 4096}).code(), EINVAL);
  EXPECT_TRUE(engine.Execute({IoOp::kWrite, 0, buf.data(), kMiB}).ok());
  EXPECT_TRUE(engine.Flush().ok());
  EXPECT_EQ(engine.stats().bytes_written, kMiB);
}

}  // namespace
}  // namespace nvswapfs::aio
