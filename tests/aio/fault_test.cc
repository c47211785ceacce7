// The engines on a misbehaving device: errors reach exactly the request they
// belong to, short transfers and refused submissions lose and duplicate
// nothing, and a crash keeps only what was flushed.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <set>

#include "nvswapfs/aio/aio_engine.h"
#include "nvswapfs/aio/fault_injector.h"
#include "nvswapfs/aio/sync_engine.h"
#include "nvswapfs/units.h"
#include "test_util.h"

namespace nvswapfs::aio {
namespace {

using testing::MakeImage;
using testing::PatternBuffer;
using testing::ReadPlain;
using testing::TempDir;

constexpr uint64_t kDeviceSize = 16 * kMiB;

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = MakeImage(dir_, "f.img", kDeviceSize); }

  std::unique_ptr<AioEngine> Open(const EngineOptions& options) {
    auto dev = BlockDevice::Open(path_);
    EXPECT_TRUE(dev.ok()) << dev.status().ToString();
    auto engine = AioEngine::Create(std::move(dev).value(), options, faults_);
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    return engine.ok() ? std::move(engine).value() : nullptr;
  }

  std::vector<std::byte> Bytes(const AlignedBuffer& b, uint64_t off, uint64_t len) {
    return {b.data() + off, b.data() + off + len};
  }

  TempDir dir_;
  std::string path_;
  FaultInjector faults_{42};
};

