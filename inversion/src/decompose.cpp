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

namespace myotwin::inversion {

namespace {

/// Columns per block of the sums over samples (fixed: the blocks, not the threads, decide the
/// order of the sums).
constexpr Eigen::Index block_cols = 2048;
/// Number of partial covariance accumulators (fixed, independent of the thread count).
constexpr int n_cov_groups = 8;

/// Columns [n0, n0 + nb) of the extended signals: row c R + d holds x_c(n - d).
void extended_block(const Eigen::MatrixXd& x, Eigen::Index r, Eigen::Index n0, Eigen::Index nb,
                    Eigen::MatrixXd& out) {
  out.resize(x.rows() * r, nb);
  for (Eigen::Index c = 0; c < x.rows(); ++c)
    for (Eigen::Index d = 0; d < r; ++d) {
      const Eigen::Index row = c * r + d;
      for (Eigen::Index k = 0; k < nb; ++k) {
        const Eigen::Index n = n0 + k - d;
        out(row, k) = n >= 0 ? x(c, n) : 0.0;
      }
    }
}

Eigen::Index n_blocks(Eigen::Index n) {
  return (n + block_cols - 1) / block_cols;
}

/// s = Z^T w (float data, double result), parallel over blocks.
Eigen::VectorXd project(const Eigen::MatrixXf& z, const Eigen::VectorXd& w) {
  const Eigen::VectorXf wf = w.cast<float>();
  const Eigen::Index n = z.cols();
  Eigen::VectorXd s(n);
  const Eigen::Index nb = n_blocks(n);
#pragma omp parallel for schedule(static)
  for (Eigen::Index b = 0; b < nb; ++b) {
    const Eigen::Index n0 = b * block_cols, len = std::min(block_cols, n - n0);
    s.segment(n0, len) = (z.middleCols(n0, len).transpose() * wf).cast<double>();
  }
  return s;
}

/// Z g: per-block partial sums in parallel, combined in block order.
Eigen::VectorXd weighted_sum(const Eigen::MatrixXf& z, const Eigen::VectorXd& g) {
  const Eigen::Index n = z.cols();
  const Eigen::Index nb = n_blocks(n);
  std::vector<Eigen::VectorXd> partial(static_cast<std::size_t>(nb));
#pragma omp parallel for schedule(static)
  for (Eigen::Index b = 0; b < nb; ++b) {
    const Eigen::Index n0 = b * block_cols, len = std::min(block_cols, n - n0);
    const Eigen::VectorXf gf = g.segment(n0, len).cast<float>();
    partial[static_cast<std::size_t>(b)] = (z.middleCols(n0, len) * gf).cast<double>();
  }
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(z.rows());
  for (const auto& p : partial)
    sum += p;
  return sum;
}

/// Gram-Schmidt: w minus its projections on `basis` (in order).
void deflate(Eigen::VectorXd& w, const std::vector<Eigen::VectorXd>& basis) {
  for (const auto& b : basis)
    w -= b.dot(w) * b;
}

/// Mean of the columns of z at `discharges`.
Eigen::VectorXd mean_at(const Eigen::MatrixXf& z, const std::vector<std::int64_t>& discharges) {
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(z.rows());
  for (const auto j : discharges)
    sum += z.col(static_cast<Eigen::Index>(j)).cast<double>();
  return sum / static_cast<double>(std::max<std::size_t>(1, discharges.size()));
}

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
  validate(params);
  check_recording(recording);
  Decomposition out;
  const double fs = recording.fs_Hz;
  out.fs_Hz = fs;
  out.n_samples = recording.emg.cols();
  out.n_channels = recording.emg.rows();
  const Eigen::Index n = recording.emg.cols();
  const std::string src = recording.source.string();

  // 1. Preprocessing.
  Stopwatch watch;
  out.preprocessing = preprocess(recording.emg, fs, recording.grid_row_col, params.preprocess);
  const auto& kept = out.preprocessing.kept;
  const auto n_kept = static_cast<Eigen::Index>(kept.size());
  Eigen::MatrixXd x(n_kept, n);
  for (Eigen::Index i = 0; i < n_kept; ++i) {
    x.row(i) = out.preprocessing.filtered.row(kept[static_cast<std::size_t>(i)]);
    x.row(i).array() -= x.row(i).mean();
  }
  out.stats.time_preprocess_s = watch.elapsed_s();

