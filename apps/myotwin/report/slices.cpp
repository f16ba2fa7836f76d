#include "slices.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <utility>

#include "data.hpp"

namespace myotwin::app::report {

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

std::vector<VolumePlane> report_planes(const anatomy::LabelVolume& volume) {
  std::vector<VolumePlane> out;
  const auto nk = volume.size[2];
  for (const double level : {0.2, 0.4, 0.6, 0.8}) {
    const auto k = static_cast<std::int64_t>(level * static_cast<double>(nk - 1));
    out.push_back(
        {2, k,
         "axial section k = " + std::to_string(k) + " (" + fmt(100 * level) + " % of the volume)"});
  }
  const auto i = volume.size[0] / 2;
  out.push_back({0, i, "sagittal section i = " + std::to_string(i)});
  return out;
}

namespace {

/// In-plane axes of a voxel plane across `axis`: axial (k fixed): u = i, w = j; sagittal (i
/// fixed): u = j, w = k.
std::pair<int, int> in_plane_axes(int axis) {
  return axis == 2 ? std::pair{0, 1} : std::pair{1, 2};
}

} // namespace

nlohmann::json to_json(const ChartPlane& plane) {
  const auto vec = [](const Eigen::Vector3d& v) { return nlohmann::json{v.x(), v.y(), v.z()}; };
  return {{"origin_m", vec(plane.origin_m)},
          {"normal", vec(plane.normal)},
          {"e_u", vec(plane.e_u)},
          {"e_w", vec(plane.e_w)}};
}

ChartPlane chart_plane(const anatomy::LabelVolume& v, const VolumePlane& plane) {
  const auto [au, aw] = in_plane_axes(plane.axis);
  ChartPlane p;
  p.e_u = v.direction.col(au);
  p.e_w = v.direction.col(aw);
  p.normal = v.direction.col(plane.axis);
  // The heatmap draws voxel n from n * spacing to (n + 1) * spacing: its corner, not its centre,
  // is at n * spacing.
  p.origin_m = v.origin_m + static_cast<double>(plane.at) * v.spacing_m[plane.axis] * p.normal -
               0.5 * v.spacing_m[au] * p.e_u - 0.5 * v.spacing_m[aw] * p.e_w;
  return p;
}

nlohmann::json cross_section_chart(const anatomy::Subject& s, const VolumePlane& plane) {
  const auto& v = s.volume;
  const int axis = plane.axis;
  const auto [au, aw] = in_plane_axes(axis);
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
      ijk[static_cast<std::size_t>(axis)] = plane.at;
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
  // The sagittal section, along the limb, may be twice as tall.
  const double px_per_mm = std::min(360.0 / width_mm, (axis == 0 ? 720.0 : 360.0) / height_mm);
  const char* axis_names[] = {"i", "j", "k"};
  const nlohmann::json labels_layer = {
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
  return {{"title", plane.title},
          {"width", width_mm * px_per_mm},
          {"height", height_mm * px_per_mm},
          {"layer", {labels_layer}}};
}

nlohmann::json tet_edges_layer(const meshing::TetMesh& mesh, const ChartPlane& plane,
                               std::size_t& n_segments) {
  const Eigen::Index n_nodes = mesh.n_nodes();
  // Side of each node: a node on the plane counts as above it, so every crossing edge joins a
  // node below to one above and its crossing point is well defined.
  Eigen::VectorXd side(n_nodes);
  for (Eigen::Index i = 0; i < n_nodes; ++i)
    side[i] = (mesh.nodes_m.row(i).transpose() - plane.origin_m).dot(plane.normal);
  using Edge = std::pair<std::int64_t, std::int64_t>; // (lower node, higher node)
  const auto edge = [](std::int64_t a, std::int64_t b) {
    return Edge{std::min(a, b), std::max(a, b)};
  };
  std::set<std::pair<Edge, Edge>> segments; // each cut edge once, in a deterministic order
  for (Eigen::Index t = 0; t < mesh.n_tets(); ++t) {
    std::array<std::int64_t, 4> above{}, below{};
    int na = 0, nb = 0;
    for (int k = 0; k < 4; ++k) {
      const std::int64_t n = mesh.tets(t, k);
      if (side[n] >= 0.0)
        above[static_cast<std::size_t>(na++)] = n;
      else
        below[static_cast<std::size_t>(nb++)] = n;
    }
    if (na == 0 || nb == 0)
      continue;
    std::vector<Edge> ring; // crossing edges in order around the cut polygon
    if (na == 1 || nb == 1) {
      const auto& one = na == 1 ? above : below;
      const auto& three = na == 1 ? below : above;
      for (int k = 0; k < 3; ++k)
        ring.push_back(edge(one[0], three[static_cast<std::size_t>(k)]));
    } else { // 2 and 2: a quadrilateral a-c, a-d, b-d, b-c
      ring = {edge(above[0], below[0]), edge(above[0], below[1]), edge(above[1], below[1]),
              edge(above[1], below[0])};
    }
    for (std::size_t k = 0; k < ring.size(); ++k) {
      const Edge a = ring[k], b = ring[(k + 1) % ring.size()];
      segments.insert(a < b ? std::pair{a, b} : std::pair{b, a});
    }
  }
  const auto crossing = [&](const Edge& e) {
    const double s0 = side[e.first], s1 = side[e.second];
    const double f = s0 / (s0 - s1);
    const Eigen::Vector3d p = (1.0 - f) * mesh.nodes_m.row(e.first).transpose() +
                              f * mesh.nodes_m.row(e.second).transpose() - plane.origin_m;
    return std::pair{std::round(1e4 * p.dot(plane.e_u)) / 10.0,
                     std::round(1e4 * p.dot(plane.e_w)) / 10.0};
  };
  nlohmann::json u = nlohmann::json::array(), w = nlohmann::json::array(),
                 u2 = nlohmann::json::array(), w2 = nlohmann::json::array();
  for (const auto& [a, b] : segments) {
    const auto pa = crossing(a), pb = crossing(b);
    u.push_back(pa.first);
    w.push_back(pa.second);
    u2.push_back(pb.first);
    w2.push_back(pb.second);
  }
  n_segments = segments.size();
  return {{"data", {{"values", {{{"u", u}, {"w", w}, {"u2", u2}, {"w2", w2}}}}}},
          {"transform", {{{"flatten", {"u", "w", "u2", "w2"}}}}},
          {"mark", {{"type", "rule"}, {"color", "#222"}, {"strokeWidth", 0.4}, {"opacity", 0.8}}},
          {"encoding",
           {{"x", {{"field", "u"}, {"type", "quantitative"}}},
            {"y", {{"field", "w"}, {"type", "quantitative"}}},
            {"x2", {{"field", "u2"}}},
            {"y2", {{"field", "w2"}}}}}};
}

} // namespace myotwin::app::report
