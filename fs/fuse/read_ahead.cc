#include "read_ahead.h"

#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <optional>
#include <vector>

#include "nvswapfs/log.h"
#include "ops_internal.h"

namespace nvswapfs::fuse::internal {

namespace {

constexpr size_t kSmallestChunk = 4096;

}  // namespace

// One aligned chunk of the file, read ahead. Shared by the window, the
// engine's completion and the answers waiting on it, so that any may go
// first.
struct ReadAhead::Chunk {
  uint64_t offset = 0;
  size_t size = 0;
  uint64_t version = 0;
  aio::BufferPool::Lease lease;
  std::mutex mu;
  std::optional<Result<size_t>> result;         // guarded by mu
  std::vector<std::shared_ptr<Answer>> waiting;  // guarded by mu: told on completion

  uint64_t end() const { return offset + size; }
  void Complete(Result<size_t> n);
};

// A request answered from one or more chunks, sent once all have been read.
struct ReadAhead::Answer {
  struct Piece {
    std::shared_ptr<Chunk> chunk;
    size_t from = 0;  // within the chunk
    size_t size = 0;
  };

  fuse_req_t req = nullptr;
  uint64_t ino = 0;
  std::vector<Piece> pieces;  // in file order
  // Pieces still being read, plus one held while they are being counted.
  std::atomic<size_t> pending{1};

  // `n` more pieces (or the hold) are done; the last one sends the answer.
  void PiecesDone(size_t n) {
    if (pending.fetch_sub(n, std::memory_order_acq_rel) == n) Send();
  }

  void Send() {
    Guarded(req, [&] {
      std::vector<iovec> iov;
      iov.reserve(pieces.size());
      size_t total = 0;
      for (const Piece& p : pieces) {
        const Result<size_t>& r = *p.chunk->result;  // set before PieceDone
        if (!r.ok()) return ReplyError(req, r.status(), ino);
        // A chunk read short holds the end of the file.
        const size_t have = *r > p.from ? std::min(*r - p.from, p.size) : 0;
        if (have > 0) iov.push_back({p.chunk->lease.data() + p.from, have});
        total += have;
        if (have < p.size) break;
      }
      Filesystem& fs = FsOf(req);
      fs.CountRead(ino, total, Served::kReadAhead);
      if (iov.empty()) {
        fuse_reply_buf(req, nullptr, 0);  // at the end of the file
      } else {
        TimedReadReply(fs, [&] { fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size())); });
      }
    });
  }
};

void ReadAhead::Chunk::Complete(Result<size_t> n) {
  std::vector<std::shared_ptr<Answer>> told;
  {
    std::lock_guard lock(mu);
    result = std::move(n);
    told.swap(waiting);
  }
  for (const auto& a : told) a->PiecesDone(1);
}

namespace {

DepthTuner::Options TunerOptions(size_t max_depth, size_t learned) {
  DepthTuner::Options o;
  o.max_depth = max_depth;
  if (learned != 0) o.start_depth = learned;
  return o;
}

}  // namespace

ReadAhead::ReadAhead(fs::Volume& volume, aio::BufferPool& pool, uint64_t ino, size_t max_depth,
                     std::atomic<size_t>& learned)
    : volume_(volume),
      pool_(pool),
      ino_(ino),
      learned_(learned),
      tuner_(TunerOptions(max_depth, learned.load(std::memory_order_relaxed))) {}

ReadAhead::~ReadAhead() {
  std::lock_guard lock(mu_);
  DropLocked();
}

