// Tests of the motor-neuron drive (Fuglevand pool, excitation profiles, common input) and of the
// import of real discharge times (MATLAB MUPulses/fsamp files, CSV).

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <matio.h>
#include <omp.h>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/forward/drive/discharge_import.hpp"
#include "myotwin/forward/drive/drive.hpp"
#include "test_support.hpp"

using namespace myotwin;
using namespace myotwin::forward;
using myotwin::testing::expect_error;
using myotwin::testing::TempDir;

namespace {

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
}

DriveParams constant_params(double level, double duration_s) {
  DriveParams p;
  p.duration_s = duration_s;
  p.profile.type = ProfileType::constant;
  p.profile.level = level;
  return p;
}

struct IsiStats {
  double mean_s = 0, cov = 0;
  std::size_t n = 0;
};

IsiStats isi_stats(const std::vector<double>& t) {
  IsiStats s;
  if (t.size() < 3)
    return s;
  std::vector<double> isi(t.size() - 1);
  for (std::size_t k = 1; k < t.size(); ++k)
    isi[k - 1] = t[k] - t[k - 1];
  s.n = isi.size();
  s.mean_s = std::accumulate(isi.begin(), isi.end(), 0.0) / static_cast<double>(s.n);
  double var = 0;
  for (double v : isi)
    var += (v - s.mean_s) * (v - s.mean_s);
  var /= static_cast<double>(s.n - 1);
  s.cov = std::sqrt(var) / s.mean_s;
  return s;
}

