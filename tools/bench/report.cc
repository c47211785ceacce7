#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "nvswapfs/units.h"

namespace nvswapfs::bench {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

__attribute__((format(printf, 1, 2))) std::string Printf(const char* format, ...) {
  char buf[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  return buf;
}

// A JSON object built key by key. Distinct method names per type keep a
// string literal from silently becoming a bool.
class JsonObject {
 public:
  void AddString(std::string_view key, std::string_view value) {
    Key(key);
    body_ += '"';
    for (char c : value) {
      if (c == '"' || c == '\\') {
        body_ += '\\';
        body_ += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        body_ += Printf("\\u%04x", static_cast<unsigned>(c));
      } else {
        body_ += c;
      }
    }
    body_ += '"';
  }
  void AddInt(std::string_view key, uint64_t value) {
    Key(key);
    body_ += std::to_string(value);
  }
  void AddNumber(std::string_view key, double value, int decimals = 3) {
    Key(key);
    body_ += Number(value, decimals);
  }
  void AddBool(std::string_view key, bool value) {
    Key(key);
    body_ += value ? "true" : "false";
  }
  void AddNull(std::string_view key) {
    Key(key);
    body_ += "null";
  }
  void AddNumbers(std::string_view key, const std::vector<double>& values) {
    Key(key);
    body_ += '[';
    for (size_t i = 0; i < values.size(); ++i) {
      if (i != 0) body_ += ',';
      body_ += Number(values[i], 3);
    }
    body_ += ']';
  }
  std::string Finish() const { return "{" + body_ + "}"; }

 private:
  static std::string Number(double value, int decimals) {
    // JSON has no NaN or infinity.
    return std::isfinite(value) ? Printf("%.*f", decimals, value) : "null";
  }
  void Key(std::string_view key) {
    if (!body_.empty()) body_ += ',';
    body_ += '"';
    body_ += key;
    body_ += "\":";
  }
  std::string body_;
};

double GBps(double mibps) {
  return mibps * kMiB / 1e9;
}

std::string LatencyTriple(const Percentiles& p) {
  return Printf("p50=%.1f p99=%.1f p99.9=%.1f", p.p50_us, p.p99_us, p.p999_us);
}

std::string RunList(const std::vector<double>& values) {
  std::string out;
  for (double v : values) out += Printf(" %.1f", v);
  return out;
}

void AddLatency(JsonObject& json, const char* name, const Percentiles& p, bool present) {
  const std::string prefix = name;
  for (auto [suffix, value] : {std::pair{"_p50_us", p.p50_us}, std::pair{"_p99_us", p.p99_us},
                               std::pair{"_p999_us", p.p999_us}}) {
    if (present) {
      json.AddNumber(prefix + suffix, value, 1);
    } else {
      json.AddNull(prefix + suffix);
    }
  }
  json.AddInt(prefix + "_calls", p.count);
}

}  // namespace

Percentiles Summarize(const LatencyHistogram& histogram) {
  Percentiles p;
  p.count = histogram.count();
  p.p50_us = static_cast<double>(histogram.Percentile(0.50)) / 1000.0;
  p.p99_us = static_cast<double>(histogram.Percentile(0.99)) / 1000.0;
  p.p999_us = static_cast<double>(histogram.Percentile(0.999)) / 1000.0;
  return p;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

std::vector<double> MeasurementReport::EngineMiBpsRuns() const {
  std::vector<double> rates;
  for (double s : engine_seconds) rates.push_back(static_cast<double>(m.size) / kMiB / s);
  return rates;
}

std::vector<double> MeasurementReport::FioMiBpsRuns() const {
  std::vector<double> rates;
  for (const FioResult& f : fio) rates.push_back(f.bytes_per_second / kMiB);
  return rates;
}

double MeasurementReport::EngineMiBps() const {
  return Median(EngineMiBpsRuns());
}

double MeasurementReport::EngineIops() const {
  // Every run moves the same blocks, so IOPS is throughput in other units.
  return EngineMiBps() * kMiB / static_cast<double>(m.engine.block_size);
}

double MeasurementReport::FioMiBps() const {
  return Median(FioMiBpsRuns());
}

double MeasurementReport::FioIops() const {
  std::vector<double> iops;
  for (const FioResult& f : fio) iops.push_back(f.iops);
  return Median(iops);
}

Percentiles MeasurementReport::FioCompletionLatency() const {
  std::vector<double> p50, p99, p999;
  for (const FioResult& f : fio) {
    p50.push_back(f.clat_p50_us);
    p99.push_back(f.clat_p99_us);
    p999.push_back(f.clat_p999_us);
  }
  return Percentiles{Median(p50), Median(p99), Median(p999), fio.size()};
}

void PrintHuman(std::ostream& out, const MeasurementReport& r) {
  const double engine = r.EngineMiBps();
  out << r.m.Label() << ": engine "
      << Printf("%.1f MiB/s (%.2f GB/s, %.0f IOPS)", engine, GBps(engine), r.EngineIops());
  if (!r.fio.empty()) {
    const double fio = r.FioMiBps();
    out << Printf(" | fio %.1f MiB/s (%.2f GB/s, %.0f IOPS) | ratio %.3f", fio, GBps(fio),
                  r.FioIops(), engine / fio);
  }
  out << "\n";
  if (!r.fio.empty() && FioBufferBytes(r.m) != r.m.buffer_bytes()) {
    out << "  memory: the engine's data went through " << FormatSize(r.m.buffer_bytes())
        << ", fio's through " << FormatSize(FioBufferBytes(r.m))
        << " (--buffer sets the engine's; some hosts serve a device faster into less)\n";
  }
  if (!r.fio.empty() && !r.fio.front().huge_buffers) {
    out << "  fio's buffers were on 4 KiB pages, the engine's on huge pages: free huge pages "
           "(sysctl vm.nr_hugepages) let fio use them too\n";
  }
  if (r.has_call_latency) {
    out << "  io_submit " << LatencyTriple(r.submit) << " us; io_getevents "
        << LatencyTriple(r.reap) << " us"
        << Printf(" (%llu + %llu calls", static_cast<unsigned long long>(r.submit.count),
                  static_cast<unsigned long long>(r.reap.count))
        << (r.engine_seconds.size() > 1 ? " over all runs)" : ")") << "\n";
  }
  if (const Percentiles clat = r.FioCompletionLatency(); clat.p50_us > 0) {
    out << "  fio completion latency (median of runs) " << LatencyTriple(clat) << " us\n";
  }
  if (r.m.pattern == Pattern::kRand && r.m.engine_kind == EngineKind::kAio) {
    out << Printf(
        "  caller's Submit() of %llu requests took %.1f ms of the %.1f ms run (medians)\n",
        static_cast<unsigned long long>(r.m.blocks()), Median(r.caller_submit_seconds) * 1e3,
        Median(r.engine_seconds) * 1e3);
  }
  if (r.short_transfers != 0 || r.submit_retries != 0) {
    out << "  engine saw " << r.short_transfers << " short transfers and " << r.submit_retries
        << " io_submit retries\n";
  }
  if (r.engine_seconds.size() > 1) {
    out << "  runs (MiB/s): engine" << RunList(r.EngineMiBpsRuns());
    if (!r.fio.empty()) out << " | fio" << RunList(r.FioMiBpsRuns());
    out << "\n";
  }
  if (r.validation.ran) out << ValidationLine(r.validation) << "\n";
}

void PrintSweepHeader(std::ostream& out, const BenchOptions& o) {
  out << "Sweep: " << aio::IoOpName(o.op) << " " << PatternName(o.pattern)
      << " size=" << FormatSize(o.size) << " threads=" << o.engine.threads
      << " single_submit=" << (o.engine.single_submit ? 1 : 0)
      << " engine=" << EngineKindName(o.engine_kind) << "; medians of " << o.repeat
      << " run(s); latencies are of single io_submit/io_getevents calls\n";
  out << Printf("%-9s %4s %-10s %12s %9s %8s %8s", "block", "qd", "mode", "engine MiB/s", "IOPS",
                "sub p99", "reap p99");
  if (o.vs_fio) out << Printf(" %10s %6s", "fio MiB/s", "ratio");
  if (o.validate) out << "  valid";
  out << "\n";
}

void PrintSweepRow(std::ostream& out, const MeasurementReport& r, bool vs_fio) {
  const double engine = r.EngineMiBps();
  out << Printf("%-9s %4u %-10s %12.1f %9.0f", FormatSize(r.m.engine.block_size).c_str(),
                r.m.engine.queue_depth, ModeName(r.m.engine.overlap), engine, r.EngineIops());
  if (r.has_call_latency) {
    out << Printf(" %8.1f %8.1f", r.submit.p99_us, r.reap.p99_us);
  } else {
    out << Printf(" %8s %8s", "-", "-");
  }
  if (vs_fio) out << Printf(" %10.1f %6.3f", r.FioMiBps(), engine / r.FioMiBps());
  if (r.validation.ran) {
    out << (r.validation.fail_offset ? "  FAIL@" + std::to_string(*r.validation.fail_offset)
                                     : std::string("  pass"));
  }
  out << "\n";
}

std::string JsonLine(const MeasurementReport& r, const std::string& file) {
  JsonObject json;
  json.AddString("file", file);
  json.AddString("op", aio::IoOpName(r.m.op));
  json.AddString("pattern", PatternName(r.m.pattern));
  json.AddInt("block_size", r.m.engine.block_size);
  json.AddInt("queue_depth", r.m.engine.queue_depth);
  json.AddString("mode", ModeName(r.m.engine.overlap));
  json.AddInt("threads", r.m.engine.threads);
  json.AddBool("single_submit", r.m.engine.single_submit);
  json.AddInt("size", r.m.size);
  json.AddInt("buffer", r.m.buffer_bytes());
  json.AddString("engine", EngineKindName(r.m.engine_kind));
  json.AddInt("repeat", r.engine_seconds.size());
  json.AddNumber("engine_MiBps", r.EngineMiBps());
  json.AddNumber("engine_GBps", GBps(r.EngineMiBps()), 4);
  json.AddNumber("engine_iops", r.EngineIops(), 1);
  json.AddNumbers("engine_runs_MiBps", r.EngineMiBpsRuns());
  json.AddNumber("engine_run_ms", Median(r.engine_seconds) * 1e3);
  json.AddNumber("caller_submit_ms", Median(r.caller_submit_seconds) * 1e3);
  AddLatency(json, "submit", r.submit, r.has_call_latency);
  AddLatency(json, "reap", r.reap, r.has_call_latency);
  json.AddInt("short_transfers", r.short_transfers);
  json.AddInt("submit_retries", r.submit_retries);
  if (!r.fio.empty()) {
    json.AddNumber("fio_MiBps", r.FioMiBps());
    json.AddNumber("fio_GBps", GBps(r.FioMiBps()), 4);
    json.AddNumber("fio_iops", r.FioIops(), 1);
    json.AddNumbers("fio_runs_MiBps", r.FioMiBpsRuns());
    json.AddBool("fio_huge_buffers", r.fio.front().huge_buffers);
    json.AddInt("fio_buffer", FioBufferBytes(r.m));
    const Percentiles clat = r.FioCompletionLatency();
    json.AddNumber("fio_clat_p50_us", clat.p50_us, 1);
    json.AddNumber("fio_clat_p99_us", clat.p99_us, 1);
    json.AddNumber("fio_clat_p999_us", clat.p999_us, 1);
    json.AddNumber("ratio", r.EngineMiBps() / r.FioMiBps(), 4);
  }
  if (r.validation.ran) {
    json.AddString("validate", r.validation.fail_offset ? "fail" : "pass");
    if (r.validation.fail_offset) {
      json.AddInt("validate_fail_offset", *r.validation.fail_offset);
      json.AddString("validate_failed_check", r.validation.failed_check);
    }
  }
  return json.Finish();
}

std::string ValidationLine(const Validation& v) {
  if (!v.fail_offset) return "Validate: Pass";
  return "Validate: Fail at offset " + std::to_string(*v.fail_offset) + " (" + v.failed_check + ")";
}

}  // namespace nvswapfs::bench
