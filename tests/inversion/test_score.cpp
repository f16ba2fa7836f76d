#include <gtest/gtest.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/forward/io/emg_file.hpp"
#include "myotwin/inversion/score.hpp"
#include "synthetic.hpp"
#include "test_support.hpp"

namespace mi = myotwin::inversion;
using myotwin::BadInput;
using myotwin::testing::expect_error;

namespace {

/// A path in single quotes (built by appending: GCC 12 warns falsely on the '+' form).
std::string q(const std::filesystem::path& p) {
  std::string s = "'";
  s += p.string();
  s += "'";
  return s;
}

} // namespace

TEST(CountCommon, PairsEachDischargeAtMostOnceWithinTheTolerance) {
  // a + 2 = {12, 22, 32, 42}; b has 12 (exact), 23 (1 off), 35 (3 off), 100.
  const std::vector<std::int64_t> a{10, 20, 30, 40}, b{12, 23, 35, 100};
  EXPECT_EQ(mi::count_common(a, b, 2, 0), 1);
  EXPECT_EQ(mi::count_common(a, b, 2, 1), 2);
  EXPECT_EQ(mi::count_common(a, b, 2, 3), 3);
  // Two discharges of a near one of b: one pair only.
  EXPECT_EQ(mi::count_common({10, 11}, {10}, 0, 1), 1);
}

TEST(CompareTrains, FindsTheLagAndGivesTheHandComputedRoa) {
  std::vector<std::int64_t> truth, dec;
  for (std::int64_t k = 0; k < 20; ++k)
    truth.push_back(100 + 200 * k);
  for (std::int64_t k = 0; k < 18; ++k)
    dec.push_back(truth[static_cast<std::size_t>(k)] - 7); // 18 common, 2 missed
  dec.push_back(5000);                                     // 1 false
  const auto r = mi::compare_trains(dec, truth, 1, 20);
  EXPECT_EQ(r.lag_samples, 7);
  EXPECT_EQ(r.common, 18);
  EXPECT_EQ(r.only_a, 1);
  EXPECT_EQ(r.only_b, 2);
  EXPECT_DOUBLE_EQ(r.roa, 18.0 / 21.0);
  // Outside the searched lags nothing matches.
  EXPECT_EQ(mi::compare_trains(dec, truth, 1, 5).common, 0);
}

TEST(Score, MatchesOneToOneGreedilyOnRoaAndReportsSensitivityAndPrecision) {
  std::vector<std::int64_t> t0, t1;
  for (std::int64_t k = 0; k < 50; ++k) {
    t0.push_back(300 * k);
    t1.push_back(300 * k + 137);
  }
  mi::SpikeTrains truth{"truth", 2048.0, {10, 11}, {t0, t1}};
  std::vector<std::int64_t> d1(t1.begin(), t1.begin() + 40);
  // d0 equals t0; d1 has 40 of t1; d2 duplicates t0 (should stay unmatched).
  mi::SpikeTrains dec{"dec", 2048.0, {0, 1, 2}, {t0, d1, t0}};
  const auto r = mi::score(dec, truth);
  ASSERT_EQ(r.matches.size(), 2u);
  EXPECT_EQ(r.matches[0].decomposed, 0);
  EXPECT_EQ(r.matches[0].truth, 0);
  EXPECT_DOUBLE_EQ(r.matches[0].agreement.roa, 1.0);
  EXPECT_EQ(r.matches[1].decomposed, 1);
  EXPECT_DOUBLE_EQ(r.matches[1].sensitivity, 0.8);
  EXPECT_DOUBLE_EQ(r.matches[1].precision, 1.0);
  EXPECT_EQ(r.unmatched_decomposed, std::vector<std::int64_t>{2});
  const auto json = mi::to_json(r, dec, truth);
  EXPECT_EQ(json["matches"][1]["true_unit"], 11);
}

