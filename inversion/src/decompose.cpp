#include "myotwin/inversion/decompose.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <set>

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

[[noreturn]] void bad(const std::string& key, const std::string& value,
                      const std::string& expectation) {
  throw BadInput("decompose: " + key + " = " + value + ": " + expectation);
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
      s.optional<std::int64_t>("extension_factor", p.extension_factor, int_in_range(0, 1000));
  p.target_extended_channels =
      s.optional<double>("target_extended_channels", p.target_extended_channels, positive());
  p.n_iterations = s.optional<std::int64_t>("n_iterations", p.n_iterations, positive_int());
  p.max_fixed_point_iterations = s.optional<std::int64_t>(
      "max_fixed_point_iterations", p.max_fixed_point_iterations, positive_int());
  p.max_stalled_candidates = s.optional<std::int64_t>(
      "max_stalled_candidates", p.max_stalled_candidates, int_in_range(0, 1000000000));
  p.tolerance = s.optional<double>("tolerance", p.tolerance, positive());
  const auto contrast = s.optional<std::string>("contrast", to_string(p.contrast),
                                                one_of({"skew", "log_cosh", "kurtosis"}));
  p.contrast = contrast == "log_cosh"   ? Contrast::log_cosh
               : contrast == "kurtosis" ? Contrast::kurtosis
                                        : Contrast::skew;
  p.max_refinement_iterations = s.optional<std::int64_t>(
      "max_refinement_iterations", p.max_refinement_iterations, int_in_range(0, 1000));
  p.sil_threshold = s.optional<double>("sil_threshold", p.sil_threshold, in_range(0.0, 1.0));
  p.min_peak_distance_ms =
      s.optional<double>("min_peak_distance_ms", p.min_peak_distance_ms, positive());
  p.min_discharges =
      s.optional<std::int64_t>("min_discharges", p.min_discharges, int_in_range(2, 1000000000));
  p.max_cov_isi = s.optional<double>("max_cov_isi", p.max_cov_isi, positive());
  p.max_isi_s = s.optional<double>("max_isi_s", p.max_isi_s, positive());
  p.duplicate_fraction =
      s.optional<double>("duplicate_fraction", p.duplicate_fraction, in_range(1e-9, 1.0));
  p.duplicate_tolerance_ms =
      s.optional<double>("duplicate_tolerance_ms", p.duplicate_tolerance_ms, non_negative());
  p.duplicate_max_lag_ms =
      s.optional<double>("duplicate_max_lag_ms", p.duplicate_max_lag_ms, non_negative());
  p.peel_off = s.optional<bool>("peel_off", p.peel_off);
  p.peel_off_window_ms = s.optional<double>("peel_off_window_ms", p.peel_off_window_ms, positive());
  p.muap_window_ms = s.optional<double>("muap_window_ms", p.muap_window_ms, positive());
  p.drive_window_ms = s.optional<double>("drive_window_ms", p.drive_window_ms, positive());
  validate(p);
  return p;
}

void validate(const DecomposeParams& p) {
  validate(p.preprocess);
  const auto num = [](double v) { return format_number(v); };
  if (p.extension_factor < 0)
    bad("extension_factor", std::to_string(p.extension_factor), "must be >= 0 (0: automatic)");
  if (!(p.target_extended_channels >= 1.0))
    bad("target_extended_channels", num(p.target_extended_channels), "must be >= 1");
  if (p.n_iterations < 1)
    bad("n_iterations", std::to_string(p.n_iterations), "must be >= 1");
  if (p.max_fixed_point_iterations < 1)
    bad("max_fixed_point_iterations", std::to_string(p.max_fixed_point_iterations), "must be >= 1");
  if (p.max_stalled_candidates < 0)
    bad("max_stalled_candidates", std::to_string(p.max_stalled_candidates), "must be >= 0");
  if (!(p.tolerance > 0.0))
    bad("tolerance", num(p.tolerance), "must be > 0");
  if (p.max_refinement_iterations < 0)
    bad("max_refinement_iterations", std::to_string(p.max_refinement_iterations), "must be >= 0");
  if (!(p.sil_threshold >= 0.0 && p.sil_threshold <= 1.0))
    bad("sil_threshold", num(p.sil_threshold), "must be in [0, 1]");
  if (!(p.min_peak_distance_ms > 0.0))
    bad("min_peak_distance_ms", num(p.min_peak_distance_ms), "must be > 0");
  if (p.min_discharges < 2)
    bad("min_discharges", std::to_string(p.min_discharges), "must be >= 2");
  if (!(p.max_cov_isi > 0.0))
    bad("max_cov_isi", num(p.max_cov_isi), "must be > 0");
  if (!(p.max_isi_s > 0.0))
    bad("max_isi_s", num(p.max_isi_s), "must be > 0");
  if (!(p.duplicate_fraction > 0.0 && p.duplicate_fraction <= 1.0))
    bad("duplicate_fraction", num(p.duplicate_fraction), "must be in (0, 1]");
  if (!(p.duplicate_tolerance_ms >= 0.0))
    bad("duplicate_tolerance_ms", num(p.duplicate_tolerance_ms), "must be >= 0");
  if (!(p.duplicate_max_lag_ms >= 0.0))
    bad("duplicate_max_lag_ms", num(p.duplicate_max_lag_ms), "must be >= 0");
  for (const auto& [key, v] :
       {std::pair<const char*, double>{"peel_off_window_ms", p.peel_off_window_ms},
        {"muap_window_ms", p.muap_window_ms},
        {"drive_window_ms", p.drive_window_ms}})
    if (!(v > 0.0) || !std::isfinite(v))
      bad(key, num(v), "must be a finite number > 0 [ms]");
}

