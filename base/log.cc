#include "nvswapfs/log.h"

#include <fcntl.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace nvswapfs {
namespace {

enum class Sink { kStderr, kSyslog, kFile };

struct LogState {
  std::mutex mu;
  Sink sink = Sink::kStderr;
  int fd = STDERR_FILENO;
  bool debug = false;
  std::string ident = "nvswapfs";
};

LogState& State() {
  static LogState state;
  return state;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

int SyslogPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return LOG_DEBUG;
    case LogLevel::kInfo:
      return LOG_INFO;
    case LogLevel::kWarning:
      return LOG_WARNING;
    case LogLevel::kError:
      return LOG_ERR;
  }
  return LOG_INFO;
}

}  // namespace

Status ConfigureLog(std::string_view destination, std::string_view ident, bool debug) {
  LogState& st = State();
  std::lock_guard lock(st.mu);
  st.debug = debug;
  st.ident = ident;
  if (st.sink == Sink::kFile && st.fd >= 0) ::close(st.fd);
  if (destination == "stderr") {
    st.sink = Sink::kStderr;
    st.fd = STDERR_FILENO;
  } else if (destination == "syslog") {
    st.sink = Sink::kSyslog;
    ::openlog(st.ident.c_str(), LOG_PID, LOG_DAEMON);
  } else {
    const std::string path(destination);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
      st.sink = Sink::kStderr;
      st.fd = STDERR_FILENO;
      return Status::FromErrno("open log", path);
    }
    st.sink = Sink::kFile;
    st.fd = fd;
  }
  return Status::Ok();
}

void Log(LogLevel level, std::string_view message) {
  LogState& st = State();
  if (level == LogLevel::kDebug && !st.debug) return;
  std::lock_guard lock(st.mu);
  if (st.sink == Sink::kSyslog) {
    ::syslog(SyslogPriority(level), "%.*s", static_cast<int>(message.size()), message.data());
    return;
  }
  // "2026-11-24T14:03:12.345Z nvswapfs[123] error: write failed on ..."
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char stamp[40];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string line = std::string(stamp) + "." + std::to_string(1000 + millis).substr(1) + "Z " +
                     st.ident + "[" + std::to_string(::getpid()) + "] " + LevelName(level) + ": ";
  line.append(message);
  line += '\n';
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(st.fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // nowhere left to report a failing log
    done += static_cast<size_t>(n);
  }
}

}  // namespace nvswapfs
