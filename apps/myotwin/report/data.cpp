#include "data.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "myotwin/core/signal.hpp"
#include "myotwin/forward/noise/noise.hpp"

namespace myotwin::app::report {

double round_sig(double v, int digits) {
  if (v == 0.0 || !std::isfinite(v))
    return v;
  const double p =
      std::pow(10.0, digits - 1 - static_cast<int>(std::floor(std::log10(std::abs(v)))));
  return std::round(v * p) / p;
}

nlohmann::json rounded_array(const Eigen::Ref<const Eigen::VectorXd>& v, double scale) {
  nlohmann::json out = nlohmann::json::array();
  for (Eigen::Index i = 0; i < v.size(); ++i)
    out.push_back(round_sig(v[i] * scale));
  return out;
}

nlohmann::json envelope(const Eigen::Ref<const Eigen::VectorXd>& x, double fs_Hz, int n_bins,
                        double scale) {
  nlohmann::json out = nlohmann::json::array();
  const Eigen::Index n = x.size();
  const Eigen::Index bins = std::min<Eigen::Index>(n, std::max(n_bins, 1));
  for (Eigen::Index b = 0; b < bins; ++b) {
    const Eigen::Index first = b * n / bins, last = (b + 1) * n / bins;
    const auto seg = x.segment(first, last - first);
    out.push_back({{"t", round_sig(static_cast<double>(first) / fs_Hz, 6)},
                   {"lo", round_sig(seg.minCoeff() * scale)},
                   {"hi", round_sig(seg.maxCoeff() * scale)}});
  }
  return out;
}

nlohmann::json decimated_series(const Eigen::Ref<const Eigen::VectorXd>& x, double fs_Hz,
                                int max_points, double scale, const std::string& key) {
  nlohmann::json out = nlohmann::json::array();
  const Eigen::Index n = x.size();
  const Eigen::Index step = std::max<Eigen::Index>(1, (n + max_points - 1) / max_points);
  for (Eigen::Index i = 0; i < n; i += step)
    out.push_back(
        {{"t", round_sig(static_cast<double>(i) / fs_Hz, 6)}, {key, round_sig(x[i] * scale)}});
  if (n > 0 && (n - 1) % step != 0)
    out.push_back({{"t", round_sig(static_cast<double>(n - 1) / fs_Hz, 6)},
                   {key, round_sig(x[n - 1] * scale)}});
  return out;
}

Eigen::VectorXd row_rms(const Eigen::Ref<const Eigen::MatrixXd>& x) {
  Eigen::VectorXd out(x.rows());
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    out[r] = x.cols() > 0 ? std::sqrt(x.row(r).squaredNorm() / static_cast<double>(x.cols())) : 0.0;
  return out;
}

MatrixXi64 grid_layout(const H5Reader& h5, Eigen::Index n_channels) {
  if (h5.contains("channels/grid_row_col")) {
    MatrixXi64 rc = h5.read_int64("channels/grid_row_col");
    if (rc.rows() == n_channels && rc.cols() == 2)
      return rc;
  }
  MatrixXi64 rc(n_channels, 2);
  for (Eigen::Index c = 0; c < n_channels; ++c) {
    rc(c, 0) = c;
    rc(c, 1) = 0;
  }
  return rc;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  if (text.empty())
    return out;
  std::size_t start = 0;
  for (auto end = text.find(sep); end != std::string::npos; end = text.find(sep, start)) {
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  out.push_back(text.substr(start));
  return out;
}

nlohmann::json spectrum_chart(const Eigen::MatrixXd& emg, double fs_Hz) {
  Eigen::Index seg = 1;
  while (seg * 2 <= std::min<Eigen::Index>(emg.cols(), 1024))
    seg *= 2;
  const Eigen::MatrixXd psd = signal::welch_psd(emg, fs_Hz, seg);
  const Eigen::VectorXd mean = psd.colwise().mean().transpose();
  nlohmann::json values = nlohmann::json::array();
  for (Eigen::Index k = 1; k < mean.size(); ++k)
    values.push_back(
        {{"f_Hz", round_sig(static_cast<double>(k) * fs_Hz / static_cast<double>(seg))},
         {"psd", round_sig(mean[k] * 1e12)}});
  return {{"data", {{"values", values}}},
          {"width", 600},
          {"height", 250},
          {"mark", {{"type", "line"}, {"color", "#335"}}},
          {"encoding",
           {{"x", {{"field", "f_Hz"}, {"type", "quantitative"}, {"title", "frequency [Hz]"}}},
            {"y",
             {{"field", "psd"},
              {"type", "quantitative"},
              {"title", "PSD [uV^2/Hz]"},
              {"scale", {{"type", "log"}}}}}}}};
}

nlohmann::json envelope_chart(nlohmann::json values, int height, const std::string& colour) {
  return {{"data", {{"values", std::move(values)}}},
          {"facet",
           {{"row",
             {{"field", "channel"},
              {"type", "nominal"},
              {"title", nullptr},
              {"sort", {{"field", "rank"}}}}}}},
          {"spec",
           {{"width", 950},
            {"height", height},
            {"mark", {{"type", "area"}, {"color", colour}}},
            {"encoding",
             {{"x", {{"field", "t"}, {"type", "quantitative"}, {"title", "time [s]"}}},
              {"y", {{"field", "lo"}, {"type", "quantitative"}, {"title", "uV"}}},
              {"y2", {{"field", "hi"}}}}}}}};
}

std::string fmt(double v, int digits) {
  std::ostringstream s;
  s.precision(digits);
  s << v;
  return s.str();
}

} // namespace myotwin::app::report
