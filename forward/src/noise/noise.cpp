#include "myotwin/forward/noise/noise.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/signal.hpp"
#include "myotwin/core/stats.hpp"

namespace myotwin::forward {

namespace {

using Complex = std::complex<double>;
constexpr double two_pi = 2.0 * std::numbers::pi;

using signal::Fft;

std::size_t next_pow2(std::size_t n) {
  std::size_t p = 1;
  while (p < n)
    p <<= 1;
  return p;
}

double rms(const double* x, Eigen::Index n) {
  double s = 0.0;
  for (Eigen::Index i = 0; i < n; ++i)
    s += x[i] * x[i];
  return n > 0 ? std::sqrt(s / static_cast<double>(n)) : 0.0;
}

/// The broadband PSD shape (unnormalised) at f > 0.
double broadband_shape(double f, const NoiseParams& p) {
  if (!(f > 0.0))
    return 0.0;
  double v = std::pow(f, p.psd_slope);
  if (p.midband_gain_dB > 0.0) {
    const double g = std::pow(10.0, p.midband_gain_dB / 10.0) - 1.0;
    const double x = std::log2(f / p.midband_Hz) / p.midband_width_oct;
    v *= 1.0 + g * std::exp(-0.5 * x * x);
  }
  if (p.highpass_Hz > 0.0) {
    const double r = std::pow(f / p.highpass_Hz, 2.0 * p.highpass_order);
    v *= r / (1.0 + r);
  }
  return v;
}

/// The stream of the mains frequency walk, shared by all channels.
constexpr std::uint64_t mains_stream = ~std::uint64_t{0};

bool powerline_on(const NoiseParams& p) {
  if (!(p.powerline_Hz > 0.0) || !(p.powerline_amplitude_ratio > 0.0))
    return false;
  return std::any_of(p.powerline_harmonic_ratios.begin(), p.powerline_harmonic_ratios.end(),
                     [](double r) { return r > 0.0; });
}

/// The realistic noise of one channel before scaling: y = b + p (b of unit RMS) and the drift
/// d at drift_rms_V, each of n samples; the excess kurtosis of y as realised.
struct RealisticDraw {
  std::vector<double> y;
  std::vector<double> drift;
};

/// Samples between the knots of the slow processes (heavy-tail envelope, mains walk, amplitude
/// modulation), which are drawn at the knot rate and interpolated linearly: a rate of at least
/// 256 Hz and 32 times their bandwidths.
std::size_t knot_step(double fs_Hz, const NoiseParams& p) {
  const double rate =
      std::max({256.0, 32.0 * p.envelope_bandwidth_Hz, 32.0 / (two_pi * p.powerline_am_tau_s),
                32.0 / (two_pi * p.powerline_drift_tau_s)});
  return std::max<std::size_t>(1, static_cast<std::size_t>(std::floor(fs_Hz / rate)));
}

/// Knots j = 0..K-1 at samples j h cover samples 0..n-1.
std::size_t knot_count(std::size_t n, std::size_t h) {
  return (n + h - 2) / h + 1;
}

/// The linear interpolation of `knots` (step h) at sample i.
double at_sample(const std::vector<double>& knots, std::size_t h, std::size_t i) {
  const std::size_t j = i / h;
  if (j + 1 >= knots.size())
    return knots[j];
  const double t = static_cast<double>(i - j * h) / static_cast<double>(h);
  return (1.0 - t) * knots[j] + t * knots[j + 1];
}

/// Kurtosis of y = (e g) / RMS(e g) + p over n samples, e the interpolation of exp(a u_knots);
/// y is left in `work`.
double mixture_kurtosis(double a, const std::vector<double>& g, const std::vector<double>& u,
                        std::size_t h, const std::vector<double>& p, std::vector<double>& e,
                        std::vector<double>& work) {
  const std::size_t n = g.size();
  e.resize(u.size());
  for (std::size_t j = 0; j < u.size(); ++j)
    e[j] = std::exp(a * u[j]);
  double s2 = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    work[i] = at_sample(e, h, i) * g[i];
    s2 += work[i] * work[i];
  }
  const double scale = 1.0 / std::sqrt(s2 / static_cast<double>(n));
  for (std::size_t i = 0; i < n; ++i)
    work[i] = work[i] * scale + (p.empty() ? 0.0 : p[i]);
  return myotwin::excess_kurtosis(work.data(), n);
}

/// Square roots of the broadband and drift PSD shapes at k fs / n2, k = 0..n2/2 (the same for
/// every channel).
struct SpectralShapes {
  std::vector<double> broadband;
  std::vector<double> drift;
};

SpectralShapes spectral_shapes(std::size_t n2, double fs_Hz, const NoiseParams& prm) {
  SpectralShapes s;
  s.broadband.assign(n2 / 2 + 1, 0.0);
  s.drift.assign(n2 / 2 + 1, 0.0);
  const double df = fs_Hz / static_cast<double>(n2);
  const double drift_lo = std::max(prm.drift_low_Hz, df);
  for (std::size_t k = 1; k <= n2 / 2; ++k) {
    const double f = df * static_cast<double>(k);
    s.broadband[k] = std::sqrt(broadband_shape(f, prm));
    if (f >= drift_lo && f <= prm.drift_high_Hz && k < n2 / 2)
      s.drift[k] = std::sqrt(std::pow(f, -prm.drift_alpha));
  }
  return s;
}

/// One complex Gaussian coefficient of unit power per bin, scaled by `amp` (the Nyquist bin of
/// the broadband is real).
Complex gaussian_coefficient(Rng& r, double amp) {
  const double re = r.normal();
  const double im = r.normal();
  return Complex(re, im) * (amp * std::numbers::sqrt2 / 2.0);
}

/// Step 1: broadband (real part) and drift (imaginary part) from one inverse FFT of Hermitian
/// spectra with complex Gaussian coefficients; fills `g` (n samples, unshaped level) and, when
/// drift is on, `out.drift` (n samples [V], zero mean, drift_rms_V).
void draw_broadband_and_drift(std::size_t n, const NoiseParams& prm, const Fft& fft,
                              const SpectralShapes& shapes, Rng& r, std::vector<double>& g,
                              RealisticDraw& out) {
  const std::size_t n2 = fft.size();
  const bool drift_on = prm.drift_rms_V > 0.0;
  const std::vector<double>& amp_b = shapes.broadband;
  const std::vector<double>& amp_d = shapes.drift;
  std::vector<Complex> spec(n2, Complex(0.0, 0.0));
  for (std::size_t k = 1; k <= n2 / 2; ++k) {
    const bool nyquist = k == n2 / 2;
    const double sb = amp_b[k];
    Complex xb;
    if (nyquist)
      xb = Complex(r.normal() * sb, 0.0);
    else
      xb = gaussian_coefficient(r, sb);
    Complex xd(0.0, 0.0);
    if (drift_on)
      xd = gaussian_coefficient(r, amp_d[k]);
    spec[k] = xb + Complex(0.0, 1.0) * xd;
    if (!nyquist)
      spec[n2 - k] = std::conj(xb) + Complex(0.0, 1.0) * std::conj(xd);
  }
  fft.inverse(spec);
  g.resize(n);
  for (std::size_t i = 0; i < n; ++i)
    g[i] = spec[i].real();

  if (drift_on) {
    out.drift.resize(n);
    double mean = 0.0;
    for (std::size_t i = 0; i < n; ++i)
      mean += spec[i].imag();
    mean /= static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i)
      out.drift[i] = spec[i].imag() - mean;
    const double s = rms(out.drift.data(), static_cast<Eigen::Index>(n));
    for (auto& v : out.drift)
      v *= s > 0.0 ? prm.drift_rms_V / s : 0.0;
  }
}

