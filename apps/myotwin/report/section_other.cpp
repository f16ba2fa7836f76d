// The shorter sections: model-informed inversion, needle EMG.

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

/// The MUAP of each unit on each channel at each needle position (muaps.h5
/// position_<k>/muaps_channels), one panel per position and channel.
nlohmann::json needle_muaps_chart(const H5Reader& h5) {
  const MatrixXi64 ids = h5.read_int64("unit_id");
  const double fs_Hz = std::get<double>(h5.attributes("/").at("fs_Hz"));
  nlohmann::json values = nlohmann::json::array();
  for (int position = 0; h5.contains("position_" + std::to_string(position)); ++position) {
    const std::string name = "position_" + std::to_string(position) + "/muaps_channels";
    const auto dims = h5.shape(name);
    const auto v = h5.read_double_values(name);
    for (std::size_t u = 0; u < dims.at(0); ++u)
      for (std::size_t c = 0; c < dims.at(1); ++c)
        for (std::size_t k = 0; k < dims.at(2); ++k)
          values.push_back({{"position", position},
                            {"unit", ids(static_cast<Eigen::Index>(u), 0)},
                            {"channel", "channel " + std::to_string(c)},
                            {"t_ms", round_sig(1e3 * static_cast<double>(k) / fs_Hz)},
                            {"uV", round_sig(1e6 * v[(u * dims[1] + c) * dims[2] + k])}});
  }
  return {{"data", {{"values", values}}},
          {"facet",
           {{"row", {{"field", "position"}, {"type", "ordinal"}, {"title", "needle position"}}},
            {"column", {{"field", "channel"}, {"type", "nominal"}, {"title", nullptr}}}}},
          {"spec",
           {{"width", 260},
            {"height", 150},
            {"mark", {{"type", "line"}, {"strokeWidth", 1}}},
            {"encoding",
             {{"x", {{"field", "t_ms"}, {"type", "quantitative"}, {"title", "ms from activation"}}},
              {"y", {{"field", "uV"}, {"type", "quantitative"}, {"title", "uV"}}},
              {"color", {{"field", "unit"}, {"type", "nominal"}}}}}}}};
}

/// Per inverted unit (inversion/properties.json) and property (depth, end-plate shift, fibres,
/// CV): the fitted value and its spread (lo, hi: fit -+ the sd over the fit's starts; none is
/// reported for the depth), and, for the units matched to a true unit of forward/emg.h5 by their
/// discharges (inversion::score, default tolerance), the true value, the true unit and the RoA.
/// The true end-plate shift is 0: the forward model puts every fibre's end-plate at its own
/// end_plate_m, from which the fit's shift is measured (as inversion/benchmark scores it).
nlohmann::json inversion_values(const Layout& layout, const nlohmann::json& units) {
  struct Truth {
    std::int64_t unit = 0;
    double roa = 0.0, depth_mm = 0.0, fibres = 0.0, cv = 0.0;
  };
  std::map<std::size_t, Truth> matched; // by inverted unit
  const auto emg = layout[Output::emg];
  const auto decomposition = layout.out() / "inversion/decomposition.h5";
  if (fs::exists(emg) && fs::exists(decomposition) && H5Reader(emg).contains("truth/units")) {
    const auto fitted = inversion::read_spike_trains(decomposition);
    const auto truth = inversion::read_spike_trains(emg);
    if (fitted.unit_id.size() == units.size()) {
      const H5Reader h5(emg);
      const Eigen::MatrixXd depth = h5.read_double("truth/units/depth_m");
      const Eigen::MatrixXd fibres = h5.read_double("truth/units/n_fibres");
      const Eigen::MatrixXd cv = h5.read_double("truth/units/cv_m_per_s");
      for (const auto& m : inversion::score(fitted, truth, inversion::ScoreParams{}).matches)
        matched[static_cast<std::size_t>(m.decomposed)] = {
            truth.unit_id[static_cast<std::size_t>(m.truth)], m.agreement.roa,
            1e3 * depth(m.truth, 0), fibres(m.truth, 0), cv(m.truth, 0)};
    }
  }
  nlohmann::json values = nlohmann::json::array();
  for (std::size_t u = 0; u < units.size(); ++u) {
    const auto& p = units.at(u);
    const auto t = matched.find(u);
    const auto add = [&](const std::string& property, double fit, double sd, double true_value) {
      nlohmann::json v = {{"property", property},
                          {"unit", u},
                          {"fitted", round_sig(fit)},
                          {"lo", round_sig(fit - sd)},
                          {"hi", round_sig(fit + sd)}};
      if (t != matched.end()) {
        v["true"] = round_sig(true_value);
        v["true_unit"] = t->second.unit;
        v["roa"] = round_sig(t->second.roa);
      }
      values.push_back(std::move(v));
    };
    const Truth truth = t != matched.end() ? t->second : Truth{};
    add("depth [mm]", p.value("depth_mm", 0.0), 0.0, truth.depth_mm);
    add("end-plate shift [mm]", p.value("end_plate_shift_mm", 0.0),
        p.value("end_plate_shift_sd_mm", 0.0), 0.0);
    add("fibres", p.value("n_fibres", 0.0), p.value("n_fibres_sd", 0.0), truth.fibres);
    add("CV [m/s]", p.value("cv_m_per_s", 0.0), p.value("cv_sd_m_per_s", 0.0), truth.cv);
  }
  return values;
}

