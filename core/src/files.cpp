#include "myotwin/core/files.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include <unistd.h>

#include "myotwin/core/error.hpp"

namespace myotwin {

namespace fs = std::filesystem;

void ensure_output_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw IoError(dir.string() + ": output folder is a file; expected a folder");
  }
  fs::create_directories(dir, ec);
  if (ec) {
    throw IoError(dir.string() + ": cannot create the output folder: " + ec.message());
  }
  // Creating a file is the only reliable test (permissions, read-only mounts, ACLs).
  const fs::path probe = dir / (".myotwin-write-test-" + std::to_string(::getpid()));
  {
    std::ofstream out(probe);
    if (!out) {
      throw IoError(dir.string() + ": output folder cannot be written: " + std::strerror(errno));
    }
  }
  fs::remove(probe, ec);
}

fs::path temporary_path_for(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  // The temporary name keeps the whole file name at its end, so ".nii.gz" stays the extension.
  const std::string name = ".tmp-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1)) + "-" + path.filename().string();
  return path.has_parent_path() ? path.parent_path() / name : fs::path(name);
}

void write_atomically(const fs::path& path, const std::function<void(const fs::path&)>& write) {
  const fs::path tmp = temporary_path_for(path);
  try {
    write(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  if (!fs::exists(tmp, ec)) {
    throw IoError(path.string() + ": the writer produced no file");
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw IoError(path.string() + ": cannot move the finished file into place: " + ec.message());
  }
}

void write_text_file(const fs::path& path, const std::string& text) {
  write_atomically(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    if (!out)
      throw IoError(path.string() + ": cannot be written: " + std::strerror(errno));
    out << text;
    out.flush();
    if (!out)
      throw IoError(path.string() + ": write failed: " + std::strerror(errno));
  });
}

std::string read_text_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw IoError(path.string() + ": no such file");
  if (fs::is_directory(path, ec))
    throw IoError(path.string() + ": is a folder; expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw IoError(path.string() + ": cannot be read: " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

} // namespace myotwin
