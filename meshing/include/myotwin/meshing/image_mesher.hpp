#pragma once
/// \file image_mesher.hpp
/// Labelled-image meshing: a subject's label volume becomes a conforming multi-material
/// tetrahedral mesh (CGAL Mesh_3, labelled image domain; CGAL is hidden in one translation
/// unit). Every tet carries the label it lies in. The mesh lies where the image lies in
/// physical space: CGAL meshes in the voxel frame (index x spacing), and the nodes are mapped
/// with the image's origin and direction matrix (which CGAL's image type drops) into metres.
///
/// Steps: (1) small islands of a label are merged into their surroundings; (2) the labels are
/// packed into a compact image (1..n); (3) axes coarser than `max_voxel_size_mm` are
/// upsampled (nearest neighbour) so thin layers are sampled finely enough; (4) Mesh_3 refines
/// with per-tissue cell and facet sizes, then the default optimisation (perturb, exude; ODT and
/// Lloyd optional) runs sequentially with a fixed seed and no time limit; (5) nodes are mapped
/// to the physical frame and numbered canonically (sorted by position), tets sorted, so the
/// same inputs give a bit-identical mesh.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/core/progress.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::meshing {

/// Mesh criteria and preprocessing (config section `mesh`). Sizes in millimetres.
struct MeshParams {
  double facet_angle_deg =
      25.0; ///< lower bound of surface triangle angles (`facet_angle_deg`, (0, 30])
  double cell_radius_edge_ratio =
      3.0; ///< max circumradius / shortest edge of tets (`cell_radius_edge_ratio`, >= 2)
  /// Cell size per tissue class (`cell_size_mm`: object with keys skin, fat, muscle, tendon,
  /// bone, other). Thin skin and fat fine, bone and deep muscle coarse.
  std::map<anatomy::TissueClass, double> class_cell_size_mm{
      {anatomy::TissueClass::skin, 1.5},   {anatomy::TissueClass::fat, 2.5},
      {anatomy::TissueClass::muscle, 4.0}, {anatomy::TissueClass::tendon, 3.0},
      {anatomy::TissueClass::bone, 6.0},   {anatomy::TissueClass::other, 5.0}};
  /// Largest distance between a surface triangle and the true boundary, per tissue class
  /// (`facet_distance_mm`: object with the class names); a boundary takes the smaller value of
  /// its two sides. Thin tendons need it small to keep their volume.
  std::map<anatomy::TissueClass, double> class_facet_distance_mm{
      {anatomy::TissueClass::skin, 0.4},   {anatomy::TissueClass::fat, 0.4},
      {anatomy::TissueClass::muscle, 0.4}, {anatomy::TissueClass::tendon, 0.2},
      {anatomy::TissueClass::bone, 0.4},   {anatomy::TissueClass::other, 0.4}};
  /// Per-tissue overrides by tissue name (`tissue_cell_sizes`: [{"tissue": "radius",
  /// "cell_size_mm": 8}]).
  std::map<std::string, double> tissue_cell_size_mm;
  /// Surface triangles on a boundary are at most this factor times the smaller cell size of
  /// its two sides (`facet_size_factor`).
  double facet_size_factor = 1.0;
  /// Components of a label with fewer voxels (6-connected) are merged into the label most
  /// common around them before meshing (`min_island_voxels`; 0 keeps everything).
  std::int64_t min_island_voxels = 8;
  /// Image axes with a coarser spacing are upsampled by an integer factor (nearest neighbour)
  /// so that thin layers get at least two samples across (`max_voxel_size_mm`; 0 = never).
  double max_voxel_size_mm = 0.0;
  bool lloyd = false;  ///< Lloyd smoothing (`lloyd`)
  bool odt = false;    ///< ODT smoothing (`odt`)
  bool perturb = true; ///< sliver perturbation (`perturb`, CGAL default on)
  /// Perturbation works on tets whose smallest dihedral angle is below this
  /// (`perturb_sliver_bound_deg`; 0: CGAL's default, as long as it improves).
  double perturb_sliver_bound_deg = 0.0;
  /// Exudation works on tets below this angle (`exude_sliver_bound_deg`; 0: CGAL's default, as
  /// long as it improves, which took 38 s of a 48 s forearm mesh).
  double exude_sliver_bound_deg = 15.0;
  bool exude = true; ///< sliver exudation (`exude`, CGAL default on)

  /// The cell size [mm] of a tissue: its per-name override, else its class's size.
  [[nodiscard]] double cell_size_mm(const anatomy::Tissue& tissue) const;
};

/// Reads the `mesh` section. Every size must be > 0. \throws BadInput naming the key.
MeshParams read_mesh_params(ConfigReader& section);

/// One label's islands removed before meshing.
struct IslandReport {
  std::int32_t label = 0;
  std::int64_t n_islands = 0; ///< components merged away
  std::int64_t n_voxels = 0;  ///< voxels relabelled
};

/// Merges every 6-connected component of a label with fewer than `min_voxels` voxels into
/// the label most common among its face neighbours (the background counts as a label). The
/// largest component of each label always stays, so no tissue disappears.
/// Deterministic; repeated until no island is left (at most a few passes).
/// \returns per label (in label order) the islands removed; labels without islands omitted.
std::vector<IslandReport> remove_small_islands(anatomy::LabelVolume& volume,
                                               std::int64_t min_voxels);

/// The mesh of a label volume with what happened on the way.
struct ImageMeshResult {
  TetMesh mesh;                           ///< physical frame [m], labels as in the volume
  std::vector<IslandReport> islands;      ///< islands merged before meshing
  std::array<int, 3> upsampling{1, 1, 1}; ///< integer upsampling per image axis
  double refine_time_s = 0.0;             ///< Mesh_3 refinement [s]
  double optimise_time_s = 0.0;           ///< optimisation (perturb, exude, ...) [s]
  double total_time_s = 0.0;              ///< everything [s]
};

/// Meshes every labelled tissue of `volume`. Labels absent from `tissues` are BadInput (listed
/// with voxel counts); an image with no foreground is BadInput. The fibre direction is left
/// zero (see assign_fibre_directions()).
/// \param seed seeds CGAL's random generator (same seed, same inputs: the same bits).
/// \param progress receives the stages (islands, refine, optimise, ...) as steps.
ImageMeshResult mesh_label_volume(const anatomy::LabelVolume& volume,
                                  const anatomy::TissueTable& tissues, const MeshParams& params,
                                  std::uint64_t seed, const ProgressCallback& progress = {});

} // namespace myotwin::meshing
