// fsck.nvswapfs: checks and repairs an nvswapfs volume that is not mounted.
// A command-line front end to fs::CheckImage (fs/fsck.cc holds the checks).
// See --help.

#include <unistd.h>

#include <iostream>

#include "../common/command_line.h"
#include "nvswapfs/fs/fsck.h"
#include "options.h"
#include "output.h"

namespace nvswapfs::fsck {
namespace {

// fsck(8)'s exit codes; 0, 1 and 4 come from FsckReport::ExitCode().
constexpr int kExitOperationalError = 8;
constexpr int kExitUsage = 16;

int Run(const FsckCommandLine& command) {
  Progress progress(std::cerr);
  fs::FsckOptions options;
  options.repair = command.repair;
  // Progress on a terminal, or when asked; never into a log file unasked.
  if (command.verbose || ::isatty(STDERR_FILENO)) {
    options.progress = [&progress](double fraction, const char* phase) {
      progress.Update(fraction, phase);
    };
  }
  Result<fs::FsckReport> report = fs::CheckImage(command.device, options);
  progress.Finish();
  if (!report.ok()) {
    std::cerr << "fsck.nvswapfs: " << report.status().ToString() << "\n";
    return kExitOperationalError;
  }
  PrintReport(*report, command.device, command.repair, command.verbose, std::cout);
  std::cout.flush();
  return report->ExitCode();
}

int Main(int argc, char** argv) {
  return tools::StartMain(ParseCommandLine(argc, argv), kExitUsage, UsageErrorLine, UsageText,
                          NVSWAPFS_VERSION, Run);
}

}  // namespace
}  // namespace nvswapfs::fsck

int main(int argc, char** argv) {
  return nvswapfs::fsck::Main(argc, argv);
}
