#pragma once
/// \file fuzz_support.hpp
/// Shared by the libFuzzer targets (clang, MYOTWIN_FUZZ=ON) and their corpus replay in the
/// normal suite (tests/fuzz/replay_main.cpp): a private temporary folder for readers that need a
/// path, and the rule that a reader may refuse an input only with the project's input-error
/// types (BadInput, IoError: exit code 2). Any other exception escapes and is a finding.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/resources.hpp"

namespace myotwin::fuzz {

/// A folder only this process writes to (mkdtemp under $TMPDIR or /tmp), removed at exit.
inline const std::filesystem::path& private_dir() {
  static const std::filesystem::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/myotwin-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr)
      std::abort();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(private_dir(), ec);
    });
    return std::filesystem::path(pattern);
  }();
  return dir;
}

/// Writes the input to `private_dir()/name` (replacing it) and returns the path.
inline std::filesystem::path write_input(const std::uint8_t* data, std::size_t size,
                                         const std::string& name) {
  const std::filesystem::path path = private_dir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out)
    std::abort();
  return path;
}

/// Once per process: quiet logging and a memory limit of 256 MiB for the estimates, so that an
/// input whose header claims gigabytes is refused by the estimate (the mechanism under test)
/// instead of hitting the fuzzer's RSS limit.
inline void setup_once() {
  static const bool done = [] {
    set_log_level(LogLevel::error);
    set_memory_limit_bytes(256.0 * 1024.0 * 1024.0);
    return true;
  }();
  (void)done;
}

/// Runs `read` on one input; refusing it with an input error (exit code 2) is fine.
template <class F> void refuse_only_with_input_errors(F&& read) {
  setup_once();
  try {
    read();
  } catch (const Error& e) {
    if (e.exit_code() != ExitCode::bad_input)
      throw;
  }
}

} // namespace myotwin::fuzz
