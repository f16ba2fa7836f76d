// The shorter sections: mesh quality, electrodes, model-informed inversion, needle EMG.

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

/// An angle in (-180, 180] [deg], so that a grid around angle 0 stays in one piece.
double wrapped_angle_deg(double a) {
  return a > 180.0 ? a - 360.0 : a;
}

/// The MUAP of each unit on each channel at needle position 0, one panel per channel.
nlohmann::json needle_muaps_chart(const H5Reader& h5) {
  const std::string name = "position_0/muaps_channels";
  const auto dims = h5.shape(name);
  const auto v = h5.read_double_values(name);
  const MatrixXi64 ids = h5.read_int64("unit_id");
  const double fs_Hz = std::get<double>(h5.attributes("/").at("fs_Hz"));
  nlohmann::json values = nlohmann::json::array();
  for (std::size_t u = 0; u < dims.at(0); ++u)
    for (std::size_t c = 0; c < dims.at(1); ++c)
      for (std::size_t k = 0; k < dims.at(2); ++k)
        values.push_back({{"unit", ids(static_cast<Eigen::Index>(u), 0)},
                          {"channel", "channel " + std::to_string(c)},
                          {"t_ms", round_sig(1e3 * static_cast<double>(k) / fs_Hz)},
                          {"uV", round_sig(1e6 * v[(u * dims[1] + c) * dims[2] + k])}});
  return {{"data", {{"values", values}}},
          {"facet", {{"column", {{"field", "channel"}, {"type", "nominal"}, {"title", nullptr}}}}},
          {"spec",
           {{"width", 260},
            {"height", 180},
            {"mark", {{"type", "line"}, {"strokeWidth", 1}}},
            {"encoding",
             {{"x", {{"field", "t_ms"}, {"type", "quantitative"}, {"title", "ms from activation"}}},
              {"y", {{"field", "uV"}, {"type", "quantitative"}, {"title", "uV"}}},
              {"color", {{"field", "unit"}, {"type", "nominal"}}}}}}}};
}

} // namespace

Section mesh_section(const Layout& layout) {
  Section s{"mesh", "Mesh", "", {}};
  const auto j = nlohmann::json::parse(read_text_file(layout[Output::mesh_quality]));
  s.add_text(fmt(j.value("n_tets", 0.0), 7) + " tetrahedra, " + fmt(j.value("n_nodes", 0.0), 7) +
             " nodes; dihedral angles " + fmt(j.value("min_dihedral_deg", 0.0)) + " to " +
             fmt(j.value("max_dihedral_deg", 0.0)) +
             " deg (1st percentile of the per-tet minimum " +
             fmt(j.value("p01_min_dihedral_deg", 0.0)) + " deg); mean radius-edge ratio " +
             fmt(j.value("mean_radius_edge_ratio", 0.0)) + ". From " +
             layout[Output::mesh_quality].string() + ".");
  if (j.contains("dihedral_histogram_10deg_bins")) {
    nlohmann::json values = nlohmann::json::array();
    int bin = 0;
    for (const auto& n : j.at("dihedral_histogram_10deg_bins"))
      values.push_back({{"from_deg", 10 * bin}, {"to_deg", 10 * ++bin}, {"count", n}});
    s.add_chart(
        {{"data", {{"values", values}}},
         {"width", 600},
         {"height", 200},
         {"mark", "bar"},
         {"encoding",
          {{"x",
            {{"field", "from_deg"},
             {"type", "quantitative"},
             {"bin", {{"binned", true}, {"step", 10}}},
             {"title", "dihedral angle [deg]"}}},
           {"x2", {{"field", "to_deg"}}},
           {"y", {{"field", "count"}, {"type", "quantitative"}, {"title", "dihedral angles"}}}}}},
        "Histogram of all dihedral angles of the tetrahedra in 10 degree bins.");
  }
  if (j.contains("tissues")) {
    std::vector<std::vector<std::string>> rows = {{"tissue", "class", "tets", "mesh [cm^3]",
                                                   "voxels [cm^3]", "mesh / voxels",
                                                   "min dihedral [deg]"}};
    for (const auto& t : j.at("tissues"))
      rows.push_back({t.value("name", ""), t.value("class", ""), fmt(t.value("n_tets", 0.0), 7),
                      fmt(t.value("mesh_volume_cm3", 0.0), 4),
                      fmt(t.value("voxel_volume_cm3", 0.0), 4),
                      fmt(t.value("volume_ratio", 0.0), 4), fmt(t.value("min_dihedral_deg", 0.0))});
    s.add_table(rows);
  }
  return s;
}

