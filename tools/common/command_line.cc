#include "command_line.h"

#include <cerrno>

namespace nvswapfs::tools {

namespace po = boost::program_options;

Result<po::variables_map> ParseStrict(int argc, const char* const* argv,
                                      const po::options_description& options,
                                      const po::positional_options_description& positional) {
  po::variables_map vm;
  try {
    const int style =
        po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    po::store(po::command_line_parser(argc, argv)
                  .options(options)
                  .positional(positional)
                  .style(style)
                  .run(),
              vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return Status::Error(EINVAL, "parse", "command line").WithDetail(e.what());
  }
  return vm;
}

Status UsageError(std::string_view option, std::string_view detail) {
  return Status::Error(EINVAL, "parse command line", option).WithDetail(detail);
}

std::string UsageErrorLine(std::string_view program, const Status& status) {
  std::string line(program);
  line += ": ";
  if (!status.subject().empty() && status.subject() != "command line") {
    line += status.subject();
    line += ": ";
  }
  line += status.detail().empty() ? status.ToString() : std::string(status.detail());
  return line + " (see --help)";
}

}  // namespace nvswapfs::tools
