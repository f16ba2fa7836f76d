#include "myotwin/core/progress.hpp"

#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <memory>
#include <sstream>

#include <unistd.h>

namespace myotwin {

ProgressReporter::ProgressReporter(ProgressCallback callback, std::string task, std::size_t total)
    : callback_(std::move(callback)), task_(std::move(task)), total_(total) {
  if (callback_)
    callback_(ProgressEvent{task_, 0, total_});
}

void ProgressReporter::advance(std::size_t n) {
  const std::size_t done = done_.fetch_add(n) + n;
  if (!callback_ || total_ == 0)
    return;
  const std::size_t percent = std::min<std::size_t>(100, done * 100 / total_);
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_ || percent <= last_percent_reported_)
    return;
  last_percent_reported_ = percent;
  if (done >= total_)
    finished_ = true;
  callback_(ProgressEvent{task_, std::min(done, total_), total_});
}

void ProgressReporter::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_)
    return;
  finished_ = true;
  if (callback_)
    callback_(ProgressEvent{task_, total_, total_});
}

namespace {

/// Draws one bar per task, redrawn in place.
struct BarRenderer {
  std::ostream* out;
  void operator()(const ProgressEvent& e) const {
    constexpr int width = 30;
    const double fraction = e.total == 0 ? 1.0 : static_cast<double>(e.done) / e.total;
    const int filled = static_cast<int>(fraction * width);
    std::ostringstream line;
    line << '\r' << e.task << " [" << std::string(filled, '#') << std::string(width - filled, '.')
         << "] " << std::setw(3) << static_cast<int>(fraction * 100.0) << "% (" << e.done << "/"
         << e.total << ")";
    if (e.done >= e.total)
      line << '\n';
    *out << line.str() << std::flush;
  }
};

/// Writes a plain line at the start, at every 10 % and at the end of each task.
struct LineRenderer {
  std::ostream* out;
  std::shared_ptr<std::pair<std::string, int>> last =
      std::make_shared<std::pair<std::string, int>>("", -1);
  void operator()(const ProgressEvent& e) const {
    const int decile = e.total == 0 ? 10 : static_cast<int>(e.done * 10 / e.total);
    if (last->first == e.task && decile <= last->second)
      return;
    *last = {e.task, decile};
    *out << e.task << ": " << e.done << "/" << e.total << " ("
         << (e.total == 0 ? 100 : e.done * 100 / e.total) << "%)\n"
         << std::flush;
  }
};

} // namespace

ProgressCallback make_console_progress(std::ostream& out, bool interactive) {
  if (interactive)
    return BarRenderer{&out};
  return LineRenderer{&out};
}

bool stderr_is_interactive() {
  const char* ci = std::getenv("CI");
  if (ci != nullptr && *ci != '\0')
    return false;
  return ::isatty(STDERR_FILENO) != 0;
}

} // namespace myotwin