ConfigReader reader(const std::string& json, const std::filesystem::path& dir = {}) {
  return ConfigReader(nlohmann::json::parse(json), "drive.json", dir);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Rate law and thresholds

TEST(Drive, ExponentialThresholdsMatchFuglevandsPool) {
  const auto r = exponential_thresholds(100);
  ASSERT_EQ(r.size(), 100u);
  EXPECT_NEAR(r.back(), 30.0 / 47.0, 1e-15);
  EXPECT_NEAR(r.back() / r.front(), 30.0, 1e-9);
  EXPECT_TRUE(std::is_sorted(r.begin(), r.end()));
  // In Fuglevand's units (first threshold = 1) the last unit reaches its peak of 25 pps at the
  // maximum excitation 47 (fraction 1).
  const DriveParams p;
  EXPECT_NEAR(discharge_rate_pps(p, r, 99, 1.0), 25.0, 1e-9);
  EXPECT_NEAR(discharge_rate_pps(p, r, 99, r.back()), 8.0, 1e-12);
  EXPECT_EQ(discharge_rate_pps(p, r, 99, 0.99 * r.back()), 0.0);
  // The first unit: 8 pps at threshold, +1 pps per Fuglevand unit, capped at 35 - 10/30.
  EXPECT_NEAR(discharge_rate_pps(p, r, 0, 3.0 * r.front()), 10.0, 1e-12);
  EXPECT_NEAR(discharge_rate_pps(p, r, 0, 1.0), 35.0 - 10.0 / 30.0, 1e-9);
  expect_error<BadInput>([] { exponential_thresholds(0); }, {"n_units = 0", "empty"});
}

TEST(Drive, ConstantExcitationGivesFuglevandRatesAndConfiguredIsiCov) {
  const auto thresholds = exponential_thresholds(20);
  const DriveParams p = constant_params(0.35, 200.0);
  const auto res = simulate_drive(p, thresholds, Rng(7));
  ASSERT_EQ(res.discharge_times_s.size(), 20u);
  EXPECT_EQ(res.excitation.size(), static_cast<std::size_t>(200.0 * 2048.0));
  int n_recruited = 0;
  for (std::size_t i = 0; i < thresholds.size(); ++i) {
    const auto& t = res.discharge_times_s[i];
    if (thresholds[i] > 0.35) {
      EXPECT_TRUE(t.empty()) << "unit " << i << " above threshold";
      continue;
    }
    ++n_recruited;
    ASSERT_GT(t.size(), 100u) << "unit " << i;
    EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
    EXPECT_GE(t.front(), 0.0);
    EXPECT_LT(t.back(), p.duration_s);
    const auto s = isi_stats(t);
    const double expected_pps = discharge_rate_pps(p, thresholds, i, 0.35);
    EXPECT_NEAR(1.0 / s.mean_s, expected_pps, 0.05 * expected_pps) << "unit " << i;
    EXPECT_NEAR(s.cov, 0.2, 0.02) << "unit " << i;
  }
  EXPECT_GE(n_recruited, 10);
  EXPECT_LT(n_recruited, 20);
}

TEST(Drive, IsiCovFollowsTheParameter) {
  DriveParams p = constant_params(0.5, 100.0);
  p.isi_cov = 0.1;
  const auto res = simulate_drive(p, {0.05, 0.2}, Rng(3));
  for (const auto& t : res.discharge_times_s)
    EXPECT_NEAR(isi_stats(t).cov, 0.1, 0.01);
  p.isi_cov = 0.0;
  const auto reg = simulate_drive(p, {0.05}, Rng(3));
  EXPECT_NEAR(isi_stats(reg.discharge_times_s[0]).cov, 0.0, 1e-9);
}

TEST(Drive, DoubletsAndPausesComeAtTheirProbabilitiesAndLeaveTheRestAlone) {
  DriveParams p = constant_params(0.5, 200.0);
  p.isi_cov = 0.1;
  const auto plain = simulate_drive(p, {0.05}, Rng(9));
  p.doublet_probability = 0.05;
  p.pause_probability = 0.02;
  const auto res = simulate_drive(p, {0.05}, Rng(9));
  const auto& t = res.discharge_times_s[0];
  std::size_t n_doublets = 0, n_pauses = 0, n_regular = 0;
  double sum_regular = 0.0;
  for (std::size_t k = 1; k < t.size(); ++k) {
    const double isi = t[k] - t[k - 1];
    if (isi < 0.02) {
      ++n_doublets;
      EXPECT_GE(isi, 0.005 - 1e-12);
      EXPECT_LE(isi, 0.015 + 1e-12);
    } else if (isi > 0.3) {
      ++n_pauses;
    } else {
      ++n_regular;
      sum_regular += isi;
    }
  }
  // A doublet follows 5 % of the regular discharges, a pause 2 % of the intervals.
  const double n = static_cast<double>(t.size() - n_doublets);
  EXPECT_NEAR(static_cast<double>(n_doublets) / n, 0.05, 0.01);
  EXPECT_NEAR(static_cast<double>(n_pauses) / n, 0.02, 0.006);
  // The regular intervals keep the rate of the unit without them.
  EXPECT_NEAR(sum_regular / static_cast<double>(n_regular),
              isi_stats(plain.discharge_times_s[0]).mean_s,
              0.02 * isi_stats(plain.discharge_times_s[0]).mean_s);
  expect_error<BadInput>(
      [] {
        auto c = reader(R"({"doublet_isi_min_ms": 12, "doublet_isi_max_ms": 8})");
        read_drive_params(c);
      },
      {"doublet_isi_max_ms", "must be >= doublet_isi_min_ms = 12"});
}

TEST(Drive, RampRecruitsUnitsInThresholdOrderWhenExcitationPassesThreshold) {
  // Thresholds deliberately not sorted: the order of recruitment must follow their values.
  const std::vector<double> thresholds{0.3, 0.05, 0.6, 0.1, 0.45, 0.2};
  DriveParams p;
  p.duration_s = 20.0;
  p.profile.type = ProfileType::ramp;
  p.profile.start_level = 0.0;
  p.profile.end_level = 0.7;
  const auto res = simulate_drive(p, thresholds, Rng(11));
  std::vector<std::size_t> order(thresholds.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](auto a, auto b) { return thresholds[a] < thresholds[b]; });
  double previous_first = -1.0;
  for (std::size_t i : order) {
    const auto& t = res.discharge_times_s[i];
    ASSERT_FALSE(t.empty()) << "unit " << i;
    const double crossing_s = thresholds[i] / 0.7 * 20.0;
    const double isi_s = 1.0 / p.min_rate_pps;
    EXPECT_GE(t.front(), crossing_s - 1.0 / p.fs_Hz) << "unit " << i;
    EXPECT_LE(t.front(), crossing_s + isi_s) << "unit " << i;
    EXPECT_GT(t.front(), previous_first);
    previous_first = t.front();
  }
}

