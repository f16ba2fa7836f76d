#pragma once
/// \file tet_mesh.hpp
/// The tetrahedral mesh that the meshing stage hands to the volume conductor: plain Eigen
/// arrays in SI units, no CGAL or VTK type. Nodes are in metres in the image's physical (LPS)
/// frame; every tet carries the tissue label it lies in and, for muscle tets, a unit fibre
/// direction (zero elsewhere).

#include <array>
#include <cstdint>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Geometry>

namespace myotwin::meshing {

/// #tets x 4 node indices, one row per tet.
using TetArray = Eigen::Matrix<std::int32_t, Eigen::Dynamic, 4, Eigen::RowMajor>;
/// #faces x 3 node indices, one row per triangle.
using TriArray = Eigen::Matrix<std::int32_t, Eigen::Dynamic, 3, Eigen::RowMajor>;

/// A conforming multi-material tetrahedral mesh.
struct TetMesh {
  Eigen::MatrixX3d nodes_m;         ///< #nodes x 3 positions [m]
  TetArray tets;                    ///< #tets x 4 node indices (positive volume)
  std::vector<std::int32_t> labels; ///< #tets tissue labels
  Eigen::MatrixX3d fibre_direction; ///< #tets x 3 unit vectors (zero: no fibre)

  /// Number of nodes.
  [[nodiscard]] std::int64_t n_nodes() const { return nodes_m.rows(); }
  /// Number of tets.
  [[nodiscard]] std::int64_t n_tets() const { return tets.rows(); }
};

/// Signed volume of tet `t` [m^3] (positive when its nodes are ordered right-handed).
double tet_volume_m3(const TetMesh& mesh, std::int64_t t);

/// The boundary triangles of the mesh (faces that belong to exactly one tet), oriented with
/// their normal pointing out of the mesh, in a deterministic order (sorted by node indices).
/// \param face_tet if not null, receives the tet each face belongs to.
TriArray boundary_faces(const TetMesh& mesh, std::vector<std::int64_t>* face_tet = nullptr);

/// The faces between tets of label `label` and tets of other labels or the outside, oriented
/// out of the `label` region (sorted by node indices).
TriArray label_surface(const TetMesh& mesh, std::int32_t label);

/// Connected components of the tets: two tets are connected when they share a face (and,
/// with `same_label`, carry the same label). Only tets whose label is in `select` take part
/// (all tets if `select` is empty). Returns #tets component ids (-1 for tets not selected),
/// numbered 0.. in order of each component's lowest tet index.
std::vector<std::int32_t> tet_components(const TetMesh& mesh,
                                         const std::vector<std::int32_t>& select = {},
                                         bool same_label = false);

/// A structured mesh of an axis-aligned box: n[0] x n[1] x n[2] cubes, each split into 6 tets
/// along its main diagonal (Kuhn / Freudenthal split, conforming, all tets of equal volume),
/// label `label` everywhere, fibre direction zero. For tests and analytic references.
/// \param lo_m, hi_m opposite corners [m]; \param n cubes per axis (>= 1).
/// \throws BadInput for n < 1 or a box of zero or negative extent.
TetMesh structured_box_mesh(const Eigen::Vector3d& lo_m, const Eigen::Vector3d& hi_m,
                            const std::array<std::int64_t, 3>& n, std::int32_t label = 1);

} // namespace myotwin::meshing
