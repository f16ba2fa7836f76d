// Tests of the layered cylindrical volume conductor (Farina, Mesin, Martina and Merletti 2004):
// Bessel functions against <cmath>, the per-mode spectrum of a homogeneous cylinder in closed
// form, current conservation (the 1 / k^2 limit), the insulated half-space limit of a large
// cylinder (isotropic and anisotropic), scale invariance, table against direct evaluation, a MUAP
// of a straight fibre (amplitude, depth, CV by cross-correlation), and bad input.

#include <chrono>
#include <cmath>
#include <iostream>

#include <omp.h>

#include <Eigen/Dense>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "myotwin/anatomy/fibres.hpp"
#include "myotwin/anatomy/motor_units.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/forward/conductor/cylinder_conductor.hpp"
#include "myotwin/forward/conductor/infinite_medium.hpp"
#include "myotwin/forward/source/muap.hpp"
#include "xcorr.hpp"

namespace ma = myotwin::anatomy;
namespace mf = myotwin::forward;
using myotwin::testing::xcorr_delay_s;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// All layers isotropic with the same conductivity: a homogeneous insulated cylinder.
mf::CylinderLayers homogeneous(double sigma, double a, double b, double c, double R) {
  mf::CylinderLayers L;
  L.bone_radius_m = a;
  L.muscle_radius_m = b;
  L.fat_radius_m = c;
  L.skin_radius_m = R;
  L.sigma_bone_S_per_m = L.sigma_muscle_z_S_per_m = L.sigma_muscle_rho_S_per_m =
      L.sigma_fat_S_per_m = L.sigma_skin_S_per_m = sigma;
  return L;
}

/// Straight fibres along z at (x, y) positions, z in [0, length], one unit of all of them.
struct StraightUnit {
  ma::MuscleFibres fibres;
  ma::MotorUnitPool pool;
};

StraightUnit straight_unit(const std::vector<Eigen::Vector2d>& xy, double length_m,
                           double end_plate_m, double weight, double cv_m_per_s) {
  StraightUnit s;
  ma::MotorUnit u;
  const int n = static_cast<int>(std::round(length_m / 0.5e-3)) + 1;
  for (std::size_t f = 0; f < xy.size(); ++f) {
    ma::Fibre fibre;
    fibre.points_m.resize(n, 3);
    for (int k = 0; k < n; ++k) {
      fibre.points_m.row(k) << xy[f].x(), xy[f].y(), length_m * k / (n - 1);
    }
    fibre.length_m = length_m;
    fibre.end_plate_m = end_plate_m;
    fibre.weight = weight;
    s.fibres.fibres.push_back(fibre);
    u.fibres.push_back(static_cast<int>(f));
  }
  s.pool.units.push_back(u);
  const auto nf = static_cast<Eigen::Index>(xy.size());
  s.pool.fibre_unit = Eigen::VectorXi::Zero(nf);
  s.pool.fibre_cv_m_per_s = Eigen::VectorXd::Constant(nf, cv_m_per_s);
  s.pool.fibre_diameter_m = Eigen::VectorXd::Constant(nf, 55e-6);
  return s;
}

double peak_to_peak(const Eigen::VectorXd& v) {
  return v.maxCoeff() - v.minCoeff();
}

template <class F> std::string error_message(F&& f) {
  try {
    f();
  } catch (const myotwin::BadInput& e) {
    return e.what();
  }
  return "(no BadInput thrown)";
}

} // namespace

