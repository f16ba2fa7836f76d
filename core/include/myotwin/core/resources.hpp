#pragma once
/// \file resources.hpp
/// Memory estimates checked before a run allocates: a run that would need more memory than the
/// machine has is refused with the estimate, the keys that drive it and the limit, instead of
/// ending in std::bad_alloc (or the kernel's out-of-memory killer) after minutes of work.

#include <string>

namespace myotwin {

/// Physically meaningful bounds shared by config keys and command-line options.
namespace limits {
/// Sampling rates of EMG [Hz]: surface EMG is sampled at 1 to 10 kHz, needles up to ~100 kHz.
inline constexpr double min_fs_Hz = 100.0;
inline constexpr double max_fs_Hz = 1e6;
/// Length of a simulated or generated signal [s]: one hour.
inline constexpr double max_duration_s = 3600.0;
/// Signal-to-noise ratios [dB].
inline constexpr double min_snr_dB = -60.0;
inline constexpr double max_snr_dB = 200.0;
} // namespace limits

/// The memory a run may use [bytes]: the limit given to set_memory_limit_bytes() (the
/// `--max-memory-GiB` option), else MemAvailable of /proc/meminfo, else 4 GiB.
double memory_limit_bytes();

/// Sets the limit memory_limit_bytes() returns; <= 0 restores the default (the memory available).
void set_memory_limit_bytes(double bytes);

/// Checks an estimate before allocating. \throws BadInput when `bytes` exceeds
/// memory_limit_bytes(): "`what` needs about X GiB (`drivers`), more than the limit of Y GiB
/// (...); reduce them or raise the limit with --max-memory-GiB". `drivers` names the keys and
/// values the estimate comes from, e.g. "simulate.drive.duration_s = 1e+12, simulate.emg.fs_Hz =
/// 2048, 320 channels".
void check_memory_estimate(double bytes, const std::string& what, const std::string& drivers);

/// The memory this process holds [bytes]: resident now (VmRSS) and the peak since it started or
/// since reset_peak_memory() (VmHWM), from /proc/self/status; zeros where it cannot be read.
struct ProcessMemory {
  double resident_bytes = 0.0;
  double peak_bytes = 0.0;
};
ProcessMemory process_memory();

/// Resets the peak of process_memory() to the resident size (Linux: /proc/self/clear_refs).
void reset_peak_memory();

/// `bytes` in GiB with two decimals, e.g. "1.05 GiB".
std::string format_gib(double bytes);

/// What a long run is estimated to need before it starts: memory [bytes] and wall time [s] on
/// this project's reference machine (2 cores), from the cost models of docs/reliability.md
/// ("Bounded resources"), with the parts of the time (e.g. "factorisation 3 s, solves 2 s") and
/// the keys and counts it follows from (as check_memory_estimate()'s `drivers`).
struct RunEstimate {
  double bytes = 0.0;
  double seconds = 0.0;
  std::string time_parts;
  std::string drivers;
};

/// check_memory_estimate(estimate.bytes, what, estimate.drivers); then logs (info) the
/// estimate: "`what`: estimated X GiB of memory (limit Y GiB) and about T (parts; drivers)".
void check_run_estimate(const RunEstimate& estimate, const std::string& what);

/// A duration for people: "0.4 s", "25 s", "12 min", "3.2 h".
std::string format_duration(double seconds);

} // namespace myotwin
