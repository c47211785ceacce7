#include "options.h"

#include <boost/program_options.hpp>
#include <cerrno>
#include <sstream>

#include "../common/command_line.h"
#include "nvswapfs/fs/superblock.h"
#include "nvswapfs/units.h"

namespace nvswapfs::mkfs {
namespace {

namespace po = boost::program_options;
using tools::UsageError;

po::options_description Visible() {
  po::options_description d = tools::StandardOptions();
  // clang-format off
  d.add_options()
      ("force,f", po::bool_switch(),
       "Format even when DEVICE already holds an nvswapfs volume, another filesystem or a "
       "partition table (their signatures are erased).")
      ("label,L", po::value<std::string>()->value_name("LABEL"),
       "Volume label, at most 63 bytes.")
      ("size", po::value<std::string>()->value_name("SIZE"),
       "Create DEVICE as a sparse image file of SIZE bytes (K, M, G, T suffixes) when it does "
       "not exist, or grow an existing smaller image file to SIZE. Not for block devices.")
      ("alloc-unit", po::value<std::string>()->value_name("SIZE")->default_value("1M"),
       "Allocation unit: a power of two from 64K to 64M. Files take space in whole units.")
      ("no-discard", po::bool_switch(),
       "Do not discard (TRIM) a block device's data region before formatting. By default it "
       "is discarded, so the drive starts with nothing to keep; image files never are.");
  // clang-format on
  return d;
}

std::string Get(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

Status ParseValues(const po::variables_map& vm, MkfsOptions* out) {
  if (out->device.empty()) return UsageError("", "no DEVICE given");
  out->force = vm["force"].as<bool>();
  out->no_discard = vm["no-discard"].as<bool>();
  out->label = Get(vm, "label");
  if (out->label.size() > fs::kMaxLabel) {
    return UsageError("--label", "is " + std::to_string(out->label.size()) + " bytes; at most " +
                                     std::to_string(fs::kMaxLabel) + " fit");
  }
  if (vm.count("size")) {
    Result<uint64_t> size = ParseSize(Get(vm, "size"), "--size");
    if (!size.ok()) return UsageError("--size", size.status().detail());
    if (*size < fs::kBlockSize) {
      return UsageError("--size", "must be at least " + FormatSize(fs::kBlockSize));
    }
    out->size = *size;
  }
  Result<uint64_t> unit = ParseSize(Get(vm, "alloc-unit"), "--alloc-unit");
  if (!unit.ok()) return UsageError("--alloc-unit", unit.status().detail());
  if (!IsPowerOfTwo(*unit) || *unit < fs::kMinAllocUnit || *unit > fs::kMaxAllocUnit) {
    return UsageError("--alloc-unit", "must be a power of two from " +
                                          FormatSize(fs::kMinAllocUnit) + " to " +
                                          FormatSize(fs::kMaxAllocUnit) + ", got \"" +
                                          Get(vm, "alloc-unit") + "\"");
  }
  out->alloc_unit = *unit;
  return Status::Ok();
}

}  // namespace

Result<MkfsOptions> ParseCommandLine(int argc, const char* const* argv) {
  auto args = tools::ParseToolArgs(argc, argv, Visible(), 1);
  if (!args.ok()) return args.status();
  MkfsOptions out;
  out.help = args->help;
  out.version = args->version;
  if (out.help || out.version) return out;
  if (!args->operands.empty()) out.device = args->operands.front();
  const po::variables_map& vm = args->vm;
  NVSWAPFS_RETURN_IF_ERROR(ParseValues(vm, &out));
  return out;
}

std::string UsageText() {
  std::ostringstream out;
  out << "Usage: mkfs.nvswapfs [-f] [-L LABEL] [--size SIZE] [--alloc-unit SIZE] [--no-discard]\n"
         "                     DEVICE\n\n"
         "Creates an empty nvswapfs volume on DEVICE, a block device or an image file.\n"
         "Exit status: 0 formatted, 1 failed or refused, 2 usage error.\n\n"
      << Visible();
  return out.str();
}

std::string UsageErrorLine(const Status& status) {
  return tools::UsageErrorLine("mkfs.nvswapfs", status);
}

}  // namespace nvswapfs::mkfs
