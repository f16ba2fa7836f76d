// Model-informed separation on a small physical problem: a cylindrical muscle under a 6 x 5
// grid in the infinite medium, 8 units with disc territories, 8 s of EMG at 20 dB. The same
// fibres build the MUAP model (the case the published method tested; the perturbed-model case
// is the benchmark's). Checks units recovered with RoA >= 0.9, their fitted territory centres
// and CVs, determinism, and bad input.

#include <cmath>
#include <cstdlib>
#include <iostream>

#include <gtest/gtest.h>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/forward/drive/drive.hpp"
#include "myotwin/forward/emg/emg.hpp"
#include "myotwin/inversion/benchmark.hpp"
#include "myotwin/inversion/bmiss.hpp"
#include "myotwin/inversion/score.hpp"
#include "test_support.hpp"

namespace mf = myotwin::forward;
namespace ma = myotwin::anatomy;
namespace mi = myotwin::inversion;

namespace {

constexpr int n_units = 8;

struct Problem {
  ma::MuscleModel muscle;
  Eigen::MatrixX3d electrodes;
  myotwin::forward::EmgRecording recording;
  std::vector<std::vector<std::int64_t>> truth;
  std::vector<double> cv;
};

/// Fibres of a 7 mm radius muscle 6 mm under the electrode plane y = 0 (0.5 mm grid, 4 real
/// fibres each, 80 mm long along z, end-plates at mid-length +/- 1.5 mm); units are discs of
/// radius 1.2 to 2.5 mm at spread centres, CV 3.4 to 4.8 m/s.
Problem make_problem(double snr_dB) {
  Problem p;
  auto& fibres = p.muscle.fibres;
  fibres.name = "cyl";
  fibres.plane_centre_m = Eigen::Vector3d(0.0, -13e-3, 0.0);
  for (int i = -14; i <= 14; ++i)
    for (int j = -14; j <= 14; ++j) {
      const double x = 0.5e-3 * i, y = 0.5e-3 * j;
      if (x * x + y * y > 49e-6)
        continue;
      ma::Fibre f;
      f.points_m.resize(161, 3);
      for (int k = 0; k <= 160; ++k)
        f.points_m.row(k) << x, y - 13e-3, -40e-3 + 0.5e-3 * k;
      f.length_m = 80e-3;
      f.end_plate_m = 40e-3 + 1.5e-3 * std::sin(5.0 * i + 11.0 * j);
      f.seed_2d_m << x, y;
      f.seed_m = fibres.plane_centre_m + Eigen::Vector3d(x, y, 0.0);
      f.weight = 4.0;
      fibres.fibres.push_back(f);
    }
  const auto n_f = static_cast<Eigen::Index>(fibres.fibres.size());
  auto& pool = p.muscle.pool;
  pool.fibre_unit = Eigen::VectorXi::Constant(n_f, -1);
  pool.fibre_cv_m_per_s = Eigen::VectorXd::Constant(n_f, 4.0);
  pool.fibre_diameter_m = Eigen::VectorXd::Constant(n_f, 50e-6);
  const double centres[n_units][2] = {{-3.5, 3.0}, {2.5, 3.5}, {0.0, 0.0},   {-4.0, -2.0},
                                      {3.5, -2.5}, {0.5, 5.0}, {-1.5, -4.5}, {4.8, 1.0}};
  for (int u = 0; u < n_units; ++u) {
    ma::MotorUnit unit;
    unit.index = u;
    unit.territory_centre_m = Eigen::Vector2d(centres[u][0], centres[u][1]) * 1e-3;
    unit.territory_radius_m = (1.2 + 0.18 * u) * 1e-3;
    unit.cv_m_per_s = 3.4 + 0.2 * u;
    unit.recruitment_threshold = 0.01 * (u + 1);
    for (Eigen::Index f = 0; f < n_f; ++f) {
      const auto& fibre = fibres.fibres[static_cast<std::size_t>(f)];
      // Every third fibre of the disc (intermingled territories).
      if ((fibre.seed_2d_m - unit.territory_centre_m).norm() < unit.territory_radius_m &&
          pool.fibre_unit[f] < 0 && (f + u) % 3 == 0) {
        unit.fibres.push_back(f);
        pool.fibre_unit[f] = u;
        pool.fibre_cv_m_per_s[f] = unit.cv_m_per_s;
      }
    }
    unit.n_fibres = 4.0 * static_cast<double>(unit.fibres.size());
    p.cv.push_back(unit.cv_m_per_s);
    pool.units.push_back(unit);
  }
  // 6 rows along z (8 mm) x 5 columns across (6 mm).
  p.electrodes.resize(30, 3);
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 5; ++c)
      p.electrodes.row(r * 5 + c) << (c - 2) * 6e-3, 0.0, 2e-3 + r * 6e-3;
  const auto transfer =
      mf::infinite_medium_transfer_function(p.electrodes, mf::AnisotropicMedium{});
  mf::MuapParams muap_params;
  muap_params.fs_Hz = 2048.0;
  muap_params.source.dz_m = 0.25e-3;
  muap_params.source.dt_s = 0.1e-3;
  std::vector<Eigen::MatrixXd> muaps;
  for (int u = 0; u < n_units; ++u)
    muaps.push_back(mf::unit_muap(p.muscle.fibres, pool, static_cast<std::size_t>(u), 30, transfer,
                                  muap_params));
  // Independent discharges at about 10 Hz (CoV 0.2).
  const double duration = 8.0;
  std::vector<std::vector<double>> times(n_units);
  myotwin::Rng rng(11);
  for (int u = 0; u < n_units; ++u) {
    myotwin::Rng r = rng.split(static_cast<std::uint64_t>(u));
    for (double t = r.uniform(0.0, 0.1); t < duration - 0.05;)
      times[static_cast<std::size_t>(u)].push_back(t),
          t += 0.1 * std::max(0.3, 1.0 + 0.2 * r.normal());
  }
  mf::EmgParams emg;
  emg.snr_dB = snr_dB;
  const auto result = mf::synthesize_emg(muaps, 2048.0, times, duration, emg, rng.split(99));
  p.recording.source = "synthetic cylinder";
  p.recording.fs_Hz = result.fs_Hz;
  p.recording.emg = result.emg;
  p.truth = result.spike_samples;
  return p;
}

