// One measurement from start to verdict: interleaved engine and fio runs,
// then the data check.
#pragma once

#include <cstddef>
#include <span>

#include "nvswapfs/status.h"
#include "options.h"
#include "report.h"

namespace nvswapfs::bench {

// Runs `options.repeat` engine runs of `m` on options.file, each with a fresh
// engine, and with --vs-fio as many fio runs, alternating which goes first
// from one round to the next so that drift (device warm-up, neighbours on a
// shared machine) lands on both. Medians are taken later, by the report.
//
// `buffer` holds at least m.size bytes. For writes it must already hold the
// pattern (pattern.h); for reads under --validate the file must already hold
// it (see WritePattern) and the buffer is cleared before each run, so each run
// is checked on what it read itself.
//
// With --validate the file is finally re-read through plain read() and
// compared; if fio wrote last, the engine writes the pattern again first
// (untimed), so what is checked is the engine's data.
//
// Fails on the first error of the engine or of fio; a data mismatch is not an
// error but part of the report.
Result<MeasurementReport> Measure(const BenchOptions& options, const Measurement& m,
                                  std::span<std::byte> buffer);

// Fills `buffer` with the pattern and writes [0, m.size) of it through the
// engine configured as `m` (untimed), so that read measurements can be
// checked.
Status WritePattern(const std::string& path, const Measurement& m, std::span<std::byte> buffer);

}  // namespace nvswapfs::bench