/// A rule from "lo" to "hi" at `x`: the fit's spread.
nlohmann::json error_bar_layer(const nlohmann::json& x, const std::string& colour) {
  return {
      {"mark", {{"type", "rule"}, {"color", colour}}},
      {"encoding",
       {{"x", x}, {"y", {{"field", "lo"}, {"type", "quantitative"}}}, {"y2", {{"field", "hi"}}}}}};
}

/// Per unit: the fitted value with its spread as an error bar, the true value (open diamond) of
/// the matched units; one row per property.
nlohmann::json per_unit_chart(const nlohmann::json& values) {
  const nlohmann::json x = {{"field", "unit"}, {"type", "ordinal"}, {"title", "inverted unit"}};
  const nlohmann::json y = {{"field", "fitted"},
                            {"type", "quantitative"},
                            {"title", nullptr},
                            {"scale", {{"zero", false}}}};
  return {
      {"data", {{"values", values}}},
      {"facet",
       {{"row",
         {{"field", "property"},
          {"type", "nominal"},
          {"title", nullptr},
          {"sort", {"depth [mm]", "end-plate shift [mm]", "fibres", "CV [m/s]"}}}}}},
      {"resolve", {{"scale", {{"y", "independent"}}}}},
      {"spec",
       {{"width", 900},
        {"height", 150},
        {"layer",
         {error_bar_layer(x, "#555"),
          {{"mark", {{"type", "point"}, {"filled", true}, {"size", 50}, {"color", "#1f77b4"}}},
           {"encoding",
            {{"x", x},
             {"y", y},
             {"tooltip",
              {{{"field", "unit"}},
               {{"field", "fitted"}},
               {{"field", "lo"}},
               {{"field", "hi"}}}}}}},
          {{"transform", {{{"filter", "isValid(datum.true)"}}}},
           {"mark", {{"type", "point"}, {"shape", "diamond"}, {"size", 70}, {"color", "#d62728"}}},
           {"encoding",
            {{"x", x},
             {"y", {{"field", "true"}, {"type", "quantitative"}}},
             {"tooltip",
              {{{"field", "true_unit"}}, {{"field", "true"}}, {{"field", "roa"}}}}}}}}}}}};
}

/// Fitted against true property of the matched units, coloured by RoA, the line fitted = true.
nlohmann::json fitted_vs_true_chart(const nlohmann::json& values) {
  const nlohmann::json t = {
      {"field", "true"}, {"type", "quantitative"}, {"title", "true"}, {"scale", {{"zero", false}}}};
  const nlohmann::json f = {{"field", "fitted"},
                            {"type", "quantitative"},
                            {"title", "fitted"},
                            {"scale", {{"zero", false}}}};
  return {{"data", {{"values", values}}},
          {"transform", {{{"filter", "isValid(datum.true)"}}}},
          {"facet", {{"field", "property"}, {"type", "nominal"}, {"title", nullptr}}},
          {"columns", 4},
          {"resolve", {{"scale", {{"x", "independent"}, {"y", "independent"}}}}},
          {"spec",
           {{"width", 200},
            {"height", 200},
            {"layer",
             {error_bar_layer(t, "#999"),
              {{"mark", {{"type", "point"}, {"filled", true}}},
               {"encoding",
                {{"x", t},
                 {"y", f},
                 {"color",
                  {{"field", "roa"},
                   {"type", "quantitative"},
                   {"title", "RoA"},
                   {"scale", {{"domain", {0, 1}}, {"scheme", "redyellowgreen"}}}}},
                 {"tooltip", {{{"field", "unit"}}, {{"field", "true_unit"}}}}}}},
              {{"transform",
                {{{"aggregate",
                   {{{"op", "min"}, {"field", "fitted"}, {"as", "a"}},
                    {{"op", "max"}, {"field", "fitted"}, {"as", "b"}},
                    {{"op", "min"}, {"field", "true"}, {"as", "c"}},
                    {{"op", "max"}, {"field", "true"}, {"as", "d"}}}}},
                 {{"calculate", "[min(datum.a, datum.c), max(datum.b, datum.d)]"}, {"as", "v"}},
                 {{"flatten", {"v"}}}}},
               {"mark", {{"type", "line"}, {"color", "#444"}, {"strokeDash", {4, 4}}}},
               {"encoding",
                {{"x", {{"field", "v"}, {"type", "quantitative"}}},
                 {"y", {{"field", "v"}, {"type", "quantitative"}}}}}}}}}}};
}

} // namespace