Section electrodes_section(const Layout& layout) {
  Section s{"electrodes", "Electrodes", "", {}};
  const auto j = nlohmann::json::parse(read_text_file(layout[Output::electrodes_json]));
  nlohmann::json values = nlohmann::json::array();
  for (const auto& e : j.at("electrodes"))
    values.push_back({{"name", e.value("name", "")},
                      {"group", e.value("group", "")},
                      {"axial_mm", round_sig(1e3 * e.value("axial_m", 0.0))},
                      {"angle_deg", round_sig(wrapped_angle_deg(e.value("angle_deg", 0.0)))}});
  s.add_text(std::to_string(values.size()) + " electrodes, reference " +
             j.value("reference", nlohmann::json("?")).dump() + ", from " +
             layout[Output::electrodes_json].string() + ".");
  s.add_chart(
      {{"data", {{"values", values}}},
       {"width", 700},
       {"height", 300},
       {"mark", {{"type", "point"}, {"filled", true}}},
       {"encoding",
        {{"x",
          {{"field", "angle_deg"},
           {"type", "quantitative"},
           {"title", "angle around the limb axis [deg]"},
           {"scale", {{"domain", {-180, 180}}}}}},
         {"y",
          {{"field", "axial_mm"}, {"type", "quantitative"}, {"title", "along the limb axis [mm]"}}},
         {"color", {{"field", "group"}, {"type", "nominal"}}},
         {"tooltip", {{{"field", "name"}}}}}}},
      "Electrode centres on the unwrapped skin: angle around the limb axis (from its "
      "angle-zero direction, -180 to 180) and position along it.");
  return s;
}

/// The fitted units of inversion/ matched to the truth of forward/emg.h5 by their discharges
/// (inversion::score with the default tolerance): per match, fitted and true depth, fibres and
/// CV with the fit's spread. Empty without a truth.
nlohmann::json fitted_vs_true_values(const Layout& layout, const nlohmann::json& units) {
  nlohmann::json values = nlohmann::json::array();
  const auto emg = layout[Output::emg];
  const auto decomposition = layout.out() / "inversion/decomposition.h5";
  if (!fs::exists(emg) || !fs::exists(decomposition) || !H5Reader(emg).contains("truth/units"))
    return values;
  const auto fitted = inversion::read_spike_trains(decomposition);
  const auto truth = inversion::read_spike_trains(emg);
  if (fitted.unit_id.size() != units.size())
    return values;
  const auto result = inversion::score(fitted, truth, inversion::ScoreParams{});
  const H5Reader h5(emg);
  const Eigen::MatrixXd depth = h5.read_double("truth/units/depth_m");
  const Eigen::MatrixXd fibres = h5.read_double("truth/units/n_fibres");
  const Eigen::MatrixXd cv = h5.read_double("truth/units/cv_m_per_s");
  for (const auto& m : result.matches) {
    const auto& p = units.at(static_cast<std::size_t>(m.decomposed));
    const Eigen::Index t = m.truth;
    const auto add = [&](const std::string& property, double fit, double sd, double true_value) {
      values.push_back({{"property", property},
                        {"unit", m.decomposed},
                        {"true_unit", truth.unit_id[static_cast<std::size_t>(t)]},
                        {"roa", round_sig(m.agreement.roa)},
                        {"fitted", round_sig(fit)},
                        {"lo", round_sig(fit - sd)},
                        {"hi", round_sig(fit + sd)},
                        {"true", round_sig(true_value)}});
    };
    add("depth [mm]", p.value("depth_mm", 0.0), 0.0, 1e3 * depth(t, 0));
    add("fibres", p.value("n_fibres", 0.0), p.value("n_fibres_sd", 0.0), fibres(t, 0));
    add("CV [m/s]", p.value("cv_m_per_s", 0.0), p.value("cv_sd_m_per_s", 0.0), cv(t, 0));
  }
  return values;
}

