#include "mount_table.h"

#include <fstream>
#include <sstream>
#include <string_view>

namespace nvswapfs::fuse::internal {

namespace {

// Undoes the octal escapes (\040 for a space) of a mountinfo field.
std::string Unescape(std::string_view field) {
  const auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && octal(field[i + 1]) && octal(field[i + 2]) &&
        octal(field[i + 3])) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

}  // namespace

std::optional<MountEntry> MountedAt(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::optional<MountEntry> found;
  while (std::getline(in, line)) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
    std::istringstream fields(line);
    std::string id, parent, dev, root, mountpoint, word;
    if (!(fields >> id >> parent >> dev >> root >> mountpoint)) continue;
    if (Unescape(mountpoint) != path) continue;
    while (fields >> word && word != "-") {
    }
    std::string type, source;
    fields >> type >> source;
    // Later lines are mounted on top of earlier ones.
    found = MountEntry{dev, Unescape(type), Unescape(source)};
  }
  return found;
}

}  // namespace nvswapfs::fuse::internal
