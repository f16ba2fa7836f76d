#include "myotwin/forward/conductor/infinite_medium.hpp"

#include <cmath>
#include <sstream>
#include <string>

#include "myotwin/core/checks.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::forward {

namespace {

/// Potential per unit current [V/A] at offset x from the source, fibre direction f (unit),
/// regularised below r_min; `scale` = 1 / (4 pi sigma_t sqrt(sigma_l)).
double transfer_entry(const Eigen::Vector3d& x, const Eigen::Vector3d& f, double inv_sigma_l,
                      double inv_sigma_t, double r_min, double scale) {
  double z = x.dot(f);
  double r2 = x.squaredNorm();
  double rt2 = std::max(r2 - z * z, 0.0);
  if (r2 < r_min * r_min) {
    if (r2 > 0.0) {
      const double s2 = r_min * r_min / r2; // scale x to length r_min, same direction
      z *= std::sqrt(s2);
      rt2 *= s2;
    } else {
      z = 0.0; // coincident: across the fibre
      rt2 = r_min * r_min;
    }
  }
  return scale / std::sqrt(rt2 * inv_sigma_t + z * z * inv_sigma_l);
}

} // namespace

AnisotropicMedium read_anisotropic_medium(ConfigReader& section) {
  AnisotropicMedium m;
  m.sigma_l_S_per_m =
      section.optional<double>("sigma_l_S_per_m", m.sigma_l_S_per_m, positive(),
                               "conductivity along the fibres (Farina, Mesin and Martina 2004)");
  m.sigma_t_S_per_m =
      section.optional<double>("sigma_t_S_per_m", m.sigma_t_S_per_m, positive(),
                               "conductivity across the fibres (Farina, Mesin and Martina 2004)");
  m.r_min_m =
      units::um_to_m(section.optional<double>("r_min_um", units::m_to_um(m.r_min_m), positive(),
                                              "smallest source-to-electrode distance: closer ones "
                                              "count as this far, so potentials stay finite"));
  return m;
}

double point_source_potential_isotropic_V(double current_A, double sigma_S_per_m,
                                          double r_m) noexcept {
  return current_A / (4.0 * M_PI * sigma_S_per_m * r_m);
}

double point_source_potential_anisotropic_V(double current_A, const Eigen::Vector3d& x_m,
                                            const Eigen::Vector3d& fibre_direction,
                                            double sigma_l_S_per_m,
                                            double sigma_t_S_per_m) noexcept {
  const Eigen::Vector3d f = fibre_direction.normalized();
  const double z = x_m.dot(f);
  const double rt2 = std::max(x_m.squaredNorm() - z * z, 0.0);
  return current_A / (4.0 * M_PI * sigma_t_S_per_m * std::sqrt(sigma_l_S_per_m) *
                      std::sqrt(rt2 / sigma_t_S_per_m + z * z / sigma_l_S_per_m));
}

Eigen::MatrixXd infinite_medium_transfer(
    const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, 3>>& points_m,
    const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, 3>>& directions,
    const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, 3>>& electrodes_m,
    const AnisotropicMedium& medium, const std::optional<InsulatingPlane>& plane) {
  require_positive(medium.sigma_l_S_per_m, "infinite medium", "sigma_l_S_per_m");
  require_positive(medium.sigma_t_S_per_m, "infinite medium", "sigma_t_S_per_m");
  require_positive(medium.r_min_m, "infinite medium", "r_min_m");
  const Eigen::Index n_points = points_m.rows();
  const Eigen::Index n_electrodes = electrodes_m.rows();
  if (directions.rows() != 1 && directions.rows() != n_points) {
    throw BadInput("infinite_medium_transfer: directions has " + std::to_string(directions.rows()) +
                   " rows: must be 1 or the number of points (" + std::to_string(n_points) + ")");
  }
  Eigen::Matrix<double, Eigen::Dynamic, 3> unit_dirs(directions.rows(), 3);
  for (Eigen::Index i = 0; i < directions.rows(); ++i) {
    const double norm = directions.row(i).norm();
    if (!(norm > 0.0) || !std::isfinite(norm)) {
      throw BadInput("infinite_medium_transfer: directions row " + std::to_string(i) +
                     " has length " + format_number(norm) + ": must be finite and > 0");
    }
    unit_dirs.row(i) = directions.row(i) / norm;
  }
  Eigen::Vector3d normal = Eigen::Vector3d::Zero();
  Eigen::Vector3d plane_point = Eigen::Vector3d::Zero();
  if (plane) {
    const double norm = plane->normal.norm();
    if (!(norm > 0.0) || !std::isfinite(norm)) {
      throw BadInput("infinite_medium_transfer: insulating plane normal has length " +
                     format_number(norm) + ": must be finite and > 0");
    }
    normal = plane->normal / norm;
    plane_point = plane->point_m;
    for (Eigen::Index i = 0; i < n_points; ++i) {
      const double height_m = (points_m.row(i).transpose() - plane_point).dot(normal);
      if (height_m > 1e-9) {
        throw BadInput("infinite_medium_transfer: source point " + std::to_string(i) + " lies " +
                       format_number(height_m) +
                       " m outside the conductor (on the normal's side of the insulating "
                       "plane): must be inside");
      }
    }
  }

  const double inv_sigma_l = 1.0 / medium.sigma_l_S_per_m;
  const double inv_sigma_t = 1.0 / medium.sigma_t_S_per_m;
  const double scale =
      1.0 / (4.0 * M_PI * medium.sigma_t_S_per_m * std::sqrt(medium.sigma_l_S_per_m));
  const double r_min = medium.r_min_m;
  const bool one_direction = unit_dirs.rows() == 1;

  Eigen::MatrixXd transfer(n_points, n_electrodes);
#pragma omp parallel for schedule(static)
  for (Eigen::Index j = 0; j < n_electrodes; ++j) {
    const Eigen::Vector3d e = electrodes_m.row(j).transpose();
    // The image of a source mirrored across the plane, seen from e, equals the source seen from
    // e mirrored across the plane (for the mirrored medium).
    const Eigen::Vector3d e_mirror = e - 2.0 * (e - plane_point).dot(normal) * normal;
    for (Eigen::Index i = 0; i < n_points; ++i) {
      const Eigen::Vector3d p = points_m.row(i).transpose();
      const Eigen::Vector3d f = unit_dirs.row(one_direction ? 0 : i).transpose();
      double value = transfer_entry(e - p, f, inv_sigma_l, inv_sigma_t, r_min, scale);
      if (plane) {
        value += transfer_entry(e_mirror - p, f, inv_sigma_l, inv_sigma_t, r_min, scale);
      }
      transfer(i, j) = value;
    }
  }
  return transfer;
}

} // namespace myotwin::forward
