#pragma once
/// \file clinical.hpp
/// What an electromyographer measures on a needle recording, and how they place the needle:
/// MUAP features (main-spike rise time, half-width, peak interval, duration, phases, turns),
/// the band fractions of the EMG's spectrum, and the clinical insertion rule (move the needle
/// along its track until enough units have a main spike that rises in less than 0.5 ms).

#include <cstdint>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "myotwin/forward/needle/iemg.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::forward {

/// Features of one MUAP (one channel).
struct MuapFeatures {
  double peak_to_peak_V = 0.0;
  /// Main-spike rise time [s]: from the local extremum that precedes the main peak (the largest
  /// |v|) down its leading flank, or where that flank leaves the baseline (2.5 % of the
  /// peak-to-peak) when no extremum precedes it, to the main peak (the clinical rise time of the
  /// main spike, positive to negative peak).
  double rise_time_s = 0.0;
  double half_width_s = 0.0;    ///< width of the main peak at half its height above 0 [s]
  double peak_interval_s = 0.0; ///< time between the largest and the smallest value [s]
  /// Duration [s]: first to last sample departing from 0 by more than 2.5 % of the peak-to-peak.
  double duration_s = 0.0;
  std::int64_t n_phases = 0; ///< baseline crossings within the duration + 1
  /// Turns: direction changes with an excursion of at least 25 uV on both sides.
  std::int64_t n_turns = 0;
};

/// The features of `v` [V] sampled at fs_Hz. \throws BadInput for fewer than 3 samples or fs <= 0.
MuapFeatures muap_features(const Eigen::Ref<const Eigen::VectorXd>& v, double fs_Hz);

/// Share of the power of a signal in 10-100, 100-300, 300-1000 and above 1000 Hz (of the power
/// above 10 Hz; Welch, 4096-sample Hann segments or the largest power of two that fits), and its
/// median frequency [Hz] (above 10 Hz).
struct SpectrumFractions {
  double f10_100 = 0.0, f100_300 = 0.0, f300_1000 = 0.0, above_1000 = 0.0, median_Hz = 0.0;
};
/// \throws BadInput for fewer than 64 samples.
SpectrumFractions spectrum_fractions(const Eigen::Ref<const Eigen::VectorXd>& x, double fs_Hz);

/// The clinical insertion rule (config section `iemg.needle.insertion`).
struct InsertionRule {
  bool clinical = false;              ///< key `mode`: "fixed" | "clinical"
  std::int64_t min_units = 2;         ///< key `min_units`
  double max_rise_time_s = 0.5e-3;    ///< key `max_rise_time_ms` (0.5 ms)
  double min_peak_to_peak_V = 100e-6; ///< key `min_peak_to_peak_uV` (100 uV)
  double step_m = 0.2e-3;             ///< key `step_mm` (0.2 mm)
  double max_travel_m = 10e-3;        ///< key `max_travel_mm` (10 mm)
  double screen_radius_m = 1.5e-3;    ///< key `screen_radius_mm` (1.5 mm)
};

/// Reads the section `insertion`. \throws BadInput naming the key.
InsertionRule read_insertion_rule(ConfigReader& section);

/// One position tried: its step, tip, and the units that satisfied the rule there.
struct InsertionTry {
  std::int64_t step = 0;
  Eigen::Vector3d position_m = Eigen::Vector3d::Zero(); ///< position_mm of the needle [m]
  std::vector<std::int64_t> accepted;                   ///< units passing the rule
  std::vector<MuapFeatures> accepted_features;
  std::int64_t n_screened = 0; ///< units with a fibre within screen_radius of the recording contact
  /// The recording contact lies within two model-fibre spacings of a fibre (muscle_distance_m());
  /// a position outside the muscle is tried but passes no unit.
  bool inside_muscle = true;
  std::int64_t n_body_fibres = 0; ///< real fibres the needle's body displaced or cut there
};

/// The search and its outcome.
struct InsertionResult {
  bool satisfied = false;
  std::size_t chosen = 0; ///< the first try that satisfied the rule, else the best (most units)
  std::vector<InsertionTry> tries;
  [[nodiscard]] nlohmann::json to_json(bool relative_mm) const;
};

/// Moves the needle from electrodes.position_m by rule.step_m along its trajectory direction (or
/// axis) up to rule.max_travel_m, and at each position computes (without jitter) the channel-0
/// MUAPs of the `active` units that have a fibre within screen_radius of the recording contact
/// (units farther away are taken as failing: their main spike cannot rise in 0.5 ms); stops at
/// the first position where at least min_units units have rise time <= max_rise_time and
/// peak-to-peak >= min_peak_to_peak. At each position the needle's body displaces or cuts the
/// fibres it meets (apply_needle_body(), electrodes.body_mode); a position whose recording
/// contact lies outside the muscle passes no unit. \throws BadInput for fine wires, and when no
/// position along the track is inside the muscle (naming iemg.needle.position_mm).
InsertionResult clinical_insertion(const IemgMuscle& muscle,
                                   const std::vector<std::int64_t>& active,
                                   const IemgElectrodes& electrodes, const IemgParams& params,
                                   const InsertionRule& rule);

} // namespace myotwin::forward
