#pragma once

/// \file separation.hpp
/// The building blocks of convolutive blind source separation that decompose() chains (steps
/// 1-8 of decompose.hpp) and that the model-informed separation (bmiss.hpp) starts from its
/// own separation vectors: the whitened extended recording, the fixed-point and CoV-of-ISI
/// refinement of one source from a starting vector, and the set of accepted units (acceptance,
/// duplicates, peel-off, and the final filters, MUAPs and neural drive).

#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "myotwin/inversion/decompose.hpp"

namespace myotwin::inversion {

/// Steps 1-3: the preprocessed, extended and whitened recording.
struct WhitenedEmg {
  double fs_Hz = 0.0;
  Eigen::Index n_samples = 0;
  Eigen::Index n_channels = 0; ///< channels of the recording (kept or not)
  /// Filtered signals and the channel report.
  PreprocessResult preprocessing;
  /// The kept channels, mean-free, #kept x #samples (the rows that are extended).
  Eigen::MatrixXd x;
  Eigen::Index extension_factor = 0;
  /// Whitening matrix, #whitened x (#kept R): z = whiten * extended x.
  Eigen::MatrixXd whiten;
  /// Whitened extended signals, #whitened x #samples (peeled off in place by AcceptedUnits).
  Eigen::MatrixXf z;
};

/// Steps 1-3 of decompose() (stats: preprocessing and whitening times, n_whitened).
/// \throws BadInput for too few samples for the extension; NumericalError for a failed
/// eigen-decomposition or no variance left.
WhitenedEmg whiten_emg(const EmgRecording& recording, const DecomposeParams& params,
                       DecomposeStats& stats);

/// s = z^T w for a whitened-space vector `w` (#whitened), parallel over fixed blocks.
Eigen::VectorXd project(const Eigen::MatrixXf& z, const Eigen::VectorXd& w);

/// Mean of the columns of `z` at `discharges` (the spike-triggered mean of the whitened data: the
/// MU filter of those discharges).
Eigen::VectorXd spike_triggered_mean(const Eigen::MatrixXf& z,
                                     const std::vector<std::int64_t>& discharges);

/// Peel-off: subtracts from `z` its spike-triggered average over [-half, half] samples around
/// `discharges`, at each of them.
void peel_off(Eigen::MatrixXf& z, const std::vector<std::int64_t>& discharges, std::int64_t half);

/// One source after steps 4-6.
struct SeparatedSource {
  Eigen::VectorXd w; ///< unit separation vector (whitened space), refined
  /// The vector after the fixed-point iterations, before the refinement: orthogonal to the
  /// deflation basis (decompose() deflates later candidates against it).
  Eigen::VectorXd w_fixed_point;
  Eigen::VectorXd s;        ///< source z^T w, skewness positive
  SpikeDetection detection; ///< discharges and SIL of the source
  double cov_isi = 0.0;     ///< CoV of ISI of the discharges
  bool converged = false;   ///< fixed-point converged within the iterations
  std::int64_t n_fixed_point = 0;
};

/// Steps 4-6 from the starting vector `w0`: fixed-point iterations with Gram-Schmidt
/// deflation against `basis` (unit vectors), then the CoV-of-ISI refinement. Returns an empty
/// w when w0 lies in the span of `basis`.
SeparatedSource separate_from(const WhitenedEmg& data, Eigen::VectorXd w0,
                              const std::vector<Eigen::VectorXd>& basis,
                              const DecomposeParams& params);

/// What offer() made of a source.
enum class Verdict { accepted, few_discharges, low_sil, high_cov, duplicate, replaced };

/// Steps 7-8 and the per-unit outputs: the units accepted so far, each with its separation
/// vector.
class AcceptedUnits {
public:
  /// Accepts `source` if it passes the thresholds and is no duplicate (a duplicate with a
  /// lower CoV of ISI replaces the accepted one); an accepted unit is peeled off `data.z`.
  /// Counts in `stats`.
  Verdict offer(SeparatedSource source, std::int64_t found_at, WhitenedEmg& data,
                const DecomposeParams& params, DecomposeStats& stats);
  /// The accepted separation vectors, in order.
  [[nodiscard]] std::vector<Eigen::VectorXd> vectors() const;
  [[nodiscard]] std::size_t size() const { return units_.size(); }
  /// The k-th accepted unit (its discharges, SIL, source; filter and MUAP are set by finish()).
  [[nodiscard]] const MotorUnit& unit(std::size_t k) const { return units_.at(k).unit; }
  /// The decomposition: filters on the extended channels, MUAPs by spike-triggered averaging,
  /// the neural drive.
  [[nodiscard]] Decomposition finish(const WhitenedEmg& data, const DecomposeParams& params,
                                     const DecomposeStats& stats) const;

private:
  struct Unit {
    MotorUnit unit;
    Eigen::VectorXd w;
  };
  std::vector<Unit> units_;
};

} // namespace myotwin::inversion
