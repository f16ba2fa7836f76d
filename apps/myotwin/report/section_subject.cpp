// The Subject section: the label volume's cross-sections coloured by tissue (with --subject), the
// muscles' table, territories and fibre lengths, from anatomy/anatomy.json and motor_units.h5.

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "data.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "sections.hpp"

namespace fs = std::filesystem;

namespace myotwin::app::report {

namespace {

/// The colour of each tissue, the same in every section: skin, fat, bone and tendon by class,
/// muscles from a palette of distinct colours in the table's order.
std::map<std::int32_t, std::string> tissue_colours(const anatomy::TissueTable& table) {
  static const char* const muscle_palette[] = {
      "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
      "#ff7f0e", "#393b79", "#637939", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354"};
  std::map<std::int32_t, std::string> out;
  std::size_t n_muscles = 0;
  for (const auto& t : table.tissues) {
    switch (t.tissue_class) {
    case anatomy::TissueClass::skin:
      out[t.label] = "#e3a88f";
      break;
    case anatomy::TissueClass::fat:
      out[t.label] = "#f6e3a4";
      break;
    case anatomy::TissueClass::bone:
      out[t.label] = "#c8c8c8";
      break;
    case anatomy::TissueClass::tendon:
      out[t.label] = "#6e6e6e";
      break;
    case anatomy::TissueClass::other:
      out[t.label] = "#b3b3e6";
      break;
    case anatomy::TissueClass::muscle:
      out[t.label] = muscle_palette[n_muscles++ % 16];
      break;
    }
  }
  return out;
}

/// One section through the label volume: along axis `axis` (0: sagittal i, 2: axial k) at index
/// `at`, every `step`-th voxel; rows of labels ("l") flattened by the spec, tissue names looked up.
nlohmann::json cross_section_chart(const anatomy::Subject& s, int axis, std::int64_t at,
                                   const std::string& title) {
  const auto& v = s.volume;
  // In-plane axes: axial (k fixed): u = i, w = j; sagittal (i fixed): u = j, w = k.
  const int au = axis == 2 ? 0 : 1, aw = axis == 2 ? 1 : 2;
  const std::int64_t nu = v.size[static_cast<std::size_t>(au)],
                     nw = v.size[static_cast<std::size_t>(aw)];
  const std::int64_t step = std::max<std::int64_t>(1, (std::max(nu, nw) + 119) / 120);
  const double du = 1e3 * v.spacing_m[au] * static_cast<double>(step);
  const double dw = 1e3 * v.spacing_m[aw] * static_cast<double>(step);
  nlohmann::json rows = nlohmann::json::array();
  std::set<std::int32_t> present;
  for (std::int64_t w = 0; w < nw; w += step) {
    nlohmann::json labels = nlohmann::json::array();
    for (std::int64_t u = 0; u < nu; u += step) {
      std::array<std::int64_t, 3> ijk{};
      ijk[static_cast<std::size_t>(axis)] = at;
      ijk[static_cast<std::size_t>(au)] = u;
      ijk[static_cast<std::size_t>(aw)] = w;
      labels.push_back(v.at(ijk[0], ijk[1], ijk[2]));
      present.insert(v.at(ijk[0], ijk[1], ijk[2]));
    }
    rows.push_back({{"w", round_sig(static_cast<double>(w / step) * dw)}, {"l", labels}});
  }
  // Legend: the tissues of this section, coloured as in every section.
  const auto colours = tissue_colours(s.tissues);
  nlohmann::json names = nlohmann::json::array(), domain = nlohmann::json::array(),
                 range = nlohmann::json::array();
  for (const auto& t : s.tissues.tissues) {
    names.push_back({{"l", t.label}, {"tissue", t.name}});
    if (present.count(t.label)) {
      domain.push_back(t.name);
      range.push_back(colours.at(t.label));
    }
  }
  const double width_mm = static_cast<double>((nu + step - 1) / step) * du;
  const double height_mm = static_cast<double>((nw + step - 1) / step) * dw;
  const double px_per_mm = std::min(360.0 / width_mm, 360.0 / height_mm);
  const char* axis_names[] = {"i", "j", "k"};
  return {{"title", title},
          {"data", {{"values", rows}}},
          {"transform",
           {{{"flatten", {"l"}}},
            {{"window", {{{"op", "row_number"}, {"as", "n"}}}}, {"groupby", {"w"}}},
            {{"filter", "datum.l > 0"}},
            {{"calculate", "(datum.n - 1) * " + std::to_string(du)}, {"as", "u"}},
            {{"calculate", "datum.u + " + std::to_string(du)}, {"as", "u2"}},
            {{"calculate", "datum.w + " + std::to_string(dw)}, {"as", "w2"}},
            {{"lookup", "l"},
             {"from", {{"data", {{"values", names}}}, {"key", "l"}, {"fields", {"tissue"}}}}}}},
          {"width", width_mm * px_per_mm},
          {"height", height_mm * px_per_mm},
          {"mark", "rect"},
          {"encoding",
           {{"x",
             {{"field", "u"},
              {"type", "quantitative"},
              {"title", std::string(axis_names[au]) + " axis [mm]"}}},
            {"x2", {{"field", "u2"}}},
            {"y",
             {{"field", "w"},
              {"type", "quantitative"},
              {"title", std::string(axis_names[aw]) + " axis [mm]"}}},
            {"y2", {{"field", "w2"}}},
            {"color",
             {{"field", "tissue"},
              {"type", "nominal"},
              {"scale", {{"domain", domain}, {"range", range}}}}}}}};
}

void add_cross_sections(Section& sec, const fs::path& subject_file) {
  const auto s = anatomy::load_subject(subject_file);
  const auto nk = s.volume.size[2];
  for (const double level : {0.2, 0.4, 0.6, 0.8}) {
    const auto k = static_cast<std::int64_t>(level * static_cast<double>(nk - 1));
    sec.add_chart(cross_section_chart(s, 2, k,
                                      "axial section k = " + std::to_string(k) + " (" +
                                          fmt(100 * level) + " % of the volume)"),
                  "Tissue labels of " + subject_file.string() +
                      " at voxel plane k = " + std::to_string(k) +
                      "; axes in mm from the volume's first voxel are the scale.");
  }
  const auto i = s.volume.size[0] / 2;
  sec.add_chart(cross_section_chart(s, 0, i, "sagittal section i = " + std::to_string(i)),
                "Tissue labels in the middle sagittal plane (voxel plane i = " + std::to_string(i) +
                    ").");
}

nlohmann::json territories_chart(const H5Reader& h5, const std::vector<std::string>& muscles) {
  nlohmann::json values = nlohmann::json::array();
  for (const auto& m : muscles) {
    const std::string g = "muscles/" + m + "/units/";
    const Eigen::MatrixXd c = h5.read_double(g + "territory_centre_2d_m");
    const Eigen::MatrixXd n = h5.read_double(g + "n_fibres");
    for (Eigen::Index u = 0; u < c.rows(); ++u)
      values.push_back({{"muscle", m},
                        {"unit", u},
                        {"e1_mm", round_sig(c(u, 0) * 1e3)},
                        {"e2_mm", round_sig(c(u, 1) * 1e3)},
                        {"n_fibres", round_sig(n(u, 0))}});
  }
  return {
      {"data", {{"values", values}}},
      {"facet", {{"column", {{"field", "muscle"}, {"type", "nominal"}}}}},
      {"resolve", {{"scale", {{"x", "independent"}, {"y", "independent"}}}}},
      {"spec",
       {{"width", 300},
        {"height", 300},
        {"mark", {{"type", "circle"}, {"opacity", 0.6}}},
        {"encoding",
         {{"x", {{"field", "e1_mm"}, {"type", "quantitative"}, {"title", "seed plane e1 [mm]"}}},
          {"y", {{"field", "e2_mm"}, {"type", "quantitative"}, {"title", "seed plane e2 [mm]"}}},
          {"size", {{"field", "n_fibres"}, {"type", "quantitative"}, {"title", "fibres"}}},
          {"color",
           {{"field", "unit"},
            {"type", "quantitative"},
            {"title", "unit (recruitment order)"},
            {"scale", {{"scheme", "turbo"}}}}}}}}}};
}

/// Per model fibre of each muscle: its length [mm] and the mean angle of its segments to the
/// muscle's principal axis [deg] (anatomy.json `axis`; the angle is left out without it).
nlohmann::json fibre_values(const H5Reader& h5, const std::vector<std::string>& muscles,
                            const std::map<std::string, Eigen::Vector3d>& axes) {
  nlohmann::json values = nlohmann::json::array();
  for (const auto& m : muscles) {
    const std::string g = "muscles/" + m + "/fibres/";
    const Eigen::MatrixXd len = h5.read_double(g + "length_m");
    const Eigen::MatrixXd points = h5.read_double(g + "points_m");
    const MatrixXi64 offsets = h5.read_int64(g + "offsets");
    const auto axis = axes.find(m);
    for (Eigen::Index f = 0; f < len.rows(); ++f) {
      nlohmann::json v = {{"muscle", m}, {"length_mm", round_sig(len(f, 0) * 1e3)}};
      double sum = 0.0;
      int n = 0;
      for (auto p = offsets(f, 0) + 1;
           axis != axes.end() && f + 1 < offsets.rows() && p < offsets(f + 1, 0); ++p) {
        const Eigen::Vector3d d = points.row(p) - points.row(p - 1);
        if (d.norm() > 0.0) {
          sum += std::acos(std::min(1.0, std::abs(d.normalized().dot(axis->second))));
          ++n;
        }
      }
      if (n > 0)
        v["angle_deg"] = round_sig(sum / n * 180.0 / 3.141592653589793);
      values.push_back(std::move(v));
    }
  }
  return values;
}

/// A histogram of `field` of `values`, coloured by muscle.
nlohmann::json histogram_chart(const nlohmann::json& values, const std::string& field,
                               const std::string& title) {
  return {{"data", {{"values", values}}},
          {"width", 500},
          {"height", 200},
          {"mark", "bar"},
          {"encoding",
           {{"x",
             {{"field", field},
              {"type", "quantitative"},
              {"bin", {{"maxbins", 40}}},
              {"title", title}}},
            {"y", {{"aggregate", "count"}, {"type", "quantitative"}, {"title", "fibres"}}},
            {"color", {{"field", "muscle"}, {"type", "nominal"}}}}}};
}

} // namespace

Section subject_section(const Layout& layout, const fs::path& subject) {
  Section s{"subject", "Subject", "", {}};
  if (!subject.empty())
    add_cross_sections(s, subject);
  else
    s.add_text("Cross-sections need the subject: myotwin report OUT --subject SUBJECT.json.");
  const auto anatomy_json = layout.out() / "anatomy/anatomy.json";
  std::map<std::string, Eigen::Vector3d> axes;
  if (fs::exists(anatomy_json)) {
    const auto j = nlohmann::json::parse(read_text_file(anatomy_json));
    for (const auto& m : j.at("muscles"))
      if (m.contains("axis") && m.at("axis").size() == 3)
        axes[m.value("name", "")] =
            Eigen::Vector3d(m.at("axis")[0], m.at("axis")[1], m.at("axis")[2]).normalized();
    std::vector<std::vector<std::string>> rows = {
        {"muscle", "volume [cm^3]", "length [mm]", "model fibres", "real fibres", "motor units",
         "mean fibre length [mm]", "mean angle to axis [deg]"}};
    for (const auto& m : j.at("muscles"))
      rows.push_back({m.value("name", ""), fmt(m.value("volume_cm3", 0.0)),
                      fmt(m.value("length_mm", 0.0)), fmt(m.value("n_fibres", 0.0)),
                      fmt(m.value("n_real_fibres", 0.0)), fmt(m.value("n_motor_units", 0.0)),
                      fmt(m.value("mean_fibre_length_mm", 0.0)),
                      fmt(m.value("mean_angle_to_axis_deg", 0.0))});
    s.add_table(rows);
  }
  const H5Reader h5(layout[Output::motor_units]);
  const auto muscles = h5.list("muscles");
  s.add_chart(territories_chart(h5, muscles),
              "Motor-unit territory centres of each modelled muscle in its seed plane "
              "(motor_units.h5), coloured by recruitment order, sized by fibre count.");
  const auto fibres = fibre_values(h5, muscles, axes);
  s.add_chart(histogram_chart(fibres, "length_mm", "model fibre length [mm]"),
              "Lengths of the model fibres of each muscle (motor_units.h5 fibres/length_m).");
  if (!axes.empty())
    s.add_chart(histogram_chart(fibres, "angle_deg",
                                "mean angle of the fibre's segments to the muscle axis [deg]"),
                "Angle of each model fibre to its muscle's principal axis (anatomy.json axis): the "
                "mean over the fibre's segments, as anatomy.json's mean_angle_to_axis_deg.");
  return s;
}

} // namespace myotwin::app::report
