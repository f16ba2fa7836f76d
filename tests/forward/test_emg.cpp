// Tests of the EMG synthesis (sub-sample placement of MUAPs, anti-aliased resampling, noise at a
// set SNR) and of its outputs (emg.h5, DEMUSE-layout .mat).

#include <chrono>
#include <cmath>
#include <numbers>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <omp.h>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/mat_file.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/forward/drive/discharge_import.hpp"
#include "myotwin/forward/emg/emg.hpp"
#include "myotwin/forward/io/emg_file.hpp"
#include "test_support.hpp"

using namespace myotwin;
using namespace myotwin::forward;
using myotwin::testing::expect_error;
using myotwin::testing::TempDir;

namespace {

constexpr double muap_fs_Hz = 10240.0;
constexpr double centre_s = 0.010;
constexpr double sigma_s = 0.0015;

/// The test MUAP shape: a Gaussian derivative, peak +1 at t = centre - sigma [1].
double wavelet(double t_s) {
  const double x = (t_s - centre_s) / sigma_s;
  return -x * std::exp(0.5 - 0.5 * x * x);
}

/// Channel c of unit u: amplitude (1 + u) * (1 + 0.5 c) uV, delayed by 0.3 ms per channel.
double muap_value(std::size_t u, Eigen::Index c, double t_s) {
  return 1e-6 * (1.0 + static_cast<double>(u)) * (1.0 + 0.5 * static_cast<double>(c)) *
         wavelet(t_s - 0.0003 * static_cast<double>(c));
}

std::vector<Eigen::MatrixXd> make_muaps(std::size_t n_units, Eigen::Index n_channels) {
  const Eigen::Index n = 256; // 25 ms at 10240 Hz
  std::vector<Eigen::MatrixXd> muaps;
  for (std::size_t u = 0; u < n_units; ++u) {
    Eigen::MatrixXd m(n, n_channels);
    for (Eigen::Index j = 0; j < n; ++j)
      for (Eigen::Index c = 0; c < n_channels; ++c)
        m(j, c) = muap_value(u, c, static_cast<double>(j) / muap_fs_Hz);
    muaps.push_back(m);
  }
  return muaps;
}

EmgParams clean_params() {
  EmgParams p;
  p.add_noise = false;
  return p;
}

/// Regular trains with an irrational-ish offset so that discharges fall between samples.
std::vector<std::vector<double>> make_trains(std::size_t n_units, double duration_s) {
  std::vector<std::vector<double>> trains(n_units);
  for (std::size_t u = 0; u < n_units; ++u)
    for (double t = 0.0123 + 0.0171 * static_cast<double>(u); t < duration_s;
         t += 1.0 / (9.3 + 1.7 * static_cast<double>(u)))
      trains[u].push_back(t);
  return trains;
}

} // namespace

TEST(Emg, CleanSignalEqualsAnalyticSumOfMuapsAtExactDischargeTimes) {
  const auto muaps = make_muaps(3, 4);
  const double duration_s = 1.0;
  const auto trains = make_trains(3, duration_s);
  const auto r = synthesize_emg(muaps, muap_fs_Hz, trains, duration_s, clean_params(), Rng(1));
  ASSERT_EQ(r.emg_clean.rows(), 4);
  ASSERT_EQ(r.emg_clean.cols(), 2048);
  EXPECT_EQ(r.emg, r.emg_clean);
  const double scale = r.emg_clean.cwiseAbs().maxCoeff();
  double worst = 0.0;
  for (Eigen::Index n = 0; n < r.emg_clean.cols(); n += 7) {
    for (Eigen::Index c = 0; c < 4; ++c) {
      double expected = 0.0;
      for (std::size_t u = 0; u < trains.size(); ++u)
        for (const double t : trains[u])
          expected += muap_value(u, c, static_cast<double>(n) / 2048.0 - t);
      worst = std::max(worst, std::abs(r.emg_clean(c, n) - expected) / scale);
    }
  }
  EXPECT_LT(worst, 1e-3);
  std::cout << "[ measure  ] worst |clean - analytic| / peak = " << worst << "\n";
  // Truth: round(t * fs).
  EXPECT_EQ(r.spike_samples[1][0], std::llround(trains[1][0] * 2048.0));
}

