#include "engine_run.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "nvswapfs/aio/aio_engine.h"
#include "nvswapfs/aio/sync_engine.h"

namespace nvswapfs::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Fixed, so that every run of every invocation visits blocks in the same
// order (fio's --randrepeat=1 does the same for its own order).
constexpr uint64_t kOrderSeed = 0x5eed0f0bdeadULL;

// Counts requests down to zero. Completion callbacks run on engine threads,
// so the moment the last one finishes is taken there rather than when the
// waiting thread wakes up.
class CompletionCounter {
 public:
  explicit CompletionCounter(uint64_t count) : left_(count) {}

  void Done(Status status) {
    if (!status.ok()) {
      std::lock_guard lock(mu_);
      if (first_error_.ok()) first_error_ = std::move(status);
    }
    if (left_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    const Clock::time_point now = Clock::now();
    std::lock_guard lock(mu_);
    end_ = now;
    finished_ = true;
    cv_.notify_all();
  }

  // Waits for the last completion; returns the first error, if any.
  Status Wait(Clock::time_point* end) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return finished_; });
    *end = end_;
    return first_error_;
  }

 private:
  std::atomic<uint64_t> left_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;  // guarded by mu_
  Clock::time_point end_;  // guarded by mu_
  Status first_error_;     // guarded by mu_
};

std::vector<uint64_t> BlockOrder(const Measurement& m) {
  std::vector<uint64_t> order(m.blocks());
  std::iota(order.begin(), order.end(), uint64_t{0});
  if (m.pattern == Pattern::kRand) {
    std::mt19937_64 rng(kOrderSeed);
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

// Where the bytes at `offset` of the range go in memory (see
// Measurement::buffer).
std::byte* MemoryFor(const Measurement& m, std::span<std::byte> buffer, uint64_t offset) {
  return buffer.data() + offset % m.buffer_bytes();
}

aio::IoRequest BlockRequest(const Measurement& m, std::span<std::byte> buffer, uint64_t block) {
  const uint64_t bs = m.engine.block_size;
  return aio::IoRequest{m.op, block * bs, MemoryFor(m, buffer, block * bs), bs};
}

// Requests a sequential run makes: the whole range, or a request per pass
// through a smaller buffer.
uint64_t SequentialRequests(const Measurement& m) {
  return m.size / m.buffer_bytes();
}

// The queued engine gets everything at once and keeps its own queue full,
// as a caller swapping out tensors would use it.
void SubmitAll(aio::IoEngine& engine, const Measurement& m, std::span<std::byte> buffer,
               const std::vector<uint64_t>& order, CompletionCounter& counter) {
  auto done = [&counter](Status s) { counter.Done(std::move(s)); };
  if (m.pattern == Pattern::kSeq) {
    const uint64_t len = m.buffer_bytes();
    for (uint64_t offset = 0; offset < m.size; offset += len) {
      engine.Submit(aio::IoRequest{m.op, offset, MemoryFor(m, buffer, offset), len}, done);
    }
    return;
  }
  for (uint64_t block : order) engine.Submit(BlockRequest(m, buffer, block), done);
}

// The sync engine completes each request before Submit returns, so the
// parallelism comes from `threads` callers, each owning a contiguous share of
// the block order (like fio's jobs with offset_increment).
void SubmitFromThreads(aio::IoEngine& engine, const Measurement& m, std::span<std::byte> buffer,
                       const std::vector<uint64_t>& order, CompletionCounter& counter) {
  const uint64_t n = order.size();
  const uint64_t threads = m.engine.threads;
  auto done = [&counter](Status s) { counter.Done(std::move(s)); };
  std::vector<std::thread> callers;
  for (uint64_t t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      for (uint64_t i = t * n / threads; i < (t + 1) * n / threads; ++i) {
        engine.Submit(BlockRequest(m, buffer, order[i]), done);
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
}

Result<std::unique_ptr<aio::IoEngine>> MakeEngine(const std::string& path, const Measurement& m) {
  Result<aio::BlockDevice> device = aio::BlockDevice::Open(path);
  if (!device.ok()) return device.status();
  if (m.engine_kind == EngineKind::kSync) {
    return std::unique_ptr<aio::IoEngine>(new aio::SyncEngine(std::move(device).value()));
  }
  Result<std::unique_ptr<aio::AioEngine>> engine =
      aio::AioEngine::Create(std::move(device).value(), m.engine);
  if (!engine.ok()) return engine.status();
  return std::unique_ptr<aio::IoEngine>(std::move(engine).value());
}

Status CheckCounters(const aio::EngineStats& stats, const Measurement& m, const std::string& path) {
  const uint64_t moved = m.op == aio::IoOp::kRead ? stats.bytes_read : stats.bytes_written;
  if (moved == m.size && stats.failed_requests == 0) return Status::Ok();
  return Status::Error(EIO, aio::IoOpName(m.op), path, 0, m.size)
      .WithDetail("the engine reports " + std::to_string(moved) + " bytes moved and " +
                  std::to_string(stats.failed_requests) +
                  " failed requests although every "
                  "request completed successfully");
}

}  // namespace

Result<aio::DeviceInfo> ProbeDevice(const std::string& path) {
  Result<aio::BlockDevice> device = aio::BlockDevice::Open(path);
  if (!device.ok()) return device.status();
  return device->info();
}

Result<EngineRun> RunEngine(const std::string& path, const Measurement& m,
                            std::span<std::byte> buffer, EngineLatency* latency) {
  if (buffer.size() < m.buffer_bytes()) {
    return Status::Error(EINVAL, "run engine", path).WithDetail("buffer smaller than asked for");
  }
  Result<std::unique_ptr<aio::IoEngine>> made = MakeEngine(path, m);
  if (!made.ok()) return made.status();
  aio::IoEngine& engine = **made;
  const std::vector<uint64_t> order = BlockOrder(m);
  const bool queued = m.engine_kind == EngineKind::kAio;
  CompletionCounter counter(queued && m.pattern == Pattern::kSeq ? SequentialRequests(m)
                                                                 : order.size());

  const Clock::time_point start = Clock::now();
  if (queued) {
    SubmitAll(engine, m, buffer, order, counter);
  } else {
    SubmitFromThreads(engine, m, buffer, order, counter);
  }
  const Clock::time_point submitted = Clock::now();
  Clock::time_point end;
  NVSWAPFS_RETURN_IF_ERROR(counter.Wait(&end));

  EngineRun run;
  run.seconds = std::chrono::duration<double>(end - start).count();
  run.submit_seconds = std::chrono::duration<double>(submitted - start).count();
  run.stats = engine.stats();
  NVSWAPFS_RETURN_IF_ERROR(CheckCounters(run.stats, m, path));
  if (latency != nullptr) {
    engine.SubmitLatency(&latency->submit);
    engine.ReapLatency(&latency->reap);
  }
  return run;
}

}  // namespace nvswapfs::bench
