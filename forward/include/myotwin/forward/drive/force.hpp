#pragma once

/// \file force.hpp
/// Muscle force from the discharges of its motor units: the twitch model of Fuglevand, Winter
/// and Patla (1993).
///
/// Twitch of unit i, a critically damped second-order impulse response,
///
///     f_i(t) = P_i (t / T_i) exp(1 - t / T_i),   t >= 0,
///
/// peaks at P_i at t = T_i (the contraction time) and has area P_i T_i e. Peak forces are the
/// units' sizes relative to the smallest unit of the muscle's pool, P_i = n_i / n_min (the
/// anatomy's sizes are exponential over a range of 100 by default, Fuglevand's twitch force
/// range), and contraction times fall with size as in Fuglevand eq. 14,
///
///     T_i = T_L (1 / P_i)^(ln RT / ln RP),   RP = n_max / n_min of the pool,
///
/// from T_L (90 ms) for the smallest unit to T_L / RT (30 ms for RT = 3) for the largest.
///
/// Rate-dependent gain (Fuglevand eqs. 16-17): a discharge that follows the previous one of
/// the same unit after an interval ISI is scaled by
///
///     g = 1                                                  for r = T_i / ISI <= 0.4,
///     g = [(1 - exp(-2 r^3)) / r] / [(1 - exp(-2 0.4^3)) / 0.4]    otherwise,
///
/// (the first discharge of a train has g = 1): the mean force of a train, proportional to
/// g r, is then linear in the rate up to r = 0.4 and above it follows the sigmoid
/// S(r) = 1 - exp(-2 r^3) (scaled to join at 0.4), steeper than linear up to r ~ 1 (g > 1)
/// and saturating at 0.4 / S(0.4) = 3.3 times the linear force at r = 1.
/// Muscle force is the sum of the twitches of its units; it is reported as a fraction of the
/// muscle's maximum, the mean force when every unit of the whole pool (not only the simulated
/// ones) discharges at its peak rate: F_max = sum_i g_i(PR_i) P_i T_i e PR_i (the mean of a
/// periodic train of twitches is g P T e times the rate).

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

namespace myotwin {
class ConfigReader;
}

namespace myotwin::forward {

/// Parameters of the twitch model (config section `simulate.force`).
struct TwitchParams {
  /// Compute force (key `enabled`, default true).
  bool enabled = true;
  /// Contraction time of the smallest unit T_L [s] (key `contraction_time_longest_ms`, default
  /// 90 ms, Fuglevand 1993).
  double contraction_time_longest_s = 0.090;
  /// Ratio of the longest to the shortest contraction time RT (key `contraction_time_range`,
  /// default 3: 90 to 30 ms, Fuglevand 1993).
  double contraction_time_range = 3.0;
  /// Twitches are summed until they fall below this fraction of their peak (key
  /// `twitch_tail_fraction`, default 1e-6; t = 18.8 T for 1e-6).
  double twitch_tail_fraction = 1e-6;
};

/// Reads TwitchParams from a config section (keys `enabled`, `contraction_time_longest_ms` > 0,
/// `contraction_time_range` >= 1, `twitch_tail_fraction` in (0, 0.01]).
/// \throws BadInput naming the key.
TwitchParams read_twitch_params(ConfigReader& section);

/// Twitch peak forces P_i = n_i / n_min (relative to the smallest of `sizes`) and contraction
/// times T_i [s] of a pool whose units have `sizes` fibres (all > 0, any order).
struct TwitchProperties {
  Eigen::VectorXd peak_force;         ///< P_i, in units of the smallest unit's twitch peak
  Eigen::VectorXd contraction_time_s; ///< T_i [s]
};

/// See TwitchProperties. \throws BadInput for an empty pool or a size that is not > 0.
TwitchProperties twitch_properties(const Eigen::Ref<const Eigen::VectorXd>& sizes,
                                   const TwitchParams& params);

/// Fuglevand's gain for a discharge after an interval `isi_s` [s] of a unit with contraction
/// time `contraction_time_s` [s] (1 when r = T / ISI <= 0.4; see the file comment).
double twitch_gain(double contraction_time_s, double isi_s) noexcept;

/// Force of each unit sampled at t = n / fs_Hz, n = 0 .. n_samples - 1, in units of the
/// smallest unit's twitch peak: the sum of its twitches (each with its gain) at its discharge
/// times. `discharge_times_s`: per unit, sorted times [s]; `twitches`: the units' P and T (same
/// count). Returns #units x #samples. \throws BadInput for sizes that differ, fs_Hz not > 0, or
/// unsorted or non-finite times.
Eigen::MatrixXd unit_forces(const std::vector<std::vector<double>>& discharge_times_s,
                            const TwitchProperties& twitches, double fs_Hz, std::int64_t n_samples,
                            const TwitchParams& params);

/// Maximum force of a pool (units of the smallest unit's twitch peak): every unit at its peak
/// rate `peak_rates_pps` [pps] (same count as `twitches`), F_max = sum_i g_i P_i T_i e PR_i.
double maximum_force(const TwitchProperties& twitches,
                     const Eigen::Ref<const Eigen::VectorXd>& peak_rates_pps);

} // namespace myotwin::forward