mi::BmissParams small_params() {
  mi::BmissParams b;
  b.n_iterations = 4;
  b.n_probe = 300;
  b.n_refine = 4;
  b.nelder_mead_evaluations = 40;
  b.n_fit_starts = 3;
  b.separation.preprocess.powerline_Hz = 0.0;
  return b;
}

mf::MuapModelParams model_params() {
  mf::MuapModelParams m;
  m.source.dz_m = 0.25e-3;
  m.source.dt_s = 0.1e-3;
  m.n_end_plate_shifts = 3;
  return m;
}

/// invert() of the cylinder problem through its own MUAP model (debug log with MYOTWIN_DEBUG).
mi::BmissResult invert_cylinder(const Problem& p, const mi::BmissParams& params) {
  if (std::getenv("MYOTWIN_DEBUG"))
    myotwin::set_log_level(myotwin::LogLevel::debug);
  const auto transfer =
      mf::infinite_medium_transfer_function(p.electrodes, mf::AnisotropicMedium{});
  const mf::MuapModel model(p.muscle.fibres, p.muscle.pool, transfer, 30, model_params());
  return mi::invert(p.recording, model, p.muscle, Eigen::MatrixX3d(), params);
}

/// The true unit whose discharges best match `discharges` (RoA at 1 sample, lags to 50), and
/// that RoA (-1 and 0 when none shares a discharge).
std::pair<int, double> best_match(const std::vector<std::int64_t>& discharges, const Problem& p) {
  int best = -1;
  double best_roa = 0.0;
  for (int u = 0; u < n_units; ++u) {
    const auto a = mi::compare_trains(discharges, p.truth[static_cast<std::size_t>(u)], 1, 50);
    const double roa =
        static_cast<double>(a.common) / static_cast<double>(a.common + a.only_a + a.only_b);
    if (roa > best_roa) {
      best_roa = roa;
      best = u;
    }
  }
  return {best, best_roa};
}

} // namespace

