#include "myotwin/inversion/decompose.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <Eigen/Eigenvalues>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/inversion/score.hpp"
#include "myotwin/inversion/separation.hpp"

namespace myotwin::inversion {

namespace {

std::int64_t ms_to_samples(double ms, double fs_Hz) {
  return static_cast<std::int64_t>(std::llround(ms * 1e-3 * fs_Hz));
}

} // namespace

std::string to_string(Contrast contrast) {
  switch (contrast) {
  case Contrast::skew:
    return "skew";
  case Contrast::log_cosh:
    return "log_cosh";
  case Contrast::kurtosis:
    return "kurtosis";
  }
  return "skew";
}

DecomposeParams read_decompose_params(ConfigReader& s) {
  DecomposeParams p;
  p.preprocess = read_preprocess_params(s);
  p.extension_factor =
      s.optional<std::int64_t>("extension_factor", p.extension_factor, int_in_range(0, 1000),
                               "extension factor R: each kept channel and R - 1 delayed copies; 0: "
                               "from target_extended_channels");
  p.target_extended_channels =
      s.optional<double>("target_extended_channels", p.target_extended_channels, in_range(1.0, 1e7),
                         "#kept channels x R aimed at when extension_factor is 0");
  p.n_iterations = s.optional<std::int64_t>(
      "n_iterations", p.n_iterations, int_in_range(0, 100000),
      "candidate sources before any unit is found; 0: half the kept channels, at least 40");
  p.candidates_per_unit =
      s.optional<std::int64_t>("candidates_per_unit", p.candidates_per_unit, int_in_range(0, 100),
                               "candidates added to the budget for every accepted unit");
  p.max_fixed_point_iterations = s.optional<std::int64_t>(
      "max_fixed_point_iterations", p.max_fixed_point_iterations, positive_int(),
      "fixed-point iterations per candidate source at most");
  p.tolerance =
      s.optional<double>("tolerance", p.tolerance, positive(),
                         "convergence tolerance of the fixed-point iteration on 1 - |w_new . w|");
  const auto contrast = s.optional<std::string>(
      "contrast", to_string(p.contrast), one_of({"skew", "log_cosh", "kurtosis"}),
      "contrast function G of the fixed-point iteration: x^3 / 3, log cosh x or x^4 / 4");
  p.contrast = contrast == "log_cosh"   ? Contrast::log_cosh
               : contrast == "kurtosis" ? Contrast::kurtosis
                                        : Contrast::skew;
  p.max_refinement_iterations = s.optional<std::int64_t>(
      "max_refinement_iterations", p.max_refinement_iterations, int_in_range(0, 1000),
      "CoV-of-ISI refinement steps of the separation filter at most; 0: none");
  p.sil_threshold = s.optional<double>("sil_threshold", p.sil_threshold, in_range(0.0, 1.0),
                                       "smallest silhouette (SIL) of an accepted unit");
  p.min_peak_distance_ms =
      s.optional<double>("min_peak_distance_ms", p.min_peak_distance_ms, positive(),
                         "smallest distance between two detected discharges of a source");
  p.min_discharges =
      s.optional<std::int64_t>("min_discharges", p.min_discharges, int_in_range(2, 1000000000),
                               "fewest discharges of an accepted unit");
  p.max_local_cov_isi = s.optional<double>(
      "max_local_cov_isi", p.max_local_cov_isi, in_range(1e-9, 10.0),
      "largest local CoV of ISI (median CV2) of an accepted unit; a Poisson train has 1.0");
  p.doublet_isi_ms = s.optional<double>(
      "doublet_isi_ms", p.doublet_isi_ms, in_range(1e-9, 1000.0),
      "shorter intervals are doublets: counted, left out of CoV and rate; must be below max_isi_s");
  p.max_isi_s =
      s.optional<double>("max_isi_s", p.max_isi_s, in_range(1e-9, 1000.0),
                         "longer intervals are pauses: counted, left out of CoV and rate");
  p.review.min_pnr_dB = s.optional<double>(
      "review_min_pnr_dB", p.review.min_pnr_dB, in_range(-1000.0, 1000.0),
      "a unit whose pulse-to-noise ratio is below this is flagged for review (Holobar 2013)");
  p.review.max_cov_isi = s.optional<double>(
      "review_max_cov_isi", p.review.max_cov_isi, in_range(0.0, 10.0),
      "a unit whose CoV of regular intervals is above this is flagged for review");
  p.review.max_doublet_fraction = s.optional<double>(
      "review_max_doublet_fraction", p.review.max_doublet_fraction, in_range(0.0, 1.0),
      "a unit with more doublets per interval than this is flagged for review");
  p.review.max_pause_fraction = s.optional<double>(
      "review_max_pause_fraction", p.review.max_pause_fraction, in_range(0.0, 1.0),
      "a unit with more pauses per interval than this is flagged for review");
  p.duplicate_fraction = s.optional<double>(
      "duplicate_fraction", p.duplicate_fraction, in_range(1e-9, 1.0),
      "fraction of the smaller unit's discharges shared that makes two units duplicates");
  p.duplicate_tolerance_ms =
      s.optional<double>("duplicate_tolerance_ms", p.duplicate_tolerance_ms, non_negative(),
                         "time tolerance of a shared discharge between two units");
  p.duplicate_max_lag_ms =
      s.optional<double>("duplicate_max_lag_ms", p.duplicate_max_lag_ms, non_negative(),
                         "largest lag searched between two units when looking for duplicates");
  p.refine_on_recording = s.optional<bool>(
      "refine_on_recording", p.refine_on_recording, {},
      "after the search, each unit's filter from its discharges on the whole recording, not the "
      "peeled-off data, and its discharges detected again (MUedit's refineMUs)");
  p.peel_off = s.optional<bool>(
      "peel_off", p.peel_off, {},
      "subtract each accepted unit from the whitened data so later candidates find others");
  p.peel_off_window_ms =
      s.optional<double>("peel_off_window_ms", p.peel_off_window_ms, positive(),
                         "window of the spike-triggered average subtracted by the peel-off");
  p.muap_window_ms = s.optional<double>("muap_window_ms", p.muap_window_ms, positive(),
                                        "window of the estimated MUAPs, centred on the discharge");
  p.drive_window_ms = s.optional<double>("drive_window_ms", p.drive_window_ms, positive(),
                                         "length of the Hann window that smooths the neural drive");
  if (!(p.doublet_isi_ms * 1e-3 < p.max_isi_s))
    s.fail("doublet_isi_ms", "must be below max_isi_s = " + format_number(p.max_isi_s) + " s");
  return p;
}

void validate(const DecomposeParams& params) {
  // The reader's declarations are the one statement of every range.
  ConfigReader reader(to_json(params), "decompose");
  (void)read_decompose_params(reader);
  reader.finish();
}

nlohmann::json to_json(const DecomposeParams& p) {
  nlohmann::json j = to_json(p.preprocess);
  j.update(nlohmann::json{{"extension_factor", p.extension_factor},
                          {"target_extended_channels", p.target_extended_channels},
                          {"n_iterations", p.n_iterations},
                          {"candidates_per_unit", p.candidates_per_unit},
                          {"max_fixed_point_iterations", p.max_fixed_point_iterations},
                          {"tolerance", p.tolerance},
                          {"contrast", to_string(p.contrast)},
                          {"max_refinement_iterations", p.max_refinement_iterations},
                          {"sil_threshold", p.sil_threshold},
                          {"min_peak_distance_ms", p.min_peak_distance_ms},
                          {"min_discharges", p.min_discharges},
                          {"max_local_cov_isi", p.max_local_cov_isi},
                          {"doublet_isi_ms", p.doublet_isi_ms},
                          {"max_isi_s", p.max_isi_s},
                          {"review_min_pnr_dB", p.review.min_pnr_dB},
                          {"review_max_cov_isi", p.review.max_cov_isi},
                          {"review_max_doublet_fraction", p.review.max_doublet_fraction},
                          {"review_max_pause_fraction", p.review.max_pause_fraction},
                          {"duplicate_fraction", p.duplicate_fraction},
                          {"duplicate_tolerance_ms", p.duplicate_tolerance_ms},
                          {"duplicate_max_lag_ms", p.duplicate_max_lag_ms},
                          {"refine_on_recording", p.refine_on_recording},
                          {"peel_off", p.peel_off},
                          {"peel_off_window_ms", p.peel_off_window_ms},
                          {"muap_window_ms", p.muap_window_ms},
                          {"drive_window_ms", p.drive_window_ms}});
  return j;
}

Decomposition decompose(const forward::EmgRecording& recording, const DecomposeParams& params,
                        const ProgressCallback& progress) {
  // 1-3. Preprocessing, extension, whitening.
  DecomposeStats stats;
  WhitenedEmg data = whiten_emg(recording, params, stats);
  const Eigen::Index n = data.n_samples, r = data.extension_factor;
  const double fs = data.fs_Hz;

  // 4-8. Candidates from the instants of highest activity.
  Stopwatch watch;
  Eigen::VectorXd activity(n);
  for (Eigen::Index k = 0; k < n; ++k)
    activity[k] = static_cast<double>(data.z.col(k).squaredNorm());
  std::vector<char> used(static_cast<std::size_t>(n), 0);
  std::vector<Eigen::VectorXd> basis;
  const std::int64_t peel_half = ms_to_samples(params.peel_off_window_ms / 2.0, fs);
  AcceptedUnits accepted;
  const std::int64_t base_budget =
      params.n_iterations > 0
          ? params.n_iterations
          : std::max<std::int64_t>(40,
                                   static_cast<std::int64_t>(data.preprocessing.kept.size()) / 2);
  const auto budget = [&] {
    return base_budget + params.candidates_per_unit * static_cast<std::int64_t>(accepted.size());
  };
  ProgressReporter reporter(progress, "decompose", static_cast<std::size_t>(base_budget));
  for (std::int64_t it = 0; it < budget(); ++it) {
    if (it < base_budget)
      reporter.advance();
    Eigen::Index best = -1;
    double best_activity = 0.0;
    for (Eigen::Index k = 0; k < n; ++k)
      if (!used[static_cast<std::size_t>(k)] && activity[k] > best_activity) {
        best_activity = activity[k];
        best = k;
      }
    if (best < 0)
      break;
    for (Eigen::Index k = std::max<Eigen::Index>(0, best - r); k <= std::min(n - 1, best + r); ++k)
      used[static_cast<std::size_t>(k)] = 1;
    ++stats.n_candidates;
    SeparatedSource source = separate_from(data, data.z.col(best).cast<double>(), basis, params);
    if (source.w.size() == 0)
      continue;
    basis.push_back(source.w_fixed_point);
    log_debug("decompose: candidate ", it + 1, ": ", source.n_fixed_point,
              " fixed-point iterations", source.converged ? "" : " (not converged)", ", ",
              source.detection.discharges.size(), " discharges, SIL ",
              format_number(source.detection.sil), ", local CoV ISI ",
              format_number(source.cov_isi_local));
    const std::vector<std::int64_t> discharges = source.detection.discharges;
    if (accepted.offer(std::move(source), it, data, params, stats) != Verdict::accepted)
      continue;
    // The peeled-off instants' activity.
    if (params.peel_off && peel_half > 0)
      for (const auto j : discharges)
        for (Eigen::Index k = 0; k < 2 * peel_half + 1; ++k) {
          const Eigen::Index m = j + k - peel_half;
          if (m >= 0 && m < n)
            activity[m] = static_cast<double>(data.z.col(m).squaredNorm());
        }
  }
  std::vector<std::vector<std::int64_t>> before;
  if (params.refine_on_recording) {
    Stopwatch refine_watch;
    for (std::size_t u = 0; u < accepted.size(); ++u)
      before.push_back(accepted.unit(u).discharges);
    accepted.refine(data, params, stats);
    stats.time_refine_s = refine_watch.elapsed_s();
  }
  reporter.finish();
  log_info("decompose: ", stats.n_candidates, " candidates (budget ", budget(), "), ",
           accepted.size(), " units");
  stats.time_iterations_s = watch.elapsed_s();
  Decomposition out = accepted.finish(data, params, stats);
  out.discharges_before_refinement = std::move(before);
  return out;
}

Eigen::Index extension_factor_for(double n_channels, const DecomposeParams& params) {
  return params.extension_factor > 0
             ? params.extension_factor
             : std::max<Eigen::Index>(1, static_cast<Eigen::Index>(std::llround(
                                             params.target_extended_channels / n_channels)));
}

RunEstimate estimate_decompose(double n_channels, double n_samples, const DecomposeParams& params,
                               int threads) {
  const double m = n_channels;
  const double n = n_samples;
  const auto r = static_cast<double>(extension_factor_for(m, params));
  const double n_ext = m * r;
  RunEstimate e;
  e.bytes = 3.0 * 8.0 * m * n + 4.0 * n_ext * n + (threads + 4.0) * 8.0 * n_ext * n_ext;
  const double base = params.n_iterations > 0 ? static_cast<double>(params.n_iterations)
                                              : std::max(40.0, std::floor(m / 2.0));
  const double whiten_s = 3e-10 * n_ext * n_ext * n;
  const double candidates_s = 1.3e-8 * 2.0 * base * n_ext * n;
  e.seconds = whiten_s + candidates_s;
  e.time_parts = "whitening " + format_duration(whiten_s) + ", about " + format_number(2.0 * base) +
                 " candidates " + format_duration(candidates_s);
  e.drivers =
      format_number(m) + " channels x " + format_number(n) + " samples, decompose." +
      (params.extension_factor > 0
           ? "extension_factor = " + format_number(r)
           : "target_extended_channels = " + format_number(params.target_extended_channels) +
                 " (extension factor " + format_number(r) + ")") +
      ": " + format_number(n_ext) + " extended channels";
  return e;
}

} // namespace myotwin::inversion
