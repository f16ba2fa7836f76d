// The Mesh and Electrodes sections: the label volume's cross-sections with the cut tets' edges
// over them, the mesh quality; the electrodes on the unwrapped skin over the projections of the
// modelled muscles, and the lead-field sensitivity of one electrode over a cross-section.

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/forward/conductor/lead_field_cache.hpp"
#include "myotwin/forward/conductor/point_locator.hpp"
#include "sections.hpp"
#include "slices.hpp"

namespace fs = std::filesystem;

namespace myotwin::app::report {

namespace {

constexpr double pi = 3.141592653589793;

/// An angle in (-180, 180] [deg], so that a grid around angle 0 stays in one piece.
double wrapped_angle_deg(double a) {
  a = std::fmod(a, 360.0);
  if (a > 180.0)
    return a - 360.0;
  return a <= -180.0 ? a + 360.0 : a;
}

Eigen::Vector3d vec3(const nlohmann::json& j) {
  return {j.at(0).get<double>(), j.at(1).get<double>(), j.at(2).get<double>()};
}

/// Without the subject: the mesh cut across world z at 20, 40, 60, 80 % of its extent and along
/// the middle x, edges only, axes in mm from the corner of its bounding box.
void add_mesh_only_cuts(Section& s, const meshing::TetMesh& mesh) {
  const Eigen::Vector3d lo = mesh.nodes_m.colwise().minCoeff().transpose();
  const Eigen::Vector3d hi = mesh.nodes_m.colwise().maxCoeff().transpose();
  struct Cut {
    int axis;
    double fraction;
  };
  for (const auto& [axis, fraction] :
       {Cut{2, 0.2}, Cut{2, 0.4}, Cut{2, 0.6}, Cut{2, 0.8}, Cut{0, 0.5}}) {
    ChartPlane p;
    const int au = axis == 2 ? 0 : 1, aw = axis == 2 ? 1 : 2;
    p.normal = Eigen::Vector3d::Unit(axis);
    p.e_u = Eigen::Vector3d::Unit(au);
    p.e_w = Eigen::Vector3d::Unit(aw);
    p.origin_m = lo;
    p.origin_m[axis] = lo[axis] + fraction * (hi[axis] - lo[axis]);
    std::size_t n = 0;
    auto layer = tet_edges_layer(mesh, p, n);
    const double wu = 1e3 * (hi[au] - lo[au]), ww = 1e3 * (hi[aw] - lo[aw]);
    const double px_per_mm = std::min(360.0 / wu, (axis == 0 ? 720.0 : 360.0) / ww);
    const std::string title = std::string(axis == 2 ? "z" : "x") + " = " +
                              fmt(std::round(1e4 * p.origin_m[axis]) / 10.0, 4) + " mm";
    layer["encoding"]["x"]["title"] = std::string(axis == 2 ? "x" : "y") + " [mm]";
    layer["encoding"]["y"]["title"] = std::string(axis == 2 ? "y" : "z") + " [mm]";
    s.add_chart({{"title", title},
                 {"usermeta", {{"plane", to_json(p)}}},
                 {"width", wu * px_per_mm},
                 {"height", ww * px_per_mm},
                 {"layer", {layer}}},
                "The tets cut by the plane " + title + ": " + std::to_string(n) +
                    " edges of the cut polygons (give --subject for the tissue underneath).");
  }
}

void add_mesh_cuts(Section& s, const anatomy::Subject& subject, const meshing::TetMesh& mesh) {
  for (const auto& plane : report_planes(subject.volume)) {
    auto chart = cross_section_chart(subject, plane);
    std::size_t n = 0;
    const auto cut = chart_plane(subject.volume, plane);
    chart["layer"].push_back(tet_edges_layer(mesh, cut, n));
    chart["usermeta"] = {{"plane", to_json(cut)}};
    s.add_chart(std::move(chart),
                "The tets of mesh.vtu cut by voxel plane " +
                    std::string(plane.axis == 2 ? "k = " : "i = ") + std::to_string(plane.at) +
                    ": " + std::to_string(n) +
                    " edges of the cut polygons (black) over the tissue labels of the same plane "
                    "(as in the Subject section).");
  }
}

/// The limb axis of electrodes.json and the centre the electrodes' angles are measured from:
/// at axial position t, the mean of the mesh nodes within 2 mm of t (widened until 20 nodes),
/// moved onto t, as the electrode placement does (forward/electrodes).
class LimbFrame {
public:
  LimbFrame(const nlohmann::json& axis, const meshing::TetMesh& mesh)
      : origin_(vec3(axis.at("origin_m"))), axis_(vec3(axis.at("direction"))),
        e1_(vec3(axis.at("angle_zero"))), e2_(vec3(axis.at("angle_90_deg"))), mesh_(mesh) {
    t_.resize(static_cast<std::size_t>(mesh.n_nodes()));
    for (Eigen::Index i = 0; i < mesh.n_nodes(); ++i)
      t_[static_cast<std::size_t>(i)] = {(mesh.nodes_m.row(i).transpose() - origin_).dot(axis_), i};
    std::sort(t_.begin(), t_.end());
  }
  [[nodiscard]] double axial(const Eigen::Vector3d& p) const { return (p - origin_).dot(axis_); }
  /// The centre at axial position t (cached per 0.5 mm).
  const Eigen::Vector3d& centre(double t) {
    const auto key = static_cast<std::int64_t>(std::floor(t / 0.5e-3));
    if (const auto it = cache_.find(key); it != cache_.end())
      return it->second;
    const double tc = (static_cast<double>(key) + 0.5) * 0.5e-3;
    Eigen::Vector3d c = origin_ + tc * axis_;
    for (double w = 2e-3; w < 1.0; w *= 2.0) {
      const auto lo = std::lower_bound(t_.begin(), t_.end(), std::pair{tc - w, Eigen::Index{-1}});
      const auto hi = std::upper_bound(t_.begin(), t_.end(),
                                       std::pair{tc + w, std::numeric_limits<Eigen::Index>::max()});
      if (hi - lo >= 20) {
        Eigen::Vector3d sum = Eigen::Vector3d::Zero();
        for (auto it = lo; it != hi; ++it)
          sum += mesh_.nodes_m.row(it->second).transpose();
        c = sum / static_cast<double>(hi - lo);
        c += (tc - axial(c)) * axis_;
        break;
      }
    }
    return cache_.emplace(key, c).first->second;
  }
  /// The angle of p around the axis [deg, -180 to 180], from angle_zero towards angle_90_deg.
  double angle_deg(const Eigen::Vector3d& p) {
    const Eigen::Vector3d r = p - centre(axial(p));
    return std::atan2(r.dot(e2_), r.dot(e1_)) * 180.0 / pi;
  }
  [[nodiscard]] const Eigen::Vector3d& axis() const { return axis_; }
  [[nodiscard]] const Eigen::Vector3d& e1() const { return e1_; }
  [[nodiscard]] const Eigen::Vector3d& e2() const { return e2_; }

private:
  Eigen::Vector3d origin_, axis_, e1_, e2_;
  const meshing::TetMesh& mesh_;
  std::vector<std::pair<double, Eigen::Index>> t_;
  std::map<std::int64_t, Eigen::Vector3d> cache_;
};

/// Per 2 mm along the limb axis, the angular extent of each muscle's model fibre points on the
/// unwrapped skin: rects {muscle, a0, a1 [deg], t0, t1 [mm]}. The extent is the circle minus the
/// largest gap between the points' angles; one crossing +-180 is split in two rects.
nlohmann::json muscle_outlines(const H5Reader& h5, LimbFrame& frame) {
  nlohmann::json out = nlohmann::json::array();
  constexpr double bin_m = 2e-3;
  for (const auto& m : h5.list("muscles")) {
    const Eigen::MatrixXd points = h5.read_double("muscles/" + m + "/fibres/points_m");
    std::map<std::int64_t, std::vector<double>> angles;
    for (Eigen::Index p = 0; p < points.rows(); ++p) {
      const Eigen::Vector3d x = points.row(p).transpose();
      angles[static_cast<std::int64_t>(std::floor(frame.axial(x) / bin_m))].push_back(
          frame.angle_deg(x));
    }
    for (auto& [bin, a] : angles) {
      std::sort(a.begin(), a.end());
      double gap = a.front() + 360.0 - a.back(); // across +-180
      double start = a.front(), end = a.back();
      for (std::size_t k = 1; k < a.size(); ++k)
        if (a[k] - a[k - 1] > gap) {
          gap = a[k] - a[k - 1];
          start = a[k];
          end = a[k - 1] + 360.0;
        }
      const double t0 = 1e3 * bin_m * static_cast<double>(bin), t1 = t0 + 1e3 * bin_m;
      const auto add = [&](double a0, double a1) {
        out.push_back({{"muscle", m},
                       {"a0", round_sig(a0)},
                       {"a1", round_sig(a1)},
                       {"t0", round_sig(t0)},
                       {"t1", round_sig(t1)}});
      };
      if (end <= 180.0) {
        add(start, end);
      } else {
        add(start, 180.0);
        add(-180.0, end - 360.0);
      }
    }
  }
  return out;
}

/// Gradient of the linear field with nodal `values` in tet t [per m].
Eigen::Vector3d tet_gradient(const meshing::TetMesh& mesh, Eigen::Index t,
                             const Eigen::Ref<const Eigen::VectorXd>& values) {
  Eigen::Matrix3d d;
  Eigen::Vector3d dv;
  const Eigen::Index n0 = mesh.tets(t, 0);
  for (int k = 1; k < 4; ++k) {
    const Eigen::Index nk = mesh.tets(t, k);
    d.row(k - 1) = mesh.nodes_m.row(nk) - mesh.nodes_m.row(n0);
    dv[k - 1] = values[nk] - values[n0];
  }
  return d.partialPivLu().solve(dv);
}

/// The electrode of the first group nearest the group's centroid.
std::size_t middle_electrode(const nlohmann::json& electrodes) {
  const std::string group = electrodes.at(0).value("group", "");
  Eigen::Vector3d mean = Eigen::Vector3d::Zero();
  int n = 0;
  for (const auto& e : electrodes)
    if (e.value("group", "") == group) {
      mean += vec3(e.at("position_m"));
      ++n;
    }
  mean /= std::max(n, 1);
  std::size_t best = 0;
  double best_d = 1e300;
  for (std::size_t i = 0; i < electrodes.size(); ++i)
    if (electrodes[i].value("group", "") == group) {
      const double d = (vec3(electrodes[i].at("position_m")) - mean).norm();
      if (d < best_d) {
        best_d = d;
        best = i;
      }
    }
  return best;
}

/// The lead-field sensitivity |grad L| [V/(A m)] of electrode `e` on a 100 x 100 grid over the
/// cross-section through it perpendicular to the limb axis (mm from the axis, along angle_zero
/// and angle_90_deg): L is the potential of the electrode's lead field (leadfields.h5
/// lead_fields, P1 on the mesh), so |grad L| is the electrode's signal per unit current dipole
/// at that point [V per A m]. Points outside the mesh are left out.
nlohmann::json sensitivity_chart(const meshing::TetMesh& mesh, const Eigen::VectorXd& lead,
                                 LimbFrame& frame, const nlohmann::json& electrode) {
  const Eigen::Vector3d pe = vec3(electrode.at("position_m"));
  const double te = frame.axial(pe);
  const Eigen::Vector3d c = frame.centre(te) + (te - frame.axial(frame.centre(te))) * frame.axis();
  double radius = 0.0;
  for (Eigen::Index i = 0; i < mesh.n_nodes(); ++i) {
    const Eigen::Vector3d r = mesh.nodes_m.row(i).transpose() - c;
    if (std::abs(r.dot(frame.axis())) < 2e-3)
      radius = std::max(radius, std::hypot(r.dot(frame.e1()), r.dot(frame.e2())));
  }
  constexpr int n = 100;
  const double cell = 2.0 * radius / n;
  Eigen::Matrix<double, Eigen::Dynamic, 3> points(n * n, 3);
  for (int w = 0; w < n; ++w)
    for (int u = 0; u < n; ++u)
      points.row(w * n + u) = (c + (-radius + (u + 0.5) * cell) * frame.e1() +
                               (-radius + (w + 0.5) * cell) * frame.e2())
                                  .transpose();
  const auto located = forward::PointLocator(mesh).locate(points);
  nlohmann::json rows = nlohmann::json::array();
  for (int w = 0; w < n; ++w) {
    nlohmann::json v = nlohmann::json::array();
    for (int u = 0; u < n; ++u) {
      const auto t = located.tet[static_cast<std::size_t>(w * n + u)];
      v.push_back(t < 0 ? nlohmann::json()
                        : nlohmann::json(round_sig(tet_gradient(mesh, t, lead).norm())));
    }
    rows.push_back({{"w", round_sig(1e3 * (-radius + w * cell))}, {"v", v}});
  }
  const double cell_mm = 1e3 * cell, r_mm = 1e3 * radius;
  const Eigen::Vector3d re = pe - c;
  const nlohmann::json x = {
      {"field", "u"}, {"type", "quantitative"}, {"title", "along angle zero [mm]"}};
  const nlohmann::json y = {
      {"field", "w"}, {"type", "quantitative"}, {"title", "along angle 90 [mm]"}};
  return {{"title", electrode.value("name", "") + ": |grad L| at " + fmt(1e3 * te, 4) +
                        " mm along the limb axis"},
          {"usermeta",
           {{"electrode", electrode.value("index", 0)},
            {"centre_m", {c.x(), c.y(), c.z()}},
            {"cell_mm", cell_mm},
            {"first_cell_centre_mm", -r_mm + 0.5 * cell_mm}}},
          {"width", 380},
          {"height", 380},
          {"layer",
           {{{"data", {{"values", rows}}},
             {"transform",
              {{{"flatten", {"v"}}},
               {{"window", {{{"op", "row_number"}, {"as", "n"}}}}, {"groupby", {"w"}}},
               {{"filter", "isValid(datum.v)"}},
               {{"calculate",
                 "(datum.n - 1) * " + std::to_string(cell_mm) + " - " + std::to_string(r_mm)},
                {"as", "u"}},
               {{"calculate", "datum.u + " + std::to_string(cell_mm)}, {"as", "u2"}},
               {{"calculate", "datum.w + " + std::to_string(cell_mm)}, {"as", "w2"}}}},
             {"mark", "rect"},
             {"encoding",
              {{"x", x},
               {"x2", {{"field", "u2"}}},
               {"y", y},
               {"y2", {{"field", "w2"}}},
               {"color",
                {{"field", "v"},
                 {"type", "quantitative"},
                 {"title", "|grad L| [V/(A m)]"},
                 {"scale", {{"type", "log"}, {"scheme", "viridis"}}}}}}}},
            {{"data",
              {{"values",
                {{{"u", round_sig(1e3 * re.dot(frame.e1()))},
                  {"w", round_sig(1e3 * re.dot(frame.e2()))},
                  {"name", electrode.value("name", "")}}}}}},
             {"mark",
              {{"type", "point"},
               {"shape", "triangle-down"},
               {"size", 120},
               {"color", "red"},
               {"filled", true}}},
             {"encoding", {{"x", x}, {"y", y}, {"tooltip", {{{"field", "name"}}}}}}}}}};
}

} // namespace

Section mesh_section(const Layout& layout, const anatomy::Subject* subject,
                     const meshing::TetMesh* mesh) {
  Section s{"mesh", "Mesh", "", {}};
  const auto j = nlohmann::json::parse(read_text_file(layout[Output::mesh_quality]));
  s.add_text(fmt(j.value("n_tets", 0.0), 7) + " tetrahedra, " + fmt(j.value("n_nodes", 0.0), 7) +
             " nodes; dihedral angles " + fmt(j.value("min_dihedral_deg", 0.0)) + " to " +
             fmt(j.value("max_dihedral_deg", 0.0)) +
             " deg (1st percentile of the per-tet minimum " +
             fmt(j.value("p01_min_dihedral_deg", 0.0)) + " deg); mean radius-edge ratio " +
             fmt(j.value("mean_radius_edge_ratio", 0.0)) + ". From " +
             layout[Output::mesh_quality].string() + ".");
  if (mesh != nullptr) {
    if (subject != nullptr)
      add_mesh_cuts(s, *subject, *mesh);
    else
      add_mesh_only_cuts(s, *mesh);
  }
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

Section electrodes_section(const Layout& layout, const meshing::TetMesh* mesh) {
  Section s{"electrodes", "Electrodes", "", {}};
  const auto j = nlohmann::json::parse(read_text_file(layout[Output::electrodes_json]));
  const auto& electrodes = j.at("electrodes");
  nlohmann::json values = nlohmann::json::array();
  for (const auto& e : electrodes)
    values.push_back({{"name", e.value("name", "")},
                      {"group", e.value("group", "")},
                      {"axial_mm", round_sig(1e3 * e.value("axial_m", 0.0))},
                      {"angle_deg", round_sig(wrapped_angle_deg(e.value("angle_deg", 0.0)))}});
  s.add_text(std::to_string(values.size()) + " electrodes, reference " +
             j.value("reference", nlohmann::json("?")).dump() + ", from " +
             layout[Output::electrodes_json].string() + ".");
  const nlohmann::json x = {{"field", "angle_deg"},
                            {"type", "quantitative"},
                            {"title", "angle around the limb axis [deg]"},
                            {"scale", {{"domain", {-180, 180}}}}};
  const nlohmann::json y = {
      {"field", "axial_mm"}, {"type", "quantitative"}, {"title", "along the limb axis [mm]"}};
  nlohmann::json layers = nlohmann::json::array();
  std::optional<LimbFrame> frame;
  if (mesh != nullptr && j.contains("limb_axis"))
    frame.emplace(j.at("limb_axis"), *mesh);
  std::string caption = "Electrode centres on the unwrapped skin: angle around the limb axis "
                        "(from its angle-zero direction, -180 to 180) and position along it.";
  if (frame && fs::exists(layout[Output::motor_units])) {
    layers.push_back(
        {{"data", {{"values", muscle_outlines(H5Reader(layout[Output::motor_units]), *frame)}}},
         {"mark", {{"type", "rect"}, {"opacity", 0.35}}},
         {"encoding",
          {{"x", {{"field", "a0"}, {"type", "quantitative"}, {"scale", {{"domain", {-180, 180}}}}}},
           {"x2", {{"field", "a1"}}},
           {"y", {{"field", "t0"}, {"type", "quantitative"}}},
           {"y2", {{"field", "t1"}}},
           {"color", {{"field", "muscle"}, {"type", "nominal"}, {"title", "muscle"}}}}}});
    caption += " Shaded: each modelled muscle projected onto the skin, per 2 mm along the axis "
               "the angular extent of its model fibre points (motor_units.h5 fibres/points_m) "
               "seen from the centre the electrodes' angles are measured from (the mean of the "
               "mesh nodes within 2 mm).";
  }
  layers.push_back({{"mark", {{"type", "point"}, {"filled", true}, {"size", 40}}},
                    {"encoding",
                     {{"x", x},
                      {"y", y},
                      {"shape", {{"field", "group"}, {"type", "nominal"}, {"title", "grid"}}},
                      {"color", {{"value", "#111"}}},
                      {"tooltip", {{{"field", "name"}}}}}}});
  s.add_chart({{"data", {{"values", values}}}, {"width", 700}, {"height", 400}, {"layer", layers}},
              caption);
  const auto lead_path = layout[Output::lead_fields];
  if (!frame || !fs::exists(lead_path) || electrodes.empty())
    return s;
  const auto cache =
      forward::read_lead_field_cache(lead_path, forward::read_cache_key(lead_path), "");
  if (!cache || cache->lead_fields_V_per_A.rows() != mesh->n_nodes() ||
      cache->lead_fields_V_per_A.cols() != static_cast<Eigen::Index>(electrodes.size())) {
    s.add_text(lead_path.string() + " holds no lead fields of this mesh and these electrodes.");
    return s;
  }
  const std::size_t e = middle_electrode(electrodes);
  s.add_chart(sensitivity_chart(*mesh, cache->lead_fields_V_per_A.col(static_cast<Eigen::Index>(e)),
                                *frame, electrodes.at(e)),
              "Lead-field sensitivity of electrode " + electrodes.at(e).value("name", "") +
                  " (red triangle; the electrode of the first grid nearest its centre) over the "
                  "cross-section through it perpendicular to the limb axis: the magnitude of the "
                  "gradient of its lead field L (leadfields.h5 lead_fields, referenced " +
                  cache->reference +
                  "), i.e. its signal per unit current dipole at each point [V/(A m)], log "
                  "colour scale, on a 100 x 100 grid; axes in mm from the limb's centre.");
  return s;
}

} // namespace myotwin::app::report