TEST(Emg, OperationCountOfTheRunEstimateSpansTheRowsOneDischargeWrites) {
  // The run estimate counts 2 x rows x channels per discharge, rows being the output samples a
  // discharge's table spans; one discharge of a MUAP that is nonzero at both ends writes
  // exactly those rows (the kernel's support on each side of the MUAP).
  const Eigen::Index n_muap = 256;
  const Eigen::MatrixXd muap = Eigen::MatrixXd::Constant(n_muap, 3, 1e-6);
  const EmgParams p = clean_params();
  const double muap_duration_s = static_cast<double>(n_muap - 1) / muap_fs_Hz;
  const double per_discharge = synthesis_operations(muap_duration_s, muap_fs_Hz, 1.0, 3.0, p) -
                               synthesis_operations(muap_duration_s, muap_fs_Hz, 0.0, 3.0, p);
  const double rows = per_discharge / (2.0 * 3.0);
  const auto r = synthesize_emg({muap}, muap_fs_Hz, {{0.5}}, 1.0, p, Rng(1));
  Eigen::Index first = -1, last = -1;
  for (Eigen::Index n = 0; n < r.emg_clean.cols(); ++n)
    if (r.emg_clean(0, n) != 0.0) {
      first = first < 0 ? n : first;
      last = n;
    }
  ASSERT_GE(first, 0);
  EXPECT_NEAR(rows, static_cast<double>(last - first + 1), 3.0);
  // The tables: n_exact (16) dense n_rows x n_muap products per channel dominate, and every
  // term is linear in the channels.
  EXPECT_GT(synthesis_operations(muap_duration_s, muap_fs_Hz, 0.0, 3.0, p),
            16.0 * rows * static_cast<double>(n_muap) * 3.0 * 0.95);
  EXPECT_DOUBLE_EQ(synthesis_operations(muap_duration_s, muap_fs_Hz, 7.0, 6.0, p),
                   2.0 * synthesis_operations(muap_duration_s, muap_fs_Hz, 7.0, 3.0, p));
}

TEST(Emg, ParamsRoundTripThroughTheirConfigSection) {
  EmgParams p;
  p.fs_Hz = 4096.0;
  p.add_noise = false;
  p.snr_dB = 12.5;
  p.n_phases = 32;
  p.cutoff_fraction = 0.4;
  p.kernel_zero_crossings = 12;
  p.kaiser_beta = 6.0;
  const nlohmann::json section = to_json(p);
  ConfigReader c(section, "emg");
  const EmgParams q = read_emg_params(c);
  c.finish();
  EXPECT_EQ(to_json(q), section);
  EXPECT_FALSE(q.add_noise);
  EXPECT_EQ(q.n_phases, 32);
  EXPECT_NE(to_json(EmgParams{}), section);
}

TEST(Emg, FractionalDischargeTimeShiftsTheMuapBySubSampleAmount) {
  const auto muaps = make_muaps(1, 1);
  const double fs = 2048.0;
  const double t0 = (100.0 + 0.37) / fs;
  const auto r = synthesize_emg(muaps, muap_fs_Hz, {{t0}}, 0.2, clean_params(), Rng(1));
  const auto r0 = synthesize_emg(muaps, muap_fs_Hz, {{100.0 / fs}}, 0.2, clean_params(), Rng(1));
  // Delay estimated by least squares against the analytic template (a cross-correlation with
  // the continuous MUAP), on a 0.0005-sample grid.
  auto estimate = [&](const Eigen::MatrixXd& y) {
    double best_d = 0.0;
    double best = 1e300;
    for (double d = 98.0; d <= 103.0; d += 0.0005) {
      double sse = 0.0;
      for (Eigen::Index n = 0; n < y.cols(); ++n) {
        const double e = y(0, n) - muap_value(0, 0, (static_cast<double>(n) - d) / fs);
        sse += e * e;
      }
      if (sse < best) {
        best = sse;
        best_d = d;
      }
    }
    return best_d;
  };
  const double d = estimate(r.emg_clean);
  const double d0 = estimate(r0.emg_clean);
  EXPECT_NEAR(d, 100.37, 0.02);
  EXPECT_NEAR(d - d0, 0.37, 0.02);
  // Peak by parabolic interpolation, against the analytic peak time t0 + centre - sigma.
  Eigen::Index k = 0;
  r.emg_clean.row(0).maxCoeff(&k);
  const double ym = r.emg_clean(0, k - 1), y0 = r.emg_clean(0, k), yp = r.emg_clean(0, k + 1);
  const double peak = static_cast<double>(k) + 0.5 * (ym - yp) / (ym - 2.0 * y0 + yp);
  std::cout << "[ measure  ] delay error " << (d - 100.37) << " samples (template fit), "
            << (peak - (t0 + centre_s - sigma_s) * fs) << " samples (parabolic peak)\n";
  EXPECT_NEAR(peak, (t0 + centre_s - sigma_s) * fs, 0.05);
}

