// Intramuscular EMG: line-source closed form, the fast fibre potential against the direct sum,
// near-fibre spikes, needle MUAPs of a biceps-like muscle, jitter, threads, bad inputs.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <omp.h>

#include <gtest/gtest.h>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/forward/needle/iemg.hpp"
#include "myotwin/forward/needle/line_source.hpp"
#include "myotwin/forward/noise/noise.hpp"

namespace {

using namespace myotwin;
using namespace myotwin::forward;

constexpr double sigma_l = 0.33;
constexpr double sigma_t = 0.063;

TEST(LineSource, MatchesTheIntegralOfThePointSourceAndItsClosedForm) {
  // Segment z in [z1, z2] on the z axis, field point at radial distance r, z = 0.
  for (const double r : {25e-6, 0.3e-3, 5e-3}) {
    for (const auto& [z1, z2] :
         {std::pair{-1e-3, 2e-3}, std::pair{4e-3, 4.01e-3}, std::pair{-30e-3, -29.99e-3}}) {
      // Composite Simpson on the anisotropic point-source formula.
      const int n = 200000;
      const double hz = (z2 - z1) / n;
      double sum = 0.0;
      for (int i = 0; i <= n; ++i) {
        const double z = z1 + i * hz;
        const double w = (i == 0 || i == n) ? 1.0 : (i % 2 == 1 ? 4.0 : 2.0);
        sum += w * point_source_potential_anisotropic_V(1.0 / (z2 - z1), Eigen::Vector3d(r, 0, -z),
                                                        Eigen::Vector3d::UnitZ(), sigma_l, sigma_t);
      }
      const double quad = sum * hz / 3.0;
      const double phi = line_source_potential_V(1.0, z1, z2, r, sigma_l, sigma_t);
      // Closed form after scaling z' = z sqrt(sigma_t / sigma_l), length L' = k L:
      // phi = I k / (4 pi sigma_t L') ln((z2' + sqrt(z2'^2 + r^2)) / (z1' + sqrt(z1'^2 + r^2))).
      const double k = std::sqrt(sigma_t / sigma_l);
      // (evaluated on the mirrored segment when it lies at negative z, where the logarithm's
      // argument would cancel)
      const double a = z2 < 0.0 ? -k * z2 : k * z1;
      const double b = z2 < 0.0 ? -k * z1 : k * z2;
      const double closed = k / (4.0 * M_PI * sigma_t * k * (z2 - z1)) *
                            std::log((b + std::hypot(b, r)) / (a + std::hypot(a, r)));
      EXPECT_NEAR(phi / quad, 1.0, 1e-9) << r << " " << z1;
      EXPECT_NEAR(phi / closed, 1.0, 1e-9) << r << " " << z1;
    }
  }
  // No cancellation: a 10 um element 100 mm away equals the point source to O((h / d)^2)
  // (about 1e-9 here).
  const double far = line_source_potential_V(1.0, 100e-3, 100.01e-3, 1e-3, sigma_l, sigma_t);
  const double point = point_source_potential_anisotropic_V(
      1.0, Eigen::Vector3d(1e-3, 0, -100.005e-3), Eigen::Vector3d::UnitZ(), sigma_l, sigma_t);
  EXPECT_NEAR(far / point, 1.0, 2e-9);
  EXPECT_EQ(asinh_difference(3.0, 3.0), 0.0);
  EXPECT_NEAR(asinh_difference(-2.0, 1.0), std::asinh(-2.0) - std::asinh(1.0), 1e-15);
}

FibrePath straight_path(double x, double y, double length_m, double end_plate_m) {
  FibrePath f;
  f.polyline_m.resize(2, 3);
  f.polyline_m << x, y, 0.0, x, y, length_m;
  f.geometry.length_m = length_m;
  f.geometry.end_plate_m = end_plate_m;
  f.geometry.diameter_m = 55e-6;
  f.geometry.cv_m_per_s = 4.0;
  return f;
}

AnisotropicMedium akhmadeev_medium() {
  AnisotropicMedium m;
  m.sigma_l_S_per_m = sigma_l;
  m.sigma_t_S_per_m = sigma_t;
  return m;
}

double max_abs(const Eigen::MatrixXd& m) {
  return m.cwiseAbs().maxCoeff();
}

TEST(FibrePotentials, RecursionEqualsTheDirectSumAndLumpingStaysWithinATenthOfAPercent) {
  const FibrePath fibre = straight_path(0.0, 0.0, 40e-3, 17.3e-3);
  Eigen::MatrixX3d contacts(4, 3);
  contacts << 50e-6, 0, 20e-3, 0.3e-3, 0, 18e-3, 1e-3, 0.5e-3, 30e-3, 5e-3, 0, 39e-3;
  // Runs of the Nandedkar-Stalberg length (0.5 mm) stay within 0.1 %; the default 1 mm runs
  // within 0.7 % (checked below).
  FibrePotentialParams p;
  p.coarse_step_m = 0.5e-3;
  FibrePotentialParams p_default;
  const auto lumped_default =
      fibre_potentials(fibre, contacts, akhmadeev_medium(), p_default, 10240.0, 0.0, 160, false);
  const double fs = 10240.0;
  const Eigen::Index n = 160;
  const Eigen::MatrixXd direct =
      fibre_potentials_direct(fibre, contacts, akhmadeev_medium(), p, fs, n);
  FibrePotentialParams all_fine = p;
  all_fine.near_radius_m = std::numeric_limits<double>::infinity();
  const auto fine =
      fibre_potentials(fibre, contacts, akhmadeev_medium(), all_fine, fs, 0.0, n, false);
  const auto lumped = fibre_potentials(fibre, contacts, akhmadeev_medium(), p, fs, 0.0, n, true);
  for (Eigen::Index j = 0; j < contacts.rows(); ++j) {
    const double peak = max_abs(direct.col(j));
    const double e_fine = max_abs(fine.phi_V.col(j) - direct.col(j)) / peak;
    const double e_lumped = max_abs(lumped.phi_V.col(j) - direct.col(j)) / peak;
    std::printf("contact %ld: peak %.4g V, recursion error %.2e, lumped error %.2e (of peak)\n",
                static_cast<long>(j), peak, e_fine, e_lumped);
    EXPECT_LT(e_fine, 1e-9) << j;
    EXPECT_LT(e_lumped, 1e-3) << j;
    EXPECT_LT(max_abs(lumped_default.phi_V.col(j) - direct.col(j)) / peak, 7e-3) << j;
  }
}

} // namespace