// Each of `count` one-block requests, submitted together, with its outcome.
std::vector<Status> WriteBlocks(IoEngine& engine, AlignedBuffer& data, uint64_t block,
                                size_t count) {
  std::vector<Status> out(count);
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  std::vector<int> calls(count, 0);
  for (size_t i = 0; i < count; ++i) {
    engine.Submit({IoOp::kWrite, i * block, data.data() + i * block, block}, [&, i](Status s) {
      std::lock_guard lock(mu);
      out[i] = std::move(s);
      ++calls[i];
      ++done;
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done == count; });
  for (size_t i = 0; i < count; ++i) EXPECT_EQ(calls[i], 1) << "request " << i;
  return out;
}

TEST_F(FaultTest, InjectedErrorFailsExactlyTheRequestItBelongsTo) {
  auto engine = Open(EngineOptions{.block_size = 64 * kKiB, .queue_depth = 8});
  ASSERT_NE(engine, nullptr);
  constexpr uint64_t kBlock = 64 * kKiB;
  constexpr size_t kCount = 64;
  AlignedBuffer data = PatternBuffer(kBlock * kCount, 11);
  faults_.FailNth(FaultOp::kWrite, 17);
  const auto results = WriteBlocks(*engine, data, kBlock, kCount);

  std::vector<size_t> failed;
  for (size_t i = 0; i < kCount; ++i) {
    if (!results[i].ok()) failed.push_back(i);
  }
  ASSERT_EQ(failed.size(), 1u);
  const Status& s = results[failed[0]];
  EXPECT_EQ(s.code(), EIO);
  EXPECT_EQ(s.op(), "write");
  EXPECT_EQ(s.subject(), path_);
  EXPECT_EQ(s.offset(), failed[0] * kBlock);
  EXPECT_EQ(s.length(), kBlock);
  EXPECT_NE(s.ToString().find(": Input/output error ("), std::string::npos) << s.ToString();
  EXPECT_NE(s.ToString().find("(errno 5)"), std::string::npos) << s.ToString();
  // Every other request landed.
  for (size_t i = 0; i < kCount; ++i) {
    if (i == failed[0]) continue;
    ASSERT_EQ(ReadPlain(path_, i * kBlock, kBlock), Bytes(data, i * kBlock, kBlock)) << i;
  }
  EXPECT_EQ(engine->stats().failed_requests, 1u);

  // And the engine keeps serving.
  AlignedBuffer back = AlignedBuffer::Allocate(kBlock).value();
  EXPECT_TRUE(engine->Execute({IoOp::kRead, 0, back.data(), kBlock}).ok());
  EXPECT_TRUE(
      engine->Execute({IoOp::kWrite, failed[0] * kBlock, data.data() + failed[0] * kBlock, kBlock})
          .ok());
}

TEST_F(FaultTest, ReadErrorCarriesTheRequestContext) {
  auto engine = Open(EngineOptions{.block_size = kMiB});
  ASSERT_NE(engine, nullptr);
  AlignedBuffer buf = AlignedBuffer::Allocate(4 * kMiB).value();
  faults_.FailNth(FaultOp::kRead, 3, ENODATA);
  Status s = engine->Execute({IoOp::kRead, 4 * kMiB, buf.data(), 4 * kMiB});
  EXPECT_EQ(s.code(), ENODATA);
  EXPECT_EQ(s.offset(), 6 * kMiB);  // the third piece
  EXPECT_EQ(s.length(), kMiB);
  EXPECT_NE(s.ToString().find("in request offset=4194304 length=4194304"), std::string::npos)
      << s.ToString();
}

TEST_F(FaultTest, SeededOneInNFaultsAreReproducible) {
  constexpr uint64_t kBlock = 4 * kKiB;
  constexpr size_t kCount = 200;
  AlignedBuffer data = PatternBuffer(kBlock * kCount, 12);
  std::set<size_t> first_run;
  for (int run = 0; run < 2; ++run) {
    FaultInjector faults(/*seed=*/2024);
    faults.FailOneIn(FaultOp::kWrite, 10);
    auto dev = BlockDevice::Open(path_);
    ASSERT_TRUE(dev.ok());
    // One request at a time keeps the order of operations fixed.
    SyncEngine engine(std::move(dev).value(), faults);
    std::set<size_t> failed;
    for (size_t i = 0; i < kCount; ++i) {
      if (!engine.Execute({IoOp::kWrite, i * kBlock, data.data() + i * kBlock, kBlock}).ok()) {
        failed.insert(i);
      }
    }
    EXPECT_GT(failed.size(), 5u);
    EXPECT_LT(failed.size(), 50u);
    if (run == 0)
      first_run = failed;
    else
      EXPECT_EQ(failed, first_run);
  }
}

TEST_F(FaultTest, ShortTransfersAreResubmittedUntilComplete) {
  auto engine = Open(EngineOptions{.block_size = 256 * kKiB, .queue_depth = 4});
  ASSERT_NE(engine, nullptr);
  faults_.ShortTransferOneIn(3);
  AlignedBuffer data = PatternBuffer(kDeviceSize, 13);
  ASSERT_TRUE(engine->Execute({IoOp::kWrite, 0, data.data(), kDeviceSize}).ok());
  AlignedBuffer back = AlignedBuffer::Allocate(kDeviceSize).value();
  ASSERT_TRUE(engine->Execute({IoOp::kRead, 0, back.data(), kDeviceSize}).ok());
  EXPECT_EQ(std::memcmp(back.data(), data.data(), kDeviceSize), 0);
  EXPECT_EQ(ReadPlain(path_, 0, kDeviceSize), Bytes(data, 0, kDeviceSize));
  EXPECT_GT(engine->stats().short_transfers, 0u);
  EXPECT_GT(faults_.injected(), 0u);
}

TEST_F(FaultTest, ADeviceThatNeverMovesDataFailsInsteadOfSpinning) {
  auto engine = Open(EngineOptions{.block_size = 4 * kKiB});
  ASSERT_NE(engine, nullptr);
  faults_.ShortTransferOneIn(1);  // every transfer: a 4 KiB piece moves nothing
  AlignedBuffer data = PatternBuffer(4 * kKiB, 14);
  Status s = engine->Execute({IoOp::kWrite, 0, data.data(), 4 * kKiB});
  EXPECT_EQ(s.code(), EIO);
  EXPECT_NE(s.ToString().find("moved no data"), std::string::npos) << s.ToString();
}

TEST_F(FaultTest, PartialSubmitsEagainAndEintrLoseAndDuplicateNothing) {
  for (bool overlap : {true, false}) {
    for (bool single : {false, true}) {
      SCOPED_TRACE(std::string(overlap ? "overlap" : "sequential") + (single ? " single" : ""));
      auto engine = Open(EngineOptions{
          .block_size = 64 * kKiB, .queue_depth = 16, .single_submit = single, .overlap = overlap});
      ASSERT_NE(engine, nullptr);
      faults_.PartialSubmitOneIn(2);
      faults_.SubmitEagainOneIn(4);
      faults_.GetEventsEintrOneIn(4);
      faults_.ShortTransferOneIn(7);
      constexpr uint64_t kBlock = 128 * kKiB;
      constexpr size_t kCount = kDeviceSize / kBlock;
      AlignedBuffer data = PatternBuffer(kDeviceSize, overlap * 2 + single);
      const auto results = WriteBlocks(*engine, data, kBlock, kCount);
      for (const Status& s : results) ASSERT_TRUE(s.ok()) << s.ToString();
      faults_.ClearFaults();
      EXPECT_EQ(ReadPlain(path_, 0, kDeviceSize), Bytes(data, 0, kDeviceSize));
      const EngineStats st = engine->stats();
      EXPECT_GT(st.submit_retries, 0u);
      EXPECT_EQ(st.bytes_written, kDeviceSize) << "every byte counted once";
      EXPECT_EQ(st.in_flight, 0u);
    }
  }
}

TEST_F(FaultTest, PersistentEagainFailsTheRequestInsteadOfSpinning) {
  auto engine = Open(EngineOptions{.block_size = 64 * kKiB});
  ASSERT_NE(engine, nullptr);
  faults_.SubmitEagainOneIn(1);
  AlignedBuffer data = PatternBuffer(64 * kKiB, 15);
  Status s = engine->Execute({IoOp::kWrite, 0, data.data(), 64 * kKiB});
  EXPECT_EQ(s.code(), EAGAIN) << s.ToString();
  faults_.ClearFaults();
  EXPECT_TRUE(engine->Execute({IoOp::kWrite, 0, data.data(), 64 * kKiB}).ok());
}

TEST_F(FaultTest, FailedRequestCancelsItsUnsubmittedPieces) {
  auto engine = Open(EngineOptions{.block_size = 64 * kKiB, .queue_depth = 1});
  ASSERT_NE(engine, nullptr);
  faults_.FailNth(FaultOp::kWrite, 1);
  AlignedBuffer data = PatternBuffer(4 * kMiB, 16);
  EXPECT_EQ(engine->Execute({IoOp::kWrite, 0, data.data(), 4 * kMiB}).code(), EIO);
  // With one piece in flight at a time, nothing after the failure was issued.
  EXPECT_EQ(engine->stats().pieces, 1u);
}

TEST_F(FaultTest, FlushErrorsAreReported) {
  auto engine = Open(EngineOptions{});
  ASSERT_NE(engine, nullptr);
  faults_.FailNth(FaultOp::kFlush, 2);
  EXPECT_TRUE(engine->Flush().ok());
  Status s = engine->Flush();
  EXPECT_EQ(s.code(), EIO);
  EXPECT_EQ(s.op(), "flush");
  EXPECT_TRUE(engine->Flush().ok());
}

TEST_F(FaultTest, CrashKeepsOnlyFlushedWrites) {
  faults_.TrackUnflushedWrites(true);
  AlignedBuffer first = PatternBuffer(2 * kMiB, 17);
  AlignedBuffer second = PatternBuffer(2 * kMiB, 18);
  {
    auto engine = Open(EngineOptions{.block_size = 256 * kKiB});
    ASSERT_NE(engine, nullptr);
    ASSERT_TRUE(engine->Execute({IoOp::kWrite, 0, first.data(), 2 * kMiB}).ok());
    ASSERT_TRUE(engine->Flush().ok());
    // Overwrites half of the flushed range and adds a new one: neither flushed.
    ASSERT_TRUE(engine->Execute({IoOp::kWrite, kMiB, second.data(), 2 * kMiB}).ok());
    ASSERT_TRUE(engine->Execute({IoOp::kWrite, 8 * kMiB, second.data(), kMiB}).ok());
    EXPECT_GT(faults_.unflushed_writes(), 0u);
    ASSERT_TRUE(faults_.CrashNow().ok());
    // The device is gone: everything fails, and nothing hangs.
    EXPECT_EQ(engine->Execute({IoOp::kWrite, 0, second.data(), kMiB}).code(), EIO);
    EXPECT_EQ(engine->Flush().code(), EIO);
  }
  EXPECT_EQ(ReadPlain(path_, 0, 2 * kMiB), Bytes(first, 0, 2 * kMiB));
  EXPECT_EQ(ReadPlain(path_, 2 * kMiB, kMiB), std::vector<std::byte>(kMiB));
  EXPECT_EQ(ReadPlain(path_, 8 * kMiB, kMiB), std::vector<std::byte>(kMiB));
}

TEST_F(FaultTest, APowerCutAtTheNthWriteFailsItAndEverythingAfter) {
  faults_.TrackUnflushedWrites(true);
  AlignedBuffer first = PatternBuffer(kMiB, 21);
  AlignedBuffer second = PatternBuffer(kMiB, 22);
  {
    auto engine = Open(EngineOptions{.block_size = 256 * kKiB});
    ASSERT_NE(engine, nullptr);
    ASSERT_TRUE(engine->Execute({IoOp::kWrite, 0, first.data(), kMiB}).ok());
    ASSERT_TRUE(engine->Flush().ok());
    // The second 256 KiB piece of the next write is where the power goes.
    faults_.CrashAtNth(FaultOp::kWrite, 2);
    EXPECT_EQ(engine->Execute({IoOp::kWrite, 0, second.data(), kMiB}).code(), EIO);
    EXPECT_TRUE(faults_.crashed());
    EXPECT_EQ(engine->Execute({IoOp::kWrite, 4 * kMiB, second.data(), kMiB}).code(), EIO);
    EXPECT_EQ(engine->Execute({IoOp::kRead, 0, second.data(), kMiB}).code(), EIO);
    EXPECT_EQ(engine->Flush().code(), EIO);
    // The first piece reached the device before the cut, unflushed.
    EXPECT_GT(faults_.unflushed_writes(), 0u);
  }
  // Nothing is in flight now; the restore leaves only what was flushed.
  ASSERT_TRUE(faults_.CrashNow().ok());
  EXPECT_EQ(ReadPlain(path_, 0, kMiB), Bytes(first, 0, kMiB));
  EXPECT_EQ(ReadPlain(path_, 4 * kMiB, kMiB), std::vector<std::byte>(kMiB));
}

TEST_F(FaultTest, APowerCutMayKeepUnflushedWritesAndKeepsTheirOrder) {
  faults_.TrackUnflushedWrites(true);
  faults_.KeepUnflushedOneIn(1);
  AlignedBuffer first = PatternBuffer(2 * kMiB, 24);
  AlignedBuffer second = PatternBuffer(2 * kMiB, 25);
  auto engine = Open(EngineOptions{.block_size = 256 * kKiB});
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->Execute({IoOp::kWrite, 0, first.data(), 2 * kMiB}).ok());
  ASSERT_TRUE(engine->Execute({IoOp::kWrite, kMiB, second.data(), 2 * kMiB}).ok());
  ASSERT_TRUE(faults_.CrashNow().ok());
  // Both reached the media, the later one over the earlier where they meet.
  EXPECT_EQ(ReadPlain(path_, 0, kMiB), Bytes(first, 0, kMiB));
  EXPECT_EQ(ReadPlain(path_, kMiB, 2 * kMiB), Bytes(second, 0, 2 * kMiB));
}