TEST(CylinderConductor, BesselLogsMatchCmath) {
  mf::BesselLogs b;
  double worst = 0.0;
  for (const double x : {1e-3, 0.05, 0.7, 3.0, 17.0, 60.0, 200.0}) {
    mf::log_bessel_ik(x, 30, b);
    for (int n = 0; n <= 30; ++n) {
      const double i_n = std::cyl_bessel_i(static_cast<double>(n), x);
      const double k_n = std::cyl_bessel_k(static_cast<double>(n), x);
      if (std::isfinite(i_n) && i_n > 1e-290 && i_n < 1e290) {
        worst = std::max(worst, std::abs(b.log_i[n] - std::log(i_n)) /
                                    std::max(1.0, std::abs(std::log(i_n))));
        const double di =
            0.5 * (std::cyl_bessel_i(std::abs(n - 1.0), x) + std::cyl_bessel_i(n + 1.0, x));
        worst = std::max(worst, std::abs(b.dlog_i[n] - di / i_n) / std::abs(di / i_n));
      }
      if (std::isfinite(k_n) && k_n > 1e-290 && k_n < 1e290) {
        worst = std::max(worst, std::abs(b.log_k[n] - std::log(k_n)) /
                                    std::max(1.0, std::abs(std::log(k_n))));
        const double dk =
            -0.5 * (std::cyl_bessel_k(std::abs(n - 1.0), x) + std::cyl_bessel_k(n + 1.0, x));
        worst = std::max(worst, std::abs(b.dlog_k[n] - dk / k_n) / std::abs(dk / k_n));
      }
    }
  }
  std::cout << "[ cylinder ] Bessel logs vs <cmath>: worst relative difference " << worst << "\n";
  EXPECT_LT(worst, 1e-10);
  // Beyond <cmath>'s range: finite, and I_n K_n -> 1 / (2 x) for x >> n.
  mf::log_bessel_ik(5000.0, 20, b);
  EXPECT_NEAR(std::exp(b.log_i[3] + b.log_k[3]) * 2.0 * 5000.0, 1.0, 1e-3);
  mf::log_bessel_ik(1e-6, 300, b);
  EXPECT_TRUE(std::isfinite(b.log_i[300]) && std::isfinite(b.log_k[300]));
  // I_n(x) K_n(x) -> 1 / (2 n) for x -> 0.
  EXPECT_NEAR(std::exp(b.log_i[300] + b.log_k[300]) * 600.0, 1.0, 1e-6);
}

TEST(CylinderConductor, SpectrumOfHomogeneousCylinderMatchesClosedForm) {
  // Homogeneous isotropic cylinder of radius R: G_n(R; k) = I_n(k r0) / (sigma k R I_n'(k R))
  // (Wronskian of I_n, K_n), whatever the (fictitious) layer radii.
  const double sigma = 0.3, R = 24e-3, r0 = 15e-3;
  const auto L = homogeneous(sigma, 7e-3, 20e-3, 23e-3, R);
  double worst = 0.0;
  for (const double k : {5.0, 40.0, 150.0, 600.0}) {
    const Eigen::VectorXd g = mf::cylinder_skin_spectrum(L, r0, k, 12);
    for (int n = 0; n <= 12; ++n) {
      const double dI =
          0.5 * (std::cyl_bessel_i(std::abs(n - 1.0), k * R) + std::cyl_bessel_i(n + 1.0, k * R));
      const double expected =
          std::cyl_bessel_i(static_cast<double>(n), k * r0) / (sigma * k * R * dI);
      worst = std::max(worst, std::abs(g[n] - expected) / std::abs(expected));
    }
  }
  std::cout << "[ cylinder ] homogeneous spectrum vs closed form: worst relative error " << worst
            << "\n";
  EXPECT_LT(worst, 1e-9);

  // Anisotropic muscle filling the cylinder (bone of 0.05 mm, fat and skin 1 um thick):
  // G_n = I_n(l k r0) / (sigma_rho l k b I_n'(l k b)), l = sqrt(sigma_z / sigma_rho).
  mf::CylinderLayers A = homogeneous(0.1, 0.05e-3, 20e-3, 20.001e-3, 20.002e-3);
  A.sigma_muscle_z_S_per_m = 0.5;
  const double lam = std::sqrt(5.0);
  double worst_a = 0.0;
  for (const double k : {5.0, 40.0, 150.0}) {
    const Eigen::VectorXd g = mf::cylinder_skin_spectrum(A, r0, k, 8);
    for (int n = 0; n <= 8; ++n) {
      const double x = lam * k * 20e-3;
      const double dI =
          0.5 * (std::cyl_bessel_i(std::abs(n - 1.0), x) + std::cyl_bessel_i(n + 1.0, x));
      const double expected =
          std::cyl_bessel_i(static_cast<double>(n), lam * k * r0) / (0.1 * x * dI);
      worst_a = std::max(worst_a, std::abs(g[n] - expected) / std::abs(expected));
    }
  }
  std::cout << "[ cylinder ] anisotropic homogeneous spectrum (thin bone, fat, skin): worst "
            << "relative error " << worst_a << "\n";
  EXPECT_LT(worst_a, 1e-3);
}

