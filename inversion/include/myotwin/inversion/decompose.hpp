#pragma once
/// \file decompose.hpp
/// Motor-unit decomposition of multichannel surface EMG by convolutive blind source separation,
/// after Negro, Muceli, Castronovo, Holobar and Farina 2016 (J Neural Eng 13:026027) and the
/// tools built on it (docs/inversion.md has the full description and the references).
///
/// Steps:
/// 1. Preprocessing (preprocess.hpp): band-pass, notch, bad-channel rejection.
/// 2. Extension: each kept channel x_c (mean removed) with R - 1 delayed copies, row c R + d
///    holding x_c(n - d) (0 before the start); R = extension_factor, or round(target / #kept).
/// 3. Whitening: eigen-decomposition of the extended covariance C = X X^T / N; eigenvalues
///    below the mean of the lower half are dropped (regularisation); Z = D^-1/2 V^T X.
/// 4. For each of n_iterations candidates: w0 = Z(:, n*) at the instant n* of the largest
///    activity ||Z(:, n)||^2 not yet used (instants within +-R samples are then used too);
///    fixed-point iterations w <- E[z g(w^T z)] - E[g'(w^T z)] w, Gram-Schmidt deflation
///    against every earlier candidate's w, normalisation, until |1 - |w_new . w|| < tolerance;
///    the sign makes the source's skewness positive.
/// 5. Refinement (CKC-style MU filter update): w <- mean of z at the detected discharges, kept
///    while the local CoV of the inter-spike intervals (median CV2, firing.hpp) decreases.
/// 6. Spike detection on t = s |s| (firing.hpp: detect_spikes()), SIL.
/// 7. Acceptance by what identifies a source: SIL >= sil_threshold and >= min_discharges; the
///    firing's regularity only as a guard against noise: the local CoV (median CV2, which ramps,
///    pauses and doublets do not raise, 1.0 for a Poisson train) <= max_local_cov_isi. A unit
///    sharing >= duplicate_fraction of the discharges of the smaller one (within
///    duplicate_tolerance_ms after the best lag within duplicate_max_lag_ms) with an accepted
///    unit is a duplicate: the one with the higher SIL is kept. The search runs through its
///    budget of candidates, n_iterations (0: half the number of kept channels, at least 40) plus
///    candidates_per_unit for every unit accepted; rejections never end it early.
/// 8. Peel-off: the accepted unit's spike-triggered average of Z (+- peel_off_window_ms / 2)
///    is subtracted from Z at each discharge, so that later candidates find other units.
/// Per unit: discharges, filter f = W^T w on the extended channels (#channels x R; 0 for
/// rejected channels; s(n) = sum_c,d f(c, d) x_c(n - d) on the filtered, mean-free EMG),
/// the source (IPT, scaled so that its mean at the discharges is 1), MUAP of the filtered EMG on
/// every channel (all units' MUAPs by least squares at once, joint_muaps(): the spike-triggered
/// average less the other units' overlapping discharges), SIL, PNR, firing statistics and review
/// flags (firing.hpp). The neural
/// drive is the sum of all units' spike trains smoothed by a unit-area Hann window.
///
/// Threads: sums over samples are taken in fixed blocks combined in a fixed order, every other
/// parallel loop computes independent items: results are identical at any thread count.

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "myotwin/core/progress.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/forward/io/emg_file.hpp"
#include "myotwin/inversion/firing.hpp"
#include "myotwin/inversion/preprocess.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::inversion {

/// Contrast function of the fixed-point iteration: G(x) = x^3 / 3 (skew), log cosh x, x^4 / 4.
enum class Contrast { skew, log_cosh, kurtosis };

/// "skew", "log_cosh" or "kurtosis".
std::string to_string(Contrast contrast);

