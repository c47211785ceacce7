#include "options.h"

#include <boost/program_options.hpp>
#include <cerrno>
#include <charconv>
#include <sstream>

#include "../common/command_line.h"

namespace nvswapfs::bench {
namespace {

namespace po = boost::program_options;
using tools::UsageError;

constexpr uint32_t kMaxQueueDepth = 4096;
constexpr uint32_t kMaxThreads = 64;
constexpr uint32_t kMaxRepeat = 1000;
// Every logical block size the engine accepts divides this; the exact one is
// only known once the device is open (see main.cc).
constexpr uint64_t kMinBlockSize = 512;
constexpr uint64_t kMaxBlockSize = 256 * kMiB;

constexpr const char* kDefaultSweepBlockSizes = "64K,256K,1M,4M";
constexpr const char* kDefaultSweepQueueDepths = "1,8,32,64";

po::options_description Describe() {
  po::options_description d = tools::StandardOptions(/*with_version=*/false);
  // Values are taken as strings and parsed here: Boost's lexical_cast would
  // turn "-1" into 4294967295 for an unsigned option.
  // One option per paragraph reads better than the formatter's layout of
  // chained calls.
  // clang-format off
  d.add_options()
      ("file", po::value<std::string>()->value_name("PATH"),
       "Image file or block device to measure (required). A missing file is created, a short "
       "one extended, both preallocated.")
      ("size", po::value<std::string>()->value_name("SIZE")->default_value("1G"),
       "Bytes to move per run, from offset 0; a multiple of the block size.")
      ("op", po::value<std::string>()->value_name("read|write"), "Operation (required).")
      ("buffer", po::value<std::string>()->value_name("SIZE"),
       "Memory the data moves through, a multiple of the block size: by default a buffer of "
       "--size bytes, which the run fills (or empties) once, as a swapped tensor; with SIZE the "
       "run goes through the same SIZE bytes again and again, as fio goes through its queue "
       "depth times block size. Some hosts serve a device faster into less memory.")
      ("pattern", po::value<std::string>()->value_name("seq|rand")->default_value("seq"),
       "seq: the whole range as one request; rand: one request per block, in a seeded random "
       "order, all submitted up front.")
      ("block-size", po::value<std::string>()->value_name("SIZE")->default_value("1M"),
       "Engine piece size (fio --bs).")
      ("queue-depth", po::value<std::string>()->value_name("N")->default_value("32"),
       "Pieces in flight per engine thread (fio --iodepth).")
      ("mode", po::value<std::string>()->value_name("overlap|sequential")->default_value("overlap"),
       "overlap: refill as each piece completes; sequential: submit a batch, reap it all.")
      ("threads", po::value<std::string>()->value_name("N")->default_value("1"),
       "Engine worker threads (fio --numjobs, each job its own part of the file).")
      ("single-submit", po::bool_switch(), "One io_submit per piece instead of per batch. [off]")
      ("engine", po::value<std::string>()->value_name("aio|sync")->default_value("aio"),
       "aio: the libaio engine; sync: the pread/pwrite reference engine (compared with fio's "
       "psync engine; queue depth and mode do not apply).")
      ("repeat", po::value<std::string>()->value_name("N")->default_value("3"),
       "Runs per measurement; with --vs-fio engine and fio runs alternate. Medians are reported.")
      ("vs-fio", po::bool_switch(),
       "Also run fio with the same parameters on the same file and print engine/fio. [off]")
      ("fio", po::value<std::string>()->value_name("PATH")->default_value("fio"),
       "fio binary used by --vs-fio (searched in PATH).")
      ("sweep", po::bool_switch(),
       "Measure every combination of the sweep block sizes, queue depths and both modes "
       "(instead of --block-size, --queue-depth and --mode). [off]")
      ("sweep-block-sizes", po::value<std::string>()->value_name("LIST")
                                ->default_value(kDefaultSweepBlockSizes),
       "Block sizes for --sweep.")
      ("sweep-queue-depths", po::value<std::string>()->value_name("LIST")
                                 ->default_value(kDefaultSweepQueueDepths),
       "Queue depths for --sweep.")
      ("json", po::bool_switch(),
       "Print one JSON object per measurement on stdout (notes go to stderr). [off]")
      ("validate", po::bool_switch(),
       "Check the data: reads first write a known pattern; every engine read is compared with "
       "it, and the file is re-read with plain buffered read() and compared byte for byte. "
       "Exit 1 on a mismatch. [off]")
      ("verbose", po::bool_switch(), "Print each fio command line to stderr. [off]");
  // clang-format on
  return d;
}

Result<uint64_t> ParseCount(const std::string& text, std::string_view option, uint64_t min,
                            uint64_t max) {
  uint64_t value = 0;
  const char* last = text.data() + text.size();
  auto [end, ec] = std::from_chars(text.data(), last, value);
  if (ec != std::errc() || end != last || value < min || value > max) {
    return UsageError(option, "expected a whole number from " + std::to_string(min) + " to " +
                                  std::to_string(max) + ", got \"" + text + "\"");
  }
  return value;
}

Result<uint64_t> ParseSizeOption(const std::string& text, std::string_view option) {
  Result<uint64_t> size = ParseSize(text, option);
  if (!size.ok()) return UsageError(option, size.status().detail());
  return size;
}

Result<uint64_t> ParseBlockSize(const std::string& text, std::string_view option) {
  Result<uint64_t> size = ParseSizeOption(text, option);
  if (!size.ok()) return size;
  if (*size < kMinBlockSize || *size > kMaxBlockSize || *size % kMinBlockSize != 0) {
    return UsageError(option,
                      "a block size must be a multiple of 512 bytes from 512 to 256M, "
                      "got \"" +
                          text + "\"");
  }
  return size;
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) items.push_back(item);
  return items;
}

// Fetches a string option's value ("" when absent and without default).
std::string Get(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

Status ParseEnums(const po::variables_map& vm, BenchOptions* out) {
  const std::string op = Get(vm, "op");
  if (op == "read") {
    out->op = aio::IoOp::kRead;
  } else if (op == "write") {
    out->op = aio::IoOp::kWrite;
  } else {
    return UsageError("--op", op.empty() ? "is required (read or write)"
                                         : "expected read or write, got \"" + op + "\"");
  }
  const std::string pattern = Get(vm, "pattern");
  if (pattern != "seq" && pattern != "rand") {
    return UsageError("--pattern", "expected seq or rand, got \"" + pattern + "\"");
  }
  out->pattern = pattern == "seq" ? Pattern::kSeq : Pattern::kRand;
  const std::string mode = Get(vm, "mode");
  if (mode != "overlap" && mode != "sequential") {
    return UsageError("--mode", "expected overlap or sequential, got \"" + mode + "\"");
  }
  out->engine.overlap = mode == "overlap";
  const std::string engine = Get(vm, "engine");
  if (engine != "aio" && engine != "sync") {
    return UsageError("--engine", "expected aio or sync, got \"" + engine + "\"");
  }
  out->engine_kind = engine == "aio" ? EngineKind::kAio : EngineKind::kSync;
  return Status::Ok();
}

Status ParseNumbers(const po::variables_map& vm, BenchOptions* out) {
  Result<uint64_t> size = ParseSizeOption(Get(vm, "size"), "--size");
  if (!size.ok()) return size.status();
  if (*size == 0) return UsageError("--size", "must be greater than zero");
  out->size = *size;
  if (vm.count("buffer")) {
    Result<uint64_t> buffer = ParseSizeOption(Get(vm, "buffer"), "--buffer");
    if (!buffer.ok()) return buffer.status();
    if (*buffer == 0 || *buffer > out->size) {
      return UsageError("--buffer", "must be from one block to --size " + FormatSize(out->size) +
                                        ", got \"" + Get(vm, "buffer") + "\"");
    }
    out->buffer = *buffer;
  }
  Result<uint64_t> block = ParseBlockSize(Get(vm, "block-size"), "--block-size");
  if (!block.ok()) return block.status();
  out->engine.block_size = *block;
  Result<uint64_t> depth = ParseCount(Get(vm, "queue-depth"), "--queue-depth", 1, kMaxQueueDepth);
  if (!depth.ok()) return depth.status();
  out->engine.queue_depth = static_cast<uint32_t>(*depth);
  Result<uint64_t> threads = ParseCount(Get(vm, "threads"), "--threads", 1, kMaxThreads);
  if (!threads.ok()) return threads.status();
  out->engine.threads = static_cast<uint32_t>(*threads);
  Result<uint64_t> repeat = ParseCount(Get(vm, "repeat"), "--repeat", 1, kMaxRepeat);
  if (!repeat.ok()) return repeat.status();
  out->repeat = static_cast<uint32_t>(*repeat);
  return Status::Ok();
}

Status ParseSweepLists(const po::variables_map& vm, BenchOptions* out) {
  for (const std::string& item : SplitList(Get(vm, "sweep-block-sizes"))) {
    Result<uint64_t> block = ParseBlockSize(item, "--sweep-block-sizes");
    if (!block.ok()) return block.status();
    out->sweep_block_sizes.push_back(*block);
  }
  for (const std::string& item : SplitList(Get(vm, "sweep-queue-depths"))) {
    Result<uint64_t> depth = ParseCount(item, "--sweep-queue-depths", 1, kMaxQueueDepth);
    if (!depth.ok()) return depth.status();
    out->sweep_queue_depths.push_back(static_cast<uint32_t>(*depth));
  }
  if (out->sweep_block_sizes.empty()) return UsageError("--sweep-block-sizes", "is empty");
  if (out->sweep_queue_depths.empty()) return UsageError("--sweep-queue-depths", "is empty");
  return Status::Ok();
}

// Checks that hold for every measurement, so that no run fails half way
// through a sweep for a reason known up front.
Status CheckMeasurements(const BenchOptions& options) {
  for (const Measurement& m : options.Measurements()) {
    const uint64_t bs = m.engine.block_size;
    const char* option = options.sweep ? "--sweep-block-sizes" : "--block-size";
    if (m.size % bs != 0) {
      return UsageError("--size", FormatSize(m.size) + " is not a multiple of the block size " +
                                      FormatSize(bs) + " (" + option + ")");
    }
    if (m.blocks() < m.engine.threads) {
      return UsageError("--threads", "each of the " + std::to_string(m.engine.threads) +
                                         " threads needs at least one block of " + FormatSize(bs) +
                                         " within --size " + FormatSize(m.size));
    }
    // The sequential range goes in requests of `buffer` bytes, each split
    // among the threads like the whole range.
    if (m.buffer != 0 &&
        (m.buffer % bs != 0 || m.size % m.buffer != 0 || m.buffer / bs < m.engine.threads)) {
      return UsageError("--buffer", FormatSize(m.buffer) +
                                        " must be a multiple of the block size " + FormatSize(bs) +
                                        " (" + option + ") times --threads, and divide --size " +
                                        FormatSize(m.size));
    }
  }
  // Requests in flight at once may share the memory, so what a read put
  // there is no longer the range's.
  if (options.validate && options.buffer != 0) {
    return UsageError("--validate",
                      "checks the data in a buffer of --size bytes: leave out --buffer");
  }
  return Status::Ok();
}

}  // namespace

const char* PatternName(Pattern pattern) {
  return pattern == Pattern::kSeq ? "seq" : "rand";
}

const char* EngineKindName(EngineKind kind) {
  return kind == EngineKind::kAio ? "aio" : "sync";
}

const char* ModeName(bool overlap) {
  return overlap ? "overlap" : "sequential";
}

std::string Measurement::Label() const {
  std::string label = std::string(aio::IoOpName(op)) + " " + PatternName(pattern) +
                      " bs=" + FormatSize(engine.block_size);
  // The sync engine has no queue, so depth, mode and batching mean nothing.
  if (engine_kind == EngineKind::kAio) {
    label += " qd=" + std::to_string(engine.queue_depth) + " " + ModeName(engine.overlap);
  }
  label += " threads=" + std::to_string(engine.threads);
  if (engine_kind == EngineKind::kAio && engine.single_submit) label += " single-submit";
  if (engine_kind == EngineKind::kSync) label += " engine=sync";
  if (buffer != 0) label += " buffer=" + FormatSize(buffer);
  return label;
}

std::vector<Measurement> BenchOptions::Measurements() const {
  Measurement base;
  base.op = op;
  base.pattern = pattern;
  base.engine_kind = engine_kind;
  base.size = size;
  base.buffer = buffer;
  base.engine = engine;
  if (!sweep) return {base};
  std::vector<Measurement> grid;
  for (uint64_t bs : sweep_block_sizes) {
    for (uint32_t qd : sweep_queue_depths) {
      for (bool overlap : {true, false}) {
        Measurement m = base;
        m.engine.block_size = bs;
        m.engine.queue_depth = qd;
        m.engine.overlap = overlap;
        grid.push_back(m);
      }
    }
  }
  return grid;
}

Result<BenchOptions> ParseCommandLine(int argc, const char* const* argv) {
  const po::options_description description = Describe();
  // No positional operands: a stray word is an error, not silently dropped.
  const po::positional_options_description no_positionals;
  auto parsed = tools::ParseStrict(argc, argv, description, no_positionals);
  if (!parsed.ok()) return UsageError("", std::string(parsed.status().detail()));
  const po::variables_map& vm = *parsed;
  BenchOptions out;
  if (vm.count("help")) {
    out.help = true;
    return out;
  }
  out.file = Get(vm, "file");
  if (out.file.empty()) return UsageError("--file", "is required");
  NVSWAPFS_RETURN_IF_ERROR(ParseEnums(vm, &out));
  NVSWAPFS_RETURN_IF_ERROR(ParseNumbers(vm, &out));
  NVSWAPFS_RETURN_IF_ERROR(ParseSweepLists(vm, &out));
  out.engine.single_submit = vm["single-submit"].as<bool>();
  out.vs_fio = vm["vs-fio"].as<bool>();
  out.fio_binary = Get(vm, "fio");
  out.sweep = vm["sweep"].as<bool>();
  out.json = vm["json"].as<bool>();
  out.validate = vm["validate"].as<bool>();
  out.verbose = vm["verbose"].as<bool>();
  NVSWAPFS_RETURN_IF_ERROR(CheckMeasurements(out));
  return out;
}

std::string UsageText() {
  std::ostringstream out;
  out << "Usage: nvswapfs-bench --file PATH --op read|write [options]\n\n"
         "Measures the nvswapfs I/O engine with O_DIRECT on PATH and prints throughput and the\n"
         "latency of single io_submit/io_getevents calls; optionally compares with fio.\n\n"
      << Describe();
  return out.str();
}

std::string UsageErrorLine(const Status& status) {
  return tools::UsageErrorLine("nvswapfs-bench", status);
}

}  // namespace nvswapfs::bench