nlohmann::json to_json(const DecomposeParams& p) {
  const auto& q = p.preprocess;
  return {{"highpass_Hz", q.highpass_Hz},
          {"lowpass_Hz", q.lowpass_Hz},
          {"powerline_Hz", q.powerline_Hz},
          {"notch_bandwidth_Hz", q.notch_bandwidth_Hz},
          {"reject_channels", q.reject_channels},
          {"flat_rms_fraction", q.flat_rms_fraction},
          {"saturation_fraction", q.saturation_fraction},
          {"noisy_ratio", q.noisy_ratio},
          {"extension_factor", p.extension_factor},
          {"target_extended_channels", p.target_extended_channels},
          {"n_iterations", p.n_iterations},
          {"max_fixed_point_iterations", p.max_fixed_point_iterations},
          {"max_stalled_candidates", p.max_stalled_candidates},
          {"tolerance", p.tolerance},
          {"contrast", to_string(p.contrast)},
          {"max_refinement_iterations", p.max_refinement_iterations},
          {"sil_threshold", p.sil_threshold},
          {"min_peak_distance_ms", p.min_peak_distance_ms},
          {"min_discharges", p.min_discharges},
          {"max_cov_isi", p.max_cov_isi},
          {"max_isi_s", p.max_isi_s},
          {"duplicate_fraction", p.duplicate_fraction},
          {"duplicate_tolerance_ms", p.duplicate_tolerance_ms},
          {"duplicate_max_lag_ms", p.duplicate_max_lag_ms},
          {"peel_off", p.peel_off},
          {"peel_off_window_ms", p.peel_off_window_ms},
          {"muap_window_ms", p.muap_window_ms},
          {"drive_window_ms", p.drive_window_ms}};
}

SpikeDetection detect_spikes(const Eigen::Ref<const Eigen::VectorXd>& source,
                             std::int64_t min_distance) {
  SpikeDetection out;
  const Eigen::Index n = source.size();
  std::vector<std::int64_t> candidates;
  std::vector<double> t(static_cast<std::size_t>(n));
  for (Eigen::Index k = 0; k < n; ++k)
    t[static_cast<std::size_t>(k)] = source[k] * std::abs(source[k]);
  for (Eigen::Index k = 1; k + 1 < n; ++k) {
    const auto i = static_cast<std::size_t>(k);
    if (t[i] > 0.0 && t[i] > t[i - 1] && t[i] >= t[i + 1])
      candidates.push_back(k);
  }
  // Keep the highest peaks first, each at least min_distance from every kept one.
  std::stable_sort(candidates.begin(), candidates.end(), [&](std::int64_t a, std::int64_t b) {
    return t[static_cast<std::size_t>(a)] > t[static_cast<std::size_t>(b)];
  });
  std::set<std::int64_t> kept;
  for (const auto c : candidates) {
    const auto it = kept.lower_bound(c - min_distance + 1);
    if (it != kept.end() && *it < c + min_distance)
      continue;
    kept.insert(c);
  }
  if (kept.size() < 2)
    return out;
  std::vector<std::int64_t> peaks(kept.begin(), kept.end());
  std::vector<double> h(peaks.size());
  for (std::size_t i = 0; i < peaks.size(); ++i)
    h[i] = t[static_cast<std::size_t>(peaks[i])];
  double lo = *std::min_element(h.begin(), h.end());
  double hi = *std::max_element(h.begin(), h.end());
  if (!(hi > lo))
    return out;
  std::vector<char> upper(h.size(), 0);
  for (int iteration = 0; iteration < 100; ++iteration) {
    bool changed = false;
    double sum_lo = 0.0, sum_hi = 0.0;
    std::size_t n_lo = 0, n_hi = 0;
    for (std::size_t i = 0; i < h.size(); ++i) {
      const char u = std::abs(h[i] - hi) < std::abs(h[i] - lo) ? 1 : 0;
      changed = changed || u != upper[i];
      upper[i] = u;
      if (u) {
        sum_hi += h[i];
        ++n_hi;
      } else {
        sum_lo += h[i];
        ++n_lo;
      }
    }
    if (n_lo == 0 || n_hi == 0)
      break;
    lo = sum_lo / static_cast<double>(n_lo);
    hi = sum_hi / static_cast<double>(n_hi);
    if (!changed && iteration > 0)
      break;
  }
  double within = 0.0, between = 0.0;
  for (std::size_t i = 0; i < h.size(); ++i)
    if (upper[i]) {
      out.discharges.push_back(peaks[i]);
      within += (h[i] - hi) * (h[i] - hi);
      between += (h[i] - lo) * (h[i] - lo);
    }
  const double denominator = std::max(within, between);
  out.sil = denominator > 0.0 ? (between - within) / denominator : 0.0;
  return out;
}

