// simulate_emg on a small synthetic muscle in the infinite medium: per-discharge MUAP
// variability from end-plate jitter of the expected size, the truth unchanged by it, and the
// twitch force growing with the excitation.

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "myotwin/forward/simulation.hpp"
#include "xcorr.hpp"

namespace {

using myotwin::forward::SimulationParams;

/// One muscle of `n_units` units, each of `per_unit` straight parallel fibres 60 mm long along z
/// (a 2 mm x 2 mm patch per unit, patches side by side along x, at y = -8 mm), end-plates at
/// mid-length +/- 2 mm, weight 1.
myotwin::anatomy::SubjectAnatomy small_muscle(int n_units, int per_unit) {
  myotwin::anatomy::MuscleModel m;
  m.geometry.name = "M";
  m.geometry.label = 7;
  const int n = n_units * per_unit;
  m.pool.fibre_unit.resize(n);
  m.pool.fibre_cv_m_per_s.resize(n);
  m.pool.fibre_diameter_m = Eigen::VectorXd::Constant(n, 50e-6);
  for (int u = 0; u < n_units; ++u) {
    myotwin::anatomy::MotorUnit unit;
    unit.index = u;
    unit.n_fibres = per_unit;
    unit.recruitment_threshold = 0.02 * (u + 1);
    unit.cv_m_per_s = 4.0;
    for (int k = 0; k < per_unit; ++k) {
      const int f = u * per_unit + k;
      myotwin::anatomy::Fibre fibre;
      const double x = 4e-3 * u + 0.5e-3 * (k % 4), y = -8e-3 + 0.5e-3 * (k / 4 % 4);
      fibre.points_m.resize(121, 3);
      for (int p = 0; p <= 120; ++p)
        fibre.points_m.row(p) << x, y, -30e-3 + 0.5e-3 * p;
      fibre.length_m = 60e-3;
      fibre.end_plate_m = 30e-3 + 4e-3 * (static_cast<double>((7 * k) % per_unit) / per_unit - 0.5);
      fibre.seed_2d_m << x, y;
      m.fibres.fibres.push_back(fibre);
      m.pool.fibre_unit[f] = u;
      m.pool.fibre_cv_m_per_s[f] = 4.0;
      unit.fibres.push_back(f);
    }
    m.pool.units.push_back(unit);
  }
  myotwin::anatomy::SubjectAnatomy a;
  a.muscles.push_back(m);
  return a;
}

/// Electrodes on the plane y = 0 above the muscle, along z.
Eigen::MatrixX3d electrodes() {
  Eigen::MatrixX3d e(3, 3);
  e << 0.0, 0.0, -10e-3, 0.0, 0.0, 10e-3, 4e-3, 0.0, 15e-3;
  return e;
}

SimulationParams base_params() {
  SimulationParams p;
  p.muap.fs_Hz = 20480.0;
  p.emg.fs_Hz = 20480.0;
  p.emg.add_noise = false;
  p.drive.duration_s = 2.0;
  p.drive.fs_Hz = 2048.0;
  p.drive.profile.type = myotwin::forward::ProfileType::constant;
  p.drive.profile.level = 0.05;
  return p;
}

} // namespace

TEST(Simulation, JitterMovesEachDischargeByTheExpectedJiggleAndKeepsTheTruth) {
  const auto anatomy = small_muscle(1, 16);
  const Eigen::MatrixX3d el = electrodes();
  const myotwin::forward::AnisotropicMedium medium;
  const auto transfer = myotwin::forward::infinite_medium_transfer_function(el, medium);
  SimulationParams p = base_params();
  p.force.enabled = false;
  const auto plain = myotwin::forward::simulate_emg(anatomy, transfer, 3, Eigen::MatrixX3d(), p, 5);
  p.jitter_s = 35e-6;
  p.jitter_groups = 4;
  const auto jittered =
      myotwin::forward::simulate_emg(anatomy, transfer, 3, Eigen::MatrixX3d(), p, 5);
  // Same drive, same truth.
  ASSERT_EQ(plain.emg.spike_samples, jittered.emg.spike_samples);
  ASSERT_GT(plain.discharge_times_s[0].size(), 8U);
  // Expected jiggle of independent per-fibre jitter, to first order: the variance of
  // (jittered - plain) summed over a discharge window is sigma^2 sum_f |m_f'|^2 (m_f the fibre
  // potentials, ' the time derivative). The simulation shifts 4 spatial groups of 4 fibres by
  // sigma / 2 each, which matches this exactly when the fibres of a group share a waveform.
  const auto& m = anatomy.muscles[0];
  const auto fibres_muaps = [&] {
    std::vector<Eigen::MatrixXd> per_fibre;
    for (int f = 0; f < 16; ++f) {
      std::vector<int> g(16, 1);
      g[static_cast<std::size_t>(f)] = 0;
      per_fibre.push_back(myotwin::forward::unit_muap_groups(m.fibres, m.pool, 0, 3, transfer,
                                                             p.muap, Eigen::VectorXd(), g)[0]);
    }
    return per_fibre;
  }();
  const double dt = 1.0 / p.muap.fs_Hz;
  double per_fibre_var = 0.0; // sum_f sigma^2 |m_f'|^2 on channel 0, per sample
  for (const auto& mf : fibres_muaps) {
    const Eigen::VectorXd v = mf.col(0);
    const Eigen::VectorXd d = (v.tail(v.size() - 1) - v.head(v.size() - 1)) / dt;
    per_fibre_var += 35e-6 * 35e-6 * d.squaredNorm();
  }
  // Measured: the sum over discharges and samples of (jittered - plain)^2 on channel 0, per
  // discharge.
  const Eigen::VectorXd diff = jittered.emg.emg_clean.row(0) - plain.emg.emg_clean.row(0);
  const double measured_var =
      diff.squaredNorm() / static_cast<double>(plain.discharge_times_s[0].size());
  const double ratio = std::sqrt(measured_var / per_fibre_var);
  std::cout << "jiggle RMS ratio measured / per-fibre model: " << ratio << "\n";
  // Fibres of a 2 x 2 group differ a little in waveform (0.5 mm apart, end-plates +/- 2 mm):
  // the group model is then slightly more coherent; with 12 discharges the estimate itself
  // scatters by about 1 / sqrt(2 x 12 x 4) ~ 10 %.
  EXPECT_GT(ratio, 0.7);
  EXPECT_LT(ratio, 1.6);
}

