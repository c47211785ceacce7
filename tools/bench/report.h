// What nvswapfs-bench found for one measurement, and how it is printed:
// a line (or a sweep table row) for people, a JSON object for scripts.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "fio.h"
#include "nvswapfs/histogram.h"
#include "options.h"

namespace nvswapfs::bench {

struct Percentiles {
  double p50_us = 0;
  double p99_us = 0;
  double p999_us = 0;
  uint64_t count = 0;  // calls measured
};

Percentiles Summarize(const LatencyHistogram& histogram);

struct Validation {
  bool ran = false;
  std::optional<uint64_t> fail_offset;
  std::string failed_check;  // which comparison found the mismatch
};

struct MeasurementReport {
  Measurement m;
  std::vector<double> engine_seconds;  // one per run
  // Per run, how long the caller spent in Submit() calls (all requests go in
  // up front, so under rand this overlaps with the I/O and competes for CPU).
  std::vector<double> caller_submit_seconds;
  std::vector<FioResult> fio;  // one per run; empty without --vs-fio
  // Over all runs; only the aio engine makes these calls.
  bool has_call_latency = false;
  Percentiles submit;
  Percentiles reap;
  uint64_t short_transfers = 0;
  uint64_t submit_retries = 0;
  Validation validation;

  std::vector<double> EngineMiBpsRuns() const;
  std::vector<double> FioMiBpsRuns() const;
  // Medians over the runs.
  double EngineMiBps() const;
  double EngineIops() const;
  double FioMiBps() const;
  double FioIops() const;
  // fio's per-I/O completion latency percentiles, each the median over runs
  // (count is the number of runs).
  Percentiles FioCompletionLatency() const;
};

double Median(std::vector<double> values);

// "write seq bs=1 MiB qd=32 overlap threads=1: engine ... | fio ... | ratio
// ..." followed by indented lines with latencies and per-run numbers, and
// the validation verdict when one was made.
void PrintHuman(std::ostream& out, const MeasurementReport& report);

// The sweep table: a header naming what all rows share, then one row per
// measurement.
void PrintSweepHeader(std::ostream& out, const BenchOptions& options);
void PrintSweepRow(std::ostream& out, const MeasurementReport& report, bool vs_fio);

// One JSON object on one line (no trailing newline).
std::string JsonLine(const MeasurementReport& report, const std::string& file);

// "Validate: Pass" / "Validate: Fail at offset N (<check>)".
std::string ValidationLine(const Validation& validation);

}  // namespace nvswapfs::bench