TEST(CylinderConductor, ConservesCurrentAlongTheAxis) {
  // As k -> 0 the n = 0 mode carries the source's current along the insulated cylinder:
  // k^2 G_0 -> 2 pi / Sigma with Sigma the axial conductance of the layered cross-section.
  const mf::CylinderLayers L;
  const double sigma_axial = mf::cylinder_axial_conductance_S_m(L);
  for (const double r0 : {8e-3, 14e-3, 19.5e-3}) {
    const double k = 0.01 / L.skin_radius_m;
    const Eigen::VectorXd g = mf::cylinder_skin_spectrum(L, r0, k, 0);
    const double ratio = k * k * g[0] * sigma_axial / (2.0 * M_PI);
    std::cout << "[ cylinder ] r0 = " << r0 * 1e3 << " mm: k^2 G_0 Sigma / (2 pi) = " << ratio
              << " at k = " << k << " rad/m\n";
    EXPECT_NEAR(ratio, 1.0, 1e-3);
  }
}

TEST(CylinderConductor, LargeCylinderApproachesInsulatedHalfSpace) {
  // Radius 200 mm, source 4 mm under the surface: near the source the surface is locally a plane
  // and the potential is twice the infinite-medium value (image source), up to a constant (the
  // potential is defined up to one). Compare differences against the point right above.
  const double R = 0.2, h = 4e-3, r0 = R - h;
  const auto t0 = std::chrono::steady_clock::now();
  for (const bool anisotropic : {false, true}) {
    mf::CylinderLayers L = homogeneous(0.2, 0.05, r0 + 0.5e-3, R - 1e-6, R);
    if (anisotropic) {
      // muscle 0.5 / 0.1 up to the surface; fat and skin 1 um thin (negligible)
      L = homogeneous(0.1, 0.05, R - 2e-6, R - 1e-6, R);
      L.sigma_muscle_z_S_per_m = 0.5;
    }
    const double sz = L.sigma_muscle_z_S_per_m, sr = L.sigma_muscle_rho_S_per_m;
    // offsets along z and around (arc s = R dtheta, chord ~ s)
    const std::vector<std::pair<double, double>> offsets = {{0.0, 0.0},   {0.0, 3e-3}, {0.0, 6e-3},
                                                            {0.0, 10e-3}, {3e-3, 0.0}, {6e-3, 0.0}};
    Eigen::VectorXd dth(offsets.size()), dz(offsets.size());
    for (std::size_t i = 0; i < offsets.size(); ++i) {
      dth[i] = offsets[i].first / R;
      dz[i] = offsets[i].second;
    }
    const Eigen::VectorXd phi = mf::cylinder_skin_potential_V(L, r0, dth, dz);
    auto half_space = [&](std::size_t i) {
      const double s = offsets[i].first, z = offsets[i].second;
      // electrode on the cylinder: across offset R sin(dtheta), depth R cos(dtheta) - r0
      const double x = R * std::sin(s / R), y = R * std::cos(s / R) - r0;
      const Eigen::Vector3d off(x, y, z);
      return 2.0 *
             mf::point_source_potential_anisotropic_V(1.0, off, Eigen::Vector3d::UnitZ(), sz, sr);
    };
    double worst = 0.0;
    for (std::size_t i = 1; i < offsets.size(); ++i) {
      const double got = phi[0] - phi[static_cast<Eigen::Index>(i)];
      const double expected = half_space(0) - half_space(i);
      const double rel = std::abs(got - expected) / std::abs(expected);
      worst = std::max(worst, rel);
      std::cout << "[ cylinder ] " << (anisotropic ? "anisotropic" : "isotropic")
                << " half-space limit, offset (" << offsets[i].first * 1e3 << " mm around, "
                << offsets[i].second * 1e3 << " mm along): phi(0) - phi = " << got << " V/A, image "
                << expected << " V/A (" << rel * 100 << " %)\n";
    }
    EXPECT_LT(worst, 0.03);
  }
  std::cout << "[ cylinder ] half-space checks took " << seconds_since(t0) << " s\n";
}

