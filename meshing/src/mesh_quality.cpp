#include "myotwin/meshing/mesh_quality.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <iomanip>
#include <limits>
#include <map>
#include <numbers>
#include <ostream>
#include <set>

#include "myotwin/core/units.hpp"

namespace myotwin::meshing {

namespace {

Eigen::Vector3d node(const TetMesh& m, std::int64_t t, int c) {
  return m.nodes_m.row(m.tets(t, c)).transpose();
}

} // namespace

std::array<double, 6> tet_dihedral_angles_deg(const TetMesh& mesh, std::int64_t t) {
  const Eigen::Vector3d p[4] = {node(mesh, t, 0), node(mesh, t, 1), node(mesh, t, 2),
                                node(mesh, t, 3)};
  // Outward unit normal of the face opposite each vertex.
  Eigen::Vector3d n[4];
  constexpr int f[4][3] = {{1, 2, 3}, {0, 2, 3}, {0, 1, 3}, {0, 1, 2}};
  for (int v = 0; v < 4; ++v) {
    Eigen::Vector3d nv = (p[f[v][1]] - p[f[v][0]]).cross(p[f[v][2]] - p[f[v][0]]);
    if (nv.dot(p[v] - p[f[v][0]]) > 0.0)
      nv = -nv;
    const double len = nv.norm();
    n[v] = len > 0.0 ? Eigen::Vector3d(nv / len) : Eigen::Vector3d::Zero();
  }
  std::array<double, 6> angles{};
  std::size_t e = 0;
  for (int a = 0; a < 4; ++a)
    for (int b = a + 1; b < 4; ++b) {
      // The edge shared by faces a and b: its dihedral angle is pi minus the normals' angle.
      const double c = std::clamp(n[a].dot(n[b]), -1.0, 1.0);
      angles[e++] = 180.0 - std::acos(c) * 180.0 / std::numbers::pi;
    }
  return angles;
}

std::pair<double, double> tet_dihedral_range_deg(const TetMesh& mesh, std::int64_t t) {
  const auto a = tet_dihedral_angles_deg(mesh, t);
  const auto [lo, hi] = std::minmax_element(a.begin(), a.end());
  return {*lo, *hi};
}

double tet_radius_edge_ratio(const TetMesh& mesh, std::int64_t t) {
  const Eigen::Vector3d d = node(mesh, t, 3);
  const Eigen::Vector3d a = node(mesh, t, 0) - d, b = node(mesh, t, 1) - d,
                        c = node(mesh, t, 2) - d;
  const double denom = 2.0 * a.dot(b.cross(c));
  if (denom == 0.0)
    return std::numeric_limits<double>::infinity();
  const Eigen::Vector3d centre =
      (a.squaredNorm() * b.cross(c) + b.squaredNorm() * c.cross(a) + c.squaredNorm() * a.cross(b)) /
      denom;
  double shortest = std::numeric_limits<double>::infinity();
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j)
      shortest = std::min(shortest, (node(mesh, t, i) - node(mesh, t, j)).norm());
  return centre.norm() / shortest;
}

