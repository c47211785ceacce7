// Command-line parsing shared by the nvswapfs tools.
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <string_view>

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

// A mistake on the command line: `option` names the option at fault ("" when
// none does), `detail` says what is wrong.
Status UsageError(std::string_view option, std::string_view detail);

// The one line a tool prints for a usage error:
// "PROGRAM: [OPTION: ]DETAIL (see --help)".
std::string UsageErrorLine(std::string_view program, const Status& status);

}  // namespace nvswapfs::tools
