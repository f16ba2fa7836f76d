#pragma once
/// \file electrodes.hpp
/// Electrodes on a subject's mesh: surface grids whose pads are skin faces, needles and fine
/// wires inside muscles, and the reference they record against (config section `electrodes`,
/// documented in docs/forward.md).
///
/// Geometry. The limb axis is the principal axis of the mesh nodes (largest variance), signed
/// so that its largest component is positive; the axial coordinate t of a point is its
/// projection on the axis measured from the node with the smallest projection (t in [0,
/// length]). Angles around the axis start at e1, the world axis (x, y or z) most perpendicular
/// to the limb axis projected on the cross-section plane, and turn right-handed about the axis
/// (e2 = axis x e1). The local centre c(t) is the mean of the nodes within 2 mm of t (widened
/// until it holds 20 nodes). A surface electrode is projected on the skin by a ray from c(t)
/// outward, perpendicular to the axis: the farthest crossing of the mesh's outer boundary
/// faces (meshing::boundary_faces()).
///
/// The axis may instead be set (`limb_axis`, a direction); the rest of the frame is the same.
///
/// Surface grids (rows along the limb axis, columns across it). Without `wrap`, the grid's frame
/// is fitted to the skin under the whole grid: a least-squares plane through the boundary faces
/// within the grid's half-diagonal (plus a pad) of its projected centre that face outward (the
/// plane's normal n; columns along axis x n, rows along n x that, turned by `rotation_deg` about
/// n), then a quadric height field h(x, y) over that plane fitted to the same faces (a smooth
/// surface through the staircase of a voxel skin). Electrodes are laid out along that surface:
/// column offsets as arc length along the row through the centre, row offsets as arc length
/// along each column, so inter-electrode distances are kept along the skin, not in the plane;
/// each point is then projected on the skin.
///
/// A grid placed by `muscle` (not wrapped): its centre is the skin point over the muscle (the
/// volume-weighted centroid of the muscle's tets projected radially on the skin), moved by
/// `offset_mm` ([across, along] the rows, measured along the skin); its rows follow the
/// muscle's mean fibre direction (volume-weighted over its tets, projected on the fitted plane)
/// and `rotation_deg` turns them from there. Such a grid must fit whole on the skin: otherwise
/// the error says how many electrodes, rows and columns do. A needle placed by `muscle` and
/// `depth_mm` is a point contact `depth_mm` under the skin point over the muscle, along the
/// inward normal of the skin fitted over 10 mm; it must lie in that muscle. With `wrap`, columns
/// follow the circumference: a column's arc offset along the cross-section contour at its axial
/// position is (column - (columns - 1) / 2) x ied, measured on the contour (360 rays from c(t), arc
/// length = integral of r dtheta), so the angular step is ied / local radius. A pad is the set of
/// boundary faces whose centroid lies within the pad shape around the projected centre (measured in
/// the local tangent plane; circle of radius `radius_mm` or square of side `side_mm` aligned with
/// the grid), on the same side (normal within 70 degrees of the centre's), and within one pad size
/// of the plane; at least the face the ray hit.
///
/// Needles and fine wires: a point contact (`position_mm`) or a line contact (`start_mm`,
/// `end_mm`, `n_points` points sharing the current equally), each point inside a muscle tet.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/forward/conductor/point_locator.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::forward {

/// Shape of a surface pad.
enum class PadShape {
  circle, ///< disc of radius `radius_mm`
  square  ///< square of side `side_mm`, edges along the grid's rows and columns
};

/// One surface grid (an element of `electrodes.grids`). Lengths in millimetres, as in the file.
struct GridSpec {
  std::string name = "grid"; ///< `name`; electrodes are called `name[row,column]` (or `name`
                             ///< for a 1 x 1 grid)
  std::int64_t rows = 10;    ///< `rows`: electrodes along the limb axis (>= 1)
  std::int64_t columns = 32; ///< `columns`: electrodes across it (>= 1)
  double ied_mm = 8.0;       ///< `ied_mm`: inter-electrode distance [mm] (> 0)
  PadShape shape = PadShape::circle; ///< `shape`: "circle" or "square"
  double radius_mm = 1.5;            ///< `radius_mm`: circle radius [mm] (> 0; circle only)
  double side_mm = 3.0;              ///< `side_mm`: square side [mm] (> 0; square only)
  /// Grid centre along the limb axis: `axial_position_mm` [mm from the axis start] or
  /// `axial_fraction` (0..1 of the length; default 0.5). Ignored with `centre_mm`.
  std::optional<double> axial_position_mm;
  double axial_fraction = 0.5;
  double angle_deg = 0.0; ///< `angle_deg`: angle of the centre around the axis [deg]
  /// `centre_mm`: the centre as a point [mm] instead (projected radially on the skin).
  std::optional<Eigen::Vector3d> centre_mm;
  double rotation_deg = 0.0; ///< `rotation_deg`: rows turned from the limb axis [deg]
  bool wrap = false;         ///< `wrap`: columns follow the circumference
  /// `column_spacing` (wrap only): "ied" (default; columns `ied_mm` apart along the contour) or
  /// "even" (the columns spread evenly around the whole circumference of each row, rows still
  /// `ied_mm` apart; needs rotation_deg = 0). The default grid uses "even": 32 x 8 mm = 256 mm
  /// does not fit around the sample forearm (155 to 233 mm).
  bool even_columns = false;
  /// `muscle`: place the grid over this muscle (a tissue name in any spelling, or its label);
  /// replaces the centre keys; rows along its fibres turned by rotation_deg. Not with wrap.
  std::string muscle;
  /// `offset_mm` (with muscle): [across, along] the rows [mm], along the skin.
  Eigen::Vector2d offset_mm = Eigen::Vector2d::Zero();
};

