#pragma once
/// \file mesh_quality.hpp
/// Quality of a tet mesh: dihedral angles, radius-edge ratios, degenerate and isolated tets,
/// connected components, and per-tissue volumes against the voxel volumes of the image.

#include <array>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin::meshing {

/// One tissue in the mesh.
struct TissueQuality {
  std::int32_t label = 0;
  std::string name;
  std::string tissue_class;
  std::int64_t n_tets = 0;
  double mesh_volume_m3 = 0.0;
  double voxel_volume_m3 = 0.0;  ///< voxel count x voxel volume (0 when no image given)
  std::int64_t n_components = 0; ///< face-connected components of its tets
  double min_dihedral_deg = 0.0; ///< smallest dihedral angle of its tets
};

/// Quality of a whole mesh.
struct MeshQuality {
  std::int64_t n_nodes = 0;
  std::int64_t n_tets = 0;
  double min_dihedral_deg = 0.0;
  double max_dihedral_deg = 0.0;
  /// Dihedral angle histogram: 18 bins of 10 degrees (0-10, ..., 170-180), counts of angles
  /// (6 per tet).
  std::vector<std::int64_t> dihedral_histogram;
  double dihedral_p01_deg = 0.0;      ///< 1st percentile of the tets' smallest angles
  double max_radius_edge_ratio = 0.0; ///< circumradius / shortest edge, worst tet
  double mean_radius_edge_ratio = 0.0;
  std::int64_t n_degenerate = 0;      ///< tets with volume <= 1e-9 x longest edge^3
  std::int64_t n_isolated = 0;        ///< tets that share no face with another tet
  std::int64_t n_components = 0;      ///< face-connected components of the whole mesh
  std::vector<TissueQuality> tissues; ///< per label, in label order
};

/// The six dihedral angles of tet `t` [deg] (one per edge).
std::array<double, 6> tet_dihedral_angles_deg(const TetMesh& mesh, std::int64_t t);

/// Smallest and largest dihedral angle of tet `t` [deg].
std::pair<double, double> tet_dihedral_range_deg(const TetMesh& mesh, std::int64_t t);

/// Circumradius over shortest edge of tet `t` (sqrt(6)/4 = 0.612 for a regular tet).
double tet_radius_edge_ratio(const TetMesh& mesh, std::int64_t t);

/// The quality of `mesh`. With `volume` and `tissues` (may be null), per-tissue voxel volumes
/// and names are filled in.
MeshQuality mesh_quality(const TetMesh& mesh, const anatomy::LabelVolume* volume = nullptr,
                         const anatomy::TissueTable* tissues = nullptr);

/// The quality as JSON (volumes in cm^3, angles in degrees), as written to mesh_quality.json.
nlohmann::json to_json(const MeshQuality& quality);

/// A short table for people: totals, angle range and per-tissue volumes.
void print_quality_table(std::ostream& out, const MeshQuality& quality);

} // namespace myotwin::meshing
