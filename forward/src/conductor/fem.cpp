#include "myotwin/forward/conductor/fem.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include <Eigen/Dense>

#include "myotwin/core/disjoint_sets.hpp"
#include "myotwin/core/error.hpp"

namespace myotwin::forward {

namespace {

/// Tets listed in messages about components before eliding.
constexpr std::size_t max_listed_components = 10;

void check_tets(std::int64_t n_nodes, const meshing::TetArray& tets, const char* where) {
  for (Eigen::Index t = 0; t < tets.rows(); ++t)
    for (int k = 0; k < 4; ++k)
      if (tets(t, k) < 0 || tets(t, k) >= n_nodes)
        throw BadInput(std::string(where) + ": tet " + std::to_string(t) + " node " +
                       std::to_string(tets(t, k)) + ": expected 0 <= node < " +
                       std::to_string(n_nodes));
}

/// Signed volume [m^3] and barycentric gradients (4 x 3 [1/m]) of a tet.
double tet_gradients(const Eigen::Matrix<double, 4, 3>& x, Eigen::Matrix<double, 4, 3>& grad) {
  Eigen::Matrix3d d;
  for (int k = 0; k < 3; ++k)
    d.col(k) = (x.row(k + 1) - x.row(0)).transpose();
  const double det = d.determinant();
  if (!(det > 0.0))
    return det / 6.0;
  const Eigen::Matrix3d inv = d.inverse(); // rows: gradients of l_1, l_2, l_3
  grad.bottomRows<3>() = inv;
  grad.row(0) = -inv.colwise().sum();
  return det / 6.0;
}

} // namespace

Eigen::Matrix4d local_stiffness(const Eigen::Matrix<double, 4, 3>& vertices_m,
                                const Eigen::Matrix3d& sigma_S_per_m) {
  Eigen::Matrix<double, 4, 3> g;
  const double v = tet_gradients(vertices_m, g);
  if (!(v > 0.0))
    throw BadInput("local_stiffness: tet volume " + format_number(v) + " m^3: expected > 0");
  return v * g * sigma_S_per_m * g.transpose();
}

SparseMatrixd assemble_stiffness(const Eigen::Ref<const Eigen::MatrixX3d>& nodes_m,
                                 const meshing::TetArray& tets, const TensorArray& tensors) {
  const Eigen::Index n_tets = tets.rows();
  const Eigen::Index n_nodes = nodes_m.rows();
  if (tensors.rows() != n_tets)
    throw BadInput("assemble_stiffness: " + std::to_string(tensors.rows()) +
                   " conductivity tensors for " + std::to_string(n_tets) +
                   " tets: expected one per tet");
  check_tets(n_nodes, tets, "assemble_stiffness");
  // Local matrices in parallel, one slot per tet.
  std::vector<Eigen::Matrix4d> local(static_cast<std::size_t>(n_tets));
  std::vector<double> volume(static_cast<std::size_t>(n_tets));
#pragma omp parallel for schedule(static)
  for (Eigen::Index t = 0; t < n_tets; ++t) {
    Eigen::Matrix<double, 4, 3> x;
    for (int k = 0; k < 4; ++k)
      x.row(k) = nodes_m.row(tets(t, k));
    Eigen::Matrix<double, 4, 3> g;
    const double v = tet_gradients(x, g);
    volume[static_cast<std::size_t>(t)] = v;
    if (v > 0.0)
      local[static_cast<std::size_t>(t)] = v * g * tensor_at(tensors, t) * g.transpose();
  }
  for (Eigen::Index t = 0; t < n_tets; ++t)
    if (!(volume[static_cast<std::size_t>(t)] > 0.0))
      throw BadInput("assemble_stiffness: tet " + std::to_string(t) + " has volume " +
                     format_number(volume[static_cast<std::size_t>(t)]) +
                     " m^3: expected > 0 (nodes ordered right-handed, not degenerate)");
  // Combined serially in tet order: setFromTriplets sums duplicates in insertion order.
  std::vector<Eigen::Triplet<double>> triplets;
  triplets.reserve(static_cast<std::size_t>(16 * n_tets));
  for (Eigen::Index t = 0; t < n_tets; ++t) {
    const Eigen::Matrix4d& m = local[static_cast<std::size_t>(t)];
    for (int j = 0; j < 4; ++j)
      for (int i = 0; i < 4; ++i)
        triplets.emplace_back(tets(t, i), tets(t, j), m(i, j));
  }
  local.clear();
  local.shrink_to_fit();
  SparseMatrixd k(n_nodes, n_nodes);
  k.setFromTriplets(triplets.begin(), triplets.end());
  k.makeCompressed();
  return k;
}

std::vector<std::int32_t> node_components(std::int64_t n_nodes, const meshing::TetArray& tets) {
  check_tets(n_nodes, tets, "node_components");
  const auto n = static_cast<std::size_t>(n_nodes);
  DisjointSets sets(n);
  std::vector<char> used(n, 0);
  for (Eigen::Index t = 0; t < tets.rows(); ++t) {
    used[static_cast<std::size_t>(tets(t, 0))] = 1;
    for (int k = 1; k < 4; ++k) {
      used[static_cast<std::size_t>(tets(t, k))] = 1;
      sets.unite(static_cast<std::size_t>(tets(t, 0)), static_cast<std::size_t>(tets(t, k)));
    }
  }
  return sets.component_ids(used);
}

namespace {

/// Tet count of each node component (component of a tet = that of its first node).
std::vector<std::int64_t> component_tet_counts(const meshing::TetMesh& mesh,
                                               const std::vector<std::int32_t>& comp) {
  std::int32_t n_comp = 0;
  for (const auto c : comp)
    n_comp = std::max(n_comp, c + 1);
  std::vector<std::int64_t> counts(static_cast<std::size_t>(n_comp), 0);
  for (Eigen::Index t = 0; t < mesh.tets.rows(); ++t)
    ++counts[static_cast<std::size_t>(comp[static_cast<std::size_t>(mesh.tets(t, 0))])];
  return counts;
}

} // namespace

void check_connected(const meshing::TetMesh& mesh) {
  const auto comp = node_components(mesh.n_nodes(), mesh.tets);
  const auto counts = component_tet_counts(mesh, comp);
  if (counts.size() <= 1)
    return;
  std::string list;
  for (std::size_t c = 0; c < counts.size() && c < max_listed_components; ++c)
    list += (c == 0 ? "" : ", ") + std::to_string(counts[c]);
  if (counts.size() > max_listed_components)
    list += ", ...";
  throw BadInput("volume conductor: the mesh has " + std::to_string(counts.size()) +
                 " disconnected components (tets per component: " + list +
                 "): the system is singular in each; expected one connected conductor");
}

std::int64_t default_reference_node(const meshing::TetMesh& mesh) {
  if (mesh.n_tets() == 0)
    throw BadInput("default_reference_node: the mesh has no tets");
  const auto comp = node_components(mesh.n_nodes(), mesh.tets);
  const auto counts = component_tet_counts(mesh, comp);
  const auto largest =
      static_cast<std::int32_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
  for (std::size_t v = 0; v < comp.size(); ++v)
    if (comp[v] == largest)
      return static_cast<std::int64_t>(v);
  return 0; // not reached
}

SparseMatrixd ground_stiffness(const SparseMatrixd& stiffness, std::int64_t reference_node) {
  const Eigen::Index n = stiffness.rows();
  if (stiffness.cols() != n)
    throw BadInput("ground_stiffness: matrix is " + std::to_string(n) + " x " +
                   std::to_string(stiffness.cols()) + ": expected square");
  if (reference_node < 0 || reference_node >= n)
    throw BadInput("ground_stiffness: reference node " + std::to_string(reference_node) +
                   ": expected 0 <= node < " + std::to_string(n));
  if (stiffness.col(reference_node).nonZeros() == 0)
    throw BadInput("ground_stiffness: reference node " + std::to_string(reference_node) +
                   " belongs to no tet: expected a node of the conductor");
  double diag_sum = 0.0;
  Eigen::Index n_diag = 0;
  for (Eigen::Index j = 0; j < n; ++j)
    if (stiffness.col(j).nonZeros() > 0) {
      diag_sum += stiffness.coeff(j, j);
      ++n_diag;
    }
  const double mean_diag = diag_sum / static_cast<double>(std::max<Eigen::Index>(1, n_diag));
  std::vector<Eigen::Triplet<double>> triplets;
  triplets.reserve(static_cast<std::size_t>(stiffness.nonZeros() + n));
  for (Eigen::Index j = 0; j < n; ++j) {
    if (stiffness.col(j).nonZeros() == 0) {
      triplets.emplace_back(j, j, mean_diag);
      continue;
    }
    for (SparseMatrixd::InnerIterator it(stiffness, j); it; ++it) {
      const bool on_ref = it.row() == reference_node || j == reference_node;
      if (!on_ref || it.row() == j)
        triplets.emplace_back(it.row(), j, it.value());
    }
  }
  SparseMatrixd out(n, n);
  out.setFromTriplets(triplets.begin(), triplets.end());
  out.makeCompressed();
  return out;
}

Eigen::VectorXd lumped_node_volumes_m3(const Eigen::Ref<const Eigen::MatrixX3d>& nodes_m,
                                       const meshing::TetArray& tets) {
  check_tets(nodes_m.rows(), tets, "lumped_node_volumes_m3");
  Eigen::VectorXd v = Eigen::VectorXd::Zero(nodes_m.rows());
  for (Eigen::Index t = 0; t < tets.rows(); ++t) {
    Eigen::Matrix3d d;
    for (int k = 0; k < 3; ++k)
      d.col(k) = (nodes_m.row(tets(t, k + 1)) - nodes_m.row(tets(t, 0))).transpose();
    const double q = std::abs(d.determinant()) / 24.0;
    for (int k = 0; k < 4; ++k)
      v[tets(t, k)] += q;
  }
  return v;
}

Eigen::VectorXd point_current_rhs(std::int64_t n_nodes, const PointLocations& locations,
                                  Eigen::Index point, double current_A) {
  if (point < 0 || point >= locations.size())
    throw BadInput("point_current_rhs: point " + std::to_string(point) +
                   ": expected 0 <= point < " + std::to_string(locations.size()));
  if (locations.tet[static_cast<std::size_t>(point)] < 0)
    throw BadInput("point_current_rhs: point " + std::to_string(point) +
                   " is outside the mesh: expected a point inside a tet");
  Eigen::VectorXd b = Eigen::VectorXd::Zero(n_nodes);
  int largest = 0;
  for (int k = 0; k < 4; ++k) {
    const auto node = locations.nodes(point, k);
    if (node < 0 || node >= n_nodes)
      throw BadInput("point_current_rhs: point " + std::to_string(point) + " uses node " +
                     std::to_string(node) + ": expected 0 <= node < " + std::to_string(n_nodes));
    b[node] += current_A * locations.weights(point, k);
    if (locations.weights(point, k) > locations.weights(point, largest))
      largest = k;
  }
  b[locations.nodes(point, largest)] += current_A - b.sum();
  return b;
}

Eigen::VectorXd pad_current_rhs(const Eigen::Ref<const Eigen::MatrixX3d>& nodes_m,
                                const meshing::TriArray& faces, double current_A) {
  const Eigen::Index n_nodes = nodes_m.rows();
  if (faces.rows() == 0)
    throw BadInput("pad_current_rhs: no faces: expected at least one triangle");
  Eigen::VectorXd area(faces.rows());
  for (Eigen::Index f = 0; f < faces.rows(); ++f) {
    for (int k = 0; k < 3; ++k)
      if (faces(f, k) < 0 || faces(f, k) >= n_nodes)
        throw BadInput("pad_current_rhs: face " + std::to_string(f) + " node " +
                       std::to_string(faces(f, k)) + ": expected 0 <= node < " +
                       std::to_string(n_nodes));
    const Eigen::Vector3d a = nodes_m.row(faces(f, 0)).transpose();
    const Eigen::Vector3d e1 = nodes_m.row(faces(f, 1)).transpose() - a;
    const Eigen::Vector3d e2 = nodes_m.row(faces(f, 2)).transpose() - a;
    area[f] = 0.5 * e1.cross(e2).norm();
    if (!(area[f] > 0.0))
      throw BadInput("pad_current_rhs: face " + std::to_string(f) + " has area " +
                     format_number(area[f]) + " m^2: expected > 0");
  }
  const double total = area.sum();
  Eigen::VectorXd b = Eigen::VectorXd::Zero(n_nodes);
  for (Eigen::Index f = 0; f < faces.rows(); ++f)
    for (int k = 0; k < 3; ++k)
      b[faces(f, k)] += current_A * area[f] / (3.0 * total);
  b[faces(faces.rows() - 1, 2)] += current_A - b.sum();
  return b;
}

} // namespace myotwin::forward
