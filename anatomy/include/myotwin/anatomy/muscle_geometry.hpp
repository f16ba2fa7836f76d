#pragma once
/// \file muscle_geometry.hpp
/// Geometry of one muscle label: its voxels, volume, centroid, principal axis, length and
/// cross-sectional area profile along the axis, connected components, and its origin and
/// insertion regions (the voxels that touch its tendons, or its two end caps along the
/// principal axis). Coordinates are metres in the label volume's physical (LPS) frame.
///
/// Connectivity: components are 6-connected (voxels sharing a face). Pieces that touch only at
/// an edge or a corner are separate components, because the fibre field (a finite-difference
/// Laplace problem on the 6-neighbour stencil) cannot cross between them. Tendon contact uses
/// the 26-neighbourhood (a muscle voxel touches a tendon when any of its 26 neighbours is one).

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/tissue_table.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::anatomy {

/// What to do with a muscle label split in several 6-connected pieces.
enum class ComponentPolicy { keep_largest, keep_all };

/// "keep_largest" / "keep_all".
std::string to_string(ComponentPolicy policy);

/// How an end without a tendon or a cut face is found: `bone` (where the muscle meets the bone
/// nearest to that end, else the end cap) or `end_cap` (always the end cap).
enum class AttachmentRule { bone, end_cap };

/// "bone" / "end_cap".
std::string to_string(AttachmentRule rule);

/// Defaults of the attachment parameters below (defined with the code, in the .cpp).
double default_attachment_min_m2();
double default_attachment_gap_m();

/// Parameters of the muscle geometry (config section `muscle_geometry`; keys in mm).
struct MuscleGeometryParams {
  /// Step of the cross-sectional area profile along the principal axis [m]
  /// (key `profile_step_mm`, default 2 mm).
  double profile_step_m = 0.002;
  /// Pieces kept (key `components`: "keep_largest" (default) or "keep_all").
  ComponentPolicy components = ComponentPolicy::keep_largest;
  /// End-cap thickness as a fraction of the muscle length, used at an end without a tendon
  /// (key `cap_fraction`, default 0.05, in (0, 0.5)).
  double cap_fraction = 0.05;
  /// Lower bound of the end-cap thickness [m] (key `cap_min_mm`, default 2 mm).
  double cap_min_m = 0.002;
  /// Ends without a tendon or a cut face (key `attachment`: "bone" (default) or "end_cap").
  AttachmentRule attachment = AttachmentRule::bone;
  /// Smallest bone contact that makes an attachment [m^2] (key `attachment_min_mm2`, default
  /// 50 mm^2): a smaller contact (a corner touching a bone) leaves the end cap.
  double attachment_min_m2 = default_attachment_min_m2();
  /// A muscle voxel meets a bone when a bone voxel is among its 26 neighbours or its centre
  /// lies within this distance [m] of the bone voxel's (key `attachment_gap_mm`, default
  /// docs/parameters.md).
  double attachment_gap_m = default_attachment_gap_m();
};

/// Reads the `muscle_geometry` section: `profile_step_mm`, `components`, `cap_fraction`,
/// `cap_min_mm`, `attachment`, `attachment_min_mm2`. \throws BadInput for a wrong type or value.
MuscleGeometryParams read_muscle_geometry_params(ConfigReader& section);

/// How an end (origin or insertion) of a muscle was found.
enum class EndSource { tendon, end_cap, cut_face, bone };

/// "tendon" / "end_cap" / "cut_face" / "bone".
std::string to_string(EndSource source);

/// Geometry of one muscle label.
struct MuscleGeometry {
  std::int32_t label = 0; ///< the muscle's label
  std::string name;       ///< the muscle's name in the tissue table
  /// Linear voxel indices (LabelVolume::index) of the muscle after the component policy,
  /// increasing.
  std::vector<std::int64_t> voxels;
  /// Voxel count of each 6-connected component of the label, largest first (all components,
  /// before the policy).
  std::vector<std::int64_t> component_sizes;
  std::int64_t n_voxels_label = 0; ///< voxels of the label before the component policy
  double volume_m3 = 0.0;          ///< volume of `voxels` [m^3]
  Eigen::Vector3d centroid_m = Eigen::Vector3d::Zero(); ///< mean of voxel centres [m]
  /// Unit principal axis (direction of largest variance of the voxel centres), oriented from
  /// the origin towards the insertion.
  Eigen::Vector3d axis = Eigen::Vector3d::UnitZ();
  /// Principal variances of the voxel centres, decreasing [m^2].
  Eigen::Vector3d principal_variances_m2 = Eigen::Vector3d::Zero();
  double axis_min_m = 0.0; ///< smallest projection (x - centroid) . axis of a voxel centre [m]
  double axis_max_m = 0.0; ///< largest projection of a voxel centre [m]
  /// Length along the axis: extent of the voxel-centre projections plus the extent of one voxel
  /// projected on the axis [m].
  double length_m = 0.0;
  /// Positions of the area profile along the axis, relative to the centroid [m] (#profile).
  Eigen::VectorXd profile_s_m;
  /// Cross-sectional area at each profile position [m^2] (#profile): voxel volume in a slab of
  /// width max(step, voxel extent along the axis) divided by the slab width.
  Eigen::VectorXd profile_area_m2;
  std::vector<std::int64_t> origin_voxels;      ///< linear indices of the origin region, increasing
  std::vector<std::int64_t> insertion_voxels;   ///< ... of the insertion region, increasing
  EndSource origin_source = EndSource::end_cap; ///< how the origin was found
  EndSource insertion_source = EndSource::end_cap; ///< how the insertion was found
  std::vector<std::string> origin_tendons;         ///< names of the tendons forming the origin
  std::vector<std::string> insertion_tendons;      ///< names of the tendons forming the insertion
  std::string origin_bone;    ///< the bone of a `bone` origin (empty for other sources)
  std::string insertion_bone; ///< the bone of a `bone` insertion
  /// Area of the origin region [m^2]: its voxel count times the voxel's mean face area.
  double origin_area_m2 = 0.0;
  double insertion_area_m2 = 0.0; ///< area of the insertion region [m^2], the same way
};

/// Computes the geometry of the muscle with `label`.
///
/// Origin and insertion: the tendons of the table whose `muscle` is this muscle's name and that
/// touch it. A tendon whose name contains "proximal" or "origin" is an origin tendon, one with
/// "distal" or "insertion" an insertion tendon; any other is assigned to the end of the
/// principal axis its contact region is nearer to. An end without a tendon (or cut face, below)
/// is, with the `bone` rule, where the muscle meets the bone nearest to that end: the muscle
/// voxels of that end's half along the axis (origin: below the middle of the axial extent,
/// insertion: from it) that touch (26-neighbourhood) a voxel of a bone class; of the bones whose
/// contact in that half is at least attachment_min in area (voxels times the mean face area),
/// the one whose contact reaches furthest towards the end (ties: the larger contact). Without
/// such a bone, or with the `end_cap` rule, the end is the end cap of the muscle along the
/// principal axis (thickness max(cap_fraction * length, cap_min, one voxel)).
/// The axis is oriented from origin to insertion; with caps at both ends, so that its
/// largest-magnitude component is positive, the origin being at the lower end.
/// A muscle without tendons that the field of view cuts (at least 4 of its voxels on a face of
/// the volume) takes its ends from the cut: with two such faces, origin and insertion are its
/// voxels on the two faces holding most of them and the axis runs from the centroid of one to
/// that of the other (never the PCA of the cut piece); with one, that face is one end (the one
/// its side of the principal axis gives) and an end cap the other. Such ends are `cut_face`.
/// \throws BadInput (naming the muscle, the value and the expectation) when the label is not a
/// muscle of the table, has no voxels, is thinner than two voxels everywhere (no 2x2x2 block),
/// or its origin and insertion share voxels or are empty.
MuscleGeometry compute_muscle_geometry(const LabelVolume& volume, const TissueTable& table,
                                       std::int32_t label, const MuscleGeometryParams& params);

} // namespace myotwin::anatomy
