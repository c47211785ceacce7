#include "options.h"

#include <boost/program_options.hpp>
#include <cerrno>
#include <sstream>
#include <string_view>

#include "../common/command_line.h"

namespace nvswapfs::dump {
namespace {

namespace po = boost::program_options;
using tools::UsageError;

po::options_description Visible() {
  po::options_description d = tools::StandardOptions();
  // clang-format off
  d.add_options()
      ("json", po::bool_switch(), "Print one JSON object instead of text.");
  // clang-format on
  return d;
}

}  // namespace

Result<DumpOptions> ParseCommandLine(int argc, const char* const* argv) {
  auto args = tools::ParseToolArgs(argc, argv, Visible(), -1);
  if (!args.ok()) return args.status();
  DumpOptions out;
  out.help = args->help;
  out.version = args->version;
  if (out.help || out.version) return out;
  const po::variables_map& vm = args->vm;
  out.json = vm["json"].as<bool>();
  const std::vector<std::string>& operands = args->operands;
  if (operands.empty() || operands.front().empty()) return UsageError("", "no DEVICE given");
  out.device = operands.front();
  out.paths.assign(operands.begin() + 1, operands.end());
  return out;
}

std::string UsageText() {
  std::ostringstream out;
  out << "Usage: nvswapfs-dump [--json] DEVICE [PATH...]\n\n"
         "Prints what the nvswapfs volume on DEVICE holds: both superblock copies, the layout,\n"
         "the checkpoint and log in use, counts and space, and for each PATH (from the volume's\n"
         "root) its inode and extents. Opens DEVICE read-only; it must not be mounted.\n"
         "Exit status: 0 printed, 1 the volume (or a PATH) could not be read, 2 usage error.\n\n"
      << Visible();
  return out.str();
}

std::string UsageErrorLine(const Status& status) {
  return tools::UsageErrorLine("nvswapfs-dump", status);
}

}  // namespace nvswapfs::dump
