#include "myotwin/inversion/benchmark.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <numeric>
#include <sstream>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/stats.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/emg/emg.hpp"

namespace myotwin::inversion {

namespace {

const anatomy::MuscleModel& find_muscle(const anatomy::SubjectAnatomy& anatomy,
                                        const std::string& name) {
  std::string names;
  for (const auto& m : anatomy.muscles) {
    if (m.geometry.name == name)
      return m;
    names += (names.empty() ? "" : ", ") + m.geometry.name;
  }
  throw BadInput("bench bmiss: muscle \"" + name + "\" is not in the anatomy (" + names + ")");
}

/// Discharge trains of a decomposition.
SpikeTrains trains_of(const Decomposition& d) {
  SpikeTrains t;
  t.source = "decomposition";
  t.fs_Hz = d.fs_Hz;
  for (std::size_t k = 0; k < d.units.size(); ++k) {
    t.unit_id.push_back(static_cast<std::int64_t>(k));
    t.samples.push_back(d.units[k].discharges);
  }
  return t;
}

/// Units recovered among those found before candidate (or iteration) `limit`.
std::int64_t recovered_before(const Decomposition& d, const std::vector<std::int64_t>& match,
                              std::int64_t limit) {
  std::int64_t n = 0;
  for (std::size_t k = 0; k < d.units.size(); ++k)
    n += match[k] >= 0 && d.units[k].found_at < limit;
  return n;
}

/// |W c| of every unit in `data` (whitened_column(): the matched filter's peak-to-background
/// ratio).
std::vector<double> separability_of(const std::vector<Eigen::MatrixXd>& muaps,
                                    const WhitenedEmg& data, const PreprocessParams& filter) {
  std::vector<double> out(muaps.size(), 0.0);
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t u = 0; u < static_cast<std::int64_t>(muaps.size()); ++u)
    out[static_cast<std::size_t>(u)] =
        whitened_column(muaps[static_cast<std::size_t>(u)], data, filter).norm();
  return out;
}

/// The upper bound: separation vectors from the true MUAPs (`muaps` at the recording's rate,
/// unfiltered), handed over as in invert(), n_refine per iteration: the units not yet accepted
/// with the largest separability |W c| in the current data (with cancellation, the whitened
/// residual: a unit tried before is tried again only when its |W c| has grown by 10 % since).
/// `separability` receives, per unit, |W c| before any unit is removed.
Decomposition upper_bound(const forward::EmgRecording& recording,
                          const std::vector<Eigen::MatrixXd>& muaps, const BmissParams& params,
                          std::vector<double>& separability, std::vector<HandedOver>& record) {
  DecomposeStats stats;
  WhitenedEmg data = whiten_emg(recording, separation_space(params), stats);
  const auto& filter = params.separation.preprocess;
  separability = separability_of(muaps, data, filter);
  const auto per_iteration = static_cast<std::size_t>(std::max<std::int64_t>(1, params.n_refine));
  std::vector<double> tried_at(muaps.size(), 0.0); // |W c| at the last try (0: never tried)
  std::vector<char> accepted_unit(muaps.size(), 0);
  AcceptedUnits accepted;
  std::vector<double> sep = separability;
  for (std::int64_t it = 0; it < params.n_iterations; ++it) {
    std::vector<std::size_t> candidates;
    for (std::size_t u = 0; u < muaps.size(); ++u)
      if (!accepted_unit[u] && sep[u] > 1.1 * tried_at[u])
        candidates.push_back(u);
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](std::size_t a, std::size_t b) { return sep[a] > sep[b]; });
    if (candidates.size() > per_iteration)
      candidates.resize(per_iteration);
    bool new_units = false;
    for (const std::size_t u : candidates) {
      tried_at[u] = sep[u];
      const auto c = score_muap(muaps[u], data, accepted.vectors(), filter);
      if (c.w.size() == 0)
        continue;
      const std::size_t before = accepted.size();
      const auto v = hand_over(c.w, it, data, accepted, params, stats, &record);
      if (v == Verdict::accepted && accepted.size() > before) {
        accepted_unit[u] = 1;
        new_units = true;
      }
    }
    // Successive cancellation at the end of each iteration, as invert() does.
    if (params.cancellation && new_units && it + 1 < params.n_iterations) {
      (void)accepted.cancel(data, params.separation, stats);
      sep = separability_of(muaps, data, filter);
      std::size_t n_separable = 0;
      for (std::size_t u = 0; u < muaps.size(); ++u)
        n_separable += !accepted_unit[u] && sep[u] >= 5.0;
      log_info("bench bmiss: upper bound, iteration ", it + 1, ": ", accepted.size(),
               " units accepted, ", n_separable, " others with |W c| >= 5 in the residual");
    }
  }
  return accepted.finish(data, separation_space(params), stats);
}

/// Rounds of cancellation_rounds(): per round, the units removed so far and, of them, those that
/// a hand-over recovered so far.
struct CancellationRounds {
  std::vector<std::int64_t> removed, recovered;
};