namespace {

TEST(FibrePotentials, AContactFiftyMicrometresFromAFibreSeesASpikeTensOfTimesLargerThanAtOneMm) {
  const FibrePath fibre = straight_path(0.0, 0.0, 100e-3, 50e-3);
  Eigen::MatrixX3d contacts(2, 3);
  contacts << 50e-6, 0, 75e-3, 1e-3, 0, 75e-3;
  const auto p = fibre_potentials(fibre, contacts, akhmadeev_medium(), FibrePotentialParams{},
                                  10240.0, 0.0, 300, false);
  const Eigen::RowVectorXd p2p = p.phi_V.colwise().maxCoeff() - p.phi_V.colwise().minCoeff();
  std::printf("single fibre p2p: %.1f uV at 50 um, %.2f uV at 1 mm: ratio %.1f\n", p2p[0] * 1e6,
              p2p[1] * 1e6, p2p[0] / p2p[1]);
  EXPECT_GT(p2p[0] / p2p[1], 10.0);
  EXPECT_LT(p2p[0] / p2p[1], 100.0);
}

TEST(Iemg, HermitePlacementIsExactForQuinticsAndCloseToTheDirectEvaluationOfAShiftedMuap) {
  // A quintic and its derivatives at 10 nodes: exact anywhere in between.
  const double fs = 1000.0;
  Eigen::MatrixXd f(10, 1), d(10, 1), d2(10, 1);
  const auto q = [](double t) { return 1 + t - 3 * t * t + 50 * std::pow(t, 5) * 1e10; };
  for (int i = 0; i < 10; ++i) {
    const double t = i / fs;
    f(i, 0) = q(t);
    d(i, 0) = 1 - 6 * t + 250 * std::pow(t, 4) * 1e10;
    d2(i, 0) = -6 + 1000 * std::pow(t, 3) * 1e10;
  }
  for (const double t : {0.0, 0.00123, 0.0047, 0.0089}) {
    EXPECT_NEAR(hermite_at(f, d, d2, fs, t)[0], q(t), 1e-12 * std::abs(q(t))) << t;
  }
  // A fibre 60 um from the contact: Hermite at a shift of 0.37 samples against the recursion
  // evaluated with that delay.
  const FibrePath fibre = straight_path(0.0, 0.0, 100e-3, 50e-3);
  Eigen::MatrixX3d c(1, 3);
  c << 60e-6, 0, 70e-3;
  const double fs2 = 10240.0;
  const auto p = fibre_potentials(fibre, c, akhmadeev_medium(), {}, fs2, 0.0, 300, true);
  const double shift = 0.37 / fs2;
  const auto shifted = fibre_potentials(fibre, c, akhmadeev_medium(), {}, fs2, shift, 300, false);
  double err = 0.0;
  for (int n = 1; n < 300; ++n) {
    const double v = hermite_at(p.phi_V, p.dphi_V_per_s, p.d2phi_V_per_s2, fs2, n / fs2 - shift)[0];
    err = std::max(err, std::abs(v - shifted.phi_V(n, 0)));
  }
  const double peak = p.phi_V.cwiseAbs().maxCoeff();
  std::printf("Hermite at 0.37 samples, fibre at 60 um: max error %.2e of the peak\n", err / peak);
  // 3.0e-3 with the Rosenfalck profile; the Nandedkar-Stalberg spike is twice as sharp for the
  // same 10240 Hz.
  EXPECT_LT(err / peak, 1.5e-2);
}

} // namespace