/// Parameters of decompose(). Config section `decompose` (keys = field names, plus those of
/// PreprocessParams).
struct DecomposeParams {
  /// Preprocessing (same section).
  PreprocessParams preprocess;
  /// Extension factor R (>= 1; 0: round(target_extended_channels / #kept channels), >= 1).
  std::int64_t extension_factor = 0;
  /// #kept channels x R aimed at when extension_factor = 0 (>= 1).
  double target_extended_channels = 1000.0;
  /// Candidate sources (outer iterations) before any unit is found (>= 0; 0: half the number of
  /// kept channels, at least 40).
  std::int64_t n_iterations = 0;
  /// Candidates added to the budget for every accepted unit (>= 0).
  std::int64_t candidates_per_unit = 1;
  /// Fixed-point iterations per candidate at most (>= 1).
  std::int64_t max_fixed_point_iterations = 75;
  /// Convergence tolerance on 1 - |w_new . w| (> 0).
  double tolerance = 1e-4;
  /// Contrast function (key `contrast`: "skew", "log_cosh", "kurtosis").
  Contrast contrast = Contrast::skew;
  /// CoV-of-ISI refinement steps at most (>= 0).
  std::int64_t max_refinement_iterations = 10;
  /// SIL acceptance threshold, in [0, 1].
  double sil_threshold = 0.9;
  /// Minimum distance between detected discharges [ms] (> 0).
  double min_peak_distance_ms = 10.0;
  /// Fewest discharges of an accepted unit (>= 2).
  std::int64_t min_discharges = 10;
  /// Largest local CoV of ISI (median CV2) of an accepted unit (> 0). Motor units fire with a
  /// CoV of 0.1-0.3 in steady contractions, and the median CV2 of Gaussian intervals of CoV c
  /// is 0.95 c, whatever the ramps, pauses and doublets; a Poisson train (spikes picked from
  /// noise) has 1.0, a mixture of two units 0.4-1. The real tibialis anterior trains beside the
  /// project have 0.07-0.21.
  double max_local_cov_isi = 0.3;
  /// Intervals shorter than this are doublets [ms] (> 0): counted, left out of CoV and rate.
  double doublet_isi_ms = 20.0;
  /// ISIs longer than this are pauses, left out of CoV and rate [s] (> 0).
  double max_isi_s = 0.5;
  /// Review flags (firing.hpp): PNR below [dB], CoV of ISI above, doublet and pause fractions
  /// above (keys review_min_pnr_dB, review_max_cov_isi, review_max_doublet_fraction,
  /// review_max_pause_fraction).
  ReviewLimits review;
  /// Fraction of shared discharges that makes two units one, in (0, 1].
  double duplicate_fraction = 0.3;
  /// Tolerance of a shared discharge [ms] (>= 0).
  double duplicate_tolerance_ms = 0.5;
  /// Largest lag searched between two units [ms] (>= 0).
  double duplicate_max_lag_ms = 25.0;
  /// After the search, each unit's filter from its discharges on the whole recording (not the
  /// peeled-off data) and its discharges detected again (AcceptedUnits::refine(), MUedit's
  /// refineMUs). Off by default until its yield is measured on the benchmark cases.
  bool refine_on_recording = false;
  /// Subtract accepted units from the whitened data.
  bool peel_off = true;
  /// Window of the peel-off average [ms] (> 0).
  double peel_off_window_ms = 50.0;
  /// Window of the MUAPs [ms], centred on the discharge (> 0).
  double muap_window_ms = 50.0;
  /// Length of the Hann window that smooths the neural drive [ms] (> 0).
  double drive_window_ms = 400.0;
};

/// One decomposed motor unit.
struct MotorUnit {
  /// Discharge sample indices, 0-based, increasing.
  std::vector<std::int64_t> discharges;
  /// Separation filter on the extended channels, #channels x R (rows of rejected channels 0).
  Eigen::MatrixXd filter;
  /// Source (innervation pulse train), #samples, scaled to mean 1 at the discharges.
  Eigen::VectorXd source;
  /// MUAP, #channels x #window samples [V]; column k at sample offset muap_first_offset + k
  /// from the discharge.
  Eigen::MatrixXd muap;
  std::int64_t muap_first_offset = 0;
  double sil = 0.0;            ///< silhouette
  double pnr_dB = 0.0;         ///< pulse-to-noise ratio [dB]
  double cov_isi = 0.0;        ///< CoV of the regular inter-spike intervals (firing.hpp)
  double cov_isi_local = 0.0;  ///< median CV2 of the intervals (firing.hpp)
  double rate_pps = 0.0;       ///< mean discharge rate [pps] (1 / mean regular ISI)
  std::int64_t n_doublets = 0; ///< intervals < doublet_isi_ms
  std::int64_t n_pauses = 0;   ///< intervals > max_isi_s
  /// Review flags ("pnr", "cov_isi", "doublets", "pauses"), empty when none.
  std::vector<std::string> review;
  std::int64_t found_at = 0; ///< candidate (outer iteration) that found it
};