/// Successive cancellation with exact knowledge, what subtracting identified units could give at
/// best: in rounds, the units whose separability |W c| in the whitened residual is at least
/// `threshold` are removed exactly (their noise-free contribution at the true sub-sample
/// discharge times, `muaps` at `muap_fs_Hz`) and the residual is extended and whitened again.
/// With `estimated`, the units are instead removed as invert() cancels them (subtract_units() at
/// the true discharges `truth`: their MUAPs estimated jointly from the recording): what
/// the estimate of the MUAP loses. In each round, before the removal, the true-MUAP vectors of
/// the separable units are handed over (hand_over(), largest |W c| first, into a fresh set of
/// accepted units) and the removed units that the accepted trains recover are counted
/// (recovered_truth()): |W c| says a unit could be separated, the hand-over whether it is. Stops
/// when a round removes none.
CancellationRounds cancellation_rounds(const forward::EmgRecording& recording,
                                       const std::vector<Eigen::MatrixXd>& muaps, double muap_fs_Hz,
                                       const std::vector<Eigen::MatrixXd>& muaps_fs,
                                       const std::vector<std::vector<double>>& times_s,
                                       const SpikeTrains& truth, double duration_s,
                                       forward::EmgParams emg_params, const BmissParams& params,
                                       double threshold, double min_roa, bool estimated) {
  const std::int64_t half =
      std::llround(params.separation.peel_off_window_ms / 2.0 * 1e-3 * recording.fs_Hz);
  const auto& filter = params.separation.preprocess;
  emg_params.add_noise = false;
  forward::EmgRecording residual = recording;
  std::vector<bool> removed(muaps.size(), false), recovered(muaps.size(), false);
  CancellationRounds out;
  std::int64_t n_removed = 0;
  for (std::size_t round = 0; round < muaps.size(); ++round) {
    DecomposeStats stats;
    WhitenedEmg data = whiten_emg(residual, separation_space(params), stats);
    std::vector<double> sep = separability_of(muaps_fs, data, filter);
    std::vector<std::size_t> separable;
    for (std::size_t u = 0; u < muaps.size(); ++u)
      if (!removed[u] && sep[u] >= threshold)
        separable.push_back(u);
    if (separable.empty())
      break;
    std::stable_sort(separable.begin(), separable.end(),
                     [&](std::size_t a, std::size_t b) { return sep[a] > sep[b]; });
    AcceptedUnits accepted;
    for (const std::size_t u : separable) {
      const auto c = score_muap(muaps_fs[u], data, accepted.vectors(), filter);
      if (c.w.size() == 0)
        continue;
      (void)hand_over(c.w, 0, data, accepted, params, stats);
    }
    Decomposition found;
    found.fs_Hz = recording.fs_Hz;
    for (std::size_t k = 0; k < accepted.size(); ++k)
      found.units.push_back(accepted.unit(k));
    for (const std::int64_t t : recovered_truth(found, truth, min_roa))
      if (t >= 0)
        recovered[static_cast<std::size_t>(t)] = true;
    std::vector<Eigen::MatrixXd> sub_muaps;
    std::vector<std::vector<double>> sub_times;
    for (const std::size_t u : separable) {
      removed[u] = true;
      sub_muaps.push_back(muaps[u]);
      sub_times.push_back(times_s[u]);
    }
    n_removed += static_cast<std::int64_t>(separable.size());
    std::int64_t n_recovered = 0; // a hand-over may land on a unit not (yet) removed: not counted
    for (std::size_t u = 0; u < muaps.size(); ++u)
      n_recovered += removed[u] && recovered[u];
    out.removed.push_back(n_removed);
    out.recovered.push_back(n_recovered);
    log_info("bench bmiss: ", estimated ? "estimated" : "exact", " cancellation round ", round + 1,
             ": ", separable.size(), " units separable (", n_removed,
             " in all), hand-over recovered ", n_recovered, " in all");
    if (estimated) { // all removed units at once, from the recording
      std::vector<std::vector<std::int64_t>> trains;
      for (std::size_t u = 0; u < muaps.size(); ++u)
        if (removed[u])
          trains.push_back(truth.samples[u]);
      residual.emg = recording.emg;
      (void)subtract_units(residual.emg, trains, half);
    } else {
      residual.emg -=
          forward::synthesize_emg(sub_muaps, muap_fs_Hz, sub_times, duration_s, emg_params, Rng(0))
              .emg_clean;
    }
  }
  return out;
}

/// Property errors of the recovered units of a BMISS result.
struct PropertyErrors {
  std::vector<std::int64_t> truth; ///< per recovered unit, the index of its true unit
  std::vector<double> depth_mm, end_plate_mm, cv_m_per_s, fibres_percent;
  /// Per unit: the fit's relative residual, and the model's at the true parameters (as the
  /// search space holds them, and with the unit's own territory radius): a fit above the
  /// first missed the model's minimum.
  std::vector<double> residual, residual_at_truth, residual_at_truth_own_radius;
  double normalised_mse = 0.0; ///< mean over units and the four of (error / range)^2
  /// Several muscles searched: per unit, whether the fit's muscle is the true unit's.
  std::vector<char> muscle_right;
  bool several_muscles = false;
};

/// Outcome of one separation method on one recording.
struct MethodRun {
  std::string name;
  std::vector<std::int64_t> recovered_per_iteration;
  /// The published scoring after each iteration (the paper setting only; empty otherwise).
  std::vector<std::int64_t> published_per_iteration;
  std::int64_t n_units = 0;
  double time_s = 0.0;
  std::vector<double> iteration_time_s;
  PropertyErrors errors;
  /// The same units' properties fitted to their true MUAPs (band-passed, noise-free): the
  /// error the MUAP model leaves when the MUAP is exact.
  PropertyErrors errors_true_muaps;
  bool has_properties = false;
  DecomposeStats stats; ///< what the candidates became
};

std::vector<double> abs_values(std::vector<double> v) {
  for (double& x : v)
    x = std::abs(x);
  return v;
}

nlohmann::json stats_json(const std::vector<double>& v) {
  return {{"n", v.size()},
          {"median_abs", median(abs_values(v))},
          {"mean_abs", mean_abs(v)},
          {"mean_signed",
           v.empty() ? std::numeric_limits<double>::quiet_NaN()
                     : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size())}};
}

nlohmann::json to_json(const PropertyErrors& e) {
  nlohmann::json j = {
      {"depth_mm", stats_json(e.depth_mm)},
      {"end_plate_shift_mm", stats_json(e.end_plate_mm)},
      {"cv_m_per_s", stats_json(e.cv_m_per_s)},
      {"fibres_percent", stats_json(e.fibres_percent)},
      {"normalised_mse", e.normalised_mse},
      {"per_unit",
       {{"truth", e.truth},
        {"depth_mm", e.depth_mm},
        {"end_plate_shift_mm", e.end_plate_mm},
        {"cv_m_per_s", e.cv_m_per_s},
        {"fibres_percent", e.fibres_percent},
        {"relative_residual", e.residual},
        {"relative_residual_at_truth", e.residual_at_truth},
        {"relative_residual_at_truth_own_radius", e.residual_at_truth_own_radius}}}};
  if (e.several_muscles) {
    std::vector<int> right(e.muscle_right.begin(), e.muscle_right.end());
    j["muscle_right"] = std::count(e.muscle_right.begin(), e.muscle_right.end(), 1);
    j["per_unit"]["muscle_right"] = right;
  }
  return j;
}

nlohmann::json to_json(const MethodRun& r) {
  nlohmann::json j = {{"method", r.name},
                      {"units_accepted", r.n_units},
                      {"recovered_per_iteration", r.recovered_per_iteration},
                      {"time_s", r.time_s},
                      {"candidates",
                       {{"handed_over", r.stats.n_candidates},
                        {"few_discharges", r.stats.n_few_spikes},
                        {"low_sil", r.stats.n_low_sil},
                        {"irregular", r.stats.n_irregular},
                        {"duplicates", r.stats.n_duplicates}}}};
  if (!r.iteration_time_s.empty())
    j["iteration_time_s"] = r.iteration_time_s;
  if (!r.published_per_iteration.empty())
    j["published_recovered_per_iteration"] = r.published_per_iteration;
  if (r.has_properties) {
    j["property_errors"] = to_json(r.errors);
    j["property_errors_true_muaps"] = to_json(r.errors_true_muaps);
  }
  return j;
}

/// A scored run of a decomposition whose units' found_at count candidates (or iterations):
/// recovered after iteration k = matched units found before candidate k x per_iteration.
MethodRun scored_run(const std::string& name, const Decomposition& d, double time_s,
                     const SpikeTrains& truth, double min_roa, std::int64_t n_iterations,
                     std::int64_t per_iteration) {
  MethodRun r;
  r.name = name;
  r.time_s = time_s;
  r.n_units = static_cast<std::int64_t>(d.units.size());
  r.stats = d.stats;
  const auto match = recovered_truth(d, truth, min_roa);
  for (std::int64_t it = 1; it <= n_iterations; ++it)
    r.recovered_per_iteration.push_back(recovered_before(d, match, it * per_iteration));
  return r;
}

