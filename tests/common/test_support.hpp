#pragma once
// Helpers shared by the test suites: a temporary folder per test, and expecting an error whose
// message contains given fragments.

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include <cstdio>
#include <gtest/gtest.h>
#include <sys/wait.h>
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

/// Runs the built `myotwin` executable with `arguments` (a shell fragment), as a user would.
inline CommandResult run_myotwin(const std::string& arguments) {
  const std::string command = std::string(MYOTWIN_EXE) + " " + arguments + " 2>&1";
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

/// A path in single quotes for a shell command line.
inline std::string quoted(const std::filesystem::path& p) {
  return "'" + p.string() + "'";
}

} // namespace myotwin::testing