/// Counts of what the candidates became.
struct DecomposeStats {
  std::int64_t n_candidates = 0;
  std::int64_t n_converged = 0;              ///< converged within max_fixed_point_iterations
  std::int64_t n_low_sil = 0;                ///< SIL below threshold
  std::int64_t n_few_spikes = 0;             ///< fewer than min_discharges
  std::int64_t n_irregular = 0;              ///< local CoV of ISI above max_local_cov_isi
  std::int64_t n_duplicates = 0;             ///< duplicates of an accepted unit
  std::int64_t n_whitened = 0;               ///< dimensions kept by the whitening
  std::int64_t n_fixed_point_iterations = 0; ///< over all candidates
  double time_preprocess_s = 0.0, time_whiten_s = 0.0, time_iterations_s = 0.0;
  double time_refine_s = 0.0; ///< refine_on_recording (part of time_iterations_s)
};

/// The output of decompose().
struct Decomposition {
  double fs_Hz = 0.0;
  std::int64_t n_samples = 0;
  std::int64_t n_channels = 0;
  std::int64_t extension_factor = 0;
  /// Accepted units, in the order found.
  std::vector<MotorUnit> units;
  /// Neural drive [pps summed over units], #samples.
  Eigen::VectorXd neural_drive_pps;
  /// Preprocessing result (filtered signals, channel report).
  PreprocessResult preprocessing;
  DecomposeStats stats;
  /// The units' discharges as the search found them, before refine_on_recording (empty without
  /// it): what the refinement changed.
  std::vector<std::vector<std::int64_t>> discharges_before_refinement;
};

/// Reads DecomposeParams (and the PreprocessParams) from the config section `decompose`.
/// \throws BadInput naming the key, value and expectation.
DecomposeParams read_decompose_params(ConfigReader& section);

/// Checks the parameters by reading to_json(params) back with read_decompose_params(), whose
/// declarations state each range once. \throws BadInput naming the key and value.
void validate(const DecomposeParams& params);

/// The parameters as JSON (the layout read_decompose_params() reads).
nlohmann::json to_json(const DecomposeParams& params);

/// The extension factor R the separation uses for `n_channels` kept channels: the configured
/// `extension_factor`, or round(target_extended_channels / n_channels), at least 1.
Eigen::Index extension_factor_for(double n_channels, const DecomposeParams& params);

/// What decompose() (and the separation of invert()) needs for `n_channels` x `n_samples` with
/// `threads` threads, estimated before it allocates (docs/reliability.md, "Bounded
/// resources"). Memory: the recording, its filtered copy and the kept channels (3 x #channels x
/// #samples doubles), the whitened extended signals (#channels x R rows of #samples floats) and
/// the (#channels x R)^2 matrices of the whitening: one covariance per thread, the covariance,
/// its eigenvectors, the whitening and dewhitening matrices (R the extension factor as the
/// separation chooses it). Time on 2 cores: whitening 3e-10 s x (#channels x R)^2 x #samples,
/// candidates 1.3e-8 s x (#channels x R) x #samples each, twice the base budget of candidates
/// (n_iterations, or max(40, #channels / 2)): every accepted unit adds candidates_per_unit.
RunEstimate estimate_decompose(double n_channels, double n_samples, const DecomposeParams& params,
                               int threads);

/// Decomposes `recording`. Progress: task "decompose" over the candidates (log lines name each
/// accepted unit). \throws BadInput for invalid params, all channels rejected, or a recording
/// too short for the extension (#samples < 4 x #kept channels x R); NumericalError when the
/// whitening finds no signal.
Decomposition decompose(const forward::EmgRecording& recording, const DecomposeParams& params,
                        const ProgressCallback& progress = {});

} // namespace myotwin::inversion
