// What nvswapfs asks of the kernel's FUSE connection and of each open, in
// one place: the daemon applies it, and so does nvswapfs-null-fuse, the
// benchmark's keep-nothing reference, so that the two are measured alike.
#pragma once

#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>

#include <cstddef>
#include <cstdint>

namespace nvswapfs::fuse {

// libfuse 3.14's largest request (max_write, max_readahead); files report it
// as st_blksize, so that cp and Python's open() move that much per call.
inline constexpr size_t kMaxRequest = size_t{1} << 20;

// Background requests (read-ahead, libaio clients' direct I/O) the kernel
// sends at once; more wait in its queue, not in the daemon, so that a
// metadata request never queues behind more than this many.
inline constexpr uint16_t kMaxBackground = 64;
// Background requests outstanding, sent or queued, at which the kernel stops
// reading ahead asynchronously: a stream that finds the window it needs not
// asked for then waits for a synchronous read. The usual threshold, three
// quarters of kMaxBackground, is what four streams reading through the page
// cache with 16 MiB windows reached; with this one, they keep reading ahead
// while the daemon works at the queue. libfuse 3.14 holds the threshold at
// max_background, so the daemon amends the INIT reply for it
// (fs/fuse/init_reply.h).
inline constexpr uint16_t kCongestionThreshold = 240;

// The data path's side of the INIT exchange.
inline void AskForLargeRequests(fuse_conn_info* conn) {
  // Large requests both ways: 1 MiB is libfuse 3.14's ceiling.
  conn->max_write = kMaxRequest;
  conn->max_readahead = kMaxRequest;
  // Enough background requests (async reads, libaio clients' O_DIRECT I/O)
  // to keep the engine's queue fed; the kernel's default is 12.
  conn->max_background = kMaxBackground;
  // As high as libfuse lets it be; the INIT reply's amendment raises it on.
  conn->congestion_threshold = kMaxBackground;
  if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  // Every write passes through the daemon, so the kernel need not drop its
  // cached pages whenever it sees a new mtime.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

// Whether an open with `open_flags` bypasses the page cache (fi->direct_io).
// O_DIRECT clients (libaio, DeepSpeed's NVMe offload) bypass every cache. So
// do opens that can write (cp, dd, torch.save, Python's "wb", fio): the
// kernel builds each request straight from the writer's memory instead of
// copying it into the page cache first, which doubles what one writer moves
// or better (fio: 3x on a memory-backed image). A shared mapping of such an
// open still goes through the page cache when the kernel can map direct
// opens (`direct_opens_map`: FUSE_DIRECT_IO_ALLOW_MMAP, Linux 6.6), and the
// kernel writes back, then drops, cached pages around each direct write, so
// readers and mappings stay coherent; where it cannot, read-write opens keep
// the page cache. Read-only opens always do: the kernel's read-ahead serves
// small sequential reads (tar reads 10 KiB at a time) without a round trip
// each, and re-reads come from memory.
inline bool BypassesPageCache(int open_flags, bool direct_opens_map) {
  const int access = open_flags & O_ACCMODE;
  return (open_flags & O_DIRECT) != 0 || access == O_WRONLY ||
         (access == O_RDWR && direct_opens_map);
}

}  // namespace nvswapfs::fuse
