#pragma once

/// \file separation.hpp
/// The building blocks of convolutive blind source separation that decompose() chains (steps
/// 1-8 of decompose.hpp) and that the model-informed separation (bmiss.hpp) starts from its
/// own separation vectors: the whitened extended recording, the fixed-point and local-CoV-of-ISI
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
  /// Samples a search contrast leaves out (empty: none): within 3 samples of the discharges of
  /// cancelled units, where what their subtraction left is the sparsest source (set by
  /// AcceptedUnits::cancel()).
  std::vector<char> excluded;
};

/// Steps 1-3 of decompose() (stats: preprocessing and whitening times, n_whitened).
/// \throws BadInput for too few samples for the extension; NumericalError for a failed
/// eigen-decomposition or no variance left.
WhitenedEmg whiten_emg(const forward::EmgRecording& recording, const DecomposeParams& params,
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

/// The MUAPs of all `trains` at once, #rows x (2 half + 1) each (column k at offset k - half
/// from the discharges), by least squares: x(c, t) = sum_u sum_k m_u(c, k) [t - k + half in
/// train u] + rest, over the discharges whose window is whole (others are left out). Solved by
/// block Gauss-Seidel, one unit at a time against the recording less the others' current MUAPs,
/// until a sweep changes every estimate by less than 1e-3 of its norm (at most 100 sweeps):
/// memory that of x whatever the number of units. The spike-triggered mean is the case of one
/// train; with several, a discharge of another unit near this unit's is attributed to its owner
/// rather than averaged into this unit's MUAP. Used for the MUAPs of every decomposition
/// (AcceptedUnits::finish()) and by subtract_units(). \throws BadInput for half < 0.
std::vector<Eigen::MatrixXd> joint_muaps(const Eigen::MatrixXd& x,
                                         const std::vector<std::vector<std::int64_t>>& trains,
                                         std::int64_t half);

/// Subtracts units from `x` (#channels x #samples) at their discharges (`trains`): their MUAPs
/// over [-half, half] samples estimated all at once by least squares (so that no unit's MUAP
/// carries the others', as a spike-triggered mean would) and kept to their singular components
/// above the noise (channels scaled by their rms; edge (sqrt(#channels) + sqrt(2 half + 1)) /
/// sqrt(#discharges)), so that the background averaged into an estimate is not subtracted at
/// every discharge as a ghost unit; then fitted at each discharge with an
/// amplitude, a whole-sample offset of at most 4 and a sub-sample shift of at most one sample
/// (least squares on the MUAP and its time derivative). With `min_distance` > 0, the discharges a
/// train missed are then looked for (farther than min_distance samples from its discharges): a
/// local maximum of the correlation with the MUAP where it fits at an amplitude in [0.6, 1.4] and
/// explains at least half the window's energy; each is subtracted too. Returns them per train
/// (ascending).
std::vector<std::vector<std::int64_t>>
subtract_units(Eigen::MatrixXd& x, const std::vector<std::vector<std::int64_t>>& trains,
               std::int64_t half, std::int64_t min_distance = 0);
/// Successive cancellation: data.x is the band-passed recording again less subtract_units() of
/// `trains` (all the units to cancel, those cancelled before too; window [-half, half], missed
/// discharges looked for at min_distance), then the extension and whitening of the residual again
/// (data.whiten, data.z; n_whitened and time_whiten_s in `stats`). Vectors of the old whitened
/// space are meaningless afterwards. Returns, per train, the missed discharges.
std::vector<std::vector<std::int64_t>>
cancel_trains(WhitenedEmg& data, const std::vector<std::vector<std::int64_t>>& trains,
              std::int64_t half, std::int64_t min_distance, DecomposeStats& stats);
/// One source after steps 4-6.
struct SeparatedSource {
  Eigen::VectorXd w; ///< unit separation vector (whitened space), refined
  /// The vector after the fixed-point iterations, before the refinement: orthogonal to the
  /// deflation basis (decompose() deflates later candidates against it).
  Eigen::VectorXd w_fixed_point;
  Eigen::VectorXd s;          ///< source z^T w, skewness positive
  SpikeDetection detection;   ///< discharges and SIL of the source
  double cov_isi_local = 0.0; ///< local CoV of ISI (median CV2) of the discharges
  bool converged = false;     ///< fixed-point converged within the iterations
  std::int64_t n_fixed_point = 0;
};

/// Steps 4-6 from the starting vector `w0`: fixed-point iterations with Gram-Schmidt
/// deflation against `basis` (unit vectors), then the refinement while the local CoV of ISI
/// (median CV2, firing.hpp) decreases. Returns an empty
/// w when w0 lies in the span of `basis`.
SeparatedSource separate_from(const WhitenedEmg& data, Eigen::VectorXd w0,
                              const std::vector<Eigen::VectorXd>& basis,
                              const DecomposeParams& params);

/// What offer() made of a source.
enum class Verdict { accepted, few_discharges, low_sil, irregular, duplicate, replaced };

/// Steps 7-8 and the per-unit outputs: the units accepted so far, each with its separation
/// vector.
class AcceptedUnits {
public:
  /// Accepts `source` if it passes the thresholds and is no duplicate (a duplicate with a
  /// higher SIL replaces the accepted one); an accepted unit is peeled off `data.z`.
  /// Counts in `stats`.
  Verdict offer(SeparatedSource source, std::int64_t found_at, WhitenedEmg& data,
                const DecomposeParams& params, DecomposeStats& stats);
  /// The separation vectors of the accepted units, in order (the deflation basis of later
  /// candidates); for a cancelled unit, the direction of what its subtraction left.
  [[nodiscard]] std::vector<Eigen::VectorXd> vectors() const;
  /// MUedit's refinement of the units on the whole recording (refineMUs, Avrillon et al. 2024):
  /// each unit's filter becomes the spike-triggered mean of the extended recording (data.x, not
  /// the peeled-off data.z) at its discharges, leaving out those whose source peak is above the
  /// mean + 3 SD of its peaks, whitened; its source on the recording is detected again
  /// (detect_spikes()). The refined train replaces the unit's if it passes the acceptance
  /// (min_discharges, sil_threshold, max_local_cov_isi); units that then share
  /// duplicate_fraction of their discharges are one, the one with the higher SIL stays.
  void refine(const WhitenedEmg& data, const DecomposeParams& params, DecomposeStats& stats);
  /// Successive cancellation: cancel_trains() of every accepted unit when some are new (window
  /// peel_off_window_ms, missed discharges looked for at min_peak_distance_ms, and added to the
  /// unit's discharges). Each unit's vector becomes the orthonormalised spike-triggered mean of
  /// the new whitened data at its discharges, which is peeled off (what the subtraction left is
  /// the sparsest source of the residual), and data.excluded marks the samples near them.
  /// Returns how many were new.
  std::size_t cancel(WhitenedEmg& data, const DecomposeParams& params, DecomposeStats& stats);
  [[nodiscard]] std::size_t size() const { return units_.size(); }
  /// The k-th accepted unit (its discharges, SIL, source; filter and MUAP are set by finish()).
  [[nodiscard]] const MotorUnit& unit(std::size_t k) const { return units_.at(k).unit; }
  /// The decomposition: filters on the extended channels, MUAPs by spike-triggered averaging,
  /// the neural drive.
  /// The filter of a unit is the one that gave its source: on the extended band-passed channels
  /// of the recording, less the units cancelled before it was found.
  [[nodiscard]] Decomposition finish(const WhitenedEmg& data, const DecomposeParams& params,
                                     const DecomposeStats& stats) const;

private:
  struct Unit {
    MotorUnit unit;
    Eigen::VectorXd w;      ///< separation vector in the whitened space it was found in
    Eigen::VectorXd filter; ///< the same on the extended channels (whiten^T w)
    bool cancelled = false; ///< subtracted from the recording by cancel()
  };
  std::vector<Unit> units_;
};

} // namespace myotwin::inversion