/// A needle or fine-wire contact (an element of `electrodes.needles`).
struct NeedleSpec {
  std::string name; ///< `name` (required, unique)
  /// `position_mm`: a point contact [mm]; or a line contact from `start_mm` to `end_mm` [mm]
  /// sampled at `n_points` points (>= 2, default 5).
  std::optional<Eigen::Vector3d> position_mm;
  Eigen::Vector3d start_mm = Eigen::Vector3d::Zero();
  Eigen::Vector3d end_mm = Eigen::Vector3d::Zero();
  std::int64_t n_points = 1;
  /// `muscle` and `depth_mm`: a point contact depth_mm under the skin over the muscle (instead
  /// of position_mm).
  std::string muscle;
  double depth_mm = 0.0;
};

/// The `electrodes` section.
struct ElectrodeConfig {
  std::vector<GridSpec> grids;     ///< `grids` (default: one 10 x 32 wrapped grid at
                                   ///< mid-length, rows 8 mm apart, columns spread evenly around
                                   ///< the circumference, circles of 1.5 mm radius)
  std::vector<NeedleSpec> needles; ///< `needles` (default none)
  /// `reference`: "average" (default) or the name of an electrode.
  std::string reference = "average";
  /// `limb_axis`: the limb axis direction (normalised); default: the mesh's principal axis.
  std::optional<Eigen::Vector3d> limb_axis;
};

/// Reads the `electrodes` section strictly. Without `grids` and `needles` the default grid is
/// used. \throws BadInput naming the key, the value and the expectation (unknown shape, a
/// size <= 0, both or neither of `position_mm` and `start_mm`/`end_mm`, duplicate names, a
/// reference that names no electrode, ...).
ElectrodeConfig read_electrode_config(ConfigReader& section);

/// The config as JSON in the file's layout (millimetres, degrees).
nlohmann::json to_json(const ElectrodeConfig& config);

/// Kind of a placed electrode.
enum class ElectrodeKind { pad, point, line };

/// An electrode placed on the mesh. Positions in metres.
struct PlacedElectrode {
  std::string name; ///< e.g. `grid[3,17]` or the needle's name
  ElectrodeKind kind = ElectrodeKind::pad;
  std::string group;                                    ///< the grid or needle it belongs to
  std::int64_t row = -1;                                ///< grid row (-1 for needles)
  std::int64_t column = -1;                             ///< grid column (-1 for needles)
  Eigen::Vector3d position_m = Eigen::Vector3d::Zero(); ///< projected centre or contact [m]
  Eigen::Vector3d normal = Eigen::Vector3d::Zero();     ///< outward unit normal (pads)
  double axial_m = 0.0;                                 ///< axial coordinate of the position [m]
  double angle_deg = 0.0;                               ///< angle around the axis [deg]
  /// Pad faces: #faces x 3 node indices (boundary faces of the mesh).
  meshing::TriArray pad_faces;
  double area_m2 = 0.0;         ///< sum of the pad faces' areas [m^2]
  double nominal_area_m2 = 0.0; ///< pi r^2 or side^2 [m^2] (0 for needles)
  /// Contact points [m], #points x 3 (one for a point contact, n for a line, empty for pads).
  Eigen::MatrixX3d contact_points_m;
};

/// The limb axis frame of a mesh (see the file comment).
struct LimbAxis {
  Eigen::Vector3d origin_m = Eigen::Vector3d::Zero(); ///< point of the axis at t = 0 [m]
  Eigen::Vector3d axis = Eigen::Vector3d::UnitZ();    ///< unit direction
  Eigen::Vector3d e1 = Eigen::Vector3d::UnitX();      ///< angle 0 [unit]
  Eigen::Vector3d e2 = Eigen::Vector3d::UnitY();      ///< angle 90 deg [unit]
  double length_m = 0.0;                              ///< axial extent of the nodes [m]
  bool set_by_config = false; ///< true when `electrodes.limb_axis` gave the direction
};

