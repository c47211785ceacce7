// What libfuse 3.14 cannot ask of the kernel, asked for by amending the
// connection's INIT reply on its way to the kernel: a feature flag and a
// limit.
//
// FUSE_DIRECT_IO_ALLOW_MMAP (kernel 6.6, protocol 7.39) lets a file opened
// with FOPEN_DIRECT_IO be mapped shared: the mapping goes through the page
// cache, and the kernel keeps it coherent with the direct writes (it writes
// back dirty pages before, and drops cached pages after, each one). Without
// it such a mapping fails with ENODEV, so read-write opens, which numpy's
// memmap and others map shared, would have to stay on the page-cache path.
// libfuse exposes the flag only from 3.17.1 (FUSE_CAP_DIRECT_IO_ALLOW_MMAP).
//
// The congestion threshold (kCongestionThreshold in connection.h): libfuse
// lowers any threshold above max_background to it, where the kernel takes
// any value.
#pragma once

#include <fuse3/fuse_lowlevel.h>

namespace nvswapfs::fuse::internal {

// Routes `se`'s device reads and writes through hooks that watch for the
// INIT request and amend the reply: FUSE_DIRECT_IO_ALLOW_MMAP added if the
// kernel offers it, the congestion threshold raised to kCongestionThreshold.
// Call after fuse_session_mount and before the session loop; one session per
// process. Returns false if libfuse refused the hooks (the mount then works
// without the flag, and with libfuse's threshold).
bool AmendInitReply(fuse_session* se);

// Whether the kernel was offered, and then granted, the flag. Set before the
// INIT reply is sent, so before any open.
bool DirectIoMmapGranted();

}  // namespace nvswapfs::fuse::internal
