#include "myotwin/inversion/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/signal.hpp"
#include "myotwin/core/stats.hpp"

namespace myotwin::inversion {

using signal::Biquad;
using signal::run_biquad;

PreprocessParams read_preprocess_params(ConfigReader& section) {
  PreprocessParams p;
  p.highpass_Hz = section.optional<double>(
      "highpass_Hz", p.highpass_Hz, non_negative(),
      "corner of the zero-phase Butterworth high-pass; below lowpass_Hz; 0: off");
  p.lowpass_Hz = section.optional<double>("lowpass_Hz", p.lowpass_Hz, non_negative(),
                                          "corner of the zero-phase Butterworth low-pass; skipped "
                                          "(with a warning) above fs / 2; 0: off");
  p.powerline_Hz = section.optional<double>("powerline_Hz", p.powerline_Hz, non_negative(),
                                            "powerline frequency notched with its harmonics below "
                                            "the low-pass (usually 50 or 60); 0: off");
  p.notch_bandwidth_Hz = section.optional<double>("notch_bandwidth_Hz", p.notch_bandwidth_Hz,
                                                  positive(), "bandwidth of each powerline notch");
  p.reject_channels =
      section.optional<bool>("reject_channels", p.reject_channels, {},
                             "reject flat, saturated and noisy channels before decomposition");
  p.flat_rms_fraction = section.optional<double>(
      "flat_rms_fraction", p.flat_rms_fraction, in_range(0.0, 1.0),
      "a channel is flat when its filtered rms is below this fraction of the median rms");
  p.saturation_fraction = section.optional<double>(
      "saturation_fraction", p.saturation_fraction, in_range(1e-9, 1.0),
      "a channel is saturated when this fraction of its raw samples (and >= 3) sit at its rails");
  p.noisy_ratio = section.optional<double>(
      "noisy_ratio", p.noisy_ratio,
      Check<double>(
          [](const double& v) -> std::optional<std::string> {
            if (!(v > 1.0) || !std::isfinite(v))
              return "must be a finite number > 1";
            return std::nullopt;
          },
          "> 1"),
      "a channel is noisy when its rms exceeds this times the median rms of its grid neighbours");
  if (p.highpass_Hz > 0.0 && p.lowpass_Hz > 0.0 && p.highpass_Hz >= p.lowpass_Hz)
    section.fail("highpass_Hz", "must be below lowpass_Hz = " + format_number(p.lowpass_Hz));
  return p;
}

void validate(const PreprocessParams& params) {
  // The reader's declarations are the one statement of every range.
  ConfigReader reader(to_json(params), "decompose");
  (void)read_preprocess_params(reader);
  reader.finish();
}

nlohmann::json to_json(const PreprocessParams& p) {
  return {{"highpass_Hz", p.highpass_Hz},
          {"lowpass_Hz", p.lowpass_Hz},
          {"powerline_Hz", p.powerline_Hz},
          {"notch_bandwidth_Hz", p.notch_bandwidth_Hz},
          {"reject_channels", p.reject_channels},
          {"flat_rms_fraction", p.flat_rms_fraction},
          {"saturation_fraction", p.saturation_fraction},
          {"noisy_ratio", p.noisy_ratio}};
}

std::vector<std::string> filter_signals(Eigen::MatrixXd& signals, double fs_Hz,
                                        const PreprocessParams& params) {
  std::vector<std::string> notes;
  std::vector<Biquad> cascade;
  const double nyquist = fs_Hz / 2.0;
  if (params.highpass_Hz > 0.0) {
    if (params.highpass_Hz < nyquist)
      cascade.push_back(Biquad::highpass(params.highpass_Hz, std::numbers::sqrt2 / 2.0, fs_Hz));
    else
      notes.push_back("high-pass at " + format_number(params.highpass_Hz) +
                      " Hz skipped: not below fs / 2 = " + format_number(nyquist) + " Hz");
  }
  double top = nyquist;
  if (params.lowpass_Hz > 0.0) {
    if (params.lowpass_Hz < 0.98 * nyquist) {
      cascade.push_back(Biquad::lowpass(params.lowpass_Hz, std::numbers::sqrt2 / 2.0, fs_Hz));
      top = params.lowpass_Hz;
    } else {
      notes.push_back("low-pass at " + format_number(params.lowpass_Hz) +
                      " Hz skipped: not below fs / 2 = " + format_number(nyquist) + " Hz");
    }
  }
  if (params.powerline_Hz > 0.0)
    for (double f = params.powerline_Hz; f < top && f < 0.98 * nyquist; f += params.powerline_Hz)
      cascade.push_back(Biquad::notch(f, f / params.notch_bandwidth_Hz, fs_Hz));
  if (cascade.empty())
    return notes;
  const Eigen::Index n = signals.cols();
  const double corner = params.highpass_Hz > 0.0 ? params.highpass_Hz : 10.0;
  const auto pad = static_cast<Eigen::Index>(
      std::min<double>(static_cast<double>(n - 1), std::ceil(3.0 * fs_Hz / corner)));
  const auto n_ch = signals.rows();
#pragma omp parallel for schedule(dynamic)
  for (Eigen::Index c = 0; c < n_ch; ++c) {
    std::vector<double> x(static_cast<std::size_t>(n + 2 * pad));
    const double first = signals(c, 0), last = signals(c, n - 1);
    for (Eigen::Index k = 0; k < pad; ++k) {
      x[static_cast<std::size_t>(k)] = 2.0 * first - signals(c, pad - k);
      x[static_cast<std::size_t>(n + pad + k)] = 2.0 * last - signals(c, n - 2 - k);
    }
    for (Eigen::Index k = 0; k < n; ++k)
      x[static_cast<std::size_t>(pad + k)] = signals(c, k);
    for (const auto& f : cascade) {
      run_biquad(f, x, false);
      run_biquad(f, x, true);
    }
    for (Eigen::Index k = 0; k < n; ++k)
      signals(c, k) = x[static_cast<std::size_t>(pad + k)];
  }
  return notes;
}

PreprocessResult preprocess(const Eigen::Ref<const Eigen::MatrixXd>& emg, double fs_Hz,
                            const Eigen::Ref<const MatrixXi64>& grid_row_col,
                            const PreprocessParams& params) {
  validate(params);
  PreprocessResult r;
  r.filtered = emg;
  r.notes = filter_signals(r.filtered, fs_Hz, params);
  const auto n_ch = emg.rows();
  const auto n = emg.cols();
  r.channels.resize(static_cast<std::size_t>(n_ch));
  std::vector<double> rms(static_cast<std::size_t>(n_ch));
  for (Eigen::Index c = 0; c < n_ch; ++c) {
    rms[static_cast<std::size_t>(c)] =
        std::sqrt(r.filtered.row(c).squaredNorm() / static_cast<double>(n));
    r.channels[static_cast<std::size_t>(c)].index = c;
    r.channels[static_cast<std::size_t>(c)].rms = rms[static_cast<std::size_t>(c)];
  }
  if (params.reject_channels) {
    const double median_rms = median(rms);
    const bool has_grid = grid_row_col.rows() == n_ch && grid_row_col.cols() == 2;
    for (Eigen::Index c = 0; c < n_ch; ++c) {
      auto& st = r.channels[static_cast<std::size_t>(c)];
      const double v = rms[static_cast<std::size_t>(c)];
      if (v == 0.0 || v < params.flat_rms_fraction * median_rms) {
        st.rejected = "flat";
        st.detail = "rms " + format_number(v) + " V < " + format_number(params.flat_rms_fraction) +
                    " x median rms " + format_number(median_rms) + " V";
        continue;
      }
      const double hi = emg.row(c).maxCoeff(), lo = emg.row(c).minCoeff();
      std::int64_t at_rail = 0;
      for (Eigen::Index k = 0; k < n; ++k)
        at_rail += (emg(c, k) == hi || emg(c, k) == lo) ? 1 : 0;
      const double fraction = static_cast<double>(at_rail) / static_cast<double>(n);
      if (at_rail >= 3 && fraction >= params.saturation_fraction) {
        st.rejected = "saturated";
        st.detail = format_number(100.0 * fraction) + " % of samples at the extremes (" +
                    format_number(lo) + ", " + format_number(hi) + "), threshold " +
                    format_number(100.0 * params.saturation_fraction) + " %";
        continue;
      }
      std::vector<double> neighbours;
      if (has_grid)
        for (Eigen::Index o = 0; o < n_ch; ++o)
          if (o != c && std::abs(grid_row_col(o, 0) - grid_row_col(c, 0)) <= 1 &&
              std::abs(grid_row_col(o, 1) - grid_row_col(c, 1)) <= 1)
            neighbours.push_back(rms[static_cast<std::size_t>(o)]);
      double ref = 0.0;
      std::string ref_name = "the neighbours' median rms";
      if (!neighbours.empty()) {
        ref = median(neighbours);
      } else {
        ref_name = "the other channels' 90th percentile rms";
        // Without neighbours the reference is the 90th percentile of the other channels: their
        // median would reject the channels over the active muscle of a grid that wraps the
        // limb (15 times the median on the sample forearm), the most informative ones.
        for (Eigen::Index o = 0; o < n_ch; ++o)
          if (o != c)
            neighbours.push_back(rms[static_cast<std::size_t>(o)]);
        if (!neighbours.empty()) {
          const auto k = static_cast<std::ptrdiff_t>(
              std::floor(0.9 * static_cast<double>(neighbours.size() - 1)));
          std::nth_element(neighbours.begin(), neighbours.begin() + k, neighbours.end());
          ref = neighbours[static_cast<std::size_t>(k)];
        }
      }
      if (!neighbours.empty() && v > params.noisy_ratio * ref) {
        st.rejected = "noisy";
        st.detail = "rms " + format_number(v) + " V > " + format_number(params.noisy_ratio) +
                    " x " + ref_name + " " + format_number(ref) + " V";
      }
    }
  }
  std::string all;
  for (const auto& st : r.channels) {
    if (st.rejected.empty())
      r.kept.push_back(st.index);
    else if (all.size() < 2000)
      all +=
          "\n  channel " + std::to_string(st.index) + ": " + st.rejected + " (" + st.detail + ")";
  }
  if (r.kept.empty())
    throw BadInput("all " + std::to_string(n_ch) +
                   " channels were rejected (nothing to decompose):" + all);
  return r;
}

nlohmann::json to_json(const PreprocessResult& result) {
  nlohmann::json channels = nlohmann::json::array();
  for (const auto& st : result.channels)
    channels.push_back(
        {{"index", st.index},
         {"rms_V", st.rms},
         {"rejected", st.rejected.empty() ? nlohmann::json(false) : nlohmann::json(st.rejected)},
         {"detail", st.detail}});
  return {{"n_channels", result.channels.size()},
          {"n_kept", result.kept.size()},
          {"channels", channels},
          {"notes", result.notes}};
}

} // namespace myotwin::inversion