/// The principal axis of the mesh nodes, or `direction` when given (normalised; its largest
/// component made positive). \throws BadInput for fewer than 4 nodes or a zero direction.
LimbAxis limb_axis(const meshing::TetMesh& mesh,
                   const std::optional<Eigen::Vector3d>& direction = std::nullopt);

/// Where a grid or needle named by `muscle` was put: written into the resolved configuration.
struct AnatomicalPlacement {
  std::string group;                                      ///< the grid's or needle's name
  std::string muscle;                                     ///< the muscle asked for
  std::string tissue;                                     ///< the tissue name it matched
  Eigen::Vector3d centre_m = Eigen::Vector3d::Zero();     ///< grid centre on the skin / contact [m]
  Eigen::Vector3d skin_point_m = Eigen::Vector3d::Zero(); ///< skin point over the muscle [m]
  Eigen::Vector3d fibre_direction = Eigen::Vector3d::Zero(); ///< mean fibre direction [unit]
  double rotation_deg = 0.0; ///< grid rows from the limb axis, about the normal [deg]
};

/// All electrodes of a config placed on a mesh, with the frame used.
struct ElectrodeLayout {
  LimbAxis axis;
  std::vector<PlacedElectrode> electrodes; ///< grids in order (row-major), then needles
  std::string reference = "average";       ///< "average" or an electrode name
  std::int64_t reference_index = -1;       ///< index of the reference electrode (-1: average)
  /// Circumference of the skin contour at each wrapped grid's centre [m] (one per grid; 0 when
  /// not wrapped).
  std::vector<double> grid_circumference_m;
  std::vector<AnatomicalPlacement> placements; ///< grids and needles placed by muscle
};

/// Places the electrodes of `config` on `mesh`. `tissues` gives the tissue class of each tet.
/// \throws BadInput naming the electrode for: a ray that does not reach the skin, a centre
/// outside the mesh's axial extent or a pad that reaches past the end of the mesh ("falls off
/// the mesh end", with the numbers), a projection onto a boundary face that is not skin (when
/// the mesh has skin), a wrapped grid whose span columns x ied exceeds the circumference at its
/// position (naming both in mm), a needle contact outside the mesh or in a tet that is not
/// muscle (naming the tissue found), a reference naming no electrode, a `muscle` that is not a
/// muscle of the mesh (listing those present), a grid that does not fit on the skin over its
/// muscle (saying how much fits) and a needle depth outside its muscle (giving the depths
/// where the muscle is).
ElectrodeLayout place_electrodes(const meshing::TetMesh& mesh, const anatomy::TissueTable& tissues,
                                 const ElectrodeConfig& config);

/// Unit-current right-hand sides [A], #nodes x #electrodes: a pad spreads +1 A over its faces
/// with uniform density (pad_current_rhs()), a point contact puts it on its tet's nodes by
/// barycentric weights, a line contact gives 1/n A to each of its n points. Row
/// `reference_node` is zeroed (the grounded node is the sink). \throws BadInput naming the
/// electrode for a contact outside the mesh or a bad pad.
Eigen::MatrixXd layout_currents(const meshing::TetMesh& mesh, const PointLocator& locator,
                                const ElectrodeLayout& layout, std::int64_t reference_node);

/// Lead fields referenced as the layout says: average reference or minus the reference
/// electrode's column. `lead_fields_V_per_A`: #nodes x #electrodes (grounded at a node).
Eigen::MatrixXd apply_reference(const Eigen::Ref<const Eigen::MatrixXd>& lead_fields_V_per_A,
                                const ElectrodeLayout& layout);

/// The placements by muscle as the `electrodes.placed` array of the resolved configuration
/// (group, muscle, tissue, centre_mm and skin_point_mm in LPS millimetres, fibre_direction,
/// rotation_deg).
nlohmann::json placements_json(const ElectrodeLayout& layout);

/// electrodes.json: the frame, the reference and per electrode its name, kind, grid row and
/// column, position [m], normal, axial position [m], angle [deg], area and nominal area [m^2],
/// face count, contact points [m].
nlohmann::json to_json(const ElectrodeLayout& layout);

/// Writes electrodes.vtp: pads as triangles (their own copy of the nodes) with cell data
/// `electrode` (index), and each contact point as a small triangle (cell data `electrode` too)
/// so that ParaView shows it. Atomically. \throws IoError.
void write_electrodes_vtp(const std::filesystem::path& path, const meshing::TetMesh& mesh,
                          const ElectrodeLayout& layout);

/// The hash of the electrodes as placed (names, kinds, pad faces, contact points, reference),
/// continuing from `hash` (FNV-1a, core/hash.hpp).
std::uint64_t hash_layout(const ElectrodeLayout& layout, std::uint64_t hash);

} // namespace myotwin::forward
