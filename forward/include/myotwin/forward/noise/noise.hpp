#pragma once
/// \file noise.hpp
/// Noise models for simulated EMG (surface or intramuscular) and their calibration from a real
/// recording's rest segment.
///
/// Types. "none" adds nothing; "gaussian" adds white Gaussian noise; "realistic" adds
///
///     n(t) = s * (b(t) + p(t)) + d(t)
///
/// where b is the broadband noise (unit RMS), p the powerline interference, d the baseline
/// drift, and s the scale that sets the SNR.
///
/// Broadband b. A Gaussian process with the power spectral density
///
///     P(f) ~ f^psd_slope * (1 + g exp(-0.5 (log2(f / midband_Hz) / midband_width_oct)^2))
///            * (f / highpass_Hz)^(2 m) / (1 + (f / highpass_Hz)^(2 m)),
///
/// g = 10^(midband_gain_dB / 10) - 1, m = highpass_order (the magnitude of an analog
/// Butterworth high-pass), drawn in the frequency domain (complex Gaussian coefficients times
/// sqrt(P), one inverse FFT on the next power of two >= #samples, truncated). Heavy tails come
/// from a Gaussian scale mixture: b = e(t) g(t) with the envelope e = exp(a u(t)), u a
/// Gaussian process low-passed at envelope_bandwidth_Hz (two one-pole stages). The envelope is
/// slow against the correlation time of g, so the mixture keeps the spectrum (it convolves P
/// with the envelope's spectrum, a few Hz wide) and the kurtosis survives the colouring (the
/// colouring is applied before the mixing; a memoryless transform of white noise followed by
/// the colouring filter would instead lose most of its excess kurtosis to the central limit).
/// The exponent a is solved per channel (regula falsi) so that the realised excess kurtosis of
/// b + p over the #samples drawn equals excess_kurtosis (to 1e-6), exact by construction; when
/// the target is below the kurtosis of the Gaussian draw (a = 0), a = 0 is used, and when it is
/// not reached at a = 8 (only for very short signals), a = 8; NoiseResult::excess_kurtosis has
/// the realised value.
///
/// Powerline p. sum_k A r_k (1 + powerline_am_depth v(t)) sin(k phi(t) + theta_k) over the
/// harmonics k = 1..#powerline_harmonic_ratios below fs/2, A = powerline_amplitude_ratio (the
/// peak amplitude of the fundamental relative to the RMS of b), r_k the harmonic ratios,
/// phi(t) = 2 pi integral of (powerline_Hz + delta(t)) with delta an Ornstein-Uhlenbeck walk of
/// standard deviation powerline_drift_Hz and time constant powerline_drift_tau_s, v an
/// Ornstein-Uhlenbeck process of unit standard deviation and time constant powerline_am_tau_s
/// (the factor is clamped at 0), theta_k uniform phases. delta is the mains frequency, the same
/// on every channel (drawn from rng.split(2^64 - 1)); v and theta_k are per channel. Over a
/// record of T seconds the realised mean frequency deviates from powerline_Hz by about
/// powerline_drift_Hz * sqrt(2 tau / T) (0.2 Hz for 10 s).
///
/// Drift d. A Gaussian process with P(f) ~ f^-drift_alpha on [drift_low_Hz, drift_high_Hz]
/// (drift_low_Hz = 0: from the lowest frequency of the grid) and 0 elsewhere, mean removed,
/// scaled to an RMS of exactly drift_rms_V. The drift is an absolute level, outside the SNR.
///
/// Slow processes. The envelope u, the mains walk delta and the modulation v are drawn at a knot
/// rate of max(256 Hz, 32 x their bandwidths) and interpolated linearly to the samples.
///
/// SNR. s is set so that RMS(s (b + p)) = RMS(clean channel) / 10^(snr_dB / 20) exactly: the
/// realised SNR (drift excluded) equals the request to rounding. A channel whose clean signal
/// is 0 gets no noise. "gaussian" draws #samples normals from rng.split(c) and scales them the
/// same way, bit for bit the white noise of synthesize_emg().
///
/// Threads. Channel c draws from rng.split(c) and the mains walk from rng.split(2^64 - 1) only
/// (recomputed per channel); channels run in parallel with no shared
/// sums: the result is identical at any thread count.

