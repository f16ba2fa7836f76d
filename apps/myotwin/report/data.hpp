#pragma once
// Numbers for the report's charts: rounding (the page carries 4 significant digits, which is
// what a chart can show), envelopes of long traces, simple statistics.

#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "myotwin/core/hdf5_io.hpp"

namespace myotwin::app::report {

/// `v` rounded to `digits` significant digits (0, NaN and infinities unchanged).
double round_sig(double v, int digits = 4);

/// The values of `v` times `scale`, rounded to 4 significant digits, as a JSON array.
nlohmann::json rounded_array(const Eigen::Ref<const Eigen::VectorXd>& v, double scale = 1.0);

/// The min/max envelope of `x` (sampled at fs_Hz) in at most `n_bins` equal bins of time: per
/// bin {"t": start time [s], "lo", "hi": min and max of x * scale}. With fewer samples than
/// bins every sample is its own bin. This is what a plot of the full trace shows at one bin per
/// pixel.
nlohmann::json envelope(const Eigen::Ref<const Eigen::VectorXd>& x, double fs_Hz, int n_bins,
                        double scale);

/// Every `step`-th value of `x` times `scale` as {"t": time [s], key: value}, plus the last.
nlohmann::json decimated_series(const Eigen::Ref<const Eigen::VectorXd>& x, double fs_Hz,
                                int max_points, double scale, const std::string& key);

/// Root mean square of each row.
Eigen::VectorXd row_rms(const Eigen::Ref<const Eigen::MatrixXd>& x);

/// The grid row and column of each channel: `channels/grid_row_col` of an emg.h5-layout file,
/// else one column of n_channels rows.
MatrixXi64 grid_layout(const H5Reader& h5, Eigen::Index n_channels);

/// `text` split at each `sep` ("a;b" gives a, b; "" gives nothing).
std::vector<std::string> split(const std::string& text, char sep);

/// A Vega-Lite chart of traces as envelopes (`values` from envelope() with fields "channel",
/// the row's title, and "rank", the row order): one row of `height` pixels per channel, the band
/// between "lo" and "hi" filled in `colour`, in uV over time [s].
nlohmann::json envelope_chart(nlohmann::json values, int height, const std::string& colour);

/// A Vega-Lite line chart of the power spectral density of `x` (#channels x #samples [V])
/// averaged over channels [uV^2/Hz, log scale] (signal::welch_psd, Hann segments of up to 1024
/// samples, 50 % overlap), without the 0 Hz bin.
nlohmann::json spectrum_chart(const Eigen::MatrixXd& x, double fs_Hz);

/// A number as text with `digits` significant digits.
std::string fmt(double v, int digits = 3);

} // namespace myotwin::app::report
