#pragma once
/// \file signal.hpp
/// Signal processing shared by the stages: the discrete Fourier transform (FFTW, kept inside
/// signal.cpp), Welch power spectral densities and second-order (biquad) filters run forward and
/// backward for zero phase.

#include <complex>
#include <cstddef>
#include <memory>
#include <vector>

#include <Eigen/Core>

namespace myotwin::signal {

using Complex = std::complex<double>;

/// The discrete Fourier transform of one length n >= 1 (any length; FFTW plans made once with
/// FFTW_ESTIMATE, so the same input gives the same bits on every run and at any thread count).
/// Built once, then used read-only from any number of threads.
class Fft {
public:
  /// \throws std::invalid_argument when n == 0.
  explicit Fft(std::size_t n);
  ~Fft();
  Fft(Fft&&) noexcept;
  Fft& operator=(Fft&&) noexcept;
  Fft(const Fft&) = delete;
  Fft& operator=(const Fft&) = delete;

  [[nodiscard]] std::size_t size() const { return n_; }
  /// In place: X[k] = sum_n x[n] exp(-2 pi i k n / N). \pre x.size() == size().
  void forward(std::vector<Complex>& x) const;
  /// In place: x[n] = sum_k X[k] exp(+2 pi i k n / N) (no 1/N). \pre x.size() == size().
  void inverse(std::vector<Complex>& x) const;

private:
  struct Plans;
  std::size_t n_ = 0;
  std::unique_ptr<Plans> plans_;
};

/// Welch PSD estimate of each row of `x` (#channels x #samples, unit U) with Hann segments of
/// `segment_length` samples (a power of two, <= #samples), 50 % overlap, each segment's mean
/// removed: returns #channels x (segment_length / 2 + 1) one-sided densities [U^2/Hz] at
/// f = k fs / segment_length. \throws BadInput for a segment that is not a power of two >= 2 or
/// longer than the signal.
Eigen::MatrixXd welch_psd(const Eigen::Ref<const Eigen::MatrixXd>& x, double fs_Hz,
                          Eigen::Index segment_length);

/// A second-order section y = (b0 + b1 z^-1 + b2 z^-2) / (1 + a1 z^-1 + a2 z^-2) x, designed by
/// the bilinear transform with frequency pre-warping (R. Bristow-Johnson's audio EQ cookbook).
struct Biquad {
  double b0 = 1.0, b1 = 0.0, b2 = 0.0, a1 = 0.0, a2 = 0.0;

  /// Low-pass with corner f0_Hz and quality q (q = 1/sqrt 2: Butterworth), sampled at fs_Hz.
  static Biquad lowpass(double f0_Hz, double q, double fs_Hz);
  /// High-pass with corner f0_Hz and quality q (q = 1/sqrt 2: Butterworth).
  static Biquad highpass(double f0_Hz, double q, double fs_Hz);
  /// Notch at f0_Hz with quality q = f0 / bandwidth.
  static Biquad notch(double f0_Hz, double q, double fs_Hz);
};

/// Runs `f` over `x` in place (direct form II transposed), backward when `backward`, starting
/// from the steady state of a constant input equal to the first sample run (so that a DC offset
/// or a slow start does not ring through narrow notches).
void run_biquad(const Biquad& f, std::vector<double>& x, bool backward);

} // namespace myotwin::signal