TEST(Bmiss, RecoversUnitsAndTheirTerritoriesThroughTheSubjectsModel) {
  const Problem p = make_problem(20.0);
  const auto result = invert_cylinder(p, small_params());
  const auto& units = result.decomposition.units;
  ASSERT_EQ(result.iterations.size(), 4U);
  int recovered = 0, impure = 0;
  double centre_error_sum = 0.0, cv_error_sum = 0.0, fibre_error_sum = 0.0;
  std::vector<char> found(n_units, 0);
  for (std::size_t k = 0; k < units.size(); ++k) {
    const auto [best, best_roa] = best_match(units[k].discharges, p);
    if (best_roa < 0.9)
      std::cout << "accepted unit " << k << " (SIL " << units[k].sil << ", CoV " << units[k].cov_isi
                << ") matches no true unit: best RoA " << best_roa << "\n";
    impure += best_roa < 0.9 ? 1 : 0;
    if (best < 0 || best_roa < 0.9 || found[static_cast<std::size_t>(best)])
      continue;
    found[static_cast<std::size_t>(best)] = 1;
    ++recovered;
    const auto& fit = result.properties[k];
    const auto& truth = p.muscle.pool.units[static_cast<std::size_t>(best)];
    const double centre_error = (fit.theta.centre_m - truth.territory_centre_m).norm();
    const double cv_error = std::abs(fit.theta.cv_m_per_s - truth.cv_m_per_s);
    std::cout << "unit " << best << ": RoA " << best_roa << ", centre error " << centre_error * 1e3
              << " mm, CV " << fit.theta.cv_m_per_s << " (true " << truth.cv_m_per_s << "), fibres "
              << fit.theta.n_fibres << " (true " << truth.n_fibres << "), residual "
              << fit.relative_residual << "\n";
    centre_error_sum += centre_error;
    cv_error_sum += cv_error;
    fibre_error_sum += std::abs(fit.theta.n_fibres - truth.n_fibres) / truth.n_fibres;
  }
  std::cout << recovered << " of " << n_units << " units recovered; per iteration:";
  for (const auto& it : result.iterations)
    std::cout << " " << it.n_units_total << " (" << it.time_s << " s)";
  std::cout << "\n";
  EXPECT_GE(recovered, 6);
  // Without fixed-point steps in the hand-over (the default, which gives the 100-unit benchmark
  // its most units) one accepted source here mixes two units (RoA 0.85, CoV of ISI 0.39); with
  // 3 steps none did, but the benchmark's true-MUAP bound fell from 19 units to 13.
  EXPECT_LE(impure, 1);
  ASSERT_GT(recovered, 0);
  EXPECT_LT(centre_error_sum / recovered, 1.5e-3);
  EXPECT_LT(cv_error_sum / recovered, 0.3);
  // The model's own amplitude carries the fibre count (a free scale lost it: factor 2).
  EXPECT_LT(fibre_error_sum / recovered, 0.3);
}

/// The cylinder's fibres cut in two muscles at x = 0 (left: x < 0), each with its own pool:
/// the units whose centre lies on that side, with their fibres on that side. The recording is
/// the whole cylinder's.
static std::pair<ma::MuscleModel, ma::MuscleModel> halves(const Problem& p) {
  ma::MuscleModel side[2];
  std::vector<Eigen::Index> new_index(p.muscle.fibres.fibres.size(), -1);
  for (int s = 0; s < 2; ++s) {
    auto& m = side[s];
    m.geometry.name = s == 0 ? "left" : "right";
    m.fibres.name = m.geometry.name;
    m.fibres.plane_centre_m = p.muscle.fibres.plane_centre_m;
    for (std::size_t f = 0; f < p.muscle.fibres.fibres.size(); ++f) {
      const auto& fibre = p.muscle.fibres.fibres[f];
      if ((fibre.seed_2d_m.x() < 0.0) == (s == 0)) {
        new_index[f] = static_cast<Eigen::Index>(m.fibres.fibres.size());
        m.fibres.fibres.push_back(fibre);
      }
    }
    const auto n_f = static_cast<Eigen::Index>(m.fibres.fibres.size());
    m.pool.fibre_unit = Eigen::VectorXi::Constant(n_f, -1);
    m.pool.fibre_cv_m_per_s = Eigen::VectorXd::Constant(n_f, 4.0);
    m.pool.fibre_diameter_m = Eigen::VectorXd::Constant(n_f, 50e-6);
    for (const auto& unit : p.muscle.pool.units) {
      if ((unit.territory_centre_m.x() < 0.0) != (s == 0))
        continue;
      ma::MotorUnit u = unit;
      u.fibres.clear();
      for (const auto f : unit.fibres)
        if (new_index[static_cast<std::size_t>(f)] >= 0 &&
            (p.muscle.fibres.fibres[static_cast<std::size_t>(f)].seed_2d_m.x() < 0.0) == (s == 0))
          u.fibres.push_back(new_index[static_cast<std::size_t>(f)]);
      u.index = static_cast<std::int64_t>(m.pool.units.size());
      for (const auto f : u.fibres) {
        m.pool.fibre_unit[f] = static_cast<int>(u.index);
        m.pool.fibre_cv_m_per_s[f] = u.cv_m_per_s;
      }
      u.n_fibres = 4.0 * static_cast<double>(u.fibres.size());
      m.pool.units.push_back(u);
    }
  }
  return {side[0], side[1]};
}

