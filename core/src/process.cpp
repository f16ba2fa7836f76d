#include "myotwin/core/process.hpp"

#include <atomic>
#include <csignal>
#include <string>
#include <thread>

#include <unistd.h>

#include "myotwin/core/files.hpp"

namespace myotwin {

namespace {

sigset_t interrupt_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

[[noreturn]] void stop_process(int sig) {
  const std::size_t n_removed = remove_registered_temporaries();
  const std::string message =
      std::string("\nmyotwin: interrupted by ") +
      (sig == SIGINT    ? "SIGINT"
       : sig == SIGTERM ? "SIGTERM"
                        : "SIGHUP") +
      "; stopped" +
      (n_removed > 0 ? " and removed " + std::to_string(n_removed) + " unfinished temporary file(s)"
                     : std::string()) +
      "\n";
  // write(2), not std::cerr: other threads may be using the streams.
  [[maybe_unused]] const auto n = ::write(STDERR_FILENO, message.data(), message.size());
  ::_exit(128 + sig);
}

} // namespace

void install_interrupt_handling() {
  static std::atomic<bool> installed{false};
  if (installed.exchange(true))
    return;
  const sigset_t set = interrupt_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) == 0)
        stop_process(sig);
    }
  }).detach();
}

} // namespace myotwin
