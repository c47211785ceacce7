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

po::options_description StandardOptions(bool with_version) {
  po::options_description d("Options", /*line_length=*/100, /*min_description_length=*/50);
  d.add_options()("help,h", "Print this text and exit.");
  if (with_version) d.add_options()("version", "Print the version and exit.");
  return d;
}

Result<ToolArgs> ParseToolArgs(int argc, const char* const* argv,
                               const po::options_description& visible, int max_operands) {
  po::options_description all = visible;
  all.add_options()("operand", po::value<std::vector<std::string>>());
  po::positional_options_description positional;
  positional.add("operand", max_operands);
  auto parsed = ParseStrict(argc, argv, all, positional);
  if (!parsed.ok()) return UsageError("", std::string(parsed.status().detail()));
  ToolArgs args;
  args.vm = std::move(parsed).value();
  args.help = args.vm.count("help") > 0;
  args.version = args.vm.count("version") > 0;
  if (args.vm.count("operand")) args.operands = args.vm["operand"].as<std::vector<std::string>>();
  return args;
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