/// The knots of the slow processes: step h [samples], count, spacing dt [s].
struct Knots {
  std::size_t h = 1;
  std::size_t n = 0;
  double dt_s = 0.0;
};

/// Step 2: the envelope u at the knots: white noise through two one-pole low-passes at
/// envelope_bandwidth_Hz, standardised (all zero when excess_kurtosis is 0).
std::vector<double> envelope_knots(const Knots& knots, const NoiseParams& prm, Rng& r) {
  const std::size_t n_k = knots.n;
  std::vector<double> u(n_k, 0.0);
  if (!(prm.excess_kurtosis > 0.0))
    return u;
  const double rho = std::exp(-two_pi * prm.envelope_bandwidth_Hz * knots.dt_s);
  const double c = std::sqrt(1.0 - rho * rho);
  double u1 = r.normal();
  double u2 = u1;
  for (std::size_t j = 0; j < n_k; ++j) {
    if (j > 0) {
      u1 = rho * u1 + c * r.normal();
      u2 = rho * u2 + c * u1;
    }
    u[j] = u2;
  }
  double mean = 0.0;
  for (double v : u)
    mean += v;
  mean /= static_cast<double>(n_k);
  double var = 0.0;
  for (auto& v : u) {
    v -= mean;
    var += v * v;
  }
  const double sd = std::sqrt(var / static_cast<double>(n_k));
  for (auto& v : u)
    v = sd > 0.0 ? v / sd : 0.0;
  return u;
}

/// Step 3: the powerline of n samples relative to a unit-RMS broadband: the mains walk and the
/// amplitude modulation at the knots, the phase integrated per sample, the harmonics by complex
/// powers. Empty when the powerline is off.
std::vector<double> powerline_samples(std::size_t n, double fs_Hz, const NoiseParams& prm,
                                      const Knots& knots, Rng& mains, Rng& r) {
  std::vector<double> p;
  if (!powerline_on(prm))
    return p;
  const std::size_t h = knots.h;
  const std::size_t n_k = knots.n;
  const double dt_k = knots.dt_s;
  p.assign(n, 0.0);
  std::size_t n_h = 0;
  while (n_h < prm.powerline_harmonic_ratios.size() &&
         static_cast<double>(n_h + 1) * prm.powerline_Hz < 0.5 * fs_Hz)
    ++n_h;
  std::vector<Complex> rotation(prm.powerline_harmonic_ratios.size());
  for (std::size_t k = 0; k < rotation.size(); ++k)
    rotation[k] = prm.powerline_harmonic_ratios[k] * std::polar(1.0, two_pi * r.uniform());
  const double rho_d = std::exp(-dt_k / prm.powerline_drift_tau_s);
  const double c_d = prm.powerline_drift_Hz * std::sqrt(1.0 - rho_d * rho_d);
  const double rho_a = std::exp(-dt_k / prm.powerline_am_tau_s);
  const double c_a = std::sqrt(1.0 - rho_a * rho_a);
  std::vector<double> delta(n_k);
  std::vector<double> am(n_k);
  delta[0] = prm.powerline_drift_Hz * mains.normal();
  am[0] = r.normal();
  for (std::size_t j = 1; j < n_k; ++j) {
    delta[j] = rho_d * delta[j - 1] + c_d * mains.normal();
    am[j] = rho_a * am[j - 1] + c_a * r.normal();
  }
  for (auto& v : am)
    v = std::max(0.0, 1.0 + prm.powerline_am_depth * v);
  double phi = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) {
      phi += two_pi * (prm.powerline_Hz + at_sample(delta, h, i - 1)) / fs_Hz;
      phi -= two_pi * std::floor(phi / two_pi);
    }
    // sum_k r_k sin(k phi + theta_k) = Im sum_k (r_k e^(i theta_k)) z^k, z = e^(i phi).
    const Complex z = std::polar(1.0, phi);
    Complex zk = z;
    double s_sum = 0.0;
    for (std::size_t k = 0; k < n_h; ++k) {
      s_sum += (rotation[k] * zk).imag();
      zk *= z;
    }
    p[i] = prm.powerline_amplitude_ratio * at_sample(am, h, i) * s_sum;
  }
  return p;
}

/// Step 4: the root a of f(a) = 0 by regula falsi (Illinois), f(0) < 0 given, after doubling
/// the bracket from 0.5 up to 8; the last bracket end when f never reaches 0.
template <class F> double illinois_root(F&& f, double target) {
  double a = 0.0;
  double lo = 0.0;
  double f_lo = f(lo);
  if (!(f_lo < 0.0))
    return a;
  double hi = 0.5;
  double f_hi = f(hi);
  while (f_hi < 0.0 && hi < 8.0) {
    lo = hi;
    f_lo = f_hi;
    hi *= 2.0;
    f_hi = f(hi);
  }
  a = hi;
  if (!(f_hi >= 0.0))
    return a;
  int side = 0;
  for (int it = 0; it < 100; ++it) {
    a = (lo * f_hi - hi * f_lo) / (f_hi - f_lo);
    const double fa = f(a);
    if (std::abs(fa) < 1e-7 * std::max(1.0, target))
      break;
    if (fa < 0.0) {
      lo = a;
      f_lo = fa;
      if (side == -1)
        f_hi /= 2.0;
      side = -1;
    } else {
      hi = a;
      f_hi = fa;
      if (side == 1)
        f_lo /= 2.0;
      side = 1;
    }
  }
  return a;
}

RealisticDraw draw_realistic(std::size_t n, double fs_Hz, const NoiseParams& prm, const Fft& fft,
                             const SpectralShapes& shapes, Rng& mains, Rng& r) {
  // 1. Broadband and drift.
  RealisticDraw out;
  std::vector<double> g;
  draw_broadband_and_drift(n, prm, fft, shapes, r, g, out);

  // 2. Envelope at the knots.
  Knots knots;
  knots.h = knot_step(fs_Hz, prm);
  knots.n = knot_count(n, knots.h);
  knots.dt_s = static_cast<double>(knots.h) / fs_Hz;
  const std::vector<double> u = envelope_knots(knots, prm, r);

  // 3. Powerline.
  const std::vector<double> p = powerline_samples(n, fs_Hz, prm, knots, mains, r);

  // 4. Solve the envelope exponent a for the target kurtosis of b + p.
  const std::size_t h = knots.h;
  std::vector<double> work(n);
  std::vector<double> e;
  double a = 0.0;
  if (prm.excess_kurtosis > 0.0) {
    const double target = prm.excess_kurtosis;
    auto f = [&](double x) { return mixture_kurtosis(x, g, u, h, p, e, work) - target; };
    a = illinois_root(f, target);
  }
  mixture_kurtosis(a, g, u, h, p, e, work);
  out.y = std::move(work);
  return out;
}

void check_signal_args(Eigen::Index n_channels, Eigen::Index n_samples, double fs_Hz,
                       const NoiseParams& params) {
  if (!(fs_Hz > 0.0) || !std::isfinite(fs_Hz))
    throw BadInput("noise: fs_Hz = " + format_number(fs_Hz) + ": must be a finite number > 0");
  if (n_channels < 1 || n_samples < 2)
    throw BadInput("noise: signal of " + std::to_string(n_channels) + " x " +
                   std::to_string(n_samples) + " samples: need >= 1 channel and >= 2 samples");
  validate(params);
  if (params.type == NoiseType::realistic && params.drift_rms_V > 0.0) {
    const double df = fs_Hz / static_cast<double>(next_pow2(static_cast<std::size_t>(n_samples)));
    if (std::max(params.drift_low_Hz, df) > params.drift_high_Hz)
      throw BadInput("noise: drift band [" + format_number(params.drift_low_Hz) + ", " +
                     format_number(params.drift_high_Hz) + "] Hz holds no frequency of the " +
                     format_number(df) + " Hz grid of a " +
                     format_number(static_cast<double>(n_samples) / fs_Hz) +
                     " s signal: lengthen the signal or raise drift_high_Hz");
  }
}

