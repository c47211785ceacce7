#include "fio.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include "nvswapfs/aio/buffer.h"
#include "nvswapfs/unique_fd.h"
#include "nvswapfs/units.h"

extern char** environ;

namespace nvswapfs::bench {
namespace {

namespace pt = boost::property_tree;

constexpr size_t kMaxQuotedLog = 400;

// A file in $TMPDIR (or /tmp), removed again when this goes out of scope.
class TempFile {
 public:
  static Result<TempFile> Create(const std::string& stem) {
    const char* dir = std::getenv("TMPDIR");
    std::string path =
        std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/" + stem + "-XXXXXX";
    const int fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("create temporary file", path);
    return TempFile(UniqueFd(fd), std::move(path));
  }
  TempFile(TempFile&& other) noexcept
      : fd_(std::move(other.fd_)), path_(std::exchange(other.path_, std::string())) {}
  TempFile& operator=(TempFile&&) = delete;
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  TempFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::string path_;
};

Result<std::string> ReadWhole(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("open", path);
  std::string text;
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("read", path);
    if (n == 0) return text;
    text.append(chunk, static_cast<size_t>(n));
  }
}

// The last lines fio printed, squeezed onto one line for an error message.
std::string TailOfLog(const std::string& log_path) {
  Result<std::string> log = ReadWhole(log_path);
  if (!log.ok() || log->empty()) return "it printed nothing";
  std::string text = *log;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > kMaxQuotedLog) text = "..." + text.substr(text.size() - kMaxQuotedLog);
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  return "it printed: " + text;
}

// fio splits --filename at ':' (a list of files), so colons in a path are
// escaped.
std::string EscapeFioFilename(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == ':') out += '\\';
    out += c;
  }
  return out;
}

const char* FioRw(const Measurement& m) {
  const bool read = m.op == aio::IoOp::kRead;
  if (m.pattern == Pattern::kSeq) return read ? "read" : "write";
  return read ? "randread" : "randwrite";
}

// Runs argv[0] (searched in PATH) with stdin from /dev/null and stdout and
// stderr into `log_fd`; returns its wait status.
Result<int> SpawnAndWait(const std::vector<std::string>& args, int log_fd) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDERR_FILENO);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    Status s = Status::Error(rc, "start fio", args[0]);
    if (rc == ENOENT)
      return std::move(s).WithDetail("fio is not installed or not in PATH; use --fio");
    return s;
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return Status::FromErrno("wait for fio", args[0]);
  }
  return wstatus;
}

std::string JoinCommand(const std::vector<std::string>& args) {
  std::string line;
  for (const std::string& a : args) {
    if (!line.empty()) line += ' ';
    line += a;
  }
  return line;
}

double PercentileUs(const pt::ptree& percentiles, const char* key) {
  // Keys such as "99.900000" contain dots, so the path needs another separator.
  return percentiles.get<double>(pt::ptree::path_type(key, '/'), 0.0) / 1000.0;
}

}  // namespace

uint64_t FioBufferBytes(const Measurement& m) {
  const bool aio = m.engine_kind == EngineKind::kAio;
  return m.engine.threads * (aio ? m.engine.queue_depth : 1) * m.engine.block_size;
}

uint64_t FioHugeBufferBytes(const Measurement& m) {
  const uint64_t per_job = FioBufferBytes(m) / m.engine.threads;
  return m.engine.threads * (RoundUp(per_job, aio::kHugePageSize) + aio::kHugePageSize);
}

uint64_t FreeHugetlbBytes() {
  std::ifstream meminfo("/proc/meminfo");
  uint64_t free_pages = 0;
  uint64_t page_kib = 0;
  for (std::string line; std::getline(meminfo, line);) {
    std::istringstream fields(line);
    std::string key;
    uint64_t value = 0;
    if (!(fields >> key >> value)) continue;
    if (key == "HugePages_Free:") free_pages = value;
    if (key == "Hugepagesize:") page_kib = value;
  }
  return free_pages * page_kib * 1024;
}

