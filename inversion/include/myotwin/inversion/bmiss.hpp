#pragma once

/// \file bmiss.hpp
/// Model-informed source separation (after the biophysical-model-informed source separation
/// of Halatsis, Mamidanna, Pereira and Farina 2025, rebuilt on this subject's own forward
/// model, forward/muap_model.hpp, instead of a neural surrogate).
///
/// The recording is preprocessed, extended and whitened once, exactly as by decompose()
/// (separation.hpp). A candidate unit theta (territory centre in the muscle's section, size,
/// end-plate shift, conduction velocity; the territory radius follows from the size as in the
/// anatomy, area proportional to fibre count) gives a MUAP through the model; the MUAP,
/// band-passed like the EMG, gives the extended mixing column c of the unit at the delay d*
/// where the R-sample window of the MUAP holds the most energy, c[i R + k] = m_i(d* - k), and
/// the separation vector w = W c / |W c| in the whitened space (W the whitening matrix): for
/// whitened data this is the matched filter of that column. The source s = w^T z is scored by
/// its excess kurtosis E[s^4] - 3 (s has unit variance).
///
/// Each iteration:
/// 1. Probe: n_probe candidates from a Halton sequence over the bounds (a centre drawn among
///    the section's cells so that every candidate lies in the muscle; log-uniform size;
///    uniform shift and CV), each scored.
/// 2. Refine: the n_refine best distinct candidates (centres at least a cell apart) are
///    improved by Nelder-Mead on the same score, parameters clamped to the bounds.
/// 3. Hand-over: each refined candidate's w, deflated against the accepted units, starts the
///    blind separation's refinement (separate_from(): handover_fixed_point fixed-point steps,
///    none by default, then the CoV-of-ISI refinement); the result is offered to the
///    accepted-unit set (SIL threshold, duplicates, peel-off: AcceptedUnits). With a finer
///    separation space (extension_factor) the refinement continues there from the spike-triggered
///    mean of the candidate's discharges.
/// Accepted units are peeled off and their separation vectors deflate every later candidate,
/// so the search does not return to them (the published code did not remove found units).
///
/// Several muscles: the search may cover a list of muscles (each with its own MUAP model and
/// section); a candidate's muscle is then a discrete parameter. A probe draws a fibre seed among
/// all the muscles' seeds together (so each muscle is probed in proportion to its model fibres,
/// i.e. its section) and its point in that muscle's space; Nelder-Mead refines within the
/// candidate's muscle; the property fit probes every muscle and reports the muscle of its best
/// fit. A probe costs the same whatever the number of muscles, so the time per iteration does
/// not grow with it (the models' precomputation and memory do).
///
/// Properties: each accepted unit's spike-triggered MUAP (band-passed EMG) is fitted by least
/// squares through the model, MUAP(theta) (its own amplitude; MUAP(theta) * a with
/// fit_free_scale) at the best lag: n_fit_probe Halton points over
/// the bounds, then Nelder-Mead from the n_fit_starts best; reported with the residual and, as
/// an uncertainty, the spread of the parameters over the starts whose residual is within 10 %
/// of the best.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/core/progress.hpp"
#include "myotwin/forward/source/muap_model.hpp"
#include "myotwin/inversion/decompose.hpp"
#include "myotwin/inversion/separation.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::inversion {

