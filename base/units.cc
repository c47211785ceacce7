#include "nvswapfs/units.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>

namespace nvswapfs {

Result<uint64_t> ParseSize(std::string_view text, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return Status::Error(EINVAL, "parse", what)
        .WithDetail(std::string(why) + ": \"" + std::string(text) + "\"");
  };
  uint64_t value = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [end, ec] = std::from_chars(first, last, value);
  if (ec == std::errc::result_out_of_range) return bad("number too large");
  if (ec != std::errc() || end == first)
    return bad("expected a byte count such as 4096, 64K, 1M or 2G");
  std::string suffix(end, last);
  for (char& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else {
    static constexpr std::string_view kUnits = "KMGTP";
    const size_t unit = kUnits.find(suffix[0]);
    std::string_view rest = std::string_view(suffix).substr(1);
    if (unit == std::string_view::npos || !(rest.empty() || rest == "B" || rest == "IB")) {
      return bad("unknown unit (use K, M, G, T or P)");
    }
    shift = static_cast<unsigned>(10 * (unit + 1));
  }
  if (shift != 0 && value > (UINT64_MAX >> shift)) return bad("number too large");
  return value << shift;
}

std::string FormatSize(uint64_t bytes) {
  static constexpr const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  uint64_t scale = 1;
  while (unit < 5 && bytes >= scale * 1024) {
    scale *= 1024;
    ++unit;
  }
  char buf[48];
  if (bytes % scale == 0) {
    std::snprintf(buf, sizeof buf, "%llu %s", static_cast<unsigned long long>(bytes / scale),
                  kNames[unit]);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f %s",
                  static_cast<double>(bytes) / static_cast<double>(scale), kNames[unit]);
  }
  return buf;
}

}  // namespace nvswapfs
