#include <cmath>
#include <iostream>
#include <random>

#include <gtest/gtest.h>
#include <omp.h>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/mat_file.hpp"
#include "myotwin/forward/drive/discharge_import.hpp"
#include "myotwin/inversion/decompose.hpp"
#include "myotwin/inversion/decomposition_io.hpp"
#include "myotwin/inversion/score.hpp"
#include "myotwin/inversion/separation.hpp"
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
  p.candidates_per_unit = 0;
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

/// score() of the decomposition against the true trains (0-based samples at its rate).
mi::ScoreResult score_against(const mi::Decomposition& d,
                              const std::vector<std::vector<std::int64_t>>& samples) {
  mi::SpikeTrains dec{"dec", d.fs_Hz, {}, {}}, truth{"truth", d.fs_Hz, {}, samples};
  for (std::size_t u = 0; u < d.units.size(); ++u) {
    dec.unit_id.push_back(static_cast<std::int64_t>(u));
    dec.samples.push_back(d.units[u].discharges);
  }
  for (std::size_t u = 0; u < samples.size(); ++u)
    truth.unit_id.push_back(static_cast<std::int64_t>(u));
  return mi::score(dec, truth);
}

/// Correlation of the unit's source with its filter applied to the filtered, mean-free EMG of
/// the decomposition `d`.
double filter_source_correlation(const mi::Decomposition& d, const mi::MotorUnit& u) {
  const auto& f = d.preprocessing.filtered;
  Eigen::VectorXd s = Eigen::VectorXd::Zero(f.cols());
  for (Eigen::Index c = 0; c < f.rows(); ++c) {
    const Eigen::RowVectorXd x = f.row(c).array() - f.row(c).mean();
    for (Eigen::Index dl = 0; dl < u.filter.cols(); ++dl)
      s.tail(f.cols() - dl) += u.filter(c, dl) * x.head(f.cols() - dl).transpose();
  }
  return (s.array() * u.source.array()).sum() / (s.norm() * u.source.norm());
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

TEST(FiringStats, AreZeroForARegularTrainAndMatchAHandComputedCase) {
  auto f = mi::firing_stats({0, 100, 200, 300}, 1000.0, 0.02, 0.5);
  EXPECT_NEAR(f.cov_isi, 0.0, 1e-12);
  EXPECT_NEAR(f.cov_isi_local, 0.0, 1e-12);
  EXPECT_NEAR(f.rate_pps, 10.0, 1e-9);
  // ISIs 0.1, 0.2, a 5 ms doublet and a 1 s pause: regular 0.1, 0.2 (mean 0.15, sd 0.05);
  // pairs with both intervals <= 0.5 s: (0.1, 0.2) CV2 2/3, (0.2, 0.005) CV2 2 * 0.195 / 0.205.
  f = mi::firing_stats({0, 100, 300, 305, 1305}, 1000.0, 0.02, 0.5);
  EXPECT_NEAR(f.cov_isi, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(f.rate_pps, 1.0 / 0.15, 1e-9);
  EXPECT_EQ(f.n_doublets, 1);
  EXPECT_EQ(f.n_pauses, 1);
  EXPECT_NEAR(f.cov_isi_local, 0.5 * (2.0 / 3.0 + 2.0 * 0.195 / 0.205), 1e-12);
  // Too short for any pair.
  EXPECT_EQ(mi::firing_stats({5}, 1000.0, 0.02, 0.5).cov_isi_local, 0.0);
  expect_error<BadInput>(
      [] {
        mi::firing_stats({0, 100}, 0.0, 0.02, 0.5);
      },
      {"firing_stats", "fs_Hz = 0", "expected fs_Hz > 0"});
  expect_error<BadInput>(
      [] {
        mi::firing_stats({0, 100}, 1000.0, 0.6, 0.5);
      },
      {"doublet_isi_s = 0.6", "doublet_isi_s < max_isi_s"});
}

TEST(FiringStats, LocalCovIsNearOneForPoissonAnd095CForGaussianIntervalsWhateverTheRamp) {
  // Closed forms (Holt et al. 1996): for exponential intervals CV2 = 2 |2U - 1| with U uniform,
  // median 1; for Gaussian intervals of CoV c, median |I2 - I1| / mean = 0.954 c.
  myotwin::Rng rng(17);
  const double fs = 100000.0;
  std::vector<std::int64_t> poisson{0}, ramp{0};
  for (int k = 0; k < 20000; ++k)
    poisson.push_back(poisson.back() + std::llround(-std::log(1.0 - rng.uniform()) * 0.05 * fs));
  // A ramp from 8 to 30 pps with CoV 0.15: the plain CoV sees the ramp, the local one does not.
  const int n = 20000;
  for (int k = 0; k < n; ++k) {
    const double rate = 8.0 + 22.0 * k / (n - 1.0);
    ramp.push_back(ramp.back() + std::llround((1.0 + 0.15 * rng.normal()) / rate * fs));
  }
  const auto p = mi::firing_stats(poisson, fs, 1e-9, 1e9);
  EXPECT_NEAR(p.cov_isi_local, 1.0, 0.03);
  const auto r = mi::firing_stats(ramp, fs, 1e-9, 1e9);
  EXPECT_NEAR(r.cov_isi_local, 0.954 * 0.15, 0.01);
  EXPECT_GT(r.cov_isi, 0.3);
}

TEST(FiringStats, DoubletsAndPausesDoNotRaiseTheLocalCovOfARegularTrain) {
  myotwin::Rng rng(4);
  const double fs = 2048.0;
  std::vector<std::int64_t> clean{100}, messy{100};
  for (int k = 1; k < 400; ++k) {
    const auto step = std::llround((1.0 + 0.1 * rng.normal()) * 0.08 * fs);
    clean.push_back(clean.back() + step);
    messy.push_back(messy.back() + step);
    if (k % 25 == 0)
      messy.push_back(messy.back() + std::llround(0.008 * fs)); // a doublet
    if (k % 50 == 10)
      messy.back() += std::llround(1.0 * fs); // a pause
  }
  const auto c = mi::firing_stats(clean, fs, 0.02, 0.5);
  const auto m = mi::firing_stats(messy, fs, 0.02, 0.5);
  EXPECT_EQ(m.n_doublets, 15);
  EXPECT_EQ(m.n_pauses, 8);
  EXPECT_NEAR(m.cov_isi, c.cov_isi, 0.02);
  EXPECT_NEAR(m.cov_isi_local, c.cov_isi_local, 0.02);
  EXPECT_LT(m.cov_isi_local, 0.15);
}

TEST(ReviewFlags, NameWhatAHumanEditorShouldCheck) {
  mi::FiringStats f;
  f.cov_isi = 0.1;
  mi::ReviewLimits limits;
  EXPECT_TRUE(mi::review_flags(35.0, f, 100, limits).empty());
  f.cov_isi = 0.35;
  f.n_doublets = 10;
  f.n_pauses = 1;
  const auto flags = mi::review_flags(25.0, f, 101, limits);
  EXPECT_EQ(flags, (std::vector<std::string>{"pnr", "cov_isi", "doublets"}));
  EXPECT_EQ(mi::review_bits(flags), 7);
}

TEST(Pnr, IsTenLog10OfThePulseTrainsPowerAtTheDischargesOverTheNoiseBetweenThem) {
  // Source 0.1 between discharges of 1 at 10 and 50, -0.2 at 30 (negative: not noise), 0.5 next
  // to each discharge (within the 3-sample guard at 2048 Hz: not noise), 0.3 before the first
  // discharge (outside: not noise). Pulse train s |s|: 1 at the discharges, 0.01 in the noise.
  Eigen::VectorXd s = Eigen::VectorXd::Constant(100, 0.1);
  s.head(10).setConstant(0.3);
  s[10] = s[50] = 1.0;
  s[11] = s[49] = s[52] = 0.5;
  s[30] = -0.2;
  EXPECT_NEAR(mi::pnr_dB(s, {10, 50}, 2048.0), 40.0, 1e-9);
  // At 4096 Hz the guard is 6 samples: the same noise level, the same PNR.
  EXPECT_NEAR(mi::pnr_dB(s, {10, 50}, 4096.0), 40.0, 1e-9);
  EXPECT_EQ(mi::pnr_dB(s, {}, 2048.0), 0.0);
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
  const auto score = score_against(d, syn.truth);
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

TEST(Decompose, RefinementOnTheRecordingKeepsTheUnitsIdentified) {
  // MUedit's refineMUs after the search: the same mixture as above, with and without it.
  const auto syn = make_synthetic_emg(6, 4, 4, 10.0, 20.0, 11);
  auto params = small_params();
  const auto plain = mi::decompose(syn.recording, params);
  params.refine_on_recording = true;
  const auto refined = mi::decompose(syn.recording, params);
  EXPECT_EQ(refined.discharges_before_refinement.size(), plain.units.size());
  const auto identified = [&](const mi::Decomposition& d) {
    int good = 0;
    for (const double r : best_roa(d, syn.truth, syn.recording.fs_Hz))
      good += r >= 0.9 ? 1 : 0;
    return good;
  };
  EXPECT_GE(identified(refined), identified(plain));
  EXPECT_GE(identified(refined), 5) << "of 6 units";
  for (const auto& u : refined.units)
    EXPECT_GE(u.sil, 0.9);
}

TEST(Decompose, TheSeparationFilterReproducesTheSourceOnTheFilteredEmg) {
  auto params = small_params();
  params.peel_off = false; // with peel-off later sources come from the peeled data
  params.n_iterations = 3;
  const auto syn = make_synthetic_emg(3, 4, 4, 6.0, 30.0, 5);
  const auto d = mi::decompose(syn.recording, params);
  ASSERT_FALSE(d.units.empty());
  const auto& u = d.units[0];
  EXPECT_GT(filter_source_correlation(d, u), 0.999);
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
  auto slow = syn.recording;
  slow.fs_Hz = 500.0;
  expect_error<BadInput>([&] { mi::decompose(slow, params); },
                         {"synthetic", "fs_Hz = 500", "needs >= 1000 Hz"});
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
  // The quality a user acts on, per unit, as the decomposition computed it.
  const auto pnr = h5.read_double("units/pnr_dB");
  const auto local = h5.read_double("units/cov_isi_local");
  const auto review = h5.read_int64("units/review_flags");
  ASSERT_EQ(review.rows(), static_cast<Eigen::Index>(d.units.size()));
  for (std::size_t u = 0; u < d.units.size(); ++u) {
    const auto k = static_cast<Eigen::Index>(u);
    EXPECT_EQ(pnr(k, 0), d.units[u].pnr_dB);
    EXPECT_EQ(local(k, 0), d.units[u].cov_isi_local);
    EXPECT_EQ(review(k, 0), mi::review_bits(d.units[u].review));
    EXPECT_GT(d.units[u].pnr_dB, 20.0); // clean synthetic units at 20 dB
  }
  EXPECT_EQ(std::get<std::string>(h5.attributes("units/review_flags").at("bits")),
            "1 pnr, 2 cov_isi, 4 doublets, 8 pauses");
  const auto summary = mi::summary_json(d, syn.recording, params);
  EXPECT_EQ(summary["units"][0]["review"].size(), d.units[0].review.size());
  EXPECT_EQ(summary["units"][0]["n_doublets"], d.units[0].n_doublets);
}

TEST(DecompositionIo, MatHasWhatOpenhdemgsDemuseLoaderAndMuEditsEditorRead) {
  const myotwin::testing::TempDir dir;
  auto syn = make_synthetic_emg(3, 4, 4, 4.0, 20.0, 2);
  // Electrodes 8 mm apart on the 4 x 4 grid.
  const auto n_ch = syn.recording.emg.rows();
  syn.recording.position_m.resize(n_ch, 3);
  for (Eigen::Index c = 0; c < n_ch; ++c)
    syn.recording.position_m.row(c)
        << 0.008 * static_cast<double>(syn.recording.grid_row_col(c, 0)),
        0.008 * static_cast<double>(syn.recording.grid_row_col(c, 1)), 0.0;
  auto params = small_params();
  params.n_iterations = 6;
  const auto d = mi::decompose(syn.recording, params);
  ASSERT_FALSE(d.units.empty());
  const auto n_units = d.units.size();
  const auto n_samples = static_cast<std::size_t>(d.n_samples);
  mi::write_decomposition_mat(dir / "decomposition.mat", d, syn.recording);
  const myotwin::mat::Reader mat(dir / "decomposition.mat");
  const auto get = [&](const char* name) {
    auto v = mat.read(name);
    EXPECT_TRUE(v.has_value()) << name;
    return v.value_or(myotwin::mat::Array{});
  };
  // openhdemg emg_from_demuse(): int(fsamp), int(IED), IPTs (#units x #samples), MUPulses (a
  // cell per unit, 1-based), SIG (a cell per channel), ref_signal.
  EXPECT_EQ(get("fsamp").scalar(), 2048.0);
  EXPECT_NEAR(get("IED").scalar().value_or(0.0), 8.0, 1e-9);
  EXPECT_EQ(get("IPTs").dims, (std::vector<std::size_t>{n_units, n_samples}));
  EXPECT_EQ(get("MUPulses").dims, (std::vector<std::size_t>{1, n_units}));
  EXPECT_EQ(get("SIG").dims, (std::vector<std::size_t>{4, 4}));
  EXPECT_EQ(get("ref_signal").dims, (std::vector<std::size_t>{1, n_samples}));
  // MUedit's editor (ImportdataButtonPushed): signal.Pulsetrain{1} (#units x #samples),
  // signal.Dischargetimes{1, j} (1-based), signal.fsamp, signal.ngrid, signal.EMGmask{1}
  // (one entry per channel), signal.data (#channels x #samples), signal.target.
  const auto signal = get("signal");
  ASSERT_EQ(signal.kind, myotwin::mat::Array::Kind::structure);
  const auto* pulse_train = signal.field("Pulsetrain");
  ASSERT_NE(pulse_train, nullptr);
  ASSERT_EQ(pulse_train->kind, myotwin::mat::Array::Kind::cell);
  EXPECT_EQ(pulse_train->elements[0].dims, (std::vector<std::size_t>{n_units, n_samples}));
  EXPECT_EQ(pulse_train->elements[0].values[n_units * 5], d.units[0].source(5));
  const auto* times = signal.field("Dischargetimes");
  ASSERT_NE(times, nullptr);
  EXPECT_EQ(times->dims, (std::vector<std::size_t>{1, n_units}));
  EXPECT_EQ(times->elements[0].values[0], static_cast<double>(d.units[0].discharges[0] + 1));
  EXPECT_EQ(signal.field("fsamp")->scalar(), 2048.0);
  EXPECT_EQ(signal.field("ngrid")->scalar(), 1.0);
  EXPECT_EQ(signal.field("EMGmask")->elements[0].numel(), static_cast<std::size_t>(n_ch));
  EXPECT_EQ(signal.field("data")->dims,
            (std::vector<std::size_t>{static_cast<std::size_t>(n_ch), n_samples}));
  EXPECT_EQ(signal.field("data")->values[1], syn.recording.emg(1, 0)); // column-major
  EXPECT_EQ(signal.field("target")->dims, (std::vector<std::size_t>{1, n_samples}));
}

TEST(Decompose, FindsUnitsWithTheLogCoshAndKurtosisContrastsToo) {
  const auto syn = make_synthetic_emg(4, 4, 4, 6.0, 20.0, 31);
  for (const auto contrast : {mi::Contrast::log_cosh, mi::Contrast::kurtosis}) {
    auto params = small_params();
    params.contrast = contrast;
    params.n_iterations = 10;
    const auto d = mi::decompose(syn.recording, params);
    const auto roa = best_roa(d, syn.truth, syn.recording.fs_Hz);
    EXPECT_GE(d.units.size(), 2u) << mi::to_string(contrast);
    for (const double r : roa)
      EXPECT_GE(r, 0.9) << mi::to_string(contrast);
  }
}

namespace {

/// One unit's contribution to 8 channels: a biphasic wave (derivative of a Gaussian of width
/// sigma_s, channel c scaled by gain[c]) at continuous discharge times.
Eigen::MatrixXd unit_signal(const std::vector<double>& times_s, double sigma_s,
                            const Eigen::VectorXd& gain, double fs, Eigen::Index n) {
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(gain.size(), n);
  for (const double t0 : times_s) {
    const auto j0 = static_cast<Eigen::Index>(std::llround(t0 * fs));
    for (Eigen::Index j = std::max<Eigen::Index>(0, j0 - 40); j < std::min(n, j0 + 41); ++j) {
      const double u = (static_cast<double>(j) / fs - t0) / sigma_s;
      x.col(j) += gain * (-u * std::exp(-0.5 * u * u));
    }
  }
  return x;
}

/// Two units on 8 channels for 10 s at 2048 Hz with white noise (0.01): A sharp (0.5 ms,
/// gains 1 + 0.3 c), B wider (1.5 ms, gains b_gain (8 - c)), each discharging every 100 ms
/// with +-20 ms of jitter at continuous times (sub-sample phases).
struct TwoUnits {
  double fs = 2048.0;
  Eigen::Index n = 20480;
  std::vector<double> ta, tb;
  Eigen::MatrixXd a, b, noise;
};

TwoUnits two_units(std::uint64_t seed, double b_gain) {
  TwoUnits t;
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> jitter(-0.02, 0.02);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (int k = 0; k < 95; ++k) {
    t.ta.push_back(0.05 + 0.1 * k + jitter(gen));
    t.tb.push_back(0.083 + 0.1 * k + jitter(gen));
  }
  Eigen::VectorXd ga(8), gb(8);
  for (int c = 0; c < 8; ++c) {
    ga[c] = 1.0 + 0.3 * c;
    gb[c] = b_gain * (8 - c);
  }
  t.a = unit_signal(t.ta, 0.5e-3, ga, t.fs, t.n);
  t.b = unit_signal(t.tb, 1.5e-3, gb, t.fs, t.n);
  t.noise.resize(8, t.n);
  for (Eigen::Index k = 0; k < t.noise.size(); ++k)
    t.noise(k) = 0.01 * normal(gen);
  return t;
}

} // namespace

TEST(SubtractUnit, RemovesAUnitWithSubSampleDischargeTimesAndLeavesAnotherIntact) {
  const TwoUnits u = two_units(11, 0.1);
  const double fs = u.fs;
  const auto &ta = u.ta, &tb = u.tb;
  const auto &a = u.a, &b = u.b, &noise = u.noise;
  std::vector<std::int64_t> ja;
  for (const double t : ta)
    ja.push_back(std::llround(t * fs));
  const std::int64_t half = 20;

  Eigen::MatrixXd x = a + b + noise;
  mi::subtract_units(x, {ja}, half);
  const double left = (x - b - noise).squaredNorm() / a.squaredNorm();

  // The plain spike-triggered mean subtracted at the rounded discharge (no shift, no amplitude).
  Eigen::MatrixXd y = a + b + noise;
  Eigen::MatrixXd mean = Eigen::MatrixXd::Zero(8, 2 * half + 1);
  for (const auto j : ja)
    mean += y.middleCols(j - half, 2 * half + 1);
  mean /= static_cast<double>(ja.size());
  for (const auto j : ja)
    y.middleCols(j - half, 2 * half + 1) -= mean;
  const double left_plain = (y - b - noise).squaredNorm() / a.squaredNorm();

  std::cout << "left of the unit: " << left << " (plain spike-triggered mean: " << left_plain
            << ")\n";
  EXPECT_LT(left, 0.02);
  EXPECT_LT(left, 0.25 * left_plain);
  // The other unit's waveform is not damaged: B's own spike-triggered mean is kept.
  Eigen::MatrixXd sta_b = Eigen::MatrixXd::Zero(8, 2 * half + 1), sta_true = sta_b;
  for (const double t : tb) {
    const auto j = std::llround(t * fs);
    sta_b += (x - noise).middleCols(j - half, 2 * half + 1);
    sta_true += b.middleCols(j - half, 2 * half + 1);
  }
  EXPECT_LT((sta_b - sta_true).norm(), 0.05 * sta_true.norm());
}

TEST(SubtractUnit, FindsTheDischargesTheTrainMissedAndNothingElse) {
  const TwoUnits u = two_units(5, 0.3); // B as large as A: it hides some of A's discharges
  const double fs = u.fs;
  const auto &ta = u.ta, &tb = u.tb;
  const auto &a = u.a, &b = u.b, &noise = u.noise;
  // The train misses every 10th discharge.
  std::vector<std::int64_t> train, missed;
  for (std::size_t k = 0; k < ta.size(); ++k)
    (k % 10 == 3 ? missed : train).push_back(std::llround(ta[k] * fs));
  Eigen::MatrixXd x = a + b + noise;
  const auto found = mi::subtract_units(x, {train}, 20, 41).front();
  // Every discharge found is a missed one (within a sample): no false discharge.
  auto within = [](const std::vector<std::int64_t>& v, double t, double tol) {
    return std::any_of(v.begin(), v.end(),
                       [&](std::int64_t j) { return std::abs(static_cast<double>(j) - t) <= tol; });
  };
  for (const auto f : found)
    EXPECT_TRUE(within(missed, static_cast<double>(f), 1.0)) << "false discharge at " << f;
  // Every missed one is found unless the other unit fires within the window (20 samples).
  for (const auto m : missed) {
    const bool overlapped = std::any_of(tb.begin(), tb.end(), [&](double t) {
      return std::abs(t * fs - static_cast<double>(m)) <= 20.0;
    });
    if (!overlapped) {
      EXPECT_TRUE(within(found, static_cast<double>(m), 1.0)) << "not found: " << m;
    }
  }
  EXPECT_GE(found.size(), 8U);
  // Left: the 2 overlapped MUAPs (2 / 95) and about 1 % of the others.
  EXPECT_LT((x - b - noise).squaredNorm() / a.squaredNorm(), 0.04);
}

TEST(SubtractUnits, DoNotSubtractTheNoiseAveragedIntoTheMuap) {
  // One unit of a low-rank MUAP (two waveforms over 32 channels) at 60 whole-sample discharges
  // in white noise. The least-squares MUAP carries the noise averaged over its discharges
  // (sigma / sqrt(60) per coefficient); subtracting that at every discharge would leave the
  // residual short of the noise by channels x width x sigma^2 in all. Kept to the MUAP's
  // singular components above the noise, the estimate leaves well under half of that.
  const Eigen::Index n_ch = 32, n = 15000;
  const std::int64_t half = 20, width = 2 * half + 1;
  const double sigma = 1.0;
  myotwin::Rng rng(17);
  Eigen::MatrixXd muap(n_ch, width);
  for (Eigen::Index c = 0; c < n_ch; ++c)
    for (std::int64_t k = 0; k < width; ++k) {
      const double t = static_cast<double>(k - half) / 4.0;
      const double g = std::exp(-0.5 * t * t);
      const double xc = static_cast<double>(c) / static_cast<double>(n_ch - 1);
      muap(c, k) =
          12.0 * sigma * (std::sin(3.0 * xc) * -t * g + std::cos(2.0 * xc) * (t * t - 1.0) * g);
    }
  std::vector<std::int64_t> train;
  for (std::int64_t j = 100; j + half < n && train.size() < 60;
       j += 180 + static_cast<std::int64_t>(rng.uniform(0, 60)))
    train.push_back(j);
  ASSERT_EQ(train.size(), 60U);
  Eigen::MatrixXd noise(n_ch, n);
  for (Eigen::Index c = 0; c < n_ch; ++c)
    for (Eigen::Index k = 0; k < n; ++k)
      noise(c, k) = sigma * rng.normal();
  Eigen::MatrixXd x = noise;
  for (const auto j : train)
    x.middleCols(j - half, width) += muap;
  mi::subtract_units(x, {train}, half);
  const double error =
      (x - noise).squaredNorm() / (static_cast<double>(n_ch * width) * sigma * sigma);
  std::cout << "left minus the noise: " << error
            << " of channels x width x sigma^2 (a full least-squares MUAP: about 1)\n";
  EXPECT_LT(error, 0.4);
}

TEST(SubtractUnits, EstimatesOverlappingUnitsJointlyBetterThanOneByOne) {
  const double fs = 2048.0;
  const Eigen::Index n = 20480;
  std::mt19937_64 gen(3);
  std::uniform_real_distribution<double> phase(0.0, 0.1), jitter(-0.03, 0.03);
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(8, n);
  std::vector<std::vector<std::int64_t>> trains;
  for (int u = 0; u < 4; ++u) { // four units of equal size, each the others' interference
    std::vector<double> t;
    const double t0 = 0.05 + phase(gen);
    for (int k = 0; k < 95; ++k)
      t.push_back(t0 + 0.1 * k + jitter(gen));
    Eigen::VectorXd g(8);
    for (int c = 0; c < 8; ++c)
      g[c] = 1.0 + 0.5 * std::sin(1.3 * (u + 1) * (c + 1));
    sum += unit_signal(t, (0.6 + 0.3 * u) * 1e-3, g, fs, n);
    std::vector<std::int64_t> j;
    for (const double ti : t)
      j.push_back(std::llround(ti * fs));
    trains.push_back(j);
  }
  Eigen::MatrixXd noise(8, n);
  for (Eigen::Index k = 0; k < noise.size(); ++k)
    noise(k) = 0.01 * normal(gen);
  Eigen::MatrixXd joint = sum + noise, one_by_one = sum + noise;
  (void)mi::subtract_units(joint, trains, 30);
  for (const auto& t : trains)
    (void)mi::subtract_units(one_by_one, {t}, 30);
  const double left_joint = (joint - noise).squaredNorm() / sum.squaredNorm();
  const double left_one = (one_by_one - noise).squaredNorm() / sum.squaredNorm();
  std::cout << "left: jointly " << left_joint << ", one by one " << left_one << "\n";
  EXPECT_LT(left_joint, 0.02);
  EXPECT_LT(left_joint, 0.5 * left_one);
}

TEST(JointMuaps, RecoverOverlappingMuapsExactlyWhereTheSpikeTriggeredMeanDoesNot) {
  // A large unit and a small one 40 times weaker that often discharges 3 to 12 samples after
  // it; discharges on the sample grid, no noise: the least-squares MUAPs are the true ones.
  const Eigen::Index n = 20480, half = 20, width = 2 * half + 1;
  std::mt19937_64 gen(5);
  std::uniform_int_distribution<std::int64_t> isi(150, 250), lag(3, 12);
  std::bernoulli_distribution follows(0.5);
  std::vector<std::vector<std::int64_t>> trains(2);
  for (std::int64_t j = 100; j + 300 < n; j += isi(gen)) {
    trains[0].push_back(j);
    trains[1].push_back(follows(gen) ? j + lag(gen) : j + 90);
  }
  std::vector<Eigen::MatrixXd> truth(2, Eigen::MatrixXd(8, width));
  for (int u = 0; u < 2; ++u)
    for (Eigen::Index c = 0; c < 8; ++c)
      for (Eigen::Index k = 0; k < width; ++k) {
        const double t = static_cast<double>(k - half) / (2.0 + 3.0 * u);
        truth[static_cast<std::size_t>(u)](c, k) =
            (u == 0 ? 1.0 : 0.025) * (1.0 + 0.2 * static_cast<double>(c)) * -t * std::exp(-t * t);
      }
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(8, n);
  for (std::size_t u = 0; u < 2; ++u)
    for (const auto j : trains[u])
      x.middleCols(j - half, width) += truth[u];
  const auto joint = mi::joint_muaps(x, trains, half);
  ASSERT_EQ(joint.size(), 2U);
  Eigen::MatrixXd sta = Eigen::MatrixXd::Zero(8, width);
  for (const auto j : trains[1])
    sta += x.middleCols(j - half, width);
  sta /= static_cast<double>(trains[1].size());
  const double err_joint = (joint[1] - truth[1]).norm() / truth[1].norm();
  const double err_sta = (sta - truth[1]).norm() / truth[1].norm();
  std::cout << "small unit's MUAP error: joint " << err_joint << ", spike-triggered mean "
            << err_sta << "\n";
  EXPECT_LT(err_joint, 1e-3);
  EXPECT_GT(err_sta, 1.0);
  EXPECT_LT((joint[0] - truth[0]).norm() / truth[0].norm(), 1e-3);
  myotwin::testing::expect_error<myotwin::BadInput>([&] { (void)mi::joint_muaps(x, trains, -1); },
                                                    {"half window = -1"});
}

TEST(Decompose, AcceptsUnitsThatFireLikeRealMotorNeuronsWithPausesAndDoublets) {
  // Real discharge times (tibialis anterior at 30 % MVC, decomposed and edited by experts,
  // Caillet et al. 2023), the first 20 s (recruitment and plateau), drive synthetic MUAPs under a
  // 5 x 5 grid at 20 dB. The units are the most irregular of the set: unit 6 pauses and
  // restarts (CoV of its intervals 0.69, local CoV 0.21), units 27, 30, 31, 33, 25, 0 and 14
  // have CoVs of 0.21-0.33 over the ramp. The acceptance of earlier versions (CoV <= 0.4)
  // could not accept unit 6 however well it was separated.
  const auto mat = myotwin::testing::shared_data("real/caillet2023/S1_30_64L.mat");
  if (mat.empty())
    GTEST_SKIP() << "../shared/data/real/caillet2023 is absent";
  const auto imported = myotwin::forward::read_discharges(mat);
  const double duration_s = 20.0;
  const std::vector<std::size_t> chosen{6, 27, 30, 31, 33, 25, 0, 14};
  std::vector<std::vector<double>> times;
  for (const auto u : chosen) {
    ASSERT_LT(u, imported.times_s.size());
    std::vector<double> w;
    for (const double x : imported.times_s[u])
      if (x < duration_s)
        w.push_back(x);
    times.push_back(w);
  }
  const auto syn = myotwin::testing::synthetic_emg_of_trains(times, 5, 5, duration_s, 20.0, 41);
  {
    std::vector<std::int64_t> s;
    for (const double x : times[0])
      s.push_back(std::llround(x * 2048.0));
    ASSERT_GT(mi::firing_stats(s, 2048.0, 0.02, 0.5).cov_isi, 0.6); // the premise
  }
  auto params = small_params();
  params.extension_factor = 8;
  params.n_iterations = 12;
  params.candidates_per_unit = 1;
  const auto d = mi::decompose(syn.recording, params);
  const auto roa = best_roa(d, syn.truth, syn.recording.fs_Hz);
  for (std::size_t u = 0; u < roa.size(); ++u)
    EXPECT_GE(roa[u], 0.3) << "a false unit: " << u; // no unit that matches nothing
  const auto score = score_against(d, syn.truth);
  int identified = 0;
  bool irregular_found = false;
  for (const auto& m : score.matches) {
    identified += m.agreement.roa >= 0.9 ? 1 : 0;
    irregular_found = irregular_found || (m.truth == 0 && m.agreement.roa >= 0.9);
  }
  EXPECT_GE(identified, 6) << "of 8 units";
  std::cout << identified << " of 8 units identified, " << d.units.size() << " accepted, "
            << d.stats.n_candidates << " candidates\n";
  EXPECT_TRUE(irregular_found) << "the unit that pauses was not identified";
}
