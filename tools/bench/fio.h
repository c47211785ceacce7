// Running fio with the parameters of an engine measurement, for --vs-fio.
#pragma once

#include <string>
#include <vector>

#include "nvswapfs/aio/engine.h"
#include "nvswapfs/status.h"
#include "options.h"

namespace nvswapfs::bench {

struct FioResult {
  double bytes_per_second = 0;
  double iops = 0;
  // Completion latency percentiles of single I/Os in microseconds; 0 when
  // fio reported none.
  double clat_p50_us = 0;
  double clat_p99_us = 0;
  double clat_p999_us = 0;
};

// The argv (starting with `fio_binary`) of the fio run matching one engine
// run of `m` on `path`: same file, range, block size, queue depth, batching
// and number of threads (as jobs, each on its own part of the range), with
// O_DIRECT and libaio (psync for the sync engine). The JSON report goes to
// `output`.
std::vector<std::string> FioCommand(const std::string& fio_binary, const std::string& path,
                                    const Measurement& m, const std::string& output);

// Runs fio and returns its result. Fails when fio cannot be started (naming
// the binary), exits non-zero (quoting the end of what it printed), or
// leaves a report without the expected numbers. With `verbose` the command
// line is printed to stderr first.
Result<FioResult> RunFio(const std::string& fio_binary, const std::string& path,
                         const Measurement& m, bool verbose);

// Parses a report written by --output-format=json. Lines fio prints before
// the JSON object (warnings) are skipped.
Result<FioResult> ParseFioReport(const std::string& text, aio::IoOp op);

}  // namespace nvswapfs::bench
