#include <cmath>

#include <gtest/gtest.h>
#include <omp.h>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/forward/discharge_import.hpp"
#include "myotwin/inversion/decompose.hpp"
#include "myotwin/inversion/decomposition_io.hpp"
#include "myotwin/inversion/score.hpp"
#include "synthetic.hpp"
#include "test_support.hpp"

namespace mi = myotwin::inversion;
using myotwin::BadInput;
using myotwin::testing::expect_error;
using myotwin::testing::make_synthetic_emg;

namespace {

mi::DecomposeParams small_params() {
  mi::DecomposeParams p;
  p.extension_factor = 12;
  p.n_iterations = 16;
  p.max_stalled_candidates = 6;
  return p;
}

/// Best RoA of each decomposed unit against any true unit (0.5 ms, +-50 ms).
std::vector<double> best_roa(const mi::Decomposition& d,
                             const std::vector<std::vector<std::int64_t>>& truth, double fs) {
  std::vector<double> out;
  const auto tol = static_cast<std::int64_t>(std::floor(0.5e-3 * fs));
  const auto lag = static_cast<std::int64_t>(0.05 * fs);
  for (const auto& u : d.units) {
    double best = 0.0;
    for (const auto& t : truth)
      best = std::max(best, mi::compare_trains(u.discharges, t, tol, lag).roa);
    out.push_back(best);
  }
  return out;
}

} // namespace

TEST(DetectSpikes, FindsExactlyTheImpulsesOfACleanPulseTrainWithSilNearOne) {
  Eigen::VectorXd s = Eigen::VectorXd::Zero(4000);
  myotwin::Rng rng(3);
  for (Eigen::Index k = 0; k < s.size(); ++k)
    s[k] = 0.05 * rng.normal();
  std::vector<std::int64_t> truth;
  for (std::int64_t k = 50; k < 4000; k += 97) {
    s[k] = 1.0 + 0.05 * rng.normal();
    truth.push_back(k);
  }
  const auto det = mi::detect_spikes(s, 20);
  EXPECT_EQ(det.discharges, truth);
  EXPECT_GT(det.sil, 0.98);
}

TEST(DetectSpikes, GivesALowSilForGaussianNoise) {
  Eigen::VectorXd s(8000);
  myotwin::Rng rng(5);
  for (Eigen::Index k = 0; k < s.size(); ++k)
    s[k] = rng.normal();
  EXPECT_LT(mi::detect_spikes(s, 20).sil, 0.9); // below the acceptance threshold
}

