#include "myotwin/inversion/firing.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <set>

#include "myotwin/core/error.hpp"

namespace myotwin::inversion {

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

FiringStats firing_stats(const std::vector<std::int64_t>& discharges, double fs_Hz,
                         double doublet_isi_s, double max_isi_s) {
  if (!(fs_Hz > 0.0) || !std::isfinite(fs_Hz) || !(doublet_isi_s >= 0.0) ||
      !(max_isi_s > doublet_isi_s))
    throw BadInput("firing_stats: fs_Hz = " + format_number(fs_Hz) + ", doublet_isi_s = " +
                   format_number(doublet_isi_s) + ", max_isi_s = " + format_number(max_isi_s) +
                   ": expected fs_Hz > 0 (finite) and 0 <= doublet_isi_s < max_isi_s");
  FiringStats out;
  std::vector<double> isi, regular, cv2;
  for (std::size_t i = 1; i < discharges.size(); ++i)
    isi.push_back(static_cast<double>(discharges[i] - discharges[i - 1]) / fs_Hz);
  for (std::size_t i = 0; i < isi.size(); ++i) {
    if (isi[i] < doublet_isi_s)
      ++out.n_doublets;
    else if (isi[i] > max_isi_s)
      ++out.n_pauses;
    else
      regular.push_back(isi[i]);
    if (i > 0 && isi[i] <= max_isi_s && isi[i - 1] <= max_isi_s && isi[i] + isi[i - 1] > 0.0)
      cv2.push_back(2.0 * std::abs(isi[i] - isi[i - 1]) / (isi[i] + isi[i - 1]));
  }
  if (!cv2.empty()) {
    // The median (mean of the two middle values for an even count).
    const auto mid = cv2.begin() + static_cast<std::ptrdiff_t>(cv2.size() / 2);
    std::nth_element(cv2.begin(), mid, cv2.end());
    out.cov_isi_local = *mid;
    if (cv2.size() % 2 == 0)
      out.cov_isi_local = 0.5 * (out.cov_isi_local + *std::max_element(cv2.begin(), mid));
  }
  if (regular.empty())
    return out;
  const double mean =
      std::accumulate(regular.begin(), regular.end(), 0.0) / static_cast<double>(regular.size());
  out.rate_pps = 1.0 / mean;
  if (regular.size() < 2)
    return out;
  double var = 0.0;
  for (const double v : regular)
    var += (v - mean) * (v - mean);
  out.cov_isi = std::sqrt(var / static_cast<double>(regular.size())) / mean;
  return out;
}

std::vector<std::string> review_flags(double pnr, const FiringStats& firing,
                                      std::int64_t n_discharges, const ReviewLimits& limits) {
  std::vector<std::string> flags;
  const double n_intervals = static_cast<double>(std::max<std::int64_t>(1, n_discharges - 1));
  if (pnr < limits.min_pnr_dB)
    flags.emplace_back("pnr");
  if (firing.cov_isi > limits.max_cov_isi)
    flags.emplace_back("cov_isi");
  if (static_cast<double>(firing.n_doublets) / n_intervals > limits.max_doublet_fraction)
    flags.emplace_back("doublets");
  if (static_cast<double>(firing.n_pauses) / n_intervals > limits.max_pause_fraction)
    flags.emplace_back("pauses");
  return flags;
}

double pnr_dB(const Eigen::Ref<const Eigen::VectorXd>& source,
              const std::vector<std::int64_t>& discharges, double fs_Hz) {
  const Eigen::Index n = source.size();
  std::vector<std::int64_t> at;
  for (const auto j : discharges)
    if (j >= 0 && j < n)
      at.push_back(j);
  if (at.empty())
    return 0.0;
  const auto guard = static_cast<std::int64_t>(std::llround(3.0 / 2048.0 * fs_Hz));
  std::vector<char> near(static_cast<std::size_t>(n), 0);
  for (const auto j : at)
    for (std::int64_t k = std::max<std::int64_t>(0, j - guard); k <= std::min(n - 1, j + guard);
         ++k)
      near[static_cast<std::size_t>(k)] = 1;
  const auto pulse = [&](Eigen::Index k) { return source[k] * std::abs(source[k]); };
  double on = 0.0, off = 0.0;
  std::size_t n_off = 0;
  for (const auto j : at)
    on += pulse(j) * pulse(j);
  const auto [first, last] = std::minmax_element(at.begin(), at.end());
  for (Eigen::Index k = *first; k <= *last; ++k)
    if (!near[static_cast<std::size_t>(k)] && pulse(k) >= 0.0) {
      off += pulse(k) * pulse(k);
      ++n_off;
    }
  if (n_off == 0 || !(off > 0.0) || !(on > 0.0))
    return 0.0;
  return 10.0 *
         std::log10((on / static_cast<double>(at.size())) / (off / static_cast<double>(n_off)));
}

std::int64_t review_bits(const std::vector<std::string>& flags) {
  std::int64_t bits = 0;
  for (const auto& f : flags)
    bits |= f == "pnr" ? 1 : f == "cov_isi" ? 2 : f == "doublets" ? 4 : f == "pauses" ? 8 : 0;
  return bits;
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

} // namespace myotwin::inversion