double cov_isi(const std::vector<std::int64_t>& discharges, double fs_Hz, double max_isi_s,
               double* rate_pps) {
  std::vector<double> isi;
  for (std::size_t i = 1; i < discharges.size(); ++i) {
    const double v = static_cast<double>(discharges[i] - discharges[i - 1]) / fs_Hz;
    if (v <= max_isi_s)
      isi.push_back(v);
  }
  if (rate_pps != nullptr)
    *rate_pps = 0.0;
  if (isi.size() < 2)
    return 0.0;
  const double mean =
      std::accumulate(isi.begin(), isi.end(), 0.0) / static_cast<double>(isi.size());
  double var = 0.0;
  for (const double v : isi)
    var += (v - mean) * (v - mean);
  var /= static_cast<double>(isi.size());
  if (rate_pps != nullptr)
    *rate_pps = 1.0 / mean;
  return std::sqrt(var) / mean;
}

double pnr_dB(const Eigen::Ref<const Eigen::VectorXd>& source,
              const std::vector<std::int64_t>& discharges) {
  std::vector<char> at(static_cast<std::size_t>(source.size()), 0);
  for (const auto j : discharges)
    if (j >= 0 && j < source.size())
      at[static_cast<std::size_t>(j)] = 1;
  double on = 0.0, off = 0.0;
  std::size_t n_on = 0, n_off = 0;
  for (Eigen::Index k = 0; k < source.size(); ++k) {
    const double v = source[k] * source[k];
    if (at[static_cast<std::size_t>(k)]) {
      on += v;
      ++n_on;
    } else {
      off += v;
      ++n_off;
    }
  }
  if (n_on == 0 || n_off == 0 || off == 0.0)
    return 0.0;
  return 10.0 * std::log10((on / static_cast<double>(n_on)) / (off / static_cast<double>(n_off)));
}

Eigen::VectorXd neural_drive(const std::vector<std::vector<std::int64_t>>& trains,
                             std::int64_t n_samples, double fs_Hz, std::int64_t window_samples) {
  const auto len = std::max<std::int64_t>(1, window_samples);
  Eigen::VectorXd hann(len);
  for (std::int64_t k = 0; k < len; ++k)
    hann[k] = len == 1 ? 1.0
                       : 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(k + 1) /
                                              static_cast<double>(len + 1));
  hann /= hann.sum();
  Eigen::VectorXd drive = Eigen::VectorXd::Zero(n_samples);
  const std::int64_t centre = (len - 1) / 2;
  for (const auto& train : trains)
    for (const auto j : train)
      for (std::int64_t k = 0; k < len; ++k) {
        const std::int64_t n = j + k - centre;
        if (n >= 0 && n < n_samples)
          drive[n] += hann[k] * fs_Hz;
      }
  return drive;
}

Decomposition decompose(const EmgRecording& recording, const DecomposeParams& params,
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
  ProgressReporter reporter(progress, "decompose", static_cast<std::size_t>(params.n_iterations));
  std::int64_t stalled = 0;
  for (std::int64_t it = 0; it < params.n_iterations; ++it) {
    reporter.advance();
    if (params.max_stalled_candidates > 0 && stalled >= params.max_stalled_candidates) {
      log_info("decompose: stopped after ", stalled, " candidates in a row without a new unit");
      break;
    }
    ++stalled;
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
              format_number(source.detection.sil), ", CoV ISI ", format_number(source.cov_isi));
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
    stalled = 0;
  }
  reporter.finish();
  stats.time_iterations_s = watch.elapsed_s();
  return accepted.finish(data, params, stats);
}

} // namespace myotwin::inversion
