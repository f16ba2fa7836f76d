// `myotwin bench bmiss -o OUT`: the model-informed separation benchmark (issue 9, after the
// setting of Halatsis et al. 2025). N motor units (default 100) in one muscle of the subject
// (default: the sample forearm's ED), a 10 x 32 grid wrapped around the forearm (the config's
// `electrodes`, whose default this is), 10 s at 2048 Hz of independent discharges (renewal, mean
// rate 10 Hz, CoV of ISI 0.3), white noise at 20, 10 and 0 dB. For every noise level the
// recording is separated three ways, with the same budget of hand-overs to the fixed-point
// refinement per iteration (invert.n_refine):
//   - BMISS: invert() through the MUAP model of the subject;
//   - blind: decompose() with n_iterations = iterations x n_refine candidates;
//   - upper bound: separation vectors from the true MUAPs (n_refine per iteration, the most
//     separable units not yet accepted), each handed over exactly as BMISS hands over its
//     refined candidates;
// and, with a perturbed forward model (the phantom regenerated with subcutaneous fat 20 %
// thicker, muscle conductivities 20 % higher and fat conductivity 20 % lower, the fibres and
// electrodes of that model), BMISS again. Units recovered (RoA >= 0.9 at 0.5 ms tolerance)
// after each iteration, property errors of the recovered BMISS units (depth mm, end-plate shift
// mm, CV m/s against the CV its fibres realise, fibre count %), the same errors of fits to
// those units' true MUAPs (the MUAP model's own floor), and times; table on stdout,
// OUT/bench_bmiss.json and .md. With the
// upper bound, the separability of every true unit: the norm of its whitened mixing column (the
// matched filter's peak over a unit-variance background) and the bound the noise alone sets.
// `--methods` picks the methods to run.
//
// The earlier stages (anatomy, mesh, lead fields) run through `myotwin pipeline --until
// leadfield` in OUT/nominal (and OUT/perturbed), so that a rerun reuses them.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/subject_model.hpp"
#include "myotwin/inversion/bmiss.hpp"
#include "myotwin/inversion/score.hpp"

namespace myotwin::app {

namespace {

/// The benchmark's own settings (command-line options).
struct BmissBenchOptions {
  std::filesystem::path subject;
  std::string muscle = "ED";
  std::int64_t n_units = 100;
  double duration_s = 10.0;
  double rate_pps = 10.0;
  double isi_cov = 0.3;
  std::vector<double> snr_dB = {20.0, 10.0, 0.0};
  double perturbation = 0.2;
  bool perturbed = true;
  double min_roa = 0.9;
  /// Where the recording's MUAPs come from (`--muaps`): "simulation" (every fibre of each unit
  /// through the lead fields, as `myotwin simulate`) or "model" (the MUAP model at each unit's
  /// own parameters: the model that inverts generates the data exactly, the published setting).
  std::string muaps = "simulation";
  /// Methods to run (`--methods`): any of bmiss, blind, upper, perturbed.
  std::vector<std::string> methods = {"bmiss", "blind", "upper", "perturbed"};

