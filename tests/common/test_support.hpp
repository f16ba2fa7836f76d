#pragma once
// Helpers shared by the test suites: a temporary folder per test, and expecting an error whose
// message contains given fragments.

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace myotwin::testing {

/// A fresh temporary folder, removed with its contents at the end of the test.
class TempDir {
public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name =
        "myotwin-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
    if (info != nullptr)
      name += std::string("-") + info->name();
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(const std::string& name) const {
    return path_ / name;
  }

private:
  std::filesystem::path path_;
};

/// Runs `f`, expects it to throw `E`, and checks that the message contains every fragment.
template <class E, class F> void expect_error(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "expected an exception";
  } catch (const E& e) {
    const std::string message = e.what();
    for (const auto& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "message \"" << message << "\" lacks \"" << fragment << "\"";
    }
  }
}

/// The folder of the real data beside the project, or empty when absent.
inline std::filesystem::path shared_data(const std::string& relative) {
  const std::filesystem::path p = std::filesystem::path(MYOTWIN_SHARED_DATA) / relative;
  return std::filesystem::exists(p) ? p : std::filesystem::path();
}

/// What running the `myotwin` executable printed and returned.
struct CommandResult {
  int exit_code = -1;
  std::string output; ///< stdout and stderr together
};

/// Runs the shell command line `command` (standard error with standard output).
inline CommandResult run_shell(const std::string& command_line) {
  const std::string command = command_line + " 2>&1";
  CommandResult r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr)
    return r;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr)
    r.output += buffer;
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// Runs the built `myotwin` executable with `arguments` (a shell fragment), as a user would.
inline CommandResult run_myotwin(const std::string& arguments) {
  return run_shell(std::string(MYOTWIN_EXE) + " " + arguments);
}

/// A `myotwin` process started in the background with `args` (no shell: its pid is myotwin's),
/// standard output and error going to `log`. Killed (SIGKILL) if still running at destruction.
class BackgroundMyotwin {
public:
  BackgroundMyotwin(const std::vector<std::string>& args, const std::filesystem::path& log) {
    std::vector<std::string> strings{MYOTWIN_EXE};
    strings.insert(strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : strings)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log_name = log.string();
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~BackgroundMyotwin() {
    if (pid_ > 0 && exit_code_ < 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  BackgroundMyotwin(const BackgroundMyotwin&) = delete;
  BackgroundMyotwin& operator=(const BackgroundMyotwin&) = delete;
  [[nodiscard]] pid_t pid() const { return pid_; }
  /// Waits up to `timeout_s` for the process to end; its exit code (128 + N when signal N ended
  /// it), or -1 when it still runs.
  int wait(double timeout_s) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (exit_code_ < 0 && std::chrono::steady_clock::now() < end) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_)
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return exit_code_;
  }

private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

/// The children of process `pid` (from /proc/PID/task/TID/children).
inline std::vector<pid_t> child_pids(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (auto it = std::filesystem::directory_iterator(tasks, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::ifstream in(it->path() / "children");
    pid_t child = 0;
    while (in >> child)
      out.push_back(child);
  }
  return out;
}

/// True while process `pid` exists and is not a zombie.
inline bool process_running(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line))
    return false;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

/// The temporary files (`.tmp-*`, `.myotwin-write-test-*`) below `dir`.
inline std::vector<std::filesystem::path> temporary_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(".tmp-", 0) == 0 || name.rfind(".myotwin-write-test-", 0) == 0)
      out.push_back(it->path());
  }
  return out;
}

/// Waits up to `timeout_s` until a `.tmp-*` file (an atomic write in progress) appears in `dir`.
inline bool wait_for_temporary_file(const std::filesystem::path& dir, double timeout_s) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < end) {
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(dir, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
      if (it->path().filename().string().rfind(".tmp-", 0) == 0)
        return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

/// The contents of a text file, or empty when it cannot be read.
inline std::string file_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A path in single quotes for a shell command line.
inline std::string quoted(const std::filesystem::path& p) {
  return "'" + p.string() + "'";
}

} // namespace myotwin::testing
