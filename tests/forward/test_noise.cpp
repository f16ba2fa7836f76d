// Tests of the noise models (each option realises what it promises, measured on the output) and
// of their calibration from a rest recording (round trip: generate with known parameters,
// calibrate, recover them). Lines starting with [measured] give the realised values.

#include <cmath>
#include <cstdio>
#include <numbers>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <omp.h>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/signal.hpp"
#include "myotwin/forward/emg/emg.hpp"
#include "myotwin/forward/noise/noise.hpp"
#include "test_support.hpp"

using namespace myotwin;
using namespace myotwin::forward;
using myotwin::testing::expect_error;

namespace {

constexpr double fs = 10240.0;

/// #channels x #samples of sines at 97 Hz, channel c with amplitude (1 + c) uV.
Eigen::MatrixXd clean_signal(Eigen::Index n_channels, Eigen::Index n_samples) {
  Eigen::MatrixXd x(n_channels, n_samples);
  for (Eigen::Index c = 0; c < n_channels; ++c)
    for (Eigen::Index i = 0; i < n_samples; ++i)
      x(c, i) = 1e-6 * (1.0 + static_cast<double>(c)) *
                std::sin(2.0 * std::numbers::pi * 97.0 * static_cast<double>(i) / fs);
  return x;
}

double row_rms(const Eigen::MatrixXd& x, Eigen::Index c) {
  return std::sqrt(x.row(c).squaredNorm() / static_cast<double>(x.cols()));
}

/// Welch PSD averaged over channels, segment 8192 (1.25 Hz).
Eigen::VectorXd mean_psd(const Eigen::MatrixXd& x, Eigen::Index segment = 8192) {
  return signal::welch_psd(x, fs, segment).colwise().mean().transpose();
}

/// Log-log slope of `psd` fitted over [lo, hi] Hz on log-spaced bins (12 per octave, each the
/// mean of its Welch bins), equal weights.
double fitted_slope(const Eigen::VectorXd& psd, double df, double lo, double hi) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0, n = 0;
  const double step = std::pow(2.0, 1.0 / 12.0);
  for (double a = lo; a * step <= hi * 1.0001; a *= step) {
    double s = 0, sf = 0, cnt = 0;
    for (Eigen::Index k = 1; k < psd.size(); ++k) {
      const double f = df * static_cast<double>(k);
      if (f >= a && f < a * step) {
        s += psd[k];
        sf += f;
        cnt += 1;
      }
    }
    if (cnt == 0)
      continue;
    const double x = std::log(sf / cnt), y = std::log(s / cnt);
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
    n += 1;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

/// Power of the line at f0 [V^2]: PSD summed over |f - f0| <= hw minus the median floor of
/// hw + 1 < |f - f0| <= hw + 6.
double line_power(const Eigen::VectorXd& psd, double df, double f0, double hw) {
  std::vector<double> fl;
  double p = 0, n = 0;
  for (Eigen::Index k = 1; k < psd.size(); ++k) {
    const double d = std::abs(df * static_cast<double>(k) - f0);
    if (d <= hw) {
      p += psd[k] * df;
      n += 1;
    } else if (d > hw + 1 && d <= hw + 6)
      fl.push_back(psd[k]);
  }
  std::sort(fl.begin(), fl.end());
  return p - fl[fl.size() / 2] * df * n;
}

NoiseParams realistic() {
  NoiseParams p;
  p.type = NoiseType::realistic;
  return p;
}

NoiseParams read_json(const std::string& text) {
  ConfigReader cfg(nlohmann::json::parse(text), "noise.json");
  auto section = cfg.section("noise");
  NoiseParams p = read_noise_params(section);
  cfg.finish();
  return p;
}

} // namespace

TEST(NoiseParams, ReadBackFromToJsonIdentically) {
  NoiseParams p = realistic();
  p.snr_dB = 7.5;
  p.psd_slope = -1.25;
  p.powerline_Hz = 60.0;
  p.powerline_harmonic_ratios = {1.0, 0.25};
  p.drift_rms_V = 3e-6;
  p.excess_kurtosis = 1.5;
  const nlohmann::json j = {{"noise", to_json(p)}};
  const NoiseParams q = read_json(j.dump());
  EXPECT_EQ(to_json(q).dump(), to_json(p).dump());
  EXPECT_EQ(q.type, NoiseType::realistic);
  EXPECT_NEAR(q.drift_rms_V, 3e-6, 1e-18);
}

TEST(NoiseParams, UnknownTypeNamesKeyValueAndChoices) {
  expect_error<BadInput>([] { read_json(R"({"noise": {"type": "pink"}})"); },
                         {"noise.type", "pink", "none", "gaussian", "realistic"});
}

TEST(NoiseParams, NonNumericSnrIsBadInput) {
  expect_error<BadInput>([] { read_json(R"({"noise": {"snr_dB": "high"}})"); },
                         {"noise.snr_dB", "high"});
}

TEST(NoiseParams, UnknownKeyAndOutOfRangeValuesAreBadInput) {
  expect_error<BadInput>([] { read_json(R"({"noise": {"snr_db": 10}})"); },
                         {"noise.snr_db", "unknown key"});
  expect_error<BadInput>(
      [] { read_json(R"({"noise": {"powerline_harmonic_ratios": [1, -0.5]}})"); },
      {"powerline_harmonic_ratios", ">= 0"});
  expect_error<BadInput>([] { read_json(R"({"noise": {"drift_low_Hz": 2, "drift_high_Hz": 1}})"); },
                         {"drift_high_Hz", "drift_low_Hz"});
  NoiseParams p;
  p.snr_dB = std::nan("");
  expect_error<BadInput>([&] { validate(p); }, {"snr_dB", "nan", "finite"});
}

TEST(Noise, GaussianHitsTheSnrAndEqualsTheEmgWhiteNoise) {
  // The same white noise as synthesize_emg(): one Gaussian-derivative MUAP, two discharges.
  const Eigen::Index n_ch = 3;
  std::vector<Eigen::MatrixXd> muaps(1, Eigen::MatrixXd(64, n_ch));
  for (Eigen::Index j = 0; j < 64; ++j)
    for (Eigen::Index c = 0; c < n_ch; ++c) {
      const double x = (static_cast<double>(j) - 32.0) / 6.0;
      muaps[0](j, c) = 1e-6 * (1.0 + static_cast<double>(c)) * -x * std::exp(-0.5 * x * x);
    }
  EmgParams ep;
  ep.fs_Hz = 2048.0;
  ep.snr_dB = 12.0;
  const Rng rng(42);
  const EmgResult emg = synthesize_emg(muaps, 2048.0, {{0.1, 0.3}}, 0.5, ep, rng);
  NoiseParams np;
  np.snr_dB = 12.0;
  const NoiseResult noise = make_noise(emg.emg_clean, 2048.0, np, rng);
  const Eigen::MatrixXd emg_noise = emg.emg - emg.emg_clean;
  EXPECT_LT((noise.noise_V - emg_noise).cwiseAbs().maxCoeff(),
            1e-12 * emg_noise.cwiseAbs().maxCoeff());
  for (Eigen::Index c = 0; c < n_ch; ++c) {
    EXPECT_NEAR(noise.snr_dB[c], 12.0, 1e-9);
    EXPECT_EQ(noise.noise_rms_V[c], emg.noise_rms_V[c]);
  }
}

TEST(Noise, NoneAddsNothingAndAZeroChannelGetsNoNoise) {
  NoiseParams p;
  p.type = NoiseType::none;
  Eigen::MatrixXd clean = clean_signal(2, 1000);
  const NoiseResult none = make_noise(clean, fs, p, Rng(1));
  EXPECT_EQ(none.noise_V.cwiseAbs().maxCoeff(), 0.0);
  EXPECT_TRUE(std::isinf(none.snr_dB[0]));
  clean.row(1).setZero();
  const NoiseResult r = make_noise(clean, fs, realistic(), Rng(1));
  EXPECT_EQ(r.noise_V.row(1).cwiseAbs().maxCoeff(), 0.0);
  EXPECT_TRUE(std::isnan(r.snr_dB[1]));
  EXPECT_GT(r.noise_rms_V[0], 0.0);
}

TEST(Noise, RealisticDefaultsHitSnrAndKurtosis) {
  const Eigen::MatrixXd clean = clean_signal(4, 102400); // 10 s
  for (const double snr : {0.0, 20.0}) {
    NoiseParams p = realistic();
    p.snr_dB = snr;
    const NoiseResult r = make_noise(clean, fs, p, Rng(7));
    for (Eigen::Index c = 0; c < clean.rows(); ++c) {
      const double measured = 20.0 * std::log10(row_rms(clean, c) / row_rms(r.noise_V, c));
      const double k = excess_kurtosis(r.noise_V.row(c).transpose());
      std::printf("[measured] realistic snr %g dB: channel %ld SNR error %.2e dB, excess "
                  "kurtosis %.6f (target 3)\n",
                  snr, static_cast<long>(c), measured - snr, k);
      EXPECT_NEAR(measured, snr, 0.3);
      EXPECT_NEAR(measured, snr, 1e-9); // exact by construction
      EXPECT_NEAR(k, 3.0, 0.2 * 3.0);
      EXPECT_NEAR(k, 3.0, 1e-4); // exact by construction
      EXPECT_NEAR(r.excess_kurtosis[c], k, 1e-9);
    }
  }
}

TEST(Noise, KurtosisTargetsAreRealisedExactly) {
  const Eigen::MatrixXd clean = clean_signal(2, 51200);
  for (const double target : {0.5, 3.0, 8.0}) {
    NoiseParams p = realistic();
    p.excess_kurtosis = target;
    p.powerline_Hz = 0.0;
    const NoiseResult r = make_noise(clean, fs, p, Rng(11));
    for (Eigen::Index c = 0; c < 2; ++c) {
      const double k = excess_kurtosis(r.noise_V.row(c).transpose());
      std::printf("[measured] kurtosis target %g: realised %.6f\n", target, k);
      EXPECT_NEAR(k, target, 1e-4 * std::max(1.0, target));
    }
  }
}

TEST(Noise, PsdSlopeIsRealisedOverFortyHzToFourKHz) {
  // Without the mid-band emphasis and the powerline, fitted over [40, 4000] Hz (the high-pass
  // at 10 Hz changes the slope by < 0.01 from 40 Hz on).
  const Eigen::MatrixXd clean = clean_signal(4, 102400);
  for (const double slope : {-0.5, -1.0, 0.0}) {
    NoiseParams p = realistic();
    p.psd_slope = slope;
    p.midband_gain_dB = 0.0;
    p.powerline_Hz = 0.0;
    const NoiseResult r = make_noise(clean, fs, p, Rng(3));
    const double fitted = fitted_slope(mean_psd(r.noise_V), fs / 8192.0, 40.0, 4000.0);
    std::printf("[measured] psd slope %g: fitted %.4f (error %.4f)\n", slope, fitted,
                fitted - slope);
    EXPECT_NEAR(fitted, slope, 0.1);
  }
}

TEST(Noise, MidbandEmphasisPeaksAtItsCentreWithItsGain) {
  const Eigen::MatrixXd clean = clean_signal(2, 102400);
  NoiseParams flat = realistic();
  flat.midband_gain_dB = 0.0;
  flat.powerline_Hz = 0.0;
  flat.excess_kurtosis = 0.0;
  NoiseParams peaked = flat;
  peaked.midband_gain_dB = 6.0;
  const Eigen::VectorXd a = mean_psd(make_noise(clean, fs, flat, Rng(5)).noise_V);
  const Eigen::VectorXd b = mean_psd(make_noise(clean, fs, peaked, Rng(5)).noise_V);
  // The ratio of the two (same draws) is the emphasis times a constant: normalise it at 40 Hz.
  const double df = fs / 8192.0;
  auto band = [&](const Eigen::VectorXd& v, double f) {
    const auto k = static_cast<Eigen::Index>(std::lround(f / df));
    return v.segment(k - 4, 9).sum();
  };
  const double base = band(b, 40.0) / band(a, 40.0);
  double best_f = 0, best = 0;
  for (double f = 100; f < 4000; f *= std::pow(2.0, 1.0 / 24.0)) {
    const double g = band(b, f) / band(a, f) / base;
    if (g > best) {
      best = g;
      best_f = f;
    }
  }
  // The bump at 40 Hz (4.6 octaves below the centre) is 10 log10(1 + 2.98 e^(-10.8)) ~ 0 dB.
  std::printf("[measured] midband: peak at %.1f Hz (1000), gain %.2f dB (6)\n", best_f,
              10 * std::log10(best));
  EXPECT_NEAR(std::log2(best_f / 1000.0), 0.0, 0.1);
  EXPECT_NEAR(10 * std::log10(best), 6.0, 0.3);
}

TEST(Noise, HighpassHalvesThePowerAtItsCorner) {
  const Eigen::MatrixXd clean = clean_signal(2, 102400);
  NoiseParams off = realistic();
  off.highpass_Hz = 0.0;
  off.powerline_Hz = 0.0;
  off.excess_kurtosis = 0.0;
  NoiseParams on = off;
  on.highpass_Hz = 10.0;
  const Eigen::VectorXd a = mean_psd(make_noise(clean, fs, off, Rng(9)).noise_V);
  const Eigen::VectorXd b = mean_psd(make_noise(clean, fs, on, Rng(9)).noise_V);
  const double df = fs / 8192.0;
  auto at = [&](const Eigen::VectorXd& v, double f) {
    return v[static_cast<Eigen::Index>(std::lround(f / df))];
  };
  // Normalise at 1 kHz (where the high-pass passes everything).
  const double norm = at(b, 1000.0) / at(a, 1000.0);
  const double g10 = at(b, 10.0) / at(a, 10.0) / norm;
  const double g5 = at(b, 5.0) / at(a, 5.0) / norm;
  std::printf("[measured] high-pass 10 Hz: gain %.3f at 10 Hz (0.5), %.4f at 5 Hz (%.4f)\n", g10,
              g5, 1.0 / 17.0);
  EXPECT_NEAR(g10, 0.5, 0.1);
  EXPECT_NEAR(g5, 1.0 / 17.0, 0.03);
}

TEST(Noise, PowerlinePeaksAtFundamentalAndHarmonicsWithTheirRatios) {
  const Eigen::MatrixXd clean = clean_signal(2, 102400);
  for (const double f0 : {50.0, 60.0}) {
    NoiseParams p = realistic();
    p.powerline_Hz = f0;
    p.powerline_amplitude_ratio = 20.0; // lines well above the floor, to measure the ratios
    const NoiseResult r = generate_noise(2, clean.cols(), fs, 10e-6, p, Rng(13));
    const Eigen::VectorXd psd = mean_psd(r.noise_V);
    const double df = fs / 8192.0;
    const double p1 = line_power(psd, df, f0, 2.5);
    for (std::size_t k = 0; k < p.powerline_harmonic_ratios.size(); ++k) {
      const double fk = f0 * static_cast<double>(k + 1);
      const double ratio = std::sqrt(line_power(psd, df, fk, 1.5 + 1.0 * (k + 1)) / p1);
      // The peak bin.
      Eigen::Index kmax = 0;
      psd.segment(static_cast<Eigen::Index>((fk - 5) / df), static_cast<Eigen::Index>(10 / df))
          .maxCoeff(&kmax);
      const double f_peak = (static_cast<double>(kmax) + std::floor((fk - 5) / df)) * df;
      std::printf("[measured] powerline %g Hz harmonic %zu: peak %.2f Hz, ratio %.4f (%.4f, "
                  "error %.1f %%)\n",
                  f0, k + 1, f_peak, ratio, p.powerline_harmonic_ratios[k],
                  100 * (ratio / p.powerline_harmonic_ratios[k] - 1));
      EXPECT_NEAR(ratio, p.powerline_harmonic_ratios[k], 0.2 * p.powerline_harmonic_ratios[k]);
      EXPECT_NEAR(f_peak, fk, 0.6 * static_cast<double>(k + 1) + df);
    }
    // The fundamental's amplitude: power A^2 (1 + m^2) / 2 relative to the broadband.
    const double total = r.noise_V.squaredNorm() / static_cast<double>(r.noise_V.size());
    double lines = 0;
    for (double q : p.powerline_harmonic_ratios)
      lines += q * q;
    const double bb = total / (1 + 400 * 1.0225 * lines / 2);
    std::printf("[measured] powerline %g Hz: fundamental amplitude ratio %.2f (20)\n", f0,
                std::sqrt(2 * p1 / 1.0225 / bb));
    EXPECT_NEAR(std::sqrt(2 * p1 / 1.0225 / bb), 20.0, 0.2 * 20.0);
  }
}

TEST(Noise, MainsFrequencyWalkIsSharedByTheChannels) {
  // A fundamental alone, 20 times the broadband, a fast 2 Hz walk: two channels differ by a
  // constant phase only, so (x, y) stays on the ellipse x^2 - 2 x y c + y^2 = A^2 (1 - c^2).
  NoiseParams p = realistic();
  p.excess_kurtosis = 0.0;
  p.powerline_amplitude_ratio = 20.0;
  p.powerline_harmonic_ratios = {1.0};
  p.powerline_am_depth = 0.0;
  p.powerline_drift_Hz = 2.0;
  p.powerline_drift_tau_s = 0.5;
  const NoiseResult r = generate_noise(2, 51200, fs, 1.0, p, Rng(19));
  const Eigen::VectorXd x = r.noise_V.row(0).transpose();
  const Eigen::VectorXd y = r.noise_V.row(1).transpose();
  const double c = x.dot(y) / std::sqrt(x.squaredNorm() * y.squaredNorm());
  const double a2 = 2.0 * x.squaredNorm() / static_cast<double>(x.size());
  const Eigen::ArrayXd e =
      (x.array().square() - 2.0 * c * x.array() * y.array() + y.array().square()) / a2 -
      (1.0 - c * c);
  const double rms_e = std::sqrt(e.square().mean());
  std::printf("[measured] shared mains walk: ellipse residual %.3f (channel correlation %.3f)\n",
              rms_e, c);
  EXPECT_LT(rms_e, 0.2);
}

TEST(Noise, DriftHasItsRmsBandAndSlope) {
  NoiseParams p = realistic();
  p.drift_rms_V = 5e-6;
  p.powerline_Hz = 0.0;
  const Eigen::Index n = 204800; // 20 s
  const NoiseResult r = generate_noise(8, n, fs, 1e-12, p, Rng(17));
  // The broadband is 1e-12 V: the rows are the drift.
  for (Eigen::Index c = 0; c < 8; ++c)
    EXPECT_NEAR(r.noise_rms_V[c], 5e-6, 1e-9);
  // Periodogram of the whole record: slope over [0.1, 1] Hz, nothing above 1 Hz.
  const Eigen::Index seg = 131072; // 12.8 s
  const Eigen::VectorXd psd = signal::welch_psd(r.noise_V, fs, seg).colwise().mean().transpose();
  const double df = fs / static_cast<double>(seg);
  const double slope = fitted_slope(psd, df, 0.15, 1.0);
  double above = 0, all = 0;
  for (Eigen::Index k = 1; k < psd.size(); ++k) {
    all += psd[k];
    if (k * df > 2.0)
      above += psd[k];
  }
  std::printf("[measured] drift: slope %.3f (-1.75), power above 2 Hz %.2e of total\n", slope,
              above / all);
  EXPECT_NEAR(slope, -1.75, 0.3);
  EXPECT_LT(above / all, 1e-3);
}

TEST(Noise, SameSeedSameBitsAtOneAndTwoThreads) {
  const Eigen::MatrixXd clean = clean_signal(5, 20480);
  NoiseParams p = realistic();
  p.drift_rms_V = 1e-6;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const NoiseResult a = make_noise(clean, fs, p, Rng(23));
  omp_set_num_threads(2);
  const NoiseResult b = make_noise(clean, fs, p, Rng(23));
  const NoiseResult c = make_noise(clean, fs, p, Rng(24));
  omp_set_num_threads(saved);
  EXPECT_TRUE((a.noise_V.array() == b.noise_V.array()).all());
  EXPECT_FALSE((a.noise_V.array() == c.noise_V.array()).all());
  // Channels are independent streams.
  EXPECT_NE(a.noise_V(0, 100), a.noise_V(1, 100));
}

TEST(Noise, BadArgumentsAreBadInput) {
  const Eigen::MatrixXd clean = clean_signal(1, 100);
  expect_error<BadInput>([&] { make_noise(clean, 0.0, NoiseParams{}, Rng(1)); },
                         {"fs_Hz = 0", "> 0"});
  NoiseParams p = realistic();
  p.drift_rms_V = 1e-6;
  expect_error<BadInput>([&] { make_noise(clean, fs, p, Rng(1)); }, {"drift band", "lengthen"});
}

TEST(Welch, WhiteNoiseDensityAndSinePower) {
  Rng r(1);
  Eigen::MatrixXd x(1, 65536);
  for (Eigen::Index i = 0; i < x.cols(); ++i)
    x(0, i) = 2.0 * r.normal() + 3.0 * std::sin(2 * std::numbers::pi * 1000.0 * i / fs);
  const Eigen::VectorXd psd = signal::welch_psd(x, fs, 4096).row(0).transpose();
  const double df = fs / 4096;
  // Floor: 2 sigma^2 / fs; line: A^2 / 2.
  const double floor = psd.segment(1000, 500).mean();
  EXPECT_NEAR(floor / (2 * 4.0 / fs), 1.0, 0.05);
  const double line = line_power(psd, df, 1000.0, 10.0);
  EXPECT_NEAR(line / 4.5, 1.0, 0.02);
}

namespace {

struct RoundTrip {
  NoiseParams truth;
  NoiseCalibration cal;
};

RoundTrip round_trip(const NoiseParams& truth, Eigen::Index n_ch, double duration_s,
                     std::uint64_t seed) {
  const auto n = static_cast<Eigen::Index>(duration_s * fs);
  const NoiseResult r = generate_noise(n_ch, n, fs, 10e-6, truth, Rng(seed));
  return {truth, calibrate_noise(r.noise_V, fs)};
}

void print(const char* name, const RoundTrip& t) {
  const NoiseParams& a = t.truth;
  const NoiseParams& b = t.cal.params;
  std::printf("[measured] round trip %s: slope %.3f (%.3f) midband %.0f Hz (%.0f) gain %.2f dB "
              "(%.2f) width %.2f oct (%.2f) highpass %.2f Hz (%.2f) kurtosis %.3f (%.3f) "
              "powerline %.3f Hz (%.3f) amplitude %.3f (%.3f) drift %.3f Hz (%.3f) "
              "baseline drift %.3f uV (%.3f) alpha %.2f (%.2f) fit residual %.3f\n",
              name, b.psd_slope, a.psd_slope, b.midband_Hz, a.midband_Hz, b.midband_gain_dB,
              a.midband_gain_dB, b.midband_width_oct, a.midband_width_oct, b.highpass_Hz,
              a.highpass_Hz, b.excess_kurtosis, a.excess_kurtosis, b.powerline_Hz, a.powerline_Hz,
              b.powerline_amplitude_ratio, a.powerline_amplitude_ratio, b.powerline_drift_Hz,
              a.powerline_drift_Hz, 1e6 * b.drift_rms_V, 1e6 * a.drift_rms_V, b.drift_alpha,
              a.drift_alpha, t.cal.report["broadband_fit"]["rms_log_residual"].get<double>());
  for (std::size_t k = 0; k < b.powerline_harmonic_ratios.size(); ++k)
    std::printf("[measured] round trip %s: harmonic %zu ratio %.4f (%.4f)\n", name, k + 1,
                b.powerline_harmonic_ratios[k],
                k < a.powerline_harmonic_ratios.size() ? a.powerline_harmonic_ratios[k] : 0.0);
}

} // namespace

TEST(NoiseCalibration, RecoversTheDefaults) {
  const RoundTrip t = round_trip(realistic(), 4, 10.0, 31);
  print("defaults", t);
  const NoiseParams& b = t.cal.params;
  EXPECT_EQ(b.type, NoiseType::realistic);
  EXPECT_NEAR(b.psd_slope, -0.5, 0.1);
  EXPECT_NEAR(std::log2(b.midband_Hz / 1000.0), 0.0, 0.2);
  EXPECT_NEAR(b.excess_kurtosis, 3.0, 0.2 * 3.0);
  EXPECT_NEAR(b.powerline_Hz, 50.0, 0.5); // the walk's realised mean: +-0.2 Hz
  ASSERT_GE(b.powerline_harmonic_ratios.size(), 2U);
  EXPECT_NEAR(b.powerline_harmonic_ratios[1], 0.5, 0.2 * 0.5);
  EXPECT_NEAR(b.powerline_amplitude_ratio, 0.1, 0.2 * 0.1);
  EXPECT_EQ(b.drift_rms_V, 0.0);
  // The calibrated config reads back.
  ConfigReader cfg(to_json(b), "noise.json");
  EXPECT_EQ(to_json(read_noise_params(cfg)).dump(), to_json(b).dump());
}

TEST(NoiseCalibration, RecoversSixtyHzSteepSlopeAndDrift) {
  NoiseParams truth = realistic();
  truth.psd_slope = -1.0;
  truth.midband_Hz = 600.0;
  truth.midband_gain_dB = 8.0;
  truth.excess_kurtosis = 5.0;
  truth.powerline_Hz = 60.0;
  truth.powerline_amplitude_ratio = 1.0;
  truth.drift_rms_V = 20e-6;
  const RoundTrip t = round_trip(truth, 8, 20.0, 37);
  print("60 Hz", t);
  const NoiseParams& b = t.cal.params;
  EXPECT_NEAR(b.psd_slope, -1.0, 0.1);
  EXPECT_NEAR(std::log2(b.midband_Hz / 600.0), 0.0, 0.2);
  EXPECT_NEAR(b.excess_kurtosis, 5.0, 0.2 * 5.0);
  EXPECT_NEAR(b.powerline_Hz, 60.0, 0.5);
  ASSERT_EQ(b.powerline_harmonic_ratios.size(), 5U);
  for (std::size_t k = 0; k < 5; ++k)
    EXPECT_NEAR(b.powerline_harmonic_ratios[k], truth.powerline_harmonic_ratios[k],
                0.2 * truth.powerline_harmonic_ratios[k]);
  EXPECT_NEAR(b.powerline_amplitude_ratio, 1.0, 0.2);
  EXPECT_NEAR(b.powerline_drift_Hz, 0.3, 0.15);
  EXPECT_NEAR(b.drift_rms_V, 20e-6, 0.2 * 20e-6);
  EXPECT_NEAR(b.drift_alpha, 1.75, 0.4);
}

TEST(NoiseCalibration, ShortOrNonFiniteRecordingsAreBadInput) {
  expect_error<BadInput>([] { calibrate_noise(Eigen::MatrixXd::Zero(1, 500), fs); }, {"too short"});
  Eigen::MatrixXd x = Eigen::MatrixXd::Ones(2, 50000);
  x(1, 7) = std::nan("");
  expect_error<BadInput>([&] { calibrate_noise(x, fs); }, {"non-finite"});
}
