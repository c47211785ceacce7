// Per-file admission for data transfers; not a public API.
#pragma once

#include <condition_variable>
#include <mutex>

namespace nvswapfs::fs::internal {

// A readers/writer lock that any thread may release: a transfer takes it on
// the thread that submits and gives it back on the thread that finishes it.
// Writers go first once they wait, so a stream of reads cannot starve a
// truncate.
class IoGate {
 public:
  void LockShared() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !writer_ && waiting_writers_ == 0; });
    ++readers_;
  }
  void UnlockShared() {
    {
      std::lock_guard lock(mu_);
      --readers_;
    }
    cv_.notify_all();
  }
  void Lock() {
    std::unique_lock lock(mu_);
    ++waiting_writers_;
    cv_.wait(lock, [&] { return !writer_ && readers_ == 0; });
    --waiting_writers_;
    writer_ = true;
  }
  void Unlock() {
    {
      std::lock_guard lock(mu_);
      writer_ = false;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int readers_ = 0;
  int waiting_writers_ = 0;
  bool writer_ = false;
};

}  // namespace nvswapfs::fs::internal