TEST(CylinderConductor, ScalesInverselyWithSizeAndConductivity) {
  // phi(s x; s geometry, c sigma) = phi(x) / (s c).
  const mf::CylinderLayers L;
  mf::CylinderLayers S = L;
  const double s = 2.5, c = 3.0;
  S.bone_radius_m *= s;
  S.muscle_radius_m *= s;
  S.fat_radius_m *= s;
  S.skin_radius_m *= s;
  S.sigma_bone_S_per_m *= c;
  S.sigma_muscle_z_S_per_m *= c;
  S.sigma_muscle_rho_S_per_m *= c;
  S.sigma_fat_S_per_m *= c;
  S.sigma_skin_S_per_m *= c;
  Eigen::VectorXd dth(3), dz(3);
  dth << 0.0, 0.2, 0.05;
  dz << 0.0, 5e-3, 20e-3;
  const Eigen::VectorXd p1 = mf::cylinder_skin_potential_V(L, 17e-3, dth, dz);
  const Eigen::VectorXd p2 = mf::cylinder_skin_potential_V(S, 17e-3 * s, dth, s * dz);
  for (Eigen::Index i = 0; i < 3; ++i) {
    EXPECT_NEAR(p2[i] * s * c, p1[i], 1e-9 * std::abs(p1[i]));
  }
}

TEST(CylinderConductor, DirectEvaluationConvergesWithTheGrids) {
  // Halving the k step and tightening the angular truncation 100-fold changes the potential by
  // much less than the stated 0.1 %; the Fourier part has decayed at the table's z_max.
  const mf::CylinderLayers L;
  Eigen::VectorXd dth(5), dz(5);
  dth << 0.0, 0.05, 0.2, 0.0, 0.0;
  dz << 0.0, 3e-3, 10e-3, 30e-3, 0.25;
  mf::CylinderParams fine;
  fine.k_step_factor = 0.5;
  fine.mode_tolerance = 1e-8;
  for (const double r0 : {19.9e-3, 15e-3}) {
    const Eigen::VectorXd p = mf::cylinder_skin_potential_V(L, r0, dth, dz);
    const Eigen::VectorXd q = mf::cylinder_skin_potential_V(L, r0, dth, dz, fine);
    const double scale = std::abs(q[0] - q[3]);
    const double change = (p - q).head(4).cwiseAbs().maxCoeff() / scale;
    // Fourier part at z = 0.25 m: potential minus the closed-form far field
    const double sigma_axial = mf::cylinder_axial_conductance_S_m(L);
    const double kappa = 1.0 / L.skin_radius_m;
    const double far = -(0.25 + std::exp(-kappa * 0.25) / kappa) / (2.0 * sigma_axial);
    const double tail = std::abs(q[4] - far) / scale;
    std::cout << "[ cylinder ] r0 = " << r0 * 1e3 << " mm: finer grids change phi by "
              << change * 100 << " %; Fourier part at dz = 250 mm " << tail * 100
              << " % of the potential range\n";
    EXPECT_LT(change, 1e-3);
    EXPECT_LT(tail, 1e-3);
  }
}

