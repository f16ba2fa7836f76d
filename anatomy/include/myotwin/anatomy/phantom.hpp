#pragma once
/// \file phantom.hpp
/// A procedural forearm: a realistic label volume that the project generates itself, used as
/// the sample subject and in tests. Elliptic cross-section tapering from the elbow to the
/// wrist; skin, subcutaneous fat thicker on the flexor side, radius and ulna, named forearm
/// muscles whose cross-sections change along the length, and a tendon at both ends of each
/// muscle. The same parameters and seed give the same volume, bit for bit.
///
/// Frame (LPS, metres): a right forearm in the anatomical position (palm forward). The limb axis
/// is the physical z axis (x = y = 0); the elbow (proximal) is at z = +length/2, the wrist at
/// z = -length/2, and `s` below is the distance from the elbow, s = length/2 - z. The radial
/// (lateral, thumb) side is towards -x (the patient's right), the ulnar (medial) side towards +x,
/// the flexor (anterior, volar) side towards -y and the extensor (posterior, dorsal) side
/// towards +y. The image has identity direction and is centred on the limb; a slice belongs to
/// the limb when its centre has |z| <= length/2, and `margin` of background surrounds the limb
/// on every side, so the two cut faces of the segment (elbow and wrist) touch background.
///
/// Grid: 0.5 mm across the limb, so that the 1.2 mm skin is 2-3 voxels thick and closed, and
/// the 2-6 mm fat 4-12 voxels; 1 mm along the limb, where nothing is thin (about 7 million
/// voxels). A voxel gets the label of the tissue at its centre.
///
/// Cross-section at s: the outer ellipse has semi-axes a(s) (x) and b(s) (y), tapering linearly
/// from the elbow to the wrist. The depth of a point below the surface is measured along the ray
/// from the limb axis: d = R (1 - rho), with rho = sqrt((x/a)^2 + (y/b)^2) and R the distance
/// from the axis to the surface along that ray. Skin is d < skin thickness; subcutaneous fat is
/// the next fat_thickness_m(s, angle) (6 mm on the flexor side, 2 mm on the extensor side by
/// default, varying smoothly with the angle, with a seeded jitter). Inside, in this order of
/// precedence: the radius and the ulna (ellipses whose centres and semi-axes are fixed fractions
/// of a(s) and b(s), the radius widening towards the wrist and the ulna towards the elbow),
/// tendons (small ellipses of fixed size in mm along each muscle's centre line beyond, and
/// 2 % of the length into, its belly), muscle bellies, and intermuscular fat. A muscle belly is
/// an ellipse in the normalised coordinates (x/a, y/b) whose size follows a belly profile along
/// the muscle (largest at a muscle-specific point, shrinking to its tendons' size at both ends);
/// where bellies overlap, the point goes to the muscle in whose ellipse it lies deepest
/// (smallest normalised distance), and a point in no ellipse is intermuscular fat. Finally, any
/// piece of a muscle or tendon label that is not face-connected to the label's largest piece (a
/// speck where a belly tapers around its tendon) takes the most common neighbouring muscle,
/// tendon or intermuscular label, so that every muscle and tendon is one 6-connected piece.
///
/// Jitter (`variability` v, drawn from Rng(seed)): the fat thickness is scaled by 1 + v J with
/// J a smooth function of the angle and s, |J| <= 1; each muscle's centre line is shifted by up
/// to v/4 (normalised), its belly semi-axes scaled by 1 +- v and its belly ends moved by up to
/// v/10 of the length. Bones and the outline do not vary.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/tissue_table.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::anatomy {

/// Parameters of the procedural forearm (config section `phantom`; keys in mm).
struct PhantomParams {
  double length_m = 0.240;          ///< elbow to wrist
  double elbow_width_m = 0.080;     ///< medio-lateral outer diameter at the elbow
  double elbow_depth_m = 0.070;     ///< antero-posterior outer diameter at the elbow
  double wrist_width_m = 0.055;     ///< ... at the wrist
  double wrist_depth_m = 0.040;     ///< ... at the wrist
  double skin_thickness_m = 0.0012; ///< skin layer
  double fat_flexor_m = 0.006;      ///< subcutaneous fat on the flexor (anterior) side
  double fat_extensor_m = 0.002;    ///< subcutaneous fat on the extensor (posterior) side
  double voxel_inplane_m = 0.0005;  ///< voxel size across the limb
  double voxel_axial_m = 0.001;     ///< voxel size along the limb
  double margin_m = 0.004;          ///< background around the limb
  double variability = 0.08;        ///< relative random jitter of muscle sizes and positions
  std::uint64_t seed = 1993;        ///< seed of the jitter
};

/// Reads the `phantom` section: `length_mm`, `elbow_width_mm`, `elbow_depth_mm`, `wrist_width_mm`,
/// `wrist_depth_mm`, `skin_thickness_mm`, `fat_flexor_mm`, `fat_extensor_mm`,
/// `voxel_inplane_mm`, `voxel_axial_mm`, `margin_mm` (all in mm) and `variability`, each
/// optional with the default of PhantomParams; `seed` is the run's seed. \throws BadInput naming
/// the key for a value out of range or inconsistent with the others (e.g. fat that leaves no
/// room for the bones, voxels too coarse for the skin).
PhantomParams read_phantom_params(ConfigReader& section, std::uint64_t seed);

