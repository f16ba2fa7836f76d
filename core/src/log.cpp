#include "myotwin/core/log.hpp"

#include <atomic>
#include <iostream>
#include <mutex>

namespace myotwin {

namespace {
std::atomic<LogLevel> g_level{LogLevel::info};
std::atomic<std::ostream*> g_stream{&std::cerr};
std::mutex g_mutex;
} // namespace

void set_log_level(LogLevel level) {
  g_level = level;
}
LogLevel log_level() {
  return g_level;
}
void set_log_stream(std::ostream& out) {
  g_stream = &out;
}

void log_message(LogLevel level, const std::string& message) {
  if (level > g_level.load())
    return;
  const char* prefix = "";
  if (level == LogLevel::error)
    prefix = "error: ";
  if (level == LogLevel::warning)
    prefix = "warning: ";
  std::lock_guard<std::mutex> lock(g_mutex);
  std::ostream& out = *g_stream.load();
  out << prefix << message << '\n';
  out.flush();
}

} // namespace myotwin