Section inversion_section(const Layout& layout) {
  Section s{"inversion", "Model-informed inversion", "", {}};
  const auto path = layout.out() / "inversion/properties.json";
  const auto j = nlohmann::json::parse(read_text_file(path));
  const auto& units = j.at("units");
  std::vector<std::vector<std::string>> rows = {
      {"unit", "depth [mm]", "fibres", "sd", "CV [m/s]", "sd", "end-plate shift [mm]", "residual"}};
  int u = 0;
  for (const auto& p : units)
    rows.push_back({std::to_string(u++), fmt(p.value("depth_mm", 0.0)),
                    fmt(p.value("n_fibres", 0.0)), fmt(p.value("n_fibres_sd", 0.0)),
                    fmt(p.value("cv_m_per_s", 0.0)), fmt(p.value("cv_sd_m_per_s", 0.0)),
                    fmt(p.value("end_plate_shift_mm", 0.0)),
                    fmt(p.value("relative_residual", 0.0))});
  s.add_text("Fitted properties of " + std::to_string(u) + " units of " + j.value("muscle", "?") +
             " from " + path.string() + ".");
  const auto values = fitted_vs_true_values(layout, units);
  if (!values.empty()) {
    const nlohmann::json t = {{"field", "true"},
                              {"type", "quantitative"},
                              {"title", "true"},
                              {"scale", {{"zero", false}}}};
    const nlohmann::json f = {{"field", "fitted"},
                              {"type", "quantitative"},
                              {"title", "fitted"},
                              {"scale", {{"zero", false}}}};
    s.add_chart({{"data", {{"values", values}}},
                 {"facet", {{"field", "property"}, {"type", "nominal"}, {"title", nullptr}}},
                 {"columns", 3},
                 {"resolve", {{"scale", {{"x", "independent"}, {"y", "independent"}}}}},
                 {"spec",
                  {{"width", 260},
                   {"height", 240},
                   {"layer",
                    {{{"mark", {{"type", "rule"}, {"color", "#999"}}},
                      {"encoding",
                       {{"x", t},
                        {"y", {{"field", "lo"}, {"type", "quantitative"}}},
                        {"y2", {{"field", "hi"}}}}}},
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
                          {{{"op", "min"}, {"field", "true"}, {"as", "a"}},
                           {{"op", "max"}, {"field", "true"}, {"as", "b"}}}}},
                        {{
                             "fold",
                             {"a", "b"},
                         },
                         {"as", {"k", "v"}}}}},
                      {"mark", {{"type", "line"}, {"color", "#444"}, {"strokeDash", {4, 4}}}},
                      {"encoding",
                       {{"x", {{"field", "v"}, {"type", "quantitative"}}},
                        {"y", {{"field", "v"}, {"type", "quantitative"}}}}}}}}}}},
                "Fitted against true property of each inverted unit matched to a true unit by its "
                "discharges (RoA, tolerance 0.5 ms); bars: the fit's spread (sd over its starts "
                "within 10 % "
                "of the best residual); dashed: fitted = true.");
  } else {
    s.add_text("No ground truth in forward/emg.h5 to compare the fitted properties with.");
  }
  s.add_table(rows);
  return s;
}

Section needle_section(const Layout& layout) {
  Section s{"needle", "Needle EMG", "", {}};
  const auto path = layout.out() / "iemg/emg.h5";
  const H5Reader h5(path);
  const Eigen::MatrixXd emg = h5.read_double("emg");
  const double fs_Hz = std::get<double>(h5.attributes("/").at("fs_Hz"));
  nlohmann::json values = nlohmann::json::array();
  for (Eigen::Index c = 0; c < std::min<Eigen::Index>(emg.rows(), 4); ++c)
    for (auto& v : envelope(emg.row(c).transpose(), fs_Hz, 1500, 1e6)) {
      v["channel"] = "channel " + std::to_string(c);
      v["rank"] = c;
      values.push_back(std::move(v));
    }
  s.add_text(std::to_string(emg.rows()) + " channels at " + fmt(fs_Hz, 6) + " Hz from " +
             path.string() + ".");
  s.add_chart(envelope_chart(std::move(values), 90, "#633"),
              "Needle EMG of position 0 (min/max envelope per time bin).");
  s.add_chart(spectrum_chart(emg, fs_Hz), "Power spectral density of the needle EMG of position 0, "
                                          "averaged over its channels.");
  const auto muaps = layout.out() / "iemg/muaps.h5";
  if (fs::exists(muaps))
    s.add_chart(needle_muaps_chart(H5Reader(muaps)),
                "MUAP templates of position 0 (muaps.h5 position_0/muaps_channels, after the "
                "differentiation), each unit on each channel, at full resolution.");
  return s;
}

} // namespace myotwin::app::report
