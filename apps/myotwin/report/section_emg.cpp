// The EMG section: what the grid recorded, from forward/emg.h5.

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "data.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "sections.hpp"

namespace myotwin::app::report {

namespace {

constexpr double uV = 1e6;

/// Up to 6 channels spread over the grid's index range, envelope of each over time.
nlohmann::json traces_chart(const Eigen::MatrixXd& emg, const Eigen::VectorXd& rms,
                            const MatrixXi64& rc, double fs_Hz) {
  const Eigen::Index n_ch = emg.rows();
  const Eigen::Index n_show = std::min<Eigen::Index>(6, n_ch);
  // Channels by decreasing RMS; shown: evenly spaced ranks from the largest to the smallest.
  std::vector<Eigen::Index> by_rms(static_cast<std::size_t>(n_ch));
  std::iota(by_rms.begin(), by_rms.end(), 0);
  std::stable_sort(by_rms.begin(), by_rms.end(), [&](auto a, auto b) { return rms[a] > rms[b]; });
  nlohmann::json values = nlohmann::json::array();
  for (Eigen::Index k = 0; k < n_show; ++k) {
    const Eigen::Index ch =
        by_rms[static_cast<std::size_t>(n_show > 1 ? k * (n_ch - 1) / (n_show - 1) : 0)];
    const std::string name = "ch " + std::to_string(ch) + " (r" + std::to_string(rc(ch, 0)) + " c" +
                             std::to_string(rc(ch, 1)) + ")";
    for (auto& v : envelope(emg.row(ch).transpose(), fs_Hz, 1000, uV)) {
      v["channel"] = name;
      v["ch"] = ch;
      v["rank"] = k;
      values.push_back(std::move(v));
    }
  }
  return envelope_chart(std::move(values), 70, "#335");
}

nlohmann::json rms_map_chart(const Eigen::VectorXd& rms, const MatrixXi64& rc) {
  nlohmann::json values = nlohmann::json::array();
  for (Eigen::Index c = 0; c < rms.size(); ++c)
    values.push_back(
        {{"ch", c}, {"row", rc(c, 0)}, {"col", rc(c, 1)}, {"rms_uV", round_sig(rms[c] * uV)}});
  return {{"data", {{"values", values}}},
          {"mark", "rect"},
          {"width", std::min<double>(900, 26.0 * (static_cast<double>(rc.col(1).maxCoeff()) + 1))},
          {"height", std::min<double>(600, 18.0 * (static_cast<double>(rc.col(0).maxCoeff()) + 1))},
          {"encoding",
           {{"x", {{"field", "col"}, {"type", "ordinal"}, {"title", "grid column"}}},
            {"y", {{"field", "row"}, {"type", "ordinal"}, {"title", "grid row"}}},
            {"color",
             {{"field", "rms_uV"},
              {"type", "quantitative"},
              {"title", "RMS [uV]"},
              {"scale", {{"scheme", "viridis"}}}}},
            {"tooltip", {{{"field", "ch"}}, {{"field", "rms_uV"}}}}}}};
}

nlohmann::json force_chart(const H5Reader& h5, double fs_Hz) {
  nlohmann::json values = nlohmann::json::array();
  if (h5.contains("force")) {
    const Eigen::MatrixXd force = h5.read_double("force");
    std::vector<std::string> names;
    if (const auto a = h5.attributes("force"); a.count("muscles"))
      names = split(std::get<std::string>(a.at("muscles")), ';');
    for (Eigen::Index m = 0; m < force.rows(); ++m) {
      const auto i = static_cast<std::size_t>(m);
      const std::string name = "force " + (i < names.size() ? names[i] : std::to_string(m));
      for (auto& v : decimated_series(force.row(m).transpose(), fs_Hz, 1000, 100.0, "percent")) {
        v["series"] = name;
        values.push_back(std::move(v));
      }
    }
  }
  if (h5.contains("reference")) {
    const Eigen::VectorXd ref = h5.read_double("reference").col(0);
    for (auto& v : decimated_series(ref, fs_Hz, 1000, 100.0, "percent")) {
      v["series"] = "excitation";
      values.push_back(std::move(v));
    }
  }
  if (values.empty())
    return nullptr;
  return {{"data", {{"values", values}}},
          {"width", 900},
          {"height", 200},
          {"mark", "line"},
          {"encoding",
           {{"x", {{"field", "t"}, {"type", "quantitative"}, {"title", "time [s]"}}},
            {"y", {{"field", "percent"}, {"type", "quantitative"}, {"title", "% of maximum"}}},
            {"color", {{"field", "series"}, {"type", "nominal"}, {"title", nullptr}}}}}};
}

} // namespace

Section emg_section(const Layout& layout) {
  Section s{"emg", "EMG", "", {}};
  const auto path = layout[Output::emg];
  const H5Reader h5(path);
  const Eigen::MatrixXd emg = h5.read_double("emg");
  const double fs_Hz = std::get<double>(h5.attributes("/").at("fs_Hz"));
  const MatrixXi64 rc = grid_layout(h5, emg.rows());
  const Eigen::VectorXd rms = row_rms(emg);
  s.add_text(std::to_string(emg.rows()) + " channels, " +
             fmt(static_cast<double>(emg.cols()) / fs_Hz) + " s at " + fmt(fs_Hz, 6) +
             " Hz, from " + path.string() + " (dataset emg, with noise).");
  s.add_chart(traces_chart(emg, rms, rc, fs_Hz),
              "Monopolar EMG of six channels, from the largest RMS to the smallest: the minimum "
              "and maximum of "
              "each of 1000 time bins (what a full-resolution plot shows at one bin per pixel).");
  s.add_chart(
      rms_map_chart(rms, rc),
      "RMS of each channel over the whole recording, laid out as the grid (row 0 at the top).");
  s.add_chart(spectrum_chart(emg, fs_Hz),
              "Power spectral density averaged over channels (Welch, Hann segments of up to 1024 "
              "samples, 50 % overlap).");
  if (auto force = force_chart(h5, fs_Hz); !force.is_null())
    s.add_chart(std::move(force), "Twitch-model force of each simulated muscle and the "
                                  "excitation that drove the pool, in % of maximum.");
  return s;
}

} // namespace myotwin::app::report