/// Errors of the fitted properties `fits` of the true units `truth` (indices into `props`, the
/// simulation's properties): depth, end-plate shift (the truth is each fibre's own end-plate,
/// shift 0), CV, fibre count; the normalised MSE over the ranges of the true units' depths and
/// log sizes and of the model's end-plate and CV bounds.
PropertyErrors property_errors(const std::vector<FittedProperties>& fits,
                               const std::vector<std::int64_t>& truth,
                               const forward::UnitProperties& props,
                               const forward::MuapModel& model, const BmissParams& params) {
  const double depth_range = props.depth_m.maxCoeff() - props.depth_m.minCoeff();
  const double log_size_range =
      std::log(static_cast<double>(props.n_fibres.maxCoeff()) /
               static_cast<double>(std::max<std::int64_t>(1, props.n_fibres.minCoeff())));
  const double shift_range =
      model.bounds().end_plate_shift_max_m - model.bounds().end_plate_shift_min_m;
  const double cv_range = params.cv_max_m_per_s - params.cv_min_m_per_s;
  PropertyErrors e;
  double nmse = 0.0;
  int n_terms = 0;
  auto add = [&](double err, double range) {
    if (range > 0.0 && std::isfinite(err)) {
      nmse += (err / range) * (err / range);
      ++n_terms;
    }
  };
  for (std::size_t k = 0; k < fits.size(); ++k) {
    const auto u = static_cast<Eigen::Index>(truth[k]);
    const auto& p = fits[k];
    const double depth_err = p.depth_m - props.depth_m[u];
    const double shift_err = p.theta.end_plate_shift_m;
    const double cv_err = p.theta.cv_m_per_s - props.cv_m_per_s[u];
    const auto n_true = static_cast<double>(props.n_fibres[u]);
    e.truth.push_back(u);
    e.depth_mm.push_back(1e3 * depth_err);
    e.end_plate_mm.push_back(1e3 * shift_err);
    e.cv_m_per_s.push_back(cv_err);
    e.fibres_percent.push_back(100.0 * (p.theta.n_fibres - n_true) / n_true);
    add(depth_err, depth_range);
    add(shift_err, shift_range);
    add(cv_err, cv_range);
    add(std::log(p.theta.n_fibres / n_true), log_size_range);
  }
  e.normalised_mse = n_terms > 0 ? nmse / n_terms : std::numeric_limits<double>::quiet_NaN();
  return e;
}

/// A forward model as the separation sees it: the MUAP models of the muscles searched, and the
/// skin.
struct SearchModel {
  std::vector<std::unique_ptr<forward::MuapModel>> muaps;
  std::vector<const anatomy::MuscleModel*> muscles;
  const Eigen::MatrixX3d* skin = nullptr;

  [[nodiscard]] bool built() const { return !muaps.empty(); }
  [[nodiscard]] std::vector<SearchMuscle> search() const {
    std::vector<SearchMuscle> out;
    for (std::size_t m = 0; m < muaps.size(); ++m)
      out.push_back({muaps[m].get(), muscles[m]});
    return out;
  }
};

/// What every noise level shares: the true units, their MUAPs and discharges, the models.
struct BenchSetup {
  forward::EmgSimulation sim;                   ///< sim.muaps: the current arm's
  std::vector<Eigen::MatrixXd> simulated_muaps; ///< the simulation's own MUAPs
  double simulated_fs_Hz = 0.0;
  std::vector<Eigen::MatrixXd> muaps_fs; ///< the true MUAPs at the recording's rate
  std::vector<std::vector<double>> times_s;
  double fs_Hz = 0.0;
  Eigen::Index n_channels = 0;
  std::vector<std::string> muscles; ///< the muscles of the units, searched by BMISS
  /// Per true unit: its muscle (index into `muscles`) and its index in that muscle's pool.
  std::vector<std::size_t> unit_muscle, unit_index;
  SearchModel nominal, perturbed;
  double muap_time_s = 0.0, model_time_s = 0.0;
};

/// BMISS on `recording` with `m`, scored against `truth`; property errors against the true
/// units `props` (rows of the simulation's properties), of the fits to the estimated MUAPs and,
/// through the same fit, to the true MUAPs `s.muaps_fs` of the same units; with `published`,
/// the published scoring too.
MethodRun run_bmiss(const std::string& name, const forward::EmgRecording& recording,
                    const SearchModel& m, const BenchSetup& s, const BmissParams& params,
                    const SpikeTrains& truth,
                    const std::vector<forward::UnitParameters>& true_theta, double min_roa,
                    bool published, const ProgressCallback& progress) {
  const forward::UnitProperties& props = s.sim.properties;
  const std::vector<Eigen::MatrixXd>& true_muaps = s.muaps_fs;
  Stopwatch watch;
  const auto result = invert(recording, m.search(), *m.skin, params, progress);
  MethodRun run = scored_run(name, result.decomposition, watch.elapsed_s(), truth, min_roa,
                             params.n_iterations, 1);
  for (const auto& it : result.iterations)
    run.iteration_time_s.push_back(it.time_s);
  if (published)
    run.published_per_iteration =
        published_recovered(result.handed_over, truth, params.n_iterations);
  const auto match = recovered_truth(result.decomposition, truth, min_roa);
  // The recovered units: their fits, true units, estimated and true (band-passed) MUAPs.
  std::vector<FittedProperties> fits;
  std::vector<std::int64_t> units;
  std::vector<Eigen::MatrixXd> estimated, exact_muaps;
  for (std::size_t k = 0; k < match.size(); ++k)
    if (match[k] >= 0) {
      fits.push_back(result.properties[k]);
      units.push_back(match[k]);
      estimated.push_back(result.decomposition.units[k].muap);
      exact_muaps.push_back(band_passed_muap(true_muaps[static_cast<std::size_t>(match[k])],
                                             recording.fs_Hz, params.separation.preprocess)
                                .transpose());
    }
  const std::vector<SearchMuscle> search = m.search();
  std::vector<FittedProperties> exact(units.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t k = 0; k < static_cast<std::int64_t>(units.size()); ++k)
    exact[static_cast<std::size_t>(k)] =
        fit_properties(exact_muaps[static_cast<std::size_t>(k)], search, *m.skin, params);
  run.errors = property_errors(fits, units, props, *m.muaps.front(), params);
  run.errors_true_muaps = property_errors(exact, units, props, *m.muaps.front(), params);
  // The fits' residuals and the model's at the true parameters (in the true unit's muscle),
  // against the same MUAPs.
  auto residuals = [&](PropertyErrors& e, const std::vector<FittedProperties>& f,
                       const std::vector<Eigen::MatrixXd>& muaps) {
    const std::size_t n = units.size();
    e.residual.resize(n);
    e.residual_at_truth.resize(n);
    e.residual_at_truth_own_radius.resize(n);
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t k = 0; k < static_cast<std::int64_t>(n); ++k) {
      const auto i = static_cast<std::size_t>(k);
      const auto u = static_cast<std::size_t>(units[i]);
      const auto& theta = true_theta.at(u);
      const auto& model = *m.muaps[s.unit_muscle[u]];
      const auto& muscle = *m.muscles[s.unit_muscle[u]];
      e.residual[i] = f[i].relative_residual;
      e.residual_at_truth[i] = model_residual(muaps[i], model, muscle, theta, params, true);
      e.residual_at_truth_own_radius[i] =
          model_residual(muaps[i], model, muscle, theta, params, false);
    }
    if (m.muaps.size() > 1) {
      e.several_muscles = true;
      for (std::size_t i = 0; i < n; ++i)
        e.muscle_right.push_back(f[i].muscle == s.unit_muscle[static_cast<std::size_t>(units[i])]);
    }
  };
  residuals(run.errors, fits, estimated);
  residuals(run.errors_true_muaps, exact, exact_muaps);
  run.has_properties = true;
  return run;
}

