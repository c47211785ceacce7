// Command-line parsing shared by the nvswapfs tools.
#pragma once

#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "nvswapfs/status.h"

namespace nvswapfs::tools {

// Parses argv with Boost.ProgramOptions the way every nvswapfs tool does:
// abbreviated option names are refused (so that a later option can never
// change what an existing script's spelling means), and words beyond
// `positional` are errors rather than dropped. On failure, EINVAL with
// Boost's message as the detail.
Result<boost::program_options::variables_map> ParseStrict(
    int argc, const char* const* argv, const boost::program_options::options_description& options,
    const boost::program_options::positional_options_description& positional);

// The options every tool's --help lists first, laid out 100 columns wide:
// --help (-h) and, with `with_version`, --version. ParseToolArgs reads both.
boost::program_options::options_description StandardOptions(bool with_version = true);

// A tool's command line parsed by ParseStrict: its `visible` options plus
// operands. When `help` or `version` is set the rest need not be read.
struct ToolArgs {
  boost::program_options::variables_map vm;
  std::vector<std::string> operands;
  bool help = false;
  bool version = false;
};

// Parses `visible` options and at most `max_operands` operands (-1: any
// number); a mistake is a UsageError.
Result<ToolArgs> ParseToolArgs(int argc, const char* const* argv,
                               const boost::program_options::options_description& visible,
                               int max_operands);

// A mistake on the command line: `option` names the option at fault ("" when
// none does), `detail` says what is wrong.
Status UsageError(std::string_view option, std::string_view detail);

// The one line a tool prints for a usage error:
// "PROGRAM: [OPTION: ]DETAIL (see --help)".
std::string UsageErrorLine(std::string_view program, const Status& status);

// The start of every tool's main(): a command line that did not parse gives
// its one usage line on stderr and `usage_exit`; --help prints
// `usage_text()` and --version (for tools whose options have it) the
// version, both exiting 0; anything else is for `run`.
template <typename Options, typename UsageLine, typename UsageText, typename Run>
int StartMain(const Result<Options>& options, int usage_exit, UsageLine usage_line,
              UsageText usage_text, std::string_view version, Run run) {
  if (!options.ok()) {
    std::cerr << usage_line(options.status()) << "\n";
    return usage_exit;
  }
  if (options->help) {
    std::cout << usage_text();
    return 0;
  }
  if constexpr (requires(const Options& o) { o.version; }) {
    if (options->version) {
      std::cout << "nvswapfs " << version << "\n";
      return 0;
    }
  }
  return run(*options);
}

}  // namespace nvswapfs::tools
