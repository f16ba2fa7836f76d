#pragma once
/// \file firing.hpp
/// What a motor unit's source and discharge train say about it: spike detection on a separated
/// source, firing statistics that hold for real motor-neuron firing (pauses, doublets, ramps),
/// the pulse-to-noise ratio, the review flags a human editor would look at, and the neural
/// drive. Used by the decomposition (decompose.hpp), the model-informed separation (bmiss.hpp)
/// and the benchmarks; nothing here knows how a source was found.
///
/// References (docs/inversion.md has the discussion):
/// - SIL: Negro, Muceli, Castronovo, Holobar, Farina 2016, J Neural Eng 13:026027 (SIL >= 0.9).
/// - PNR: Holobar, Minetto, Farina 2014, J Neural Eng 11:016008; Holobar et al. 2013 NER: every
///   unit with PNR >= 30 dB had sensitivity > 90 % and false alarms < 1 % (PNR on the pulse
///   train s |s|, as below).
/// - CV2: Holt, Softky, Koch, Douglas 1996, J Neurophysiol 75:1806-1814: CV2 = 2 |I_k+1 - I_k| /
///   (I_k+1 + I_k) compares neighbouring intervals only, so slow rate changes (ramps) do not
///   raise it; its median over a train is robust to a few doublets, missed or extra discharges.
///   For Gaussian intervals of CoV c the median CV2 is 0.95 c; for a Poisson train (what spikes
///   picked from noise look like) it is 1.0.
/// - Doublets: intervals below about 20 ms (Garland and Griffin 1999, Muscle Nerve 22:1423;
///   Bawa and Calancie 1983: 2.5-20 ms).

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

namespace myotwin::inversion {

/// Spike detection on a separated source (#samples): local maxima of t = s |s| at least
/// min_distance samples apart (highest kept first), split by two-class k-means on their heights
/// (centroids started at the lowest and highest); the upper class are the discharges.
/// SIL = (B - W) / max(B, W), W and B the sums of squared distances of the discharge heights to
/// the discharge and to the noise centroid.
struct SpikeDetection {
  std::vector<std::int64_t> discharges; ///< increasing sample indices
  double sil = 0.0;
};
SpikeDetection detect_spikes(const Eigen::Ref<const Eigen::VectorXd>& source,
                             std::int64_t min_distance);

/// Firing statistics of a discharge train.
struct FiringStats {
  /// CoV of the regular intervals (doublet_isi_s <= I <= max_isi_s); 0 with fewer than 2.
  double cov_isi = 0.0;
  /// Median CV2 over neighbouring interval pairs with both intervals <= max_isi_s (pauses break
  /// the pairs; doublets stay in and are outvoted by the median); 0 with no pair.
  double cov_isi_local = 0.0;
  /// 1 / mean regular interval [pps]; 0 with no regular interval.
  double rate_pps = 0.0;
  std::int64_t n_doublets = 0; ///< intervals < doublet_isi_s
  std::int64_t n_pauses = 0;   ///< intervals > max_isi_s
};

/// Firing statistics of `discharges` (increasing sample indices) at fs_Hz (> 0), with intervals
/// shorter than doublet_isi_s counted as doublets and longer than max_isi_s as pauses [s].
/// \throws BadInput unless fs_Hz > 0 (finite) and 0 <= doublet_isi_s < max_isi_s.
FiringStats firing_stats(const std::vector<std::int64_t>& discharges, double fs_Hz,
                         double doublet_isi_s, double max_isi_s);

/// PNR [dB] of a source (#samples) at `discharges`, as the CKC toolbox, openhdemg and MUedit
/// compute it (Holobar et al. 2014): on the pulse train t = s |s| (the signal spikes are detected
/// on), 10 log10(mean t^2 at the discharges / mean t^2 of the noise), the noise being the samples
/// between the first and the last discharge farther than round(3 fs / 2048) samples from every
/// discharge where t >= 0. 0 when either set is empty or the noise is 0.
double pnr_dB(const Eigen::Ref<const Eigen::VectorXd>& source,
              const std::vector<std::int64_t>& discharges, double fs_Hz);

/// Limits above or below which a unit is flagged for a human editor's review.
struct ReviewLimits {
  double min_pnr_dB = 30.0;           ///< below: flag "pnr" (Holobar et al. 2013)
  double max_cov_isi = 0.3;           ///< CoV of regular intervals above: flag "cov_isi"
  double max_doublet_fraction = 0.05; ///< doublets per interval above: flag "doublets"
  double max_pause_fraction = 0.05;   ///< pauses per interval above: flag "pauses"
};

/// The review flags of a unit, in a fixed order ("pnr", "cov_isi", "doublets", "pauses"); empty
/// when nothing asks for a look. MUedit and DEMUSE leave this judgement to the user; these are
/// the figures their users check first.
std::vector<std::string> review_flags(double pnr_dB, const FiringStats& firing,
                                      std::int64_t n_discharges, const ReviewLimits& limits);

/// The review flags as bits (HDF5 `units/review_flags`): 1 pnr, 2 cov_isi, 4 doublets, 8 pauses.
std::int64_t review_bits(const std::vector<std::string>& flags);
/// What the bits of review_bits() mean (the dataset's `bits` attribute).
inline constexpr const char* review_bits_doc = "1 pnr, 2 cov_isi, 4 doublets, 8 pauses";

/// Neural drive [pps]: the sum of the trains smoothed by a unit-area Hann window of
/// window_samples (>= 1) samples, #samples values.
Eigen::VectorXd neural_drive(const std::vector<std::vector<std::int64_t>>& trains,
                             std::int64_t n_samples, double fs_Hz, std::int64_t window_samples);

} // namespace myotwin::inversion
