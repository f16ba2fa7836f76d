// The parametric MUAP model against direct MUAPs of the same fibres: the conduction velocity as
// an exact time scaling, end-plate shifts on the grid, and an anatomy unit represented by its
// territory; bad parameters.

#include <chrono>
#include <cmath>
#include <iostream>

#include <gtest/gtest.h>

#include "myotwin/core/error.hpp"
#include "myotwin/forward/source/muap_model.hpp"
#include "test_support.hpp"

namespace mf = myotwin::forward;
namespace ma = myotwin::anatomy;

namespace {

/// A cylindrical muscle of radius 5 mm centred 9 mm below the plane y = 0, fibres along z
/// from -30 to 30 mm on a 0.5 mm grid, 4 real fibres each, end-plates at 30 mm +/- 1.5 mm
/// (a fixed pattern), diameter 50 um.
ma::MuscleFibres cylinder_muscle() {
  ma::MuscleFibres m;
  m.name = "cyl";
  for (int i = -10; i <= 10; ++i)
    for (int j = -10; j <= 10; ++j) {
      const double x = 0.5e-3 * i, y = 0.5e-3 * j;
      if (x * x + y * y > 25e-6)
        continue;
      ma::Fibre f;
      f.points_m.resize(121, 3);
      for (int p = 0; p <= 120; ++p)
        f.points_m.row(p) << x, y - 9e-3, -30e-3 + 0.5e-3 * p;
      f.length_m = 60e-3;
      f.end_plate_m = 30e-3 + 1.5e-3 * std::sin(7.0 * i + 3.0 * j);
      f.seed_2d_m << x, y;
      f.weight = 4.0;
      m.fibres.push_back(f);
    }
  return m;
}

ma::MotorUnitPool single_unit(const std::vector<std::int64_t>& members, std::size_t n_fibres,
                              double cv) {
  ma::MotorUnitPool pool;
  pool.units.resize(1);
  pool.units[0].fibres = members;
  pool.fibre_unit = Eigen::VectorXi::Zero(static_cast<Eigen::Index>(n_fibres));
  pool.fibre_cv_m_per_s = Eigen::VectorXd::Constant(static_cast<Eigen::Index>(n_fibres), cv);
  pool.fibre_diameter_m = Eigen::VectorXd::Constant(static_cast<Eigen::Index>(n_fibres), 50e-6);
  return pool;
}

Eigen::MatrixX3d electrodes() {
  Eigen::MatrixX3d e(6, 3);
  e << 0, 0, 5e-3, 0, 0, 12e-3, 0, 0, 20e-3, 4e-3, 0, 12e-3, -4e-3, 0, 25e-3, 0, 0, -15e-3;
  return e;
}

/// Relative RMS difference of `a` from `b` over the common samples.
double relative_error(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  const Eigen::Index n = std::min(a.rows(), b.rows());
  return (a.topRows(n) - b.topRows(n)).norm() / b.topRows(n).norm();
}

double correlation(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  const Eigen::Index n = std::min(a.rows(), b.rows());
  const Eigen::ArrayXXd x = a.topRows(n).array(), y = b.topRows(n).array();
  return (x * y).sum() / std::sqrt((x * x).sum() * (y * y).sum());
}

/// A coarser source than the default (0.25 mm, 0.1 ms) keeps the test fast; model and direct
/// MUAPs use the same.
mf::FibreSourceParams coarse_source() {
  mf::FibreSourceParams s;
  s.dz_m = 0.25e-3;
  s.dt_s = 0.1e-3;
  return s;
}

struct Fixture {
  ma::MuscleFibres fibres = cylinder_muscle();
  ma::MotorUnitPool pool = single_unit({}, fibres.fibres.size(), 4.0);
  Eigen::MatrixX3d el = electrodes();
  mf::TransferFunction transfer =
      mf::infinite_medium_transfer_function(el, mf::AnisotropicMedium{});
  mf::MuapModelParams params = [] {
    mf::MuapModelParams p;
    p.source = coarse_source();
    p.n_end_plate_shifts = 5;
    return p;
  }();
  mf::MuapModel model{fibres, pool, transfer, 6, params};
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

/// The fibres whose seeds fall in the 1 mm cell holding (x, y) (the model's rule: squares from
/// the lowest seed coordinates).
std::vector<std::int64_t> cell_members(const ma::MuscleFibres& m, double x, double y) {
  Eigen::Vector2d lo(1e9, 1e9);
  for (const auto& f : m.fibres)
    lo = lo.cwiseMin(f.seed_2d_m);
  const auto key = [&](const Eigen::Vector2d& p) {
    return std::make_pair(std::floor((p.x() - lo.x()) / 1e-3), std::floor((p.y() - lo.y()) / 1e-3));
  };
  const auto target = key(Eigen::Vector2d(x, y));
  std::vector<std::int64_t> members;
  for (std::size_t f = 0; f < m.fibres.size(); ++f)
    if (key(m.fibres[f].seed_2d_m) == target)
      members.push_back(static_cast<std::int64_t>(f));
  return members;
}

} // namespace

TEST(MuapModel, ConductionVelocityIsAnExactTimeScaling) {
  auto& fx = fixture();
  const auto members = cell_members(fx.fibres, 1.2e-3, 2.2e-3);
  ASSERT_GE(members.size(), 2U);
  Eigen::Vector2d centre = Eigen::Vector2d::Zero();
  double weight = 0.0;
  for (const auto f : members) {
    centre += 4.0 * fx.fibres.fibres[static_cast<std::size_t>(f)].seed_2d_m;
    weight += 4.0;
  }
  centre /= weight;
  mf::MuapParams direct;
  direct.fs_Hz = 2048.0;
  direct.source = coarse_source();
  for (const double cv : {3.0, 4.0, 5.2}) {
    const auto pool = single_unit(members, fx.fibres.fibres.size(), cv);
    const Eigen::MatrixXd reference = mf::unit_muap(fx.fibres, pool, 0, 6, fx.transfer, direct);
    mf::UnitParameters theta;
    theta.centre_m = centre;
    theta.radius_m = 1e-5; // this cell alone
    theta.n_fibres = weight;
    theta.end_plate_spread_m = 0.0;
    theta.cv_m_per_s = cv;
    const Eigen::MatrixXd model = fx.model.muap(theta);
    const double e = relative_error(model, reference);
    std::cout << "CV " << cv << " m/s: model vs direct relative RMS error " << e << "\n";
    EXPECT_LT(e, 0.02) << cv;
  }
}

TEST(MuapModel, EndPlateShiftOnTheGridMatchesShiftedFibres) {
  auto& fx = fixture();
  const auto members = cell_members(fx.fibres, -2.1e-3, 0.3e-3);
  ASSERT_GE(members.size(), 2U);
  ma::MuscleFibres shifted = fx.fibres;
  for (auto& f : shifted.fibres)
    f.end_plate_m += 4e-3;
  Eigen::Vector2d centre = Eigen::Vector2d::Zero();
  for (const auto f : members)
    centre += fx.fibres.fibres[static_cast<std::size_t>(f)].seed_2d_m;
  centre /= static_cast<double>(members.size());
  mf::MuapParams direct;
  direct.fs_Hz = 2048.0;
  direct.source = coarse_source();
  const auto pool = single_unit(members, fx.fibres.fibres.size(), 4.0);
  const Eigen::MatrixXd reference = mf::unit_muap(shifted, pool, 0, 6, fx.transfer, direct);
  mf::UnitParameters theta;
  theta.centre_m = centre;
  theta.radius_m = 1e-5;
  theta.n_fibres = 4.0 * static_cast<double>(members.size());
  theta.end_plate_shift_m = 4e-3; // two steps of 2 mm: on the grid
  theta.end_plate_spread_m = 0.0;
  const double e = relative_error(fx.model.muap(theta), reference);
  std::cout << "end-plate shift 4 mm: relative RMS error " << e << "\n";
  EXPECT_LT(e, 0.02);
  // Half-way between two shifts the model interpolates: a larger but bounded error.
  for (auto& f : shifted.fibres)
    f.end_plate_m -= 1e-3;
  theta.end_plate_shift_m = 3e-3;
  const double e_mid =
      relative_error(fx.model.muap(theta), mf::unit_muap(shifted, pool, 0, 6, fx.transfer, direct));
  std::cout << "end-plate shift 3 mm (between grid shifts): relative RMS error " << e_mid << "\n";
  EXPECT_LT(e_mid, 0.3);
}

TEST(MuapModel, AnatomyUnitIsRepresentedByItsTerritory) {
  auto& fx = fixture();
  // A pool on the same fibres: a unit of about 40 % of them around a centre off the axis.
  std::vector<std::int64_t> members;
  const Eigen::Vector2d centre(1.5e-3, 1.0e-3);
  const double radius = 2.5e-3;
  for (std::size_t f = 0; f < fx.fibres.fibres.size(); ++f)
    if ((fx.fibres.fibres[f].seed_2d_m - centre).norm() < radius)
      members.push_back(static_cast<std::int64_t>(f));
  auto pool = single_unit(members, fx.fibres.fibres.size(), 4.0);
  pool.units[0].territory_centre_m = centre;
  pool.units[0].territory_radius_m = radius;
  pool.units[0].cv_m_per_s = 4.0;
  mf::MuapParams direct;
  direct.fs_Hz = 2048.0;
  direct.source = coarse_source();
  const Eigen::MatrixXd reference = mf::unit_muap(fx.fibres, pool, 0, 6, fx.transfer, direct);
  const auto theta = fx.model.parameters_of(fx.fibres, pool, 0);
  EXPECT_DOUBLE_EQ(theta.n_fibres, 4.0 * static_cast<double>(members.size()));
  const auto start = std::chrono::steady_clock::now();
  const int n_eval = 200;
  Eigen::MatrixXd model;
  for (int k = 0; k < n_eval; ++k)
    model = fx.model.muap(theta);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
      n_eval;
  const double corr = correlation(model, reference);
  const double e = relative_error(model, reference);
  std::cout << "uniform disc unit (" << members.size() << " model fibres) vs Gaussian territory: "
            << "correlation " << corr << ", relative RMS error " << e << "; " << ms
            << " ms per MUAP (" << fx.model.n_cells() << " cells, 6 channels)\n";
  // The model's territory is a Gaussian (SD radius / 2), the unit a uniform disc: same centre
  // and fibre count, different spread, so shapes agree closely and amplitudes within ~25 %.
  EXPECT_GT(corr, 0.95);
  EXPECT_LT(e, 0.35);
}

TEST(MuapModel, BadParametersGiveClearMessages) {
  auto& fx = fixture();
  mf::UnitParameters theta;
  theta.cv_m_per_s = 0.0;
  myotwin::testing::expect_error<myotwin::BadInput>([&] { (void)fx.model.muap(theta); },
                                                    {"cv_m_per_s = 0 (expected finite and > 0)"});
  theta = {};
  theta.end_plate_spread_m = -1.0;
  myotwin::testing::expect_error<myotwin::BadInput>([&] { (void)fx.model.muap(theta); },
                                                    {"end_plate_spread_m = -1"});
  ma::MuscleFibres empty;
  empty.name = "none";
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { mf::MuapModel m(empty, fx.pool, fx.transfer, 6, fx.params); },
      {"muscle \"none\" has no fibres"});
}