#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

namespace myotwin {
class ConfigReader;
class Rng;
} // namespace myotwin

namespace myotwin::forward {

/// The noise model.
enum class NoiseType { none, gaussian, realistic };

/// The name of a noise type as in configs ("none", "gaussian", "realistic").
std::string to_string(NoiseType type);

/// Parameters of the noise. Config section `noise`; keys as the field names except
/// drift_rms_V, whose key is `drift_rms_uV` [uV].
struct NoiseParams {
  /// Noise model. Key `type`: "none" | "gaussian" | "realistic".
  NoiseType type = NoiseType::gaussian;
  /// Signal-to-noise ratio of every channel [dB] (finite). Key `snr_dB`.
  double snr_dB = 20.0;

  // Realistic: broadband.
  /// Log-log slope of the broadband PSD, P ~ f^psd_slope, in [-4, 4]. Key `psd_slope`.
  double psd_slope = -0.5;
  /// Centre of the mid-band emphasis [Hz] (> 0). Key `midband_Hz`.
  double midband_Hz = 1000.0;
  /// Peak gain of the mid-band emphasis over the power law [dB] in [0, 40] (0 disables).
  /// Key `midband_gain_dB`.
  double midband_gain_dB = 6.0;
  /// Width (standard deviation) of the emphasis in octaves, in [0.05, 5]. Key
  /// `midband_width_oct`.
  double midband_width_oct = 1.0;
  /// Corner of the analog high-pass [Hz] (>= 0; 0 disables). Key `highpass_Hz`.
  double highpass_Hz = 10.0;
  /// Order of the Butterworth high-pass, in [1, 8]. Key `highpass_order`.
  int highpass_order = 2;
  /// Target excess kurtosis of broadband + powerline, in [0, 50] (0: Gaussian). Key
  /// `excess_kurtosis`.
  double excess_kurtosis = 3.0;
  /// Bandwidth of the heavy-tail envelope [Hz] (> 0). Key `envelope_bandwidth_Hz`.
  double envelope_bandwidth_Hz = 4.0;

  // Realistic: powerline.
  /// Powerline fundamental [Hz] (>= 0; 0 disables; 60 in North America). Key `powerline_Hz`.
  double powerline_Hz = 50.0;
  /// Peak amplitude of the fundamental relative to the broadband RMS (>= 0). Key
  /// `powerline_amplitude_ratio`.
  double powerline_amplitude_ratio = 0.1;
  /// Amplitude of harmonic k + 1 relative to the fundamental's, k = 0.. (each >= 0; the first
  /// is the fundamental). Key `powerline_harmonic_ratios`.
  std::vector<double> powerline_harmonic_ratios = {1.0, 0.5, 0.3, 0.15, 0.08};
  /// Standard deviation of the slow frequency walk [Hz] (>= 0). Key `powerline_drift_Hz`.
  double powerline_drift_Hz = 0.3;
  /// Time constant of the frequency walk [s] (> 0). Key `powerline_drift_tau_s`.
  double powerline_drift_tau_s = 2.0;
  /// Amplitude modulation depth (standard deviation of the relative amplitude), in [0, 1].
  /// Key `powerline_am_depth`.
  double powerline_am_depth = 0.15;
  /// Time constant of the amplitude modulation [s] (> 0). Key `powerline_am_tau_s`.
  double powerline_am_tau_s = 0.5;