TEST(Bmiss, SeparatesSeveralMusclesAtOnceWithEachUnitsMuscleAParameter) {
  // The cylinder as two muscles: one search over both recovers the units as the search over the
  // whole muscle does, and fits each unit clearly inside one half to that half.
  const Problem p = make_problem(20.0);
  const auto [left, right] = halves(p);
  const auto transfer =
      mf::infinite_medium_transfer_function(p.electrodes, mf::AnisotropicMedium{});
  const mf::MuapModel left_model(left.fibres, left.pool, transfer, 30, model_params());
  const mf::MuapModel right_model(right.fibres, right.pool, transfer, 30, model_params());
  const std::vector<mi::SearchMuscle> muscles = {{&left_model, &left}, {&right_model, &right}};
  const auto result = mi::invert(p.recording, muscles, Eigen::MatrixX3d(), small_params());
  const auto& units = result.decomposition.units;
  ASSERT_EQ(result.properties.size(), units.size());
  int recovered = 0, right_side = 0, clear = 0;
  std::vector<char> found(n_units, 0);
  for (std::size_t k = 0; k < units.size(); ++k) {
    const auto [best, roa] = best_match(units[k].discharges, p);
    if (best < 0 || roa < 0.9 || found[static_cast<std::size_t>(best)])
      continue;
    found[static_cast<std::size_t>(best)] = 1;
    ++recovered;
    const double x = p.muscle.pool.units[static_cast<std::size_t>(best)].territory_centre_m.x();
    const auto& fit = result.properties[k];
    ASSERT_LT(fit.muscle, 2U);
    std::cout << "unit " << best << " (centre x " << x * 1e3 << " mm): fitted in "
              << muscles[fit.muscle].muscle->geometry.name << ", residual " << fit.relative_residual
              << "\n";
    if (std::abs(x) >= 2e-3) { // clearly inside one half
      ++clear;
      right_side += fit.muscle == (x < 0.0 ? 0U : 1U);
    }
  }
  std::cout << recovered << " of " << n_units << " recovered over two muscles; per iteration:";
  for (const auto& it : result.iterations)
    std::cout << " " << it.n_units_total << " (" << it.time_s << " s)";
  std::cout << "\n";
  EXPECT_GE(recovered, 6); // as over the whole muscle
  ASSERT_GE(clear, 3);
  EXPECT_EQ(right_side, clear);
  // An empty list and models of different electrodes are refused.
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { (void)mi::invert(p.recording, {}, Eigen::MatrixX3d(), small_params()); },
      {"invert: no muscles to search"});
}

TEST(Bmiss, AMusclesDistanceToTheElectrodesIsItsNearestFibrePoint) {
  const Problem p = make_problem(20.0);
  // The cylinder (radius 7 mm, axis 13 mm below the plane y = 0, z from -40 to 40 mm) and the
  // grid (y = 0, z from 2 to 32 mm): the nearest fibre lies 6 to 6.5 mm below an electrode.
  const double d = mi::distance_to_electrodes(p.muscle.fibres, p.electrodes);
  EXPECT_NEAR(d, 6.25e-3, 0.3e-3);
  // Electrodes moved 100 mm beyond the fibres' end along z.
  Eigen::MatrixX3d far = p.electrodes;
  far.col(2).array() += 140e-3;
  EXPECT_NEAR(mi::distance_to_electrodes(p.muscle.fibres, far),
              std::sqrt(6.25e-3 * 6.25e-3 + 102e-3 * 102e-3), 0.5e-3);
  EXPECT_TRUE(std::isinf(mi::distance_to_electrodes(p.muscle.fibres, Eigen::MatrixX3d())));
}