std::vector<std::string> FioCommand(const std::string& fio_binary, const std::string& path,
                                    const Measurement& m, const std::string& output,
                                    bool huge_buffers) {
  const bool aio = m.engine_kind == EngineKind::kAio;
  const uint32_t threads = m.engine.threads;
  const uint64_t bs = m.engine.block_size;
  const uint32_t qd = aio ? m.engine.queue_depth : 1;
  std::vector<std::string> args = {
      fio_binary,
      "--name=nvswapfs-vs",
      "--filename=" + EscapeFioFilename(path),
      std::string("--rw=") + FioRw(m),
      "--bs=" + std::to_string(bs),
      "--iodepth=" + std::to_string(qd),
      std::string("--ioengine=") + (aio ? "libaio" : "psync"),
      "--direct=1",
      "--thread",
      "--group_reporting",
      "--output-format=json",
      "--output=" + output,
      "--randrepeat=1",
      // Never measure some other, freshly created file by mistake.
      "--allow_file_create=0",
      "--numjobs=" + std::to_string(threads),
  };
  if (threads == 1) {
    args.push_back("--size=" + std::to_string(m.size));
  } else {
    // The engine splits a request into `threads` contiguous parts; fio's
    // jobs each get one part. Whole blocks only, as fio would round anyway.
    const uint64_t per_job = m.size / threads / bs * bs;
    args.push_back("--size=" + std::to_string(per_job));
    args.push_back("--offset_increment=" + std::to_string(per_job));
  }
  if (huge_buffers) args.push_back("--iomem=shmhuge");
  if (aio && !m.engine.overlap) {
    // Sequential mode: submit a batch, reap all of it, repeat.
    const uint32_t batch = m.engine.single_submit ? 1 : qd;
    args.push_back("--iodepth_batch_submit=" + std::to_string(batch));
    args.push_back("--iodepth_batch_complete_min=" + std::to_string(qd));
  }
  return args;
}

Result<FioResult> RunFio(const std::string& fio_binary, const std::string& path,
                         const Measurement& m, bool verbose) {
  Result<TempFile> report = TempFile::Create("nvswapfs-bench-fio-report");
  if (!report.ok()) return report.status();
  Result<TempFile> log = TempFile::Create("nvswapfs-bench-fio-log");
  if (!log.ok()) return log.status();
  const bool huge = FreeHugetlbBytes() >= FioHugeBufferBytes(m);
  const std::vector<std::string> args = FioCommand(fio_binary, path, m, report->path(), huge);
  if (verbose) std::cerr << "fio command: " << JoinCommand(args) << "\n";

  Result<int> wstatus = SpawnAndWait(args, log->fd());
  if (!wstatus.ok()) return wstatus.status();
  if (!WIFEXITED(*wstatus) || WEXITSTATUS(*wstatus) != 0) {
    const std::string how = WIFEXITED(*wstatus)
                                ? "exited with status " + std::to_string(WEXITSTATUS(*wstatus))
                                : "was killed by signal " + std::to_string(WTERMSIG(*wstatus));
    return Status::Error(EIO, "run fio", fio_binary)
        .WithDetail("fio " + how + "; " + TailOfLog(log->path()));
  }
  Result<std::string> text = ReadWhole(report->path());
  if (!text.ok()) return text.status();
  Result<FioResult> result = ParseFioReport(*text, m.op);
  if (!result.ok()) {
    Status s = std::move(result).take_status();
    const std::string detail = std::string(s.detail()) + "; " + TailOfLog(log->path());
    return std::move(s).WithDetail(detail);
  }
  result->huge_buffers = huge;
  return result;
}

Result<FioResult> ParseFioReport(const std::string& text, aio::IoOp op) {
  auto bad = [](const std::string& why) {
    return Status::Error(EIO, "parse fio report", "fio").WithDetail(why);
  };
  const size_t brace = text.find('{');
  if (brace == std::string::npos) return bad("the report holds no JSON object");
  FioResult result;
  try {
    pt::ptree root;
    std::istringstream in(text.substr(brace));
    pt::read_json(in, root);
    const pt::ptree& jobs = root.get_child("jobs");
    if (jobs.empty()) return bad("the report lists no jobs");
    const pt::ptree& job = jobs.front().second;
    const int error = job.get<int>("error", 0);
    if (error != 0) return bad("the fio job failed with error " + std::to_string(error));
    const pt::ptree& io = job.get_child(op == aio::IoOp::kRead ? "read" : "write");
    result.bytes_per_second = io.get<double>("bw_bytes");
    result.iops = io.get<double>("iops");
    if (auto pct = io.get_child_optional(pt::ptree::path_type("clat_ns/percentile", '/'))) {
      result.clat_p50_us = PercentileUs(*pct, "50.000000");
      result.clat_p99_us = PercentileUs(*pct, "99.000000");
      result.clat_p999_us = PercentileUs(*pct, "99.900000");
    }
  } catch (const pt::ptree_error& e) {
    return bad(e.what());
  }
  if (result.bytes_per_second <= 0) return bad("fio reports no data moved");
  return result;
}

}  // namespace nvswapfs::bench
