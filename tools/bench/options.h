// Command line of nvswapfs-bench and the measurements it asks for.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../common/command_line.h"
#include "nvswapfs/aio/engine.h"
#include "nvswapfs/status.h"
#include "nvswapfs/units.h"

namespace nvswapfs::bench {

enum class Pattern { kSeq, kRand };
enum class EngineKind { kAio, kSync };

const char* PatternName(Pattern pattern);
const char* EngineKindName(EngineKind kind);
const char* ModeName(bool overlap);

// One point of the parameter space: everything that decides how a single
// engine run (and the matching fio run) moves the first `size` bytes of the
// file.
struct Measurement {
  aio::IoOp op = aio::IoOp::kRead;
  Pattern pattern = Pattern::kSeq;
  EngineKind engine_kind = EngineKind::kAio;
  uint64_t size = 0;
  // Memory the data moves through: 0 for a buffer of `size` bytes, into
  // which the run reads the range (or from which it writes it) as a tensor's
  // swap does; otherwise the range goes through these first `buffer` bytes
  // again and again, as fio cycles through its queue depth's worth.
  uint64_t buffer = 0;
  aio::EngineOptions engine;  // block_size, queue_depth, single_submit, overlap, threads

  uint64_t blocks() const { return size / engine.block_size; }
  uint64_t buffer_bytes() const { return buffer != 0 ? buffer : size; }
  // "write seq bs=1 MiB qd=32 overlap threads=1", plus " single-submit" and
  // " buffer=4 MiB" when set; for the sync engine "write seq bs=1 MiB
  // threads=1 engine=sync".
  std::string Label() const;
};

struct BenchOptions {
  bool help = false;
  std::string file;
  uint64_t size = kGiB;
  uint64_t buffer = 0;  // see Measurement::buffer
  aio::IoOp op = aio::IoOp::kRead;
  Pattern pattern = Pattern::kSeq;
  EngineKind engine_kind = EngineKind::kAio;
  aio::EngineOptions engine;
  bool sweep = false;
  std::vector<uint64_t> sweep_block_sizes;
  std::vector<uint32_t> sweep_queue_depths;
  bool vs_fio = false;
  std::string fio_binary = "fio";
  bool json = false;
  bool validate = false;
  bool verbose = false;
  uint32_t repeat = 3;

  // The single measurement, or the sweep's grid (block size, then queue
  // depth, then mode, in the order given).
  std::vector<Measurement> Measurements() const;
};

// Parses argv. Usage mistakes come back as EINVAL statuses whose subject is
// the option and whose detail says what is wrong (see UsageErrorLine).
// `--help` sets BenchOptions::help and skips every check.
Result<BenchOptions> ParseCommandLine(int argc, const char* const* argv);

// The --help text: every option with its default.
std::string UsageText();

// "nvswapfs-bench: --size: <what is wrong>" for a status from
// ParseCommandLine or from checks made against the opened device.
std::string UsageErrorLine(const Status& status);

// An EINVAL status describing a usage mistake with `option`.
using tools::UsageError;

}  // namespace nvswapfs::bench