TEST_F(FaultTest, APowerCutKeepsAnySubsetOfUnflushedSectors) {
  faults_.TrackUnflushedWrites(true);
  faults_.KeepUnflushedOneIn(2);
  constexpr uint64_t kSector = 4 * kKiB;
  constexpr int kSectors = 64;
  AlignedBuffer data = PatternBuffer(kSectors * kSector, 26);
  auto engine = Open(EngineOptions{.block_size = 64 * kKiB});
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->Execute({IoOp::kWrite, 0, data.data(), kSectors * kSector}).ok());
  ASSERT_TRUE(faults_.CrashNow().ok());
  // Each sector whole, either as written or as it was; some of each, so
  // some writes of 16 sectors are torn.
  int kept = 0;
  for (int i = 0; i < kSectors; ++i) {
    const auto got = ReadPlain(path_, i * kSector, kSector);
    if (got == Bytes(data, i * kSector, kSector)) {
      ++kept;
    } else {
      EXPECT_EQ(got, std::vector<std::byte>(kSector)) << "sector " << i;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, kSectors);
}

TEST_F(FaultTest, APowerCutAtAFlushLosesWhatItWouldHaveMadeDurable) {
  faults_.TrackUnflushedWrites(true);
  AlignedBuffer data = PatternBuffer(kMiB, 23);
  {
    auto engine = Open(EngineOptions{});
    ASSERT_NE(engine, nullptr);
    faults_.CrashAtNth(FaultOp::kFlush, 1);
    ASSERT_TRUE(engine->Execute({IoOp::kWrite, 2 * kMiB, data.data(), kMiB}).ok());
    EXPECT_FALSE(faults_.crashed());
    EXPECT_EQ(engine->Flush().code(), EIO);
    EXPECT_TRUE(faults_.crashed());
  }
  ASSERT_TRUE(faults_.CrashNow().ok());
  EXPECT_EQ(ReadPlain(path_, 2 * kMiB, kMiB), std::vector<std::byte>(kMiB));
}

TEST_F(FaultTest, SyncEngineHandlesShortTransfersAndErrors) {
  auto dev = BlockDevice::Open(path_);
  ASSERT_TRUE(dev.ok());
  SyncEngine engine(std::move(dev).value(), faults_);
  faults_.ShortTransferOneIn(2);
  AlignedBuffer data = PatternBuffer(4 * kMiB, 19);
  ASSERT_TRUE(engine.Execute({IoOp::kWrite, 0, data.data(), 4 * kMiB}).ok());
  AlignedBuffer back = AlignedBuffer::Allocate(4 * kMiB).value();
  ASSERT_TRUE(engine.Execute({IoOp::kRead, 0, back.data(), 4 * kMiB}).ok());
  EXPECT_EQ(std::memcmp(back.data(), data.data(), 4 * kMiB), 0);
  EXPECT_GT(engine.stats().short_transfers, 0u);
  faults_.ClearFaults();
  faults_.FailNth(FaultOp::kRead, 1);
  EXPECT_EQ(engine.Execute({IoOp::kRead, 0, back.data(), 4 * kMiB}).code(), EIO);
}

}  // namespace
}  // namespace nvswapfs::aio