MeshQuality mesh_quality(const TetMesh& mesh, const anatomy::LabelVolume* volume,
                         const anatomy::TissueTable* tissues) {
  MeshQuality q;
  q.n_nodes = mesh.n_nodes();
  q.n_tets = mesh.n_tets();
  q.dihedral_histogram.assign(18, 0);
  const auto n = static_cast<std::size_t>(mesh.n_tets());
  std::vector<double> min_angle(n), max_angle(n), ratio(n);
  std::vector<std::array<std::uint8_t, 6>> bins(n);
  std::vector<char> degenerate(n);
#pragma omp parallel for schedule(static)
  for (std::int64_t t = 0; t < mesh.n_tets(); ++t) {
    const auto angles = tet_dihedral_angles_deg(mesh, t);
    min_angle[static_cast<std::size_t>(t)] = *std::min_element(angles.begin(), angles.end());
    max_angle[static_cast<std::size_t>(t)] = *std::max_element(angles.begin(), angles.end());
    for (std::size_t e = 0; e < 6; ++e)
      bins[static_cast<std::size_t>(t)][e] =
          static_cast<std::uint8_t>(std::clamp(static_cast<int>(angles[e] / 10.0), 0, 17));
    ratio[static_cast<std::size_t>(t)] = tet_radius_edge_ratio(mesh, t);
    double longest = 0.0;
    for (int i = 0; i < 4; ++i)
      for (int j = i + 1; j < 4; ++j)
        longest = std::max(longest, (node(mesh, t, i) - node(mesh, t, j)).norm());
    degenerate[static_cast<std::size_t>(t)] =
        std::abs(tet_volume_m3(mesh, t)) <= 1e-9 * longest * longest * longest;
  }
  std::map<std::int32_t, TissueQuality> per;
  double ratio_sum = 0.0;
  q.min_dihedral_deg = n ? 180.0 : 0.0;
  for (std::size_t t = 0; t < n; ++t) {
    q.min_dihedral_deg = std::min(q.min_dihedral_deg, min_angle[t]);
    q.max_dihedral_deg = std::max(q.max_dihedral_deg, max_angle[t]);
    q.max_radius_edge_ratio = std::max(q.max_radius_edge_ratio, ratio[t]);
    ratio_sum += ratio[t];
    q.n_degenerate += degenerate[t];
    for (const auto b : bins[t])
      ++q.dihedral_histogram[b];
    auto& tq = per[mesh.labels[t]];
    tq.label = mesh.labels[t];
    ++tq.n_tets;
    tq.mesh_volume_m3 += tet_volume_m3(mesh, static_cast<std::int64_t>(t));
    tq.min_dihedral_deg =
        tq.n_tets == 1 ? min_angle[t] : std::min(tq.min_dihedral_deg, min_angle[t]);
  }
  q.mean_radius_edge_ratio = n ? ratio_sum / static_cast<double>(n) : 0.0;
  if (n) {
    std::vector<double> sorted = min_angle;
    const std::size_t k = n / 100;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k), sorted.end());
    q.dihedral_p01_deg = sorted[k];
  }
  // Components and isolated tets.
  const auto comp = tet_components(mesh);
  q.n_components = comp.empty() ? 0 : *std::max_element(comp.begin(), comp.end()) + 1;
  {
    std::vector<std::int64_t> size(static_cast<std::size_t>(q.n_components), 0);
    for (const auto c : comp)
      ++size[static_cast<std::size_t>(c)];
    for (const auto s : size)
      q.n_isolated += s == 1;
  }
  const auto label_comp = tet_components(mesh, {}, true);
  {
    std::map<std::int32_t, std::set<std::int32_t>> ids;
    for (std::size_t t = 0; t < n; ++t)
      ids[mesh.labels[t]].insert(label_comp[t]);
    for (auto& [label, tq] : per)
      tq.n_components = static_cast<std::int64_t>(ids[label].size());
  }
  for (auto& [label, tq] : per) {
    if (tissues != nullptr) {
      if (const auto* tissue = tissues->find(label)) {
        tq.name = tissue->name;
        tq.tissue_class = anatomy::to_string(tissue->tissue_class);
      }
    }
  }
  if (volume != nullptr) {
    const auto hist = anatomy::label_histogram(*volume);
    for (auto& [label, tq] : per) {
      if (const auto it = hist.find(label); it != hist.end())
        tq.voxel_volume_m3 = static_cast<double>(it->second) * volume->voxel_volume_m3();
    }
    // Labels of the image that the mesh lost entirely.
    for (const auto& [label, count] : hist) {
      if (label == 0 || per.count(label))
        continue;
      TissueQuality tq;
      tq.label = label;
      tq.voxel_volume_m3 = static_cast<double>(count) * volume->voxel_volume_m3();
      if (tissues != nullptr) {
        if (const auto* tissue = tissues->find(label)) {
          tq.name = tissue->name;
          tq.tissue_class = anatomy::to_string(tissue->tissue_class);
        }
      }
      per[label] = tq;
    }
  }
  for (const auto& [label, tq] : per)
    q.tissues.push_back(tq);
  return q;
}