TEST(Emg, ResamplingFromAHigherRateRemovesFrequenciesAboveTheOutputNyquist) {
  // A 1500 Hz tone at 10240 Hz is above 1024 Hz: nothing of it may alias into the output.
  Eigen::MatrixXd tone(512, 1);
  for (Eigen::Index j = 0; j < 512; ++j)
    tone(j, 0) = std::sin(2.0 * std::numbers::pi * 1500.0 * static_cast<double>(j) / muap_fs_Hz);
  const auto r = synthesize_emg({tone}, muap_fs_Hz, {{0.05}}, 0.2, clean_params(), Rng(1));
  // Away from the tone's abrupt ends (whose broadband edges pass), the middle is ~0.
  const Eigen::Index n_mid = static_cast<Eigen::Index>((0.05 + 0.025) * 2048.0);
  EXPECT_LT(r.emg_clean.block(0, n_mid - 10, 1, 20).cwiseAbs().maxCoeff(), 1e-3);
}

TEST(Emg, RealisedSnrMatchesTheRequestWithinAFifthOfADecibel) {
  const auto muaps = make_muaps(3, 8);
  const auto trains = make_trains(3, 10.0);
  for (const double snr : {10.0, 20.0}) {
    EmgParams p;
    p.snr_dB = snr;
    const auto r = synthesize_emg(muaps, muap_fs_Hz, trains, 10.0, p, Rng(7));
    for (Eigen::Index c = 0; c < 8; ++c) {
      const double rms_clean = std::sqrt(r.emg_clean.row(c).squaredNorm() / 20480.0);
      const double rms_noise =
          std::sqrt((r.emg.row(c) - r.emg_clean.row(c)).squaredNorm() / 20480.0);
      const double realised = 20.0 * std::log10(rms_clean / rms_noise);
      EXPECT_NEAR(realised, snr, 0.2);
      EXPECT_NEAR(r.snr_dB[c], realised, 1e-9);
    }
  }
}

TEST(Emg, NoiseIsDeterministicPerSeedAndIndependentOfThreadCount) {
  const auto muaps = make_muaps(4, 6);
  const auto trains = make_trains(4, 2.0);
  EmgParams p;
  p.snr_dB = 15.0;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto a = synthesize_emg(muaps, muap_fs_Hz, trains, 2.0, p, Rng(11));
  omp_set_num_threads(std::max(2, saved));
  const auto b = synthesize_emg(muaps, muap_fs_Hz, trains, 2.0, p, Rng(11));
  omp_set_num_threads(3);
  const auto b3 = synthesize_emg(muaps, muap_fs_Hz, trains, 2.0, p, Rng(11));
  omp_set_num_threads(saved);
  const auto c = synthesize_emg(muaps, muap_fs_Hz, trains, 2.0, p, Rng(12));
  EXPECT_EQ(a.emg, b.emg);
  EXPECT_EQ(a.emg, b3.emg);
  EXPECT_EQ(a.emg_clean, b.emg_clean);
  EXPECT_EQ(a.emg_clean, c.emg_clean);
  EXPECT_NE(a.emg, c.emg);
}