/// Each true unit's parameters in the models of `m` (MuapModel::parameters_of() of its muscle
/// and pool index).
std::vector<forward::UnitParameters> true_parameters(const SearchModel& m, const BenchSetup& s) {
  std::vector<forward::UnitParameters> theta;
  for (std::size_t u = 0; u < s.unit_muscle.size(); ++u) {
    const auto& muscle = *m.muscles[s.unit_muscle[u]];
    theta.push_back(
        m.muaps[s.unit_muscle[u]]->parameters_of(muscle.fibres, muscle.pool, s.unit_index[u]));
  }
  return theta;
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

/// MUAPs at the recording's rate `fs_Hz` (band-limited resampling, as the EMG places them).
std::vector<Eigen::MatrixXd> muaps_at_rate(const forward::EmgSimulation& sim, double fs_Hz,
                                           const forward::EmgParams& emg) {
  std::vector<Eigen::MatrixXd> out(sim.muaps.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t u = 0; u < static_cast<std::int64_t>(sim.muaps.size()); ++u) {
    const auto& m = sim.muaps[static_cast<std::size_t>(u)];
    const auto n = static_cast<Eigen::Index>(
        std::floor(static_cast<double>(m.rows()) / sim.muap_fs_Hz * fs_Hz));
    const Eigen::VectorXd tau =
        Eigen::VectorXd::LinSpaced(n, 0.0, static_cast<double>(n - 1) / fs_Hz);
    Eigen::MatrixXd r(n, m.cols());
    for (Eigen::Index c = 0; c < m.cols(); ++c)
      r.col(c) = forward::resample_muap(m.col(c), sim.muap_fs_Hz, tau, fs_Hz, emg);
    out[static_cast<std::size_t>(u)] = std::move(r);
  }
  return out;
}

SearchModel search_model(const forward::SubjectForwardModel& model,
                         const std::vector<std::string>& muscles, Eigen::Index n_channels,
                         const forward::MuapModelParams& params, const ProgressCallback& progress) {
  SearchModel m;
  m.skin = &model.skin_points_m;
  for (const auto& name : muscles) {
    m.muscles.push_back(&find_muscle(model.anatomy, name));
    m.muaps.push_back(std::make_unique<forward::MuapModel>(m.muscles.back()->fibres,
                                                           m.muscles.back()->pool, model.transfer,
                                                           n_channels, params, progress));
  }
  return m;
}

/// Step 1: the simulation of the setting's units into s.sim (one muscle: its whole pool; the
/// paper setting: each muscle's share spread over its pool), with s.unit_muscle and unit_index.
void simulate_units(const BmissBenchInputs& in, BenchSetup& s, const ProgressCallback& progress) {
  const BmissBenchSettings& b = in.settings;
  const forward::SubjectForwardModel& model = *in.nominal;
  forward::SimulationParams sim_params = in.simulate;
  sim_params.muscles = s.muscles;
  sim_params.max_units_per_muscle = 0;
  sim_params.drive.duration_s = std::min(sim_params.drive.duration_s, 1.0);
  sim_params.emg.add_noise = false;
  sim_params.force.enabled = false;
  if (!b.paper()) {
    log_info("bench bmiss: MUAPs of the ", find_muscle(model.anatomy, b.muscle).pool.units.size(),
             " units of ", b.muscle, " at ", s.n_channels, " electrodes");
    s.sim = forward::simulate_emg(model.anatomy, model.transfer, s.n_channels, model.skin_points_m,
                                  sim_params, in.seed, progress);
    for (const auto& su : s.sim.units) {
      s.unit_muscle.push_back(0);
      s.unit_index.push_back(su.unit);
    }
    return;
  }
  // The paper setting: a copy of the anatomy whose pools hold only the chosen units.
  const std::vector<std::int64_t> counts = units_per_muscle(b.muscles, b.n_units);
  anatomy::SubjectAnatomy reduced = model.anatomy;
  std::vector<std::vector<std::size_t>> chosen(s.muscles.size());
  std::string summary;
  for (std::size_t m = 0; m < s.muscles.size(); ++m) {
    const anatomy::MuscleModel& muscle = find_muscle(model.anatomy, s.muscles[m]);
    std::vector<std::size_t> with_fibres;
    for (std::size_t u = 0; u < muscle.pool.units.size(); ++u)
      if (!muscle.pool.units[u].fibres.empty())
        with_fibres.push_back(u);
    chosen[m] = spread_over_pool(with_fibres, counts[m], s.muscles[m]);
    for (auto& r : reduced.muscles)
      if (r.geometry.name == s.muscles[m]) {
        std::vector<anatomy::MotorUnit> units;
        for (const std::size_t u : chosen[m])
          units.push_back(muscle.pool.units[u]);
        r.pool.units = std::move(units);
      }
    summary += (summary.empty() ? "" : ", ") + s.muscles[m] + " " + std::to_string(counts[m]) +
               " of " + std::to_string(with_fibres.size());
  }
  log_info("bench bmiss: MUAPs of ", b.n_units, " units (", summary, ") at ", s.n_channels,
           " electrodes");
  s.sim = forward::simulate_emg(reduced, model.transfer, s.n_channels, model.skin_points_m,
                                sim_params, in.seed, progress);
  for (const auto& su : s.sim.units) {
    const std::string& name = reduced.muscles[su.muscle].geometry.name;
    const auto m = static_cast<std::size_t>(std::find(s.muscles.begin(), s.muscles.end(), name) -
                                            s.muscles.begin());
    s.unit_muscle.push_back(m);
    s.unit_index.push_back(chosen.at(m).at(su.unit));
  }
}

/// The arms of the benchmark: the settings' own, or one of `muaps` at `snr_dB`.
std::vector<BmissBenchArm> arms_of(const BmissBenchSettings& b) {
  if (!b.arms.empty())
    return b.arms;
  return {BmissBenchArm{b.muaps, b.snr_dB}};
}

/// Steps 1 and 2: the true units and their simulated MUAPs, the MUAP models, the discharges.
BenchSetup set_up(const BmissBenchInputs& in, const ProgressCallback& progress) {
  const BmissBenchSettings& b = in.settings;
  const forward::SubjectForwardModel& model = *in.nominal;
  BenchSetup s;
  s.muscles = b.distinct_muscles();
  for (const auto& name : s.muscles)
    (void)find_muscle(model.anatomy, name);
  s.n_channels = model.lead_fields.lead_fields_V_per_A.cols();
  s.fs_Hz = in.simulate.emg.fs_Hz;
  // 1. The true MUAPs (the simulation's: nerve-branch delays, every fibre).
  Stopwatch muap_watch;
  simulate_units(in, s, progress);
  s.muap_time_s = muap_watch.elapsed_s();
  s.simulated_muaps = s.sim.muaps;
  s.simulated_fs_Hz = s.sim.muap_fs_Hz;
  // 2. The MUAP models (before the recordings: in a "model" arm, they make them).
  forward::MuapModelParams mp = in.muap_model;
  mp.fs_Hz = s.fs_Hz;
  const auto arms = arms_of(b);
  const bool model_arm = std::any_of(arms.begin(), arms.end(),
                                     [](const BmissBenchArm& a) { return a.muaps == "model"; });
  std::string names;
  for (const auto& name : s.muscles)
    names += (names.empty() ? "" : ", ") + name;
  Stopwatch model_watch;
  if (b.runs("bmiss") || model_arm) {
    log_info("bench bmiss: MUAP model of ", names);
    s.nominal = search_model(model, s.muscles, s.n_channels, mp, progress);
  }
  s.model_time_s = model_watch.elapsed_s();
  s.times_s = renewal_discharges(s.sim.muaps.size(), b.duration_s, b.rate_pps, b.isi_cov,
                                 Rng(in.seed).split(7));
  if (in.perturbed) {
    if (in.perturbed->lead_fields.lead_fields_V_per_A.cols() != s.n_channels)
      throw Error("bench bmiss: the perturbed model has " +
                  std::to_string(in.perturbed->lead_fields.lead_fields_V_per_A.cols()) +
                  " electrodes, the nominal " + std::to_string(s.n_channels));
    log_info("bench bmiss: MUAP model of ", names, " in the perturbed model");
    s.perturbed = search_model(*in.perturbed, s.muscles, s.n_channels, mp, progress);
  }
  return s;
}

/// The recording's MUAPs of an arm into s.sim.muaps and s.muaps_fs: the simulation's, or with
/// `muaps` "model" the MUAP model's at each unit's own parameters.
void use_muaps(const BmissBenchInputs& in, BenchSetup& s, const std::string& muaps) {
  if (muaps == "model") {
    log_info("bench bmiss: the recording's MUAPs from the MUAP model at each unit's parameters");
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t k = 0; k < static_cast<std::int64_t>(s.sim.muaps.size()); ++k) {
      const auto u = static_cast<std::size_t>(k);
      const auto& mm = *s.nominal.muaps[s.unit_muscle[u]];
      const auto& muscle = *s.nominal.muscles[s.unit_muscle[u]];
      s.sim.muaps[u] = mm.muap(mm.parameters_of(muscle.fibres, muscle.pool, s.unit_index[u]));
    }
    s.sim.muap_fs_Hz = s.fs_Hz;
  } else {
    s.sim.muaps = s.simulated_muaps;
    s.sim.muap_fs_Hz = s.simulated_fs_Hz;
  }
  s.muaps_fs = muaps_at_rate(s.sim, s.fs_Hz, in.simulate.emg);
}

