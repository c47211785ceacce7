#include "output.h"

#include <algorithm>
#include <cmath>

#include "nvswapfs/units.h"

namespace nvswapfs::fsck {
namespace {

constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

std::string Count(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

void Progress::Update(double fraction, const char* phase) {
  const auto now = std::chrono::steady_clock::now();
  const bool last = fraction >= 1.0;
  if (drawn_ && !last && now - last_ < kRedrawInterval) return;
  last_ = now;
  const int percent = static_cast<int>(std::lround(std::clamp(fraction, 0.0, 1.0) * 100));
  // The checker names its final call "done", which reads badly after "checking".
  std::string line = last ? std::string("checking: 100%")
                          : "checking " + std::string(phase) + ": " + std::to_string(percent) + "%";
  const size_t width = line.size();
  if (line.size() < width_) line.append(width_ - line.size(), ' ');
  width_ = width;
  out_ << '\r' << line << std::flush;
  drawn_ = true;
}

void Progress::Finish() {
  if (drawn_) out_ << '\n' << std::flush;
  drawn_ = false;
}

void PrintReport(const fs::FsckReport& report, const std::string& device, bool repair, bool verbose,
                 std::ostream& out) {
  for (const std::string& problem : report.problems) out << "PROBLEM: " << problem << "\n";
  for (const std::string& fixed : report.repaired) out << "FIXED: " << fixed << "\n";
  if (verbose || !report.problems.empty()) {
    for (const std::string& note : report.notes) out << "note: " << note << "\n";
  }
  if (verbose) {
    out << "log commits replayed: " << report.commits_replayed << "\n"
        << "data region: " << FormatSize(report.data_bytes) << ", " << FormatSize(report.used_bytes)
        << " used, " << FormatSize(report.free_bytes) << " free\n";
  }
  std::string state;
  if (report.problems.empty()) {
    state = "clean";
  } else if (repair) {
    state = Count(report.problems.size(), "problem", "problems") + ", " +
            std::to_string(report.repaired.size()) + " fixed";
  } else {
    state = Count(report.problems.size(), "problem", "problems") + " (checked only; -y repairs)";
  }
  out << device << ": " << state << ", " << Count(report.files, "file", "files") << ", "
      << Count(report.directories, "directory", "directories") << ", "
      << Count(report.symlinks, "symlink", "symlinks") << ", " << FormatSize(report.used_bytes)
      << " used of " << FormatSize(report.data_bytes) << "\n";
}

}  // namespace nvswapfs::fsck