TEST(Emg, BadInputGivesClearMessages) {
  const auto muaps = make_muaps(2, 3);
  expect_error<BadInput>(
      [&] {
        synthesize_emg(muaps, muap_fs_Hz, {{0.1}, {0.2, 1.5}}, 1.0, clean_params(), Rng(1));
      },
      {"unit 1", "1.5", "beyond the signal"});
  expect_error<BadInput>(
      [&] {
        synthesize_emg(muaps, muap_fs_Hz, {{-0.01}, {0.2}}, 1.0, clean_params(), Rng(1));
      },
      {"unit 0", "-0.01"});
  expect_error<BadInput>([&] { synthesize_emg({}, muap_fs_Hz, {}, 1.0, clean_params(), Rng(1)); },
                         {"empty"});
  auto mixed = muaps;
  mixed[1] = Eigen::MatrixXd::Ones(10, 5);
  expect_error<BadInput>(
      [&] {
        synthesize_emg(mixed, muap_fs_Hz, {{0.1}, {0.2}}, 1.0, clean_params(), Rng(1));
      },
      {"unit 1", "5 channels", "expected 3"});
  EmgParams nan_snr;
  nan_snr.snr_dB = std::nan("");
  expect_error<BadInput>(
      [&] {
        synthesize_emg(muaps, muap_fs_Hz, {{0.1}, {0.2}}, 1.0, nan_snr, Rng(1));
      },
      {"snr_dB", "nan", "finite number"});
  ConfigReader cfg(nlohmann::json{{"snr_dB", "not a number"}}, "subject.json");
  expect_error<BadInput>([&] { read_emg_params(cfg); }, {"subject.json", "snr_dB"});
  ConfigReader cfg2(nlohmann::json{{"noise", "pink"}}, "subject.json");
  expect_error<BadInput>([&] { read_emg_params(cfg2); }, {"noise", "pink"});
}

TEST(Emg, ConfigReadsKeysWithDefaults) {
  ConfigReader cfg(nlohmann::json{{"fs_Hz", 4096}, {"noise", "none"}, {"snr_dB", 12.5}}, "x.json");
  const auto p = read_emg_params(cfg);
  cfg.finish();
  EXPECT_EQ(p.fs_Hz, 4096.0);
  EXPECT_FALSE(p.add_noise);
  EXPECT_EQ(p.snr_dB, 12.5);
  EXPECT_EQ(p.n_phases, 64);
}

TEST(EmgIo, H5FileHoldsSignalsFsAndTruthSpikes) {
  TempDir dir;
  const auto muaps = make_muaps(3, 4);
  const auto r = synthesize_emg(muaps, muap_fs_Hz, make_trains(3, 1.0), 1.0, EmgParams{}, Rng(3));
  UnitProperties units;
  units.unit_id = {0, 5, 9};
  units.muscle = {"FDS", "FDS", "EDC"};
  units.depth_m = Eigen::Vector3d(0.005, 0.01, 0.015);
  units.territory_centre_m = Eigen::MatrixXd::Random(3, 3);
  units.n_fibres = VectorXi64::Constant(3, 120);
  units.cv_m_per_s = Eigen::Vector3d(3.5, 4.0, 4.5);
  units.end_plate_m = Eigen::MatrixXd::Constant(3, 1, 0.1);
  ChannelLayout layout;
  layout.grid_row_col.resize(4, 2);
  layout.grid_row_col << 0, 0, 1, 0, 0, 1, 1, 1;
  layout.grid_name = "test2x2";
  write_emg_h5(dir / "emg.h5", r, units, layout);
  H5Reader h5(dir / "emg.h5");
  EXPECT_EQ(std::get<double>(h5.attributes("emg").at("fs_Hz")), 2048.0);
  EXPECT_EQ(h5.read_double("emg"), r.emg);
  EXPECT_EQ(h5.read_double("emg_clean"), r.emg_clean);
  for (std::size_t u = 0; u < 3; ++u) {
    const auto s = h5.read_int64("truth/spikes/" + std::to_string(units.unit_id[u]));
    ASSERT_EQ(s.size(), static_cast<Eigen::Index>(r.spike_samples[u].size()));
    for (Eigen::Index k = 0; k < s.size(); ++k)
      EXPECT_EQ(s(k, 0), r.spike_samples[u][static_cast<std::size_t>(k)]);
  }
  EXPECT_EQ(h5.read_double("truth/units/cv_m_per_s")(2, 0), 4.5);
  EXPECT_EQ(std::get<std::string>(h5.attributes("truth/units/muscle_index").at("muscles")),
            "FDS;EDC");
  EXPECT_EQ(h5.read_int64("truth/units/muscle_index")(2, 0), 1);
  units.depth_m = Eigen::Vector2d(0.0, 0.0);
  expect_error<BadInput>([&] { write_emg_h5(dir / "bad.h5", r, units, layout); },
                         {"depth_m", "2 rows", "expected 3"});
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.h5"));
}