/// The recording of noise level `level` (SNR `snr_dB`; +infinity: no noise) to `file` with its
/// truth.
forward::EmgResult recording_at(const BmissBenchInputs& in, const BenchSetup& s, double snr_dB,
                                std::size_t level, const std::filesystem::path& file) {
  forward::EmgParams ep = in.simulate.emg;
  ep.add_noise = std::isfinite(snr_dB);
  if (ep.add_noise)
    ep.snr_dB = snr_dB;
  forward::EmgResult emg =
      forward::synthesize_emg(s.sim.muaps, s.sim.muap_fs_Hz, s.times_s, in.settings.duration_s, ep,
                              Rng(in.seed).split(8).split(level));
  forward::write_emg_h5(file, emg, s.sim.properties, in.channels);
  return emg;
}

/// The tables of the report, a row at a time.
struct BenchTables {
  std::ostringstream recovered, properties, separability;
  bool published = false; ///< a column of the published scoring (the paper setting)

  BenchTables(std::int64_t n_iterations, bool with_published) : published(with_published) {
    if (published)
      recovered << "| arm, SNR | method | recovered after iteration 1.." << n_iterations
                << " (ours) | published rule, after iteration 1.." << n_iterations
                << " | accepted | time s | s per iteration |\n|---|---|---|---|---|---|---|\n";
    else
      recovered << "| SNR | method | recovered after iteration 1.." << n_iterations
                << " | accepted | time s |\n|---|---|---|---|---|\n";
    properties << "| SNR | model | recovered | depth mm | end-plate mm | CV m/s | fibres % | "
                  "normalised MSE | fit residual (at the truth) |\n"
                  "|---|---|---|---|---|---|---|---|---|\n";
    separability << "| SNR | R | whitened | units with \\|W c\\| >= 3 | >= 5 | >= 8 | median "
                    "\\|W c\\| | noise-limited >= 5 | exact cancellation: removed (\\|W c\\| >= "
                    "5) / recovered by the hand-over, after each round | the same, MUAPs "
                    "estimated at the true discharges "
                    "|\n|---|---|---|---|---|---|---|---|---|---|\n";
  }

  void add_properties(const std::string& tag, const std::string& model_name,
                      const PropertyErrors& e) {
    properties << "| " << tag << " | " << model_name;
    if (e.several_muscles)
      properties << " (muscle right: "
                 << std::count(e.muscle_right.begin(), e.muscle_right.end(), 1) << ")";
    properties << " | " << e.depth_mm.size() << " | ";
    if (e.depth_mm.empty()) {
      properties << "- | - | - | - | - | - |\n";
      return;
    }
    properties << fixed(median(abs_values(e.depth_mm)), 2) << " (" << fixed(mean_abs(e.depth_mm), 2)
               << ") | " << fixed(mean_abs(e.end_plate_mm), 2) << " | "
               << fixed(mean_abs(e.cv_m_per_s), 3) << " | " << fixed(mean_abs(e.fibres_percent), 1)
               << " | " << std::setprecision(3) << e.normalised_mse << " | "
               << fixed(mean_abs(e.residual), 3) << " (" << fixed(mean_abs(e.residual_at_truth), 3)
               << ") |\n";
  }

  void add_run(const std::string& tag, const MethodRun& r) {
    recovered << "| " << tag << " | " << r.name << " | ";
    for (std::size_t k = 0; k < r.recovered_per_iteration.size(); ++k)
      recovered << (k ? " " : "") << r.recovered_per_iteration[k];
    if (published) {
      recovered << " | ";
      for (std::size_t k = 0; k < r.published_per_iteration.size(); ++k)
        recovered << (k ? " " : "") << r.published_per_iteration[k];
      if (r.published_per_iteration.empty())
        recovered << "-";
    }
    recovered << " | " << r.n_units << " | " << fixed(r.time_s, 1);
    if (published) {
      recovered << " | ";
      if (r.iteration_time_s.empty())
        recovered << "-";
      else
        recovered << fixed(*std::min_element(r.iteration_time_s.begin(), r.iteration_time_s.end()),
                           1)
                  << "-"
                  << fixed(*std::max_element(r.iteration_time_s.begin(), r.iteration_time_s.end()),
                           1);
    }
    recovered << " |\n";
    if (r.has_properties) {
      const std::string model_name = r.name == "BMISS" ? "same" : "perturbed";
      add_properties(tag, model_name, r.errors);
      add_properties(tag, model_name + ", true MUAPs", r.errors_true_muaps);
    }
  }
};