/// Labels of the phantom. Muscle i (in the order of ForearmPhantomGeometry::muscles()) has label
/// first_muscle + i, its proximal tendon first_proximal_tendon + i and its distal tendon
/// first_distal_tendon + i.
namespace phantom_label {
constexpr std::int32_t skin = 1;                   ///< "skin", class skin
constexpr std::int32_t subcutaneous_fat = 2;       ///< "subcutaneous_fat", class fat
constexpr std::int32_t radius = 3;                 ///< "radius", class bone
constexpr std::int32_t ulna = 4;                   ///< "ulna", class bone
constexpr std::int32_t intermuscular_fat = 5;      ///< "intermuscular_fat", class fat
constexpr std::int32_t first_muscle = 10;          ///< muscles: 10, 11, ... (class muscle)
constexpr std::int32_t first_proximal_tendon = 40; ///< "<muscle>_tendon_proximal", class tendon
constexpr std::int32_t first_distal_tendon = 60;   ///< "<muscle>_tendon_distal", class tendon
} // namespace phantom_label

/// An ellipse in a cross-section of the phantom, with axes along x and y [m].
struct SectionEllipse {
  double centre_x_m = 0.0;
  double centre_y_m = 0.0;
  double semi_x_m = 0.0;
  double semi_y_m = 0.0;
  /// True if (x, y) [m] lies inside or on the ellipse.
  [[nodiscard]] bool contains(double x_m, double y_m) const;
  /// pi * semi_x * semi_y [m^2].
  [[nodiscard]] double area_m2() const;
};

/// A muscle of the phantom and where it lies along the limb (distances s from the elbow [m]).
/// The proximal tendon spans [proximal_tendon_start_m, belly_start_m], the belly
/// [belly_start_m, belly_end_m] and the distal tendon [belly_end_m, distal_tendon_end_m]; each
/// tendon also reaches 2 % of the length into the belly, inside the muscle.
struct PhantomMuscle {
  std::string name;      ///< abbreviation, also the tissue name, e.g. "FCR"
  std::string full_name; ///< e.g. "flexor carpi radialis"
  std::int32_t label = 0;
  std::int32_t proximal_tendon_label = 0;
  std::int32_t distal_tendon_label = 0;
  double proximal_tendon_start_m = 0.0;
  double belly_start_m = 0.0;
  double belly_end_m = 0.0;
  double distal_tendon_end_m = 0.0;
};

struct Phantom;

/// The analytic geometry that generate_forearm_phantom() voxelises, with the seeded jitter of
/// `params` applied (see the file comment). Tests compare the voxel volumes with it.
class ForearmPhantomGeometry {
public:
  /// \throws BadInput for inconsistent parameters (naming the `phantom` key).
  explicit ForearmPhantomGeometry(const PhantomParams& params);

  [[nodiscard]] const PhantomParams& params() const;
  /// Outer semi-axes (a along x, b along y) at distance `s_m` from the elbow [m].
  [[nodiscard]] std::pair<double, double> outer_semi_axes(double s_m) const;
  /// Subcutaneous fat thickness below the skin along the ray at `angle_rad` (from +x towards
  /// +y, i.e. atan2(y, x)) at distance `s_m` from the elbow [m].
  [[nodiscard]] double fat_thickness_m(double s_m, double angle_rad) const;
  /// The radius (bone) in the cross-section at `s_m` [m].
  [[nodiscard]] SectionEllipse radius_section(double s_m) const;
  /// The ulna in the cross-section at `s_m` [m].
  [[nodiscard]] SectionEllipse ulna_section(double s_m) const;
  /// The muscles, in label order.
  [[nodiscard]] const std::vector<PhantomMuscle>& muscles() const;
  /// The label at physical point (x, y) [m] of the cross-section at `s_m` from the elbow
  /// (0 outside the limb, and for s outside [0, length]), before detached specks are removed.
  [[nodiscard]] std::int32_t label_at(double x_m, double y_m, double s_m) const;
  /// The tissue table of the labels (conductivities: default_conductivity() of each class).
  [[nodiscard]] TissueTable tissue_table() const;

  struct Impl;

private:
  friend Phantom generate_forearm_phantom(const PhantomParams& params);
  std::shared_ptr<const Impl> impl_;
};

/// A generated subject: labels, its tissue table, and the muscles it contains.
struct Phantom {
  LabelVolume volume;
  TissueTable tissues;
  std::vector<PhantomMuscle> muscles; ///< as ForearmPhantomGeometry::muscles()
};

/// Generates the forearm (OpenMP over slices; the same volume for any thread count).
/// \throws BadInput for inconsistent parameters.
Phantom generate_forearm_phantom(const PhantomParams& params);

/// Outer semi-axes (medio-lateral a, antero-posterior b) of the limb at position `z_m` from the
/// elbow [m] (linear taper), exposed so that tests can compare with analytic areas.
std::pair<double, double> phantom_outer_semi_axes(const PhantomParams& params, double z_m);

} // namespace myotwin::anatomy