/// The noise rows; target_rms[c] is the RMS without drift (<= 0: no noise), clean_rms[c] the
/// RMS of the clean channel (empty: no SNR).
NoiseResult noise_rows(Eigen::Index n_channels, Eigen::Index n_samples, double fs_Hz,
                       const NoiseParams& params, const Rng& rng, const Eigen::VectorXd& target_rms,
                       const Eigen::VectorXd& clean_rms) {
  NoiseResult result;
  result.noise_V = Eigen::MatrixXd::Zero(n_channels, n_samples);
  result.noise_rms_V = Eigen::VectorXd::Zero(n_channels);
  result.snr_dB = Eigen::VectorXd::Constant(n_channels, std::numeric_limits<double>::infinity());
  result.excess_kurtosis =
      Eigen::VectorXd::Constant(n_channels, std::numeric_limits<double>::quiet_NaN());
  if (params.type == NoiseType::none)
    return result;
  const auto n = static_cast<std::size_t>(n_samples);
  const std::optional<Fft> fft =
      params.type == NoiseType::realistic ? std::optional<Fft>(Fft(next_pow2(n))) : std::nullopt;
  const SpectralShapes shapes = params.type == NoiseType::realistic
                                    ? spectral_shapes(fft->size(), fs_Hz, params)
                                    : SpectralShapes{};
#pragma omp parallel for schedule(dynamic)
  for (Eigen::Index c = 0; c < n_channels; ++c) {
    const double target = target_rms[c];
    if (!(target > 0.0)) {
      result.snr_dB[c] = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    Rng r = rng.split(static_cast<std::uint64_t>(c));
    std::vector<double> y;
    std::vector<double> drift;
    if (params.type == NoiseType::gaussian) {
      y.resize(n);
      for (std::size_t i = 0; i < n; ++i)
        y[i] = r.normal();
    } else {
      Rng mains = rng.split(mains_stream);
      RealisticDraw d = draw_realistic(n, fs_Hz, params, *fft, shapes, mains, r);
      y = std::move(d.y);
      drift = std::move(d.drift);
    }
    const double s = target / rms(y.data(), n_samples);
    for (auto& v : y)
      v *= s;
    const double rms_y = rms(y.data(), n_samples);
    result.excess_kurtosis[c] = myotwin::excess_kurtosis(y.data(), n);
    result.snr_dB[c] = clean_rms.size() == 0 ? std::numeric_limits<double>::quiet_NaN()
                                             : 20.0 * std::log10(clean_rms[c] / rms_y);
    for (std::size_t i = 0; i < n; ++i)
      result.noise_V(c, static_cast<Eigen::Index>(i)) = y[i] + (drift.empty() ? 0.0 : drift[i]);
    const Eigen::VectorXd row = result.noise_V.row(c).transpose();
    result.noise_rms_V[c] = rms(row.data(), n_samples);
  }
  return result;
}

} // namespace

std::string to_string(NoiseType type) {
  switch (type) {
  case NoiseType::none:
    return "none";
  case NoiseType::gaussian:
    return "gaussian";
  case NoiseType::realistic:
    return "realistic";
  }
  return "?";
}

NoiseParams read_noise_params(ConfigReader& section) {
  NoiseParams p;
  const std::string type = section.optional<std::string>(
      "type", to_string(p.type), one_of({"none", "gaussian", "realistic"}),
      "noise model: none, white Gaussian, or realistic (coloured, heavy-tailed, powerline, drift)");
  p.type = type == "none"        ? NoiseType::none
           : type == "realistic" ? NoiseType::realistic
                                 : NoiseType::gaussian;
  const Check<double> finite(
      [](const double& v) -> std::optional<std::string> {
        if (!std::isfinite(v))
          return "must be a finite number [dB]";
        return std::nullopt;
      },
      "finite");
  p.snr_dB = section.optional<double>(
      "snr_dB", p.snr_dB, finite,
      "signal-to-noise ratio of every channel, drift excluded (realised exactly)");
  p.psd_slope =
      section.optional<double>("psd_slope", p.psd_slope, in_range(-4.0, 4.0),
                               "realistic: log-log slope of the broadband PSD, P ~ f^psd_slope");
  p.midband_Hz = section.optional<double>(
      "midband_Hz", p.midband_Hz, positive(),
      "realistic: centre frequency of the mid-band emphasis of the broadband PSD");
  p.midband_gain_dB = section.optional<double>(
      "midband_gain_dB", p.midband_gain_dB, in_range(0.0, 40.0),
      "realistic: peak gain of the mid-band emphasis over the power law (0: off)");
  p.midband_width_oct = section.optional<double>(
      "midband_width_oct", p.midband_width_oct, in_range(0.05, 5.0),
      "realistic: width (standard deviation) of the Gaussian mid-band emphasis");
  p.highpass_Hz = section.optional<double>(
      "highpass_Hz", p.highpass_Hz, non_negative(),
      "realistic: corner of the Butterworth high-pass shaping the broadband PSD (0: off)");
  p.highpass_order = static_cast<int>(
      section.optional<std::int64_t>("highpass_order", p.highpass_order, int_in_range(1, 8),
                                     "realistic: order of the Butterworth high-pass"));
  p.excess_kurtosis = section.optional<double>(
      "excess_kurtosis", p.excess_kurtosis, in_range(0.0, 50.0),
      "realistic: target excess kurtosis of broadband + powerline (0: Gaussian)");
  p.envelope_bandwidth_Hz = section.optional<double>(
      "envelope_bandwidth_Hz", p.envelope_bandwidth_Hz, positive(),
      "realistic: bandwidth of the slow envelope that makes the heavy tails");
  p.powerline_Hz = section.optional<double>(
      "powerline_Hz", p.powerline_Hz, non_negative(),
      "realistic: mains fundamental frequency (0: no powerline; 60 in North America)");
  p.powerline_amplitude_ratio = section.optional<double>(
      "powerline_amplitude_ratio", p.powerline_amplitude_ratio, non_negative(),
      "realistic: peak amplitude of the mains fundamental relative to the broadband RMS");
  p.powerline_harmonic_ratios = section.optional<std::vector<double>>(
      "powerline_harmonic_ratios", p.powerline_harmonic_ratios,
      Check<std::vector<double>>(
          [](const std::vector<double>& v) -> std::optional<std::string> {
            for (double x : v)
              if (!(x >= 0.0) || !std::isfinite(x))
                return "must be finite numbers >= 0";
            return std::nullopt;
          },
          "each >= 0"),
      "realistic: amplitude of mains harmonic k relative to the fundamental, k = 1, 2, ...");
  p.powerline_drift_Hz = section.optional<double>(
      "powerline_drift_Hz", p.powerline_drift_Hz, non_negative(),
      "realistic: standard deviation of the slow random walk of the mains frequency");
  p.powerline_drift_tau_s =
      section.optional<double>("powerline_drift_tau_s", p.powerline_drift_tau_s, positive(),
                               "realistic: time constant of the mains frequency walk");
  p.powerline_am_depth = section.optional<double>(
      "powerline_am_depth", p.powerline_am_depth, in_range(0.0, 1.0),
      "realistic: depth of the mains amplitude modulation (SD of the relative amplitude)");
  p.powerline_am_tau_s =
      section.optional<double>("powerline_am_tau_s", p.powerline_am_tau_s, positive(),
                               "realistic: time constant of the mains amplitude modulation");
  p.drift_rms_V =
      1e-6 *
      section.optional<double>(
          "drift_rms_uV", 1e6 * p.drift_rms_V, non_negative(),
          "realistic: RMS of the baseline drift, an absolute level outside the SNR (0: off)");
  p.drift_alpha =
      section.optional<double>("drift_alpha", p.drift_alpha, in_range(0.0, 4.0),
                               "realistic: exponent of the drift PSD, P ~ f^-drift_alpha");
  p.drift_low_Hz = section.optional<double>(
      "drift_low_Hz", p.drift_low_Hz, non_negative(),
      "realistic: lower edge of the drift band (0: the lowest frequency of the record)");
  p.drift_high_Hz =
      section.optional<double>("drift_high_Hz", p.drift_high_Hz, positive(),
                               "realistic: upper edge of the drift band; > drift_low_Hz");
  if (!(p.drift_high_Hz > p.drift_low_Hz))
    section.fail("drift_high_Hz", "must be > drift_low_Hz = " + format_number(p.drift_low_Hz));
  return p;
}