TEST(Drive, SameSeedSameOutputAtAnyThreadCountOtherSeedDiffers) {
  DriveParams p = constant_params(0.4, 5.0);
  p.common_input_sd_fraction = 0.1;
  const auto thresholds = exponential_thresholds(40);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto a = simulate_drive(p, thresholds, Rng(42));
  omp_set_num_threads(2);
  const auto b = simulate_drive(p, thresholds, Rng(42));
  omp_set_num_threads(saved);
  EXPECT_EQ(a.discharge_times_s, b.discharge_times_s);
  EXPECT_EQ(a.excitation, b.excitation);
  const auto c = simulate_drive(p, thresholds, Rng(43));
  EXPECT_NE(a.discharge_times_s, c.discharge_times_s);
  EXPECT_NE(a.excitation, c.excitation);
}

TEST(Drive, SteadyUnitsDoNotAllFireAtTimeZero) {
  const auto res = simulate_drive(constant_params(0.5, 2.0), exponential_thresholds(10), Rng(5));
  int at_zero = 0;
  for (const auto& t : res.discharge_times_s)
    at_zero += (!t.empty() && t.front() == 0.0) ? 1 : 0;
  EXPECT_LE(at_zero, 1);
}

TEST(Drive, CommonInputHasTheConfiguredRelativeSdAndIsShared) {
  DriveParams p = constant_params(0.3, 60.0);
  p.common_input_sd_fraction = 0.1;
  p.common_input_cutoff_Hz = 5.0;
  const auto res = simulate_drive(p, {0.1}, Rng(9));
  const auto& e = res.excitation;
  const double mean = std::accumulate(e.begin(), e.end(), 0.0) / static_cast<double>(e.size());
  double var = 0;
  for (double v : e)
    var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / static_cast<double>(e.size()));
  EXPECT_NEAR(mean, 0.3, 0.003);
  EXPECT_NEAR(sd / 0.3, 0.1, 0.005);
  // Low-pass: neighbouring samples are almost equal (5 Hz cut-off at 2048 Hz).
  double d2 = 0;
  for (std::size_t k = 1; k < e.size(); ++k)
    d2 += (e[k] - e[k - 1]) * (e[k] - e[k - 1]);
  EXPECT_LT(std::sqrt(d2 / static_cast<double>(e.size())), 0.05 * sd); // white: sqrt(2) sd
}

// ---------------------------------------------------------------------------------------------
// Profiles