TEST(CylinderConductor, TableMatchesDirectEvaluation) {
  const mf::CylinderLayers L;
  const auto t0 = std::chrono::steady_clock::now();
  const mf::CylinderSkinTable table(L);
  const double build_s = seconds_since(t0);
  std::cout << "[ cylinder ] table " << table.n_radii() << " radii x " << table.n_theta()
            << " angles x " << table.n_z() << " dz, N = " << table.n_orders()
            << " orders, built in " << build_s << " s\n";
  double worst = 0.0;
  for (const double r0 : {19.9e-3, 18.3e-3, 15.1e-3, 9.7e-3}) {
    Eigen::VectorXd dth(7), dz(7);
    dth << 0.0, 0.013, 0.071, 0.33, 1.9, 0.0, 0.021;
    dz << 0.0, 1.3e-3, 4.7e-3, 0.4e-3, 11e-3, 37e-3, 0.11;
    const Eigen::VectorXd direct = mf::cylinder_skin_potential_V(L, r0, dth, dz);
    // scale: the potential range at this depth (right above minus far along the axis)
    const double scale = std::abs(direct[0] - direct[5]);
    for (Eigen::Index i = 0; i < dth.size(); ++i) {
      const double tab = table.potential_V(r0, dth[i], dz[i]);
      worst = std::max(worst, std::abs(tab - direct[i]) / scale);
    }
  }
  std::cout << "[ cylinder ] table vs direct: worst difference " << worst * 100
            << " % of the local potential range\n";
  EXPECT_LT(worst, 0.01);
}

TEST(CylinderConductor, MuapOfStraightUnitIsPlausible) {
  const mf::CylinderLayers L;
  const double R = L.skin_radius_m;
  // electrodes on the skin above the fibres (theta = 0), along z
  Eigen::MatrixX3d electrodes(3, 3);
  electrodes << R, 0.0, 60e-3, R, 0.0, 70e-3, R, 0.0, 80e-3;
  auto t0 = std::chrono::steady_clock::now();
  const mf::TransferFunction transfer = mf::cylinder_transfer_function(L, electrodes);
  const double build_s = seconds_since(t0);
  mf::MuapParams params;
  params.fs_Hz = 10240.0;
  const double cv = 4.0;
  std::vector<double> pp;
  for (const double depth : {4.5e-3, 7e-3, 10e-3}) {
    const double r0 = R - depth;
    // 10 model fibres of weight 10 (100 real fibres) in a 1 mm patch
    std::vector<Eigen::Vector2d> xy;
    for (int f = 0; f < 10; ++f) {
      const double ang = 0.6 * f, rad = 0.5e-3 * std::sqrt((f + 0.5) / 10.0);
      xy.emplace_back(r0 + rad * std::cos(ang) - 0.0, rad * std::sin(ang));
    }
    const StraightUnit u = straight_unit(xy, 120e-3, 30e-3, 10.0, cv);
    t0 = std::chrono::steady_clock::now();
    const Eigen::MatrixXd muap = mf::unit_muap(u.fibres, u.pool, 0, 3, transfer, params);
    const double muap_s = seconds_since(t0);
    ASSERT_TRUE(muap.allFinite());
    pp.push_back(peak_to_peak(muap.col(0)));
    const double delay = xcorr_delay_s(muap.col(0), muap.col(1), params.fs_Hz, 60);
    const double delay_sd =
        xcorr_delay_s(muap.col(1) - muap.col(0), muap.col(2) - muap.col(1), params.fs_Hz, 60);
    std::cout << "[ cylinder ] unit at " << depth * 1e3 << " mm under the skin: p-p "
              << pp.back() * 1e6 << " uV at z = 60 mm; CV monopolar " << 10e-3 / delay
              << " m/s, single differential " << 10e-3 / delay_sd << " m/s (set " << cv
              << "); MUAP " << muap_s * 1e3 << " ms, table " << build_s << " s\n";
    // Published surface MUAPs: about 20-70 uV peak-to-peak (REFERENCE_VALUES.md); this unit's
    // 100 fibres are packed in a 0.5 mm radius at the top of the muscle, hence the upper end.
    EXPECT_GT(pp.back(), 10e-6);
    EXPECT_LT(pp.back(), 250e-6);
    EXPECT_NEAR(10e-3 / delay_sd, cv, 0.05 * cv);
    if (depth < 5e-3) {
      EXPECT_NEAR(10e-3 / delay, cv, 0.05 * cv);
    }
  }
  EXPECT_GT(pp[0], 1.5 * pp[1]);
  EXPECT_GT(pp[1], 1.3 * pp[2]);
}

