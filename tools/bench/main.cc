// nvswapfs-bench: throughput and call latency of the nvswapfs I/O engine on
// a file or device, optionally side by side with fio. See --help.

#include <sys/stat.h>

#include <cerrno>
#include <iostream>
#include <ostream>

#include "../common/command_line.h"
#include "engine_run.h"
#include "measure.h"
#include "nvswapfs/aio/block_device.h"
#include "nvswapfs/aio/buffer.h"
#include "nvswapfs/units.h"
#include "options.h"
#include "pattern.h"
#include "report.h"

namespace nvswapfs::bench {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // an I/O error, fio failing, or a data mismatch
constexpr int kExitUsage = 2;

int Fail(const Status& status) {
  std::cerr << "nvswapfs-bench: " << status.ToString() << "\n";
  return kExitFailure;
}

// Creates the file, or grows it to `size`, preallocated so that no run
// measures block allocation. Block devices and large enough files are left
// alone.
Status PrepareFile(const std::string& path, uint64_t size, std::ostream& notes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::FromErrno("stat", path);
    NVSWAPFS_RETURN_IF_ERROR(aio::CreateImageFile(path, size, /*preallocate=*/true));
    notes << "Created " << path << " (" << FormatSize(size) << ", preallocated)\n";
    return Status::Ok();
  }
  const auto current = static_cast<uint64_t>(st.st_size);
  if (S_ISREG(st.st_mode) && current < size) {
    NVSWAPFS_RETURN_IF_ERROR(aio::CreateImageFile(path, size, /*preallocate=*/true));
    notes << "Extended " << path << " from " << FormatSize(current) << " to " << FormatSize(size)
          << " (preallocated)\n";
  }
  return Status::Ok();
}

// Checks what can only be checked against the open device. A block size the
// device cannot take is a usage mistake (exit 2); a device too small is not.
int CheckDevice(const BenchOptions& options, const std::vector<Measurement>& measurements) {
  Result<aio::DeviceInfo> info = ProbeDevice(options.file);
  if (!info.ok()) return Fail(info.status());
  if (info->size < options.size) {
    return Fail(Status::Error(ENOSPC, "check size", options.file)
                    .WithDetail("it holds " + FormatSize(info->size) + " but --size asks for " +
                                FormatSize(options.size)));
  }
  for (const Measurement& m : measurements) {
    if (m.engine.block_size % info->logical_block_size != 0) {
      std::cerr << UsageErrorLine(UsageError(options.sweep ? "--sweep-block-sizes" : "--block-size",
                                             FormatSize(m.engine.block_size) +
                                                 " is not a multiple of the " +
                                                 std::to_string(info->logical_block_size) +
                                                 "-byte logical block size of " + options.file))
                << "\n";
      return kExitUsage;
    }
    Status valid = m.engine.Validate(info->logical_block_size);
    if (!valid.ok()) return Fail(valid);
  }
  return kExitOk;
}

void Print(const BenchOptions& options, const MeasurementReport& report) {
  if (options.json) {
    std::cout << JsonLine(report, options.file) << std::endl;
    // The verdict is in the JSON; repeat it on stderr for people watching.
    if (report.validation.ran) {
      std::cerr << ValidationLine(report.validation) << " [" << report.m.Label() << "]\n";
    }
  } else if (options.sweep) {
    PrintSweepRow(std::cout, report, options.vs_fio);
    std::cout.flush();
  } else {
    PrintHuman(std::cout, report);
    std::cout.flush();
  }
}

int Run(const BenchOptions& options) {
  // Under --json stdout carries JSON only.
  std::ostream& notes = options.json ? std::cerr : std::cout;
  const Status prepared = PrepareFile(options.file, options.size, notes);
  if (!prepared.ok()) return Fail(prepared);
  const std::vector<Measurement> measurements = options.Measurements();
  if (const int rc = CheckDevice(options, measurements); rc != kExitOk) return rc;

  // Every measurement shares --size and --buffer.
  Result<aio::AlignedBuffer> buffer =
      aio::AlignedBuffer::Allocate(measurements.front().buffer_bytes());
  if (!buffer.ok()) return Fail(buffer.status());
  if (options.op == aio::IoOp::kWrite) {
    FillPattern(buffer->span(), 0);
  } else if (options.validate) {
    const Status written = WritePattern(options.file, measurements.front(), buffer->span());
    if (!written.ok()) return Fail(written);
    notes << "Wrote the validation pattern to " << options.file << " through the engine\n";
  }

  if (options.sweep && !options.json) PrintSweepHeader(std::cout, options);
  bool mismatch = false;
  for (const Measurement& m : measurements) {
    Result<MeasurementReport> report = Measure(options, m, buffer->span());
    if (!report.ok()) return Fail(report.status());
    Print(options, *report);
    if (report->validation.fail_offset) mismatch = true;
  }
  if (options.sweep && options.validate && !options.json) {
    std::cout << (mismatch ? "Validate: Fail (see the rows marked FAIL)" : "Validate: Pass")
              << "\n";
  }
  return mismatch ? kExitFailure : kExitOk;
}

int Main(int argc, char** argv) {
  return tools::StartMain(ParseCommandLine(argc, argv), kExitUsage, UsageErrorLine, UsageText, "",
                          Run);
}

}  // namespace
}  // namespace nvswapfs::bench

int main(int argc, char** argv) {
  return nvswapfs::bench::Main(argc, argv);
}
