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
  // fio's buffers were on huge pages (--iomem=shmhuge), as the engine's are.
  bool huge_buffers = false;
};

// Huge-page memory fio needs for the buffers of `m`: per job, queue depth x
// block size, plus a page for its alignment.
uint64_t FioHugeBufferBytes(const Measurement& m);

// The memory fio moves the data through: a block per I/O it keeps in flight,
// in each job.
uint64_t FioBufferBytes(const Measurement& m);

// Free hugetlb memory (HugePages_Free x Hugepagesize in /proc/meminfo); 0
// when there is none or it cannot be read.
uint64_t FreeHugetlbBytes();

// The argv (starting with `fio_binary`) of the fio run matching one engine
// run of `m` on `path`: same file, range, block size, queue depth, batching
// and number of threads (as jobs, each on its own part of the range), with
// O_DIRECT and libaio (psync for the sync engine). The JSON report goes to
// `output`. With `huge_buffers`, fio's buffers are on huge pages.
std::vector<std::string> FioCommand(const std::string& fio_binary, const std::string& path,
                                    const Measurement& m, const std::string& output,
                                    bool huge_buffers);

// Runs fio and returns its result, with its buffers on huge pages when enough
// hugetlb pages are free (sysctl vm.nr_hugepages), as the engine's buffers
// are on transparent huge pages: from 4 KiB pages a large O_DIRECT transfer
// is one segment per page, which a device with a lower segment limit splits,
// and fio would then understate the device. Fails when fio cannot be started (naming
// the binary), exits non-zero (quoting the end of what it printed), or
// leaves a report without the expected numbers. With `verbose` the command
// line is printed to stderr first.
Result<FioResult> RunFio(const std::string& fio_binary, const std::string& path,
                         const Measurement& m, bool verbose);

// Parses a report written by --output-format=json. Lines fio prints before
// the JSON object (warnings) are skipped.
Result<FioResult> ParseFioReport(const std::string& text, aio::IoOp op);

}  // namespace nvswapfs::bench