void validate(const NoiseParams& params) {
  // The reader's declarations are the one statement of every range.
  ConfigReader reader(to_json(params), "noise");
  (void)read_noise_params(reader);
  reader.finish();
}

nlohmann::json to_json(const NoiseParams& p) {
  nlohmann::json j;
  j["type"] = to_string(p.type);
  j["snr_dB"] = p.snr_dB;
  j["psd_slope"] = p.psd_slope;
  j["midband_Hz"] = p.midband_Hz;
  j["midband_gain_dB"] = p.midband_gain_dB;
  j["midband_width_oct"] = p.midband_width_oct;
  j["highpass_Hz"] = p.highpass_Hz;
  j["highpass_order"] = p.highpass_order;
  j["excess_kurtosis"] = p.excess_kurtosis;
  j["envelope_bandwidth_Hz"] = p.envelope_bandwidth_Hz;
  j["powerline_Hz"] = p.powerline_Hz;
  j["powerline_amplitude_ratio"] = p.powerline_amplitude_ratio;
  j["powerline_harmonic_ratios"] = p.powerline_harmonic_ratios;
  j["powerline_drift_Hz"] = p.powerline_drift_Hz;
  j["powerline_drift_tau_s"] = p.powerline_drift_tau_s;
  j["powerline_am_depth"] = p.powerline_am_depth;
  j["powerline_am_tau_s"] = p.powerline_am_tau_s;
  j["drift_rms_uV"] = 1e6 * p.drift_rms_V;
  j["drift_alpha"] = p.drift_alpha;
  j["drift_low_Hz"] = p.drift_low_Hz;
  j["drift_high_Hz"] = p.drift_high_Hz;
  return j;
}

NoiseResult make_noise(const Eigen::Ref<const Eigen::MatrixXd>& clean_V, double fs_Hz,
                       const NoiseParams& params, const Rng& rng) {
  check_signal_args(clean_V.rows(), clean_V.cols(), fs_Hz, params);
  if (!clean_V.allFinite())
    throw BadInput("noise: the clean signal has a non-finite value");
  const double ratio = std::pow(10.0, params.snr_dB / 20.0);
  Eigen::VectorXd rms_clean(clean_V.rows());
  for (Eigen::Index c = 0; c < clean_V.rows(); ++c) {
    const Eigen::VectorXd row = clean_V.row(c).transpose();
    rms_clean[c] = rms(row.data(), row.size());
  }
  const Eigen::VectorXd target = rms_clean / ratio;
  return noise_rows(clean_V.rows(), clean_V.cols(), fs_Hz, params, rng, target, rms_clean);
}

NoiseResult generate_noise(Eigen::Index n_channels, Eigen::Index n_samples, double fs_Hz,
                           double rms_V, const NoiseParams& params, const Rng& rng) {
  check_signal_args(n_channels, n_samples, fs_Hz, params);
  if (!(rms_V > 0.0) || !std::isfinite(rms_V))
    throw BadInput("noise: rms_V = " + format_number(rms_V) + ": must be a finite number > 0");
  return noise_rows(n_channels, n_samples, fs_Hz, params, rng,
                    Eigen::VectorXd::Constant(n_channels, rms_V), Eigen::VectorXd());
}

double excess_kurtosis(const Eigen::Ref<const Eigen::VectorXd>& x) {
  const Eigen::VectorXd v = x;
  return myotwin::excess_kurtosis(v.data(), static_cast<std::size_t>(v.size()));
}

// ---------------------------------------------------------------------------------------------
// Calibration.

