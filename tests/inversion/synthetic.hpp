#pragma once
// Synthetic multichannel EMG for the decomposition tests: parametric MUAPs of distinct shapes on
// a small grid, discharges from the Fuglevand pool, EMG by forward::synthesize_emg.

#include <cmath>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "myotwin/core/random.hpp"
#include "myotwin/forward/drive/drive.hpp"
#include "myotwin/forward/emg/emg.hpp"
#include "myotwin/forward/io/emg_file.hpp"

namespace myotwin::testing {

/// A synthetic recording and its truth.
struct SyntheticEmg {
  myotwin::forward::EmgRecording recording;
  std::vector<std::vector<std::int64_t>> truth; ///< per unit, 0-based sample indices
};

/// `n_units` MUAPs under a rows x cols grid (8 mm apart), #samples at 10240 Hz x #channels each:
/// the first derivative of a Gaussian (width 0.5 to 1.3 ms) plus a second phase, propagating
/// along the rows at 4 m/s, with an amplitude that falls with the distance to the unit's position
/// (depth 5 to 12 mm).
inline std::vector<Eigen::MatrixXd> synthetic_muaps(int n_units, int rows, int cols,
                                                    const Rng& rng) {
  const double muap_fs = 10240.0, ied = 8e-3, cv = 4.0;
  const int n_ch = rows * cols;
  const int n_muap = static_cast<int>(0.03 * muap_fs);
  std::vector<Eigen::MatrixXd> muaps;
  for (int u = 0; u < n_units; ++u) {
    Rng r = rng.split(static_cast<std::uint64_t>(u));
    const double ux = r.uniform(0.0, (cols - 1) * ied), uy = r.uniform(0.0, (rows - 1) * ied);
    const double depth = r.uniform(5e-3, 12e-3);
    const double sigma = r.uniform(0.5e-3, 1.3e-3);
    const double second = r.uniform(-0.8, 0.8);
    const double amplitude = r.uniform(60e-6, 150e-6);
    Eigen::MatrixXd m(n_muap, n_ch);
    for (int row = 0; row < rows; ++row)
      for (int col = 0; col < cols; ++col) {
        const double dx = col * ied - ux, dy = row * ied - uy;
        const double a = amplitude / std::pow(1.0 + (dx * dx + dy * dy) / (depth * depth), 1.5);
        const double delay = 0.008 + std::abs(dy) / cv;
        for (int k = 0; k < n_muap; ++k) {
          const double t = k / muap_fs - delay;
          const double g = std::exp(-0.5 * t * t / (sigma * sigma));
          const double t2 = t - 2.5 * sigma;
          const double g2 = std::exp(-0.5 * t2 * t2 / (sigma * sigma));
          m(k, row * cols + col) = a * (-t / sigma * g + second * g2);
        }
      }
    muaps.push_back(m);
  }
  return muaps;
}

/// The EMG of synthetic_muaps() (one per train) firing at `times_s` [s] over duration_s, with
/// white noise at snr_dB, on a rows x cols grid.
inline SyntheticEmg synthetic_emg_of_trains(const std::vector<std::vector<double>>& times_s,
                                            int rows, int cols, double duration_s, double snr_dB,
                                            std::uint64_t seed) {
  Rng rng(seed);
  const auto muaps = synthetic_muaps(static_cast<int>(times_s.size()), rows, cols, rng);
  forward::EmgParams emg;
  emg.snr_dB = snr_dB;
  const auto result =
      forward::synthesize_emg(muaps, 10240.0, times_s, duration_s, emg, rng.split(2000));
  SyntheticEmg s;
  s.recording.source = "synthetic";
  s.recording.fs_Hz = result.fs_Hz;
  s.recording.emg = result.emg;
  const int n_ch = rows * cols;
  s.recording.grid_row_col.resize(n_ch, 2);
  for (int c = 0; c < n_ch; ++c) {
    s.recording.grid_row_col(c, 0) = c / cols;
    s.recording.grid_row_col(c, 1) = c % cols;
  }
  s.truth = result.spike_samples;
  return s;
}

/// synthetic_muaps() firing as the Fuglevand pool with thresholds 0.02, 0.04, ... at constant
/// excitation `level`.
inline SyntheticEmg make_synthetic_emg(int n_units, int rows, int cols, double duration_s,
                                       double snr_dB, std::uint64_t seed, double level = 0.2) {
  std::vector<double> thresholds;
  for (int u = 0; u < n_units; ++u)
    thresholds.push_back(0.02 * (u + 1));
  forward::DriveParams drive;
  drive.duration_s = duration_s;
  drive.profile.type = forward::ProfileType::constant;
  drive.profile.level = level;
  const auto discharges = forward::simulate_drive(drive, thresholds, Rng(seed).split(1000));
  return synthetic_emg_of_trains(discharges.discharge_times_s, rows, cols, duration_s, snr_dB,
                                 seed);
}

} // namespace myotwin::testing