  // 2. Extension.
  const Eigen::Index r =
      params.extension_factor > 0
          ? params.extension_factor
          : std::max<Eigen::Index>(
                1, static_cast<Eigen::Index>(std::llround(params.target_extended_channels /
                                                          static_cast<double>(n_kept))));
  out.extension_factor = r;
  const Eigen::Index n_ext = n_kept * r;
  if (n < 4 * n_ext)
    throw BadInput(src + ": " + std::to_string(n) + " samples are too few for " +
                   std::to_string(n_kept) + " channels x extension factor " + std::to_string(r) +
                   " = " + std::to_string(n_ext) +
                   " extended channels: need >= " + std::to_string(4 * n_ext) +
                   " samples (a longer recording or a smaller extension_factor)");
  if (n_ext < 2)
    throw BadInput(src + ": 1 channel x extension factor 1: the extension needs >= 2 extended "
                         "channels (set extension_factor >= 2)");

  // 3. Whitening.
  watch.restart();
  const Eigen::Index nb = n_blocks(n);
  std::vector<Eigen::MatrixXd> cov_parts(n_cov_groups);
#pragma omp parallel for schedule(dynamic)
  for (int g = 0; g < n_cov_groups; ++g) {
    Eigen::MatrixXd c = Eigen::MatrixXd::Zero(n_ext, n_ext);
    Eigen::MatrixXd block;
    for (Eigen::Index b = g; b < nb; b += n_cov_groups) {
      const Eigen::Index n0 = b * block_cols, len = std::min(block_cols, n - n0);
      extended_block(x, r, n0, len, block);
      c.selfadjointView<Eigen::Lower>().rankUpdate(block);
    }
    cov_parts[static_cast<std::size_t>(g)] = std::move(c);
  }
  Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(n_ext, n_ext);
  for (const auto& c : cov_parts)
    cov += c;
  cov_parts.clear();
  cov = Eigen::MatrixXd(cov.selfadjointView<Eigen::Lower>()) / static_cast<double>(n);
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(cov);
  if (eig.info() != Eigen::Success)
    throw NumericalError(src + ": the eigen-decomposition of the extended covariance failed");
  const Eigen::VectorXd& evals = eig.eigenvalues(); // ascending
  const Eigen::Index half = std::max<Eigen::Index>(1, n_ext / 2);
  const double reg = evals.head(half).mean();
  std::vector<Eigen::Index> keep;
  for (Eigen::Index i = 0; i < n_ext; ++i)
    if (evals[i] > reg && evals[i] > 0.0)
      keep.push_back(i);
  if (keep.empty())
    throw NumericalError(src + ": the extended signals have no variance above the "
                               "regularisation level (all channels constant?)");
  const auto n_w = static_cast<Eigen::Index>(keep.size());
  out.stats.n_whitened = n_w;
  Eigen::MatrixXd whiten(n_w, n_ext);
  for (Eigen::Index i = 0; i < n_w; ++i)
    whiten.row(i) = eig.eigenvectors().col(keep[static_cast<std::size_t>(i)]).transpose() /
                    std::sqrt(evals[keep[static_cast<std::size_t>(i)]]);
  cov.resize(0, 0);
  Eigen::MatrixXf z(n_w, n);
#pragma omp parallel for schedule(dynamic)
  for (Eigen::Index b = 0; b < nb; ++b) {
    const Eigen::Index n0 = b * block_cols, len = std::min(block_cols, n - n0);
    Eigen::MatrixXd block;
    extended_block(x, r, n0, len, block);
    z.middleCols(n0, len) = (whiten * block).cast<float>();
  }
  out.stats.time_whiten_s = watch.elapsed_s();
  log_debug("decompose: ", n_kept, " channels x R = ", r, " -> ", n_ext, " extended, ", n_w,
            " whitened dimensions (", format_number(out.stats.time_whiten_s), " s)");

