#pragma once
/// \file emg.hpp
/// EMG synthesis: the sum over motor units of each unit's discharge train convolved with its
/// MUAP, at the output rate, with optional white Gaussian noise at a per-channel SNR.
///
/// Timing. Each MUAP is placed at the exact continuous time of each discharge: the MUAP samples
/// m_u[j] (rate muap_fs_Hz, t = 0 at the discharge) are reconstructed band-limited,
///
///     s_u(tau) = (1 / muap_fs) * sum_j m_u[j] * h(tau - j / muap_fs),
///     h(tau)   = 2 fc sinc(2 fc tau) * kaiser(tau / L),   L = kernel_zero_crossings / (2 fc),
///
/// with fc = cutoff_fraction * min(fs_Hz, muap_fs_Hz): when the MUAP rate is above the output
/// rate the same kernel is the anti-alias low-pass, so the output is free of aliases above
/// cutoff_fraction * fs_Hz. Output sample n of the unit's train is sum_k s_u(n / fs - t_k).
/// s_u is computed exactly at min(n_phases, 16) fractional delays per output sample; the
/// other of the n_phases + 1 tabulated delays are the cubic (4-point Lagrange) interpolation
/// between the neighbouring exact ones (relative error < 4e-5 even at the cut-off, as the exact
/// grid oversamples the band >= 16 times), and a discharge at
/// t_k = (n0 + f) / fs, 0 <= f < 1, uses the linear interpolation between the two neighbouring
/// phases floor(f * n_phases) and the next: the residual is an amplitude error of at most
/// (1 / (n_phases fs))^2 / 8 * max |s_u''| (a timing error of second order, < 1e-4 samples for
/// 64 phases and MUAPs well inside the pass band), not a quantisation of the time.
///
/// Noise. Channel c gets white Gaussian noise drawn from rng.split(c), scaled so that its RMS
/// over the signal is exactly RMS(clean channel) / 10^(snr_dB / 20): the realised SNR equals the
/// request to rounding (a channel whose clean signal is 0 gets no noise).
///
/// Threads. The channels are processed in parallel in blocks of a fixed width (tables and sums),
/// every sum in a fixed order: the result is identical at any thread count.

#include <cstdint>
#include <limits>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

namespace myotwin {
class ConfigReader;
class Rng;
} // namespace myotwin

namespace myotwin::forward {

/// Parameters of the EMG synthesis.
struct EmgParams {
  /// Output sampling rate [Hz] (> 0). Config key `fs_Hz`.
  double fs_Hz = 2048.0;
  /// Add white Gaussian noise (config key `noise`: "gaussian" = true, "none" = false).
  bool add_noise = true;
  /// Signal-to-noise ratio of every channel [dB] (finite) when add_noise. Config key `snr_dB`.
  double snr_dB = 20.0;
  /// Number of fractional delays per output sample in the MUAP tables (>= 1). Key `n_phases`.
  int n_phases = 64;
  /// Cut-off of the interpolation / anti-alias kernel as a fraction of the lower of the output
  /// and MUAP rates, in (0, 0.5]. Key `cutoff_fraction`.
  double cutoff_fraction = 0.45;
  /// Half-width of the kernel in zero crossings of its sinc (>= 2). Key `kernel_zero_crossings`.
  int kernel_zero_crossings = 16;
  /// Kaiser window shape parameter (>= 0; 8 gives about 80 dB stop band). Key `kaiser_beta`.
  double kaiser_beta = 8.0;
};

/// The output of synthesize_emg().
struct EmgResult {
  /// Sampling rate of the signals [Hz].
  double fs_Hz = 0.0;
  /// EMG with noise, #channels x #samples [V]; sample n at t = n / fs_Hz,
  /// #samples = round(duration_s * fs_Hz).
  Eigen::MatrixXd emg;
  /// The same without noise, #channels x #samples [V].
  Eigen::MatrixXd emg_clean;
  /// Per unit: the discharge sample indices, round(t * fs_Hz) clamped to #samples - 1, 0-based,
  /// in the order the times were given.
  std::vector<std::vector<std::int64_t>> spike_samples;
  /// Per channel: realised SNR [dB] = 20 log10(RMS(clean) / RMS(noise)); +inf without noise,
  /// NaN for a channel whose clean signal is 0.
  Eigen::VectorXd snr_dB;
  /// Per channel: RMS of the added noise [V] (0 without noise).
  Eigen::VectorXd noise_rms_V;
};

/// Reads EmgParams from a config section. Keys (all optional, defaults as in EmgParams):
/// `fs_Hz`, `noise` ("none" | "gaussian"), `snr_dB`, `n_phases`, `cutoff_fraction`,
/// `kernel_zero_crossings`, `kaiser_beta`. \throws BadInput naming the key for a value of the
/// wrong type (e.g. an `snr_dB` that is not a number) or out of range.
EmgParams read_emg_params(ConfigReader& section);

/// Checks the parameters by reading to_json(params) back with read_emg_params(), whose
/// declarations state each range once. \throws BadInput naming the key and value (e.g. a NaN
/// snr_dB).
void validate(const EmgParams& params);

/// The parameters as the config section read_emg_params() reads.
nlohmann::json to_json(const EmgParams& params);

/// Synthesises the EMG.
/// \param muaps         per unit, n_muap_samples x n_channels [V], sampled at muap_fs_Hz, row 0
///                      at the discharge instant; every unit the same #channels.
/// \param muap_fs_Hz    sampling rate of the MUAPs [Hz] (> 0).
/// \param discharge_times_s per unit (same count as muaps): discharge times [s] in
///                      [0, duration_s), any order.
/// \param duration_s    length of the signal [s] (> 0).
/// \param params        see EmgParams.
/// \param rng           noise of channel c from rng.split(c).
/// \throws BadInput for an empty unit set, #units of muaps and times that differ, an empty MUAP,
/// MUAPs with different #channels, a non-finite MUAP value, a discharge time outside
/// [0, duration_s) (naming the unit and the time), or invalid params.
EmgResult synthesize_emg(const std::vector<Eigen::MatrixXd>& muaps, double muap_fs_Hz,
                         const std::vector<std::vector<double>>& discharge_times_s,
                         double duration_s, const EmgParams& params, const Rng& rng);

/// The arithmetic synthesize_emg() does for one unit [multiply-adds]: its MUAP of
/// `muap_duration_s` [s] at `muap_fs_Hz` [Hz] turned into the output rate's phase tables at
/// `n_channels` channels, and `n_discharges` discharges added from them, at `params` (the
/// output rate fs_Hz, the kernel and n_phases). For run estimates (estimate_simulation()).
double synthesis_operations(double muap_duration_s, double muap_fs_Hz, double n_discharges,
                            double n_channels, const EmgParams& params);

/// The band-limited reconstruction s(tau) of one MUAP channel (see the file comment) at the
/// delays `tau_s` [s]; the reference the tables are built from (exposed for tests).
Eigen::VectorXd resample_muap(const Eigen::Ref<const Eigen::VectorXd>& muap, double muap_fs_Hz,
                              const Eigen::Ref<const Eigen::VectorXd>& tau_s, double fs_Hz,
                              const EmgParams& params);

} // namespace myotwin::forward