Section inversion_section(const Layout& layout) {
  Section s{"inversion", "Model-informed inversion", "", {}};
  const auto path = layout.out() / "inversion/properties.json";
  const auto j = nlohmann::json::parse(read_text_file(path));
  const auto& units = j.at("units");
  std::vector<std::vector<std::string>> rows = {{"unit", "depth [mm]", "fibres", "sd", "CV [m/s]",
                                                 "sd", "end-plate shift [mm]", "sd", "residual"}};
  int u = 0;
  for (const auto& p : units)
    rows.push_back(
        {std::to_string(u++), fmt(p.value("depth_mm", 0.0)), fmt(p.value("n_fibres", 0.0)),
         fmt(p.value("n_fibres_sd", 0.0)), fmt(p.value("cv_m_per_s", 0.0)),
         fmt(p.value("cv_sd_m_per_s", 0.0)), fmt(p.value("end_plate_shift_mm", 0.0)),
         fmt(p.value("end_plate_shift_sd_mm", 0.0)), fmt(p.value("relative_residual", 0.0))});
  s.add_text("Fitted properties of " + std::to_string(u) + " units of " + j.value("muscle", "?") +
             " from " + path.string() + ".");
  const auto values = inversion_values(layout, units);
  const bool any_truth = std::any_of(values.begin(), values.end(),
                                     [](const nlohmann::json& v) { return v.contains("true"); });
  if (!values.empty())
    s.add_chart(per_unit_chart(values),
                "Per inverted unit: the fitted property (blue) with the fit's spread as a bar "
                "(fit -+ the sd over its starts within 10 % of the best residual; none is "
                "reported for the depth)" +
                    std::string(any_truth
                                    ? ", and the true value (red diamond) of the true unit it "
                                      "matches by its discharges (RoA, tolerance 0.5 ms; the "
                                      "true end-plate shift is 0: the forward model puts each "
                                      "fibre's end-plate at its own position)."
                                    : "."));
  if (units.empty())
    s.add_text("The inversion accepted no unit.");
  else if (any_truth)
    s.add_chart(fitted_vs_true_chart(values),
                "Fitted against true property of each inverted unit matched to a true unit by "
                "its discharges, coloured by RoA; bars: the fit's spread; dashed: fitted = true.");
  else
    s.add_text("No ground truth in forward/emg.h5 to compare the fitted properties with.");
  s.add_table(rows);
  return s;
}

Section needle_section(const Layout& layout) {
  Section s{"needle", "Needle EMG", "", {}};
  // Position 0 in iemg/emg.h5, position k >= 1 in iemg/emg_position_k.h5.
  std::vector<fs::path> files = {layout.out() / "iemg/emg.h5"};
  while (fs::exists(layout.out() / ("iemg/emg_position_" + std::to_string(files.size()) + ".h5")))
    files.push_back(layout.out() / ("iemg/emg_position_" + std::to_string(files.size()) + ".h5"));
  nlohmann::json values = nlohmann::json::array();
  Eigen::MatrixXd first;
  double fs_Hz = 0.0;
  for (std::size_t position = 0; position < files.size(); ++position) {
    const H5Reader h5(files[position]);
    const Eigen::MatrixXd emg = h5.read_double("emg");
    fs_Hz = std::get<double>(h5.attributes("/").at("fs_Hz"));
    // With one position its first four channels, with several the largest of each.
    std::vector<Eigen::Index> channels;
    if (files.size() == 1) {
      for (Eigen::Index c = 0; c < std::min<Eigen::Index>(emg.rows(), 4); ++c)
        channels.push_back(c);
    } else {
      Eigen::Index c = 0;
      row_rms(emg).maxCoeff(&c);
      channels.push_back(c);
    }
    for (const auto c : channels)
      for (auto& v : envelope(emg.row(c).transpose(), fs_Hz, 1500, 1e6)) {
        v["channel"] = "position " + std::to_string(position) + ", channel " + std::to_string(c);
        v["rank"] = static_cast<Eigen::Index>(position) * emg.rows() + c;
        values.push_back(std::move(v));
      }
    if (position == 0) {
      first = emg;
      s.add_text(std::to_string(files.size()) + " needle position(s), " +
                 std::to_string(emg.rows()) + " channels at " + fmt(fs_Hz, 6) + " Hz, from " +
                 files[0].string() + (files.size() > 1 ? " and emg_position_<k>.h5." : "."));
    }
  }
  s.add_chart(envelope_chart(std::move(values), 90, "#633"),
              files.size() == 1 ? "Needle EMG (min/max envelope per time bin)."
                                : "Needle EMG at each position, its channel of largest RMS "
                                  "(min/max envelope per time bin).");
  s.add_chart(spectrum_chart(first, fs_Hz), "Power spectral density of the needle EMG of "
                                            "position 0, averaged over its channels.");
  const auto muaps = layout.out() / "iemg/muaps.h5";
  if (fs::exists(muaps))
    s.add_chart(needle_muaps_chart(H5Reader(muaps)),
                "MUAP templates at each needle position (muaps.h5 position_<k>/muaps_channels, "
                "after the differentiation): each unit on each channel, at full resolution; one "
                "row per position.");
  return s;
}

} // namespace myotwin::app::report
