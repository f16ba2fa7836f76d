#pragma once
/// \file timer.hpp
/// Wall-clock timing of stages: a Stopwatch, and a ScopedTimer that logs its lifetime.

#include <chrono>
#include <string>

#include "myotwin/core/log.hpp"

namespace myotwin {

/// Measures wall-clock time since construction or the last restart().
class Stopwatch {
public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  void restart() { start_ = std::chrono::steady_clock::now(); }
  /// Seconds since start.
  [[nodiscard]] double elapsed_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

private:
  std::chrono::steady_clock::time_point start_;
};

/// Logs "`name`: T s" at `level` when it goes out of scope.
class ScopedTimer {
public:
  explicit ScopedTimer(std::string name, LogLevel level = LogLevel::debug)
      : name_(std::move(name)), level_(level) {}
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;
  ~ScopedTimer();
  [[nodiscard]] double elapsed_s() const { return watch_.elapsed_s(); }

private:
  std::string name_;
  LogLevel level_;
  Stopwatch watch_;
};

} // namespace myotwin