TEST(CovIsi, IsZeroForARegularTrainAndMatchesAHandComputedCase) {
  double rate = 0.0;
  EXPECT_NEAR(mi::cov_isi({0, 100, 200, 300}, 1000.0, 0.5, &rate), 0.0, 1e-12);
  EXPECT_NEAR(rate, 10.0, 1e-9);
  // ISIs 0.1, 0.2 (and a 1 s pause left out): mean 0.15, sd 0.05.
  EXPECT_NEAR(mi::cov_isi({0, 100, 300, 1300}, 1000.0, 0.5, &rate), 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(rate, 1.0 / 0.15, 1e-9);
}

TEST(Pnr, IsTenLog10OfThePowerRatio) {
  Eigen::VectorXd s = Eigen::VectorXd::Constant(100, 0.1);
  s[10] = s[50] = 1.0;
  EXPECT_NEAR(mi::pnr_dB(s, {10, 50}), 20.0, 1e-9);
}

TEST(NeuralDrive, OfARegularTrainIsItsRateAwayFromTheEnds) {
  std::vector<std::int64_t> train;
  for (std::int64_t k = 0; k < 20000; k += 100)
    train.push_back(k);
  const auto drive = mi::neural_drive({train, train}, 20000, 1000.0, 400);
  EXPECT_NEAR(drive[10000], 20.0, 0.2); // two units at 10 pps
  EXPECT_NEAR(drive.segment(1000, 18000).mean(), 20.0, 0.05);
}

TEST(Decompose, FindsTheUnitsOfASyntheticMixtureAt20dBWithRoaAbove90Percent) {
  const auto syn = make_synthetic_emg(6, 4, 4, 10.0, 20.0, 11);
  const auto d = mi::decompose(syn.recording, small_params());
  const auto roa = best_roa(d, syn.truth, syn.recording.fs_Hz);
  int good = 0;
  for (std::size_t u = 0; u < roa.size(); ++u) {
    EXPECT_GE(roa[u], 0.9) << "unit " << u << " SIL " << d.units[u].sil;
    EXPECT_GE(d.units[u].sil, 0.9);
    good += roa[u] >= 0.9 ? 1 : 0;
  }
  EXPECT_GE(good, 5) << "of 6 units";
  // The scoring agrees: one-to-one matches at RoA >= 0.9.
  mi::SpikeTrains dec{"dec", d.fs_Hz, {}, {}}, truth{"truth", d.fs_Hz, {}, syn.truth};
  for (std::size_t u = 0; u < d.units.size(); ++u) {
    dec.unit_id.push_back(static_cast<std::int64_t>(u));
    dec.samples.push_back(d.units[u].discharges);
  }
  for (std::size_t u = 0; u < syn.truth.size(); ++u)
    truth.unit_id.push_back(static_cast<std::int64_t>(u));
  const auto score = mi::score(dec, truth);
  EXPECT_GE(score.matches.size(), 5u);
  EXPECT_GE(score.mean_roa, 0.9);
  // MUAP on every channel, filter #channels x R, drive about the summed rate.
  ASSERT_FALSE(d.units.empty());
  EXPECT_EQ(d.units[0].muap.rows(), 16);
  EXPECT_EQ(d.units[0].filter.rows(), 16);
  EXPECT_EQ(d.units[0].filter.cols(), 12);
  double total_rate = 0.0;
  for (const auto& u : d.units)
    total_rate += u.rate_pps;
  EXPECT_NEAR(d.neural_drive_pps.segment(4096, 8192).mean(), total_rate, 0.15 * total_rate);
}

TEST(Decompose, TheSeparationFilterReproducesTheSourceOnTheFilteredEmg) {
  auto params = small_params();
  params.peel_off = false; // with peel-off later sources come from the peeled data
  params.n_iterations = 3;
  const auto syn = make_synthetic_emg(3, 4, 4, 6.0, 30.0, 5);
  const auto d = mi::decompose(syn.recording, params);
  ASSERT_FALSE(d.units.empty());
  const auto& u = d.units[0];
  const auto& f = d.preprocessing.filtered;
  Eigen::VectorXd s = Eigen::VectorXd::Zero(f.cols());
  for (Eigen::Index c = 0; c < f.rows(); ++c) {
    const Eigen::RowVectorXd x = f.row(c).array() - f.row(c).mean();
    for (Eigen::Index dl = 0; dl < u.filter.cols(); ++dl)
      s.tail(f.cols() - dl) += u.filter(c, dl) * x.head(f.cols() - dl).transpose();
  }
  const double corr = (s.array() * u.source.array()).sum() / (s.norm() * u.source.norm());
  EXPECT_GT(corr, 0.999);
}

TEST(Decompose, GivesTheSameBitsAtOneAndTwoThreads) {
  const auto syn = make_synthetic_emg(4, 4, 4, 5.0, 20.0, 21);
  auto params = small_params();
  params.n_iterations = 8;
  omp_set_num_threads(1);
  const auto a = mi::decompose(syn.recording, params);
  omp_set_num_threads(2);
  const auto b = mi::decompose(syn.recording, params);
  ASSERT_EQ(a.units.size(), b.units.size());
  for (std::size_t u = 0; u < a.units.size(); ++u) {
    EXPECT_EQ(a.units[u].discharges, b.units[u].discharges);
    EXPECT_TRUE(a.units[u].source == b.units[u].source);
    EXPECT_TRUE(a.units[u].filter == b.units[u].filter);
  }
}

TEST(Decompose, RejectsARecordingTooShortForTheExtension) {
  const auto syn = make_synthetic_emg(2, 4, 4, 0.5, 20.0, 1);
  auto params = small_params();
  params.extension_factor = 100; // 1600 extended channels for 1024 samples
  expect_error<BadInput>([&] { mi::decompose(syn.recording, params); },
                         {"synthetic", "1024 samples are too few", "extension factor 100"});
}

TEST(Decompose, RejectsNanSamplesAndAllChannelsRejected) {
  auto syn = make_synthetic_emg(2, 2, 2, 1.0, 20.0, 1);
  auto rec = syn.recording;
  rec.emg(1, 77) = std::nan("");
  expect_error<BadInput>([&] { mi::decompose(rec, small_params()); },
                         {"channel 1 sample 77", "finite"});
  rec = syn.recording;
  rec.emg.setZero();
  expect_error<BadInput>([&] { mi::decompose(rec, small_params()); },
                         {"all 4 channels were rejected", "flat"});
}

TEST(DecomposeParams, NameTheKeyOfABadValue) {
  myotwin::ConfigReader cfg(nlohmann::json{{"sil_threshold", 1.5}}, "run.json");
  expect_error<BadInput>([&] { mi::read_decompose_params(cfg); },
                         {"run.json", "sil_threshold", "1.5"});
  myotwin::ConfigReader cfg2(nlohmann::json{{"contrast", "cubic"}}, "run.json");
  expect_error<BadInput>([&] { mi::read_decompose_params(cfg2); }, {"contrast", "cubic"});
}

TEST(DecompositionIo, WritesH5AndAMatWhoseMuPulsesReadBackOneBased) {
  const myotwin::testing::TempDir dir;
  const auto syn = make_synthetic_emg(3, 4, 4, 4.0, 20.0, 2);
  auto params = small_params();
  params.n_iterations = 6;
  const auto d = mi::decompose(syn.recording, params);
  ASSERT_FALSE(d.units.empty());
  mi::write_decomposition_h5(dir / "decomposition.h5", d, syn.recording);
  mi::write_decomposition_mat(dir / "decomposition.mat", d, syn.recording);
  const auto from_h5 = mi::read_spike_trains(dir / "decomposition.h5");
  const auto from_mat = myotwin::forward::read_discharges_mat(dir / "decomposition.mat");
  ASSERT_EQ(from_h5.samples.size(), d.units.size());
  ASSERT_EQ(from_mat.sample_indices.size(), d.units.size());
  for (std::size_t u = 0; u < d.units.size(); ++u) {
    EXPECT_EQ(from_h5.samples[u], d.units[u].discharges);
    EXPECT_EQ(from_mat.sample_indices[u], d.units[u].discharges); // index - 1
  }
  EXPECT_DOUBLE_EQ(*from_mat.fs_Hz, 2048.0);
  const myotwin::H5Reader h5(dir / "decomposition.h5");
  EXPECT_EQ(h5.shape("units/muaps"),
            (std::vector<std::size_t>{d.units.size(), 16,
                                      static_cast<std::size_t>(d.units[0].muap.cols())}));
  EXPECT_EQ(h5.read_double("neural_drive_pps").rows(), d.n_samples);
}

TEST(Decompose, FindsUnitsWithTheLogCoshAndKurtosisContrastsToo) {
  const auto syn = make_synthetic_emg(4, 4, 4, 6.0, 20.0, 31);
  for (const auto contrast : {mi::Contrast::log_cosh, mi::Contrast::kurtosis}) {
    auto params = small_params();
    params.contrast = contrast;
    params.n_iterations = 10;
    params.max_stalled_candidates = 0;
    const auto d = mi::decompose(syn.recording, params);
    const auto roa = best_roa(d, syn.truth, syn.recording.fs_Hz);
    EXPECT_GE(d.units.size(), 2u) << mi::to_string(contrast);
    for (const double r : roa)
      EXPECT_GE(r, 0.9) << mi::to_string(contrast);
  }
}
