// Command line of fsck.nvswapfs, in the dialect fsck(8) speaks to its
// helpers: -n / -y, and -a or -p for an unattended (boot-time) repair.
#pragma once

#include <string>

#include "nvswapfs/status.h"

namespace nvswapfs::fsck {

struct FsckCommandLine {
  bool help = false;
  bool version = false;
  bool repair = false;  // -y, -a, -p; -n (or nothing) only checks
  bool verbose = false;
  std::string device;
};

// Parses argv. Usage mistakes (unknown options, -n together with a repair
// option, no device) come back as EINVAL statuses; print them with
// UsageErrorLine. --help and --version skip every other check.
Result<FsckCommandLine> ParseCommandLine(int argc, const char* const* argv);

std::string UsageText();
std::string UsageErrorLine(const Status& status);

}  // namespace nvswapfs::fsck