/// Parameters of invert() (config section `invert`; `separation` is read from `decompose`).
struct BmissParams {
  DecomposeParams separation;                ///< preprocessing, extension, refinement, acceptance
  std::int64_t n_iterations = 10;            ///< key `n_iterations` (>= 1)
  std::int64_t n_probe = 1000;               ///< quasi-random candidates per iteration (`n_probe`)
  std::int64_t n_refine = 10;                ///< candidates refined and handed over per iteration
  std::int64_t nelder_mead_evaluations = 60; ///< per refined candidate (`nelder_mead_evaluations`)
  std::int64_t n_fit_probe = 200;            ///< quasi-random points probed by the property fit
  /// Fit the MUAP's amplitude freely (`fit_free_scale`, default false): the fit then sees only
  /// its shape, and the fibre count, which mostly scales the amplitude, is lost; by default the
  /// model's own amplitude in volts is fitted (the scale is reported).
  bool fit_free_scale = false;
  std::int64_t n_fit_starts =
      3; ///< Nelder-Mead starts of the fit: its best probes (`n_fit_starts`)
  /// Fixed-point iterations at most when a refined candidate is handed over to the blind
  /// separation (`handover_fixed_point`, default 0: the CoV-of-ISI refinement only): the model's
  /// vector is already near the unit, and the skew contrast pulls it to outliers or to another
  /// unit (true-MUAP bound at 20 dB, 100 units: 13 units with 3 iterations, 19 with none; at
  /// R = 10, 16 and 35).
  std::int64_t handover_fixed_point = 0;
  /// A hand-over that fails acceptance (too few discharges, low SIL, high CoV of ISI) is tried
  /// again from the same vector with the blind separation's full fixed-point iterations
  /// (`handover_retry`): the two starts find different units.
  bool handover_retry = true;
  /// Extension factor of a finer separation space (`extension_factor`, default 0: none, the
  /// search space's). The model's candidates are always searched in the whitened space of the
  /// decompose extension (about 1000 extended channels), where a matched filter built from an
  /// approximate MUAP still gives a peaky source (at R = 10 the best probe's kurtosis fell from
  /// 4.3 to 1.5). With a finer space, each candidate is refined in the search space, its
  /// discharges' spike-triggered mean of the finer space starts the refinement there, and an
  /// accepted unit is deflated and peeled off in both. The finer space separates more units when
  /// the MUAPs are exact (true-MUAP bound at 20 dB in the 100-unit benchmark: 19 units at R = 3,
  /// 35 at R = 10), but BMISS through it found 14 (15 in one space): the transfer, not the
  /// space, is the limit (docs/benchmarks.md).
  std::int64_t extension_factor = 0;
  /// Successive cancellation (`cancellation`, default false): after each iteration, every
  /// accepted unit is subtracted from the band-passed recording (subtract_units(): MUAPs
  /// estimated jointly, an amplitude and shift per discharge, missed discharges found by the
  /// MUAP and added to the train) and the residual is extended and whitened again, so that the
  /// units left are whitened against fewer interferers. In the 100-unit benchmark at 20 dB
  /// (R = 3), exact removal round by round would let the true-MUAP hand-over recover 39 units
  /// instead of 19; this subtraction at the true discharges recovers 20, because the background
  /// averaged into each MUAP estimate is subtracted with it, and through BMISS 14 instead of 15
  /// without, at twice the time per iteration (docs/benchmarks.md). Off until that is solved.
  bool cancellation = false;
  double size_min_fibres = 0.0; ///< size bounds [real fibres] (0: the pool's range)
  double size_max_fibres = 0.0;
  double cv_min_m_per_s = 3.0; ///< CV bounds [m/s] (`cv_min_m_per_s`, `cv_max_m_per_s`)
  double cv_max_m_per_s = 5.5;
  /// A muscle is searched only when some of its fibres lie within this distance of an electrode
  /// [m] (key `max_muscle_distance_mm`, default 30 mm: beyond that a surface electrode sees a
  /// unit's MUAP at a small fraction of its nearer neighbours'); a list of muscles none of which
  /// is that close is refused.
  double max_muscle_distance_m = 30e-3;
  /// The muscles searched (key `muscles`, names; empty: those of simulate.muscles, or every
  /// muscle of the anatomy when that is empty too). The command's --muscle overrides it.
  std::vector<std::string> muscles;
};

/// The separation parameters of the fine separation space (params.separation with
/// params.extension_factor, when set).
DecomposeParams separation_space(const BmissParams& params);

/// Reads `invert` (and the separation from `decompose` passed in). \throws BadInput.
BmissParams read_bmiss_params(ConfigReader& section, const DecomposeParams& separation);
nlohmann::json to_json(const BmissParams& params);

/// A fitted unit: its properties in physical units and the quality of the fit.
struct FittedProperties {
  std::size_t muscle = 0;         ///< index into the muscles searched (the fit's best)
  forward::UnitParameters theta;  ///< best fit
  forward::UnitParameters spread; ///< SD over the near-best starts (same fields)
  double amplitude_scale = 1.0;   ///< least-squares scale of the fitted model MUAP (1: exact)
  double relative_residual = 0.0; ///< |m - a MUAP(theta)| / |m| (a = 1 unless fit_free_scale)
  double depth_m = 0.0;           ///< depth of the centre below the skin [m] (NaN: unknown)
};