/// The upper bound at one noise level, with the separability of the true units and the
/// cancellation rounds: its run, and a row of the separability table and its JSON.
MethodRun upper_bound_level(const BmissBenchInputs& in, const BenchSetup& s,
                            const forward::EmgRecording& recording, const forward::EmgResult& emg,
                            const SpikeTrains& truth, const std::string& tag, BenchTables& tables,
                            nlohmann::json& separability) {
  const BmissParams& params = in.invert;
  const double min_roa = in.settings.min_roa;
  Stopwatch watch;
  std::vector<double> sep;
  std::vector<HandedOver> handed;
  const auto upper = upper_bound(recording, s.muaps_fs, params, sep, handed);
  MethodRun run =
      scored_run("true MUAPs", upper, watch.elapsed_s(), truth, min_roa, params.n_iterations, 1);
  if (in.settings.paper())
    run.published_per_iteration = published_recovered(handed, truth, params.n_iterations);
  // Without noise nothing but the other units limits a unit: the noise-only bound is infinite.
  const bool noiseless = emg.noise_rms_V.size() == 0 || !(emg.noise_rms_V.maxCoeff() > 0.0);
  const std::vector<double> bound =
      noiseless ? std::vector<double>(s.muaps_fs.size(), std::numeric_limits<double>::infinity())
                : noise_limited_separability(s.muaps_fs, emg.noise_rms_V, s.fs_Hz,
                                             params.separation.preprocess);
  auto count_above = [](const std::vector<double>& v, double t) {
    return std::count_if(v.begin(), v.end(), [t](double x) { return x >= t; });
  };
  auto& md = tables.separability;
  md << "| " << tag << " | " << upper.extension_factor << " | " << upper.stats.n_whitened;
  for (const double t : {3.0, 5.0, 8.0})
    md << " | " << count_above(sep, t);
  CancellationRounds rounds[2];
  if (in.settings.cancellation_bounds)
    for (const bool estimated : {false, true})
      rounds[estimated] = cancellation_rounds(recording, s.sim.muaps, s.sim.muap_fs_Hz, s.muaps_fs,
                                              s.times_s, truth, in.settings.duration_s,
                                              in.simulate.emg, params, 5.0, min_roa, estimated);
  md << " | " << fixed(median(sep), 2) << " | " << count_above(bound, 5.0);
  for (const auto& r : rounds) {
    md << " | ";
    for (std::size_t k = 0; k < r.removed.size(); ++k)
      md << (k ? " " : "") << r.removed[k] << "/" << r.recovered[k];
    if (!in.settings.cancellation_bounds)
      md << "-";
  }
  md << " |\n";
  separability = {{"extension_factor", upper.extension_factor},
                  {"n_whitened", upper.stats.n_whitened},
                  {"norm_per_unit", sep},
                  {"noise_limited_per_unit", bound}};
  if (in.settings.cancellation_bounds) {
    separability["exact_cancellation_removed"] = rounds[0].removed;
    separability["exact_cancellation_recovered"] = rounds[0].recovered;
    separability["estimated_cancellation_removed"] = rounds[1].removed;
    separability["estimated_cancellation_recovered"] = rounds[1].recovered;
  }
  return run;
}

/// The name of a noise level: "20 dB", or "no noise".
std::string snr_name(double snr_dB) {
  return std::isfinite(snr_dB) ? format_number(snr_dB) + " dB" : "no noise";
}

/// The recording's file of a level: emg_<SNR>dB.h5 (one-muscle), emg_<arm>_<SNR>dB.h5 or
/// emg_<arm>_noiseless.h5 (paper).
std::filesystem::path recording_file(const BmissBenchInputs& in, const BmissBenchArm& arm,
                                     double snr_dB) {
  const std::string level = std::isfinite(snr_dB) ? format_number(snr_dB) + "dB" : "noiseless";
  return in.recordings_dir /
         ("emg_" + (in.settings.paper() ? arm.muaps + "_" : std::string()) + level + ".h5");
}

/// Every method at noise level `level` (SNR `snr_dB` of `arm`): the level's JSON, rows added to
/// `tables`.
nlohmann::json run_level(const BmissBenchInputs& in, const BenchSetup& s, const BmissBenchArm& arm,
                         double snr_dB, std::size_t level, BenchTables& tables,
                         const ProgressCallback& progress) {
  const BmissBenchSettings& b = in.settings;
  const BmissParams& params = in.invert;
  const std::filesystem::path file = recording_file(in, arm, snr_dB);
  const forward::EmgResult emg = recording_at(in, s, snr_dB, level, file);
  SpikeTrains truth;
  truth.source = "truth";
  truth.fs_Hz = emg.fs_Hz;
  for (std::size_t u = 0; u < s.sim.muaps.size(); ++u) {
    truth.unit_id.push_back(static_cast<std::int64_t>(u));
    auto t = emg.spike_samples[u];
    std::sort(t.begin(), t.end());
    truth.samples.push_back(std::move(t));
  }
  forward::EmgRecording recording;
  recording.source = file;
  recording.fs_Hz = emg.fs_Hz;
  recording.emg = emg.emg;
  recording.grid_row_col = in.channels.grid_row_col;
  const std::string tag = (b.paper() ? arm.muaps + ", " : std::string()) + snr_name(snr_dB);
  nlohmann::json lj = {{"snr_dB", snr_dB}, {"methods", nlohmann::json::array()}};
  if (b.paper()) {
    lj["recording_muaps"] = arm.muaps;
    lj["noise"] = std::isfinite(snr_dB);
  }
  std::vector<MethodRun> runs;
  auto bmiss = [&](const std::string& name, const SearchModel& m) {
    log_info("bench bmiss: ", tag, ": ", name);
    runs.push_back(run_bmiss(name, recording, m, s, params, truth, true_parameters(m, s), b.min_roa,
                             b.paper(), progress));
  };
  if (b.runs("bmiss"))
    bmiss("BMISS", s.nominal);
  if (b.runs("blind")) {
    log_info("bench bmiss: ", tag, ": blind separation");
    DecomposeParams blind = params.separation;
    blind.n_iterations = params.n_iterations * std::max<std::int64_t>(1, params.n_refine);
    blind.candidates_per_unit = 0; // the same budget of candidates, whatever they give
    Stopwatch watch;
    const auto result = decompose(recording, blind, progress);
    const std::int64_t per_iteration = std::max<std::int64_t>(1, params.n_refine);
    runs.push_back(scored_run("blind", result, watch.elapsed_s(), truth, b.min_roa,
                              params.n_iterations, per_iteration));
    if (b.paper()) { // its accepted units' sources (decompose() keeps no others)
      std::vector<HandedOver> handed;
      const auto min_distance = std::max<std::int64_t>(
          1, std::llround(params.separation.min_peak_distance_ms * 1e-3 * result.fs_Hz));
      for (const auto& u : result.units)
        handed.push_back({u.found_at / per_iteration, peaks_above(u.source, 0.3, min_distance)});
      runs.back().published_per_iteration = published_recovered(handed, truth, params.n_iterations);
    }
  }
  if (b.runs("upper")) {
    log_info("bench bmiss: ", tag, ": upper bound (true MUAPs)");
    nlohmann::json sep;
    runs.push_back(upper_bound_level(in, s, recording, emg, truth, tag, tables, sep));
    sep["snr_dB"] = snr_dB;
    lj["separability"] = sep;
  }
  if (s.perturbed.built())
    bmiss("BMISS, perturbed model", s.perturbed);
  for (const auto& r : runs) {
    lj["methods"].push_back(to_json(r));
    tables.add_run(tag, r);
  }
  return lj;
}

} // namespace

