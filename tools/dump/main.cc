// nvswapfs-dump: prints what an nvswapfs volume holds, in the spirit of
// dumpe2fs, including as much as can be read of a damaged volume. See --help.

#include <iostream>
#include <memory>

#include "../common/command_line.h"
#include "collect.h"
#include "nvswapfs/aio/aio_engine.h"
#include "nvswapfs/aio/block_device.h"
#include "options.h"
#include "output.h"

namespace nvswapfs::dump {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // the volume, or a PATH, could not be read
constexpr int kExitUsage = 2;

int Fail(const Status& status) {
  std::cerr << "nvswapfs-dump: " << status.ToString() << "\n";
  return kExitFailure;
}

int Run(const DumpOptions& options) {
  // Read-only takes a shared lock: a mounted volume (whose daemon holds the
  // lock exclusively) is refused rather than read while it changes.
  Result<aio::BlockDevice> device =
      aio::BlockDevice::Open(options.device, aio::DeviceOptions{.read_only = true});
  if (!device.ok()) return Fail(device.status());
  Result<std::unique_ptr<aio::AioEngine>> engine =
      aio::AioEngine::Create(std::move(device).value(), aio::EngineOptions{});
  if (!engine.ok()) return Fail(engine.status());

  DumpData data;
  Collect(**engine, options.paths, &data);
  if (options.json) {
    PrintJson(data, std::cout);
  } else {
    PrintText(data, std::cout);
  }
  std::cout.flush();
  // The messages go to stderr too, so that they show under --json and when
  // stdout is piped somewhere.
  if (!data.loaded()) {
    std::cerr << "nvswapfs-dump: " << data.error << "\n";
    return kExitFailure;
  }
  for (const PathReport& path : data.paths) {
    if (!path.error.empty())
      std::cerr << "nvswapfs-dump: " << path.path << ": " << path.error << "\n";
  }
  return data.paths_ok() ? kExitOk : kExitFailure;
}

int Main(int argc, char** argv) {
  return tools::StartMain(ParseCommandLine(argc, argv), kExitUsage, UsageErrorLine, UsageText,
                          NVSWAPFS_VERSION, Run);
}

}  // namespace
}  // namespace nvswapfs::dump

int main(int argc, char** argv) {
  return nvswapfs::dump::Main(argc, argv);
}
