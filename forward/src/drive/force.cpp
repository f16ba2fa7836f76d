#include "myotwin/forward/drive/force.hpp"

#include <cmath>
#include <limits>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::forward {

namespace {

/// Fuglevand's gain curve without its normalisation: (1 - exp(-2 r^3)) / r.
double saturation(double r) noexcept {
  return (1.0 - std::exp(-2.0 * r * r * r)) / r;
}

/// Normalised stimulus rate above which the gain drops below 1 (Fuglevand 1993).
constexpr double linear_limit = 0.4;

} // namespace

TwitchParams read_twitch_params(ConfigReader& section) {
  TwitchParams p;
  p.enabled = section.optional<bool>("enabled", p.enabled, {},
                                     "compute muscle force from the twitch model (Fuglevand 1993)");
  p.contraction_time_longest_s = units::ms_to_s(section.optional<double>(
      "contraction_time_longest_ms", units::s_to_ms(p.contraction_time_longest_s), positive(),
      "twitch contraction time of the smallest unit (Fuglevand 1993)"));
  p.contraction_time_range = section.optional<double>(
      "contraction_time_range", p.contraction_time_range,
      in_range(1.0, std::numeric_limits<double>::max()),
      "ratio of the longest to the shortest contraction time (Fuglevand 1993)");
  p.twitch_tail_fraction = section.optional<double>(
      "twitch_tail_fraction", p.twitch_tail_fraction, in_range(0.0, 0.01),
      "twitches are summed until they fall below this fraction of their peak; > 0");
  if (!(p.twitch_tail_fraction > 0.0))
    section.fail("twitch_tail_fraction", "expected a value in (0, 0.01], got 0");
  return p;
}

TwitchProperties twitch_properties(const Eigen::Ref<const Eigen::VectorXd>& sizes,
                                   const TwitchParams& params) {
  if (sizes.size() == 0)
    throw BadInput("twitch model: the motor-unit pool is empty");
  for (Eigen::Index i = 0; i < sizes.size(); ++i)
    if (!(sizes[i] > 0.0) || !std::isfinite(sizes[i]))
      throw BadInput("twitch model: unit " + std::to_string(i) + " has size " +
                     format_number(sizes[i]) + " fibres (expected > 0)");
  TwitchProperties t;
  const double n_min = sizes.minCoeff();
  const double range = sizes.maxCoeff() / n_min;
  t.peak_force = sizes / n_min;
  // T_i = T_L P_i^(-ln RT / ln RP); a pool of equal units (RP = 1) gets T_L throughout.
  const double exponent =
      range > 1.0 ? std::log(params.contraction_time_range) / std::log(range) : 0.0;
  t.contraction_time_s = t.peak_force.unaryExpr(
      [&](double p) { return params.contraction_time_longest_s * std::pow(p, -exponent); });
  return t;
}

double twitch_gain(double contraction_time_s, double isi_s) noexcept {
  const double r = contraction_time_s / isi_s;
  if (!(r > linear_limit))
    return 1.0;
  return saturation(r) / saturation(linear_limit);
}

Eigen::MatrixXd unit_forces(const std::vector<std::vector<double>>& discharge_times_s,
                            const TwitchProperties& twitches, double fs_Hz, std::int64_t n_samples,
                            const TwitchParams& params) {
  const auto n_units = static_cast<Eigen::Index>(discharge_times_s.size());
  if (twitches.peak_force.size() != n_units || twitches.contraction_time_s.size() != n_units)
    throw BadInput("twitch model: " + std::to_string(n_units) + " discharge trains but " +
                   std::to_string(twitches.peak_force.size()) + " twitches");
  if (!(fs_Hz > 0.0) || !std::isfinite(fs_Hz))
    throw BadInput("twitch model: fs_Hz = " + format_number(fs_Hz) + " (expected > 0)");
  if (n_samples < 0)
    throw BadInput("twitch model: negative sample count " + std::to_string(n_samples));
  for (Eigen::Index u = 0; u < n_units; ++u) {
    const auto& times = discharge_times_s[static_cast<std::size_t>(u)];
    for (std::size_t k = 0; k < times.size(); ++k)
      if (!std::isfinite(times[k]) || (k > 0 && times[k] < times[k - 1]))
        throw BadInput("twitch model: discharge " + std::to_string(k) + " of unit " +
                       std::to_string(u) + " at " + format_number(times[k]) +
                       " s is not finite or earlier than the one before");
  }
  Eigen::MatrixXd force = Eigen::MatrixXd::Zero(n_units, n_samples);
  // Twitch tail: x exp(1 - x) = tail_fraction for x > 1 (Newton from x = 1 - ln(fraction)).
  double x_end = 1.0 - std::log(params.twitch_tail_fraction);
  for (int it = 0; it < 50; ++it) {
    const double g = std::log(x_end) + 1.0 - x_end - std::log(params.twitch_tail_fraction);
    x_end -= g / (1.0 / x_end - 1.0);
  }
#pragma omp parallel for schedule(dynamic)
  for (Eigen::Index u = 0; u < n_units; ++u) {
    const auto& times = discharge_times_s[static_cast<std::size_t>(u)];
    const double p = twitches.peak_force[u];
    const double t_c = twitches.contraction_time_s[u];
    double previous = -std::numeric_limits<double>::infinity();
    for (const double t : times) {
      const double gain = std::isfinite(previous) ? twitch_gain(t_c, t - previous) : 1.0;
      previous = t;
      const auto first = static_cast<std::int64_t>(std::ceil(t * fs_Hz));
      const auto last = std::min<std::int64_t>(
          n_samples - 1, static_cast<std::int64_t>(std::floor((t + x_end * t_c) * fs_Hz)));
      for (std::int64_t n = std::max<std::int64_t>(first, 0); n <= last; ++n) {
        const double x = (static_cast<double>(n) / fs_Hz - t) / t_c;
        force(u, n) += gain * p * x * std::exp(1.0 - x);
      }
    }
  }
  return force;
}

double maximum_force(const TwitchProperties& twitches,
                     const Eigen::Ref<const Eigen::VectorXd>& peak_rates_pps) {
  if (peak_rates_pps.size() != twitches.peak_force.size())
    throw BadInput("twitch model: " + std::to_string(peak_rates_pps.size()) + " peak rates for " +
                   std::to_string(twitches.peak_force.size()) + " units");
  double total = 0.0;
  for (Eigen::Index i = 0; i < peak_rates_pps.size(); ++i) {
    const double rate = peak_rates_pps[i];
    if (!(rate > 0.0) || !std::isfinite(rate))
      throw BadInput("twitch model: peak rate " + format_number(rate) + " pps of unit " +
                     std::to_string(i) + " (expected > 0)");
    const double t_c = twitches.contraction_time_s[i];
    total += twitch_gain(t_c, 1.0 / rate) * twitches.peak_force[i] * t_c * std::exp(1.0) * rate;
  }
  return total;
}

} // namespace myotwin::forward
