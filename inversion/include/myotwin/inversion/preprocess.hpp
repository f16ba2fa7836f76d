#pragma once
/// \file preprocess.hpp
/// EMG preprocessing before decomposition: zero-phase band-pass and powerline notch, and the
/// rejection of bad channels with a report.
///
/// Filters. Second-order sections after the RBJ audio-EQ cookbook (bilinear transform with
/// pre-warping): a Butterworth high-pass (Q = 1/sqrt 2) at highpass_Hz, a Butterworth low-pass
/// at lowpass_Hz and a notch at powerline_Hz and its harmonics below lowpass_Hz (and below
/// fs / 2), of bandwidth notch_bandwidth_Hz. Each is run forward and backward (zero phase;
/// magnitude squared, so the band edges are at -6 dB), after padding each end with the odd
/// reflection of the signal (about 3 periods of the high-pass corner, at most #samples - 1)
/// to tame the start-up transients.
///
/// Bad channels (on the band-passed signals; `rms` below is after filtering):
/// - flat: rms < flat_rms_fraction x the median rms of all channels (or exactly 0);
/// - saturated: on the raw signal, at least saturation_fraction of the samples (and >= 3) equal
///   to the channel's maximum or minimum (an amplifier at its rail);
/// - noisy: rms > noisy_ratio x the median rms of its grid neighbours (8-neighbourhood of
///   grid_row_col); without a grid or a neighbour, x the 90th percentile of the other channels'
///   rms (their median would reject the channels over the active muscle of a wrapped grid).

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "myotwin/core/hdf5_io.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::inversion {

/// Parameters of preprocess().
struct PreprocessParams {
  /// High-pass corner [Hz] (0: off; else > 0 and < lowpass_Hz). Key `highpass_Hz`.
  double highpass_Hz = 20.0;
  /// Low-pass corner [Hz] (0: off; else < fs / 2; above fs / 2 it is skipped with a warning in
  /// the report). Key `lowpass_Hz`.
  double lowpass_Hz = 500.0;
  /// Powerline frequency [Hz] for the notch (0: off; usually 50 or 60). Key `powerline_Hz`.
  double powerline_Hz = 50.0;
  /// Bandwidth of each notch [Hz] (> 0). Key `notch_bandwidth_Hz`.
  double notch_bandwidth_Hz = 2.0;
  /// Reject bad channels. Key `reject_channels`.
  bool reject_channels = true;
  /// Flat-channel threshold, fraction of the median rms (>= 0). Key `flat_rms_fraction`.
  double flat_rms_fraction = 0.01;
  /// Saturation threshold, fraction of samples at the rails, in (0, 1]. Key
  /// `saturation_fraction`.
  double saturation_fraction = 0.005;
  /// Noisy-channel threshold, ratio to the neighbours' median rms (> 1). Key `noisy_ratio`.
  double noisy_ratio = 5.0;
};

/// What preprocess() found about one channel.
struct ChannelStatus {
  /// Channel index in the recording.
  std::int64_t index = 0;
  /// RMS after filtering [V].
  double rms = 0.0;
  /// "" for a kept channel, else "flat", "saturated" or "noisy".
  std::string rejected;
  /// Human-readable reason for a rejection (values and thresholds).
  std::string detail;
};

/// The output of preprocess().
struct PreprocessResult {
  /// Filtered signals of every channel (rejected ones too), #channels x #samples [V].
  Eigen::MatrixXd filtered;
  /// Indices of the kept channels, ascending.
  std::vector<std::int64_t> kept;
  /// One entry per channel.
  std::vector<ChannelStatus> channels;
  /// Notes (a filter skipped because its corner is above fs / 2, ...).
  std::vector<std::string> notes;
};

/// Reads PreprocessParams from a config section (keys as in PreprocessParams, all optional).
/// \throws BadInput naming the key for a wrong type or range.
PreprocessParams read_preprocess_params(ConfigReader& section);

/// Checks the parameters by reading to_json(params) back with read_preprocess_params(), whose
/// declarations state each range once. \throws BadInput naming the key and value.
void validate(const PreprocessParams& params);

/// The parameters as JSON (the layout read_preprocess_params() reads).
nlohmann::json to_json(const PreprocessParams& params);

/// Applies a zero-phase biquad cascade to each row of `signals` in place (see the file
/// comment): the high-pass, low-pass and notches of `params` at `fs_Hz`. Parallel over channels.
/// Returns notes on skipped filters.
std::vector<std::string> filter_signals(Eigen::MatrixXd& signals, double fs_Hz,
                                        const PreprocessParams& params);

/// Filters `emg` (#channels x #samples [V]) at `fs_Hz` and finds the bad channels.
/// `grid_row_col`: #channels x 2 or empty. \throws BadInput for invalid params, or naming every
/// rejection when all channels are rejected.
PreprocessResult preprocess(const Eigen::Ref<const Eigen::MatrixXd>& emg, double fs_Hz,
                            const Eigen::Ref<const MatrixXi64>& grid_row_col,
                            const PreprocessParams& params);

/// The channel report as JSON: one object per channel (index, rms_V, rejected, detail).
nlohmann::json to_json(const PreprocessResult& result);

} // namespace myotwin::inversion
