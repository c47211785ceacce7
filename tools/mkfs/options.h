// Command line of mkfs.nvswapfs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nvswapfs/status.h"

namespace nvswapfs::mkfs {

struct MkfsOptions {
  bool help = false;
  bool version = false;
  bool force = false;  // -f: format over an existing volume or signature
  std::string device;
  std::string label;
  // --size: create (or grow) an image file of this many bytes.
  std::optional<uint64_t> size;
  uint64_t alloc_unit = 0;
  // --no-discard: leave a block device's data region as it is.
  bool no_discard = false;
};

// Parses argv. Usage mistakes come back as EINVAL statuses whose subject is
// the option (empty when none applies) and whose detail says what is wrong;
// print them with UsageErrorLine. The label and the allocation unit are
// checked here, before anything touches the device, so a typo never leaves
// a half-made image behind. --help and --version skip every other check.
Result<MkfsOptions> ParseCommandLine(int argc, const char* const* argv);

std::string UsageText();
std::string UsageErrorLine(const Status& status);

}  // namespace nvswapfs::mkfs