/// Per iteration.
struct BmissIteration {
  std::int64_t n_probed = 0;
  std::int64_t n_refined = 0;
  std::int64_t n_accepted = 0;    ///< new units this iteration
  std::int64_t n_units_total = 0; ///< accepted so far
  double best_score = 0.0;        ///< best kurtosis of the probe
  double time_s = 0.0;
};

/// A source handed over (hand_over()), whatever became of it: for a scoring that ignores
/// acceptance (the published work counted every candidate's source).
struct HandedOver {
  std::int64_t iteration = 0;
  /// Local maxima of the source above 0.3 of its largest value, at least the separation's
  /// min_peak_distance_ms apart (the larger first): the published detection.
  std::vector<std::int64_t> peaks;
};

/// The published detection of `s`: its local maxima above `fraction` of max(s), at least
/// `min_distance` samples apart (taken from the largest down; ties to the earlier sample),
/// returned in increasing order.
std::vector<std::int64_t> peaks_above(const Eigen::Ref<const Eigen::VectorXd>& s, double fraction,
                                      std::int64_t min_distance);

/// The result of invert().
struct BmissResult {
  Decomposition decomposition;              ///< as decompose() (units, filters, MUAPs, drive)
  std::vector<FittedProperties> properties; ///< per unit of decomposition.units
  std::vector<BmissIteration> iterations;
  std::vector<HandedOver> handed_over; ///< every source handed over, in order
};

/// A candidate's score: the excess kurtosis of its source, and its separation vector
/// (whitened space, deflated, unit norm; empty when nothing is left after the deflation).
struct CandidateScore {
  double kurtosis = -3.0;
  Eigen::VectorXd w;
};

/// The memory and time of an inversion, estimated before it allocates (docs/reliability.md,
/// "Bounded resources" and "Time estimates"). Memory: the larger of the MUAP model's
/// precomputation and the model it keeps plus the separation's extended and whitened recording
/// (forward::MuapModel::estimate_memory(), estimate_decompose()) of a recording of `n_rows`
/// channels x `n_samples`; the forward model itself, loaded before, is not in it. Time: the
/// model's precomputation (model fibres x channels x passes), the whitening, and per iteration
/// the probes and Nelder-Mead evaluations (each a source over the whitened recording) and the
/// hand-overs; the property fit of the units found is not in it.
/// With several muscles the models' memory and precomputation add up (one model is built at a
/// time, so the peak is the kept models plus the largest build's excess).
RunEstimate estimate_invert(double n_rows, double n_samples,
                            const std::vector<const anatomy::MuscleModel*>& muscles,
                            Eigen::Index n_channels, const forward::MuapModelParams& model_params,
                            const BmissParams& params, int threads);

/// One muscle searched by invert(): its MUAP model (built for the recording's electrodes, in
/// order) and its anatomy (fibres, pool, seed plane). Both must outlive the call.
struct SearchMuscle {
  const forward::MuapModel* model = nullptr;
  const anatomy::MuscleModel* muscle = nullptr;
};

/// The shortest distance from any point of the fibres of `fibres` to any of `electrodes_m`
/// (#electrodes x 3) [m]; infinity without fibres or electrodes. invert's CLI searches only the
/// muscles within BmissParams::max_muscle_distance_m of the grid.
double distance_to_electrodes(const anatomy::MuscleFibres& fibres,
                              const Eigen::Ref<const Eigen::MatrixX3d>& electrodes_m);

/// Model-informed separation of `recording` with `model`, the MUAP model of `muscle` built
/// for the recording's electrodes in the same order. The pool of `muscle` gives the size
/// bounds (0 in params) and the territory radius of a size (r = c sqrt(N), c the pool's
/// median r / sqrt(N)); its seed plane maps centres to 3-D for depths below `skin_points_m`
/// (#points x 3 [m]; empty: depth NaN).
/// \throws BadInput when the model's channel count differs from the recording's, and
/// whatever the separation rejects.

BmissResult invert(const forward::EmgRecording& recording, const forward::MuapModel& model,
                   const anatomy::MuscleModel& muscle,
                   const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                   const BmissParams& params, const ProgressCallback& progress = {});

/// invert() over several muscles at once (see the file comment): each unit's properties carry
/// the index of its muscle in `muscles`. With one muscle, the same bits as the overload above.
/// 	hrows BadInput for an empty list, models of different channels or rates, and as above.
BmissResult invert(const forward::EmgRecording& recording, const std::vector<SearchMuscle>& muscles,
                   const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                   const BmissParams& params, const ProgressCallback& progress = {});