namespace {

/// x - (centred moving average of x over w samples), on the interior where the average is
/// complete; w odd.
std::vector<double> minus_moving_average(const std::vector<double>& x, std::size_t w,
                                         std::vector<double>* average = nullptr) {
  const std::size_t n = x.size();
  const std::size_t h = w / 2;
  std::vector<double> prefix(n + 1, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    prefix[i + 1] = prefix[i] + x[i];
  std::vector<double> out;
  if (average != nullptr)
    average->clear();
  for (std::size_t i = h; i + h < n; ++i) {
    const double m = (prefix[i + h + 1] - prefix[i - h]) / static_cast<double>(w);
    out.push_back(x[i] - m);
    if (average != nullptr)
      average->push_back(m);
  }
  return out;
}

double variance(const std::vector<double>& x) {
  double mean = 0.0;
  for (double v : x)
    mean += v;
  mean /= static_cast<double>(x.size());
  double s = 0.0;
  for (double v : x)
    s += (v - mean) * (v - mean);
  return s / static_cast<double>(x.size());
}

/// One spectral line: band power above the floor, centroid, width and line-to-floor ratio.
struct Line {
  double power = 0.0; ///< [normalised units]
  double centroid_Hz = 0.0;
  double spread_Hz2 = 0.0; ///< second central moment
  double ratio = 0.0;      ///< line power / floor power in the band
  double half_width_Hz = 0.0;
  double n_bins = 0.0;       ///< Welch bins in the band
  double signed_ratio = 0.0; ///< (band power - floor) / floor power in the band, unclamped
};

Line measure_line(const Eigen::VectorXd& psd, double df, double f0, double half_width) {
  Line line;
  line.half_width_Hz = half_width;
  std::vector<double> floor_values;
  const auto n_bins = psd.size();
  for (Eigen::Index k = 1; k < n_bins; ++k) {
    const double d = std::abs(df * static_cast<double>(k) - f0);
    if (d > half_width + 1.0 && d <= half_width + 6.0)
      floor_values.push_back(psd[k]);
  }
  const double floor = median(floor_values);
  if (!std::isfinite(floor))
    return line;
  double p = 0.0;
  double pf = 0.0;
  double n_in = 0.0;
  for (Eigen::Index k = 1; k < n_bins; ++k) {
    const double f = df * static_cast<double>(k);
    if (std::abs(f - f0) <= half_width) {
      p += (psd[k] - floor) * df;
      pf += (psd[k] - floor) * df * f;
      n_in += 1.0;
    }
  }
  line.power = std::max(0.0, p);
  line.n_bins = n_in;
  line.signed_ratio = p / std::max(1e-300, floor * df * n_in);
  line.ratio = line.power / std::max(1e-300, floor * df * n_in);
  line.centroid_Hz = p > 0.0 ? pf / p : f0;
  double m2 = 0.0;
  for (Eigen::Index k = 1; k < n_bins; ++k) {
    const double f = df * static_cast<double>(k);
    if (std::abs(f - f0) <= half_width)
      m2 += (psd[k] - floor) * df * (f - line.centroid_Hz) * (f - line.centroid_Hz);
  }
  line.spread_Hz2 = p > 0.0 ? m2 / p : 0.0;
  return line;
}

double line_half_width(int k) {
  return 1.5 + 1.0 * k;
}

/// The broadband fit: log P = c + slope ln f + ln bump + ln highpass.
struct FitBins {
  std::vector<double> f, y, w;
};

struct FitResult {
  double c = 0.0, slope = 0.0, sse = 0.0;
};

struct Shape {
  double log_fc, width_oct, gain_dB, log_hp;
};

FitResult fit_linear(const FitBins& b, const Shape& s, int hp_order) {
  const double g = std::pow(10.0, s.gain_dB / 10.0) - 1.0;
  const double fc = std::exp(s.log_fc);
  const double hp = std::exp(s.log_hp);
  double sw = 0, sx = 0, sxx = 0, sr = 0, sxr = 0, srr = 0;
  for (std::size_t i = 0; i < b.f.size(); ++i) {
    const double x = std::log(b.f[i]);
    const double z = std::log2(b.f[i] / fc) / s.width_oct;
    const double q = std::pow(b.f[i] / hp, 2.0 * hp_order);
    const double r = b.y[i] - std::log1p(g * std::exp(-0.5 * z * z)) - std::log(q / (1.0 + q));
    const double w = b.w[i];
    sw += w;
    sx += w * x;
    sxx += w * x * x;
    sr += w * r;
    sxr += w * x * r;
    srr += w * r * r;
  }
  FitResult out;
  const double det = sw * sxx - sx * sx;
  out.slope = (sw * sxr - sx * sr) / det;
  out.c = (sr - out.slope * sx) / sw;
  out.sse = srr - out.c * sr - out.slope * sxr;
  return out;
}

/// The sampling of a calibration: #samples n and #channels, the Welch segment [samples] and
/// its bin width df [Hz], the band of the broadband fit [Hz].
struct CalibrationGrid {
  std::size_t n = 0;
  Eigen::Index n_ch = 0;
  std::size_t seg = 1;
  double df = 0.0;
  double fit_low = 0.0;
  double fit_high = 0.0;
};

/// Step 1: checks the recording and chooses the Welch segment (a power of two, the recording
/// >= 2.5 segments) and the fit band. \throws BadInput for a bad rate, an empty, non-finite or
/// too short recording, or a fit band of an octave or less.
CalibrationGrid calibration_grid(const Eigen::Ref<const Eigen::MatrixXd>& rest_V, double fs_Hz,
                                 const NoiseCalibrationOptions& options) {
  if (!(fs_Hz > 0.0) || !std::isfinite(fs_Hz))
    throw BadInput("noise calibration: fs_Hz = " + format_number(fs_Hz) +
                   ": must be a finite number > 0");
  if (rest_V.rows() < 1 || rest_V.cols() < 2)
    throw BadInput("noise calibration: recording of " + std::to_string(rest_V.rows()) + " x " +
                   std::to_string(rest_V.cols()) + " samples: empty");
  if (!rest_V.allFinite())
    throw BadInput("noise calibration: the recording has a non-finite value");
  CalibrationGrid grid;
  const auto n = static_cast<std::size_t>(rest_V.cols());
  grid.n = n;
  grid.n_ch = rest_V.rows();
  std::size_t seg = 1;
  while (static_cast<double>(seg * 2) <= fs_Hz * options.segment_s)
    seg *= 2;
  while (static_cast<double>(n) < 2.5 * static_cast<double>(seg) && seg > 256)
    seg /= 2;
  if (static_cast<double>(n) < 2.5 * static_cast<double>(seg))
    throw BadInput("noise calibration: recording of " + std::to_string(n) + " samples (" +
                   format_number(static_cast<double>(n) / fs_Hz) +
                   " s): too short; need >= 4 Welch segments of " + std::to_string(seg) +
                   " samples");
  grid.seg = seg;
  grid.df = fs_Hz / static_cast<double>(seg);
  grid.fit_high = options.fit_high_Hz > 0.0 ? options.fit_high_Hz : 0.45 * fs_Hz;
  grid.fit_low = std::max(options.fit_low_Hz, 3.0 * grid.df);
  if (!(grid.fit_high > 2.0 * grid.fit_low))
    throw BadInput("noise calibration: fit band [" + format_number(grid.fit_low) + ", " +
                   format_number(grid.fit_high) + "] Hz: must span more than an octave");
  return grid;
}

/// The width of the 0.1 s moving average that removes the drift [samples, odd]; its nulls at
/// multiples of 10 Hz pass 50 and 60 Hz lines unchanged. \throws BadInput below 4 widths.
std::size_t moving_average_width(std::size_t n, double fs_Hz) {
  auto w_ma = static_cast<std::size_t>(std::lround(0.1 * fs_Hz));
  if (w_ma % 2 == 0)
    ++w_ma;
  if (n < 4 * w_ma)
    throw BadInput("noise calibration: recording of " +
                   format_number(static_cast<double>(n) / fs_Hz) + " s: too short (need >= 0.4 s)");
  return w_ma;
}

/// The parameters a calibration starts from: realistic, the options' SNR, high-pass order and
/// drift band, every other field at its default.
NoiseParams calibration_start(const NoiseCalibrationOptions& options) {
  NoiseParams out;
  out.type = NoiseType::realistic;
  out.snr_dB = options.snr_dB;
  out.highpass_order = options.highpass_order;
  out.drift_low_Hz = 0.0;
  out.drift_high_Hz = options.drift_high_Hz;
  return out;
}

/// Per channel: the in-band variance [V^2] and excess kurtosis, the variance of the twice
/// low-passed drift [V^2], the RMS of the rest signal with its mean removed [V].
struct ChannelStats {
  std::vector<double> inband_var;
  std::vector<double> kurt;
  std::vector<double> lowpass_var;
  std::vector<double> rest_rms;
};

/// Step 2: per channel, the in-band signal (drift removed by the moving average of w_ma
/// samples), its variance and kurtosis, and the low-passed drift (the average applied twice).
ChannelStats channel_stats(const Eigen::Ref<const Eigen::MatrixXd>& rest_V, std::size_t w_ma) {
  const auto n = static_cast<std::size_t>(rest_V.cols());
  const auto n_ch = rest_V.rows();
  ChannelStats st;
  st.inband_var.resize(static_cast<std::size_t>(n_ch));
  st.kurt.resize(static_cast<std::size_t>(n_ch));
  st.lowpass_var.resize(static_cast<std::size_t>(n_ch));
  st.rest_rms.resize(static_cast<std::size_t>(n_ch));
  for (Eigen::Index c = 0; c < n_ch; ++c) {
    std::vector<double> x(n);
    double mean = 0.0;
    for (std::size_t i = 0; i < n; ++i)
      mean += rest_V(c, static_cast<Eigen::Index>(i));
    mean /= static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i)
      x[i] = rest_V(c, static_cast<Eigen::Index>(i)) - mean;
    st.rest_rms[static_cast<std::size_t>(c)] = rms(x.data(), static_cast<Eigen::Index>(n));
    std::vector<double> avg;
    const std::vector<double> inband = minus_moving_average(x, w_ma, &avg);
    st.inband_var[static_cast<std::size_t>(c)] = variance(inband);
    st.kurt[static_cast<std::size_t>(c)] = myotwin::excess_kurtosis(inband.data(), inband.size());
    std::vector<double> avg2;
    minus_moving_average(avg, w_ma, &avg2);
    st.lowpass_var[static_cast<std::size_t>(c)] = variance(avg2);
  }
  return st;
}

/// Step 3: the Welch PSDs of the channels (#channels x bins [V^2/Hz]), each divided by its
/// in-band variance, averaged over channels [1/Hz].
Eigen::VectorXd mean_normalised_psd(const Eigen::MatrixXd& psd_ch,
                                    const std::vector<double>& inband_var) {
  const Eigen::Index n_ch = psd_ch.rows();
  Eigen::VectorXd psd = Eigen::VectorXd::Zero(psd_ch.cols());
  for (Eigen::Index c = 0; c < n_ch; ++c)
    psd += psd_ch.row(c).transpose() / inband_var[static_cast<std::size_t>(c)];
  psd /= static_cast<double>(n_ch);
  return psd;
}

/// The mains fundamental [Hz]: the stronger of 50 and 60 Hz if its line-to-floor ratio is at
/// least 0.5, else 0; the ratios go to `report_pl`.
double mains_fundamental(const Eigen::VectorXd& psd, double df, double fs_Hz,
                         nlohmann::json& report_pl) {
  double f0 = 0.0;
  double best = 0.0;
  for (double cand : {50.0, 60.0}) {
    if (cand + line_half_width(1) + 6.0 >= 0.5 * fs_Hz)
      continue;
    const Line l = measure_line(psd, df, cand, line_half_width(1));
    report_pl["line_to_floor_" + std::to_string(static_cast<int>(cand)) + "Hz"] = l.ratio;
    if (l.ratio > best) {
      best = l.ratio;
      f0 = cand;
    }
  }
  if (best < 0.5)
    f0 = 0.0;
  return f0;
}

/// The lines of the harmonics k f1, k = 1..n_h, up to the last whose band fits below Nyquist;
/// `line_total` gets the sum of their powers [normalised units].
std::vector<Line> harmonic_lines(const Eigen::VectorXd& psd, double df, double fs_Hz, double f1,
                                 std::size_t n_h, double& line_total) {
  std::vector<Line> lines;
  for (std::size_t k = 1; k <= n_h; ++k) {
    const double fk = static_cast<double>(k) * f1;
    const double hw = line_half_width(static_cast<int>(k));
    if (fk + hw + 6.0 >= 0.5 * fs_Hz)
      break;
    lines.push_back(measure_line(psd, df, fk, hw));
    line_total += lines.back().power;
  }
  return lines;
}

/// The RMS of the null distribution of the line-to-floor ratio, measured half-way between the
/// harmonics (1.5 f1, 2.5 f1, ...): the broadband's own fluctuations (heavy tails, correlated
/// Welch bins) exceed the chi-square estimate.
double null_ratio_rms(const Eigen::VectorXd& psd, double df, double fs_Hz, double f1,
                      std::size_t n_lines) {
  double null_sq = 0.0;
  double n_null = 0.0;
  for (std::size_t k = 1; k <= n_lines; ++k) {
    const double fk = (static_cast<double>(k) + 0.5) * f1;
    const double hw = line_half_width(static_cast<int>(k));
    if (fk + hw + 6.0 >= 0.5 * fs_Hz)
      break;
    const double r0 = measure_line(psd, df, fk, hw).signed_ratio;
    null_sq += r0 * r0;
    n_null += 1.0;
  }
  return n_null > 0.0 ? std::sqrt(null_sq / n_null) : 0.0;
}

/// The amplitude ratio of each harmonic to the fundamental (0 when not detected: a harmonic
/// counts when its line exceeds 3 standard deviations of the floor's band power, Welch bins x
/// segments x channels averaged, and 3 null RMS); one report entry per harmonic goes to `jl`.
/// Returns the index of the clearest detected line (ratio weighted by k^2).
std::size_t harmonic_ratios(const std::vector<Line>& lines, double null_rms, double n_seg,
                            Eigen::Index n_ch, std::vector<double>& ratios, nlohmann::json& jl) {
  std::size_t best_k = 0;
  for (std::size_t k = 0; k < lines.size(); ++k) {
    const double threshold = std::max(
        3.0 * null_rms,
        3.0 / std::sqrt(std::max(1.0, lines[k].n_bins * n_seg * static_cast<double>(n_ch))));
    const bool detected = k == 0 || lines[k].ratio > threshold;
    ratios.push_back(detected ? std::sqrt(lines[k].power / lines[0].power) : 0.0);
    jl.push_back({{"harmonic", k + 1},
                  {"centroid_Hz", lines[k].centroid_Hz},
                  {"power_rel", lines[k].power},
                  {"line_to_floor", lines[k].ratio},
                  {"detection_threshold", threshold},
                  {"detected", detected}});
    if (detected && lines[k].ratio * static_cast<double>((k + 1) * (k + 1)) >
                        lines[best_k].ratio * static_cast<double>((best_k + 1) * (best_k + 1)))
      best_k = k;
  }
  return best_k;
}

/// Step 4: the powerline of `out` (fundamental by centroid [Hz], harmonic ratios, amplitude
/// ratio to the broadband, frequency walk [Hz] from the clearest line's width) from the mean
/// normalised PSD; powerline_Hz = 0 when no mains line stands out. Returns the nominal mains
/// frequency (50, 60 or 0 [Hz]); what was measured goes to `report_pl`.
double calibrate_powerline(const Eigen::VectorXd& psd, const CalibrationGrid& grid, double fs_Hz,
                           NoiseParams& out, nlohmann::json& report_pl) {
  const double df = grid.df;
  const double f0 = mains_fundamental(psd, df, fs_Hz, report_pl);
  if (!(f0 > 0.0)) {
    out.powerline_Hz = 0.0;
    report_pl["detected"] = f0 > 0.0;
    return f0;
  }
  const Line first = measure_line(psd, df, f0, line_half_width(1));
  const double f1 = first.centroid_Hz;
  const std::size_t n_h = NoiseParams{}.powerline_harmonic_ratios.size();
  double line_total = 0.0;
  const std::vector<Line> lines = harmonic_lines(psd, df, fs_Hz, f1, n_h, line_total);
  out.powerline_Hz = f1;
  out.powerline_harmonic_ratios.clear();
  nlohmann::json jl = nlohmann::json::array();
  const double n_seg =
      std::floor(static_cast<double>(grid.n - grid.seg) / static_cast<double>(grid.seg / 2)) + 1.0;
  const double null_rms = null_ratio_rms(psd, df, fs_Hz, f1, lines.size());
  report_pl["null_ratio_rms"] = null_rms;
  const std::size_t best_k =
      harmonic_ratios(lines, null_rms, n_seg, grid.n_ch, out.powerline_harmonic_ratios, jl);
  // Frequency walk from the width of the clearest line: spread^2 = (k sigma)^2 + the Hann
  // window's own second moment 1 / (3 T^2).
  // Only a line well above its floor (ratio >= 5) has a usable width; else the default stays.
  const double t_seg = static_cast<double>(grid.seg) / fs_Hz;
  const double excess = lines[best_k].spread_Hz2 - 1.0 / (3.0 * t_seg * t_seg);
  const bool width_usable = lines[best_k].ratio >= 5.0;
  if (width_usable)
    out.powerline_drift_Hz = std::sqrt(std::max(0.0, excess)) / static_cast<double>(best_k + 1);
  report_pl["frequency_drift_estimated"] = width_usable;
  const double bb = std::max(1e-12, 1.0 - line_total);
  const double m = out.powerline_am_depth;
  out.powerline_amplitude_ratio = std::sqrt(2.0 * lines[0].power / (1.0 + m * m) / bb);
  report_pl["harmonics"] = jl;
  report_pl["drift_from_harmonic"] = best_k + 1;
  report_pl["detected"] = f0 > 0.0;
  return f0;
}

/// The fit bins: log-spaced (24 per octave) over [fit_low, fit_high) [Hz] without the bands of
/// the powerline harmonics of powerline_Hz (when f0 > 0); per bin the mean frequency [Hz], the
/// log of the mean PSD and a weight (#Welch bins, at most 64).
FitBins broadband_fit_bins(const Eigen::VectorXd& psd, double df, double fit_low, double fit_high,
                           double f0, double powerline_Hz) {
  FitBins bins;
  const int per_oct = 24;
  const double step = std::pow(2.0, 1.0 / per_oct);
  for (double lo = fit_low; lo < fit_high; lo *= step) {
    const double hi = std::min(lo * step, fit_high);
    double s = 0.0, sf = 0.0, cnt = 0.0;
    for (Eigen::Index k = 1; k < psd.size(); ++k) {
      const double f = df * static_cast<double>(k);
      if (f < lo || f >= hi)
        continue;
      bool in_line = false;
      if (f0 > 0.0)
        for (int h = 1; h <= 40 && !in_line; ++h)
          in_line = std::abs(f - h * powerline_Hz) <= line_half_width(std::min(h, 5)) + 1.0;
      if (in_line)
        continue;
      s += psd[k];
      sf += f;
      cnt += 1.0;
    }
    if (cnt > 0.0 && s > 0.0) {
      bins.f.push_back(sf / cnt);
      bins.y.push_back(std::log(s / cnt));
      bins.w.push_back(std::min(cnt, 64.0));
    }
  }
  return bins;
}

/// The shape of least residual on a grid of 32 centres x 7 widths x 11 gains x 12 high-pass
/// corners, improving on `best` (residual `best_sse`) in place.
void grid_search_shape(const FitBins& bins, int order, double fit_low, double fit_high, Shape& best,
                       double& best_sse) {
  const double lfc_lo = std::log(2.0 * fit_low), lfc_hi = std::log(fit_high);
  for (int i = 0; i < 32; ++i) {
    const double lfc = lfc_lo + (lfc_hi - lfc_lo) * i / 31.0;
    for (double w : {0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0})
      for (int gi = 0; gi <= 10; ++gi)
        for (int hi = 0; hi < 12; ++hi) {
          const Shape s{lfc, w, 2.0 * gi,
                        std::log(0.5) + hi * (std::log(200.0) - std::log(0.5)) / 11.0};
          const double sse = fit_linear(bins, s, order).sse;
          if (sse < best_sse) {
            best_sse = sse;
            best = s;
          }
        }
  }
}

/// Pattern search from `best` (residual `best_sse`) within the shape's bounds, in place: steps
/// along each parameter, halved when none improves, until 400 rounds or a step of 1e-4.
void pattern_search_shape(const FitBins& bins, int order, double fit_low, double fit_high,
                          double fs_Hz, Shape& best, double& best_sse) {
  std::array<double, 4> step = {0.1, 0.1, 1.0, 0.2};
  auto clamp = [&](Shape s) {
    s.log_fc = std::clamp(s.log_fc, std::log(fit_low), std::log(0.5 * fs_Hz));
    s.width_oct = std::clamp(s.width_oct, 0.05, 5.0);
    s.gain_dB = std::clamp(s.gain_dB, 0.0, 40.0);
    s.log_hp = std::clamp(s.log_hp, std::log(0.1), std::log(0.5 * fit_high));
    return s;
  };
  for (int it = 0; it < 400 && step[0] > 1e-4; ++it) {
    bool moved = false;
    for (int d = 0; d < 4; ++d)
      for (double sign : {1.0, -1.0}) {
        Shape s = best;
        double* v = d == 0 ? &s.log_fc : d == 1 ? &s.width_oct : d == 2 ? &s.gain_dB : &s.log_hp;
        *v += sign * step[static_cast<std::size_t>(d)];
        s = clamp(s);
        const double sse = fit_linear(bins, s, order).sse;
        if (sse < best_sse) {
          best_sse = sse;
          best = s;
          moved = true;
        }
      }
    if (!moved)
      for (auto& st : step)
        st /= 2.0;
  }
}

/// Step 5: the broadband PSD model of `out` (slope, mid-band centre [Hz], width [oct] and gain
/// [dB], high-pass corner [Hz]) fitted to the fit bins without the line bands; its report entry
/// goes to `report`. \throws BadInput with fewer than 8 usable bins.
void calibrate_broadband(const Eigen::VectorXd& psd, const CalibrationGrid& grid, double fs_Hz,
                         int order, double f0, NoiseParams& out, nlohmann::json& report) {
  const double fit_low = grid.fit_low;
  const double fit_high = grid.fit_high;
  const FitBins bins = broadband_fit_bins(psd, grid.df, fit_low, fit_high, f0, out.powerline_Hz);
  if (bins.f.size() < 8)
    throw BadInput("noise calibration: only " + std::to_string(bins.f.size()) +
                   " usable frequency bins in [" + format_number(fit_low) + ", " +
                   format_number(fit_high) + "] Hz");
  Shape best{std::log(1000.0), 1.0, 0.0, std::log(1.0)};
  double best_sse = fit_linear(bins, best, order).sse;
  grid_search_shape(bins, order, fit_low, fit_high, best, best_sse);
  pattern_search_shape(bins, order, fit_low, fit_high, fs_Hz, best, best_sse);
  const FitResult fit = fit_linear(bins, best, order);
  out.psd_slope = std::clamp(fit.slope, -4.0, 4.0);
  out.midband_Hz = std::exp(best.log_fc);
  out.midband_width_oct = best.width_oct;
  out.midband_gain_dB = best.gain_dB;
  out.highpass_Hz = std::exp(best.log_hp) < 0.5 * fit_low ? 0.0 : std::exp(best.log_hp);
  double wsum = 0.0;
  for (double w : bins.w)
    wsum += w;
  report = {{"band_Hz", {fit_low, fit_high}},
            {"n_bins", bins.f.size()},
            {"rms_log_residual", std::sqrt(std::max(0.0, fit.sse) / wsum)},
            {"psd_slope", fit.slope},
            {"midband_Hz", out.midband_Hz},
            {"midband_gain_dB", out.midband_gain_dB},
            {"midband_width_oct", out.midband_width_oct},
            {"highpass_Hz", out.highpass_Hz}};
}

double sinc(double x) {
  return x == 0.0 ? 1.0 : std::sin(std::numbers::pi * x) / (std::numbers::pi * x);
}

/// The Hann-windowed periodogram of each whole channel (mean removed, zero-padded to n2, a
/// power of two), summed over channels: n2 / 2 + 1 bins at k fs / n2 [V^2, unnormalised].
std::vector<double> summed_periodogram(const Eigen::Ref<const Eigen::MatrixXd>& rest_V,
                                       const Fft& fft) {
  const auto n = static_cast<std::size_t>(rest_V.cols());
  const std::size_t n2 = fft.size();
  std::vector<double> per(n2 / 2 + 1, 0.0);
  for (Eigen::Index c = 0; c < rest_V.rows(); ++c) {
    std::vector<Complex> buf(n2, Complex(0.0, 0.0));
    double mean = 0.0;
    for (std::size_t i = 0; i < n; ++i)
      mean += rest_V(c, static_cast<Eigen::Index>(i));
    mean /= static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double w =
          0.5 * (1.0 - std::cos(two_pi * static_cast<double>(i) / static_cast<double>(n)));
      buf[i] = Complex((rest_V(c, static_cast<Eigen::Index>(i)) - mean) * w, 0.0);
    }
    fft.forward(buf);
    for (std::size_t k = 0; k <= n2 / 2; ++k)
      per[k] += std::norm(buf[k]);
  }
  return per;
}

