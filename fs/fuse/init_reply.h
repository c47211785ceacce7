// A kernel feature that libfuse 3.14 cannot ask for, asked for by amending
// the connection's INIT reply on its way to the kernel.
//
// FUSE_DIRECT_IO_ALLOW_MMAP (kernel 6.6, protocol 7.39) lets a file opened
// with FOPEN_DIRECT_IO be mapped shared: the mapping goes through the page
// cache, and the kernel keeps it coherent with the direct writes (it writes
// back dirty pages before, and drops cached pages after, each one). Without
// it such a mapping fails with ENODEV, so read-write opens, which numpy's
// memmap and others map shared, would have to stay on the page-cache path.
// libfuse exposes the flag only from 3.17.1 (FUSE_CAP_DIRECT_IO_ALLOW_MMAP);
// with that version this file can go.
#pragma once

#include <fuse3/fuse_lowlevel.h>

namespace nvswapfs::fuse::internal {

// Routes `se`'s device reads and writes through hooks that watch for the
// INIT request and, if the kernel offers FUSE_DIRECT_IO_ALLOW_MMAP, add it
// to the reply. Call after fuse_session_mount and before the session loop;
// one session per process. Returns false if libfuse refused the hooks (the
// mount then works as before, without the flag).
bool AskForDirectIoMmap(fuse_session* se);

// Whether the kernel was offered, and then granted, the flag. Set before the
// INIT reply is sent, so before any open.
bool DirectIoMmapGranted();

}  // namespace nvswapfs::fuse::internal