TEST(CylinderConductor, TableIsTheSameAtAnyThreadCount) {
  mf::CylinderParams coarse;
  coarse.table_n_radii = 6;
  coarse.table_step_factor = 3.0;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const mf::CylinderSkinTable one(mf::CylinderLayers{}, coarse);
  omp_set_num_threads(std::max(2, threads));
  const mf::CylinderSkinTable many(mf::CylinderLayers{}, coarse);
  omp_set_num_threads(threads);
  for (const double r0 : {7e-3, 12.3e-3, 19.99e-3}) {
    for (const double dz : {0.0, 2.1e-3, 40e-3}) {
      EXPECT_EQ(one.potential_V(r0, 0.07, dz), many.potential_V(r0, 0.07, dz));
    }
  }
}

TEST(CylinderConductor, RejectsBadInput) {
  mf::CylinderLayers L;
  L.fat_radius_m = 19e-3;
  EXPECT_NE(error_message([&] { mf::validate_cylinder_layers(L); }).find("fat_radius_m = 19 mm"),
            std::string::npos);
  L = mf::CylinderLayers{};
  L.sigma_muscle_rho_S_per_m = -0.1;
  EXPECT_NE(error_message([&] {
              mf::validate_cylinder_layers(L);
            }).find("sigma_muscle_rho_S_per_m = -0.1: must be finite and > 0"),
            std::string::npos);
  L = mf::CylinderLayers{};
  EXPECT_NE(error_message([&] {
              mf::cylinder_skin_spectrum(L, 21e-3, 10.0, 3);
            }).find("source radius 21 mm lies outside the muscle layer [7 mm, 20 mm]"),
            std::string::npos);
  Eigen::MatrixX3d e(1, 3);
  e << 23e-3, 0.0, 0.0;
  EXPECT_NE(error_message([&] {
              mf::cylinder_transfer_function(L, e);
            }).find("must be on the skin, radius 24 mm"),
            std::string::npos);
  mf::CylinderParams coarse;
  coarse.table_n_radii = 4;
  coarse.table_step_factor = 4.0;
  e << 0.0, 24e-3, 0.0;
  const mf::TransferFunction transfer = mf::cylinder_transfer_function(L, e, coarse);
  Eigen::MatrixX3d source(2, 3), dir(1, 3);
  source << 0.0, 15e-3, 0.0, 0.0, 21e-3, 5e-3;
  dir << 0.0, 0.0, 1.0;
  EXPECT_NE(error_message([&] { transfer(source, dir); })
                .find("source point 1 at (0 mm, 21 mm, 5 mm) has radius 21 mm: outside the muscle "
                      "layer [7 mm, 20 mm]"),
            std::string::npos);
  // config: strict keys, radii in mm, order checked
  nlohmann::json j = {{"bone_radius_mm", 7.0}, {"muscle_radius_mm", 6.0}};
  myotwin::ConfigReader cfg(j, "subject.json");
  EXPECT_NE(error_message([&] {
              mf::read_cylinder_layers(cfg);
            }).find("subject.json: muscle_radius_mm = 6"),
            std::string::npos);
  EXPECT_NE(error_message([&] {
              mf::read_cylinder_layers(cfg);
            }).find(": must be > bone_radius_mm = 7 (radii increase from bone to skin)"),
            std::string::npos);
  nlohmann::json ok = {
      {"fat_radius_mm", 25.0}, {"skin_radius_mm", 27.0}, {"sigma_fat_S_per_m", 0.05}};
  myotwin::ConfigReader cfg_ok(ok, "subject.json");
  const mf::CylinderLayers read = mf::read_cylinder_layers(cfg_ok);
  EXPECT_DOUBLE_EQ(read.fat_radius_m, 25e-3);
  EXPECT_DOUBLE_EQ(read.sigma_fat_S_per_m, 0.05);
  EXPECT_NO_THROW(cfg_ok.finish());
}