  // 4-8. Candidates.
  watch.restart();
  Eigen::VectorXd activity(n);
  for (Eigen::Index k = 0; k < n; ++k)
    activity[k] = static_cast<double>(z.col(k).squaredNorm());
  std::vector<char> used(static_cast<std::size_t>(n), 0);
  std::vector<Eigen::VectorXd> basis;
  const std::int64_t min_distance =
      std::max<std::int64_t>(1, ms_to_samples(params.min_peak_distance_ms, fs));
  const std::int64_t dup_tol = ms_to_samples(params.duplicate_tolerance_ms, fs);
  const std::int64_t dup_lag = ms_to_samples(params.duplicate_max_lag_ms, fs);
  const std::int64_t peel_half = ms_to_samples(params.peel_off_window_ms / 2.0, fs);
  struct Accepted {
    MotorUnit unit;
    Eigen::VectorXd w;
  };
  std::vector<Accepted> accepted;
  ProgressReporter reporter(progress, "decompose", static_cast<std::size_t>(params.n_iterations));
  const auto dn = static_cast<double>(n);
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
    ++out.stats.n_candidates;
    Eigen::VectorXd w = z.col(best).cast<double>();
    deflate(w, basis);
    if (!(w.norm() > 0.0))
      continue;
    w.normalize();
    bool converged = false;
    Eigen::VectorXd s;
    std::int64_t n_fp = 0;
    for (std::int64_t k = 0; k < params.max_fixed_point_iterations; ++k) {
      ++n_fp;
      s = project(z, w);
      Eigen::VectorXd g(n);
      double gp_sum = 0.0;
      switch (params.contrast) {
      case Contrast::skew:
        g = s.array().square();
        gp_sum = 2.0 * s.sum();
        break;
      case Contrast::log_cosh:
        g = s.array().tanh();
        gp_sum = (1.0 - g.array().square()).sum();
        break;
      case Contrast::kurtosis:
        g = s.array().cube();
        gp_sum = 3.0 * s.array().square().sum();
        break;
      }
      Eigen::VectorXd w_new = weighted_sum(z, g) / dn - (gp_sum / dn) * w;
      deflate(w_new, basis);
      const double norm = w_new.norm();
      if (!(norm > 0.0) || !std::isfinite(norm))
        break;
      w_new /= norm;
      const double delta = std::abs(1.0 - std::abs(w_new.dot(w)));
      w = w_new;
      if (delta < params.tolerance) {
        converged = true;
        break;
      }
    }
    basis.push_back(w);
    out.stats.n_fixed_point_iterations += n_fp;
    if (converged)
      ++out.stats.n_converged;
    s = project(z, w);
    if (s.array().cube().sum() < 0.0) {
      w = -w;
      s = -s;
    }
    // 5. Refinement: the MU filter from the discharges while the CoV of ISI decreases.
    SpikeDetection det = detect_spikes(s, min_distance);
    double cov_value = cov_isi(det.discharges, fs, params.max_isi_s);
    for (std::int64_t k = 0; k < params.max_refinement_iterations; ++k) {
      if (det.discharges.size() < 2)
        break;
      Eigen::VectorXd w_new = mean_at(z, det.discharges);
      if (!(w_new.norm() > 0.0))
        break;
      w_new.normalize();
      Eigen::VectorXd s_new = project(z, w_new);
      SpikeDetection det_new = detect_spikes(s_new, min_distance);
      const double cov_new = cov_isi(det_new.discharges, fs, params.max_isi_s);
      if (det_new.discharges.size() < 2 || !(cov_new < cov_value))
        break;
      w = std::move(w_new);
      s = std::move(s_new);
      det = std::move(det_new);
      cov_value = cov_new;
    }
    log_debug("decompose: candidate ", it + 1, ": ", n_fp, " fixed-point iterations",
              converged ? "" : " (not converged)", ", ", det.discharges.size(), " discharges, SIL ",
              format_number(det.sil), ", CoV ISI ", format_number(cov_value));
    // 7. Acceptance.
    if (static_cast<std::int64_t>(det.discharges.size()) < params.min_discharges) {
      ++out.stats.n_few_spikes;
      continue;
    }
    if (det.sil < params.sil_threshold) {
      ++out.stats.n_low_sil;
      continue;
    }
    if (cov_value > params.max_cov_isi) {
      ++out.stats.n_high_cov;
      continue;
    }
    MotorUnit unit;
    unit.discharges = det.discharges;
    unit.sil = det.sil;
    unit.cov_isi = cov_isi(det.discharges, fs, params.max_isi_s, &unit.rate_pps);
    unit.found_at = it;
    double mean_peak = 0.0;
    for (const auto j : det.discharges)
      mean_peak += s[static_cast<Eigen::Index>(j)];
    mean_peak /= static_cast<double>(det.discharges.size());
    unit.source = mean_peak > 0.0 ? Eigen::VectorXd(s / mean_peak) : s;
    unit.pnr_dB = pnr_dB(unit.source, unit.discharges);
    std::int64_t duplicate_of = -1;
    for (std::size_t a = 0; a < accepted.size() && duplicate_of < 0; ++a) {
      const auto& other = accepted[a].unit.discharges;
      const auto agreement = compare_trains(unit.discharges, other, dup_tol, dup_lag);
      const auto smaller = std::min(unit.discharges.size(), other.size());
      if (static_cast<double>(agreement.common) >=
          params.duplicate_fraction * static_cast<double>(smaller))
        duplicate_of = static_cast<std::int64_t>(a);
    }
    if (duplicate_of >= 0) {
      ++out.stats.n_duplicates;
      auto& other = accepted[static_cast<std::size_t>(duplicate_of)];
      if (unit.cov_isi < other.unit.cov_isi) {
        log_debug("decompose: candidate ", it, " replaces unit ", duplicate_of,
                  " (duplicate with a lower CoV of ISI)");
        other = {std::move(unit), w};
      }
      continue;
    }
    log_info("decompose: candidate ", it + 1, "/", params.n_iterations, ": unit ",
             accepted.size() + 1, " accepted (", unit.discharges.size(), " discharges, SIL ",
             format_number(std::round(unit.sil * 1000.0) / 1000.0), ", CoV ISI ",
             format_number(std::round(unit.cov_isi * 1000.0) / 1000.0), ")");
    // 8. Peel-off of the accepted unit from the whitened data.
    if (params.peel_off && peel_half > 0) {
      const Eigen::Index width = 2 * peel_half + 1;
      Eigen::MatrixXd avg = Eigen::MatrixXd::Zero(n_w, width);
      Eigen::VectorXd count = Eigen::VectorXd::Zero(width);
      for (const auto j : unit.discharges)
        for (Eigen::Index k = 0; k < width; ++k) {
          const Eigen::Index m = j + k - peel_half;
          if (m >= 0 && m < n) {
            avg.col(k) += z.col(m).cast<double>();
            count[k] += 1.0;
          }
        }
      for (Eigen::Index k = 0; k < width; ++k)
        if (count[k] > 0.0)
          avg.col(k) /= count[k];
      const Eigen::MatrixXf avg_f = avg.cast<float>();
      for (const auto j : unit.discharges)
        for (Eigen::Index k = 0; k < width; ++k) {
          const Eigen::Index m = j + k - peel_half;
          if (m >= 0 && m < n)
            z.col(m) -= avg_f.col(k);
        }
      for (const auto j : unit.discharges)
        for (Eigen::Index k = 0; k < width; ++k) {
          const Eigen::Index m = j + k - peel_half;
          if (m >= 0 && m < n)
            activity[m] = static_cast<double>(z.col(m).squaredNorm());
        }
    }
    accepted.push_back({std::move(unit), w});
    stalled = 0;
  }
  reporter.finish();
  out.stats.time_iterations_s = watch.elapsed_s();

