// The daemon's command line:
//
//   nvswapfs [-f] [-d] [-o OPTIONS] DEVICE MOUNTPOINT
//
// OPTIONS is a comma-separated list of this daemon's options (below) and
// libfuse's own mount options, which are passed on. mount.fuse3 calls the
// daemon the same way, so `mount -t fuse.nvswapfs DEVICE DIR -o ...` and an
// /etc/fstab line work too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nvswapfs/aio/engine.h"
#include "nvswapfs/status.h"

namespace nvswapfs::fuse {

// Device faults to inject while mounted, for testing how failures are
// reported. Off unless asked for; the daemon logs a warning when on.
struct FaultOptions {
  uint32_t read_one_in = 0;   // fail one in N engine reads with EIO
  uint32_t write_one_in = 0;  // ... writes
  uint64_t read_nth = 0;      // fail the N-th engine read after mounting
  uint64_t write_nth = 0;     // ... write
  uint64_t seed = 1;
  bool any() const { return read_one_in || write_one_in || read_nth || write_nth; }
};

struct DaemonOptions {
  std::string device;
  std::string mountpoint;
  bool foreground = false;
  bool debug = false;
  bool show_help = false;
  bool show_version = false;
  aio::EngineOptions engine;
  bool read_only = false;
  uint32_t commit_interval_s = 5;
  // Writes report once on the device (WriteMode::kThrough) instead of once
  // queued for it.
  bool sync_writes = false;
  // The kernel's read-ahead window (KiB): deep sequential reads through the
  // page cache.
  uint32_t read_ahead_kb = 16 * 1024;
  // Largest read request (libfuse's max_read); 0: 1 MiB.
  uint32_t max_read = 0;
  bool allow_other = false;
  bool default_permissions = true;
  // "stderr", "syslog" or a file path; empty: stderr in the foreground,
  // syslog in the background.
  std::string log;
  // Threads serving FUSE requests.
  uint32_t max_threads = 16;
  FaultOptions faults;
  // Options for libfuse (mount options such as allow_other, fsname).
  std::vector<std::string> fuse_options;
};

// Parses argv. Errors are EINVAL with a message naming the bad argument.
Result<DaemonOptions> ParseDaemonArgs(int argc, const char* const* argv);

// The --help text.
std::string DaemonUsage(const char* program);

}  // namespace nvswapfs::fuse