TEST(Score, ConvertsIndicesAtAnotherRate) {
  mi::SpikeTrains truth{"t", 2000.0, {0}, {{100, 300, 500, 700}}};
  mi::SpikeTrains dec{"d", 1000.0, {0}, {{50, 150, 250, 350}}};
  EXPECT_DOUBLE_EQ(mi::score(dec, truth).matches.at(0).agreement.roa, 1.0);
}

TEST(ReadSpikeTrains, ReadsTheTruthOfEmgH5AndOfTheDemuseMat) {
  const myotwin::testing::TempDir dir;
  myotwin::forward::EmgResult emg;
  emg.fs_Hz = 2048.0;
  emg.emg = Eigen::MatrixXd::Zero(2, 1000);
  emg.emg_clean = emg.emg;
  emg.snr_dB = Eigen::VectorXd::Zero(2);
  emg.noise_rms_V = Eigen::VectorXd::Zero(2);
  emg.spike_samples = {{5, 100, 900}, {0, 7}};
  myotwin::forward::UnitProperties units;
  units.unit_id = {3, 8};
  myotwin::forward::write_emg_h5(dir / "emg.h5", emg, units);
  myotwin::forward::write_emg_mat(dir / "emg.mat", emg, units);
  for (const auto* name : {"emg.h5", "emg.mat"}) {
    const auto t = mi::read_spike_trains(dir / name);
    EXPECT_DOUBLE_EQ(t.fs_Hz, 2048.0) << name;
    ASSERT_EQ(t.samples.size(), 2u) << name;
    EXPECT_EQ(t.samples[0], (std::vector<std::int64_t>{5, 100, 900})) << name;
    EXPECT_EQ(t.samples[1], (std::vector<std::int64_t>{0, 7})) << name;
  }
  EXPECT_EQ(mi::read_spike_trains(dir / "emg.h5").unit_id, (std::vector<std::int64_t>{3, 8}));
  myotwin::H5Writer w(dir / "other.h5");
  w.write_vector("x", Eigen::VectorXd::Zero(3));
  w.commit();
  expect_error<BadInput>([&] { mi::read_spike_trains(dir / "other.h5"); },
                         {"other.h5", "no discharge trains"});
}

TEST(Cli, DecomposesAndScoresASyntheticEmgH5) {
  const myotwin::testing::TempDir dir;
  const auto syn = myotwin::testing::make_synthetic_emg(4, 4, 4, 6.0, 20.0, 9);
  myotwin::forward::EmgResult emg;
  emg.fs_Hz = syn.recording.fs_Hz;
  emg.emg = syn.recording.emg;
  emg.emg_clean = emg.emg;
  emg.snr_dB = Eigen::VectorXd::Zero(16);
  emg.noise_rms_V = Eigen::VectorXd::Zero(16);
  emg.spike_samples = syn.truth;
  myotwin::forward::ChannelLayout layout;
  layout.grid_row_col = syn.recording.grid_row_col;
  myotwin::forward::write_emg_h5(dir / "emg.h5", emg, {}, layout);
  const auto emg_path = q(dir / "emg.h5");
  const auto out = q(dir / "out");
  const auto r = myotwin::testing::run_myotwin("decompose " + emg_path + " -o " + out +
                                               " --extension-factor 12 --iterations 12");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto* f :
       {"decomposition.h5", "decomposition.mat", "summary.json", "resolved_config.json"})
    EXPECT_TRUE(std::filesystem::exists(dir / "out" / "decomposition" / f)) << f;
  const auto s = myotwin::testing::run_myotwin(
      "score " + q(dir / "out" / "decomposition" / "decomposition.h5") + " " + emg_path);
  ASSERT_EQ(s.exit_code, 0) << s.output;
  EXPECT_NE(s.output.find("true units; mean RoA"), std::string::npos) << s.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "out" / "decomposition" / "score.json"));
  // A declared duration that does not fit: exit 2, nothing written.
  const auto bad = myotwin::testing::run_myotwin("decompose " + emg_path + " -o " + q(dir / "bad") +
                                                 " --duration-s 3");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("duration_s = 3 was declared"), std::string::npos) << bad.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "bad" / "decomposition" / "decomposition.h5"));
}