TEST(Bmiss, ASeparationSpaceFinerThanTheSearchSpaceRecoversTheUnitsThere) {
  const Problem p = make_problem(20.0);
  mi::BmissParams params = small_params();
  params.n_iterations = 3;
  // The search space: about 1000 / 30 = 33 (the decompose default); the separation space 40.
  params.extension_factor = 40;
  const auto result = invert_cylinder(p, params);
  const auto& d = result.decomposition;
  // The filters are those of the separation space.
  EXPECT_EQ(d.extension_factor, 40);
  int recovered = 0;
  std::vector<char> found(n_units, 0);
  for (const auto& unit : d.units) {
    ASSERT_EQ(unit.filter.cols(), 40);
    const auto [u, roa] = best_match(unit.discharges, p);
    if (roa >= 0.9 && !found[static_cast<std::size_t>(u)]) {
      found[static_cast<std::size_t>(u)] = 1;
      ++recovered;
    }
  }
  std::cout << recovered << " of " << n_units << " units recovered in the finer space, "
            << d.units.size() << " accepted\n";
  EXPECT_GE(recovered, 5);
  EXPECT_EQ(static_cast<int>(d.units.size()), recovered) << "every accepted unit is a true one";
}

TEST(Bmiss, TheWhitenedColumnsNormIsTheMatchedFiltersPeak) {
  // One unit alone in white noise: at each discharge the extended recording at the column's delay
  // is exactly the column plus noise, so the matched filter w = W c / |W c| peaks at |W c| there.
  const Eigen::Index n_ch = 4, n_m = 12, n = 40000;
  myotwin::Rng rng(5);
  Eigen::MatrixXd muap(n_m, n_ch);
  for (Eigen::Index t = 0; t < n_m; ++t)
    for (Eigen::Index c = 0; c < n_ch; ++c)
      muap(t, c) = std::sin(0.5 * static_cast<double>(t + 3 * c)) *
                   std::exp(-0.2 * static_cast<double>(t)) * 1e-4 * (1.0 + 0.1 * c);
  myotwin::forward::EmgRecording rec;
  rec.source = "one unit";
  rec.fs_Hz = 2048.0;
  rec.emg = Eigen::MatrixXd::Zero(n_ch, n);
  std::vector<std::int64_t> spikes;
  for (std::int64_t j = 50; j + n_m < n; j += 150 + static_cast<std::int64_t>(rng.uniform(0, 60)))
    spikes.push_back(j);
  for (const auto j : spikes)
    rec.emg.middleCols(j, n_m) += muap.transpose();
  for (Eigen::Index c = 0; c < n_ch; ++c)
    for (Eigen::Index k = 0; k < n; ++k)
      rec.emg(c, k) += 2e-6 * rng.normal();
  mi::DecomposeParams params;
  params.preprocess.highpass_Hz = 0.0;
  params.preprocess.lowpass_Hz = 0.0;
  params.preprocess.powerline_Hz = 0.0;
  params.preprocess.reject_channels = false;
  params.extension_factor = 5;
  mi::DecomposeStats stats;
  const mi::WhitenedEmg data = mi::whiten_emg(rec, params, stats);
  const Eigen::VectorXd column = mi::whitened_column(muap, data, params.preprocess);
  const Eigen::VectorXd s = mi::project(data.z, column.normalized());
  // The peak after each discharge (the column's delay is within the MUAP and the extension).
  double sum = 0.0;
  for (const auto j : spikes)
    sum += s.segment(j, n_m + 5).maxCoeff();
  const double peak = sum / static_cast<double>(spikes.size());
  std::cout << "|W c| = " << column.norm() << ", mean peak " << peak << " over " << spikes.size()
            << " discharges\n";
  EXPECT_GT(column.norm(), 5.0);
  EXPECT_NEAR(peak, column.norm(), 0.05 * column.norm());
}