bool ReadAhead::Serve(fuse_req_t req, uint64_t offset, size_t size) {
  std::shared_ptr<Answer> answer;
  {
    std::lock_guard lock(mu_);
    const uint64_t version = volume_.DataVersion(ino_);
    const bool continues = offset == next_;
    const bool current = ahead_.empty() || ahead_.front()->version == version;
    next_ = offset + size;
    largest_ = continues ? std::max(largest_, size) : size;
    if (!current || !continues || !CoversLocked(offset, size)) {
      if (!ahead_.empty()) tuner_.Interrupted();
      DropLocked();
      streak_ = continues ? streak_ + 1 : 0;
      ++outstanding_;
      // Only for a client waiting on one request at a time: one with several
      // in flight keeps the device busy by itself.
      if (streak_ >= 1 && outstanding_ == 1) FillLocked(version);
      return false;
    }
    answer = std::make_shared<Answer>();
    for (const auto& c : ahead_) {
      if (c->offset >= offset + size) break;
      if (c->end() <= offset) continue;
      const uint64_t from = std::max(offset, c->offset);
      const uint64_t to = std::min(offset + size, c->end());
      answer->pieces.push_back({c, from - c->offset, to - from});
    }
    // Chunks the request read to their end are done with.
    uint64_t chunks = 0;
    uint64_t bytes = 0;
    while (!ahead_.empty() && ahead_.front()->end() <= offset + size) {
      ++chunks;
      bytes += ahead_.front()->size;
      ahead_.pop_front();
    }
    if (chunks > 0) {
      const bool was_holding = tuner_.holding();
      tuner_.Consumed(chunks, bytes, DepthTuner::Clock::now());
      if (tuner_.holding() && !was_holding) Settled();
    }
    FillLocked(version);
  }
  answer->req = req;
  answer->ino = ino_;
  answer->pending.fetch_add(answer->pieces.size(), std::memory_order_relaxed);
  size_t ready = 0;
  for (const Answer::Piece& p : answer->pieces) {
    std::lock_guard lock(p.chunk->mu);
    if (p.chunk->result.has_value()) {
      ++ready;
    } else {
      p.chunk->waiting.push_back(answer);
    }
  }
  // Counted: the pieces already read, and the hold.
  answer->PiecesDone(ready + 1);
  return true;
}

void ReadAhead::Finished() {
  std::lock_guard lock(mu_);
  --outstanding_;
}

void ReadAhead::Settled() {
  const size_t depth = tuner_.depth();
  if (learned_.exchange(depth, std::memory_order_relaxed) == depth) return;
  LogInfo("read-ahead for direct opens: " + std::to_string(depth) + " chunks ahead read fastest (" +
          std::to_string(static_cast<uint64_t>(tuner_.rate() / 1e6)) + " MB/s, file " +
          std::to_string(ino_) + "); later streams start there");
}

bool ReadAhead::CoversLocked(uint64_t offset, size_t size) const {
  return size > 0 && !ahead_.empty() && ahead_.front()->offset <= offset &&
         ahead_.back()->end() >= offset + size;
}

void ReadAhead::DropLocked() {
  // Chunks still being read, or still answering, let go of their buffers
  // when that is over.
  ahead_.clear();
}

void ReadAhead::FillLocked(uint64_t version) {
  // Chunks of the stream's largest request, rounded up to a power of two:
  // a window of small reads stays small (in the CPU's cache when the
  // device's data arrives through it), and a request cut short by a
  // misaligned buffer, or the rest of one, fits in one chunk.
  const size_t chunk =
      std::min(std::bit_ceil(std::max(largest_, kSmallestChunk)), pool_.buffer_size());
  // From the chunk holding where the stream goes next; a chunk that starts
  // before it overlaps the caller's own read and is read whole anyway.
  uint64_t at = next_ / chunk * chunk;
  if (!ahead_.empty()) {
    Chunk& last = *ahead_.back();
    std::lock_guard lock(last.mu);
    // Nothing lies past a chunk read short: the end of the file.
    if (last.result.has_value() && (!last.result->ok() || **last.result < last.size)) return;
    at = last.end();
  }
  while (ahead_.size() < tuner_.depth()) {
    aio::BufferPool::Lease lease = pool_.TryAcquire();
    if (!lease.valid()) break;  // the pool is shared: take only what is free
    auto c = std::make_shared<Chunk>();
    c->offset = at;
    c->size = chunk;
    c->version = version;
    c->lease = std::move(lease);
    ahead_.push_back(c);
    volume_.ReadAsync(ino_, at, std::span<std::byte>(c->lease.data(), chunk),
                      [c](Result<size_t> n) { c->Complete(std::move(n)); });
    at += chunk;
  }
}

}  // namespace nvswapfs::fuse::internal