TEST(EmgIo, MatFileMuPulsesReadBackIdentically) {
  TempDir dir;
  const auto muaps = make_muaps(3, 4);
  const auto r = synthesize_emg(muaps, muap_fs_Hz, make_trains(3, 1.0), 1.0, EmgParams{}, Rng(3));
  ChannelLayout layout;
  layout.grid_row_col.resize(4, 2);
  layout.grid_row_col << 0, 0, 1, 0, 0, 1, 1, 2; // (0, 2) and (1, 1) left empty
  write_emg_mat(dir / "emg.mat", r, {}, layout);
  const auto back = read_discharges_mat(dir / "emg.mat");
  ASSERT_TRUE(back.fs_Hz.has_value());
  EXPECT_EQ(*back.fs_Hz, 2048.0);
  ASSERT_EQ(back.sample_indices.size(), 3u);
  for (std::size_t u = 0; u < 3; ++u)
    EXPECT_EQ(back.sample_indices[u], r.spike_samples[u]);
}

TEST(EmgIo, MatFileHasWhatOpenhdemgsDemuseLoaderReadsAndTheSameBytesEachTime) {
  // openhdemg's emg_from_demuse(): int(fsamp), int(IED), IPTs (#units x #samples, transposed
  // into samples x units), MUPulses (a cell per unit, 1-based), SIG (a cell per channel),
  // ref_signal.
  TempDir dir;
  const auto muaps = make_muaps(3, 4);
  const auto r = synthesize_emg(muaps, muap_fs_Hz, make_trains(3, 1.0), 1.0, EmgParams{}, Rng(3));
  ChannelLayout layout;
  layout.grid_row_col.resize(4, 2);
  layout.grid_row_col << 0, 0, 1, 0, 0, 1, 1, 1;
  layout.position_m.resize(4, 3);
  layout.position_m << 0, 0, 0, 0.008, 0, 0, 0, 0.008, 0, 0.008, 0.008, 0; // 8 mm apart
  write_emg_mat(dir / "emg.mat", r, {}, layout);
  {
    const myotwin::mat::Reader mat(dir / "emg.mat");
    const auto scalar = [&](const char* name) {
      const auto v = mat.read(name);
      EXPECT_TRUE(v.has_value()) << name;
      return v && v->scalar() ? *v->scalar() : std::nan("");
    };
    EXPECT_EQ(scalar("fsamp"), 2048.0);
    EXPECT_NEAR(scalar("IED"), 8.0, 1e-9);
    const auto n_samples = static_cast<std::size_t>(r.emg.cols());
    const auto dims = [&](const char* name) {
      const auto v = mat.read(name);
      EXPECT_TRUE(v.has_value()) << name;
      return v ? v->dims : std::vector<std::size_t>{};
    };
    EXPECT_EQ(dims("IPTs"), (std::vector<std::size_t>{3, n_samples}));
    EXPECT_EQ(dims("MUPulses"), (std::vector<std::size_t>{1, 3}));
    EXPECT_EQ(dims("SIG"), (std::vector<std::size_t>{2, 2}));
    EXPECT_EQ(dims("ref_signal"), (std::vector<std::size_t>{1, n_samples}));
  }
  // The header carries no creation time: a second file a second later has the same bytes.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  write_emg_mat(dir / "again.mat", r, {}, layout);
  EXPECT_EQ(myotwin::read_text_file(dir / "emg.mat"), myotwin::read_text_file(dir / "again.mat"));
  // No grid (needles): IED 0.
  write_emg_mat(dir / "needles.mat", r, {}, ChannelLayout{});
  EXPECT_EQ(myotwin::mat::Reader(dir / "needles.mat").read("IED")->scalar(), 0.0);
}
