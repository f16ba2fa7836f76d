#pragma once
/// \file point_locator.hpp
/// Point location in a tet mesh and sampling of nodal fields (P1 interpolation). A PointLocator
/// is built once over a mesh: a uniform grid of buckets, each listing (in ascending order) the
/// tets whose bounding box, grown by the tolerance, overlaps it. locate() gives, per point, the
/// containing tet and its 4 barycentric weights; the result (PointLocations) is the cache that
/// sample() reuses for any number of fields. Everything is deterministic: a point on a face
/// shared by two tets goes to the tet it lies deepest in, ties to the lower tet index.

#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin::forward {

/// Points located in a mesh, one row per point.
struct PointLocations {
  /// #points tet indices; -1 for a point outside the mesh (beyond the tolerance).
  std::vector<std::int64_t> tet;
  /// #points x 4 node indices of the tet (zero for points outside).
  meshing::TetArray nodes;
  /// #points x 4 barycentric weights (>= 0, summing to 1; zero for points outside).
  Eigen::Matrix<double, Eigen::Dynamic, 4, Eigen::RowMajor> weights;

  /// Number of points.
  [[nodiscard]] Eigen::Index size() const { return static_cast<Eigen::Index>(tet.size()); }
  /// Number of points outside the mesh.
  [[nodiscard]] std::int64_t n_outside() const;
};

/// Locates points in a tet mesh (state: a copy of nodes and tets and the bucket grid).
class PointLocator {
public:
  /// Builds the bucket grid over `mesh`. A point up to `tolerance_m` [m] outside a tet (its
  /// signed distance to each face plane >= -tolerance_m) still counts as inside it; its weights
  /// are clamped to >= 0 and renormalised. Default 1 nm (round-off on the mesh surface).
  /// \throws BadInput for an empty mesh, a node index out of range, a tet of zero or negative
  /// volume (naming it) or a negative tolerance.
  explicit PointLocator(const meshing::TetMesh& mesh, double tolerance_m = 1e-9);

  /// Locates `points_m` (#points x 3 [m]); points outside get tet -1. Parallel over points;
  /// the result does not depend on the thread count.
  [[nodiscard]] PointLocations
  locate(const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, 3>>& points_m) const;

  /// Barycentric weights of `point_m` [m] in tet `t` (not clamped; they sum to 1).
  [[nodiscard]] Eigen::Vector4d barycentric(std::int64_t t, const Eigen::Vector3d& point_m) const;

  /// The tolerance [m].
  [[nodiscard]] double tolerance_m() const { return tolerance_m_; }
  /// Buckets per axis of the grid.
  [[nodiscard]] const std::array<std::int64_t, 3>& grid_size() const { return dims_; }

private:
  /// Tet containing `p` (or -1) and its weights.
  std::int64_t locate_one(const Eigen::Vector3d& p, Eigen::Vector4d& weights) const;

  Eigen::MatrixX3d nodes_m_;
  meshing::TetArray tets_;
  double tolerance_m_;
  Eigen::Vector3d lo_m_;
  Eigen::Vector3d cell_m_;
  std::array<std::int64_t, 3> dims_{1, 1, 1};
  std::vector<std::int64_t> cell_start_; ///< n_cells + 1 offsets into cell_tets_
  std::vector<std::int32_t> cell_tets_;  ///< tets of each cell, ascending
};

/// Values of nodal fields at located points: row p of the result is
/// sum_k weights(p, k) * nodal_values.row(nodes(p, k)). `nodal_values`: #nodes x #fields (e.g.
/// lead fields, one column per electrode). Returns #points x #fields. Parallel over points.
/// \throws BadInput naming the first point that is outside the mesh, or a node index beyond
/// nodal_values' rows.
Eigen::MatrixXd sample(const PointLocations& locations,
                       const Eigen::Ref<const Eigen::MatrixXd>& nodal_values);

} // namespace myotwin::forward
