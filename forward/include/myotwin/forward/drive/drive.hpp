#pragma once
/// \file drive.hpp
/// Motor-neuron drive: a pool of motor neurons after Fuglevand, Winter and Patla 1993, driven by
/// an excitation profile, giving each unit's discharge times.
///
/// Units of excitation. Excitation and recruitment thresholds are fractions of the maximum
/// excitation (the anatomy's `recruitment_threshold`, in (0, 1]). Fuglevand's rate law is
/// written in his excitation units, in which the first (lowest) threshold is 1; here those units
/// are the fraction divided by the lowest threshold of the pool, so that
///
///     rate_i(E) = min_rate + gain * (E - RTE_i) / RTE_min        for E >= RTE_i, capped at PR_i,
///     PR_i      = peak_first - (peak_first - peak_last) * RTE_i / RTE_max       (Fuglevand eq. 4),
///
/// with gain in pps per Fuglevand unit (1 by default). With the anatomy's default thresholds
/// (range 30, last threshold 30/47) this is exactly Fuglevand's pool: RTE from 1 to 30, maximum
/// excitation 47, at which the last unit reaches its peak rate.
///
/// Discharges (Fuglevand): a unit fires its first discharge when the excitation rises through
/// its threshold (the crossing time, linearly interpolated between samples); each next
/// discharge follows after ISI = (1 / rate_i(E(t_prev))) * (1 + cov * Z), Z a standard normal
/// redrawn until |Z| <= 3 and 1 + cov * Z >= 0.1. When the excitation at a would-be discharge
/// is below threshold the unit stops and waits for the next crossing. Times are continuous (not
/// quantised to samples).
///
/// Common synaptic input (optional): a Gaussian noise shared by the pool, low-pass filtered
/// (second-order Butterworth, cut-off common_input_cutoff_Hz) and scaled to unit standard
/// deviation, multiplied by common_input_sd_fraction * E_profile(t) and added to the profile:
/// E(t) = max(0, E_profile(t) * (1 + f * n(t))). The drive's coefficient of variation is f.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace myotwin {
class ConfigReader;
class Rng;
} // namespace myotwin