namespace {

/// A biceps-like cylinder: radius 10 mm, 120 mm long, 350 real fibres per mm^2 (110,000),
/// 200 units (550 fibres per unit on average, about the biceps' 250,000 fibres in 500-800
/// units), the largest territory half the section: a unit's fibres about 10 per mm^2 in its
/// territory (SFEMG fibre densities of 1.3-1.5 per 300 um uptake radius are 5 per mm^2).
IemgMuscle biceps_like(const IemgParams& params, std::uint64_t seed) {
  CylinderMuscleParams c;
  c.radius_m = 10e-3;
  c.length_m = 0.12;
  c.model_density_per_m2 = 8e6;
  c.motor_units.n_units = 200;
  c.motor_units.largest_territory_fraction = 0.5;
  IemgMuscle m = cylinder_muscle(c, params.end_plate_percent / 100.0, Rng(seed));
  spread_sub_fibres(m, params, NerveBranchingParams{}, Rng(seed).split(7));
  return m;
}

TEST(Iemg, NeedleMuapsOfABicepsLikeMuscleAtTenPercentAreHealthySized) {
  IemgParams params;
  params.jitter_s = 0.0; // MUAP shapes only
  const IemgMuscle m = biceps_like(params, 42);
  // The units recruited at 10 % of the maximum excitation.
  std::vector<std::int64_t> units;
  for (std::size_t u = 0; u < m.pool.units.size(); ++u) {
    if (m.pool.units[u].recruitment_threshold <= 0.1) {
      units.push_back(static_cast<std::int64_t>(u));
    }
  }
  // Five random insertions of a needle with 4 contacts 1 mm apart across the fibres, 20 mm
  // from the end-plate band, recording the consecutive differences (as a concentric needle
  // against its cannula, the far field of the tendon ends cancels); a MUAP is accepted, as in a
  // clinical analysis, when its peak-to-peak reaches 100 uV on some channel.
  Rng rng(5);
  IemgElectrodes e;
  std::vector<double> p2ps;
  for (int insertion = 0; insertion < 5; ++insertion) {
    double x = 0.0;
    double y = 0.0;
    do {
      x = rng.uniform(-7e-3, 7e-3);
      y = rng.uniform(-7e-3, 7e-3);
    } while (x * x + y * y > 49e-6);
    e.position_m << x, y, 20e-3;
    const Eigen::MatrixX3d contacts = iemg_contacts(e, m.centre_m, 0);
    for (const auto& mu : iemg_muaps(m, units, contacts, params)) {
      const Eigen::MatrixXd diff = mu.phi_V * iemg_channel_weights(e).transpose();
      const Eigen::RowVectorXd p2p = diff.colwise().maxCoeff() - diff.colwise().minCoeff();
      Eigen::Index best = 0;
      const double peak = p2p.maxCoeff(&best);
      if (peak < 100e-6) {
        continue;
      }
      // Duration: the span where the channel departs from its baseline by more than 2.5 % of
      // its peak-to-peak (the 10-20 uV of a clinical analysis for these amplitudes).
      const Eigen::VectorXd v = diff.col(best);
      Eigen::Index first = -1;
      Eigen::Index final = -1;
      for (Eigen::Index n = 0; n < v.size(); ++n) {
        if (std::abs(v[n] - v[0]) > 0.025 * peak) {
          first = first < 0 ? n : first;
          final = n;
        }
      }
      const double duration = static_cast<double>(final - first) / params.fs_Hz;
      std::printf("insertion %d, unit %3ld (%4ld fibres): p2p %6.0f uV, duration %4.1f ms\n",
                  insertion, static_cast<long>(mu.unit), static_cast<long>(mu.n_fibres), peak * 1e6,
                  duration * 1e3);
      EXPECT_GT(duration, 5e-3) << mu.unit;
      EXPECT_LT(duration, 15e-3) << mu.unit;
      EXPECT_LT(peak, 2e-3) << mu.unit;
      p2ps.push_back(peak);
    }
  }
  // (10 MUAPs with the Rosenfalck profile; 3 with Nandedkar-Stalberg's, whose potentials fall off
  // faster with distance: point contacts 1 mm apart at random seldom sit near enough.)
  ASSERT_GE(p2ps.size(), 3U);
  std::sort(p2ps.begin(), p2ps.end());
  const double median = p2ps[p2ps.size() / 2];
  std::printf("%zu accepted MUAPs, median p2p %.0f uV\n", p2ps.size(), median * 1e6);
  EXPECT_GT(median, 100e-6);
  EXPECT_LT(median, 2e-3);
}

} // namespace

