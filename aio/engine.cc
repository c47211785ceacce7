#include "nvswapfs/aio/engine.h"

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "nvswapfs/units.h"

namespace nvswapfs::aio {

const char* IoOpName(IoOp op) {
  return op == IoOp::kRead ? "read" : "write";
}

Status EngineOptions::Validate(uint32_t logical_block_size) const {
  auto bad = [](std::string_view detail) {
    return Status::Error(EINVAL, "configure engine", "options").WithDetail(detail);
  };
  if (block_size < logical_block_size || block_size % logical_block_size != 0) {
    return bad("block_size must be a multiple of the device's logical block size (" +
               std::to_string(logical_block_size) + " bytes)");
  }
  if (block_size > 256 * kMiB) return bad("block_size must be at most 256 MiB");
  if (queue_depth < 1 || queue_depth > 4096) return bad("queue_depth must be between 1 and 4096");
  if (threads < 1 || threads > 64) return bad("threads must be between 1 and 64");
  return Status::Ok();
}

std::string EngineOptions::ToString() const {
  return "block_size=" + FormatSize(block_size) + " queue_depth=" + std::to_string(queue_depth) +
         " single_submit=" + (single_submit ? "1" : "0") + " overlap=" + (overlap ? "1" : "0") +
         " threads=" + std::to_string(threads);
}

Status IoEngine::Validate(const IoRequest& request) const {
  const DeviceInfo& dev = device();
  const uint64_t lbs = dev.logical_block_size;
  auto reject = [&](std::string_view rule) {
    return Status::Error(EINVAL, IoOpName(request.op), dev.path, request.offset, request.length)
        .WithDetail(rule);
  };
  if (request.length == 0) return reject("length must be non-zero");
  if (request.buffer == nullptr) return reject("buffer must not be null");
  if (reinterpret_cast<uintptr_t>(request.buffer) % lbs != 0) {
    return reject("buffer address must be aligned to the " + std::to_string(lbs) +
                  "-byte logical block size");
  }
  if (request.offset % lbs != 0) {
    return reject("offset must be aligned to the " + std::to_string(lbs) +
                  "-byte logical block size");
  }
  if (request.length % lbs != 0) {
    return reject("length must be a multiple of the " + std::to_string(lbs) +
                  "-byte logical block size");
  }
  if (request.offset > dev.size || request.length > dev.size - request.offset) {
    return reject("range must lie inside the device (" + std::to_string(dev.size) + " bytes)");
  }
  if (request.op == IoOp::kWrite && dev.read_only) {
    return Status::Error(EROFS, "write", dev.path, request.offset, request.length)
        .WithDetail("device opened read-only");
  }
  return Status::Ok();
}

Status IoEngine::Execute(const IoRequest& request) {
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  Status result;
  Submit(request, [&](Status s) {
    std::lock_guard lock(mu);
    result = std::move(s);
    finished = true;
    cv.notify_one();
  });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return finished; });
  return result;
}

}  // namespace nvswapfs::aio
