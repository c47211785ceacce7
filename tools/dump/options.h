// Command line of nvswapfs-dump.
#pragma once

#include <string>
#include <vector>

#include "nvswapfs/status.h"

namespace nvswapfs::dump {

struct DumpOptions {
  bool help = false;
  bool version = false;
  bool json = false;
  std::string device;
  std::vector<std::string> paths;  // inside the volume, from its root
};

// Parses argv. Usage mistakes come back as EINVAL statuses whose detail says
// what is wrong; print them with UsageErrorLine. --help and --version skip
// every other check.
Result<DumpOptions> ParseCommandLine(int argc, const char* const* argv);

std::string UsageText();
std::string UsageErrorLine(const Status& status);

}  // namespace nvswapfs::dump