namespace {

/// A small cylinder: radius 3 mm, 60 mm long, 10 units (about 9,900 real fibres).
IemgMuscle small_muscle(const IemgParams& params) {
  CylinderMuscleParams c;
  c.radius_m = 3e-3;
  c.length_m = 0.06;
  c.motor_units.n_units = 10;
  IemgMuscle m = cylinder_muscle(c, params.end_plate_percent / 100.0, Rng(3));
  spread_sub_fibres(m, params, NerveBranchingParams{}, Rng(4));
  return m;
}

TEST(Iemg, JitterJigglesSuccessiveDischargesByTheExpectedAmount) {
  const IemgParams params; // 35 us
  const IemgMuscle m = small_muscle(params);
  const auto& unit = m.pool.units[4];
  IemgElectrodes e;
  e.position_m << unit.territory_centre_m.x(), unit.territory_centre_m.y(), 12e-3;
  const Eigen::MatrixX3d contacts = iemg_contacts(e, m.centre_m, 0);
  const auto muaps = iemg_muaps(m, {4}, contacts, params);
  const auto& mu = muaps.front();
  // 40 discharges 50 ms apart, on sample instants: every segment is the MUAP moved by jitter.
  const Eigen::Index spacing = 512;
  std::vector<std::vector<double>> times(1);
  for (int k = 0; k < 40; ++k) {
    times[0].push_back(static_cast<double>(k * spacing) / params.fs_Hz);
  }
  const auto emg = synthesize_iemg(muaps, times, 41.0 * spacing / params.fs_Hz, params.fs_Hz,
                                   params.jitter_s, Rng(9));
  const Eigen::Index n = mu.phi_V.rows();
  ASSERT_LT(n, spacing);
  double sum2 = 0.0;
  for (int k = 0; k + 1 < 40; ++k) {
    sum2 += (emg.clean_V.middleCols((k + 1) * spacing, n) - emg.clean_V.middleCols(k * spacing, n))
                .squaredNorm();
  }
  const double measured = std::sqrt(sum2 / (39.0 * static_cast<double>(n * contacts.rows())));
  // Expected to first order: the difference of two discharges is sum_f (j1_f - j2_f) s_f'(t),
  // whose mean square is 2 sigma^2 sum_f |s_f'|^2 over the jittered fibres.
  double energy = 0.0;
  for (const auto& d : mu.window_dphi_V_per_s) {
    energy += d.squaredNorm();
  }
  const double expected = std::sqrt(2.0 * params.jitter_s * params.jitter_s * energy /
                                    static_cast<double>(n * contacts.rows()));
  const double muap_rms = std::sqrt(mu.phi_V.squaredNorm() / static_cast<double>(mu.phi_V.size()));
  std::printf("jiggle (RMS of successive differences): measured %.3f uV, expected %.3f uV "
              "(ratio %.3f); MUAP RMS %.1f uV; %zu jittered fibres, %.3f of the energy\n",
              measured * 1e6, expected * 1e6, measured / expected, muap_rms * 1e6,
              mu.jitter_fibres.size(), mu.jitter_energy_captured);
  EXPECT_NEAR(measured / expected, 1.0, 0.15);
  // Discharge to discharge the MUAP changes, but by a fraction of itself.
  EXPECT_GT(measured, 0.005 * muap_rms);
  EXPECT_LT(measured, 0.5 * muap_rms);
  // Without jitter the segments are identical.
  const auto still =
      synthesize_iemg(muaps, times, 41.0 * spacing / params.fs_Hz, params.fs_Hz, 0.0, Rng(9));
  EXPECT_LT(
      (still.clean_V.middleCols(spacing, n) - still.clean_V.middleCols(0, n)).cwiseAbs().maxCoeff(),
      1e-12);
}

TEST(Iemg, SameSeedGivesTheSameBitsAtOneAndTwoThreads) {
  const IemgParams params;
  const IemgMuscle m = small_muscle(params);
  IemgElectrodes e;
  e.position_m << 0.5e-3, 0.0, 10e-3;
  const Eigen::MatrixX3d contacts = iemg_contacts(e, m.centre_m, 0);
  std::vector<std::vector<double>> times = {{0.01, 0.0931, 0.2012}, {0.05, 0.15}};
  const auto run = [&](int threads) {
    omp_set_num_threads(threads);
    const auto muaps = iemg_muaps(m, {3, 9}, contacts, params);
    return std::pair{muaps,
                     synthesize_iemg(muaps, times, 0.3, params.fs_Hz, params.jitter_s, Rng(1))};
  };
  const auto [m1, e1] = run(1);
  const auto [m2, e2] = run(2);
  omp_set_num_threads(omp_get_num_procs());
  for (std::size_t u = 0; u < m1.size(); ++u) {
    EXPECT_EQ(m1[u].phi_V, m2[u].phi_V);
    EXPECT_EQ(m1[u].jitter_fibres, m2[u].jitter_fibres);
  }
  EXPECT_EQ(e1.clean_V, e2.clean_V);
  EXPECT_EQ(e1.jitter_s[0], e2.jitter_s[0]);
  // Another seed, other jitter.
  const auto muaps = iemg_muaps(m, {3, 9}, contacts, params);
  const auto other = synthesize_iemg(muaps, times, 0.3, params.fs_Hz, params.jitter_s, Rng(2));
  EXPECT_NE(other.clean_V, e1.clean_V);
}

template <class F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const BadInput& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Iemg, RejectsStepsOutOfOrderAndBadConfigurationsWithClearMessages) {
  const IemgParams params;
  IemgMuscle m = small_muscle(params);
  IemgElectrodes e;
  const Eigen::MatrixX3d contacts = iemg_contacts(e, m.centre_m, 0);
  EXPECT_NE(error_of([&] {
              synthesize_iemg({}, {}, 1.0, 10240.0, 35e-6, Rng(1));
            }).find("compute them (iemg_muaps()) before the EMG"),
            std::string::npos);
  IemgMuscle bare = m;
  bare.fibres.clear();
  EXPECT_NE(error_of([&] { iemg_muaps(bare, {}, contacts, params); }).find("spread_sub_fibres"),
            std::string::npos);
  EXPECT_NE(error_of([&] { iemg_muaps(m, {10}, contacts, params); }).find("units contains 10"),
            std::string::npos);
  const auto muaps = iemg_muaps(m, {0}, contacts, params);
  EXPECT_NE(error_of([&] {
              synthesize_iemg(muaps, {{1.5}}, 1.0, 10240.0, 35e-6, Rng(1));
            }).find("discharges at 1.5 s"),
            std::string::npos);
  const auto electrodes = [](nlohmann::json j) {
    ConfigReader r(std::move(j), "c.json");
    return read_iemg_electrodes(r);
  };
  EXPECT_NE(error_of([&] { electrodes({{"type", "hook"}}); }).find("type"), std::string::npos);
  EXPECT_NE(error_of([&] {
              electrodes({{"differentiation", "bipolar"}});
            }).find("differentiation"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              electrodes({{"reference_contact", 4}});
            }).find("reference_contact"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              electrodes({{"position_mm", {1.0, 2.0}}});
            }).find("position_mm"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              electrodes({{"type", "fine_wire"}});
            }).find("pairs"),
            std::string::npos);
  ConfigReader bad_jitter(nlohmann::json{{"jitter_us", -1.0}}, "c.json");
  EXPECT_NE(error_of([&] { read_iemg_params(bad_jitter); }).find("jitter_us"), std::string::npos);
  ConfigReader bad_noise(nlohmann::json{{"type", "pink"}}, "c.json");
  EXPECT_NE(error_of([&] { read_noise_params(bad_noise); }).find("pink"), std::string::npos);
  // Channels: consecutive differences, against a reference, fine-wire pairs.
  e.differentiation = Differentiation::reference;
  e.reference_contact = 2;
  const Eigen::MatrixXd w = iemg_channel_weights(e);
  ASSERT_EQ(w.rows(), 3);
  EXPECT_EQ(w(0, 0), 1.0);
  EXPECT_EQ(w(0, 2), -1.0);
  EXPECT_EQ(w(2, 3), 1.0);
  const auto wires =
      electrodes({{"type", "fine_wire"},
                  {"pairs", {{{"a_mm", {0.0, 0.0, 10.0}}, {"b_mm", {0.0, 2.0, 10.0}}}}}});
  EXPECT_EQ(iemg_channel_weights(wires), (Eigen::MatrixXd(1, 2) << 1.0, -1.0).finished());
  EXPECT_NEAR(iemg_contacts(wires, m.centre_m, 0)(1, 2), m.centre_m.z() + 10e-3, 1e-15);
}

} // namespace