void check_settings(const BmissBenchSettings& b) {
  if (b.setting != "one-muscle" && b.setting != "paper")
    throw BadInput("bench bmiss: --setting \"" + b.setting + "\": expected one-muscle or paper");
  auto check_snr = [](double snr) {
    if (std::isnan(snr) || snr == -std::numeric_limits<double>::infinity())
      throw BadInput("bench bmiss: --snr: expected finite values [dB] (or none), got " +
                     format_number(snr));
  };
  for (const double snr : b.snr_dB)
    check_snr(snr);
  for (const auto& arm : b.arms) {
    for (const double snr : arm.snr_dB)
      check_snr(snr);
    if (arm.muaps != "simulation" && arm.muaps != "model")
      throw BadInput("bench bmiss: --muaps \"" + arm.muaps + "\": expected simulation or model");
  }
  if (b.paper() && b.muscles.empty())
    throw BadInput("bench bmiss: --muscles: expected at least one muscle in the paper setting");
  for (const auto& m : b.methods)
    if (m != "bmiss" && m != "blind" && m != "upper" && m != "perturbed")
      throw BadInput("bench bmiss: --methods: \"" + m +
                     "\": expected bmiss, blind, upper or perturbed");
  if (b.muaps != "simulation" && b.muaps != "model")
    throw BadInput("bench bmiss: --muaps \"" + b.muaps + "\": expected simulation or model");
  if (b.n_units < 1 || !(b.duration_s > 0.0) || !(b.rate_pps > 0.0) ||
      !std::isfinite(b.duration_s) || !std::isfinite(b.rate_pps))
    throw BadInput("bench bmiss: --units " + std::to_string(b.n_units) + " --duration " +
                   format_number(b.duration_s) + " --rate " + format_number(b.rate_pps) +
                   ": each must be finite and > 0");
}

bool BmissBenchSettings::runs(const std::string& method) const {
  return std::find(methods.begin(), methods.end(), method) != methods.end();
}

std::vector<std::string> BmissBenchSettings::distinct_muscles() const {
  if (!paper())
    return {muscle};
  std::vector<std::string> out;
  for (const auto& m : muscles)
    if (std::find(out.begin(), out.end(), m) == out.end())
      out.push_back(m);
  return out;
}

std::vector<std::int64_t> units_per_muscle(const std::vector<std::string>& shares,
                                           std::int64_t n_units) {
  std::vector<std::string> distinct;
  for (const auto& m : shares)
    if (std::find(distinct.begin(), distinct.end(), m) == distinct.end())
      distinct.push_back(m);
  std::vector<std::int64_t> counts(distinct.size(), 0);
  for (std::int64_t k = 0; k < n_units && !shares.empty(); ++k) {
    const auto& name = shares[static_cast<std::size_t>(k) % shares.size()];
    ++counts[static_cast<std::size_t>(std::find(distinct.begin(), distinct.end(), name) -
                                      distinct.begin())];
  }
  return counts;
}

std::vector<std::size_t> spread_over_pool(const std::vector<std::size_t>& with_fibres,
                                          std::int64_t n, const std::string& muscle) {
  const auto size = static_cast<std::int64_t>(with_fibres.size());
  if (n > size)
    throw BadInput("bench bmiss: muscle \"" + muscle + "\" gets " + std::to_string(n) +
                   " units but its pool has " + std::to_string(size) +
                   " with fibres (--units, --muscles)");
  std::vector<std::size_t> out;
  for (std::int64_t i = 0; i < n; ++i)
    out.push_back(with_fibres[static_cast<std::size_t>(std::floor(
        (static_cast<double>(i) + 0.5) * static_cast<double>(size) / static_cast<double>(n)))]);
  return out;
}

std::vector<std::int64_t> published_recovered(const std::vector<HandedOver>& handed,
                                              const SpikeTrains& truth, std::int64_t n_iterations,
                                              double min_recall) {
  const auto max_lag = std::max<std::int64_t>(0, std::llround(0.05 * truth.fs_Hz));
  // Per true unit, the first iteration whose sources recover it (exact: any order).
  std::vector<std::int64_t> first(truth.samples.size(), std::numeric_limits<std::int64_t>::max());
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t u = 0; u < static_cast<std::int64_t>(truth.samples.size()); ++u) {
    const auto& t = truth.samples[static_cast<std::size_t>(u)];
    auto& f = first[static_cast<std::size_t>(u)];
    for (const auto& h : handed) {
      // Recall above min_recall needs at least that many peaks.
      if (t.empty() || h.iteration >= f ||
          static_cast<double>(h.peaks.size()) <= min_recall * static_cast<double>(t.size()))
        continue;
      const PairAgreement a = compare_trains(h.peaks, t, 0, max_lag);
      if (static_cast<double>(a.common) > min_recall * static_cast<double>(t.size()))
        f = h.iteration;
    }
  }
  std::vector<std::int64_t> out;
  for (std::int64_t k = 1; k <= n_iterations; ++k)
    out.push_back(std::count_if(first.begin(), first.end(), [k](std::int64_t f) { return f < k; }));
  return out;
}