TEST(Drive, ProfilesAreSampledCorrectly) {
  ExcitationProfile q;
  q.type = ProfileType::trapezoid;
  q.baseline_level = 0.05;
  q.level = 0.5;
  q.onset_s = 1.0;
  q.rise_s = 2.0;
  q.plateau_s = 3.0;
  q.fall_s = 2.0;
  const double fs = 100.0;
  auto e = sample_excitation(q, 10.0, fs);
  ASSERT_EQ(e.size(), 1000u);
  const auto at = [&](double t) { return e[static_cast<std::size_t>(std::llround(t * fs))]; };
  EXPECT_DOUBLE_EQ(at(0.0), 0.05);
  EXPECT_DOUBLE_EQ(at(0.99), 0.05);
  EXPECT_NEAR(at(2.0), 0.275, 1e-12);
  for (double t = 3.0; t < 5.995; t += 0.01)
    EXPECT_DOUBLE_EQ(at(t), 0.5) << "plateau at t = " << t;
  EXPECT_NEAR(at(7.0), 0.275, 1e-12);
  EXPECT_DOUBLE_EQ(at(8.0), 0.05);
  EXPECT_DOUBLE_EQ(at(9.99), 0.05);

  q = {};
  q.type = ProfileType::constant;
  q.level = 0.2;
  e = sample_excitation(q, 1.0, fs);
  EXPECT_TRUE(std::all_of(e.begin(), e.end(), [](double v) { return v == 0.2; }));

  q = {};
  q.type = ProfileType::ramp;
  q.start_level = 0.1;
  q.end_level = 0.5;
  q.ramp_start_s = 1.0;
  q.ramp_end_s = 3.0;
  e = sample_excitation(q, 5.0, fs);
  EXPECT_DOUBLE_EQ(at(0.5), 0.1);
  EXPECT_NEAR(at(2.0), 0.3, 1e-12);
  EXPECT_DOUBLE_EQ(at(4.0), 0.5);

  q = {};
  q.type = ProfileType::sinusoid;
  q.mean_level = 0.3;
  q.amplitude = 0.1;
  q.frequency_Hz = 0.5;
  e = sample_excitation(q, 4.0, fs);
  EXPECT_NEAR(at(0.0), 0.3, 1e-12);
  EXPECT_NEAR(at(0.5), 0.4, 1e-12);
  EXPECT_NEAR(at(1.5), 0.2, 1e-12);
}

TEST(Drive, CsvProfileIsInterpolatedAndMustCoverTheRun) {
  TempDir dir;
  write_text(dir / "exc.csv", "# a ramp\ntime_s,excitation\n0,0\n1,0.2\n2,0.2\n");
  const auto q = read_excitation_csv(dir / "exc.csv");
  EXPECT_EQ(q.type, ProfileType::csv);
  const auto e = sample_excitation(q, 2.0, 10.0);
  ASSERT_EQ(e.size(), 20u);
  EXPECT_NEAR(e[5], 0.1, 1e-12);
  EXPECT_NEAR(e[15], 0.2, 1e-12);
  expect_error<BadInput>([&] { sample_excitation(q, 5.0, 10.0); },
                         {"exc.csv", "do not cover the run"});
}

// ---------------------------------------------------------------------------------------------
// Config and bad input

TEST(Drive, ReadsParamsFromConfig) {
  auto c = reader(R"({"duration_s": 12, "fs_Hz": 4096, "isi_cov": 0.15,
      "profile": {"type": "trapezoid", "level": 0.4, "rise_s": 1, "plateau_s": 10, "fall_s": 1}})");
  const auto p = read_drive_params(c);
  c.finish();
  EXPECT_EQ(p.duration_s, 12.0);
  EXPECT_EQ(p.fs_Hz, 4096.0);
  EXPECT_EQ(p.isi_cov, 0.15);
  EXPECT_EQ(p.min_rate_pps, 8.0);
  EXPECT_EQ(p.profile.type, ProfileType::trapezoid);
  EXPECT_EQ(p.profile.level, 0.4);
  EXPECT_EQ(p.profile.plateau_s, 10.0);
  EXPECT_EQ(c.resolved()["profile"]["fall_s"], 1.0);
  EXPECT_EQ(c.resolved()["peak_rate_last_pps"], 25.0);

  auto r = reader(R"({"duration_s": 8, "profile": {"type": "ramp", "end_level": 0.6}})");
  const auto pr = read_drive_params(r);
  r.finish();
  EXPECT_EQ(pr.profile.ramp_end_s, 8.0);
}

