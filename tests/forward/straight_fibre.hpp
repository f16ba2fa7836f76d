#pragma once
// A motor unit of one straight model fibre along z, for MUAP tests.

#include <cmath>

#include <Eigen/Core>

#include "myotwin/anatomy/fibres.hpp"
#include "myotwin/anatomy/motor_units.hpp"

namespace myotwin::testing {

/// One straight fibre and a pool of one unit that owns it.
struct StraightFibre {
  anatomy::MuscleFibres fibres;
  anatomy::MotorUnitPool pool;
};

/// A fibre along z through (x, y) from z0 to z0 + length [m], points 0.5 mm apart, end-plate at
/// arc length `end_plate_m` from its start, weight 1, CV 4 m/s, diameter 55 um.
inline StraightFibre straight_fibre(double x_m, double y_m, double z0_m, double length_m,
                                    double end_plate_m) {
  StraightFibre s;
  anatomy::Fibre f;
  const int n = static_cast<int>(std::round(length_m / 0.5e-3)) + 1;
  f.points_m.resize(n, 3);
  for (int k = 0; k < n; ++k)
    f.points_m.row(k) << x_m, y_m, z0_m + length_m * k / (n - 1);
  f.length_m = length_m;
  f.end_plate_m = end_plate_m;
  f.weight = 1.0;
  s.fibres.fibres.push_back(f);
  anatomy::MotorUnit u;
  u.fibres = {0};
  s.pool.units.push_back(u);
  s.pool.fibre_unit = Eigen::VectorXi::Zero(1);
  s.pool.fibre_cv_m_per_s = Eigen::VectorXd::Constant(1, 4.0);
  s.pool.fibre_diameter_m = Eigen::VectorXd::Constant(1, 55e-6);
  return s;
}

} // namespace myotwin::testing
