#pragma once
/// \file progress.hpp
/// Progress of long work. Library code reports through a ProgressCallback (usually via a
/// ProgressReporter, which is thread-safe and throttles); the app renders the events as a bar on
/// a terminal or as sparse plain lines in logs and CI.

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>

namespace myotwin {

/// One progress event: `done` of `total` units of `task` are complete.
struct ProgressEvent {
  std::string task;
  std::size_t done = 0;
  std::size_t total = 0;
};

/// Receives progress events; may be empty (no reporting).
using ProgressCallback = std::function<void(const ProgressEvent&)>;

/// Counts completed units of one task from any thread and forwards an event to the callback at
/// most once per percent (always at the start and at the end).
class ProgressReporter {
public:
  /// `callback` may be empty; `total` units of work named `task`.
  ProgressReporter(ProgressCallback callback, std::string task, std::size_t total);
  /// Marks `n` more units done. Thread-safe.
  void advance(std::size_t n = 1);
  /// Reports completion (done = total) if not yet reported.
  void finish();

private:
  ProgressCallback callback_;
  std::string task_;
  std::size_t total_;
  std::atomic<std::size_t> done_{0};
  std::size_t last_percent_reported_ = 0;
  bool finished_ = false;
  std::mutex mutex_;
};

/// A renderer for `out`: with `interactive` a bar redrawn in place (carriage return), otherwise
/// one plain line at the start, at every 10 % and at the end of each task.
ProgressCallback make_console_progress(std::ostream& out, bool interactive);

/// True when standard error is a terminal (and CI is not set).
bool stderr_is_interactive();

} // namespace myotwin
