#pragma once
// Private door to CGAL Mesh_3 (the only translation unit that includes CGAL is
// cgal_mesher.cpp). Works in the image's index frame scaled by the spacing, in millimetres:
// voxel (i, j, k) has its centre at (i * sx, j * sy, k * sz); the caller maps to the physical
// frame.

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin::meshing::detail {

/// What the CGAL mesher needs: a compact label image (0 = outside, 1..n tissues) and
/// criteria in millimetres.
struct CgalInput {
  std::array<std::int64_t, 3> size{0, 0, 0};
  std::array<double, 3> spacing_mm{1, 1, 1};
  std::vector<std::uint16_t> labels; ///< compact labels, i fastest
  int n_labels = 0;                  ///< largest compact label
  /// Per compact label 1..n (index 0 unused): the cell size [mm] and the facet size [mm] of
  /// its boundary (a surface patch takes the smaller of its two sides).
  std::vector<double> cell_size_mm;
  std::vector<double> facet_size_mm;
  std::vector<double> facet_distance_mm; ///< per compact label; a patch takes the smaller side
  double facet_angle_deg = 25.0;
  double cell_radius_edge_ratio = 3.0;
  double relative_error_bound = 1e-3;
  double perturb_sliver_bound_deg = 0.0; ///< 0: CGAL's default (no target)
  double exude_sliver_bound_deg = 0.0;   ///< 0: CGAL's default (no target)
  bool perturb = true;
  bool exude = true;
  bool lloyd = false;
  bool odt = false;
  std::uint64_t seed = 0;
};

/// The mesh in the scaled index frame [mm], labels compact.
struct CgalOutput {
  Eigen::MatrixX3d nodes_mm;
  TetArray tets;
  std::vector<std::int32_t> compact_labels;
  double refine_time_s = 0.0;
  double optimise_time_s = 0.0;
};

/// Meshes the compact label image with Mesh_3 (sequential, seeded). `stage` is called with the
/// name of each stage as it starts ("refine", "lloyd", "odt", "perturb", "exude").
CgalOutput cgal_mesh(const CgalInput& input, const std::function<void(const std::string&)>& stage);

} // namespace myotwin::meshing::detail
