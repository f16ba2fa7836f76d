#pragma once
/// \file fibres.hpp
/// Model fibres of a muscle traced along its fibre field.
///
/// Seeds: the iso-surface u = c of the field (c in [0.15, 0.85], the level set crossing the
/// most grid edges, i.e. about the largest, so seeds cover the belly of a muscle with narrow ends)
/// is projected on the seed plane (through the centre of the iso-surface, normal to the mean fibre
/// direction there); seeds are spread over that projected cross-section by Poisson-disk sampling
/// (Bridson 2007, seeded) at the model density, and lifted back onto the iso-surface along the
/// plane normal. Each fibre is traced both ways from its seed with classical RK4 (step <= a quarter
/// of the smallest voxel size) until u reaches 0 (origin) or 1 (insertion) or the nearest voxel is
/// an origin (insertion) voxel. The trace does not stop at the staircase voxel surface: u and
/// grad u are interpolated over the in-domain voxels among the 8 around a point (valid up to a
/// voxel outside), and near the smoothed wall (FibreField::wall) the direction loses its part
/// normal to the wall (progressively from wall level 0.95, about 1.6 voxels deep, fully at the
/// wall, 0.5), as the zero-flux condition asks; a trace outside both the wall and the voxels is
/// pulled back inside. A trace stops short (reaches_origin / reaches_insertion false) when no step
/// of h / 64 stays within a voxel of the domain, after 16 steps without progress in u, or after
/// 1.5 grid diagonals. Fibres are optionally extended straight to the muscle surface, resampled at
/// a fixed arc-length step, and run from the origin end to the insertion end.
///
/// Each model fibre stands for `weight` real fibres: weight = real density * section area /
/// number of fibres (about real density / model density), so that the weights sum to the
/// number of real fibres crossing the section.

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "myotwin/anatomy/fibre_field.hpp"
#include "myotwin/anatomy/muscle_geometry.hpp"
#include "myotwin/core/random.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::anatomy {

/// Parameters of fibre generation (config section `fibres`; keys with unit suffixes).
struct FibreParams {
  /// Model fibres per area of cross-section [1/m^2] (key `model_density_per_mm2`, default
  /// 2 per mm^2).
  double model_density_per_m2 = 2.0e6;
  /// Real fibres per area of cross-section [1/m^2] (key `real_density_per_mm2`, default
  /// 350 per mm^2; literature 200-400, REFERENCE_VALUES.md).
  double real_density_per_m2 = 350.0e6;
  /// RK4 step as a fraction of the smallest voxel size of the field grid (key `step_fraction`,
  /// default 0.25, at most 0.25).
  double step_fraction = 0.25;
  /// Arc-length step of the output polylines [m] (key `resample_step_mm`, default 0.5 mm).
  double resample_step_m = 0.0005;
  /// Mean end-plate position as a fraction of fibre length from the origin end (key
  /// `end_plate_fraction`, default 0.5).
  double end_plate_fraction = 0.5;
  /// Standard deviation of the end-plate position as a fraction of fibre length (key
  /// `end_plate_spread`, default 0.05, REFERENCE_VALUES.md).
  double end_plate_spread = 0.05;
  /// Continue each fibre straight from where u reaches 0 or 1 to the muscle surface, so that
  /// fibres end on the tendon (or the muscle's end) rather than at the centre of the last
  /// voxel layer (key `extend_to_surface`, default true).
  bool extend_to_surface = true;
  /// Candidates per active sample in Bridson's algorithm (key `poisson_attempts`, default 30).
  int poisson_attempts = 30;
  /// Fibres shorter than this fraction of the median fibre length are dropped (key
  /// `min_length_fraction`, default 0.1): stubs from seeds next to the voxel surface, whose
  /// trace leaves the muscle at once.
  double min_length_fraction = 0.1;
};

/// Reads the `fibres` section: `model_density_per_mm2`, `real_density_per_mm2`,
/// `step_fraction`, `resample_step_mm`, `end_plate_fraction`, `end_plate_spread`,
/// `extend_to_surface`, `poisson_attempts`, `min_length_fraction`. \throws BadInput for a wrong
/// type or value.
FibreParams read_fibre_params(ConfigReader& section);

/// One model fibre.
struct Fibre {
  /// Polyline from the origin end to the insertion end, #points x 3 [m]; consecutive points
  /// are `resample_step` apart along the arc, except the last segment (<= the step).
  Eigen::Matrix<double, Eigen::Dynamic, 3> points_m;
  double length_m = 0.0;    ///< arc length [m]
  double end_plate_m = 0.0; ///< arc length from the origin end to the end-plate [m]
  Eigen::Vector3d seed_m = Eigen::Vector3d::Zero();    ///< seed on the seed surface u = c [m]
  Eigen::Vector2d seed_2d_m = Eigen::Vector2d::Zero(); ///< seed in the section plane [m]
  double weight = 1.0;                                 ///< real fibres this model fibre stands for
  bool reaches_origin = false;    ///< the trace reached u = 0 (not stopped short)
  bool reaches_insertion = false; ///< the trace reached u = 1
  /// First point (origin end) [m].
  [[nodiscard]] Eigen::Vector3d origin_end_m() const { return points_m.row(0).transpose(); }
  /// Last point (insertion end) [m].
  [[nodiscard]] Eigen::Vector3d insertion_end_m() const {
    return points_m.row(points_m.rows() - 1).transpose();
  }
};

/// The fibres of one muscle and the section they were seeded on.
struct MuscleFibres {
  std::int32_t label = 0; ///< muscle label
  std::string name;       ///< muscle name
  std::vector<Fibre> fibres;
  /// Seed plane: a point on it (origin of the 2-D coordinates) [m], its unit normal (mean
  /// fibre direction on the seed surface) and two unit in-plane axes; seed_2d = ((x - c).e1, (x -
  /// c).e2).
  Eigen::Vector3d plane_centre_m = Eigen::Vector3d::Zero();
  Eigen::Vector3d plane_normal = Eigen::Vector3d::UnitZ();
  Eigen::Vector3d plane_e1 = Eigen::Vector3d::UnitX();
  Eigen::Vector3d plane_e2 = Eigen::Vector3d::UnitY();
  /// Area of the seed surface projected on the seed plane [m^2].
  double section_area_m2 = 0.0;
  double seed_level = 0.5; ///< the field value c of the seed surface
  /// Pixel size of the section raster in the plane [m].
  double section_pixel_m = 0.0;
  std::int64_t n_seeds_dropped = 0; ///< seeds that could not be lifted or traced
};

/// Generates the fibres of one muscle. `rng` is not advanced: seeds draw from rng.split(0),
/// fibre i's end-plate from rng.split(1).split(i); tracing runs in parallel over fibres (OpenMP)
/// and gives the same bits at any thread count.
/// \throws BadInput (naming the muscle and the value) when no seed can be placed (empty or
/// degenerate seed section) or for invalid parameters.
MuscleFibres generate_fibres(const FibreField& field, const MuscleGeometry& geometry,
                             const FibreParams& params, const Rng& rng);

} // namespace myotwin::anatomy
