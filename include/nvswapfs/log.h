// One line per event, to stderr, syslog or a file.
//
// The daemon logs to stderr in the foreground and to syslog in the
// background unless told otherwise. Thread-safe; a line is written whole.
#pragma once

#include <string>
#include <string_view>

#include "nvswapfs/status.h"

namespace nvswapfs {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// `destination` is "stderr", "syslog", or a file path (appended to). Debug
// lines are dropped unless `debug`.
Status ConfigureLog(std::string_view destination, std::string_view ident, bool debug);

void Log(LogLevel level, std::string_view message);
inline void LogDebug(std::string_view m) {
  Log(LogLevel::kDebug, m);
}
inline void LogInfo(std::string_view m) {
  Log(LogLevel::kInfo, m);
}
inline void LogWarning(std::string_view m) {
  Log(LogLevel::kWarning, m);
}
inline void LogError(std::string_view m) {
  Log(LogLevel::kError, m);
}

}  // namespace nvswapfs
