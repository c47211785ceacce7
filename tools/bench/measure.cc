#include "measure.h"

#include <cerrno>
#include <cstring>

#include "engine_run.h"
#include "fio.h"
#include "pattern.h"

namespace nvswapfs::bench {
namespace {

class Measurer {
 public:
  Measurer(const BenchOptions& options, const Measurement& m, std::span<std::byte> buffer)
      : options_(options), m_(m), buffer_(buffer.first(m.buffer_bytes())) {
    report_.m = m;
    report_.has_call_latency = m.engine_kind == EngineKind::kAio;
  }

  Result<MeasurementReport> Run() {
    for (uint32_t round = 0; round < options_.repeat; ++round) {
      const bool engine_first = round % 2 == 0;
      if (!engine_first) NVSWAPFS_RETURN_IF_ERROR(FioStep());
      NVSWAPFS_RETURN_IF_ERROR(EngineStep());
      if (engine_first) NVSWAPFS_RETURN_IF_ERROR(FioStep());
    }
    report_.submit = Summarize(latency_.submit);
    report_.reap = Summarize(latency_.reap);
    if (options_.validate) NVSWAPFS_RETURN_IF_ERROR(ValidateFile());
    return std::move(report_);
  }

 private:
  bool CheckReads() const { return options_.validate && m_.op == aio::IoOp::kRead; }

  Status EngineStep() {
    if (CheckReads()) std::memset(buffer_.data(), 0, buffer_.size());
    Result<EngineRun> run = RunEngine(options_.file, m_, buffer_, &latency_);
    if (!run.ok()) return run.status();
    report_.engine_seconds.push_back(run->seconds);
    report_.caller_submit_seconds.push_back(run->submit_seconds);
    report_.short_transfers += run->stats.short_transfers;
    report_.submit_retries += run->stats.submit_retries;
    fio_wrote_last_ = false;
    if (CheckReads() && !report_.validation.fail_offset) {
      report_.validation.fail_offset = FindMismatch(buffer_, 0);
      report_.validation.failed_check = "data the engine read";
    }
    return Status::Ok();
  }

  Status FioStep() {
    if (!options_.vs_fio) return Status::Ok();
    Result<FioResult> fio = RunFio(options_.fio_binary, options_.file, m_, options_.verbose);
    if (!fio.ok()) return fio.status();
    report_.fio.push_back(*fio);
    fio_wrote_last_ = m_.op == aio::IoOp::kWrite;
    return Status::Ok();
  }

  Status ValidateFile() {
    report_.validation.ran = true;
    if (report_.validation.fail_offset) return Status::Ok();
    if (fio_wrote_last_) {
      Result<EngineRun> rewrite = RunEngine(options_.file, m_, buffer_, nullptr);
      if (!rewrite.ok()) return rewrite.status();
    }
    Result<std::optional<uint64_t>> mismatch = CheckFileAgainstPattern(options_.file, m_.size);
    if (!mismatch.ok()) return mismatch.status();
    report_.validation.fail_offset = *mismatch;
    report_.validation.failed_check = "file re-read with read()";
    return Status::Ok();
  }

  const BenchOptions& options_;
  const Measurement m_;
  const std::span<std::byte> buffer_;
  MeasurementReport report_;
  EngineLatency latency_;
  bool fio_wrote_last_ = false;
};

}  // namespace

Result<MeasurementReport> Measure(const BenchOptions& options, const Measurement& m,
                                  std::span<std::byte> buffer) {
  if (buffer.size() < m.buffer_bytes()) {
    return Status::Error(EINVAL, "measure", options.file)
        .WithDetail("buffer smaller than asked for");
  }
  return Measurer(options, m, buffer).Run();
}

Status WritePattern(const std::string& path, const Measurement& m, std::span<std::byte> buffer) {
  if (buffer.size() < m.size) {
    return Status::Error(EINVAL, "write pattern", path).WithDetail("buffer smaller than --size");
  }
  FillPattern(buffer.first(m.size), 0);
  Measurement write = m;
  write.op = aio::IoOp::kWrite;
  Result<EngineRun> run = RunEngine(path, write, buffer, nullptr);
  return run.ok() ? Status::Ok() : run.status();
}

}  // namespace nvswapfs::bench
