#include "myotwin/core/process.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <thread>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"

namespace myotwin {

namespace {

std::atomic<pid_t> running_child{0};
std::atomic<bool> stopping{false}; ///< set when an interrupt starts stopping the process

sigset_t interrupt_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

/// Passes `sig` on to the running child and waits up to 10 s for it to end (then kills it).
void stop_child(int sig) {
  const pid_t child = running_child.load();
  if (child <= 0)
    return;
  ::kill(child, sig);
  for (int k = 0; k < 1000; ++k) {
    const pid_t r = ::waitpid(child, nullptr, WNOHANG);
    if (r == child || (r < 0 && errno == ECHILD))
      return; // ended (reaped here or by run_child_process())
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(child, SIGKILL);
}

[[noreturn]] void stop_process(int sig) {
  stopping.store(true);
  stop_child(sig);
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

int run_child_process(const std::filesystem::path& program, const std::vector<std::string>& args) {
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  const std::string path = program.string();
  std::vector<std::string> strings;
  strings.push_back(path);
  strings.insert(strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : strings)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  const sigset_t set = interrupt_signals();
  const pid_t parent = ::getpid();
  std::cout.flush();
  std::cerr.flush();
  const pid_t child = ::fork();
  if (child < 0)
    throw Error("cannot start " + path + ": " + std::strerror(errno));
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) // the parent died before prctl()
      ::_exit(128 + SIGTERM);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGHUP, SIG_DFL);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    ::execv(path.c_str(), argv.data());
    ::_exit(127);
  }
  running_child.store(child);
  int status = 0;
  pid_t r = 0;
  do {
    r = ::waitpid(child, &status, 0);
  } while (r < 0 && errno == EINTR);
  running_child.store(0);
  // A child ended by an interrupt (Ctrl-C reaches the whole process group) means this process
  // is being interrupted too: give the interrupt thread a moment to start, and while it stops
  // the process, do not carry on (it exits with 128 + the signal, not with a stage failure).
  const auto by_interrupt = [](int code) {
    return code == 128 + SIGINT || code == 128 + SIGTERM || code == 128 + SIGHUP;
  };
  if (r == child && ((WIFEXITED(status) && by_interrupt(WEXITSTATUS(status))) ||
                     (WIFSIGNALED(status) && by_interrupt(128 + WTERMSIG(status)))))
    for (int k = 0; k < 100 && !stopping.load(); ++k)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (r < 0 || stopping.load()) // the interrupt thread ends this process
    for (;;)
      std::this_thread::sleep_for(std::chrono::seconds(1));
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

} // namespace myotwin