/// The drift exponent alpha: minus the log-log slope of the periodogram `per` (bin width df2
/// [Hz]) over [2 / t_s, drift_high_Hz]; `fallback` with fewer than 3 bins; clamped to [0, 4].
double drift_exponent(const std::vector<double>& per, double df2, double t_s, double drift_high_Hz,
                      double fallback) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0, cnt = 0;
  for (std::size_t k = 1; k < per.size(); ++k) {
    const double f = df2 * static_cast<double>(k);
    if (f < 2.0 / t_s || f > drift_high_Hz || per[k] <= 0.0)
      continue;
    const double x = std::log(f), y = std::log(per[k]);
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
    cnt += 1.0;
  }
  double alpha = fallback;
  if (cnt >= 3.0)
    alpha = -(cnt * sxy - sx * sy) / (cnt * sxx - sx * sx);
  return std::clamp(alpha, 0.0, 4.0);
}

/// The power gain of the twice-applied moving average of w_s [s] over the drift band (bins of
/// df2 [Hz] up to drift_high_Hz) for a drift PSD ~ f^-alpha; 1 for an empty band.
double moving_average_gain(double alpha, double df2, std::size_t n_bins, double drift_high_Hz,
                           double w_s) {
  double num = 0.0, den = 0.0;
  for (std::size_t k = 1; k < n_bins; ++k) {
    const double f = df2 * static_cast<double>(k);
    if (f > drift_high_Hz)
      break;
    const double s = std::pow(f, -alpha);
    num += s * std::pow(sinc(f * w_s), 4);
    den += s;
  }
  return den > 0.0 ? num / den : 1.0;
}

