// The decomposition section: decomposed discharges over the true ones, the units' statistics and
// their discharge rates over force, from decomposition/decomposition.h5, score.json and the
// truth of forward/emg.h5.

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "data.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/inversion/score.hpp"
#include "sections.hpp"

namespace fs = std::filesystem;

namespace myotwin::app::report {

namespace {

/// A match of score.json: decomposed unit -> (true unit id, RoA).
struct Match {
  std::int64_t true_unit = -1;
  double roa = 0.0;
};

std::map<std::int64_t, Match> read_matches(const fs::path& score_json) {
  std::map<std::int64_t, Match> out;
  if (!fs::exists(score_json))
    return out;
  const auto j = nlohmann::json::parse(read_text_file(score_json));
  for (const auto& m : j.at("matches"))
    out[m.at("decomposed_unit").get<std::int64_t>()] = {m.at("true_unit").get<std::int64_t>(),
                                                        m.at("roa").get<double>()};
  return out;
}

void add_ticks(nlohmann::json& values, const std::vector<std::int64_t>& samples, double fs_Hz,
               const std::string& row, int order, const nlohmann::json& roa) {
  for (const auto s : samples)
    values.push_back({{"row", row},
                      {"order", order},
                      {"t", round_sig(static_cast<double>(s) / fs_Hz, 6)},
                      {"roa", roa}});
}

/// Rows: each true unit (by id), its matched decomposed unit just below it; then the unmatched
/// decomposed units. Ticks coloured by RoA (grey: no match).
nlohmann::json raster_chart(const inversion::SpikeTrains& d, const inversion::SpikeTrains* truth,
                            const std::map<std::int64_t, Match>& matches) {
  nlohmann::json values = nlohmann::json::array();
  int order = 0;
  std::vector<bool> placed(d.unit_id.size(), false);
  if (truth != nullptr) {
    for (std::size_t t = 0; t < truth->unit_id.size(); ++t) {
      const auto tid = truth->unit_id[t];
      const auto m = std::find_if(matches.begin(), matches.end(),
                                  [&](const auto& p) { return p.second.true_unit == tid; });
      const nlohmann::json roa =
          m == matches.end() ? nlohmann::json(nullptr) : nlohmann::json(round_sig(m->second.roa));
      add_ticks(values, truth->samples[t], truth->fs_Hz, "true " + std::to_string(tid), order++,
                roa);
      if (m != matches.end() && m->first >= 0 &&
          static_cast<std::size_t>(m->first) < d.unit_id.size()) {
        const auto u = static_cast<std::size_t>(m->first);
        add_ticks(values, d.samples[u], d.fs_Hz, "  decomposed " + std::to_string(d.unit_id[u]),
                  order++, roa);
        placed[u] = true;
      }
    }
  }
  for (std::size_t u = 0; u < d.unit_id.size(); ++u)
    if (!placed[u])
      add_ticks(values, d.samples[u], d.fs_Hz, "  decomposed " + std::to_string(d.unit_id[u]),
                order++, nullptr);
  return {{"data", {{"values", values}}},
          {"width", 900},
          {"height", std::clamp(9 * order, 80, 1400)},
          {"mark", {{"type", "tick"}, {"thickness", 1}}},
          {"encoding",
           {{"x", {{"field", "t"}, {"type", "quantitative"}, {"title", "time [s]"}}},
            {"y",
             {{"field", "row"},
              {"type", "nominal"},
              {"title", nullptr},
              {"sort", {{"field", "order"}}},
              {"axis", {{"labelFontSize", 8}}}}},
            {"color",
             {{"condition", {{"test", "datum.roa === null"}, {"value", "#aaa"}}},
              {"field", "roa"},
              {"type", "quantitative"},
              {"title", "RoA"},
              {"scale", {{"domain", {0, 1}}, {"scheme", "redyellowgreen"}}}}}}},
          {"config", {{"mark", {{"invalid", nullptr}}}}}};
}

/// Instantaneous discharge rate (1 / ISI, ISIs up to 0.5 s) of each decomposed unit, with the
/// force of forward/emg.h5 on a second axis when it is there.
nlohmann::json rates_chart(const inversion::SpikeTrains& d, const fs::path& emg) {
  nlohmann::json rates = nlohmann::json::array();
  for (std::size_t u = 0; u < d.unit_id.size(); ++u)
    for (std::size_t k = 1; k < d.samples[u].size(); ++k) {
      const double isi = static_cast<double>(d.samples[u][k] - d.samples[u][k - 1]) / d.fs_Hz;
      if (isi > 0.0 && isi <= 0.5)
        rates.push_back({{"unit", d.unit_id[u]},
                         {"t", round_sig(static_cast<double>(d.samples[u][k]) / d.fs_Hz, 6)},
                         {"rate_pps", round_sig(1.0 / isi)}});
    }
  const nlohmann::json x = {{"field", "t"}, {"type", "quantitative"}, {"title", "time [s]"}};
  const nlohmann::json y = {
      {"field", "rate_pps"}, {"type", "quantitative"}, {"title", "discharge rate [pps]"}};
  const nlohmann::json colour = {{"field", "unit"}, {"type", "nominal"}, {"legend", nullptr}};
  const nlohmann::json smooth = {
      {"loess", "rate_pps"}, {"on", "t"}, {"groupby", {"unit"}}, {"bandwidth", 0.2}};
  const nlohmann::json rate_layers = {
      {{"mark", {{"type", "point"}, {"size", 6}, {"filled", true}, {"opacity", 0.35}}},
       {"encoding", {{"x", x}, {"y", y}, {"color", colour}}}},
      {{"transform", {smooth}},
       {"mark", {{"type", "line"}, {"strokeWidth", 1.5}}},
       {"encoding", {{"x", x}, {"y", y}, {"color", colour}}}}};
  nlohmann::json layers = {{{"data", {{"values", rates}}}, {"layer", rate_layers}}};
  if (fs::exists(emg)) {
    const H5Reader h5(emg);
    if (h5.contains("force")) {
      const Eigen::VectorXd force = h5.read_double("force").row(0).transpose();
      layers.push_back(
          {{"data", {{"values", decimated_series(force, d.fs_Hz, 800, 100.0, "force")}}},
           {"mark", {{"type", "line"}, {"color", "black"}, {"strokeWidth", 2}}},
           {"encoding",
            {{"x", {{"field", "t"}, {"type", "quantitative"}}},
             {"y",
              {{"field", "force"},
               {"type", "quantitative"},
               {"title", "force [% of maximum] (black)"}}}}}});
    }
  }
  return {{"width", 900},
          {"height", 300},
          {"layer", layers},
          {"resolve", {{"scale", {{"y", "independent"}}}}}};
}

std::vector<std::vector<std::string>> stats_table(const fs::path& path,
                                                  const std::map<std::int64_t, Match>& matches) {
  const H5Reader h5(path);
  const MatrixXi64 ids = h5.read_int64("units/unit_id");
  const char* names[] = {"units/n_discharges", "units/sil", "units/pnr_dB", "units/cov_isi",
                         "units/rate_pps"};
  std::vector<Eigen::MatrixXd> cols;
  for (const char* n : names)
    cols.push_back(h5.read_double(n));
  std::vector<std::vector<std::string>> rows = {
      {"unit", "discharges", "SIL", "PNR [dB]", "CoV ISI", "rate [pps]", "true unit", "RoA"}};
  for (Eigen::Index u = 0; u < ids.rows(); ++u) {
    std::vector<std::string> r = {std::to_string(ids(u, 0))};
    for (const auto& c : cols)
      r.push_back(fmt(c(u, 0)));
    const auto m = matches.find(u);
    r.push_back(m == matches.end() ? "-" : std::to_string(m->second.true_unit));
    r.push_back(m == matches.end() ? "-" : fmt(m->second.roa));
    rows.push_back(std::move(r));
  }
  return rows;
}

} // namespace

Section decomposition_section(const Layout& layout) {
  Section s{"decomposition", "Decomposition", "", {}};
  const auto path = layout[Output::decomposition];
  const auto d = inversion::read_spike_trains(path);
  const auto matches = read_matches(layout[Output::score]);
  std::optional<inversion::SpikeTrains> truth;
  if (fs::exists(layout[Output::emg]) && H5Reader(layout[Output::emg]).contains("truth"))
    truth = inversion::read_spike_trains(layout[Output::emg]);
  s.add_text(
      std::to_string(d.unit_id.size()) + " decomposed units in " + path.string() +
      (truth ? "; " + std::to_string(truth->unit_id.size()) + " true units in " +
                   layout[Output::emg].string()
             : "; no ground truth") +
      (matches.empty() ? "; no score.json (run myotwin score)" : "; matches from score.json") +
      ".");
  s.add_chart(
      raster_chart(d, truth ? &*truth : nullptr, matches),
      "Discharges of each true unit with its matched decomposed unit just below it, "
      "coloured by their rate of agreement (grey: no match); unmatched decomposed units at "
      "the bottom. Decomposed discharges are shown as found (not shifted by the match's lag).");
  s.add_table(stats_table(path, matches));
  s.add_chart(rates_chart(d, layout[Output::emg]),
              "Instantaneous discharge rate of each decomposed unit (points: 1 / inter-spike "
              "interval, intervals up to 0.5 s; lines: their loess smoothing, bandwidth 0.2) and "
              "the first muscle's force.");
  return s;
}

} // namespace myotwin::app::report