TEST(Drive, ParamsRoundTripThroughTheirConfigSection) {
  // Every field to_json() writes is read back into the same field: a key read into the wrong
  // field, or written but never read, changes the second section.
  DriveParams p;
  p.duration_s = 7.5;
  p.fs_Hz = 4096.0;
  p.min_rate_pps = 7.0;
  p.peak_rate_first_pps = 40.0;
  p.peak_rate_last_pps = 22.0;
  p.rate_gain_pps = 1.5;
  p.isi_cov = 0.13;
  p.doublet_probability = 0.02;
  p.doublet_isi_min_ms = 4.0;
  p.doublet_isi_max_ms = 12.0;
  p.pause_probability = 0.01;
  p.pause_min_s = 0.25;
  p.pause_max_s = 0.8;
  p.common_input_sd_fraction = 0.1;
  p.common_input_cutoff_Hz = 3.0;
  p.profile.type = ProfileType::trapezoid;
  p.profile.level = 0.35;
  p.profile.rise_s = 1.0;
  p.profile.plateau_s = 5.0;
  p.profile.fall_s = 1.5;
  const nlohmann::json section = to_json(p);
  ConfigReader c(section, "drive");
  const DriveParams q = read_drive_params(c);
  c.finish();
  EXPECT_EQ(to_json(q), section);
  EXPECT_EQ(q.doublet_isi_max_ms, 12.0);
  EXPECT_EQ(q.profile.fall_s, 1.5);
  EXPECT_NE(to_json(DriveParams{}), section);
}

TEST(Drive, BadInputsGiveClearMessages) {
  expect_error<BadInput>(
      [] {
        auto c = reader(R"({"profile": {"type": "square"}})");
        read_drive_params(c);
      },
      {"drive.json", "profile.type", "square", "must be one of"});
  expect_error<BadInput>(
      [] {
        auto c = reader(R"({"duration_s": -1})");
        read_drive_params(c);
      },
      {"drive.json", "duration_s = -1", "must be in [0.001, 3600]"});
  expect_error<BadInput>(
      [] {
        auto c =
            reader(R"({"profile": {"type": "sinusoid", "mean_level": 0.1, "amplitude": 0.2}})");
        read_drive_params(c);
      },
      {"profile.amplitude", "mean_level"});
  expect_error<BadInput>(
      [] {
        auto c = reader(R"({"profile": {"type": "constant", "levle": 0.1}})");
        read_drive_params(c);
        c.finish();
      },
      {"profile.levle", "unknown key"});
  TempDir dir;
  write_text(dir / "bad.csv", "time_s,excitation\n0,0.1\n0.5,abc\n");
  expect_error<BadInput>(
      [&] {
        auto c = reader(R"({"profile": {"type": "csv", "path": "bad.csv"}})", dir.path());
        read_drive_params(c);
      },
      {"bad.csv", "line 3", "0.5,abc", "expected two numbers"});
  write_text(dir / "back.csv", "time_s,excitation\n0,0.1\n1,0.1\n0.5,0.1\n");
  expect_error<BadInput>([&] { read_excitation_csv(dir / "back.csv"); },
                         {"back.csv", "line 4", "greater than the previous time"});
  write_text(dir / "nohead.csv", "0,0.1\n");
  expect_error<BadInput>([&] { read_excitation_csv(dir / "nohead.csv"); },
                         {"nohead.csv", "time_s,excitation"});
  expect_error<IoError>([&] { read_excitation_csv(dir / "absent.csv"); }, {"absent.csv"});

  DriveParams p = constant_params(0.3, -2.0);
  expect_error<BadInput>([&] { simulate_drive(p, {0.1}, Rng(1)); },
                         {"drive: duration_s = -2", "must be in [0.001, 3600]"});
  p.duration_s = 1.0;
  expect_error<BadInput>([&] { simulate_drive(p, {}, Rng(1)); }, {"empty motor-unit set"});
  expect_error<BadInput>(
      [&] {
        simulate_drive(p, {0.1, 1.5}, Rng(1));
      },
      {"unit 1", "1.5", "(0, 1]"});
}

// ---------------------------------------------------------------------------------------------
// Discharge import