  [[nodiscard]] bool runs(const std::string& method) const {
    return std::find(methods.begin(), methods.end(), method) != methods.end();
  }
};

/// Independent renewal discharges: Gaussian ISIs of mean 1 / rate and SD cov / rate (redrawn
/// below 20 ms), the first at a uniform phase of the first interval; unit u draws from
/// rng.split(u).
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

/// A subject folder beside `out`: the labels of `labels` (by absolute path), the tissue table
/// `tissues` with muscle `muscle` given `n_units` motor units and, for `scale` != 0, muscle
/// conductivities times (1 + scale) and fat conductivities times (1 - scale). Returns the
/// subject file.
std::filesystem::path write_bench_subject(const std::filesystem::path& dir,
                                          const std::filesystem::path& labels,
                                          const std::filesystem::path& tissues,
                                          const std::string& muscle, std::int64_t n_units,
                                          double scale) {
  ensure_output_dir(dir);
  nlohmann::json table = read_json(tissues);
  bool found = false;
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

/// Runs `myotwin ARGS`; throws naming `what` when it fails.
void run_stage(const std::string& what, const std::vector<std::string>& args) {
  const int code = run_self(args);
  if (code != 0) {
    const std::string message =
        "bench bmiss: " + what + " failed (exit code " + std::to_string(code) + ")";
    if (code == static_cast<int>(ExitCode::bad_input))
      throw BadInput(message);
    throw Error(message);
  }
}

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
inversion::SpikeTrains trains_of(const inversion::Decomposition& d) {
  inversion::SpikeTrains t;
  t.source = "decomposition";
  t.fs_Hz = d.fs_Hz;
  for (std::size_t k = 0; k < d.units.size(); ++k) {
    t.unit_id.push_back(static_cast<std::int64_t>(k));
    t.samples.push_back(d.units[k].discharges);
  }
  return t;
}

/// Per decomposed unit: the true unit it recovers (RoA >= min_roa), or -1.
std::vector<std::int64_t> recovered_truth(const inversion::Decomposition& d,
                                          const inversion::SpikeTrains& truth, double min_roa) {
  std::vector<std::int64_t> out(d.units.size(), -1);
  if (d.units.empty())
    return out;
  inversion::ScoreParams sp;
  sp.tolerance_ms = 0.5;
  const auto result = inversion::score(trains_of(d), truth, sp);
  for (const auto& m : result.matches)
    if (m.agreement.roa >= min_roa)
      out[static_cast<std::size_t>(m.decomposed)] = m.truth;
  return out;
}

/// Units recovered among those found before candidate (or iteration) `limit`.
std::int64_t recovered_before(const inversion::Decomposition& d,
                              const std::vector<std::int64_t>& match, std::int64_t limit) {
  std::int64_t n = 0;
  for (std::size_t k = 0; k < d.units.size(); ++k)
    n += match[k] >= 0 && d.units[k].found_at < limit;
  return n;
}

/// |W c| of every unit in `data` (whitened_column(): the matched filter's peak-to-background
/// ratio).
std::vector<double> separability_of(const std::vector<Eigen::MatrixXd>& muaps,
                                    const inversion::WhitenedEmg& data,
                                    const inversion::PreprocessParams& filter) {
  std::vector<double> out(muaps.size(), 0.0);
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t u = 0; u < static_cast<std::int64_t>(muaps.size()); ++u)
    out[static_cast<std::size_t>(u)] =
        inversion::whitened_column(muaps[static_cast<std::size_t>(u)], data, filter).norm();
  return out;
}

/// The upper bound: separation vectors from the true MUAPs (`muaps` at the recording's rate,
/// unfiltered), handed over as in invert(), n_refine per iteration: the units not yet accepted
/// with the largest separability |W c| in the current data (with cancellation, the whitened
/// residual: a unit tried before is tried again only when its |W c| has grown by 10 % since).
/// `separability` receives, per unit, |W c| before any unit is removed.
inversion::Decomposition upper_bound(const inversion::EmgRecording& recording,
                                     const std::vector<Eigen::MatrixXd>& muaps,
                                     const inversion::BmissParams& params,
                                     std::vector<double>& separability) {
  inversion::DecomposeStats stats;
  inversion::WhitenedEmg data =
      inversion::whiten_emg(recording, inversion::separation_space(params), stats);
  const auto& filter = params.separation.preprocess;
  separability = separability_of(muaps, data, filter);
  const auto per_iteration = static_cast<std::size_t>(std::max<std::int64_t>(1, params.n_refine));
  std::vector<double> tried_at(muaps.size(), 0.0); // |W c| at the last try (0: never tried)
  std::vector<char> accepted_unit(muaps.size(), 0);
  inversion::AcceptedUnits accepted;
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
      const auto c = inversion::score_muap(muaps[u], data, accepted.vectors(), filter);
      if (c.w.size() == 0)
        continue;
      const std::size_t before = accepted.size();
      const auto v = inversion::hand_over(c.w, it, data, accepted, params, stats);
      if (v == inversion::Verdict::accepted && accepted.size() > before) {
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
  return accepted.finish(data, inversion::separation_space(params), stats);
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
CancellationRounds cancellation_rounds(const inversion::EmgRecording& recording,
                                       const std::vector<Eigen::MatrixXd>& muaps, double muap_fs_Hz,
                                       const std::vector<Eigen::MatrixXd>& muaps_fs,
                                       const std::vector<std::vector<double>>& times_s,
                                       const inversion::SpikeTrains& truth, double duration_s,
                                       forward::EmgParams emg_params,
                                       const inversion::BmissParams& params, double threshold,
                                       double min_roa, bool estimated) {
  const std::int64_t half =
      std::llround(params.separation.peel_off_window_ms / 2.0 * 1e-3 * recording.fs_Hz);
  const auto& filter = params.separation.preprocess;
  emg_params.add_noise = false;
  inversion::EmgRecording residual = recording;
  std::vector<bool> removed(muaps.size(), false), recovered(muaps.size(), false);
  CancellationRounds out;
  std::int64_t n_removed = 0;
  for (std::size_t round = 0; round < muaps.size(); ++round) {
    inversion::DecomposeStats stats;
    inversion::WhitenedEmg data =
        inversion::whiten_emg(residual, inversion::separation_space(params), stats);
    std::vector<double> sep = separability_of(muaps_fs, data, filter);
    std::vector<std::size_t> separable;
    for (std::size_t u = 0; u < muaps.size(); ++u)
      if (!removed[u] && sep[u] >= threshold)
        separable.push_back(u);
    if (separable.empty())
      break;
    std::stable_sort(separable.begin(), separable.end(),
                     [&](std::size_t a, std::size_t b) { return sep[a] > sep[b]; });
    inversion::AcceptedUnits accepted;
    for (const std::size_t u : separable) {
      const auto c = inversion::score_muap(muaps_fs[u], data, accepted.vectors(), filter);
      if (c.w.size() == 0)
        continue;
      (void)inversion::hand_over(c.w, 0, data, accepted, params, stats);
    }
    inversion::Decomposition found;
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
      (void)inversion::subtract_units(residual.emg, trains, half);
    } else {
      residual.emg -=
          forward::synthesize_emg(sub_muaps, muap_fs_Hz, sub_times, duration_s, emg_params, Rng(0))
              .emg_clean;
    }
  }
  return out;
}

/// Per unit, the separability that the noise alone allows: the matched filter's peak over the
/// band-passed noise with the whole MUAP (every sample, every channel) and no other unit,
/// sqrt(sum_c |m_c|^2 / (sigma_c^2 g)), m_c the band-passed MUAP of channel c, sigma_c that
/// channel's noise rms and g the noise power gain of the band-pass. No linear filter of any
/// extension does better; a unit below about 5 cannot be detected reliably by any.
std::vector<double> noise_limited_separability(const std::vector<Eigen::MatrixXd>& muaps,
                                               const Eigen::VectorXd& noise_rms_V, double fs_Hz,
                                               const inversion::PreprocessParams& filter) {
  const auto pad = static_cast<Eigen::Index>(std::ceil(0.5 * fs_Hz));
  Eigen::MatrixXd impulse = Eigen::MatrixXd::Zero(1, 2 * pad + 1);
  impulse(0, pad) = 1.0;
  (void)inversion::filter_signals(impulse, fs_Hz, filter);
  const double gain = impulse.squaredNorm();
  std::vector<double> out(muaps.size(), 0.0);
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t u = 0; u < static_cast<std::int64_t>(muaps.size()); ++u) {
    const Eigen::MatrixXd m =
        inversion::band_passed_muap(muaps[static_cast<std::size_t>(u)], fs_Hz, filter);
    double sum = 0.0;
    for (Eigen::Index c = 0; c < m.cols(); ++c)
      if (noise_rms_V[c] > 0.0)
        sum += m.col(c).squaredNorm() / (noise_rms_V[c] * noise_rms_V[c] * gain);
    out[static_cast<std::size_t>(u)] = std::sqrt(sum);
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
};

double median(std::vector<double> v) {
  if (v.empty())
    return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double mean_abs(const std::vector<double>& v) {
  if (v.empty())
    return std::numeric_limits<double>::quiet_NaN();
  double s = 0.0;
  for (const double x : v)
    s += std::abs(x);
  return s / static_cast<double>(v.size());
}

/// Outcome of one separation method on one recording.
struct MethodRun {
  std::string name;
  std::vector<std::int64_t> recovered_per_iteration;
  std::int64_t n_units = 0;
  double time_s = 0.0;
  std::vector<double> iteration_time_s;
  PropertyErrors errors;
  /// The same units' properties fitted to their true MUAPs (band-passed, noise-free): the
  /// error the MUAP model leaves when the MUAP is exact.
  PropertyErrors errors_true_muaps;
  bool has_properties = false;
  inversion::DecomposeStats stats; ///< what the candidates became
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
  return {{"depth_mm", stats_json(e.depth_mm)},
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
  if (r.has_properties) {
    j["property_errors"] = to_json(r.errors);
    j["property_errors_true_muaps"] = to_json(r.errors_true_muaps);
  }
  return j;
}

/// A scored run of a decomposition whose units' found_at count candidates (or iterations):
/// recovered after iteration k = matched units found before candidate k x per_iteration.
MethodRun scored_run(const std::string& name, const inversion::Decomposition& d, double time_s,
                     const inversion::SpikeTrains& truth, double min_roa, std::int64_t n_iterations,
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
PropertyErrors property_errors(const std::vector<inversion::FittedProperties>& fits,
                               const std::vector<std::int64_t>& truth,
                               const forward::UnitProperties& props,
                               const forward::MuapModel& model,
                               const inversion::BmissParams& params) {
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

/// BMISS on `recording` with `model` (of `muscle`, skin `skin`), scored against `truth`;
/// property errors against the true units `props` (rows of the simulation's properties), of the
/// fits to the estimated MUAPs and, through the same fit, to the true MUAPs `true_muaps` (at the
/// recording's rate, unfiltered) of the same units.
MethodRun run_bmiss(const std::string& name, const inversion::EmgRecording& recording,
                    const forward::MuapModel& model, const anatomy::MuscleModel& muscle,
                    const Eigen::MatrixX3d& skin, const inversion::BmissParams& params,
                    const inversion::SpikeTrains& truth, const forward::UnitProperties& props,
                    const std::vector<Eigen::MatrixXd>& true_muaps,
                    const std::vector<forward::UnitParameters>& true_theta, double min_roa,
                    const ProgressCallback& progress) {
  Stopwatch watch;
  const auto result = inversion::invert(recording, model, muscle, skin, params, progress);
  MethodRun run = scored_run(name, result.decomposition, watch.elapsed_s(), truth, min_roa,
                             params.n_iterations, 1);
  for (const auto& it : result.iterations)
    run.iteration_time_s.push_back(it.time_s);
  const auto match = recovered_truth(result.decomposition, truth, min_roa);
  // The recovered units: their fits, true units, estimated and true (band-passed) MUAPs.
  std::vector<inversion::FittedProperties> fits;
  std::vector<std::int64_t> units;
  std::vector<Eigen::MatrixXd> estimated, exact_muaps;
  for (std::size_t k = 0; k < match.size(); ++k)
    if (match[k] >= 0) {
      fits.push_back(result.properties[k]);
      units.push_back(match[k]);
      estimated.push_back(result.decomposition.units[k].muap);
      exact_muaps.push_back(
          inversion::band_passed_muap(true_muaps[static_cast<std::size_t>(match[k])],
                                      recording.fs_Hz, params.separation.preprocess)
              .transpose());
    }
  std::vector<inversion::FittedProperties> exact(units.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t k = 0; k < static_cast<std::int64_t>(units.size()); ++k)
    exact[static_cast<std::size_t>(k)] = inversion::fit_properties(
        exact_muaps[static_cast<std::size_t>(k)], model, muscle, skin, params);
  run.errors = property_errors(fits, units, props, model, params);
  run.errors_true_muaps = property_errors(exact, units, props, model, params);
  // The fits' residuals and the model's at the true parameters, against the same MUAPs.
  auto residuals = [&](PropertyErrors& e, const std::vector<inversion::FittedProperties>& f,
                       const std::vector<Eigen::MatrixXd>& muaps) {
    const std::size_t n = units.size();
    e.residual.resize(n);
    e.residual_at_truth.resize(n);
    e.residual_at_truth_own_radius.resize(n);
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t k = 0; k < static_cast<std::int64_t>(n); ++k) {
      const auto i = static_cast<std::size_t>(k);
      const auto& theta = true_theta.at(static_cast<std::size_t>(units[i]));
      e.residual[i] = f[i].relative_residual;
      e.residual_at_truth[i] =
          inversion::model_residual(muaps[i], model, muscle, theta, params, true);
      e.residual_at_truth_own_radius[i] =
          inversion::model_residual(muaps[i], model, muscle, theta, params, false);
    }
  };
  residuals(run.errors, fits, estimated);
  residuals(run.errors_true_muaps, exact, exact_muaps);
  run.has_properties = true;
  return run;
}

/// Each simulated unit's parameters in `model` of `muscle` (MuapModel::parameters_of()).
std::vector<forward::UnitParameters> true_parameters(const forward::MuapModel& model,
                                                     const anatomy::MuscleModel& muscle,
                                                     const forward::EmgSimulation& sim) {
  std::vector<forward::UnitParameters> theta;
  for (const auto& u : sim.units)
    theta.push_back(model.parameters_of(muscle.fibres, muscle.pool, u.unit));
  return theta;
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

} // namespace

void add_bench_command(CLI::App& app, std::function<int()>& run) {
  auto* bench =
      app.add_subcommand("bench", "benchmarks that print a table (see docs/benchmarks.md)");
  bench->require_subcommand(1);
  auto options = std::make_shared<SharedOptions>();
  auto bo = std::make_shared<BmissBenchOptions>();
  auto no_perturbed = std::make_shared<bool>(false);
  auto emg_only = std::make_shared<bool>(false);
  auto* cmd = bench->add_subcommand(
      "bmiss",
      "model-informed separation benchmark: N units in one muscle, the config's electrodes (10 x "
      "32 wrapped), independent 10 Hz discharges, white noise; BMISS vs blind separation vs the "
      "true-MUAP upper bound, per iteration, property errors, a perturbed forward model; writes "
      "OUT/bench_bmiss.json and .md");
  bo->subject = std::filesystem::path(MYOTWIN_SOURCE_DIR) / "sample_data/forearm/subject.json";
  cmd->add_option("--subject", bo->subject, "subject file (default: the sample forearm)");
  cmd->add_option("--muscle", bo->muscle, "muscle whose units are simulated and searched")
      ->capture_default_str();
  cmd->add_option("--units", bo->n_units, "motor units of the muscle (its whole pool)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--duration", bo->duration_s, "signal length [s]")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--rate", bo->rate_pps, "mean discharge rate [pps]")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--isi-cov", bo->isi_cov, "CoV of the inter-spike intervals")
      ->check(CLI::Range(0.0, 0.6))
      ->capture_default_str();
  cmd->add_option("--snr", bo->snr_dB, "noise levels [dB]")->delimiter(',')->capture_default_str();
  cmd->add_option("--perturbation", bo->perturbation,
                  "relative change of fat thickness and conductivities in the perturbed model")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  cmd->add_flag("--no-perturbed", *no_perturbed,
                "skip the run with the perturbed model (as --methods without perturbed)");
  cmd->add_option("--methods", bo->methods,
                  "methods to run: bmiss (the subject's model), blind, upper (true MUAPs), "
                  "perturbed (BMISS through the perturbed model)")
      ->delimiter(',')
      ->check(CLI::IsMember({"bmiss", "blind", "upper", "perturbed"}))
      ->capture_default_str();
  cmd->add_option("--muaps", bo->muaps,
                  "MUAPs of the recording: simulation (every fibre through the lead fields) or "
                  "model (the MUAP model at each unit's parameters, as the published work)")
      ->check(CLI::IsMember({"simulation", "model"}))
      ->capture_default_str();
  cmd->add_flag("--emg-only", *emg_only,
                "write the recordings (OUT/emg_<SNR>dB.h5, with their truth) and stop");
  add_shared_options(*cmd, *options, true);
  cmd->callback([&run, options, bo, no_perturbed, emg_only] {
    run = [options, bo, no_perturbed, emg_only] {
      Stopwatch total;
      BmissBenchOptions b = *bo;
      b.perturbed = !*no_perturbed && !*emg_only && b.runs("perturbed");
      for (const double snr : b.snr_dB)
        if (!std::isfinite(snr))
          throw BadInput("bench bmiss: --snr: expected finite values [dB], got " +
                         format_number(snr));
      const auto out = options->output;
      ensure_output_dir(out);

      // 1. The run configuration: the bench's muscle and units under the user's config.
      nlohmann::json cfg = {{"anatomy", {{"muscles", {b.muscle}}}},
                            {"simulate", {{"muscles", {b.muscle}}}}};
      if (!options->config.empty())
        cfg.merge_patch(read_json(options->config));
      const auto cfg_file = out / "bench_config.json";
      write_text_file(cfg_file, cfg.dump(2) + "\n");
      SharedOptions run_options = *options;
      run_options.config = cfg_file;
      const RunConfig config = begin_run(run_options);
      std::vector<std::string> shared = {"--config", cfg_file.string(), "--quiet"};
      if (options->seed)
        shared.insert(shared.end(), {"--seed", std::to_string(*options->seed)});
      if (options->threads > 0)
        shared.insert(shared.end(), {"--threads", std::to_string(options->threads)});
      auto with = [&](std::vector<std::string> args) {
        args.insert(args.end(), shared.begin(), shared.end());
        return args;
      };

      // 2. Subjects and their forward models (reused by the pipeline's keys).
      const anatomy::SubjectFiles files = anatomy::read_subject_file(b.subject);
      const auto nominal_subject = write_bench_subject(out / "nominal_subject", files.labels,
                                                       files.tissues, b.muscle, b.n_units, 0.0);
      log_info("bench bmiss: forward model of the subject (anatomy, mesh, lead fields)");
      run_stage("the nominal model's stages",
                with({"pipeline", nominal_subject.string(), "-o", (out / "nominal").string(),
                      "--until", "leadfield"}));
      std::filesystem::path perturbed_subject;
      if (b.perturbed) {
        // The perturbed model is the phantom with thicker fat: the subject must be the phantom
        // of this config, checked by regenerating it.
        nlohmann::json pcfg = cfg;
        run_stage("the phantom", with({"phantom", "-o", (out / "phantom_nominal").string()}));
        if (read_text_file(out / "phantom_nominal/labels.nii.gz") != read_text_file(files.labels))
          throw BadInput("bench bmiss: the perturbed model regenerates the subject with `myotwin "
                         "phantom`, but " +
                         files.labels.string() +
                         " is not the phantom of this config (and seed); use --no-perturbed");
        const auto& ph = config.resolved.at("phantom");
        pcfg["phantom"]["fat_flexor_mm"] =
            ph.at("fat_flexor_mm").get<double>() * (1 + b.perturbation);
        pcfg["phantom"]["fat_extensor_mm"] =
            ph.at("fat_extensor_mm").get<double>() * (1 + b.perturbation);
        const auto pcfg_file = out / "bench_config_perturbed.json";
        write_text_file(pcfg_file, pcfg.dump(2) + "\n");
        std::vector<std::string> phantom_args = {
            "phantom",          "-o",     (out / "phantom_perturbed").string(), "--config",
            pcfg_file.string(), "--quiet"};
        if (options->seed)
          phantom_args.insert(phantom_args.end(), {"--seed", std::to_string(*options->seed)});
        run_stage("the perturbed phantom", phantom_args);
        perturbed_subject = write_bench_subject(
            out / "perturbed_subject", out / "phantom_perturbed/labels.nii.gz",
            out / "phantom_perturbed/tissues.json", b.muscle, b.n_units, b.perturbation);
        run_stage("the perturbed model's stages",
                  with({"pipeline", perturbed_subject.string(), "-o", (out / "perturbed").string(),
                        "--until", "leadfield"}));
      }
      const auto model =
          forward::load_subject_forward_model(nominal_subject, out / "nominal", config.electrodes,
                                              config.volume_conductor.reference_node);
      const anatomy::MuscleModel& muscle = find_muscle(model->anatomy, b.muscle);
      const auto n_ch = model->lead_fields.lead_fields_V_per_A.cols();

      // 3. The true MUAPs (the simulation's: nerve-branch delays, every fibre) and discharges.
      forward::SimulationParams sim_params = config.simulate;
      sim_params.muscles = {b.muscle};
      sim_params.max_units_per_muscle = 0;
      sim_params.drive.duration_s = std::min(sim_params.drive.duration_s, 1.0);
      sim_params.emg.add_noise = false;
      sim_params.force.enabled = false;
      Stopwatch muap_watch;
      log_info("bench bmiss: MUAPs of the ", muscle.pool.units.size(), " units of ", b.muscle,
               " at ", n_ch, " electrodes");
      forward::EmgSimulation sim =
          forward::simulate_emg(model->anatomy, model->transfer, n_ch, model->skin_points_m,
                                sim_params, config.seed, progress_display(*options));
      const double muap_time_s = muap_watch.elapsed_s();
      const std::size_t n_units = sim.muaps.size();
      const double fs = config.simulate.emg.fs_Hz;
      // 4. The MUAP models (before the recordings: with --muaps model, one makes them).
      forward::MuapModelParams mp = config.muap_model;
      mp.fs_Hz = fs;
      Stopwatch model_watch;
      std::unique_ptr<forward::MuapModel> muap_model;
      if (b.runs("bmiss") || b.muaps == "model") {
        log_info("bench bmiss: MUAP model of ", b.muscle);
        muap_model = std::make_unique<forward::MuapModel>(
            muscle.fibres, muscle.pool, model->transfer, n_ch, mp, progress_display(*options));
      }
      const double model_time_s = model_watch.elapsed_s();
      if (b.muaps == "model") {
        log_info(
            "bench bmiss: the recording's MUAPs from the MUAP model at each unit's parameters");
#pragma omp parallel for schedule(dynamic, 1)
        for (std::int64_t u = 0; u < static_cast<std::int64_t>(n_units); ++u)
          sim.muaps[static_cast<std::size_t>(u)] = muap_model->muap(muap_model->parameters_of(
              muscle.fibres, muscle.pool, sim.units[static_cast<std::size_t>(u)].unit));
        sim.muap_fs_Hz = fs;
      }
      const auto times = renewal_discharges(n_units, b.duration_s, b.rate_pps, b.isi_cov,
                                            Rng(config.seed).split(7));
      // True MUAPs at the recording's rate (for the upper bound).
      std::vector<Eigen::MatrixXd> muaps_fs(n_units);
#pragma omp parallel for schedule(dynamic, 1)
      for (std::int64_t u = 0; u < static_cast<std::int64_t>(n_units); ++u) {
        const auto& m = sim.muaps[static_cast<std::size_t>(u)];
        const auto n = static_cast<Eigen::Index>(
            std::floor(static_cast<double>(m.rows()) / sim.muap_fs_Hz * fs));
        const Eigen::VectorXd tau =
            Eigen::VectorXd::LinSpaced(n, 0.0, static_cast<double>(n - 1) / fs);
        Eigen::MatrixXd r(n, m.cols());
        for (Eigen::Index c = 0; c < m.cols(); ++c)
          r.col(c) = forward::resample_muap(m.col(c), sim.muap_fs_Hz, tau, fs, config.simulate.emg);
        muaps_fs[static_cast<std::size_t>(u)] = std::move(r);
      }

      // The recording at noise level `level`, written to OUT/emg_<SNR>dB.h5 with its truth.
      auto recording_at = [&](std::size_t level) {
        forward::EmgParams ep = config.simulate.emg;
        ep.add_noise = true;
        ep.snr_dB = b.snr_dB[level];
        forward::EmgResult emg =
            forward::synthesize_emg(sim.muaps, sim.muap_fs_Hz, times, b.duration_s, ep,
                                    Rng(config.seed).split(8).split(level));
        forward::write_emg_h5(out / ("emg_" + format_number(ep.snr_dB) + "dB.h5"), emg,
                              sim.properties, channel_layout(model->layout));
        return emg;
      };
      if (*emg_only) {
        for (std::size_t level = 0; level < b.snr_dB.size(); ++level)
          (void)recording_at(level);
        std::cout << "bench bmiss: recordings written in " << out.string() << "\n";
        return 0;
      }

      std::unique_ptr<forward::SubjectForwardModel> pmodel;
      std::unique_ptr<forward::MuapModel> pmuap;
      const anatomy::MuscleModel* pmuscle = nullptr;
      if (b.perturbed) {
        pmodel = forward::load_subject_forward_model(perturbed_subject, out / "perturbed",
                                                     config.electrodes,
                                                     config.volume_conductor.reference_node);
        pmuscle = &find_muscle(pmodel->anatomy, b.muscle);
        if (pmodel->lead_fields.lead_fields_V_per_A.cols() != n_ch)
          throw Error("bench bmiss: the perturbed model has " +
                      std::to_string(pmodel->lead_fields.lead_fields_V_per_A.cols()) +
                      " electrodes, the nominal " + std::to_string(n_ch));
        log_info("bench bmiss: MUAP model of ", b.muscle, " in the perturbed model");
        pmuap = std::make_unique<forward::MuapModel>(
            pmuscle->fibres, pmuscle->pool, pmodel->transfer, n_ch, mp, progress_display(*options));
      }

      // 5. Every noise level.
      const inversion::BmissParams& params = config.invert;
      inversion::DecomposeParams blind = params.separation;
      blind.n_iterations = params.n_iterations * std::max<std::int64_t>(1, params.n_refine);
      blind.candidates_per_unit = 0; // the same budget of candidates, whatever they give
      nlohmann::json levels = nlohmann::json::array();
      std::ostringstream md;
      md << "| SNR | method | recovered after iteration 1.." << params.n_iterations
         << " | accepted | time s |\n|---|---|---|---|---|\n";
      // Separability of the true units: the matched filter's peak-to-background ratio |W c|.
      const std::vector<double> separability_thresholds = {3.0, 5.0, 8.0};
      std::ostringstream separability_md;
      separability_md
          << "| SNR | R | whitened | units with \\|W c\\| >= 3 | >= 5 | >= 8 | median "
             "\\|W c\\| | noise-limited >= 5 | exact cancellation: removed (\\|W c\\| >= 5) / "
             "recovered by the hand-over, after each round | the same, MUAPs estimated at the "
             "true discharges "
             "|\n|---|---|---|---|---|---|---|---|---|---|\n";
      nlohmann::json separability_json = nlohmann::json::array();
      std::ostringstream props_md;
      props_md << "| SNR | model | recovered | depth mm | end-plate mm | CV m/s | fibres % | "
                  "normalised MSE | fit residual (at the truth) |\n"
                  "|---|---|---|---|---|---|---|---|---|\n";
      auto props_row = [&](const std::string& tag, const std::string& model_name,
                           const PropertyErrors& e) {
        props_md << "| " << tag << " | " << model_name << " | " << e.depth_mm.size() << " | ";
        if (e.depth_mm.empty()) {
          props_md << "- | - | - | - | - | - |\n";
          return;
        }
        props_md << fixed(median(abs_values(e.depth_mm)), 2) << " ("
                 << fixed(mean_abs(e.depth_mm), 2) << ") | " << fixed(mean_abs(e.end_plate_mm), 2)
                 << " | " << fixed(mean_abs(e.cv_m_per_s), 3) << " | "
                 << fixed(mean_abs(e.fibres_percent), 1) << " | " << std::setprecision(3)
                 << e.normalised_mse << " | " << fixed(mean_abs(e.residual), 3) << " ("
                 << fixed(mean_abs(e.residual_at_truth), 3) << ") |\n";
      };
      for (std::size_t level = 0; level < b.snr_dB.size(); ++level) {
        const forward::EmgResult emg = recording_at(level);
        inversion::SpikeTrains truth;
        truth.source = "truth";
        truth.fs_Hz = emg.fs_Hz;
        for (std::size_t u = 0; u < n_units; ++u) {
          truth.unit_id.push_back(static_cast<std::int64_t>(u));
          auto s = emg.spike_samples[u];
          std::sort(s.begin(), s.end());
          truth.samples.push_back(std::move(s));
        }
        inversion::EmgRecording recording;
        recording.source = out / ("emg_" + format_number(b.snr_dB[level]) + "dB.h5");
        recording.fs_Hz = emg.fs_Hz;
        recording.emg = emg.emg;
        recording.grid_row_col = channel_layout(model->layout).grid_row_col;
        const std::string tag = format_number(b.snr_dB[level]) + " dB";
        std::vector<MethodRun> runs;
        if (b.runs("bmiss")) {
          log_info("bench bmiss: ", tag, ": BMISS");
          runs.push_back(run_bmiss("BMISS", recording, *muap_model, muscle, model->skin_points_m,
                                   params, truth, sim.properties, muaps_fs,
                                   true_parameters(*muap_model, muscle, sim), b.min_roa,
                                   progress_display(*options)));
        }
        const std::int64_t per_iteration = std::max<std::int64_t>(1, params.n_refine);
        if (b.runs("blind")) {
          log_info("bench bmiss: ", tag, ": blind separation");
          Stopwatch blind_watch;
          const auto blind_result =
              inversion::decompose(recording, blind, progress_display(*options));
          runs.push_back(scored_run("blind", blind_result, blind_watch.elapsed_s(), truth,
                                    b.min_roa, params.n_iterations, per_iteration));
        }
        if (b.runs("upper")) {
          log_info("bench bmiss: ", tag, ": upper bound (true MUAPs)");
          Stopwatch upper_watch;
          std::vector<double> sep;
          const auto upper = upper_bound(recording, muaps_fs, params, sep);
          runs.push_back(scored_run("true MUAPs", upper, upper_watch.elapsed_s(), truth, b.min_roa,
                                    params.n_iterations, 1));
          const std::vector<double> bound = noise_limited_separability(
              muaps_fs, emg.noise_rms_V, fs, params.separation.preprocess);
          auto count_above = [](const std::vector<double>& v, double t) {
            return std::count_if(v.begin(), v.end(), [t](double x) { return x >= t; });
          };
          separability_md << "| " << tag << " | " << upper.extension_factor << " | "
                          << upper.stats.n_whitened;
          for (const double t : separability_thresholds)
            separability_md << " | " << count_above(sep, t);
          forward::EmgParams ep = config.simulate.emg;
          const CancellationRounds exact =
              cancellation_rounds(recording, sim.muaps, sim.muap_fs_Hz, muaps_fs, times, truth,
                                  b.duration_s, ep, params, 5.0, b.min_roa, false);
          const CancellationRounds estimated =
              cancellation_rounds(recording, sim.muaps, sim.muap_fs_Hz, muaps_fs, times, truth,
                                  b.duration_s, ep, params, 5.0, b.min_roa, true);
          separability_md << " | " << fixed(median(sep), 2) << " | " << count_above(bound, 5.0);
          for (const auto* rounds : {&exact, &estimated}) {
            separability_md << " | ";
            for (std::size_t k = 0; k < rounds->removed.size(); ++k)
              separability_md << (k ? " " : "") << rounds->removed[k] << "/"
                              << rounds->recovered[k];
          }
          separability_md << " |\n";
          separability_json.push_back({{"snr_dB", b.snr_dB[level]},
                                       {"extension_factor", upper.extension_factor},
                                       {"n_whitened", upper.stats.n_whitened},
                                       {"norm_per_unit", sep},
                                       {"noise_limited_per_unit", bound},
                                       {"exact_cancellation_removed", exact.removed},
                                       {"exact_cancellation_recovered", exact.recovered},
                                       {"estimated_cancellation_removed", estimated.removed},
                                       {"estimated_cancellation_recovered", estimated.recovered}});
        }
        if (pmuap) {
          log_info("bench bmiss: ", tag, ": BMISS with the perturbed model");
          runs.push_back(run_bmiss("BMISS, perturbed model", recording, *pmuap, *pmuscle,
                                   pmodel->skin_points_m, params, truth, sim.properties, muaps_fs,
                                   true_parameters(*pmuap, *pmuscle, sim), b.min_roa,
                                   progress_display(*options)));
        }
        nlohmann::json lj = {{"snr_dB", b.snr_dB[level]}, {"methods", nlohmann::json::array()}};
        if (!separability_json.empty() && separability_json.back()["snr_dB"] == b.snr_dB[level])
          lj["separability"] = separability_json.back();
        for (const auto& r : runs) {
          lj["methods"].push_back(to_json(r));
          md << "| " << tag << " | " << r.name << " | ";
          for (std::size_t k = 0; k < r.recovered_per_iteration.size(); ++k)
            md << (k ? " " : "") << r.recovered_per_iteration[k];
          md << " | " << r.n_units << " | " << fixed(r.time_s, 1) << " |\n";
          if (r.has_properties) {
            const std::string model_name = r.name == "BMISS" ? "same" : "perturbed";
            props_row(tag, model_name, r.errors);
            props_row(tag, model_name + ", true MUAPs", r.errors_true_muaps);
          }
        }
        levels.push_back(lj);
      }

      // 6. Report.
      const nlohmann::json report = {{"subject", b.subject.string()},
                                     {"muscle", b.muscle},
                                     {"n_units", n_units},
                                     {"n_channels", n_ch},
                                     {"duration_s", b.duration_s},
                                     {"rate_pps", b.rate_pps},
                                     {"isi_cov", b.isi_cov},
                                     {"min_roa", b.min_roa},
                                     {"recording_muaps", b.muaps},
                                     {"tolerance_ms", 0.5},
                                     {"perturbation", b.perturbed ? b.perturbation : 0.0},
                                     {"invert", inversion::to_json(params)},
                                     {"time_s",
                                      {{"true_muaps", muap_time_s},
                                       {"muap_model", model_time_s},
                                       {"total", total.elapsed_s()}}},
                                     {"levels", levels}};
      write_text_file(out / "bench_bmiss.json", report.dump(2) + "\n");
      std::ostringstream doc;
      doc << "Model-informed separation benchmark: " << n_units << " units of " << b.muscle << ", "
          << n_ch << " channels, " << format_number(b.duration_s) << " s, "
          << format_number(b.rate_pps) << " pps (CoV " << format_number(b.isi_cov)
          << "), MUAPs of the recording from the "
          << (b.muaps == "model" ? "MUAP model (the model that inverts generates the data)"
                                 : "simulation (every fibre)")
          << "; recovered = RoA >= " << format_number(b.min_roa)
          << " at 0.5 ms. Errors: mean |error| (depth: median (mean)).\n\n"
          << md.str() << "\n"
          << props_md.str() << "\n";
      if (!separability_json.empty())
        doc << "Separability of the true units (norm of the whitened mixing column at the best "
               "delay: the matched filter's peak over a unit-variance background):\n\n"
            << separability_md.str() << "\n";
      doc << "True MUAPs " << fixed(muap_time_s, 1) << " s, MUAP model " << fixed(model_time_s, 1)
          << " s, total " << fixed(total.elapsed_s(), 1) << " s.\n";
      write_text_file(out / "bench_bmiss.md", doc.str());
      std::cout << doc.str();
      return 0;
    };
  });
}

} // namespace myotwin::app
