// MUAP features, spectrum fractions and the clinical insertion rule (clinical.hpp).

#include "myotwin/forward/needle/clinical.hpp"

#include <algorithm>
#include <cmath>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/signal.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::forward {

MuapFeatures muap_features(const Eigen::Ref<const Eigen::VectorXd>& v, double fs_Hz) {
  if (v.size() < 3 || !(fs_Hz > 0.0))
    throw BadInput("muap_features: " + std::to_string(v.size()) + " samples at " +
                   format_number(fs_Hz) + " Hz: need at least 3 samples and fs > 0");
  MuapFeatures f;
  Eigen::Index i_max = 0;
  Eigen::Index i_min = 0;
  const double hi = v.maxCoeff(&i_max);
  const double lo = v.minCoeff(&i_min);
  f.peak_to_peak_V = hi - lo;
  f.peak_interval_s = static_cast<double>(std::abs(i_max - i_min)) / fs_Hz;
  const Eigen::Index m = std::abs(hi) >= std::abs(lo) ? i_max : i_min;
  const double s = v[m] >= 0.0 ? 1.0 : -1.0;
  // Rise time: down the main peak's leading flank to the extremum before it, or to where the
  // flank leaves the baseline (within 2.5 % of the peak-to-peak of 0) when none precedes it.
  Eigen::Index p = m;
  while (p > 0 && s * v[p - 1] < s * v[p] && s * v[p] > 0.025 * (hi - lo))
    --p;
  f.rise_time_s = static_cast<double>(m - p) / fs_Hz;
  // Half-width at half the main peak's height, interpolated linearly.
  const double half = 0.5 * std::abs(v[m]);
  Eigen::Index a = m;
  while (a > 0 && s * v[a - 1] >= half)
    --a;
  Eigen::Index b = m;
  while (b + 1 < v.size() && s * v[b + 1] >= half)
    ++b;
  double left = static_cast<double>(a);
  if (a > 0)
    left -= (s * v[a] - half) / (s * v[a] - s * v[a - 1]);
  double right = static_cast<double>(b);
  if (b + 1 < v.size())
    right += (s * v[b] - half) / (s * v[b] - s * v[b + 1]);
  f.half_width_s = (right - left) / fs_Hz;
  // Duration, phases, turns.
  const double floor_V = 0.025 * f.peak_to_peak_V;
  Eigen::Index first = -1;
  Eigen::Index last = -1;
  for (Eigen::Index i = 0; i < v.size(); ++i)
    if (std::abs(v[i]) > floor_V) {
      first = first < 0 ? i : first;
      last = i;
    }
  if (first < 0)
    return f;
  f.duration_s = static_cast<double>(last - first) / fs_Hz;
  f.n_phases = 1;
  double sign = v[first] >= 0.0 ? 1.0 : -1.0;
  for (Eigen::Index i = first + 1; i <= last; ++i)
    if (std::abs(v[i]) > floor_V && (v[i] >= 0.0 ? 1.0 : -1.0) != sign) {
      sign = -sign;
      ++f.n_phases;
    }
  constexpr double turn_V = 25e-6;
  double extreme = v[first];
  double dir = 0.0;
  for (Eigen::Index i = first + 1; i <= last; ++i) {
    const double d = v[i] - extreme;
    if (dir == 0.0) {
      if (std::abs(d) >= turn_V) {
        dir = d > 0.0 ? 1.0 : -1.0;
        extreme = v[i];
      }
    } else if (dir * d > 0.0) {
      extreme = v[i];
    } else if (-dir * d >= turn_V) {
      ++f.n_turns;
      dir = -dir;
      extreme = v[i];
    }
  }
  return f;
}