namespace {

/// Writes MUPulses (cell of double row vectors, 1-based indices) and fsamp with matio; false
/// when matio cannot create this file version.
bool write_mupulses(const std::filesystem::path& path, enum mat_ft version,
                    const std::vector<std::vector<double>>& pulses, double fsamp) {
  mat_t* mat = Mat_CreateVer(path.string().c_str(), nullptr, version);
  if (mat == nullptr)
    return false;
  std::size_t cell_dims[2] = {1, pulses.size()};
  std::vector<matvar_t*> cells(pulses.size() + 1, nullptr);
  for (std::size_t u = 0; u < pulses.size(); ++u) {
    std::size_t dims[2] = {1, pulses[u].size()};
    cells[u] = Mat_VarCreate(nullptr, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims,
                             const_cast<double*>(pulses[u].data()), 0);
  }
  matvar_t* cell = Mat_VarCreate("MUPulses", MAT_C_CELL, MAT_T_CELL, 2, cell_dims, cells.data(), 0);
  std::size_t one[2] = {1, 1};
  matvar_t* fs = Mat_VarCreate("fsamp", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, one, &fsamp, 0);
  const bool ok = Mat_VarWrite(mat, cell, MAT_COMPRESSION_NONE) == 0 &&
                  Mat_VarWrite(mat, fs, MAT_COMPRESSION_NONE) == 0;
  Mat_VarFree(cell);
  Mat_VarFree(fs);
  Mat_Close(mat);
  return ok;
}

} // namespace

TEST(DischargeImport, RoundTripsMatV5AndV73) {
  TempDir dir;
  const std::vector<std::vector<double>> pulses{{300, 500, 700}, {1, 205, 410, 600}, {100, 2048}};
  for (const auto& [version, name] :
       {std::pair{MAT_FT_MAT5, "v5"}, std::pair{MAT_FT_MAT73, "v73"}}) {
    const auto path = dir / (std::string("pulses_") + name + ".mat");
    if (!write_mupulses(path, version, pulses, 2048.0)) {
      if (version == MAT_FT_MAT73) {
        std::cout << "[  SKIPPED ] v7.3: matio was built without HDF5 (Mat_CreateVer failed)\n";
        continue;
      }
      FAIL() << "matio cannot write a v5 file";
    }
    const auto d = read_discharges_mat(path);
    ASSERT_TRUE(d.fs_Hz.has_value()) << name;
    EXPECT_EQ(*d.fs_Hz, 2048.0);
    ASSERT_EQ(d.times_s.size(), 3u) << name;
    for (std::size_t u = 0; u < 3; ++u) {
      ASSERT_EQ(d.times_s[u].size(), pulses[u].size());
      for (std::size_t k = 0; k < pulses[u].size(); ++k) {
        EXPECT_EQ(d.times_s[u][k], (pulses[u][k] - 1.0) / 2048.0) << name;
        EXPECT_EQ(d.sample_indices[u][k], static_cast<std::int64_t>(pulses[u][k]) - 1);
      }
    }
    EXPECT_EQ(d.times_s[1].front(), 0.0);
    // Recruitment order: unit 1 (first discharge at index 1), unit 2 (100), unit 0 (300).
    const auto m = map_by_recruitment_order(d, 2);
    EXPECT_EQ(m.imported_unit, (std::vector<std::int64_t>{1, 2}));
    EXPECT_EQ(m.times_s[0], d.times_s[1]);
    EXPECT_EQ(m.unassigned_imported, (std::vector<std::int64_t>{0}));
    const auto m5 = map_by_recruitment_order(d, 5);
    EXPECT_EQ(m5.n_model_units_without_discharges, 2);
    EXPECT_TRUE(m5.times_s[4].empty());
    EXPECT_EQ(m5.imported_unit[4], -1);
    EXPECT_TRUE(m5.unassigned_imported.empty());
  }
}