TEST(Bmiss, AHandOverThatFailsAcceptanceIsRetriedWithTheFullFixedPoint) {
  // Two regular units (ISIs 190-210 and 230-250 samples); the hand-over starts half-way between
  // their whitened columns. Without fixed-point steps the source fires for both (a merged train,
  // CoV of ISI far above 0.4): rejected. The retry's fixed-point iterations converge to one of
  // them, which is accepted with its own discharges.
  const Eigen::Index n_ch = 6, n_m = 12, n = 40000;
  myotwin::Rng rng(9);
  std::vector<Eigen::MatrixXd> muaps(2, Eigen::MatrixXd(n_m, n_ch));
  for (int u = 0; u < 2; ++u)
    for (Eigen::Index t = 0; t < n_m; ++t)
      for (Eigen::Index c = 0; c < n_ch; ++c)
        muaps[u](t, c) = std::sin(0.5 * static_cast<double>(t) + (u == 0 ? 0.7 : 2.1) * c) *
                         std::exp(-0.2 * static_cast<double>(t)) * 1e-4;
  myotwin::forward::EmgRecording rec;
  rec.source = "two units";
  rec.fs_Hz = 2048.0;
  rec.emg = Eigen::MatrixXd::Zero(n_ch, n);
  std::vector<std::vector<std::int64_t>> spikes(2);
  for (int u = 0; u < 2; ++u) {
    for (std::int64_t j = 40 + 60 * u; j + n_m < n;
         j += (u == 0 ? 190 : 230) + static_cast<std::int64_t>(rng.uniform(0, 20)))
      spikes[u].push_back(j);
    for (const auto j : spikes[u])
      rec.emg.middleCols(j, n_m) += muaps[u].transpose();
  }
  for (Eigen::Index c = 0; c < n_ch; ++c)
    for (Eigen::Index k = 0; k < n; ++k)
      rec.emg(c, k) += 2e-6 * rng.normal();
  mi::BmissParams params;
  params.separation.preprocess.highpass_Hz = 0.0;
  params.separation.preprocess.lowpass_Hz = 0.0;
  params.separation.preprocess.powerline_Hz = 0.0;
  params.separation.preprocess.reject_channels = false;
  params.separation.extension_factor = 5;
  params.handover_fixed_point = 0;
  mi::DecomposeStats stats;
  const mi::WhitenedEmg white = mi::whiten_emg(rec, params.separation, stats);
  const Eigen::VectorXd w =
      (mi::whitened_column(muaps[0], white, params.separation.preprocess).normalized() +
       mi::whitened_column(muaps[1], white, params.separation.preprocess).normalized())
          .normalized();

  // The hand-over of w into a copy of the whitened data, with or without the retry.
  auto hand_over = [&](bool retry, mi::AcceptedUnits& accepted) {
    params.handover_retry = retry;
    mi::WhitenedEmg data = white;
    return mi::hand_over(w, 0, data, accepted, params, stats);
  };
  mi::AcceptedUnits none;
  const auto first = hand_over(false, none);
  ASSERT_TRUE(first.has_value());
  EXPECT_NE(*first, mi::Verdict::accepted);
  EXPECT_EQ(none.size(), 0U);
  mi::AcceptedUnits one;
  const auto second = hand_over(true, one);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*second, mi::Verdict::accepted);
  ASSERT_EQ(one.size(), 1U);
  // Its discharges are one unit's (RoA >= 0.9 within 2 samples of the MUAP's start).
  double best = 0.0;
  for (int u = 0; u < 2; ++u) {
    const auto a = mi::compare_trains(one.unit(0).discharges, spikes[u], 2, 20);
    best = std::max(best, a.roa);
  }
  EXPECT_GE(best, 0.9);
}

TEST(Bmiss, BadInputGivesClearMessages) {
  Problem p = make_problem(20.0);
  const auto transfer =
      mf::infinite_medium_transfer_function(p.electrodes.topRows(20), mf::AnisotropicMedium{});
  const mf::MuapModel model(p.muscle.fibres, p.muscle.pool, transfer, 20, model_params());
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { (void)mi::invert(p.recording, model, p.muscle, Eigen::MatrixX3d(), small_params()); },
      {"30 channels, but the subject's forward model has 20 electrodes"});
  const mf::MuapModel full(
      p.muscle.fibres, p.muscle.pool,
      mf::infinite_medium_transfer_function(p.electrodes, mf::AnisotropicMedium{}), 30,
      model_params());
  mi::BmissParams too_large = small_params();
  too_large.size_min_fibres = 1e7;
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { (void)mi::invert(p.recording, full, p.muscle, Eigen::MatrixX3d(), too_large); },
      {"size bounds [10000000", "exclude every motor unit of muscle"});
}