SpectrumFractions spectrum_fractions(const Eigen::Ref<const Eigen::VectorXd>& x, double fs_Hz) {
  if (x.size() < 64)
    throw BadInput("spectrum_fractions: " + std::to_string(x.size()) +
                   " samples: need at least 64");
  Eigen::Index seg = 4096;
  while (seg > x.size())
    seg /= 2;
  const Eigen::MatrixXd psd = signal::welch_psd(x.transpose(), fs_Hz, seg);
  SpectrumFractions s;
  double total = 0.0;
  const double df = fs_Hz / static_cast<double>(seg);
  for (Eigen::Index k = 0; k < psd.cols(); ++k) {
    const double f = static_cast<double>(k) * df;
    if (f < 10.0)
      continue;
    const double p = psd(0, k);
    total += p;
    (f < 100.0 ? s.f10_100 : f < 300.0 ? s.f100_300 : f < 1000.0 ? s.f300_1000 : s.above_1000) += p;
  }
  if (total > 0.0) {
    s.f10_100 /= total;
    s.f100_300 /= total;
    s.f300_1000 /= total;
    s.above_1000 /= total;
    double cum = 0.0;
    for (Eigen::Index k = 0; k < psd.cols(); ++k) {
      const double f = static_cast<double>(k) * df;
      if (f < 10.0)
        continue;
      cum += psd(0, k);
      if (cum >= 0.5 * total) {
        s.median_Hz = f;
        break;
      }
    }
  }
  return s;
}

InsertionRule read_insertion_rule(ConfigReader& section) {
  InsertionRule r;
  r.clinical = section.optional<std::string>(
                   "mode", "fixed", one_of({"fixed", "clinical"}),
                   "needle placement: the positions of `trajectory`, or clinical: advance from "
                   "position_mm until min_units units have a main spike rising in <= "
                   "max_rise_time_ms") == "clinical";
  r.min_units = section.optional<std::int64_t>(
      "min_units", r.min_units, positive_int(),
      "clinical: units that must pass the rise-time and amplitude criteria at one position");
  r.max_rise_time_s = units::ms_to_s(section.optional<double>(
      "max_rise_time_ms", units::s_to_ms(r.max_rise_time_s), positive(),
      "clinical: largest main-spike rise time of an accepted MUAP (0.5 ms, clinical practice)"));
  r.min_peak_to_peak_V = units::uV_to_V(section.optional<double>(
      "min_peak_to_peak_uV", units::V_to_uV(r.min_peak_to_peak_V), non_negative(),
      "clinical: smallest peak-to-peak of an accepted MUAP"));
  r.step_m = units::mm_to_m(section.optional<double>(
      "step_mm", units::m_to_mm(r.step_m), positive(), "clinical: needle advance per try"));
  r.max_travel_m = units::mm_to_m(
      section.optional<double>("max_travel_mm", units::m_to_mm(r.max_travel_m), non_negative(),
                               "clinical: farthest advance from position_mm"));
  r.screen_radius_m = units::mm_to_m(section.optional<double>(
      "screen_radius_mm", units::m_to_mm(r.screen_radius_m), positive(),
      "clinical: only units with a fibre this close to the recording contact are evaluated"));
  return r;
}

nlohmann::json InsertionResult::to_json(bool relative_mm) const {
  nlohmann::json t = nlohmann::json::array();
  for (const auto& x : tries) {
    nlohmann::json units = nlohmann::json::array();
    for (std::size_t i = 0; i < x.accepted.size(); ++i)
      units.push_back({{"unit", x.accepted[i]},
                       {"rise_time_ms", 1e3 * x.accepted_features[i].rise_time_s},
                       {"peak_to_peak_uV", 1e6 * x.accepted_features[i].peak_to_peak_V}});
    t.push_back(
        {{"step", x.step},
         {"position_mm", {1e3 * x.position_m.x(), 1e3 * x.position_m.y(), 1e3 * x.position_m.z()}},
         {"n_screened", x.n_screened},
         {"inside_muscle", x.inside_muscle},
         {"n_body_fibres", x.n_body_fibres},
         {"n_accepted", x.accepted.size()},
         {"accepted", units}});
  }
  return {{"satisfied", satisfied},
          {"chosen_step", tries.empty() ? 0 : tries[chosen].step},
          {"frame", relative_mm ? "muscle_centre" : "absolute"},
          {"tries", t}};
}