TEST(Simulation, ForceGrowsWithExcitationAndStaysBelowTheMaximum) {
  const auto anatomy = small_muscle(6, 8);
  const Eigen::MatrixX3d el = electrodes();
  const auto transfer = myotwin::forward::infinite_medium_transfer_function(
      el, myotwin::forward::AnisotropicMedium{});
  SimulationParams p = base_params();
  p.muap.fs_Hz = 10240.0;
  p.emg.fs_Hz = 2048.0;
  std::vector<double> mean_force;
  for (const double level : {0.03, 0.08, 0.2}) {
    p.drive.profile.level = level;
    const auto sim = myotwin::forward::simulate_emg(anatomy, transfer, 3, Eigen::MatrixX3d(), p, 3);
    ASSERT_EQ(sim.force.rows(), 1);
    ASSERT_EQ(sim.force.cols(), sim.emg.emg.cols());
    ASSERT_EQ(sim.force_muscles, std::vector<std::string>{"M"});
    const double f = sim.force.row(0).tail(sim.force.cols() / 2).mean();
    EXPECT_GT(f, 0.0);
    EXPECT_LT(f, 1.0);
    EXPECT_LE(sim.force.maxCoeff(), 1.5); // twitch peaks can pass the mean maximum briefly
    mean_force.push_back(f);
    // The smallest unit has the longest contraction time (90 ms), the largest 90 / 3 ms
    // (equal sizes here: all 90 ms).
    EXPECT_NEAR(sim.contraction_time_s.maxCoeff(), 0.090, 1e-12);
  }
  EXPECT_LT(mean_force[0], mean_force[1]);
  EXPECT_LT(mean_force[1], mean_force[2]);
}

TEST(Simulation, ConductionVelocityFromACrossCorrelationAlongAColumnIsWithinFivePercent) {
  // A column of 8 electrodes 2.5 mm apart along the fibres, 3 mm above the unit, between the
  // end-plate band (z = 0 +/- 2 mm) and the tendon end (z = 30 mm); the unit's fibres conduct
  // at 4 m/s and start after their nerve-branch delays. Double differentials along the column
  // cancel the non-propagating end-plate and end-of-fibre components.
  const auto anatomy = small_muscle(1, 16);
  Eigen::MatrixX3d el(8, 3);
  for (int k = 0; k < 8; ++k)
    el.row(k) << 0.75e-3, -5e-3, 6e-3 + 2.5e-3 * k;
  const auto transfer = myotwin::forward::infinite_medium_transfer_function(
      el, myotwin::forward::AnisotropicMedium{});
  SimulationParams p = base_params();
  p.drive.duration_s = 0.5;
  p.force.enabled = false;
  const auto sim = myotwin::forward::simulate_emg(anatomy, transfer, 8, Eigen::MatrixX3d(), p, 2);
  const Eigen::MatrixXd& m = sim.muaps[0];
  std::vector<double> cv;
  for (int k = 1; k + 2 < 8; ++k) {
    const Eigen::VectorXd a = m.col(k - 1) - 2.0 * m.col(k) + m.col(k + 1);
    const Eigen::VectorXd b = m.col(k) - 2.0 * m.col(k + 1) + m.col(k + 2);
    cv.push_back(2.5e-3 / myotwin::testing::xcorr_delay_s(a, b, p.muap.fs_Hz, 100));
  }
  double mean = 0.0;
  for (const double v : cv)
    mean += v / static_cast<double>(cv.size());
  std::cout << "CV along the column: " << mean << " m/s (set 4 m/s)\n";
  EXPECT_NEAR(mean, 4.0, 0.05 * 4.0);
  for (const double v : cv)
    EXPECT_NEAR(v, 4.0, 0.1 * 4.0);
}
