#include "options.h"

#include <boost/program_options.hpp>
#include <cerrno>
#include <sstream>
#include <string_view>

#include "../common/command_line.h"

namespace nvswapfs::fsck {
namespace {

namespace po = boost::program_options;
using tools::UsageError;

po::options_description Visible() {
  po::options_description d = tools::StandardOptions();
  // clang-format off
  d.add_options()
      (",n", po::bool_switch(), "Check only, open the device read-only and change nothing "
       "(the default).")
      (",y", po::bool_switch(), "Repair every problem that can be repaired safely.")
      (",p", po::bool_switch(), "Automatic repair, as fsck(8) asks for at boot: the same as -y.")
      (",a", po::bool_switch(), "The same as -p.")
      (",f", po::bool_switch(), "Accepted for fsck(8); every check is always complete.")
      (",v", po::bool_switch(), "Verbose: print notes, a breakdown of the volume and progress.");
  // clang-format on
  return d;
}

}  // namespace

Result<FsckCommandLine> ParseCommandLine(int argc, const char* const* argv) {
  auto args = tools::ParseToolArgs(argc, argv, Visible(), 1);
  if (!args.ok()) return args.status();
  FsckCommandLine out;
  out.help = args->help;
  out.version = args->version;
  if (out.help || out.version) return out;
  const po::variables_map& vm = args->vm;
  const bool check_only = vm["-n"].as<bool>();
  out.repair = vm["-y"].as<bool>() || vm["-p"].as<bool>() || vm["-a"].as<bool>();
  if (check_only && out.repair) return UsageError("", "-n cannot be combined with -y, -p or -a");
  out.verbose = vm["-v"].as<bool>();
  if (!args->operands.empty()) out.device = args->operands.front();
  if (out.device.empty()) return UsageError("", "no DEVICE given");
  return out;
}

std::string UsageText() {
  std::ostringstream out;
  out << "Usage: fsck.nvswapfs [-n|-y|-p] [-v] DEVICE\n\n"
         "Checks, and with -y repairs, the nvswapfs volume on DEVICE, which must not be "
         "mounted.\n"
         "Exit status (as fsck(8)): 0 clean, 1 problems repaired, 4 problems left, "
         "8 operational error,\n16 usage error.\n\n"
      << Visible();
  return out.str();
}

std::string UsageErrorLine(const Status& status) {
  return tools::UsageErrorLine("fsck.nvswapfs", status);
}

}  // namespace nvswapfs::fsck