/// Step 7: the drift of `out` (RMS [V], exponent alpha): per channel, the variance of the twice
/// low-passed signal minus what the broadband leaks through (the sinc^4 response summed over the
/// Welch PSD `psd_ch` above 2 drift_high_Hz), divided by the average's gain; the slope from the
/// Hann-windowed periodogram of the whole recording. Its report entry goes to `report`.
void calibrate_drift(const Eigen::Ref<const Eigen::MatrixXd>& rest_V, const Eigen::MatrixXd& psd_ch,
                     const std::vector<double>& lowpass_var, double df, double fs_Hz,
                     std::size_t w_ma, double drift_high_Hz, NoiseParams& out,
                     nlohmann::json& report) {
  const auto n = static_cast<std::size_t>(rest_V.cols());
  const Eigen::Index n_ch = rest_V.rows();
  const double w_s = static_cast<double>(w_ma) / fs_Hz;
  // Drift slope: average periodogram over channels.
  const std::size_t n2 = next_pow2(n);
  const Fft fft(n2);
  const double df2 = fs_Hz / static_cast<double>(n2);
  const std::vector<double> per = summed_periodogram(rest_V, fft);
  const double t = static_cast<double>(n) / fs_Hz;
  const double alpha = drift_exponent(per, df2, t, drift_high_Hz, out.drift_alpha);
  // Response of the twice-applied moving average over the drift band, for that slope.
  const double gain = moving_average_gain(alpha, df2, per.size(), drift_high_Hz, w_s);
  nlohmann::json jd_ch = nlohmann::json::array();
  std::vector<double> dr;
  bool any = false;
  for (Eigen::Index c = 0; c < n_ch; ++c) {
    double leak = 0.0;
    for (Eigen::Index k = 1; k < psd_ch.cols(); ++k) {
      const double f = df * static_cast<double>(k);
      if (f >= 2.0 * drift_high_Hz)
        leak += psd_ch(c, k) * df * std::pow(sinc(f * w_s), 4);
    }
    const double v = lowpass_var[static_cast<std::size_t>(c)];
    const double d = v > 3.0 * leak ? (v - leak) / gain : 0.0;
    any = any || d > 0.0;
    dr.push_back(std::sqrt(d));
    jd_ch.push_back(1e6 * std::sqrt(d));
  }
  out.drift_rms_V = any ? median(dr) : 0.0;
  out.drift_alpha = any ? alpha : NoiseParams{}.drift_alpha;
  report = {{"rms_uV_per_channel", jd_ch},
            {"alpha", alpha},
            {"band_Hz", {2.0 / t, drift_high_Hz}},
            {"detected", any}};
}