TEST(BmissParams, NameTheKeyOfABadValue) {
  myotwin::ConfigReader cfg(nlohmann::json{{"cv_min_m_per_s", 5.0}, {"cv_max_m_per_s", 4.0}},
                            "run.json");
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { (void)mi::read_bmiss_params(cfg, mi::DecomposeParams{}); },
      {"run.json", "cv_max_m_per_s", "expected >= cv_min_m_per_s (5), got 4"});
  myotwin::ConfigReader cfg2(nlohmann::json{{"n_fit_starts", 5}, {"n_fit_probe", 2}}, "run.json");
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { (void)mi::read_bmiss_params(cfg2, mi::DecomposeParams{}); },
      {"n_fit_probe", "expected >= n_fit_starts (5), got 2"});
  myotwin::ConfigReader cfg3(nlohmann::json{{"extension_factor", -2}}, "run.json");
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { (void)mi::read_bmiss_params(cfg3, mi::DecomposeParams{}); },
      {"run.json", "extension_factor", "-2"});
  myotwin::ConfigReader cfg5(nlohmann::json{{"handover_retry", 1}}, "run.json");
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { (void)mi::read_bmiss_params(cfg5, mi::DecomposeParams{}); },
      {"run.json", "handover_retry"});
  myotwin::ConfigReader cfg4(nlohmann::json{{"cancellation", "yes"}}, "run.json");
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { (void)mi::read_bmiss_params(cfg4, mi::DecomposeParams{}); },
      {"run.json", "cancellation"});
}

TEST(FitProperties, GivesBackTheParametersOfANoiseFreeModelMuap) {
  // The model's own MUAP at unit 3's parameters, band-passed like a recording, shifted by 7
  // samples into a window: the fit must return that unit's centre, size and CV.
  const Problem p = make_problem(20.0);
  const auto transfer =
      mf::infinite_medium_transfer_function(p.electrodes, mf::AnisotropicMedium{});
  const mf::MuapModel model(p.muscle.fibres, p.muscle.pool, transfer, 30, model_params());
  const mi::BmissParams params = small_params();
  const auto truth = model.parameters_of(p.muscle.fibres, p.muscle.pool, 3);
  const Eigen::MatrixXd m =
      mi::band_passed_muap(model.muap(truth), 2048.0, params.separation.preprocess);
  Eigen::MatrixXd sta = Eigen::MatrixXd::Zero(m.cols(), m.rows() + 7);
  sta.rightCols(m.rows()) = m.transpose();
  const auto fit = mi::fit_properties(sta, model, p.muscle, Eigen::MatrixX3d(), params);
  std::cout << "centre error " << (fit.theta.centre_m - truth.centre_m).norm() * 1e3 << " mm, CV "
            << fit.theta.cv_m_per_s << " (true " << truth.cv_m_per_s << "), fibres "
            << fit.theta.n_fibres << " (true " << truth.n_fibres << "), residual "
            << fit.relative_residual << "\n";
  EXPECT_LT((fit.theta.centre_m - truth.centre_m).norm(), 0.5e-3);
  EXPECT_NEAR(fit.theta.cv_m_per_s, truth.cv_m_per_s, 0.1);
  EXPECT_NEAR(fit.theta.n_fibres / truth.n_fibres, 1.0, 0.1);
  EXPECT_LT(fit.relative_residual, 0.1);
  EXPECT_TRUE(std::isnan(fit.depth_m)); // no skin given

  // The model's residual at the parameters that made the MUAP (whole-sample shift): nothing
  // left; with the search space's radius for that size, next to nothing (the fit itself stops
  // at 0.010: Nelder-Mead's 120 evaluations); 2 mm away from the centre, 20 times more.
  const double at_truth = mi::model_residual(sta, model, p.muscle, truth, params, false);
  auto moved = truth;
  moved.centre_m.x() += 2e-3;
  const double at_moved = mi::model_residual(sta, model, p.muscle, moved, params, false);
  const double searched = mi::model_residual(sta, model, p.muscle, truth, params, true);
  std::cout << "residual at the truth " << at_truth << ", 2 mm off " << at_moved << ", as searched "
            << searched << "\n";
  EXPECT_LT(at_truth, 1e-6);
  EXPECT_LT(searched, 0.005);
  EXPECT_GT(at_moved, 0.05);
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { (void)mi::model_residual(sta.topRows(20), model, p.muscle, truth, params, true); },
      {"model_residual: the MUAP has 20 channels, but the forward model has 30 electrodes"});
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] {
        (void)mi::model_residual(Eigen::MatrixXd::Zero(30, 40), model, p.muscle, truth, params,
                                 false);
      },
      {"model_residual: the MUAP (30 x 40) is empty, zero or not finite"});
  auto no_radius = truth;
  no_radius.radius_m = 0.0;
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { (void)mi::model_residual(sta, model, p.muscle, no_radius, params, false); },
      {"MUAP model: radius_m = 0 (expected finite and > 0)"});

  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] {
        (void)mi::fit_properties(sta.topRows(20), model, p.muscle, Eigen::MatrixX3d(), params);
      },
      {"the MUAP has 20 channels, but the forward model has 30 electrodes"});
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] {
        (void)mi::fit_properties(Eigen::MatrixXd::Zero(30, 40), model, p.muscle, Eigen::MatrixX3d(),
                                 params);
      },
      {"(30 x 40) is empty, zero or not finite"});
  mi::BmissParams no_starts = params;
  no_starts.n_fit_starts = 0;
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { (void)mi::fit_properties(sta, model, p.muscle, Eigen::MatrixX3d(), no_starts); },
      {"n_fit_starts = 0", "expected 1 <= n_fit_starts <= n_fit_probe"});
}

