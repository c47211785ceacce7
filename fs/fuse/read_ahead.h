// Read-ahead for one open file whose reads bypass the page cache (O_DIRECT
// and read-write opens, where the kernel does no read-ahead of its own); not
// a public API.
//
// A client reading a file sequentially one request at a time (`dd
// iflag=direct`, a loader reading a tensor in 1 MiB calls) waits for each
// device read in turn. Once two requests in a row continue each other, this
// reads the file ahead in aligned chunks (the stream's largest request
// rounded up to a power of two, at most a buffer of the pool), into buffers
// from a shared, bounded pool, and answers the requests that follow from
// them, whatever their sizes. That matters: a 1 MiB read into a
// buffer that is not page-aligned (Python's bytes, fio's own buffers) spans
// 257 pages, so the kernel sends it as two requests, 1 MiB less the
// misalignment and then the rest; a request that straddles two chunks is
// answered from both, without a copy. Anything else (a jump, several
// requests at once, a write to the file) drops what was read ahead: a chunk
// is used only if the file's data version (fs::Volume::DataVersion) is still
// the one it was read at.
#pragma once

#include <fuse3/fuse_lowlevel.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include "depth_tuner.h"
#include "nvswapfs/aio/buffer.h"
#include "nvswapfs/fs/volume.h"

namespace nvswapfs::fuse::internal {

class ReadAhead {
 public:
  // Reads at most `max_depth` chunks ahead of the client, as many as a
  // DepthTuner finds fastest. It starts from `learned` (a depth another
  // stream settled on, or 0) and leaves there what it settles on itself.
  ReadAhead(fs::Volume& volume, aio::BufferPool& pool, uint64_t ino, size_t max_depth,
            std::atomic<size_t>& learned);
  ~ReadAhead();
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // Answers `req` for [offset, offset + size) from what was read ahead and
  // returns true, or returns false (the caller reads it) after noting the
  // request for detecting a sequential stream. Also starts reading ahead.
  bool Serve(fuse_req_t req, uint64_t offset, size_t size);
  // The caller's own read of a request Serve passed on has finished.
  void Finished();

 private:
  struct Chunk;
  struct Answer;
  bool CoversLocked(uint64_t offset, size_t size) const;
  void DropLocked();
  void FillLocked(uint64_t version);
  // The tuner has settled on a depth: later streams start there.
  void Settled();

  fs::Volume& volume_;
  aio::BufferPool& pool_;
  const uint64_t ino_;
  std::atomic<size_t>& learned_;
  std::mutex mu_;
  DepthTuner tuner_;                          // guarded by mu_
  std::deque<std::shared_ptr<Chunk>> ahead_;  // guarded by mu_: contiguous, in file order
  uint64_t next_ = UINT64_MAX;                // where the stream goes next
  size_t largest_ = 0;                        // the stream's largest request
  int streak_ = 0;                            // requests in a row that continued
  int outstanding_ = 0;                       // reads the caller has running
};

}  // namespace nvswapfs::fuse::internal
