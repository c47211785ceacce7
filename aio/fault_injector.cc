#include "nvswapfs/aio/fault_injector.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "nvswapfs/units.h"

namespace nvswapfs::aio {
namespace {

// Shortened transfers stay multiples of this, which every logical block size
// we accept divides, so the kernel still takes them under O_DIRECT.
constexpr size_t kShortGranule = 4096;

// What a device writes whole, or not at all, when the power goes: a write
// of several may be torn between them.
constexpr size_t kSector = 4096;

bool SameFile(int a, int b) {
  struct stat sa, sb;
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

}  // namespace

FaultInjector::FaultInjector(uint64_t seed, Syscalls& inner) : inner_(inner), rng_(seed) {}

void FaultInjector::FailNth(FaultOp op, uint64_t n, int error) {
  SetNth(op, n, error, /*crashes=*/false);
}

void FaultInjector::CrashAtNth(FaultOp op, uint64_t n) {
  SetNth(op, n, EIO, /*crashes=*/true);
}

void FaultInjector::SetNth(FaultOp op, uint64_t n, int error, bool crashes) {
  std::lock_guard lock(mu_);
  Rule& r = rules_[static_cast<int>(op)];
  r.seen = 0;
  r.nth = n;
  r.nth_error = error;
  r.nth_crashes = crashes;
}

void FaultInjector::FailOneIn(FaultOp op, uint32_t n, int error) {
  std::lock_guard lock(mu_);
  Rule& r = rules_[static_cast<int>(op)];
  r.one_in = n;
  r.one_in_error = error;
}

void FaultInjector::ShortTransferOneIn(uint32_t n) {
  std::lock_guard lock(mu_);
  short_one_in_ = n;
}

void FaultInjector::PartialSubmitOneIn(uint32_t n) {
  std::lock_guard lock(mu_);
  partial_one_in_ = n;
}

void FaultInjector::SubmitEagainOneIn(uint32_t n) {
  std::lock_guard lock(mu_);
  eagain_one_in_ = n;
}

void FaultInjector::GetEventsEintrOneIn(uint32_t n) {
  std::lock_guard lock(mu_);
  eintr_one_in_ = n;
}

void FaultInjector::TrackUnflushedWrites(bool on) {
  std::lock_guard lock(mu_);
  track_ = on;
  if (!on) {
    undo_.clear();
    targets_.clear();
  }
}

void FaultInjector::KeepUnflushedOneIn(uint32_t n) {
  std::lock_guard lock(mu_);
  keep_one_in_ = n;
}

void FaultInjector::ClearFaults() {
  std::lock_guard lock(mu_);
  for (Rule& r : rules_) r = Rule{};
  short_one_in_ = partial_one_in_ = eagain_one_in_ = eintr_one_in_ = 0;
}

bool FaultInjector::crashed() const {
  std::lock_guard lock(mu_);
  return crashed_;
}

uint64_t FaultInjector::injected() const {
  std::lock_guard lock(mu_);
  return injected_;
}

uint64_t FaultInjector::unflushed_writes() const {
  std::lock_guard lock(mu_);
  return undo_.size();
}

Status FaultInjector::CrashNow() {
  std::lock_guard lock(mu_);
  crashed_ = true;
  Status result;
  // Puts `length` bytes of `bytes` from `at` back where `u` wrote them.
  auto put = [&](const Undo& u, const AlignedBuffer& bytes, size_t at, size_t length) {
    const off_t offset = u.offset + static_cast<off_t>(at);
    const ssize_t n = inner_.Pwrite(u.target->get(), bytes.data() + at, length, offset);
    if (n != static_cast<ssize_t>(length) && result.ok()) {
      result = Status::Error(n < 0 ? static_cast<int>(-n) : EIO, "crash: restore", "device",
                             static_cast<uint64_t>(offset), length);
    }
  };
  // Newest first, so a range written twice ends with its oldest content:
  // what the last flush left.
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) put(*it, it->old, 0, it->length);
  // Then the sectors that reached the media anyway, oldest write first.
  if (keep_one_in_ != 0) {
    for (const Undo& u : undo_) {
      for (size_t at = 0; at < u.length; at += kSector) {
        if (Roll(keep_one_in_)) put(u, u.written, at, std::min(kSector, u.length - at));
      }
    }
  }
  undo_.clear();
  targets_.clear();
  return result;
}

bool FaultInjector::Roll(uint32_t one_in) {
  return one_in != 0 && rng_() % one_in == 0;
}

int FaultInjector::ShouldFail(FaultOp op) {
  if (crashed_) return EIO;
  Rule& r = rules_[static_cast<int>(op)];
  ++r.seen;
  int error = 0;
  if (r.nth != 0 && r.seen == r.nth) {
    error = r.nth_error;
    r.nth = 0;
    if (r.nth_crashes) crashed_ = true;
  } else if (Roll(r.one_in)) {
    error = r.one_in_error;
  }
  if (error != 0) ++injected_;
  return error;
}

size_t FaultInjector::ShortLength(size_t count, long* extra) {
  *extra = 0;
  if (!Roll(short_one_in_)) return count;
  ++injected_;
  // Anything from nothing up to the last granule, sometimes with a few bytes
  // of the next block reported as moved.
  const size_t granules = count / kShortGranule;
  const size_t keep = granules == 0 ? 0 : (rng_() % granules) * kShortGranule;
  if (keep + 512 < count && rng_() % 2 == 0) *extra = static_cast<long>(1 + rng_() % 511);
  return keep;
}

void FaultInjector::RecordUndo(int fd, off_t offset, const void* buf, size_t length) {
  if (!track_) return;
  auto old = AlignedBuffer::Allocate(length);
  if (!old.ok()) return;  // test-only bookkeeping: out of memory means no undo
  const ssize_t n = inner_.Pread(fd, old->data(), length, offset);
  if (n <= 0) return;  // nothing there before (past the end of a file)
  AlignedBuffer written;
  if (keep_one_in_ != 0) {
    auto copy = AlignedBuffer::Allocate(length);
    if (!copy.ok()) return;
    written = std::move(copy).value();
    std::memcpy(written.data(), buf, static_cast<size_t>(n));
  }
  std::shared_ptr<UniqueFd>& target = targets_[fd];
  if (target == nullptr || !SameFile(target->get(), fd)) {
    // First write through this descriptor, or its number has been reused.
    target = std::make_shared<UniqueFd>(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  }
  undo_.push_back(
      Undo{fd, target, offset, std::move(old).value(), std::move(written), static_cast<size_t>(n)});
}

int FaultInjector::Setup(unsigned max_events, io_context_t* ctx) {
  const int rc = inner_.Setup(max_events, ctx);
  if (rc == 0) {
    std::lock_guard lock(mu_);
    contexts_[*ctx] = Context{};
  }
  return rc;
}

int FaultInjector::Destroy(io_context_t ctx) {
  {
    std::lock_guard lock(mu_);
    contexts_.erase(ctx);
  }
  return inner_.Destroy(ctx);
}

int FaultInjector::ForwardRun(io_context_t ctx, std::vector<struct iocb*>& run) {
  if (run.empty()) return 0;
  const int rc = inner_.Submit(ctx, static_cast<long>(run.size()), run.data());
  const size_t accepted = rc > 0 ? static_cast<size_t>(rc) : 0;
  contexts_[ctx].real_in_flight += static_cast<long>(accepted);
  // Control blocks the kernel did not take are handed back untouched.
  for (size_t i = accepted; i < run.size(); ++i) {
    auto it = shortened_.find(run[i]);
    if (it != shortened_.end()) {
      run[i]->u.c.nbytes = it->second.original_nbytes;
      shortened_.erase(it);
    }
  }
  run.clear();
  return rc;
}

int FaultInjector::Submit(io_context_t ctx, long n, struct iocb** iocbs) {
  std::lock_guard lock(mu_);
  if (!crashed_ && Roll(eagain_one_in_)) {
    ++injected_;
    return -EAGAIN;
  }
  long limit = n;
  if (n > 1 && Roll(partial_one_in_)) {
    ++injected_;
    limit = 1 + static_cast<long>(rng_() % static_cast<uint64_t>(n - 1));
  }
  Context& context = contexts_[ctx];
  std::vector<struct iocb*> run;
  long accepted = 0;
  for (long i = 0; i < limit; ++i) {
    struct iocb* cb = iocbs[i];
    const bool is_read = cb->aio_lio_opcode == IO_CMD_PREAD;
    const int error = ShouldFail(is_read ? FaultOp::kRead : FaultOp::kWrite);
    if (error != 0) {
      // Everything before this block must be queued first, or the caller
      // would see a failure for a block it believes is still pending.
      const long before = static_cast<long>(run.size());
      const int rc = ForwardRun(ctx, run);
      if (rc < before) return accepted + std::max(rc, 0) > 0 ? accepted + std::max(rc, 0) : rc;
      accepted += rc;
      struct io_event ev = {};
      ev.data = cb->data;
      ev.obj = cb;
      ev.res = static_cast<unsigned long>(-static_cast<long>(error));
      context.synthetic.push_back(ev);
      ++accepted;
      continue;
    }
    long extra = 0;
    const size_t length = ShortLength(cb->u.c.nbytes, &extra);
    if (length != cb->u.c.nbytes) {
      shortened_[cb] = Shortened{cb->u.c.nbytes, extra};
      cb->u.c.nbytes = length;
    }
    if (!is_read) {
      RecordUndo(cb->aio_fildes, static_cast<off_t>(cb->u.c.offset), cb->u.c.buf, cb->u.c.nbytes);
    }
    run.push_back(cb);
  }
  const long before = static_cast<long>(run.size());
  const int rc = ForwardRun(ctx, run);
  if (rc < before) return accepted + std::max(rc, 0) > 0 ? accepted + std::max(rc, 0) : rc;
  return static_cast<int>(accepted + rc);
}

int FaultInjector::GetEvents(io_context_t ctx, long min_nr, long nr, struct io_event* events,
                             struct timespec* timeout) {
  long real_in_flight = 0;
  {
    std::lock_guard lock(mu_);
    Context& context = contexts_[ctx];
    if (!context.synthetic.empty()) {
      const long count = std::min<long>(nr, static_cast<long>(context.synthetic.size()));
      std::copy_n(context.synthetic.begin(), count, events);
      context.synthetic.erase(context.synthetic.begin(), context.synthetic.begin() + count);
      return static_cast<int>(count);
    }
    if (Roll(eintr_one_in_)) {
      ++injected_;
      return -EINTR;
    }
    real_in_flight = context.real_in_flight;
  }
  // Never wait for more completions than the kernel can deliver.
  const int rc = inner_.GetEvents(ctx, std::min(min_nr, real_in_flight), nr, events, timeout);
  if (rc <= 0) return rc;
  std::lock_guard lock(mu_);
  contexts_[ctx].real_in_flight -= rc;
  for (int i = 0; i < rc; ++i) {
    struct io_event& ev = events[i];
    auto it = shortened_.find(ev.obj);
    if (it != shortened_.end()) {
      const auto res = static_cast<long>(ev.res);
      if (res >= 0) ev.res = static_cast<unsigned long>(res + it->second.extra);
      ev.obj->u.c.nbytes = it->second.original_nbytes;
      shortened_.erase(it);
    }
    if (crashed_) ev.res = static_cast<unsigned long>(-static_cast<long>(EIO));
  }
  return rc;
}

ssize_t FaultInjector::Pread(int fd, void* buf, size_t count, off_t offset) {
  std::lock_guard lock(mu_);
  if (const int error = ShouldFail(FaultOp::kRead); error != 0) return -error;
  long extra = 0;
  const size_t length = ShortLength(count, &extra);
  const ssize_t n = inner_.Pread(fd, buf, length, offset);
  return n >= 0 && length < count ? n + extra : n;
}

ssize_t FaultInjector::Pwrite(int fd, const void* buf, size_t count, off_t offset) {
  std::lock_guard lock(mu_);
  if (const int error = ShouldFail(FaultOp::kWrite); error != 0) return -error;
  long extra = 0;
  const size_t length = ShortLength(count, &extra);
  RecordUndo(fd, offset, buf, length);
  const ssize_t n = inner_.Pwrite(fd, buf, length, offset);
  return n >= 0 && length < count ? n + extra : n;
}

int FaultInjector::Flush(int fd) {
  std::lock_guard lock(mu_);
  if (const int error = ShouldFail(FaultOp::kFlush); error != 0) return -error;
  const int rc = inner_.Flush(fd);
  if (rc == 0) {
    // Everything written to this descriptor so far is now durable.
    std::erase_if(undo_, [fd](const Undo& u) { return u.fd == fd; });
  }
  return rc;
}

}  // namespace nvswapfs::aio
