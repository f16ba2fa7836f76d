// The decomposition section: decomposed discharges over the true ones, the units' statistics and
// their discharge rates over force, from decomposition/decomposition.h5, score.json and the
// truth of forward/emg.h5.

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "data.hpp"
#include "myotwin/core/error.hpp"
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
  // The axis ends at 1.2 x the 99th percentile of the rates: a doublet's 100+ pps would flatten
  // the rest (its point is clipped, not dropped from the data).
  std::vector<double> all;
  for (const auto& r : rates)
    all.push_back(r.at("rate_pps").get<double>());
  std::sort(all.begin(), all.end());
  const double top = all.empty() ? 30.0 : 1.2 * all[all.size() * 99 / 100];
  const nlohmann::json y = {{"field", "rate_pps"},
                            {"type", "quantitative"},
                            {"title", "discharge rate [pps]"},
                            {"scale", {{"domain", {0.0, round_sig(top, 2)}}}}};
  const nlohmann::json colour = {{"field", "unit"}, {"type", "nominal"}, {"legend", nullptr}};
  const nlohmann::json smooth = {
      {"loess", "rate_pps"}, {"on", "t"}, {"groupby", {"unit"}}, {"bandwidth", 0.2}};
  const nlohmann::json rate_layers = {
      {{"mark",
        {{"type", "point"}, {"size", 6}, {"filled", true}, {"opacity", 0.35}, {"clip", true}}},
       {"encoding", {{"x", x}, {"y", y}, {"color", colour}}}},
      {{"transform", {smooth}},
       {"mark", {{"type", "line"}, {"strokeWidth", 1.5}, {"clip", true}}},
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

/// A 3-D dataset of an HDF5 file: dims and values in C order.
struct Array3 {
  std::vector<std::size_t> dims;
  std::vector<double> v;
  double at(std::size_t a, std::size_t b, std::size_t c) const {
    return v[(a * dims[1] + b) * dims[2] + c];
  }
};

Array3 read_array3(const H5Reader& h5, const std::string& name) {
  Array3 a{h5.shape(name), h5.read_double_values(name)};
  if (a.dims.size() != 3)
    throw BadInput(name + ": expected a 3-D dataset");
  return a;
}

/// Per matched unit (at most 12): the spike-triggered MUAP of the decomposed unit on its largest
/// channel, and the true unit's MUAP (muaps.h5) on the same channel, shifted so that their
/// largest values coincide.
nlohmann::json muap_pairs_chart(const fs::path& decomposition, const fs::path& muaps,
                                const std::map<std::int64_t, Match>& matches) {
  const H5Reader dh(decomposition), th(muaps);
  const Array3 sta = read_array3(dh, "units/muaps"), truth = read_array3(th, "muaps");
  const double fs = std::get<double>(dh.attributes("/").at("fs_Hz"));
  const double fs_true = std::get<double>(th.attributes("/").at("fs_Hz"));
  const auto offset =
      std::get<std::int64_t>(dh.attributes("units/muaps").at("first_offset_samples"));
  const MatrixXi64 true_ids = th.read_int64("unit_id");
  nlohmann::json values = nlohmann::json::array();
  int n_pairs = 0;
  for (const auto& [u, m] : matches) {
    std::size_t t = 0;
    while (t < truth.dims[0] && true_ids(static_cast<Eigen::Index>(t), 0) != m.true_unit)
      ++t;
    if (u < 0 || static_cast<std::size_t>(u) >= sta.dims[0] || t == truth.dims[0] || n_pairs == 12)
      continue;
    ++n_pairs;
    const auto d = static_cast<std::size_t>(u);
    std::size_t best_c = 0, k_peak = 0, s_peak = 0;
    double best = -1.0;
    for (std::size_t c = 0; c < sta.dims[1]; ++c) {
      double lo = 0.0, hi = 0.0;
      for (std::size_t k = 0; k < sta.dims[2]; ++k) {
        lo = std::min(lo, sta.at(d, c, k));
        hi = std::max(hi, sta.at(d, c, k));
      }
      if (hi - lo > best) {
        best = hi - lo;
        best_c = c;
      }
    }
    for (std::size_t k = 0; k < sta.dims[2]; ++k)
      if (std::abs(sta.at(d, best_c, k)) > std::abs(sta.at(d, best_c, k_peak)))
        k_peak = k;
    for (std::size_t s = 0; s < truth.dims[2]; ++s)
      if (std::abs(truth.at(t, best_c, s)) > std::abs(truth.at(t, best_c, s_peak)))
        s_peak = s;
    const std::string pair = "decomposed " + std::to_string(u) + " / true " +
                             std::to_string(m.true_unit) + " (ch " + std::to_string(best_c) + ")";
    const double t_peak_ms = 1e3 * (static_cast<double>(k_peak) + static_cast<double>(offset)) / fs;
    for (std::size_t k = 0; k < sta.dims[2]; ++k)
      values.push_back(
          {{"pair", pair},
           {"source", "decomposed (spike-triggered)"},
           {"t_ms", round_sig(1e3 * (static_cast<double>(k) + static_cast<double>(offset)) / fs)},
           {"uV", round_sig(1e6 * sta.at(d, best_c, k))}});
    const double half_ms = 0.5e3 * static_cast<double>(sta.dims[2]) / fs;
    for (std::size_t s = 0; s < truth.dims[2]; ++s) {
      const double t_ms =
          t_peak_ms + 1e3 * (static_cast<double>(s) - static_cast<double>(s_peak)) / fs_true;
      if (std::abs(t_ms - t_peak_ms) <= half_ms)
        values.push_back({{"pair", pair},
                          {"source", "true (muaps.h5)"},
                          {"t_ms", round_sig(t_ms)},
                          {"uV", round_sig(1e6 * truth.at(t, best_c, s))}});
    }
  }
  if (values.empty())
    return nullptr;
  return {
      {"data", {{"values", values}}},
      {"facet", {{"field", "pair"}, {"type", "nominal"}, {"title", nullptr}}},
      {"columns", 4},
      {"resolve", {{"scale", {{"y", "independent"}}}}},
      {"spec",
       {{"width", 200},
        {"height", 110},
        {"mark", {{"type", "line"}, {"strokeWidth", 1.2}}},
        {"encoding",
         {{"x", {{"field", "t_ms"}, {"type", "quantitative"}, {"title", "ms from the discharge"}}},
          {"y", {{"field", "uV"}, {"type", "quantitative"}, {"title", "uV"}}},
          {"color", {{"field", "source"}, {"type", "nominal"}, {"title", nullptr}}}}}}}};
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
  if (fs::exists(layout[Output::muaps]) && !matches.empty())
    if (auto pairs = muap_pairs_chart(path, layout[Output::muaps], matches); !pairs.is_null())
      s.add_chart(std::move(pairs),
                  "Spike-triggered average of the filtered EMG of each matched decomposed unit "
                  "(decomposition.h5 units/muaps) on its largest channel, over the true unit's "
                  "monopolar MUAP on the same channel (muaps.h5, unfiltered), shifted so that "
                  "their largest values coincide.");
  s.add_chart(rates_chart(d, layout[Output::emg]),
              "Instantaneous discharge rate of each decomposed unit (points: 1 / inter-spike "
              "interval, intervals up to 0.5 s; lines: their loess smoothing, bandwidth 0.2) and "
              "the first muscle's force.");
  return s;
}

} // namespace myotwin::app::report
