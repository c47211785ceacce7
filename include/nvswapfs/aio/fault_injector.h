// The fault-injecting device, for tests.
//
// A Syscalls implementation that forwards to a real one (normally the kernel)
// and, as configured, makes the device misbehave:
//  - fail the k-th read, write or flush, or a seeded one-in-N of them, with
//    a chosen errno (EIO by default);
//  - transfer short: a read or write moves only part of its bytes (really:
//    the kernel is asked for fewer), possibly reporting a few extra bytes of
//    a partly moved block, as hardware may;
//  - accept only part of an io_submit batch, answer io_submit with EAGAIN,
//    or interrupt io_getevents with EINTR;
//  - crash: CrashNow() puts back the previous content of every range written
//    since the last successful flush (so only flushed data survives, as after
//    a power cut) and fails every later operation with EIO; CrashAtNth cuts
//    the power in the middle of whatever the caller is doing.
// Faults are counted per kind of operation from the moment they are set.
// Equal seeds and equal call sequences give equal faults. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "nvswapfs/aio/buffer.h"
#include "nvswapfs/aio/syscalls.h"
#include "nvswapfs/status.h"
#include "nvswapfs/unique_fd.h"

namespace nvswapfs::aio {

enum class FaultOp { kRead = 0, kWrite = 1, kFlush = 2 };

class FaultInjector final : public Syscalls {
 public:
  explicit FaultInjector(uint64_t seed = 1, Syscalls& inner = Syscalls::System());

  // Fails the n-th (1-based) operation of `op` from now on, once.
  void FailNth(FaultOp op, uint64_t n, int error = EIO);
  // The n-th (1-based) operation of `op` from now on cuts the power: it and
  // every operation after it fail with EIO. What was not flushed is put back
  // by CrashNow(), to be called once nothing is in flight (a write the kernel
  // still holds would land after the restore): after the engine is gone, say.
  void CrashAtNth(FaultOp op, uint64_t n);
  // Fails each operation of `op` with probability 1/n (n = 0: never).
  void FailOneIn(FaultOp op, uint32_t n, int error = EIO);
  // Reads and writes move only part of their bytes with probability 1/n.
  void ShortTransferOneIn(uint32_t n);
  // io_submit accepts only a prefix of a batch of two or more with
  // probability 1/n.
  void PartialSubmitOneIn(uint32_t n);
  // io_submit returns EAGAIN without queuing anything with probability 1/n.
  void SubmitEagainOneIn(uint32_t n);
  // io_getevents returns EINTR with probability 1/n.
  void GetEventsEintrOneIn(uint32_t n);
  // Records the previous content of every write so CrashNow can undo it.
  // Off by default (it costs a read per write).
  void TrackUnflushedWrites(bool on);
  // At a power cut, each 4 KiB sector of each write not yet flushed reaches
  // the media after all with probability 1/n (0, the default: none does; 1:
  // all do), whatever the order they were issued in, as a device with a
  // volatile cache may leave them: a write may also be torn. Costs a copy of
  // every tracked write.
  void KeepUnflushedOneIn(uint32_t n);
  // Turns every fault above off (a crash stays a crash).
  void ClearFaults();

  // Simulates a power cut; see above. Fails only if restoring fails.
  Status CrashNow();

  bool crashed() const;
  // Faults injected so far (failures, short transfers, partial submits,
  // EAGAIN and EINTR answers).
  uint64_t injected() const;
  uint64_t unflushed_writes() const;

  int Setup(unsigned max_events, io_context_t* ctx) override;
  int Destroy(io_context_t ctx) override;
  int Submit(io_context_t ctx, long n, struct iocb** iocbs) override;
  int GetEvents(io_context_t ctx, long min_nr, long nr, struct io_event* events,
                struct timespec* timeout) override;
  ssize_t Pread(int fd, void* buf, size_t count, off_t offset) override;
  ssize_t Pwrite(int fd, const void* buf, size_t count, off_t offset) override;
  int Flush(int fd) override;

 private:
  struct Rule {
    uint64_t seen = 0;
    uint64_t nth = 0;  // 0: off
    int nth_error = EIO;
    bool nth_crashes = false;
    uint32_t one_in = 0;  // 0: off
    int one_in_error = EIO;
  };
  struct Undo {
    int fd;                            // as the caller knows it
    std::shared_ptr<UniqueFd> target;  // the same file, open until restored
    off_t offset;
    AlignedBuffer old;
    AlignedBuffer written;  // with KeepUnflushedOneIn only
    size_t length;
  };
  struct Shortened {
    unsigned long original_nbytes;
    long extra;  // bytes reported beyond what really moved
  };
  struct Context {
    std::vector<struct io_event> synthetic;  // completions made up here
    long real_in_flight = 0;
  };

  void SetNth(FaultOp op, uint64_t n, int error, bool crashes);
  bool Roll(uint32_t one_in);                     // requires mu_
  int ShouldFail(FaultOp op);                     // errno or 0; requires mu_
  size_t ShortLength(size_t count, long* extra);  // requires mu_
  void RecordUndo(int fd, off_t offset, const void* buf, size_t length);  // requires mu_
  int ForwardRun(io_context_t ctx, std::vector<struct iocb*>& run);       // requires mu_

  Syscalls& inner_;
  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  Rule rules_[3];
  uint32_t short_one_in_ = 0, partial_one_in_ = 0, eagain_one_in_ = 0, eintr_one_in_ = 0;
  bool track_ = false;
  uint32_t keep_one_in_ = 0;
  bool crashed_ = false;
  uint64_t injected_ = 0;
  std::vector<Undo> undo_;
  // A descriptor of its own for each file written, so that a restore works
  // after the caller has closed theirs.
  std::map<int, std::shared_ptr<UniqueFd>> targets_;
  std::map<struct iocb*, Shortened> shortened_;
  std::map<io_context_t, Context> contexts_;
};

}  // namespace nvswapfs::aio
