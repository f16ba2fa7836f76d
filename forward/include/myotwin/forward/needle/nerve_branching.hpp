#pragma once
/// \file nerve_branching.hpp
/// Two-layer terminal nerve branching of a motor unit (after Akhmadeev et al. 2020, IEEE TBME
/// 67:2005): the motor axon reaches the unit at its entry point, first-layer branches run at
/// the axon conduction velocity to the unit's branch points, and second-layer terminal branches
/// run at the (slower) terminal velocity from each branch point to the end-plates it serves.
///
/// Geometry. The 3-D end-plate points of the unit's fibres (each fibre's polyline at its
/// end-plate arc length) are clustered into n_b branch points by k-means (k-means++ seeding
/// from the unit's random stream, then Lloyd iterations in fixed order: deterministic), with
///
///     n_b = clamp(round(branches_per_sqrt_fibre * sqrt(#model fibres of the unit)), 1, #fibres),
///
/// so that both the number of branches and, through the territory size, the spread of the
/// branch points grow with unit size. The entry point is the weighted (Fibre::weight) centroid
/// of the end-plates shifted by entry_offset_m along the mean fibre direction towards the
/// origin end (proximally). Fibre i served by branch b(i) gets
///
///     delay_i = |entry - branch_b(i)| / axon_cv + |branch_b(i) - end_plate_i| / terminal_cv
///
/// minus the smallest such delay of the unit, so the earliest fibre starts at t = 0 (the
/// conduction time common to all fibres is absorbed in the unit's activation time).
/// With the defaults (5.0 and 2.0 m/s) the standard deviation of the delays is a few tenths of
/// a ms for small units and 0.7-1 ms for the largest territories (range 3-4 ms in a 20 mm
/// muscle with a +/- 5 mm end-plate band, tests/forward/test_nerve_branching.cpp): the end-plate
/// band along the fibres, not the territory, dominates the spread.

#include <cstddef>

#include <Eigen/Core>

#include "myotwin/anatomy/fibres.hpp"
#include "myotwin/anatomy/motor_units.hpp"
#include "myotwin/core/random.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::forward {

/// Parameters of the two-layer branching (config section `nerve_branching`).
struct NerveBranchingParams {
  /// Conduction velocity of the first layer, entry point to branch points [m/s] (key
  /// `axon_cv_m_per_s`, default 5.0, Akhmadeev et al. 2020).
  double axon_cv_m_per_s = 5.0;
  /// Conduction velocity of the terminal branches, branch point to end-plate [m/s] (key
  /// `terminal_cv_m_per_s`, default 2.0, Akhmadeev et al. 2020).
  double terminal_cv_m_per_s = 2.0;
  /// Branch points per square root of the unit's model-fibre count (key
  /// `branches_per_sqrt_fibre`, default 1.0; > 0).
  double branches_per_sqrt_fibre = 1.0;
  /// Shift of the entry point from the end-plate centroid towards the origin end [m] (key
  /// `entry_offset_mm`, default 0: the entry point at the centroid; >= 0).
  double entry_offset_m = 0.0;
  /// Lloyd iterations of the k-means at most (key `max_iterations`, default 50; >= 1).
  int max_iterations = 50;
  /// False: every delay is 0 (key `enabled`, default true).
  bool enabled = true;
};

/// Reads the `nerve_branching` section (keys above, all optional).
/// \throws BadInput naming the key for a wrong type or a value out of range.
NerveBranchingParams read_nerve_branching_params(ConfigReader& section);

/// The branching of one unit, with its geometry (for output and tests).
struct NerveBranching {
  /// Per fibre of the unit (order of units[unit].fibres): delay from the unit's activation to
  /// the start of that fibre's action potentials at its end-plate [s]; min 0.
  Eigen::VectorXd delays_s;
  /// Per fibre: index of its branch point (row of branch_points_m).
  Eigen::VectorXi branch;
  /// #branches x 3 branch points [m].
  Eigen::MatrixX3d branch_points_m;
  /// The entry point of the axon [m].
  Eigen::Vector3d entry_m = Eigen::Vector3d::Zero();
  /// #fibres x 3 end-plate points [m].
  Eigen::MatrixX3d end_plates_m;
};

/// The branching of unit `unit` of `pool` (see the file comment). The unit's random numbers
/// come from rng.split(unit) (rng is not advanced): the result depends only on the seed, the
/// unit and its fibres. \throws BadInput for a unit index out of range, a unit without fibres,
/// fibre indices outside `fibres`, a fibre polyline of fewer than two points, or parameters out
/// of range (velocities, branch factor and offset).
NerveBranching nerve_branching(const anatomy::MuscleFibres& fibres,
                               const anatomy::MotorUnitPool& pool, std::size_t unit,
                               const NerveBranchingParams& params, const Rng& rng);

/// Per fibre of pool.units[unit] (in the order of units[unit].fibres): the delay [s] from the
/// unit's activation to the start of that fibre's action potentials at its end-plate
/// (nerve_branching().delays_s; all zero when params.enabled is false). \throws as
/// nerve_branching().
Eigen::VectorXd nerve_branch_delays_s(const anatomy::MuscleFibres& fibres,
                                      const anatomy::MotorUnitPool& pool, std::size_t unit,
                                      const NerveBranchingParams& params, const Rng& rng);

} // namespace myotwin::forward