BmissBenchReport run_bmiss_benchmark(const BmissBenchInputs& in, bool recordings_only,
                                     const ProgressCallback& progress) {
  Stopwatch total;
  const BmissBenchSettings& b = in.settings;
  check_settings(b);
  BenchSetup s = set_up(in, progress);
  BenchTables tables(in.invert.n_iterations, b.paper());
  nlohmann::json levels = nlohmann::json::array();
  bool has_separability = false;
  std::size_t level = 0;
  for (const auto& arm : arms_of(b)) {
    use_muaps(in, s, arm.muaps);
    for (const double snr : arm.snr_dB) {
      if (recordings_only)
        (void)recording_at(in, s, snr, level, recording_file(in, arm, snr));
      else
        levels.push_back(run_level(in, s, arm, snr, level, tables, progress));
      ++level;
      has_separability =
          has_separability || (!recordings_only && levels.back().contains("separability"));
    }
  }
  if (recordings_only)
    return {};
  BmissBenchReport report;
  report.json = {{"muscle", b.muscle},
                 {"n_units", s.sim.muaps.size()},
                 {"n_channels", s.n_channels},
                 {"duration_s", b.duration_s},
                 {"rate_pps", b.rate_pps},
                 {"isi_cov", b.isi_cov},
                 {"min_roa", b.min_roa},
                 {"recording_muaps", b.muaps},
                 {"tolerance_ms", 0.5},
                 {"perturbation", in.perturbed ? b.perturbation : 0.0},
                 {"invert", to_json(in.invert)},
                 {"time_s",
                  {{"true_muaps", s.muap_time_s},
                   {"muap_model", s.model_time_s},
                   {"total", in.setup_time_s + total.elapsed_s()}}},
                 {"levels", levels}};
  std::ostringstream doc;
  if (b.paper()) {
    std::vector<std::string> unit_muscle;
    for (const auto m : s.unit_muscle)
      unit_muscle.push_back(s.muscles[m]);
    const auto counts = units_per_muscle(b.muscles, b.n_units);
    report.json["setting"] = "paper";
    report.json["muscle"] = s.muscles;
    report.json["units_per_muscle"] = counts;
    report.json["unit_muscle"] = unit_muscle;
    report.json["unit_pool_index"] = s.unit_index;
    report.json.erase("recording_muaps");
    std::string split;
    for (std::size_t m = 0; m < s.muscles.size(); ++m)
      split += (m ? ", " : "") + s.muscles[m] + " " + std::to_string(counts[m]);
    doc << "Model-informed separation benchmark, the published setting: " << s.sim.muaps.size()
        << " units over " << s.muscles.size() << " muscles (" << split
        << "; each muscle's units spread over its pool), searched over all of them at once, "
        << s.n_channels << " channels, " << format_number(b.duration_s) << " s, "
        << format_number(b.rate_pps) << " pps (CoV " << format_number(b.isi_cov)
        << "). Arms: MUAPs of the recording from the MUAP model that inverts (model) or from the "
           "simulation (every fibre). Ours: RoA >= "
        << format_number(b.min_roa)
        << " at 0.5 ms, one-to-one, accepted units only; published rule: distinct true units "
           "that some source handed over (accepted or not; blind: its accepted units) matches "
           "with recall > 0.9 (peaks above 0.3 of its maximum, exact sample at the best lag). "
           "Errors: mean |error| (depth: median (mean)).\n\n";
  } else {
    doc << "Model-informed separation benchmark: " << s.sim.muaps.size() << " units of " << b.muscle
        << ", " << s.n_channels << " channels, " << format_number(b.duration_s) << " s, "
        << format_number(b.rate_pps) << " pps (CoV " << format_number(b.isi_cov)
        << "), MUAPs of the recording from the "
        << (b.muaps == "model" ? "MUAP model (the model that inverts generates the data)"
                               : "simulation (every fibre)")
        << "; recovered = RoA >= " << format_number(b.min_roa)
        << " at 0.5 ms. Errors: mean |error| (depth: median (mean)).\n\n";
  }
  doc << tables.recovered.str() << "\n" << tables.properties.str() << "\n";
  if (has_separability)
    doc << "Separability of the true units (norm of the whitened mixing column at the best "
           "delay: the matched filter's peak over a unit-variance background):\n\n"
        << tables.separability.str() << "\n";
  doc << "True MUAPs " << fixed(s.muap_time_s, 1) << " s, MUAP model " << fixed(s.model_time_s, 1)
      << " s, total " << fixed(in.setup_time_s + total.elapsed_s(), 1) << " s.\n";
  report.markdown = doc.str();
  return report;
}

std::filesystem::path write_bench_subject(const std::filesystem::path& dir,
                                          const std::filesystem::path& labels,
                                          const std::filesystem::path& tissues,
                                          const std::string& muscle, std::int64_t n_units,
                                          double scale) {
  ensure_output_dir(dir);
  nlohmann::json table = parse_json(read_text_file(tissues), tissues.string());
  bool found = muscle.empty();
  for (auto& t : table.at("tissues")) {
    const std::string cls = t.value("class", "");
    if (cls == "muscle") {
      for (const char* key : {"sigma_l_S_per_m", "sigma_t_S_per_m"})
        if (t.contains(key))
          t[key] = t[key].get<double>() * (1.0 + scale);
      if (t.value("name", "") == muscle) {
        t["n_motor_units"] = n_units;
        found = true;
      }
    } else if (cls == "fat" && t.contains("sigma_S_per_m")) {
      t["sigma_S_per_m"] = t["sigma_S_per_m"].get<double>() * (1.0 - scale);
    }
  }
  if (!found)
    throw BadInput("bench bmiss: --muscle \"" + muscle + "\" is not a muscle of " +
                   tissues.string());
  write_text_file(dir / "tissues.json", table.dump(2) + "\n");
  const nlohmann::json subject = {
      {"name", "bench_bmiss"}, {"labels", labels.string()}, {"tissues", "tissues.json"}};
  write_text_file(dir / "subject.json", subject.dump(2) + "\n");
  return dir / "subject.json";
}

std::vector<std::vector<double>> renewal_discharges(std::size_t n_units, double duration_s,
                                                    double rate_pps, double cov, const Rng& rng) {
  std::vector<std::vector<double>> times(n_units);
  const double mean = 1.0 / rate_pps, sd = cov * mean;
  for (std::size_t u = 0; u < n_units; ++u) {
    Rng r = rng.split(u);
    auto isi = [&] {
      for (;;) {
        const double d = r.normal(mean, sd);
        if (d >= 0.02)
          return d;
      }
    };
    for (double t = r.uniform() * isi(); t < duration_s; t += isi())
      times[u].push_back(t);
  }
  return times;
}

std::vector<std::int64_t> recovered_truth(const Decomposition& d, const SpikeTrains& truth,
                                          double min_roa) {
  std::vector<std::int64_t> out(d.units.size(), -1);
  if (d.units.empty())
    return out;
  ScoreParams sp;
  sp.tolerance_ms = 0.5;
  const auto result = score(trains_of(d), truth, sp);
  for (const auto& m : result.matches)
    if (m.agreement.roa >= min_roa)
      out[static_cast<std::size_t>(m.decomposed)] = m.truth;
  return out;
}

std::vector<double> noise_limited_separability(const std::vector<Eigen::MatrixXd>& muaps,
                                               const Eigen::VectorXd& noise_rms_V, double fs_Hz,
                                               const PreprocessParams& filter) {
  const auto pad = static_cast<Eigen::Index>(std::ceil(0.5 * fs_Hz));
  Eigen::MatrixXd impulse = Eigen::MatrixXd::Zero(1, 2 * pad + 1);
  impulse(0, pad) = 1.0;
  (void)filter_signals(impulse, fs_Hz, filter);
  const double gain = impulse.squaredNorm();
  std::vector<double> out(muaps.size(), 0.0);
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t u = 0; u < static_cast<std::int64_t>(muaps.size()); ++u) {
    const Eigen::MatrixXd m = band_passed_muap(muaps[static_cast<std::size_t>(u)], fs_Hz, filter);
    double sum = 0.0;
    for (Eigen::Index c = 0; c < m.cols(); ++c)
      if (noise_rms_V[c] > 0.0)
        sum += m.col(c).squaredNorm() / (noise_rms_V[c] * noise_rms_V[c] * gain);
    out[static_cast<std::size_t>(u)] = std::sqrt(sum);
  }
  return out;
}

} // namespace myotwin::inversion
