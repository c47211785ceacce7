// Checking (and repairing) a volume that is not mounted.
//
// Checks both superblock copies, the checkpoint slots and the log (a damaged
// slot, or commits in the log past what can be loaded, are problems), and
// the namespace: the root is a directory, every entry points to an
// inode, every inode is reachable from the root exactly as often as its link
// count says, no directory has two parents (so there are no cycles), every
// extent map is well formed and lies inside the data region, no two files
// share an allocation unit, no block past the end of a file is marked
// written, and a symlink's size is its target's length. Free space is the
// complement of what files use by construction (it is never stored), so the
// only way to lose space is a file nothing reaches; those are reported.
//
// Repair (`repair`): rewrites a damaged superblock copy from the good one,
// keeps the state that loads when a newer one is lost (a new checkpoint
// over the damaged slot, its log past every commit left behind),
// drops entries that point nowhere, fixes link counts and symlink sizes,
// marks written blocks past the end of a file unwritten, frees inodes
// unlinked while open, and moves files nothing reaches to /lost+found; then
// writes a new checkpoint. Two files sharing space is reported and left
// alone: choosing whose data to keep is a person's decision.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nvswapfs/aio/engine.h"
#include "nvswapfs/status.h"

namespace nvswapfs::fs {

struct FsckOptions {
  bool repair = false;
  // Called now and then with the fraction done (0..1) and the phase name.
  std::function<void(double, const char*)> progress;
};

struct FsckReport {
  std::vector<std::string> problems;  // what is wrong, one line each
  std::vector<std::string> repaired;  // what was fixed (a subset of problems)
  std::vector<std::string> notes;     // worth knowing, not wrong (a cut log tail)
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t data_bytes = 0;
  uint64_t commits_replayed = 0;

  // fsck(8)'s convention: 0 clean, 1 errors corrected, 4 errors left.
  int ExitCode() const;
};

// Checks the volume on `engine`'s device. Fails (rather than reporting) only
// when the volume cannot be loaded at all: no valid superblock or checkpoint.
Result<FsckReport> Check(aio::IoEngine& engine, const FsckOptions& options);

// Opens `path` (image or block device, exclusively) and checks it.
Result<FsckReport> CheckImage(const std::string& path, const FsckOptions& options = {});

}  // namespace nvswapfs::fs