nlohmann::json to_json(const MeshQuality& q) {
  nlohmann::json j;
  j["n_nodes"] = q.n_nodes;
  j["n_tets"] = q.n_tets;
  j["min_dihedral_deg"] = q.min_dihedral_deg;
  j["max_dihedral_deg"] = q.max_dihedral_deg;
  j["p01_min_dihedral_deg"] = q.dihedral_p01_deg;
  j["dihedral_histogram_10deg_bins"] = q.dihedral_histogram;
  j["max_radius_edge_ratio"] = q.max_radius_edge_ratio;
  j["mean_radius_edge_ratio"] = q.mean_radius_edge_ratio;
  j["n_degenerate_tets"] = q.n_degenerate;
  j["n_isolated_tets"] = q.n_isolated;
  j["n_components"] = q.n_components;
  nlohmann::json tissues = nlohmann::json::array();
  for (const auto& t : q.tissues) {
    nlohmann::json e;
    e["label"] = t.label;
    e["name"] = t.name;
    e["class"] = t.tissue_class;
    e["n_tets"] = t.n_tets;
    e["mesh_volume_cm3"] = units::m3_to_cm3(t.mesh_volume_m3);
    e["voxel_volume_cm3"] = units::m3_to_cm3(t.voxel_volume_m3);
    e["volume_ratio"] = t.voxel_volume_m3 > 0.0 ? t.mesh_volume_m3 / t.voxel_volume_m3 : 0.0;
    e["n_components"] = t.n_components;
    e["min_dihedral_deg"] = t.min_dihedral_deg;
    tissues.push_back(e);
  }
  j["tissues"] = tissues;
  return j;
}

void print_quality_table(std::ostream& out, const MeshQuality& q) {
  out << q.n_nodes << " nodes, " << q.n_tets << " tets, " << q.n_components
      << " component(s); dihedral angles " << std::fixed << std::setprecision(1)
      << q.min_dihedral_deg << " .. " << q.max_dihedral_deg << " deg (1 % of tets below "
      << q.dihedral_p01_deg << "), radius-edge ratio max " << std::setprecision(2)
      << q.max_radius_edge_ratio << ", " << q.n_degenerate << " degenerate, " << q.n_isolated
      << " isolated\n";
  std::size_t w = 8;
  for (const auto& t : q.tissues)
    w = std::max(w, t.name.size() + 2);
  out << std::left << std::setw(6) << "label" << std::setw(static_cast<int>(w)) << "tissue"
      << std::setw(8) << "class" << std::right << std::setw(9) << "tets" << std::setw(11)
      << "mesh_cm3" << std::setw(11) << "voxel_cm3" << std::setw(8) << "ratio" << std::setw(7)
      << "parts" << std::setw(9) << "min_deg\n";
  for (const auto& t : q.tissues) {
    out << std::left << std::setw(6) << t.label << std::setw(static_cast<int>(w)) << t.name
        << std::setw(8) << t.tissue_class << std::right << std::setw(9) << t.n_tets << std::setw(11)
        << std::setprecision(2) << units::m3_to_cm3(t.mesh_volume_m3) << std::setw(11)
        << units::m3_to_cm3(t.voxel_volume_m3) << std::setw(8) << std::setprecision(3)
        << (t.voxel_volume_m3 > 0.0 ? t.mesh_volume_m3 / t.voxel_volume_m3 : 0.0) << std::setw(7)
        << t.n_components << std::setw(8) << std::setprecision(1) << t.min_dihedral_deg << "\n";
  }
  out << std::defaultfloat;
}

} // namespace myotwin::meshing
