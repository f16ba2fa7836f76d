#pragma once
/// \file score.hpp
/// Agreement of discharge trains: the rate of agreement (RoA) between two trains after the best
/// lag, and the one-to-one matching of decomposed units to true ones.
///
/// For trains A and B (sorted sample indices) and a lag l, the common discharges are the
/// largest set of pairs (a, b) with |a + l - b| <= tolerance, each discharge in at most one
/// pair (greedy in time order, which is optimal for intervals on a line when the tolerance is
/// below half the shortest interval). RoA = common / (common + only in A + only in B),
/// sensitivity = common / #B, precision = common / #A (B the reference). The best lag maximises
/// the common count over |l| <= max_lag: of the lags with the largest count, the run of
/// consecutive lags around the smallest |l| (the negative one on a tie), and its middle (a
/// tolerance of k samples gives a plateau 2k + 1 lags wide around the true lag).
///
/// Matching: every pair of a decomposed and a true unit is compared; pairs are taken greedily in
/// order of decreasing RoA (ties by indices) while both units are free and RoA >= min_roa.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

namespace myotwin {
class ConfigReader;
}

namespace myotwin::inversion {

/// Discharge trains of a set of units.
struct SpikeTrains {
  /// The file they came from.
  std::filesystem::path source;
  /// Sampling rate of the indices [Hz].
  double fs_Hz = 0.0;
  /// Unit ids (file order).
  std::vector<std::int64_t> unit_id;
  /// Per unit: sorted 0-based sample indices.
  std::vector<std::vector<std::int64_t>> samples;
  /// Length of the recording the indices refer to [samples], 0 when the file does not say
  /// (emg.h5: the columns of `emg`; decomposition.h5: attribute n_samples).
  std::int64_t n_samples = 0;
};

/// Reads discharge trains: `emg.h5` ground truth (`truth/unit_id`, `truth/spikes/<id>`,
/// root attribute fs_Hz), `decomposition.h5` (`units/discharges/<k>`, attribute fs_Hz), or a
/// MATLAB file with `MUPulses` (1-based) and `fsamp` (forward::read_discharges_mat()).
/// \throws IoError if the file cannot be read; BadInput naming the file for a missing layout, a
/// negative discharge index or one at or past the recording's end (when the file gives it).
SpikeTrains read_spike_trains(const std::filesystem::path& path);

/// Agreement of two trains at their best lag.
struct PairAgreement {
  /// Lag added to A's indices [samples].
  std::int64_t lag_samples = 0;
  std::int64_t common = 0;
  std::int64_t only_a = 0;
  std::int64_t only_b = 0;
  /// common / (common + only_a + only_b); 0 when both are empty.
  double roa = 0.0;
};

/// Common discharges of sorted trains `a` (shifted by `lag`) and `b` within `tolerance`
/// samples (see the file comment).
std::int64_t count_common(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b,
                          std::int64_t lag, std::int64_t tolerance);

/// The agreement at the best lag in [-max_lag, max_lag] [samples].
PairAgreement compare_trains(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b,
                             std::int64_t tolerance, std::int64_t max_lag);

/// Parameters of score().
struct ScoreParams {
  /// Tolerance on the discharge time [ms] (>= 0). Key `tolerance_ms`.
  double tolerance_ms = 0.5;
  /// Largest lag searched [ms] (0 to 1000). Key `max_lag_ms`.
  double max_lag_ms = 50.0;
  /// Smallest RoA that counts as a match, in [0, 1]. Key `min_roa`.
  double min_roa = 0.3;
};

/// One decomposed unit matched to a true unit.
struct UnitMatch {
  std::int64_t decomposed = 0; ///< index into the decomposition's units
  std::int64_t truth = 0;      ///< index into the truth's units
  PairAgreement agreement;
  double sensitivity = 0.0; ///< common / #true discharges
  double precision = 0.0;   ///< common / #decomposed discharges
};

/// The output of score().
struct ScoreResult {
  double fs_Hz = 0.0;
  std::int64_t tolerance_samples = 0;
  std::int64_t max_lag_samples = 0;
  std::int64_t n_decomposed = 0;
  std::int64_t n_truth = 0;
  /// Matches, in decreasing RoA.
  std::vector<UnitMatch> matches;
  /// Decomposed units without a match, and true units without one.
  std::vector<std::int64_t> unmatched_decomposed, unmatched_truth;
  /// RoA of every pair, #decomposed x #truth.
  Eigen::MatrixXd roa;
  /// Mean RoA, sensitivity and precision over the matches (0 without matches).
  double mean_roa = 0.0, mean_sensitivity = 0.0, mean_precision = 0.0;
};

/// Reads ScoreParams (keys as in ScoreParams). \throws BadInput naming the key.
ScoreParams read_score_params(ConfigReader& section);

/// Scores `decomposed` against `truth`. Indices at another rate are converted to the truth's
/// rate (rounded). \throws BadInput for a non-positive rate or invalid params.
ScoreResult score(const SpikeTrains& decomposed, const SpikeTrains& truth,
                  const ScoreParams& params = {});

/// The result as JSON (ids from the two trains).
nlohmann::json to_json(const ScoreResult& result, const SpikeTrains& decomposed,
                       const SpikeTrains& truth);

} // namespace myotwin::inversion
