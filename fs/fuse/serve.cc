// Each worker reads requests into a buffer from one pool, laid out so that a
// WRITE's bytes start on a page: libfuse 3.14 reads a request into the
// buffer it is given, and hands the write callback a pointer right after
// the two headers. The callback may take the buffer along with the bytes
// (TakeRequestBuffer); the worker then reads on into another one. So a
// 1 MiB write reaches the device from where the kernel copied it, with no
// staging copy, and the pool bounds what is held: one buffer per worker
// plus kInFlight on their way to the device.
//
// Stopping: the signal handlers set the session's exit flag and poke an
// eventfd the main thread waits on; a worker that sees the unmount does the
// same. The main thread then interrupts the workers still waiting in read()
// with a signal of their own (SIGUSR1, whose handler does nothing), until
// each has seen the flag.
#include "serve.h"

#include <linux/fuse.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "nvswapfs/aio/buffer.h"
#include "nvswapfs/fs/volume.h"
#include "nvswapfs/fuse/connection.h"
#include "nvswapfs/unique_fd.h"

namespace nvswapfs::fuse::internal {

namespace {

constexpr size_t kPage = 4096;
// libfuse 3.14 reads into its session buffer size: a largest request's data
// (max_write) and a page for the headers.
constexpr size_t kSessionBuffer = kMaxRequest + kPage;
// What precedes a WRITE's bytes.
constexpr size_t kWriteHeaders = sizeof(fuse_in_header) + sizeof(fuse_write_in);
// A request goes in at the end of a buffer's first page, its write bytes
// from the second page on.
constexpr size_t kRequestAt = kPage - kWriteHeaders;
constexpr size_t kSlot = kRequestAt + kSessionBuffer;
// Buffers beyond one per worker: writes on their way to the device, as many
// as the volume's staging buffers.
constexpr size_t kInFlight = fs::VolumeOptions{}.staging_buffers;
constexpr int kWakeSignal = SIGUSR1;

std::atomic<fuse_session*> stop_session{nullptr};
std::atomic<int> wake_fd{-1};

void Poke() {
  const int fd = wake_fd.load();
  if (fd < 0) return;
  const uint64_t one = 1;
  (void)!::write(fd, &one, sizeof one);
}

void OnStopSignal(int) {
  const int saved = errno;
  StopServing();
  errno = saved;
}

void OnWakeSignal(int) {}

struct Worker {
  aio::BufferPool::Lease lease;
  std::thread thread;
  std::atomic<bool> done{false};
};

thread_local Worker* current = nullptr;

// The workers. They start as they are needed, when a request arrives and no
// other worker waits for the next one: the kernel hands requests to the
// longest waiting reader, so a client making one request at a time keeps
// meeting the same two threads (and their buffers, warm in the cache)
// rather than going round all of them.
class Loop {
 public:
  Loop(fuse_session* se, aio::BufferPool& pool, size_t max) : se_(se), pool_(pool), max_(max) {}

  // Starts one more worker unless there are enough or the loop is stopping.
  Status Spawn() {
    std::lock_guard lock(mu_);
    if (stopping_ || workers_.size() >= max_) return Status::Ok();
    auto w = std::make_unique<Worker>();
    try {
      w->thread = std::thread(&Loop::Work, this, w.get());
    } catch (const std::system_error& e) {
      return Status::Error(e.code().value(), "start a request thread", "request loop");
    }
    idle_.fetch_add(1);
    workers_.push_back(std::move(w));
    return Status::Ok();
  }

  // After the exit flag is set: interrupts the workers still waiting for a
  // request until each has seen it, and waits for them all.
  void Stop() {
    std::vector<std::unique_ptr<Worker>> workers;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      workers.swap(workers_);
    }
    for (auto& w : workers) {
      while (!w->done.load()) {
        ::pthread_kill(w->thread.native_handle(), kWakeSignal);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      w->thread.join();
    }
  }

  int error() const { return error_.load(); }

 private:
  void Work(Worker* w) {
    pthread_setname_np(pthread_self(), "nvswapfs-fuse");
    current = w;
    while (!fuse_session_exited(se_)) {
      if (!w->lease.valid()) w->lease = pool_.Acquire();
      fuse_buf buf{};
      buf.mem = w->lease.data() + kRequestAt;
      buf.size = kSessionBuffer;
      const int res = fuse_session_receive_buf(se_, &buf);
      if (res == -EINTR) continue;
      if (res <= 0) {
        // 0: unmounted (libfuse has set the exit flag) or stopping.
        if (res < 0) {
          int none = 0;
          error_.compare_exchange_strong(none, -res);
          fuse_session_exit(se_);
        }
        break;
      }
      // Should no thread be left to start, those there are serve on.
      if (idle_.fetch_sub(1) == 1) (void)Spawn();
      fuse_session_process_buf(se_, &buf);
      idle_.fetch_add(1);
    }
    current = nullptr;
    w->lease = aio::BufferPool::Lease();
    w->done.store(true);
    Poke();
  }

  fuse_session* const se_;
  aio::BufferPool& pool_;
  const size_t max_;
  std::atomic<int> idle_{0};  // workers not busy with a request
  std::atomic<int> error_{0};
  std::mutex mu_;
  bool stopping_ = false;  // guarded by mu_
  std::vector<std::unique_ptr<Worker>> workers_;  // guarded by mu_
};

}  // namespace

void StopServing() {
  if (fuse_session* se = stop_session.load(); se != nullptr) fuse_session_exit(se);
  Poke();
}

StopSignals::StopSignals(fuse_session* se) {
  stop_session.store(se);
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: a worker waiting for a request sees the flag at once.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  sa.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &sa, nullptr);
}

StopSignals::~StopSignals() {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::sigaction(sig, &sa, nullptr);
  stop_session.store(nullptr);
}

Status Serve(fuse_session* se, size_t threads) {
  threads = std::max<size_t>(threads, 1);
  auto pool = aio::BufferPool::Create(kSlot, threads + kInFlight);
  if (!pool.ok()) return pool.status();
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC));
  if (!wake.valid()) return Status::FromErrno("eventfd", "request loop");
  struct sigaction sa {}, old_sa{};
  sa.sa_handler = OnWakeSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(kWakeSignal, &sa, &old_sa);
  wake_fd.store(wake.get());

  Loop loop(se, **pool, threads);
  Status started = loop.Spawn();
  if (!started.ok()) fuse_session_exit(se);
  while (!fuse_session_exited(se)) {
    uint64_t n;
    (void)!::read(wake.get(), &n, sizeof n);
  }
  loop.Stop();
  wake_fd.store(-1);
  ::sigaction(kWakeSignal, &old_sa, nullptr);
  if (!started.ok()) return started;
  if (const int e = loop.error(); e != 0) {
    return Status::Error(e, "read", "/dev/fuse").WithDetail("the FUSE device failed");
  }
  return Status::Ok();
}

std::shared_ptr<void> TakeRequestBuffer(const char* data, size_t size,
                                        std::span<std::byte>* bytes) {
  Worker* w = current;
  if (w == nullptr || !w->lease.valid()) return nullptr;
  const auto base = reinterpret_cast<uintptr_t>(w->lease.data());
  const auto at = reinterpret_cast<uintptr_t>(data);
  if (at < base || at - base > w->lease.size() || size > w->lease.size() - (at - base))
    return nullptr;
  *bytes = std::span(w->lease.data() + (at - base), size);
  return std::make_shared<aio::BufferPool::Lease>(std::move(w->lease));
}

}  // namespace nvswapfs::fuse::internal
