// A few threads that run the last step of data transfers; not a public API.
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nvswapfs::fs::internal {

// Finishing a transfer takes the Volume's metadata lock, which may be held
// by a commit waiting for the engine; engine threads therefore only hand the
// finish over to these threads and go back to reaping. Destruction runs
// everything already posted, then joins.
class Executor {
 public:
  // Threads named `name` (at most 15 bytes), as top -H and perf show them.
  Executor(int threads, const char* name) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, name] {
        pthread_setname_np(pthread_self(), name);
        Run();
      });
    }
  }
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  ~Executor() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void Post(std::function<void()> task) {
    // Notified under the lock: once the task can run, whatever it lets go
    // (the volume, and this executor with it) may be destroyed at once.
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
    cv_.notify_one();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace nvswapfs::fs::internal
