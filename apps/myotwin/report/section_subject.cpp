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
#include "slices.hpp"

namespace fs = std::filesystem;

namespace myotwin::app::report {

namespace {

void add_cross_sections(Section& sec, const anatomy::Subject& s, const fs::path& subject_file) {
  for (const auto& plane : report_planes(s.volume))
    sec.add_chart(cross_section_chart(s, plane),
                  "Tissue labels of " + subject_file.string() + " in voxel plane " +
                      (plane.axis == 2 ? "k = " : "i = ") + std::to_string(plane.at) +
                      "; axes in mm from the corner of the volume's first voxel are the scale.");
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

Section subject_section(const Layout& layout, const fs::path& subject_file,
                        const anatomy::Subject* subject) {
  Section s{"subject", "Subject", "", {}};
  if (subject != nullptr)
    add_cross_sections(s, *subject, subject_file);
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
