#pragma once
/// \file phantom.hpp
/// A procedural forearm: a realistic label volume that the project generates itself, used as
/// the sample subject and in tests. Elliptic cross-section tapering from the elbow to the
/// wrist; skin, subcutaneous fat thicker on the flexor side, radius and ulna, named forearm
/// muscles whose cross-sections change along the length, and a tendon at both ends of each
/// muscle. The same parameters and seed give the same volume, bit for bit.

#include <cstdint>
#include <string>
#include <vector>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/tissue_table.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::anatomy {

/// Parameters of the procedural forearm (config section `phantom`; keys in mm).
struct PhantomParams {
  double length_m = 0.240;              ///< elbow to wrist
  double elbow_width_m = 0.080;         ///< medio-lateral outer diameter at the elbow
  double elbow_depth_m = 0.070;         ///< antero-posterior outer diameter at the elbow
  double wrist_width_m = 0.055;         ///< ... at the wrist
  double wrist_depth_m = 0.040;         ///< ... at the wrist
  double skin_thickness_m = 0.0012;     ///< skin layer
  double fat_flexor_m = 0.006;          ///< subcutaneous fat on the flexor (anterior) side
  double fat_extensor_m = 0.002;        ///< subcutaneous fat on the extensor (posterior) side
  double voxel_inplane_m = 0.0005;      ///< voxel size across the limb
  double voxel_axial_m = 0.001;         ///< voxel size along the limb
  double margin_m = 0.004;              ///< background around the limb
  double variability = 0.08;            ///< relative random jitter of muscle sizes and positions
  std::uint64_t seed = 1993;            ///< seed of the jitter
};

/// Reads the `phantom` section (keys with mm units, e.g. `length_mm`). \throws BadInput.
PhantomParams read_phantom_params(ConfigReader& section, std::uint64_t seed);

/// A generated subject: labels, its tissue table, and descriptive text.
struct Phantom {
  LabelVolume volume;
  TissueTable tissues;
};

/// Generates the forearm. \throws BadInput for inconsistent parameters.
Phantom generate_forearm_phantom(const PhantomParams& params);

/// Outer semi-axes (medio-lateral a, antero-posterior b) of the limb at position `z_m` from the
/// elbow [m] (linear taper), exposed so that tests can compare with analytic areas.
std::pair<double, double> phantom_outer_semi_axes(const PhantomParams& params, double z_m);

} // namespace myotwin::anatomy
