#include "myotwin/core/files.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <system_error>

#include <unistd.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"

namespace myotwin {

namespace fs = std::filesystem;

namespace {

/// The temporary names this process handed out and has not released, and the folders it has
/// already swept for stale temporaries.
struct Temporaries {
  std::mutex mutex;
  std::set<std::string> names;
  std::set<std::string> swept;
  std::atomic<bool> closed{false}; ///< set by remove_registered_temporaries()
};

Temporaries& temporaries() {
  static Temporaries* t = new Temporaries(); // never destroyed: used until _exit
  return *t;
}

/// The pid in a name `<prefix><pid>` or `<prefix><pid>-...`, or -1.
long pid_after(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0)
    return -1;
  long pid = 0;
  std::size_t i = prefix.size(), n_digits = 0;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && n_digits < 9; ++i, ++n_digits)
    pid = pid * 10 + (name[i] - '0');
  if (n_digits == 0 || (i < name.size() && name[i] != '-'))
    return -1;
  return pid;
}

void sweep_once(const fs::path& dir) {
  const std::string key = fs::absolute(dir.empty() ? fs::path(".") : dir).string();
  {
    Temporaries& t = temporaries();
    const std::lock_guard lock(t.mutex);
    if (!t.swept.insert(key).second)
      return;
  }
  remove_stale_temporaries(dir.empty() ? fs::path(".") : dir);
}

} // namespace

std::size_t remove_stale_temporaries(const fs::path& dir) {
  std::size_t n_removed = 0;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec)
    return 0;
  const long self = ::getpid();
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec)
      break;
    const std::string name = it->path().filename().string();
    long pid = pid_after(name, ".tmp-");
    if (pid < 0)
      pid = pid_after(name, ".myotwin-write-test-");
    if (pid <= 0 || pid == self)
      continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)
      continue; // a live process (or one we may not signal): its files are its own
    std::error_code ignored;
    if (it->is_regular_file(ignored) && fs::remove(it->path(), ignored))
      ++n_removed;
  }
  if (n_removed > 0)
    log_info(dir.string(), ": removed ", n_removed,
             " temporary file(s) that ended processes left behind");
  return n_removed;
}

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
  sweep_once(dir);
}

fs::path temporary_path_for(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  // The temporary name keeps the whole file name at its end, so ".nii.gz" stays the extension.
  const std::string name = ".tmp-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1)) + "-" + path.filename().string();
  fs::path tmp = path.has_parent_path() ? path.parent_path() / name : fs::path(name);
  Temporaries& t = temporaries();
  const std::lock_guard lock(t.mutex);
  t.names.insert(fs::absolute(tmp).string());
  return tmp;
}

void release_temporary(const fs::path& tmp) {
  Temporaries& t = temporaries();
  const std::lock_guard lock(t.mutex);
  t.names.erase(fs::absolute(tmp).string());
}

std::size_t remove_registered_temporaries() {
  Temporaries& t = temporaries();
  if (t.closed.exchange(true))
    return 0;
  t.mutex.lock(); // kept locked: the process is about to exit
  std::size_t n_removed = 0;
  for (const auto& name : t.names)
    n_removed += ::unlink(name.c_str()) == 0;
  t.names.clear();
  return n_removed;
}

void write_atomically(const fs::path& path, const std::function<void(const fs::path&)>& write) {
  sweep_once(path.parent_path());
  const fs::path tmp = temporary_path_for(path);
  try {
    write(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    release_temporary(tmp);
    throw;
  }
  std::error_code ec;
  if (!fs::exists(tmp, ec)) {
    release_temporary(tmp);
    throw IoError(path.string() + ": the writer produced no file");
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    release_temporary(tmp);
    throw IoError(path.string() + ": cannot move the finished file into place: " + ec.message());
  }
  release_temporary(tmp);
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