/// Step 8: the per-channel values and the sampling into the report.
void report_channels(const ChannelStats& st, const CalibrationGrid& grid, double fs_Hz,
                     nlohmann::json& report) {
  nlohmann::json per_channel = nlohmann::json::array();
  for (Eigen::Index c = 0; c < grid.n_ch; ++c) {
    const auto i = static_cast<std::size_t>(c);
    per_channel.push_back({{"rest_rms_uV", 1e6 * st.rest_rms[i]},
                           {"inband_rms_uV", 1e6 * std::sqrt(st.inband_var[i])},
                           {"excess_kurtosis", st.kurt[i]}});
  }
  report["fs_Hz"] = fs_Hz;
  report["n_channels"] = grid.n_ch;
  report["n_samples"] = grid.n;
  report["welch_segment_samples"] = grid.seg;
  report["channels"] = per_channel;
}

} // namespace

NoiseCalibration calibrate_noise(const Eigen::Ref<const Eigen::MatrixXd>& rest_V, double fs_Hz,
                                 const NoiseCalibrationOptions& options) {
  // 1. Checks and the Welch segment.
  const CalibrationGrid grid = calibration_grid(rest_V, fs_Hz, options);

  // 2. Per channel: in-band variance and kurtosis, low-passed drift.
  const std::size_t w_ma = moving_average_width(grid.n, fs_Hz);
  NoiseCalibration cal;
  NoiseParams& out = cal.params;
  out = calibration_start(options);
  const ChannelStats st = channel_stats(rest_V, w_ma);

  // 3. Welch PSD of each channel, normalised by its in-band variance, averaged over channels.
  const Eigen::MatrixXd psd_ch =
      signal::welch_psd(rest_V, fs_Hz, static_cast<Eigen::Index>(grid.seg));
  const Eigen::VectorXd psd = mean_normalised_psd(psd_ch, st.inband_var);

  // 4. Powerline: the stronger of 50 and 60 Hz, if its line stands out of the floor.
  nlohmann::json report_pl;
  const double f0 = calibrate_powerline(psd, grid, fs_Hz, out, report_pl);

  // 5. Broadband fit on log-spaced bins (24 per octave) without the line bands.
  nlohmann::json report_bb;
  calibrate_broadband(psd, grid, fs_Hz, options.highpass_order, f0, out, report_bb);

  // 6. Kurtosis: the median over channels of the in-band kurtosis.
  out.excess_kurtosis = std::clamp(median(st.kurt), 0.0, 50.0);

  // 7. Drift: RMS and slope.
  calibrate_drift(rest_V, psd_ch, st.lowpass_var, grid.df, fs_Hz, w_ma, options.drift_high_Hz, out,
                  cal.report["drift"]);

  // 8. The report.
  report_channels(st, grid, fs_Hz, cal.report);
  cal.report["broadband_fit"] = report_bb;
  cal.report["powerline"] = report_pl;
  cal.report["not_estimated"] = {"snr_dB", "envelope_bandwidth_Hz", "powerline_am_depth",
                                 "powerline_am_tau_s", "powerline_drift_tau_s"};
  return cal;
}

} // namespace myotwin::forward