/// The properties of one unit from its MUAP `sta` (#channels x #window [V], band-passed like
/// the recording, column k at the window's offset + k from the discharge: MotorUnit::muap) by
/// least squares through `model` in the search space of invert() (same bounds, probes and
/// starts; the best lag, to a fraction of a sample, is free). invert() calls it for every
/// accepted unit; the benchmark also calls it with the true MUAPs to separate the model's error
/// from the estimate's. \throws BadInput when the channel counts differ, for an empty, zero or
/// non-finite MUAP, for n_fit_starts < 1 or n_fit_probe < n_fit_starts, and as invert().
FittedProperties fit_properties(const Eigen::MatrixXd& sta, const forward::MuapModel& model,
                                const anatomy::MuscleModel& muscle,
                                const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                                const BmissParams& params);

/// fit_properties() over several muscles (probes over all, Nelder-Mead within each start's
/// muscle; FittedProperties::muscle the best's).
FittedProperties fit_properties(const Eigen::MatrixXd& sta,
                                const std::vector<SearchMuscle>& muscles,
                                const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                                const BmissParams& params);

/// The relative residual |sta - MUAP(theta)| / |sta| (a free amplitude with fit_free_scale)
/// of the model's MUAP at `theta` against `sta` (as fit_properties()), at the best lag to a
/// fraction of a sample: what the fit would score at `theta`. With `as_searched` the point is
/// first mapped into the search space of fit_properties() (clamped to its bounds, the territory
/// radius that of the size), so that a fitted residual above this one at the true parameters
/// means the search missed, and one below it means the model's minimum lies elsewhere.
/// \throws BadInput when the channel counts differ, for an empty, zero or non-finite MUAP, for
/// parameters outside the model's domain (MuapModel::muap()) and, with `as_searched`, as
/// invert() for size bounds that exclude the pool.
double model_residual(const Eigen::MatrixXd& sta, const forward::MuapModel& model,
                      const anatomy::MuscleModel& muscle, const forward::UnitParameters& theta,
                      const BmissParams& params, bool as_searched);

/// `muap` (#samples x #channels, zero outside its samples) band-passed like the recording by
/// the zero-phase filter of `filter` (preprocess.hpp), over its own #samples.
Eigen::MatrixXd band_passed_muap(const Eigen::Ref<const Eigen::MatrixXd>& muap, double fs_Hz,
                                 const PreprocessParams& filter);

/// The whitened extended mixing column W c of `muap` (#samples x #channels [V] at the
/// recording's rate, unfiltered): band-passed like the recording, at the delay whose R-sample
/// window holds the most energy (see the file comment). Its norm is the peak-to-background ratio
/// of the matched filter's output at a discharge of that unit alone (the whitened background has
/// unit variance in every direction): a unit is linearly separable when it is well above the
/// spike-detection threshold.
Eigen::VectorXd whitened_column(const Eigen::Ref<const Eigen::MatrixXd>& muap,
                                const WhitenedEmg& data, const PreprocessParams& filter);

/// The score of the separation vector that `muap` (#samples x #channels [V] at the
/// recording's rate, unfiltered) gives in `data` (see the file comment), deflated against
/// `basis`.
CandidateScore score_muap(const Eigen::Ref<const Eigen::MatrixXd>& muap, const WhitenedEmg& data,
                          const std::vector<Eigen::VectorXd>& basis,
                          const PreprocessParams& filter);

/// Step 3 for one separation vector `w` (whitened space): at most params.handover_fixed_point
/// fixed-point iterations and the CoV-of-ISI refinement from `w` (separate_from(), deflated
/// against `accepted`), then the offer to `accepted` stamped with `iteration`; with
/// params.handover_retry, a source that fails acceptance is separated again from `w` with the
/// full fixed-point iterations and offered too (each try counts as a candidate in `stats`).
/// Returns the last verdict, or nothing when `w` lies in the span of the accepted vectors. Used by
/// invert() and by the benchmark's upper bound (vectors from the true MUAPs).
/// With `record`, every source separated is appended to it (HandedOver).
std::optional<Verdict> hand_over(const Eigen::VectorXd& w, std::int64_t iteration,
                                 WhitenedEmg& data, AcceptedUnits& accepted,
                                 const BmissParams& params, DecomposeStats& stats,
                                 std::vector<HandedOver>* record = nullptr);

} // namespace myotwin::inversion