TEST(DischargeImport, BadMatFilesGiveMessagesNamingFileAndVariable) {
  TempDir dir;
  expect_error<IoError>([&] { read_discharges_mat(dir / "absent.mat"); },
                        {"absent.mat", "not found"});
  write_text(dir / "text.mat", "not a mat file");
  expect_error<IoError>([&] { read_discharges_mat(dir / "text.mat"); }, {"text.mat"});

  // fsamp present, no MUPulses.
  {
    const auto p = dir / "nopulses.mat";
    mat_t* mat = Mat_CreateVer(p.string().c_str(), nullptr, MAT_FT_MAT5);
    ASSERT_NE(mat, nullptr);
    double fs = 2048;
    std::size_t one[2] = {1, 1};
    matvar_t* v = Mat_VarCreate("fsamp", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, one, &fs, 0);
    Mat_VarWrite(mat, v, MAT_COMPRESSION_NONE);
    Mat_VarFree(v);
    Mat_Close(mat);
    expect_error<BadInput>([&] { read_discharges_mat(p); }, {"nopulses.mat", "MUPulses"});
  }
  // MUPulses present, fsamp a string.
  {
    const auto p = dir / "charfs.mat";
    ASSERT_TRUE(write_mupulses(p, MAT_FT_MAT5, {{1, 2}}, 2048));
    mat_t* mat = Mat_Open(p.string().c_str(), MAT_ACC_RDWR);
    ASSERT_NE(mat, nullptr);
    Mat_VarDelete(mat, "fsamp");
    char text[] = "2048";
    std::size_t dims[2] = {1, 4};
    matvar_t* v = Mat_VarCreate("fsamp", MAT_C_CHAR, MAT_T_UINT8, 2, dims, text, 0);
    Mat_VarWrite(mat, v, MAT_COMPRESSION_NONE);
    Mat_VarFree(v);
    Mat_Close(mat);
    expect_error<BadInput>([&] { read_discharges_mat(p); }, {"charfs.mat", "fsamp", "char"});
  }
  // An empty unit, a non-integer index, decreasing indices.
  {
    const auto p = dir / "empty.mat";
    ASSERT_TRUE(write_mupulses(p, MAT_FT_MAT5, {{1, 2}, {}}, 2048));
    expect_error<BadInput>([&] { read_discharges_mat(p); }, {"empty.mat", "MUPulses{2}", "empty"});
    const auto q = dir / "frac.mat";
    ASSERT_TRUE(write_mupulses(q, MAT_FT_MAT5, {{1, 2.5}}, 2048));
    expect_error<BadInput>([&] { read_discharges_mat(q); }, {"frac.mat", "MUPulses{1}(2) = 2.5"});
    const auto r = dir / "back.mat";
    ASSERT_TRUE(write_mupulses(r, MAT_FT_MAT5, {{5, 3}}, 2048));
    expect_error<BadInput>([&] { read_discharges_mat(r); }, {"back.mat", "strictly increasing"});
  }
}

