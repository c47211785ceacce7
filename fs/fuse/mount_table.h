// What /proc/self/mountinfo says is mounted where; not a public API.
//
// Read instead of stat()-ing a mount point: a stat of this daemon's own
// mount would be a request to the daemon itself.
#pragma once

#include <optional>
#include <string>

namespace nvswapfs::fuse::internal {

struct MountEntry {
  std::string device;  // "MAJOR:MINOR"
  std::string type;    // e.g. "fuse.nvswapfs"
  std::string source;  // e.g. the image path
};

// The mount on top at `path` (an absolute path, as the kernel shows it),
// if any.
std::optional<MountEntry> MountedAt(const std::string& path);

}  // namespace nvswapfs::fuse::internal