InsertionResult clinical_insertion(const IemgMuscle& muscle,
                                   const std::vector<std::int64_t>& active,
                                   const IemgElectrodes& electrodes, const IemgParams& params,
                                   const InsertionRule& rule) {
  if (electrodes.kind == IemgElectrodeKind::fine_wire)
    throw BadInput("iemg.needle.insertion.mode = \"clinical\": fine wires are not moved; use a "
                   "needle (array, concentric, monopolar, single_fibre)");
  IemgParams p = params;
  p.jitter_s = 0.0;
  const Eigen::MatrixXd weights = iemg_channel_weights(electrodes);
  InsertionResult result;
  const auto n_steps =
      static_cast<std::int64_t>(std::floor(rule.max_travel_m / rule.step_m + 1e-9));
  const Eigen::Vector3d dir = iemg_trajectory_direction(electrodes);
  const double spacing = muscle_inside_tolerance_m(muscle);
  bool any_inside = false;
  for (std::int64_t k = 0; k <= n_steps; ++k) {
    IemgElectrodes e = electrodes;
    e.n_positions = 1;
    e.position_m = electrodes.position_m + static_cast<double>(k) * rule.step_m * dir;
    const auto surfaces = iemg_contact_surfaces(e, muscle.centre_m, 0);
    const Eigen::Vector3d rec = surfaces.front().centre_m();
    InsertionTry t;
    t.step = k;
    t.position_m = e.position_m;
    t.inside_muscle = muscle_distance_m(muscle, rec) <= spacing;
    any_inside = any_inside || t.inside_muscle;
    // The muscle as the needle finds it there: the fibres its body meets displaced or cut.
    const NeedleBody body = iemg_needle_body(e, muscle.centre_m, 0);
    IemgMuscle moved;
    const IemgMuscle* here = &muscle;
    if (body.present && e.body_mode != NeedleBodyMode::none && t.inside_muscle) {
      moved = muscle;
      t.n_body_fibres = apply_needle_body(moved, body, e.body_mode);
      here = &moved;
    }
    std::vector<std::int64_t> near;
    for (const auto u : t.inside_muscle ? active : std::vector<std::int64_t>{}) {
      for (const auto id : here->unit_fibres[static_cast<std::size_t>(u)]) {
        if (sub_fibre_distance_m(*here, here->fibres[static_cast<std::size_t>(id)], rec) <
            rule.screen_radius_m) {
          near.push_back(u);
          break;
        }
      }
    }
    t.n_screened = static_cast<std::int64_t>(near.size());
    if (!near.empty()) {
      const auto muaps = iemg_muaps(*here, near, surfaces, p);
      for (const auto& m : muaps) {
        const Eigen::VectorXd ch = m.phi_V * weights.row(0).transpose();
        const MuapFeatures f = muap_features(ch, p.fs_Hz);
        if (f.rise_time_s <= rule.max_rise_time_s && f.peak_to_peak_V >= rule.min_peak_to_peak_V) {
          t.accepted.push_back(m.unit);
          t.accepted_features.push_back(f);
        }
      }
    }
    result.tries.push_back(t);
    if (static_cast<std::int64_t>(t.accepted.size()) >= rule.min_units) {
      result.satisfied = true;
      result.chosen = result.tries.size() - 1;
      return result;
    }
    if (t.accepted.size() > result.tries[result.chosen].accepted.size())
      result.chosen = result.tries.size() - 1;
  }
  if (!any_inside) {
    const Eigen::Vector3d& p0 = electrodes.position_m;
    throw BadInput(
        "iemg.needle.position_mm = [" + format_number(1e3 * p0.x()) + ", " +
        format_number(1e3 * p0.y()) + ", " + format_number(1e3 * p0.z()) +
        "]: the needle's track (" + std::to_string(result.tries.size()) + " positions every " +
        format_number(1e3 * rule.step_m) + " mm over max_travel_mm = " +
        format_number(1e3 * rule.max_travel_m) + ") never enters the muscle \"" + muscle.name +
        "\" (its recording contact is never within " + format_number(1e3 * spacing) +
        " mm, two model-fibre spacings, of a fibre): start it in or next to the muscle, or aim it "
        "at the muscle (angles_deg, trajectory.direction)");
  }
  return result;
}

} // namespace myotwin::forward