  // Realistic: baseline drift.
  /// RMS of the baseline drift [V] (>= 0; 0 disables). Key `drift_rms_uV` [uV].
  double drift_rms_V = 0.0;
  /// Drift PSD exponent, P ~ f^-drift_alpha, in [0, 4]. Key `drift_alpha`.
  double drift_alpha = 1.75;
  /// Lower edge of the drift band [Hz] (>= 0; 0: the lowest available frequency). Key
  /// `drift_low_Hz`.
  double drift_low_Hz = 0.0;
  /// Upper edge of the drift band [Hz] (> drift_low_Hz). Key `drift_high_Hz`.
  double drift_high_Hz = 1.0;
};

/// Reads NoiseParams from a config section (usually `noise`); every key optional, defaults as
/// in NoiseParams. \throws BadInput naming the key, the value and the expectation, e.g.
/// `noise.type = "pink": must be one of none, gaussian, realistic`, or an `snr_dB` that is not
/// a number.
NoiseParams read_noise_params(ConfigReader& section);

/// Checks the parameters by reading to_json(params) back with read_noise_params(), whose
/// declarations state each range once. \throws BadInput naming the key and value.
void validate(const NoiseParams& params);

/// The parameters as a JSON object with the config keys (read_noise_params reads it back).
nlohmann::json to_json(const NoiseParams& params);

/// The output of make_noise() and generate_noise().
struct NoiseResult {
  /// The noise, #channels x #samples [V].
  Eigen::MatrixXd noise_V;
  /// Per channel: realised SNR [dB] = 20 log10(RMS(clean) / RMS(noise without drift)); +inf
  /// for "none", NaN for a channel whose clean signal is 0 and for every channel of
  /// generate_noise() (except "none").
  Eigen::VectorXd snr_dB;
  /// Per channel: RMS of the whole noise row [V] (drift included).
  Eigen::VectorXd noise_rms_V;
  /// Per channel: realised excess kurtosis of the noise without drift (NaN for "none").
  Eigen::VectorXd excess_kurtosis;
};

/// Noise for `clean_V` (#channels x #samples [V]) sampled at fs_Hz (> 0); channel c from
/// rng.split(c). \throws BadInput for invalid params, a non-positive fs_Hz or an empty signal.
NoiseResult make_noise(const Eigen::Ref<const Eigen::MatrixXd>& clean_V, double fs_Hz,
                       const NoiseParams& params, const Rng& rng);

/// Noise of #channels x #samples at fs_Hz whose RMS without drift is `rms_V` [V] on every
/// channel (SNR ignored); channel c from rng.split(c). \throws BadInput as make_noise().
NoiseResult generate_noise(Eigen::Index n_channels, Eigen::Index n_samples, double fs_Hz,
                           double rms_V, const NoiseParams& params, const Rng& rng);

/// Options of calibrate_noise().
struct NoiseCalibrationOptions {
  /// Welch segment length [s] (rounded down to a power of two of samples). Key-less.
  double segment_s = 2.0;
  /// Band of the broadband PSD fit [Hz]; fit_high_Hz = 0: 0.45 fs.
  double fit_low_Hz = 4.0;
  double fit_high_Hz = 0.0;
  /// Upper edge of the drift band [Hz].
  double drift_high_Hz = 1.0;
  /// Order of the high-pass assumed in the fit.
  int highpass_order = 2;
  /// SNR written to the calibrated parameters [dB] (a rest segment does not determine it).
  double snr_dB = 20.0;
};

/// The result of calibrate_noise().
struct NoiseCalibration {
  /// The estimated parameters (type realistic); fields that cannot be estimated from a rest
  /// segment (snr_dB, envelope_bandwidth_Hz, powerline_am_depth and the time constants) keep
  /// their defaults.
  NoiseParams params;
  /// What was measured: per-channel values, fit residual, line-to-floor ratios, rest RMS.
  nlohmann::json report;
};

/// Estimates the realistic-noise parameters from a rest recording `rest_V` (#channels x
/// #samples [V], at least 4 Welch segments long) sampled at fs_Hz: the broadband PSD model
/// (slope, mid-band centre, gain and width, high-pass corner) fitted in log-log to the Welch
/// PSD averaged over channels, powerline lines at 50 or 60 Hz (fundamental by centroid,
/// harmonic ratios and amplitude from floor-subtracted band powers, frequency drift from the
/// line width), the excess kurtosis (median over channels, drift removed) and the baseline
/// drift (RMS and slope). \throws BadInput for an empty, too short or non-finite recording.
NoiseCalibration calibrate_noise(const Eigen::Ref<const Eigen::MatrixXd>& rest_V, double fs_Hz,
                                 const NoiseCalibrationOptions& options = {});

/// Sample excess kurtosis of `x` (mean removed): m4 / m2^2 - 3.
double excess_kurtosis(const Eigen::Ref<const Eigen::VectorXd>& x);

} // namespace myotwin::forward
