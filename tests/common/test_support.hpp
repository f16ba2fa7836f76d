#pragma once
// Helpers shared by the test suites: a temporary folder per test, and expecting an error whose
// message contains given fragments.

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
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

} // namespace myotwin::testing
