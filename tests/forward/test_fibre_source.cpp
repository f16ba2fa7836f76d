// Tests of the fibre source (Rosenfalck action potential, finite-fibre currents) and of the
// infinite-medium point-source transfer.

#include <cmath>
#include <vector>

#include <Eigen/Dense>
#include <gtest/gtest.h>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/forward/conductor/infinite_medium.hpp"
#include "myotwin/forward/source/fibre_source.hpp"

namespace mf = myotwin::forward;
using Points = Eigen::Matrix<double, Eigen::Dynamic, 3>;

namespace {

/// Slope of the least-squares line through (x, y).
double fit_slope(const std::vector<double>& x, const std::vector<double>& y) {
  const auto n = static_cast<double>(x.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

/// Points of a straight fibre along z through (x, y) at the given arc lengths.
Points straight_fibre(const Eigen::VectorXd& s_m, double x_m, double y_m) {
  Points p(s_m.size(), 3);
  for (Eigen::Index k = 0; k < s_m.size(); ++k) {
    p.row(k) << x_m, y_m, s_m[k];
  }
  return p;
}

double peak_to_peak(const Eigen::MatrixXd& phi, Eigen::Index col) {
  return phi.col(col).maxCoeff() - phi.col(col).minCoeff();
}

} // namespace

TEST(Rosenfalck, PeaksAtPlus39mVThreeMillimetresBehindTheFront) {
  EXPECT_NEAR(mf::rosenfalck_vm_V(3e-3), 39.05e-3, 0.01e-3);
  EXPECT_DOUBLE_EQ(mf::rosenfalck_vm_V(-1e-3), -90e-3);
  EXPECT_DOUBLE_EQ(mf::rosenfalck_vm_V(0.0), -90e-3);
  // Maximum of a fine scan is at 3 mm.
  double best_z = 0, best_v = -1;
  for (int i = 0; i <= 20000; ++i) {
    const double z = i * 1e-6;
    if (mf::rosenfalck_vm_V(z) > best_v) {
      best_v = mf::rosenfalck_vm_V(z);
      best_z = z;
    }
  }
  EXPECT_NEAR(best_z, 3e-3, 1e-6);
  EXPECT_NEAR(mf::rosenfalck_dvm_dz_V_per_m(3e-3), 0.0, 1e-12);
}

TEST(Rosenfalck, FirstDerivativePeaksAtThreeMinusRootThreeMillimetres) {
  const double z_star = (3.0 - std::sqrt(3.0)) * 1e-3;
  EXPECT_NEAR(mf::rosenfalck_d2vm_dz2_V_per_m2(z_star), 0.0, 1e-9);
  double best_z = 0, best_d = -1;
  for (int i = 0; i <= 20000; ++i) {
    const double z = i * 1e-6;
    if (mf::rosenfalck_dvm_dz_V_per_m(z) > best_d) {
      best_d = mf::rosenfalck_dvm_dz_V_per_m(z);
      best_z = z;
    }
  }
  EXPECT_NEAR(best_z, z_star, 1e-6);
}

TEST(Rosenfalck, AnalyticDerivativesMatchFiniteDifferences) {
  const double h = 1e-7;
  for (double z : {0.3e-3, 1.0e-3, 2.5e-3, 4.0e-3, 7.0e-3}) {
    const double d1 = (mf::rosenfalck_vm_V(z + h) - mf::rosenfalck_vm_V(z - h)) / (2 * h);
    const double d2 =
        (mf::rosenfalck_dvm_dz_V_per_m(z + h) - mf::rosenfalck_dvm_dz_V_per_m(z - h)) / (2 * h);
    EXPECT_NEAR(d1, mf::rosenfalck_dvm_dz_V_per_m(z), 1e-6 * 100.0);
    EXPECT_NEAR(d2, mf::rosenfalck_d2vm_dz2_V_per_m2(z), 1e-6 * 1e5);
  }
  // i_m = sigma_i pi d^2 / 4 * d2Vm/dz2.
  const double d = 55e-6;
  EXPECT_DOUBLE_EQ(mf::rosenfalck_current_per_length_A_per_m(1e-3, 1.01, d),
                   1.01 * M_PI * d * d / 4.0 * mf::rosenfalck_d2vm_dz2_V_per_m2(1e-3));
}

TEST(FibreSource, NetCurrentIsZeroAtEveryInstantIncludingGenerationAndExtinction) {
  const mf::FibreGeometry1D g{60e-3, 25e-3, 55e-6, 4.0}; // off-centre end-plate
  const mf::FibreSourceParams p;
  const double duration_s = mf::fibre_source_duration_s(g);
  const auto fc = mf::fibre_current_density(g, p, duration_s);
  ASSERT_EQ(fc.current_A.rows(), fc.t_s.size());
  ASSERT_EQ(fc.current_A.cols(), fc.s_m.size());
  EXPECT_EQ(fc.s_m.size(), 600);
  const double max_abs = fc.current_A.cwiseAbs().maxCoeff();
  ASSERT_GT(max_abs, 0.0);
  double worst = 0.0;
  for (Eigen::Index i = 0; i < fc.current_A.rows(); ++i) {
    worst = std::max(worst, std::abs(fc.current_A.row(i).sum()) / max_abs);
  }
  std::printf("worst |net current| / max |I| over %d steps: %.3g\n",
              static_cast<int>(fc.current_A.rows()), worst);
  EXPECT_LT(worst, 1e-12);
  // The source is alive at generation (first steps) and during extinction at the near end
  // (z_e / CV = 6.25 ms): the rows there carry current.
  EXPECT_GT(fc.current_A.row(1).cwiseAbs().maxCoeff(), 0.01 * max_abs);
  const auto i_ext = static_cast<Eigen::Index>(std::round(7e-3 / p.dt_s));
  EXPECT_GT(fc.current_A.row(i_ext).cwiseAbs().maxCoeff(), 0.01 * max_abs);
  // At the end of the duration both waves are gone.
  EXPECT_LT(fc.current_A.bottomRows(1).cwiseAbs().maxCoeff(), 1e-9 * max_abs);
}

TEST(FibreSource, InteriorCurrentMatchesTheAnalyticMembraneCurrent) {
  const mf::FibreGeometry1D g{100e-3, 50e-3, 55e-6, 4.0};
  const mf::FibreSourceParams p;
  const double t = 5e-3; // right front at 70 mm
  const auto fc = mf::fibre_current_density(g, p, t);
  const Eigen::Index last = fc.current_A.rows() - 1;
  double max_err = 0.0, max_ref = 0.0;
  for (Eigen::Index k = 0; k < fc.s_m.size(); ++k) {
    const double s = fc.s_m[k];
    if (s < 55e-3) {
      continue; // away from the end-plate
    }
    const double ref = mf::rosenfalck_current_per_length_A_per_m(50e-3 + 4.0 * t - s,
                                                                 p.sigma_i_S_per_m, g.diameter_m) *
                       fc.dz_m;
    max_ref = std::max(max_ref, std::abs(ref));
    max_err = std::max(max_err, std::abs(fc.current_A(last, k) - ref));
  }
  EXPECT_LT(max_err / max_ref, 0.02);
}

TEST(FibreSource, BothWavesTravelAtTheConductionVelocity) {
  const double cv = 3.7; // the front moves 1.85 elements per step: sub-sample phases vary
  const mf::FibreGeometry1D g{120e-3, 60e-3, 55e-6, cv};
  const mf::FibreSourceParams p;
  const auto fc = mf::fibre_current_density(g, p, 12e-3);
  std::vector<double> t, right, left;
  const Eigen::Index n = fc.s_m.size();
  const Eigen::Index mid = n / 2;
  for (Eigen::Index i = 0; i < fc.t_s.size(); ++i) {
    if (fc.t_s[i] < 2e-3) {
      continue; // well away from the end-plate
    }
    // Peak of the positive lobe near each front, refined by a parabola through three samples.
    auto refine = [&](Eigen::Index k) {
      const double a = fc.current_A(i, k - 1), b = fc.current_A(i, k), c = fc.current_A(i, k + 1);
      return fc.s_m[k] + 0.5 * (a - c) / (a - 2 * b + c) * fc.dz_m;
    };
    // Search windows exclude 5 mm (50 elements) on each side of the end-plate, where the kink of
    // the symmetric profile carries the generation current.
    const Eigen::Index skip = 50;
    Eigen::Index kr = 0, kl = 0;
    fc.current_A.row(i).segment(mid + skip, n - mid - skip - 1).maxCoeff(&kr);
    fc.current_A.row(i).segment(1, mid - skip - 1).maxCoeff(&kl);
    kr += mid + skip;
    kl += 1;
    t.push_back(fc.t_s[i]);
    right.push_back(refine(kr));
    left.push_back(refine(kl));
  }
  ASSERT_GT(t.size(), 50u);
  const double v_right = fit_slope(t, right);
  const double v_left = -fit_slope(t, left);
  std::printf("estimated CV: right %.5f m/s, left %.5f m/s (set %.1f)\n", v_right, v_left, cv);
  EXPECT_NEAR(v_right / cv, 1.0, 0.01) << "v_right = " << v_right;
  EXPECT_NEAR(v_left / cv, 1.0, 0.01) << "v_left = " << v_left;
}

TEST(FibreSource, RejectsAnEndPlateOutsideTheFibreNamingTheValue) {
  const mf::FibreGeometry1D g{50e-3, 60e-3, 55e-6, 4.0};
  try {
    (void)mf::fibre_current_density(g, {}, 1e-3);
    FAIL() << "expected BadInput";
  } catch (const myotwin::BadInput& e) {
    EXPECT_NE(std::string(e.what()).find("end_plate_m = 0.06"), std::string::npos) << e.what();
  }
  const mf::FibreGeometry1D ok{50e-3, 25e-3, 55e-6, 4.0};
  mf::FibreSourceParams bad;
  bad.dz_m = 0.0;
  EXPECT_THROW((void)mf::fibre_current_density(ok, bad, 1e-3), myotwin::BadInput);
  EXPECT_THROW((void)mf::fibre_current_density(ok, {}, -1.0), myotwin::BadInput);
}

TEST(FibreSource, ReadsParamsFromConfigInSiAndRejectsNonPositiveSteps) {
  myotwin::ConfigReader cfg(nlohmann::json{{"dz_mm", 0.2}, {"dt_ms", 0.1}}, "test.json");
  const auto p = mf::read_fibre_source_params(cfg);
  EXPECT_DOUBLE_EQ(p.dz_m, 0.2e-3);
  EXPECT_DOUBLE_EQ(p.dt_s, 0.1e-3);
  EXPECT_DOUBLE_EQ(p.sigma_i_S_per_m, 1.01);
  cfg.finish();
  myotwin::ConfigReader bad(nlohmann::json{{"dz_mm", -0.1}}, "test.json");
  try {
    (void)mf::read_fibre_source_params(bad);
    FAIL() << "expected BadInput";
  } catch (const myotwin::BadInput& e) {
    EXPECT_NE(std::string(e.what()).find("dz_mm"), std::string::npos) << e.what();
  }
}

TEST(PointSource, IsotropicMatchesOneOverFourPiSigmaR) {
  const double i = 1e-6, sigma = 0.3, r = 2e-3;
  EXPECT_DOUBLE_EQ(mf::point_source_potential_isotropic_V(i, sigma, r),
                   i / (4.0 * M_PI * sigma * r));
  // The transfer builder in an isotropic medium gives the same.
  mf::AnisotropicMedium m{sigma, sigma, 1e-6};
  Points src(1, 3), el(1, 3), dir(1, 3);
  src << 0, 0, 0;
  el << 1e-3, -1e-3, std::sqrt(2.0) * 1e-3;
  dir << 0.3, 0.4, 0.5;
  const auto tr = mf::infinite_medium_transfer(src, dir, el, m);
  EXPECT_NEAR(tr(0, 0), 1.0 / (4.0 * M_PI * sigma * r), 1e-12 / (4.0 * M_PI * sigma * r));
}

TEST(PointSource, AnisotropicEqualsIsotropicForEqualConductivities) {
  const Eigen::Vector3d x(1e-3, 2e-3, -0.5e-3), f(1, 1, 0);
  EXPECT_NEAR(mf::point_source_potential_anisotropic_V(1e-6, x, f, 0.2, 0.2),
              mf::point_source_potential_isotropic_V(1e-6, 0.2, x.norm()), 1e-15);
}

TEST(PointSource, AnisotropicScalesAsOneOverDistance) {
  const Eigen::Vector3d x(1e-3, 2e-3, -0.5e-3), f(0.2, -0.3, 1.0);
  const double phi = mf::point_source_potential_anisotropic_V(1e-6, x, f, 0.5, 0.1);
  for (double s : {0.1, 2.0, 7.5}) {
    EXPECT_NEAR(mf::point_source_potential_anisotropic_V(1e-6, s * x, f, 0.5, 0.1), phi / s,
                1e-12 * phi / s);
  }
}

TEST(PointSource, AnisotropicMatchesTheConductivityTensorForm) {
  const double sl = 0.5, st = 0.1, current = 2e-6;
  Eigen::Vector3d f(0.3, -0.5, 0.8);
  f.normalize();
  const Eigen::Matrix3d sigma = st * Eigen::Matrix3d::Identity() + (sl - st) * f * f.transpose();
  for (const Eigen::Vector3d& x : {Eigen::Vector3d(1e-3, 0, 0), Eigen::Vector3d(-2e-3, 1e-3, 3e-3),
                                   Eigen::Vector3d(f * 4e-3)}) {
    const double direct = current / (4.0 * M_PI * std::sqrt(sigma.determinant()) *
                                     std::sqrt(x.dot(sigma.inverse() * x)));
    EXPECT_NEAR(mf::point_source_potential_anisotropic_V(current, x, f, sl, st), direct,
                1e-12 * direct);
  }
}

TEST(PointSource, InsulatedHalfSpaceDoublesThePotentialOnTheSurface) {
  mf::AnisotropicMedium m; // 0.5 / 0.1 S/m
  Points src(2, 3), el(3, 3), dir(1, 3);
  src << 0, 0, -3e-3, 1e-3, 2e-3, -8e-3;
  el << 0, 0, 0, 5e-3, -1e-3, 0, 2e-3, 3e-3, 0;
  dir << 1, 0, 0; // parallel to the surface z = 0
  const mf::InsulatingPlane plane{Eigen::Vector3d::Zero(), Eigen::Vector3d::UnitZ()};
  const auto inf = mf::infinite_medium_transfer(src, dir, el, m);
  const auto half = mf::infinite_medium_transfer(src, dir, el, m, plane);
  EXPECT_LT(((half - 2.0 * inf).cwiseAbs().array() / inf.array()).maxCoeff(), 1e-12);
  // Below the surface the image adds less than the source itself.
  Points deep(1, 3);
  deep << 0, 0, -1e-3;
  const auto inf_deep = mf::infinite_medium_transfer(src, dir, deep, m);
  const auto half_deep = mf::infinite_medium_transfer(src, dir, deep, m, plane);
  EXPECT_GT(half_deep(0, 0), inf_deep(0, 0));
  EXPECT_LT(half_deep(0, 0), 2.0 * inf_deep(0, 0));
  // A source above the insulating plane is rejected.
  Points outside(1, 3);
  outside << 0, 0, 1e-3;
  EXPECT_THROW((void)mf::infinite_medium_transfer(outside, dir, el, m, plane), myotwin::BadInput);
}

TEST(PointSource, CoincidentElectrodeIsRegularisedToTheMinimumDistance) {
  mf::AnisotropicMedium m;
  Points src(1, 3), dir(1, 3);
  src << 1e-3, 2e-3, 3e-3;
  dir << 0, 0, 1;
  const auto tr = mf::infinite_medium_transfer(src, dir, src, m);
  ASSERT_TRUE(std::isfinite(tr(0, 0)));
  const Eigen::Vector3d across(m.r_min_m, 0, 0);
  EXPECT_NEAR(tr(0, 0),
              mf::point_source_potential_anisotropic_V(1.0, across, Eigen::Vector3d::UnitZ(),
                                                       m.sigma_l_S_per_m, m.sigma_t_S_per_m),
              1e-9 * tr(0, 0));
}

TEST(SingleFibre, PotentialAtFiveMillimetresIsSmallerThanAtOne) {
  const mf::FibreGeometry1D g{60e-3, 30e-3, 55e-6, 4.0};
  const mf::FibreSourceParams p;
  const auto fc = mf::fibre_current_density(g, p, mf::fibre_source_duration_s(g));
  const Points pts = straight_fibre(fc.s_m, 0.0, 0.0);
  Points dir(1, 3), el(2, 3);
  dir << 0, 0, 1;
  el << 1e-3, 0, 45e-3, 5e-3, 0, 45e-3; // 15 mm from the end-plate
  const auto tr = mf::infinite_medium_transfer(pts, dir, el, mf::AnisotropicMedium{});
  const auto phi = mf::single_fibre_potentials(fc.current_A, tr);
  ASSERT_EQ(phi.rows(), fc.current_A.rows());
  ASSERT_EQ(phi.cols(), 2);
  const double pp1 = peak_to_peak(phi, 0), pp5 = peak_to_peak(phi, 1);
  RecordProperty("pp_1mm_uV", std::to_string(pp1 * 1e6));
  RecordProperty("pp_5mm_uV", std::to_string(pp5 * 1e6));
  std::printf("single fibre peak-to-peak: %.4g uV at 1 mm, %.4g uV at 5 mm\n", pp1 * 1e6,
              pp5 * 1e6);
  EXPECT_GT(pp1, 0.0);
  EXPECT_LT(pp5, pp1);
  EXPECT_LT(pp5, 0.5 * pp1);
}

TEST(SingleFibre, FarFieldFallsLikeAQuadrupole) {
  const mf::FibreGeometry1D g{20e-3, 10e-3, 55e-6, 4.0}; // centred end-plate: no dipole
  const mf::FibreSourceParams p;
  const auto fc = mf::fibre_current_density(g, p, mf::fibre_source_duration_s(g));
  const Points pts = straight_fibre(fc.s_m, 0.0, 0.0);
  Points dir(1, 3);
  dir << 0, 0, 1;
  const std::vector<double> r_m{0.2, 0.4, 0.8};
  Points el(static_cast<Eigen::Index>(r_m.size()), 3);
  for (std::size_t j = 0; j < r_m.size(); ++j) {
    el.row(static_cast<Eigen::Index>(j)) << r_m[j] / std::sqrt(2.0), r_m[j] / std::sqrt(2.0),
        g.end_plate_m + 0.3 * r_m[j];
  }
  const auto tr = mf::infinite_medium_transfer(pts, dir, el, mf::AnisotropicMedium{});
  const auto phi = mf::single_fibre_potentials(fc.current_A, tr);
  std::vector<double> log_r, log_pp;
  for (std::size_t j = 0; j < r_m.size(); ++j) {
    log_r.push_back(std::log(r_m[j]));
    log_pp.push_back(std::log(peak_to_peak(phi, static_cast<Eigen::Index>(j))));
  }
  const double slope = fit_slope(log_r, log_pp);
  std::printf("far-field slope of log peak-to-peak vs log r: %.4f\n", slope);
  EXPECT_NEAR(slope, -3.0, 0.3);
}

TEST(SingleFibre, RejectsMismatchedTransferSizes) {
  const Eigen::MatrixXd currents = Eigen::MatrixXd::Zero(4, 10);
  const Eigen::MatrixXd transfer = Eigen::MatrixXd::Zero(9, 2);
  try {
    (void)mf::single_fibre_potentials(currents, transfer);
    FAIL() << "expected BadInput";
  } catch (const myotwin::BadInput& e) {
    EXPECT_NE(std::string(e.what()).find("10 fibre elements"), std::string::npos) << e.what();
  }
}

TEST(Polyline, SamplesPointsAndTangentsByArcLength) {
  Points poly(3, 3);
  poly << 0, 0, 0, 0, 0, 1e-3, 1e-3, 0, 1e-3; // up 1 mm, then along x 1 mm
  Eigen::VectorXd s(3);
  s << 0.5e-3, 1.5e-3, 5e-3;
  const auto ps = mf::sample_polyline(poly, s);
  EXPECT_TRUE(ps.points_m.row(0).isApprox(Eigen::RowVector3d(0, 0, 0.5e-3)));
  EXPECT_TRUE(ps.directions.row(0).isApprox(Eigen::RowVector3d(0, 0, 1)));
  EXPECT_TRUE(ps.points_m.row(1).isApprox(Eigen::RowVector3d(0.5e-3, 0, 1e-3)));
  EXPECT_TRUE(ps.directions.row(1).isApprox(Eigen::RowVector3d(1, 0, 0)));
  EXPECT_TRUE(ps.points_m.row(2).isApprox(Eigen::RowVector3d(1e-3, 0, 1e-3))); // clamped
  EXPECT_THROW((void)mf::sample_polyline(poly.topRows(1), s), myotwin::BadInput);
}
