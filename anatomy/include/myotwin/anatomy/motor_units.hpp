#pragma once
/// \file motor_units.hpp
/// The motor-unit pool of one muscle, built from the positions of its model fibres in the
/// muscle's cross-section: unit sizes and recruitment thresholds (exponential over the pool, as
/// in Fuglevand, Winter, Patla 1993), territories (well-spread centres, area proportional to
/// size, the largest about a quarter of the cross-section), the assignment of every fibre to one
/// unit (Gaussian territory profile, intermingling, represented fibre counts matching the unit
/// sizes) and per-fibre diameter and conduction velocity. A pure function of its inputs and the
/// seed: the same seed gives the same pool, at any thread count.

#include <cstdint>
#include <vector>

#include <Eigen/Core>

namespace myotwin {
class ConfigReader;
}

namespace myotwin::anatomy {

/// Parameters of a motor-unit pool. SI units; the config keys (read_motor_unit_params()) carry
/// their units as suffixes.
struct MotorUnitParams {
  /// Number of motor units. Per-muscle counts (tissue table or config) override this default;
  /// published forearm values are 150-420 (REFERENCE_VALUES).
  std::int64_t n_units = 100;
  /// Ratio of the largest to the smallest unit's fibre count; sizes are exponential over the
  /// recruitment order (Fuglevand 1993: twitch force range 100).
  double size_range = 100.0;
  /// Ratio of the last to the first recruitment threshold; thresholds are exponential over the
  /// pool (Fuglevand 1993: 30).
  double recruitment_range = 30.0;
  /// Recruitment threshold of the last unit as a fraction of the maximum excitation. Default
  /// 30 / 47: Fuglevand's last threshold (30) over the excitation at which that unit reaches its
  /// peak rate (30 + (25 - 8) pps / (1 pps per unit excitation)).
  double max_recruitment_threshold = 30.0 / 47.0;
  /// Territory area of the largest unit as a fraction of the cross-section area; the other
  /// territories scale with unit size.
  double largest_territory_fraction = 0.25;
  /// Mean conduction velocity over the units [m/s].
  double cv_mean_m_per_s = 4.0;
  /// Conduction velocity of the smallest unit, and lower bound of every fibre's [m/s].
  double cv_min_m_per_s = 3.0;
  /// Conduction velocity of the largest unit, and upper bound of every fibre's [m/s].
  double cv_max_m_per_s = 5.5;
  /// Mean over the units of the unit mean fibre diameter [m]. A unit's mean diameter is
  /// proportional to its conduction velocity (CV grows linearly with diameter).
  double fibre_diameter_mean_m = 50e-6;
  /// Standard deviation of fibre diameters within a unit whose mean diameter is
  /// fibre_diameter_mean_m [m]; scales with the unit's mean diameter (constant coefficient of
  /// variation), so it also grows with unit size.
  double fibre_diameter_sd_m = 5e-6;
  /// Intermingling: a fibre is not given to a unit that already owns one of its this many nearest
  /// neighbours (0 turns intermingling off).
  std::int64_t intermingling_neighbours = 4;
};

/// Reads MotorUnitParams from a config section (all keys optional, defaults as above):
/// `n_units`, `size_range`, `recruitment_range`, `max_recruitment_threshold`,
/// `largest_territory_fraction`, `cv_mean_m_per_s`, `cv_min_m_per_s`, `cv_max_m_per_s`,
/// `fibre_diameter_mean_um`, `fibre_diameter_sd_um`, `intermingling_neighbours`.
/// \throws BadInput naming the key and value when a value is out of range, or when
/// cv_min_m_per_s < cv_mean_m_per_s < cv_max_m_per_s does not hold.
MotorUnitParams read_motor_unit_params(ConfigReader& section);

/// One motor unit.
struct MotorUnit {
  /// Recruitment order (0 first): units are sorted by size and threshold, smallest first.
  std::int64_t index = 0;
  /// Target size: the number of real fibres the unit should have.
  double target_n_fibres = 0.0;
  /// Number of real fibres represented by the model fibres assigned to it (sum of their
  /// weights).
  double n_fibres = 0.0;
  /// Recruitment threshold, a fraction of the maximum excitation, in (0, 1].
  double recruitment_threshold = 0.0;
  /// Centre of the territory's Gaussian profile in the cross-section plane [m].
  Eigen::Vector2d territory_centre_m = Eigen::Vector2d::Zero();
  /// Target territory radius: sqrt(target area / pi) [m]; the profile's sd is half of it.
  double territory_radius_m = 0.0;
  /// Conduction velocity of the unit [m/s] (its fibres scatter around it with their diameters).
  double cv_m_per_s = 0.0;
  /// Mean fibre diameter of the unit [m].
  double fibre_diameter_m = 0.0;
  /// Indices (rows of the positions) of the model fibres of the unit, ascending.
  std::vector<std::int64_t> fibres;
};

/// The motor-unit pool of one muscle.
struct MotorUnitPool {
  /// Units in recruitment order.
  std::vector<MotorUnit> units;
  /// #fibres: the unit of each model fibre (an index into units).
  Eigen::VectorXi fibre_unit;
  /// #fibres: conduction velocity of each fibre [m/s], within [cv_min, cv_max].
  Eigen::VectorXd fibre_cv_m_per_s;
  /// #fibres: diameter of each fibre [m].
  Eigen::VectorXd fibre_diameter_m;
};

/// Builds the motor-unit pool of one muscle.
///
/// Algorithm:
/// 1. Sizes: unit i (recruitment order, i = 0..N-1) has target size proportional to
///    size_range^(i/(N-1)), scaled so the targets sum to the total weight (real fibres);
///    thresholds are max_recruitment_threshold * recruitment_range^(i/(N-1) - 1).
/// 2. Territory area = largest_territory_fraction * area * size / largest size; radius r =
///    sqrt(area / pi). Each unit's profile is a Gaussian of sd r/2 (whose covariance-based area
///    4 pi sqrt(det cov) equals pi r^2, like a uniform disc of radius r).
/// 3. Centres, largest unit first: among 24 seeded random fibre positions at least r from the
///    boundary of the cross-section (or, where none is, among the deepest tenth of positions),
///    the one where the sum of the profiles already placed is lowest (best-candidate sampling;
///    spreads the centres and evens out coverage). The boundary is that of the cells of a grid
///    (about 4 fibres per cell) that hold fibres, holes filled; depth is a Euclidean distance
///    transform of that grid.
/// 4. Assignment probabilities p(u | f) proportional to a_u * profile_u(x_f), with the unit
///    factors a_u found by iterative proportional fitting so that every unit's expected
///    represented count equals its target, and the profile widths calibrated (a few rounds) so
///    that every unit's expected territory area (4 pi sqrt(det C) of the p-weighted covariance)
///    equals its target despite the neighbouring territories and the boundary.
/// 5. Fibres are then assigned one by one in a seeded random order, each drawing its unit from
///    p(u | f) times (remaining capacity / remaining expected uptake) among the units with at
///    least half the fibre's weight of capacity left. A unit left without fibres takes the fibre
///    nearest its centre. The tail of the pass (fibres left to units that would draw them with
///    probability < 1e-3) is repaired by trading units with fibres of likelier units.
///    Intermingling: a fibre sharing its unit with one of its intermingling_neighbours nearest
///    neighbours (either way) trades units with one of its 12 nearest fibres when that lowers the
///    number of such pairs; the moves are a fibre spacing or two, so counts and territories keep
///    their shape. Trades never move a unit's represented count further from its target than half
///    a fibre's weight.
/// 6. Per fibre (an independent stream of the seed per fibre): diameter from a normal around the
///    unit's mean diameter, conduction velocity = unit CV * diameter / unit mean diameter,
///    redrawn until it lies in [cv_min, cv_max]. Unit CVs rise with size as cv_min + (cv_max -
///    cv_min) * (i/(N-1))^p with p chosen so that their mean is cv_mean (when reachable).
///
/// \param positions_m #fibres x 2 positions of the model fibres in the cross-section plane [m].
/// \param weights #fibres number of real fibres each model fibre stands for (> 0).
/// \param cross_section_area_m2 area of the muscle cross-section the positions sample [m^2].
/// \param params pool parameters.
/// \param seed seed of every random draw.
/// \throws BadInput when the pool cannot be built: fewer model fibres than units, weights or
/// positions not finite or weights <= 0, an area that is not positive or does not match the
/// extent of the positions, parameters out of range.
MotorUnitPool build_motor_unit_pool(const Eigen::Ref<const Eigen::MatrixX2d>& positions_m,
                                    const Eigen::Ref<const Eigen::VectorXd>& weights,
                                    double cross_section_area_m2, const MotorUnitParams& params,
                                    std::uint64_t seed);

} // namespace myotwin::anatomy
