#pragma once
/// \file infinite_medium.hpp
/// Analytical volume conductor: point current sources in an infinite homogeneous medium,
/// isotropic or transversely anisotropic (conductivity sigma_l along the local fibre direction,
/// sigma_t across), optionally bounded by an insulating plane (method of images). Closed forms
/// from REFERENCE_VALUES.md:
///
///   isotropic:    phi = I / (4 pi sigma r)
///   anisotropic:  phi = I / (4 pi sqrt(det Sigma) sqrt(x^T Sigma^-1 x))
///                     = I / (4 pi sigma_t sqrt(sigma_l) sqrt(r_t^2 / sigma_t + z^2 / sigma_l))
///
/// with z the component of x = field - source along the fibre and r_t the one across.

#include <optional>

#include <Eigen/Core>

namespace myotwin {
class ConfigReader;
}

namespace myotwin::forward {

/// A homogeneous, transversely anisotropic medium (config section `infinite_medium`).
struct AnisotropicMedium {
  /// Conductivity along the fibres [S/m] (key `sigma_l_S_per_m`, default 0.5, Farina, Mesin and
  /// Martina 2004).
  double sigma_l_S_per_m = 0.5;
  /// Conductivity across the fibres [S/m] (key `sigma_t_S_per_m`, default 0.1, same source).
  double sigma_t_S_per_m = 0.1;
  /// Smallest source-to-electrode distance [m] (key `r_min_um`, default 27.5 um, the radius of a
  /// 55 um fibre): closer electrodes see the source as if it were r_min away in the same
  /// direction (across the fibre when they coincide), so the potential stays finite.
  double r_min_m = 27.5e-6;
};

/// Reads AnisotropicMedium from a config section (keys `sigma_l_S_per_m`, `sigma_t_S_per_m`,
/// `r_min_um`, all > 0). \throws BadInput naming the key for a wrong type or non-positive value.
AnisotropicMedium read_anisotropic_medium(ConfigReader& section);

/// An insulating plane bounding a half-space conductor: a point on it [m] and its normal
/// pointing out of the conductor (into the insulator, e.g. air above the skin).
struct InsulatingPlane {
  Eigen::Vector3d point_m = Eigen::Vector3d::Zero();
  Eigen::Vector3d normal = Eigen::Vector3d::UnitZ();
};

/// Potential [V] at distance `r_m` [m] from a point current `current_A` [A] in an infinite
/// isotropic medium of conductivity `sigma_S_per_m` [S/m]: I / (4 pi sigma r). No regularisation.
double point_source_potential_isotropic_V(double current_A, double sigma_S_per_m,
                                          double r_m) noexcept;

/// Potential [V] of a point current `current_A` [A] in an infinite transversely anisotropic
/// medium, at offset `x_m` = field point - source [m], with unit fibre direction
/// `fibre_direction` (normalised here) and conductivities `sigma_l_S_per_m`, `sigma_t_S_per_m`
/// [S/m]. No regularisation (infinite at x = 0).
double point_source_potential_anisotropic_V(double current_A, const Eigen::Vector3d& x_m,
                                            const Eigen::Vector3d& fibre_direction,
                                            double sigma_l_S_per_m,
                                            double sigma_t_S_per_m) noexcept;

/// Transfer matrix from fibre sample points to electrodes: entry (i, j) is the potential at
/// electrode j per unit current leaving the fibre at point i [V/A], in the infinite
/// anisotropic `medium` (distances below medium.r_min_m regularised), plus, when `plane` is
/// given, the image of each source mirrored across the insulating plane (an insulated
/// half-space; exact when the fibre direction is parallel or normal to the plane, an
/// approximation otherwise; on the plane the potential doubles).
/// `points_m`: #points x 3 source positions [m]; `directions`: #points x 3 local fibre
/// directions, or 1 x 3 for one direction for all points (normalised here);
/// `electrodes_m`: #electrodes x 3 positions [m]. Returns #points x #electrodes [V/A]; use with
/// single_fibre_potentials(). Parallel over electrodes; results do not depend on the thread count.
/// \throws BadInput when `directions` has neither 1 nor #points rows, a direction is zero or not
/// finite, a conductivity or r_min is not > 0, the plane normal is zero, or a source lies outside
/// the conductor (more than 1 nm on the normal's side of the plane).
Eigen::MatrixXd infinite_medium_transfer(
    const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, 3>>& points_m,
    const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, 3>>& directions,
    const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, 3>>& electrodes_m,
    const AnisotropicMedium& medium, const std::optional<InsulatingPlane>& plane = std::nullopt);

} // namespace myotwin::forward