  // Per unit: filter on the extended channels, MUAPs.
  const std::int64_t muap_half = ms_to_samples(params.muap_window_ms / 2.0, fs);
  std::vector<std::vector<std::int64_t>> trains;
  for (auto& a : accepted) {
    MotorUnit& u = a.unit;
    const Eigen::VectorXd f = whiten.transpose() * a.w;
    u.filter = Eigen::MatrixXd::Zero(out.n_channels, r);
    for (Eigen::Index i = 0; i < n_kept; ++i)
      for (Eigen::Index d = 0; d < r; ++d)
        u.filter(kept[static_cast<std::size_t>(i)], d) = f[i * r + d];
    const Eigen::Index width = 2 * muap_half + 1;
    u.muap_first_offset = -muap_half;
    u.muap = Eigen::MatrixXd::Zero(out.n_channels, width);
    std::int64_t used_spikes = 0;
    for (const auto j : u.discharges)
      if (j - muap_half >= 0 && j + muap_half < n) {
        u.muap += out.preprocessing.filtered.middleCols(j - muap_half, width);
        ++used_spikes;
      }
    if (used_spikes > 0)
      u.muap /= static_cast<double>(used_spikes);
    trains.push_back(u.discharges);
    out.units.push_back(std::move(u));
  }
  out.neural_drive_pps = neural_drive(trains, n, fs, ms_to_samples(params.drive_window_ms, fs));
  return out;
}

} // namespace myotwin::inversion