namespace myotwin::forward {

/// Kinds of excitation profile.
enum class ProfileType { constant, ramp, trapezoid, sinusoid, csv };

/// An excitation profile E(t), in fractions of the maximum excitation, t in seconds from the
/// start of the run. Only the fields of the chosen type are used.
struct ExcitationProfile {
  ProfileType type = ProfileType::trapezoid;
  /// constant: the level; trapezoid: the plateau level. Config key `level`.
  double level = 0.3;
  /// ramp: level before and at ramp_start_s (`start_level`), and at and after ramp_end_s
  /// (`end_level`).
  double start_level = 0.0;
  double end_level = 1.0;
  /// ramp: start and end of the linear ramp [s]; ramp_end_s < 0 means the end of the run (the
  /// config key `ramp_end_s` defaults to the run's duration_s, the same end).
  double ramp_start_s = 0.0;
  double ramp_end_s = -1.0;
  /// trapezoid: level outside the trapezoid (`baseline_level`).
  double baseline_level = 0.0;
  /// trapezoid: time the rise begins, durations of rise, plateau and fall [s].
  double onset_s = 0.0;
  double rise_s = 2.0;
  double plateau_s = 6.0;
  double fall_s = 2.0;
  /// sinusoid: E = mean_level + amplitude * sin(2 pi frequency_Hz t + phase_rad);
  /// amplitude <= mean_level.
  double mean_level = 0.2;
  double amplitude = 0.1;
  double frequency_Hz = 1.0;
  double phase_rad = 0.0;
  /// csv: the samples read from the file (strictly increasing times [s], excitation >= 0),
  /// linearly interpolated; they must cover every sample instant of the run.
  std::vector<double> csv_time_s;
  std::vector<double> csv_excitation;
  /// csv: the file the samples came from (for messages).
  std::filesystem::path csv_path;
};

/// Parameters of the motor-neuron pool and its drive. Defaults after Fuglevand, Winter, Patla
/// 1993 (REFERENCE_VALUES.md, "Motor units and drive").
struct DriveParams {
  /// Length of the run [s] (> 0).
  double duration_s = 10.0;
  /// Sampling rate of the excitation signal [Hz] (> 0).
  double fs_Hz = 2048.0;
  /// Discharge rate at recruitment [pps].
  double min_rate_pps = 8.0;
  /// Peak rate of the lowest-threshold unit [pps] (Fuglevand: 35).
  double peak_rate_first_pps = 35.0;
  /// Peak rate of the highest-threshold unit [pps] (Fuglevand: 25).
  double peak_rate_last_pps = 25.0;
  /// Rate gain [pps per Fuglevand excitation unit, i.e. per lowest threshold] (Fuglevand: 1).
  double rate_gain_pps = 1.0;
  /// Coefficient of variation of the inter-spike intervals (Fuglevand: 0.2; observed 0.1-0.3).
  double isi_cov = 0.2;
  /// Probability that a discharge is followed by a doublet (0: none): one more discharge after
  /// an interval uniform in [doublet_isi_min_ms, doublet_isi_max_ms], from which the next regular
  /// interval starts. Human motor units fire doublets of 2.5-20 ms, mostly at recruitment and
  /// in fast contractions (Bawa and Calancie 1983, J Physiol 340:311; Garland and Griffin 1999,
  /// Muscle Nerve 22:1423), in [0, 1).
  double doublet_probability = 0.0;
  double doublet_isi_min_ms = 5.0;  ///< shortest doublet interval [ms] (> 0)
  double doublet_isi_max_ms = 15.0; ///< longest doublet interval [ms] (>= the shortest)
  /// Probability that an interval becomes a pause (0: none): the next discharge comes later by a
  /// time uniform in [pause_min_s, pause_max_s] (real trains near de-recruitment pause), in [0, 1).
  double pause_probability = 0.0;
  double pause_min_s = 0.3; ///< shortest added pause [s] (> 0)
  double pause_max_s = 1.0; ///< longest added pause [s] (>= the shortest)
  /// Standard deviation of the common synaptic input as a fraction of the profile excitation
  /// (0: off).
  double common_input_sd_fraction = 0.0;
  /// Cut-off frequency of the common input's low-pass filter [Hz] (< fs_Hz / 2).
  double common_input_cutoff_Hz = 5.0;
  /// The excitation profile.
  ExcitationProfile profile;
};

/// The output of simulate_drive().
struct DriveResult {
  /// Sampling rate of `excitation` [Hz].
  double fs_Hz = 0.0;
  /// Excitation driving the pool (profile plus common input), #samples = round(duration * fs),
  /// sample k at t = k / fs_Hz [fraction of maximum excitation].
  std::vector<double> excitation;
  /// Discharge times of each unit [s], sorted, in [0, duration); #units vectors, in the order
  /// of the thresholds given.
  std::vector<std::vector<double>> discharge_times_s;
};

/// Reads DriveParams from a config section. Keys (all optional, defaults as in DriveParams):
/// `duration_s`, `fs_Hz`, `min_rate_pps`, `peak_rate_first_pps`, `peak_rate_last_pps`,
/// `rate_gain_pps`, `isi_cov`, `doublet_probability`, `doublet_isi_min_ms`, `doublet_isi_max_ms`,
/// `pause_probability`, `pause_min_s`, `pause_max_s`, `common_input_sd_fraction`,
/// `common_input_cutoff_Hz`, and
/// `profile`, an object with `type` (constant | ramp | trapezoid | sinusoid | csv) and that
/// type's keys: constant `level`; ramp `start_level`, `end_level`, `ramp_start_s`, `ramp_end_s`;
/// trapezoid `level`, `baseline_level`, `onset_s`, `rise_s`, `plateau_s`, `fall_s`; sinusoid
/// `mean_level`, `amplitude`, `frequency_Hz`, `phase_rad`; csv `path` (read here, see
/// read_excitation_csv()). \throws BadInput naming the key for unknown types, keys or values
/// out of range; IoError / BadInput from the CSV. Absent keys keep `defaults` (the profile keeps
/// its own defaults).
DriveParams read_drive_params(ConfigReader& section, const DriveParams& defaults = {});

/// Checks the parameters by reading to_json(params) back with read_drive_params(), whose
/// declarations state each range once (a CSV profile: only that it has samples; its file was
/// checked when read). \throws BadInput naming the key and value.
void validate(const DriveParams& params);

/// The parameters as the config section read_drive_params() reads (a CSV profile by its path).
nlohmann::json to_json(const DriveParams& params);

/// Reads an excitation CSV: a header line `time_s,excitation`, then one `time, excitation` per
/// row, times strictly increasing [s], excitation >= 0 (fraction of maximum). Blank lines and
/// lines starting with `#` are ignored. The result has type csv.
/// \throws IoError if the file cannot be read; BadInput naming the file and line for a bad row.
ExcitationProfile read_excitation_csv(const std::filesystem::path& path);

/// The profile sampled at t = k / fs_Hz, k = 0 .. round(duration_s * fs_Hz) - 1.
/// \throws BadInput when a CSV profile does not cover the run.
std::vector<double> sample_excitation(const ExcitationProfile& profile, double duration_s,
                                      double fs_Hz);

/// Recruitment thresholds exponential over the pool, as the anatomy generates them:
/// RTE_i = max_threshold * range^(i / (n - 1) - 1), i = 0 .. n - 1 (fractions of max excitation).
/// Defaults: Fuglevand's range 30, last threshold 30 / 47. \throws BadInput if n_units < 1,
/// range < 1 or max_threshold not in (0, 1].
std::vector<double> exponential_thresholds(std::int64_t n_units, double range = 30.0,
                                           double max_threshold = 30.0 / 47.0);

/// Peak rate of each unit [pps] (Fuglevand eq. 4, see the file comment); thresholds as in
/// simulate_drive().
std::vector<double> peak_rates_pps(const DriveParams& params,
                                   const std::vector<double>& thresholds);

/// Mean discharge rate [pps] of unit `unit` at excitation `excitation` (0 below threshold).
double discharge_rate_pps(const DriveParams& params, const std::vector<double>& thresholds,
                          std::size_t unit, double excitation);

/// Simulates the pool. `thresholds`: #units recruitment thresholds, fractions of the maximum
/// excitation in (0, 1], any order (usually the anatomy's units in recruitment order). Unit i
/// draws from rng.split(i), the common input from rng.split(2^64 - 1): the result is the same
/// at any thread count. Parallel over units (OpenMP).
/// \throws BadInput for invalid params (validate()), an empty pool or a threshold outside (0, 1].
DriveResult simulate_drive(const DriveParams& params, const std::vector<double>& thresholds,
                           const Rng& rng);

/// The name of a profile type as used in the config (`"trapezoid"`, ...).
std::string to_string(ProfileType type);

} // namespace myotwin::forward
