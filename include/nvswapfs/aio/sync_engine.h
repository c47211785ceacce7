// The reference engine: one pread/pwrite loop per request, completed on the
// caller's thread before Submit returns. Slow and obviously correct; tests
// compare the libaio engine against it.
#pragma once

#include <atomic>
#include <memory>

#include "nvswapfs/aio/engine.h"
#include "nvswapfs/aio/syscalls.h"

namespace nvswapfs::aio {

class SyncEngine final : public IoEngine {
 public:
  explicit SyncEngine(BlockDevice device, Syscalls& syscalls = Syscalls::System())
      : device_(std::move(device)), syscalls_(syscalls) {}

  void Submit(const IoRequest& request, IoCallback done) override;
  Status Flush() override;
  Status Discard(uint64_t offset, uint64_t length) override {
    return device_.Discard(offset, length);
  }
  const DeviceInfo& device() const override { return device_.info(); }
  EngineStats stats() const override;

 private:
  Status Transfer(const IoRequest& request);

  BlockDevice device_;
  Syscalls& syscalls_;
  std::atomic<uint64_t> requests_{0}, failed_{0}, read_{0}, written_{0}, short_{0};
};

}  // namespace nvswapfs::aio
