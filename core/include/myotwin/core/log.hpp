#pragma once
/// \file log.hpp
/// Levelled logging to standard error (or a stream set by the app). Thread-safe; each message is
/// written as one line. `--quiet` sets the level to `warning`.

#include <ostream>
#include <sstream>
#include <string>

namespace myotwin {

enum class LogLevel { error = 0, warning = 1, info = 2, debug = 3 };

/// Messages above `level` are dropped. Default: info.
void set_log_level(LogLevel level);
/// The current level.
LogLevel log_level();
/// Where messages go (default std::cerr). The stream must outlive its use.
void set_log_stream(std::ostream& out);
/// Writes one line at `level` ("warning: ..." / "error: ..." prefixes; info and debug plain).
void log_message(LogLevel level, const std::string& message);

namespace detail {
template <class... Args> std::string concat(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}
} // namespace detail

template <class... Args> void log_error(const Args&... args) {
  if (log_level() >= LogLevel::error)
    log_message(LogLevel::error, detail::concat(args...));
}
template <class... Args> void log_warning(const Args&... args) {
  if (log_level() >= LogLevel::warning)
    log_message(LogLevel::warning, detail::concat(args...));
}
template <class... Args> void log_info(const Args&... args) {
  if (log_level() >= LogLevel::info)
    log_message(LogLevel::info, detail::concat(args...));
}
template <class... Args> void log_debug(const Args&... args) {
  if (log_level() >= LogLevel::debug)
    log_message(LogLevel::debug, detail::concat(args...));
}

} // namespace myotwin
