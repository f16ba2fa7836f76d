// core/signal: the FFT against the defining sum, the biquads against their closed-form
// responses, Welch's scaling against Parseval.

#include <cmath>
#include <complex>
#include <numbers>
#include <vector>

#include <gtest/gtest.h>
#include <omp.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/signal.hpp"

using namespace myotwin;
using signal::Complex;

namespace {

constexpr double pi = std::numbers::pi;

std::vector<Complex> random_signal(std::size_t n, std::uint64_t seed) {
  Rng r(seed);
  std::vector<Complex> x(n);
  for (auto& v : x)
    v = Complex(r.normal(), r.normal());
  return x;
}

/// X[k] = sum_n x[n] exp(sign 2 pi i k n / N), summed directly.
std::vector<Complex> dft(const std::vector<Complex>& x, double sign) {
  const auto n = x.size();
  std::vector<Complex> out(n);
  for (std::size_t k = 0; k < n; ++k)
    for (std::size_t j = 0; j < n; ++j)
      out[k] += x[j] * std::polar(1.0, sign * 2.0 * pi * static_cast<double>(k * j % n) /
                                           static_cast<double>(n));
  return out;
}

/// |H(e^{i w})| of a biquad at f_Hz.
double gain(const signal::Biquad& b, double f_Hz, double fs_Hz) {
  const Complex z1 = std::polar(1.0, -2.0 * pi * f_Hz / fs_Hz);
  return std::abs((b.b0 + b.b1 * z1 + b.b2 * z1 * z1) / (1.0 + b.a1 * z1 + b.a2 * z1 * z1));
}

} // namespace

TEST(Fft, ForwardAndInverseAreTheDefiningSumsForAnyLength) {
  for (const std::size_t n : {1U, 2U, 7U, 64U, 100U, 243U}) {
    const auto x = random_signal(n, n);
    const signal::Fft fft(n);
    auto forward = x;
    fft.forward(forward);
    auto inverse = x;
    fft.inverse(inverse);
    const auto f_ref = dft(x, -1.0), i_ref = dft(x, 1.0);
    for (std::size_t k = 0; k < n; ++k) {
      EXPECT_LT(std::abs(forward[k] - f_ref[k]), 1e-10 * std::sqrt(static_cast<double>(n)))
          << "n " << n << " k " << k;
      EXPECT_LT(std::abs(inverse[k] - i_ref[k]), 1e-10 * std::sqrt(static_cast<double>(n)));
    }
    // inverse(forward(x)) = n x
    fft.inverse(forward);
    for (std::size_t k = 0; k < n; ++k)
      EXPECT_LT(std::abs(forward[k] / static_cast<double>(n) - x[k]), 1e-12);
  }
}

TEST(Fft, SameBitsFromEveryThreadAndAfterAMove) {
  const std::size_t n = 4096;
  const auto x = random_signal(n, 3);
  signal::Fft made(n);
  const signal::Fft fft = std::move(made);
  auto serial = x;
  fft.forward(serial);
  std::vector<std::vector<Complex>> each(8, x);
#pragma omp parallel for num_threads(2)
  for (int t = 0; t < 8; ++t)
    fft.forward(each[static_cast<std::size_t>(t)]);
  for (const auto& y : each)
    EXPECT_TRUE(y == serial);
  EXPECT_THROW(signal::Fft(0), std::invalid_argument);
}

TEST(Biquad, ButterworthCornersAndNotchMatchTheirClosedForms) {
  const double fs = 2048.0, q = std::numbers::sqrt2 / 2.0;
  const auto lp = signal::Biquad::lowpass(100.0, q, fs);
  const auto hp = signal::Biquad::highpass(20.0, q, fs);
  const auto notch = signal::Biquad::notch(50.0, 50.0 / 2.0, fs);
  // Bilinear transform: unit gain at DC (low-pass) and Nyquist (high-pass), -3 dB at the corner
  // (pre-warped), zero at Nyquist (low-pass) and DC (high-pass), zero at the notch frequency.
  EXPECT_NEAR(gain(lp, 0.0, fs), 1.0, 1e-12);
  EXPECT_NEAR(gain(lp, 100.0, fs), 1.0 / std::sqrt(2.0), 1e-9);
  EXPECT_NEAR(gain(lp, fs / 2.0, fs), 0.0, 1e-9);
  EXPECT_NEAR(gain(hp, fs / 2.0, fs), 1.0, 1e-12);
  EXPECT_NEAR(gain(hp, 20.0, fs), 1.0 / std::sqrt(2.0), 1e-9);
  EXPECT_NEAR(gain(hp, 0.0, fs), 0.0, 1e-12);
  EXPECT_NEAR(gain(notch, 50.0, fs), 0.0, 1e-9);
  EXPECT_NEAR(gain(notch, 0.0, fs), 1.0, 1e-12);
  EXPECT_NEAR(gain(notch, 300.0, fs), 1.0, 2e-3);
  // A sine at the low-pass corner run forward and backward (zero phase) keeps its phase and
  // loses half its amplitude (|H|^2 = 1/2).
  std::vector<double> x(20000);
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = std::sin(2.0 * pi * 100.0 * static_cast<double>(k) / fs);
  auto y = x;
  signal::run_biquad(lp, y, false);
  signal::run_biquad(lp, y, true);
  double num = 0.0, den = 0.0;
  for (std::size_t k = 5000; k < 15000; ++k) {
    num += y[k] * x[k];
    den += x[k] * x[k];
  }
  EXPECT_NEAR(num / den, 0.5, 1e-3);
  // A constant passes a low-pass unchanged from the first sample (steady-state start).
  std::vector<double> c(100, 3.0);
  signal::run_biquad(lp, c, false);
  for (double v : c)
    EXPECT_NEAR(v, 3.0, 1e-12);
}

TEST(Welch, DensityIntegratesToTheVarianceAndBadSegmentsAreRefused) {
  Rng r(5);
  const double fs = 1000.0;
  Eigen::MatrixXd x(2, 32768);
  for (Eigen::Index i = 0; i < x.cols(); ++i) {
    x(0, i) = 1.5 * r.normal();
    x(1, i) = 0.5 * r.normal();
  }
  const Eigen::MatrixXd psd = signal::welch_psd(x, fs, 1024);
  ASSERT_EQ(psd.cols(), 513);
  // Parseval: sum of the one-sided density times df = the variance.
  const double df = fs / 1024.0;
  EXPECT_NEAR(psd.row(0).sum() * df / (1.5 * 1.5), 1.0, 0.03);
  EXPECT_NEAR(psd.row(1).sum() * df / (0.5 * 0.5), 1.0, 0.03);
  EXPECT_THROW(signal::welch_psd(x, fs, 1000), BadInput);
  EXPECT_THROW(signal::welch_psd(x, fs, 65536), BadInput);
  EXPECT_THROW(signal::welch_psd(x, fs, 1), BadInput);
}
