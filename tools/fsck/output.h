// What fsck.nvswapfs prints: progress while it checks, then the report.
#pragma once

#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>

#include "nvswapfs/fs/fsck.h"

namespace nvswapfs::fsck {

// A one-line progress indicator, "\rchecking <phase>: 45%", redrawn at most
// every 100 ms (the last update always shows, so the line ends at 100%).
// Not thread-safe; the checker calls it from the checking thread only.
class Progress {
 public:
  explicit Progress(std::ostream& out) : out_(out) {}
  void Update(double fraction, const char* phase);
  // Ends the line, if one was drawn, so that later output starts afresh.
  void Finish();

 private:
  std::ostream& out_;
  std::chrono::steady_clock::time_point last_{};
  bool drawn_ = false;
  size_t width_ = 0;  // of the last line, to blank what a shorter one leaves
};

// Prints every problem ("PROBLEM: ..."), every repair ("FIXED: ..."), notes
// ("note: ...") when `verbose` or when there are problems, a breakdown when
// `verbose`, and one summary line:
//   DEVICE: clean, 12 files, 3 directories, 1 symlink, 1.50 GiB used of 2 GiB
void PrintReport(const fs::FsckReport& report, const std::string& device, bool repair, bool verbose,
                 std::ostream& out);

}  // namespace nvswapfs::fsck
