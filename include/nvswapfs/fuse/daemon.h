// The nvswapfs daemon's entry point (options in options.h).
#pragma once

namespace nvswapfs::fuse {

// Runs the daemon to completion: parses `argv`, opens the volume, mounts it,
// serves requests until unmounted or signalled (SIGINT, SIGTERM, SIGHUP),
// then commits everything and closes the volume. Returns the exit status:
// 0 after a clean unmount, 1 on failure, 2 for a bad command line.
int RunDaemon(int argc, const char* const* argv);

}  // namespace nvswapfs::fuse