TEST(BmissBench, ThePaperSettingsSharesSpreadAndPublishedScoring) {
  // The published muscle list: FCU three shares of nine, so 33 of 100, the others 11 or 12.
  const std::vector<std::string> shares = {"ECRB", "ECRL", "PL",  "FCU", "ECU",
                                           "ED",   "FDS",  "FCU", "FCU"};
  EXPECT_EQ(mi::units_per_muscle(shares, 100),
            (std::vector<std::int64_t>{12, 11, 11, 33, 11, 11, 11}));
  // Spread evenly over a pool of 10 (indices of the units with fibres).
  const std::vector<std::size_t> pool = {0, 1, 2, 3, 5, 6, 7, 8, 9, 11};
  EXPECT_EQ(mi::spread_over_pool(pool, 3, "m"), (std::vector<std::size_t>{1, 6, 9}));
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { (void)mi::spread_over_pool(pool, 11, "FCU"); },
      {"muscle \"FCU\" gets 11 units but its pool has 10"});
  // Peaks above 0.3 of the maximum, at least 3 samples apart, the larger kept.
  Eigen::VectorXd s = Eigen::VectorXd::Zero(30);
  s[4] = 1.0;
  s[6] = 0.8; // within 3 of the larger: dropped
  s[12] = 0.31;
  s[20] = 0.29; // below 0.3: dropped
  EXPECT_EQ(mi::peaks_above(s, 0.3, 3), (std::vector<std::int64_t>{4, 12}));
  // The published rule: recall > 0.9 at exact samples after the best common lag, false positives
  // ignored, each true unit once, counted after each iteration.
  mi::SpikeTrains truth;
  truth.fs_Hz = 2048.0;
  std::vector<std::int64_t> a, b;
  for (int k = 0; k < 20; ++k) {
    a.push_back(100 + 200 * k);
    b.push_back(150 + 205 * k);
  }
  truth.samples = {a, b};
  std::vector<std::int64_t> shifted = a, spurious = a, missing(a.begin(), a.begin() + 17);
  for (auto& t : shifted)
    t += 7; // a constant lag: found
  for (int k = 0; k < 30; ++k)
    spurious.push_back(50 + 211 * k); // extra peaks: still found (false positives ignored)
  std::sort(spurious.begin(), spurious.end());
  const std::vector<mi::HandedOver> handed = {{0, missing}, // recall 17 / 20 = 0.85: not found
                                              {1, shifted}, // unit a at iteration 1
                                              {1, spurious},
                                              {2, b}}; // unit b at iteration 2
  EXPECT_EQ(mi::published_recovered(handed, truth, 3), (std::vector<std::int64_t>{0, 1, 2}));
  // One sample off at every discharge is not an exact coincidence.
  std::vector<std::int64_t> jittered = b;
  for (std::size_t k = 0; k < jittered.size(); k += 2)
    jittered[k] += 1;
  EXPECT_EQ(mi::published_recovered({{0, jittered}}, truth, 1), (std::vector<std::int64_t>{0}));
}