TEST(DischargeImport, ReadsCsvAndRejectsBadRows) {
  TempDir dir;
  write_text(dir / "d.csv", "# fs_Hz = 2048\nunit,time_s\n3,0.5\n1,0.2\n3,0.25\n1,0.1\n");
  const auto d = read_discharges(dir / "d.csv");
  ASSERT_TRUE(d.fs_Hz.has_value());
  EXPECT_EQ(*d.fs_Hz, 2048.0);
  EXPECT_EQ(d.unit_ids, (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(d.times_s[0], (std::vector<double>{0.1, 0.2}));
  EXPECT_EQ(d.times_s[1], (std::vector<double>{0.25, 0.5}));
  write_text(dir / "bad.csv", "unit,time_s\n0,0.1\nx,0.2\n");
  expect_error<BadInput>([&] { read_discharges(dir / "bad.csv"); },
                         {"bad.csv", "line 3", "x,0.2", "unit,time_s"});
  write_text(dir / "neg.csv", "unit,time_s\n0,-0.1\n");
  expect_error<BadInput>([&] { read_discharges(dir / "neg.csv"); }, {"neg.csv", "time_s = -0.1"});
  write_text(dir / "none.csv", "unit,time_s\n");
  expect_error<BadInput>([&] { read_discharges(dir / "none.csv"); }, {"none.csv", "no discharges"});
  expect_error<BadInput>([&] { read_discharges(dir / "d.txt"); }, {"d.txt", ".mat"});
}

TEST(DischargeImport, ReadsRealCaillet2023FileExactly) {
  const auto path = myotwin::testing::shared_data("real/caillet2023/S1_30_64L.mat");
  if (path.empty())
    GTEST_SKIP() << "real data absent: " MYOTWIN_SHARED_DATA "/real/caillet2023/S1_30_64L.mat";
  const auto d = read_discharges_mat(path);
  ASSERT_TRUE(d.fs_Hz.has_value());
  EXPECT_EQ(*d.fs_Hz, 2048.0);
  ASSERT_GT(d.times_s.size(), 0u);

  // The same indices read with matio directly.
  mat_t* mat = Mat_Open(path.string().c_str(), MAT_ACC_RDONLY);
  ASSERT_NE(mat, nullptr);
  matvar_t* pulses = Mat_VarRead(mat, "MUPulses");
  ASSERT_NE(pulses, nullptr);
  ASSERT_EQ(pulses->class_type, MAT_C_CELL);
  std::size_t n_cells = 1;
  for (int k = 0; k < pulses->rank; ++k)
    n_cells *= pulses->dims[k];
  ASSERT_EQ(n_cells, d.times_s.size());
  double duration_s = 0;
  for (std::size_t u = 0; u < n_cells; ++u) {
    matvar_t* c = Mat_VarGetCell(pulses, static_cast<int>(u));
    ASSERT_NE(c, nullptr);
    std::size_t n = 1;
    for (int k = 0; k < c->rank; ++k)
      n *= c->dims[k];
    ASSERT_EQ(n, d.times_s[u].size()) << "unit " << u;
    for (std::size_t k = 0; k < n; ++k) {
      double index = 0;
      switch (c->class_type) {
      case MAT_C_DOUBLE:
        index = static_cast<const double*>(c->data)[k];
        break;
      case MAT_C_UINT16:
        index = static_cast<const std::uint16_t*>(c->data)[k];
        break;
      case MAT_C_UINT32:
        index = static_cast<const std::uint32_t*>(c->data)[k];
        break;
      case MAT_C_INT32:
        index = static_cast<const std::int32_t*>(c->data)[k];
        break;
      default:
        FAIL() << "unit " << u << ": class " << c->class_type << " not handled by this test";
      }
      ASSERT_EQ(d.times_s[u][k], (index - 1.0) / 2048.0) << "unit " << u << " discharge " << k;
    }
    duration_s = std::max(duration_s, d.times_s[u].back());
  }
  Mat_VarFree(pulses);
  Mat_Close(mat);

  for (std::size_t u = 0; u < d.times_s.size(); ++u) {
    const auto& t = d.times_s[u];
    ASSERT_GE(t.size(), 2u);
    // Mean rate over the unit's active span, from the median ISI (robust to pauses).
    std::vector<double> isi(t.size() - 1);
    for (std::size_t k = 1; k < t.size(); ++k)
      isi[k - 1] = t[k] - t[k - 1];
    std::nth_element(isi.begin(), isi.begin() + static_cast<long>(isi.size() / 2), isi.end());
    const double rate_Hz = 1.0 / isi[isi.size() / 2];
    EXPECT_GE(rate_Hz, 4.0) << "unit " << u;
    EXPECT_LE(rate_Hz, 30.0) << "unit " << u;
  }
  std::cout << "S1_30_64L.mat: " << d.times_s.size() << " units, last discharge at " << duration_s
            << " s\n";
  const auto m = map_by_recruitment_order(d, d.times_s.size());
  for (std::size_t r = 1; r < m.times_s.size(); ++r)
    EXPECT_LE(m.times_s[r - 1].front(), m.times_s[r].front());
}
