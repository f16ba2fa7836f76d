#include "myotwin/core/signal.hpp"

#include <cmath>
#include <mutex>
#include <numbers>
#include <stdexcept>
#include <string>

#include <fftw3.h>

#include "myotwin/core/error.hpp"

namespace myotwin::signal {

namespace {

/// FFTW's planner and plan destruction are not thread-safe; executing a plan is.
std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

fftw_complex* as_fftw(std::vector<Complex>& x) {
  // std::complex<double> has the layout of double[2] (C++ [complex.numbers]), as FFTW documents.
  return reinterpret_cast<fftw_complex*>(x.data());
}

} // namespace

struct Fft::Plans {
  fftw_plan forward = nullptr;
  fftw_plan inverse = nullptr;
};

Fft::Fft(std::size_t n) : n_(n), plans_(std::make_unique<Plans>()) {
  if (n == 0)
    throw std::invalid_argument("Fft: length 0");
  // Planned in place on scratch arrays; executed later on any array (new-array execute), hence
  // FFTW_UNALIGNED. FFTW_ESTIMATE chooses the plan without timing, so it is the same every run.
  std::vector<Complex> scratch(n);
  const int len = static_cast<int>(n);
  const unsigned flags = FFTW_ESTIMATE | FFTW_UNALIGNED;
  const std::lock_guard lock(planner_mutex());
  plans_->forward = fftw_plan_dft_1d(len, as_fftw(scratch), as_fftw(scratch), FFTW_FORWARD, flags);
  plans_->inverse = fftw_plan_dft_1d(len, as_fftw(scratch), as_fftw(scratch), FFTW_BACKWARD, flags);
  if (!plans_->forward || !plans_->inverse)
    throw Error("FFTW could not plan a transform of length " + std::to_string(n));
}

Fft::~Fft() {
  if (!plans_)
    return;
  const std::lock_guard lock(planner_mutex());
  if (plans_->forward)
    fftw_destroy_plan(plans_->forward);
  if (plans_->inverse)
    fftw_destroy_plan(plans_->inverse);
}

Fft::Fft(Fft&&) noexcept = default;
Fft& Fft::operator=(Fft&&) noexcept = default;

void Fft::forward(std::vector<Complex>& x) const {
  fftw_execute_dft(plans_->forward, as_fftw(x), as_fftw(x));
}

void Fft::inverse(std::vector<Complex>& x) const {
  fftw_execute_dft(plans_->inverse, as_fftw(x), as_fftw(x));
}

Eigen::MatrixXd welch_psd(const Eigen::Ref<const Eigen::MatrixXd>& x, double fs_Hz,
                          Eigen::Index segment_length) {
  const auto L = static_cast<std::size_t>(segment_length);
  if (segment_length < 2 || (L & (L - 1)) != 0 || segment_length > x.cols())
    throw BadInput(
        "Welch spectrum: segment of " + std::to_string(segment_length) +
        " samples: must be a power of two >= 2 and <= #samples = " + std::to_string(x.cols()));
  constexpr double two_pi = 2.0 * std::numbers::pi;
  const Fft fft(L);
  std::vector<double> w(L);
  double u = 0.0;
  for (std::size_t i = 0; i < L; ++i) {
    w[i] = 0.5 * (1.0 - std::cos(two_pi * static_cast<double>(i) / static_cast<double>(L)));
    u += w[i] * w[i];
  }
  const auto n = static_cast<std::size_t>(x.cols());
  const std::size_t hop = L / 2;
  const std::size_t n_seg = (n - L) / hop + 1;
  Eigen::MatrixXd psd = Eigen::MatrixXd::Zero(x.rows(), static_cast<Eigen::Index>(L / 2 + 1));
#pragma omp parallel for schedule(dynamic)
  for (Eigen::Index c = 0; c < x.rows(); ++c) {
    std::vector<Complex> buf(L);
    std::vector<double> acc(L / 2 + 1, 0.0);
    for (std::size_t s = 0; s < n_seg; ++s) {
      double mean = 0.0;
      for (std::size_t i = 0; i < L; ++i)
        mean += x(c, static_cast<Eigen::Index>(s * hop + i));
      mean /= static_cast<double>(L);
      for (std::size_t i = 0; i < L; ++i)
        buf[i] = Complex((x(c, static_cast<Eigen::Index>(s * hop + i)) - mean) * w[i], 0.0);
      fft.forward(buf);
      for (std::size_t k = 0; k <= L / 2; ++k)
        acc[k] += std::norm(buf[k]);
    }
    for (std::size_t k = 0; k <= L / 2; ++k) {
      const double one_sided = (k == 0 || k == L / 2) ? 1.0 : 2.0;
      psd(c, static_cast<Eigen::Index>(k)) =
          one_sided * acc[k] / (static_cast<double>(n_seg) * fs_Hz * u);
    }
  }
  return psd;
}

namespace {

/// The cookbook's coefficients divided by a0 = 1 + alpha.
Biquad normalised(double b0, double b1, double b2, double a1, double a2, double alpha) {
  const double a0 = 1.0 + alpha;
  return {b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0};
}

struct Warped {
  double cw, alpha;
};

Warped warp(double f0_Hz, double q, double fs_Hz) {
  const double w0 = 2.0 * std::numbers::pi * f0_Hz / fs_Hz;
  return {std::cos(w0), std::sin(w0) / (2.0 * q)};
}

} // namespace

Biquad Biquad::lowpass(double f0_Hz, double q, double fs_Hz) {
  const auto [cw, alpha] = warp(f0_Hz, q, fs_Hz);
  return normalised((1.0 - cw) / 2.0, 1.0 - cw, (1.0 - cw) / 2.0, -2.0 * cw, 1.0 - alpha, alpha);
}

Biquad Biquad::highpass(double f0_Hz, double q, double fs_Hz) {
  const auto [cw, alpha] = warp(f0_Hz, q, fs_Hz);
  return normalised((1.0 + cw) / 2.0, -(1.0 + cw), (1.0 + cw) / 2.0, -2.0 * cw, 1.0 - alpha, alpha);
}

Biquad Biquad::notch(double f0_Hz, double q, double fs_Hz) {
  const auto [cw, alpha] = warp(f0_Hz, q, fs_Hz);
  return normalised(1.0, -2.0 * cw, 1.0, -2.0 * cw, 1.0 - alpha, alpha);
}

void run_biquad(const Biquad& f, std::vector<double>& x, bool backward) {
  const auto n = x.size();
  if (n == 0)
    return;
  const double x0 = x[backward ? n - 1 : 0];
  const double y0 = x0 * (f.b0 + f.b1 + f.b2) / (1.0 + f.a1 + f.a2);
  double z2 = f.b2 * x0 - f.a2 * y0;
  double z1 = f.b1 * x0 - f.a1 * y0 + z2;
  for (std::size_t k = 0; k < n; ++k) {
    double& v = x[backward ? n - 1 - k : k];
    const double in = v;
    const double out = f.b0 * in + z1;
    z1 = f.b1 * in - f.a1 * out + z2;
    z2 = f.b2 * in - f.a2 * out;
    v = out;
  }
}

} // namespace myotwin::signal
