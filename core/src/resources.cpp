#include "myotwin/core/resources.hpp"

#include <atomic>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"

namespace myotwin {

namespace {

std::atomic<double> limit_bytes{0.0};

double available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string name;
    double kib = 0.0;
    if (s >> name >> kib && name == "MemAvailable:")
      return kib * 1024.0;
  }
  return 4.0 * 1024.0 * 1024.0 * 1024.0;
}

std::string gib(double bytes) {
  std::ostringstream s;
  s.precision(bytes < 1024.0 * 1024.0 * 1024.0 ? 2 : 3);
  s << bytes / (1024.0 * 1024.0 * 1024.0) << " GiB";
  return s.str();
}

} // namespace

double memory_limit_bytes() {
  const double set = limit_bytes.load();
  return set > 0.0 ? set : available_bytes();
}

void set_memory_limit_bytes(double bytes) {
  limit_bytes.store(bytes > 0.0 ? bytes : 0.0);
}

void check_memory_estimate(double bytes, const std::string& what, const std::string& drivers) {
  const double limit = memory_limit_bytes();
  if (!(bytes <= limit))
    throw BadInput(what + " needs about " + gib(bytes) + " of memory (" + drivers +
                   "), more than the limit of " + gib(limit) +
                   (limit_bytes.load() > 0.0 ? " set by --max-memory-GiB"
                                             : " (the memory available on this machine)") +
                   "; reduce them or raise the limit with --max-memory-GiB");
}

ProcessMemory process_memory() {
  std::ifstream in("/proc/self/status");
  std::string line;
  ProcessMemory m;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    std::istringstream s(line.substr(colon + 1));
    double kib = 0.0;
    s >> kib;
    if (line.rfind("VmRSS:", 0) == 0)
      m.resident_bytes = kib * 1024.0;
    else if (line.rfind("VmHWM:", 0) == 0)
      m.peak_bytes = kib * 1024.0;
  }
  return m;
}

void reset_peak_memory() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

std::string format_gib(double bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << bytes / (1024.0 * 1024.0 * 1024.0) << " GiB";
  return s.str();
}

void check_run_estimate(const RunEstimate& estimate, const std::string& what) {
  check_memory_estimate(estimate.bytes, what, estimate.drivers);
  log_info(what, ": estimated ", gib(estimate.bytes), " of memory (limit ",
           gib(memory_limit_bytes()), ") and about ", format_duration(estimate.seconds), " (",
           estimate.time_parts.empty() ? "" : estimate.time_parts + "; ", estimate.drivers, ")");
}

std::string format_duration(double seconds) {
  std::ostringstream s;
  if (!(seconds < 60.0)) {
    if (seconds < 3600.0)
      s << static_cast<long long>(seconds / 60.0 + 0.5) << " min";
    else {
      s.precision(2);
      s << seconds / 3600.0 << " h";
    }
  } else {
    s.precision(seconds < 10.0 ? 1 : 2);
    s << (seconds < 10.0 ? std::fixed : std::defaultfloat) << seconds << " s";
  }
  return s.str();
}

} // namespace myotwin
