#pragma once
/// \file benchmark.hpp
/// The model-informed separation benchmark (`myotwin bench bmiss`, issue 9, after the setting of
/// Halatsis et al. 2025): N motor units of one muscle of a subject, a grid of electrodes,
/// independent renewal discharges, white noise at several SNRs; for every noise level the
/// recording is separated
///   - by BMISS (invert() through the subject's MUAP model),
///   - blind (decompose() with the same budget of candidates: n_iterations x n_refine),
///   - with the true MUAPs (the upper bound: separation vectors from the true MUAPs, handed over
///     exactly as BMISS hands over its refined candidates, n_refine per iteration),
///   - by BMISS through a perturbed forward model (thicker fat, other conductivities),
/// and scored: units recovered (RoA >= min_roa at 0.5 ms) after each iteration, property errors
/// of the recovered units (depth, end-plate shift, CV, fibre count) for the fits to the
/// estimated and to the true MUAPs, and, with the upper bound, the separability of every true
/// unit (|W c|), the bound the noise alone sets, and what exact or estimated successive
/// cancellation could give. docs/inversion.md discusses the results.
///
/// Two settings. "one-muscle": every unit in one muscle (its whole pool), as above. "paper", the
/// published setting (Halatsis et al. 2025 as their code builds it): N units spread over several
/// muscles (settings.muscles, a muscle listed k times getting k shares: by default ECRB, ECRL,
/// PL, FCU, ECU, ED, FDS and FCU twice more, so FCU 33 of 100 and the others 11-12), each
/// muscle's units picked evenly over its own pool in recruitment order (so their sizes are the
/// pool's), searched by BMISS over all those muscles at once; in arms: (a) the recording's MUAPs
/// made by the MUAP model that inverts, at no noise and 20 dB, (b) the simulation's, at 20 and
/// 10 dB. Besides our scoring (RoA >= min_roa at 0.5 ms, one-to-one, after acceptance) it
/// counts the published one: a true unit is found when some source handed over, accepted or
/// not, has recall > 0.9 against it (its peaks above 0.3 of its maximum, exact-sample
/// coincidence at the best lag, false positives ignored), unique true units counted.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "myotwin/core/progress.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/forward/io/emg_file.hpp"
#include "myotwin/forward/simulation.hpp"
#include "myotwin/forward/source/muap_model.hpp"
#include "myotwin/forward/subject_model.hpp"
#include "myotwin/inversion/bmiss.hpp"
#include "myotwin/inversion/score.hpp"

namespace myotwin::inversion {

/// The benchmark's own settings (the command's options).
/// One arm of the paper setting: where the recording's MUAPs come from, and its noise levels
/// (+infinity: no noise).
struct BmissBenchArm {
  std::string muaps; ///< "model" or "simulation"
  std::vector<double> snr_dB;
};

struct BmissBenchSettings {
  /// "one-muscle" (all units in `muscle`) or "paper" (units spread over `muscles`, in `arms`).
  std::string setting = "one-muscle";
  /// The paper setting's muscles, one share per entry (see the file comment).
  std::vector<std::string> muscles = {"ECRB", "ECRL", "PL",  "FCU", "ECU",
                                      "ED",   "FDS",  "FCU", "FCU"};
  /// The paper setting's arms (empty: one arm of `muaps` at `snr_dB`).
  std::vector<BmissBenchArm> arms;
  /// Also bound successive cancellation with the true MUAPs (exact and estimated removal, round
  /// by round: many whitenings; the one-muscle setting's, off in the paper setting).
  bool cancellation_bounds = true;
  std::string muscle = "ED";                      ///< muscle whose units are simulated and searched
  std::int64_t n_units = 100;                     ///< motor units of the muscle (its whole pool)
  double duration_s = 10.0;                       ///< signal length [s]
  double rate_pps = 10.0;                         ///< mean discharge rate [pps]
  double isi_cov = 0.3;                           ///< CoV of the inter-spike intervals
  std::vector<double> snr_dB = {20.0, 10.0, 0.0}; ///< noise levels [dB] (+infinity: none)
  /// Relative change of fat thickness and conductivities in the perturbed model.
  double perturbation = 0.2;
  double min_roa = 0.9; ///< RoA at 0.5 ms that counts a unit as recovered
  /// Where the recording's MUAPs come from: "simulation" (every fibre of each unit through the
  /// lead fields, as `myotwin simulate`) or "model" (the MUAP model at each unit's own
  /// parameters: the model that inverts generates the data exactly, the published setting).
  std::string muaps = "simulation";
  /// Methods to run: any of bmiss, blind, upper, perturbed.
  std::vector<std::string> methods = {"bmiss", "blind", "upper", "perturbed"};

  [[nodiscard]] bool runs(const std::string& method) const;
  [[nodiscard]] bool paper() const { return setting == "paper"; }
  /// The distinct muscles of the setting, in order of first appearance (one-muscle: `muscle`).
  [[nodiscard]] std::vector<std::string> distinct_muscles() const;
};

/// How many of `n_units` each of the distinct muscles of `shares` gets: unit k goes to entry
/// k mod #entries (a muscle listed k times gets k shares), in the order of distinct_muscles().
std::vector<std::int64_t> units_per_muscle(const std::vector<std::string>& shares,
                                           std::int64_t n_units);

/// `n` of the pool's units (indices of those with fibres, in recruitment order `with_fibres`)
/// spread evenly over it: entry floor((i + 0.5) L / n) for i < n, L its size.
/// \throws BadInput when n exceeds L (naming `muscle`).
std::vector<std::size_t> spread_over_pool(const std::vector<std::size_t>& with_fibres,
                                          std::int64_t n, const std::string& muscle);

/// The published scoring: per iteration k = 1..n_iterations, how many distinct true units some
/// source of an iteration < k recovers (recall > min_recall: the source's peaks, `handed`,
/// coincide exactly with that share of the unit's discharges at the best lag within 50 ms).
std::vector<std::int64_t> published_recovered(const std::vector<HandedOver>& handed,
                                              const SpikeTrains& truth, std::int64_t n_iterations,
                                              double min_recall = 0.9);

/// What the benchmark runs on: the configuration's sections and the subject's forward models.
struct BmissBenchInputs {
  BmissBenchSettings settings;
  forward::SimulationParams simulate; ///< the run config's `simulate` section
  forward::MuapModelParams muap_model;
  BmissParams invert;
  std::uint64_t seed = 0;
  const forward::SubjectForwardModel* nominal = nullptr; ///< required
  /// The perturbed forward model; null: no perturbed run.
  const forward::SubjectForwardModel* perturbed = nullptr;
  forward::ChannelLayout channels; ///< of the nominal model's electrodes, written beside the EMG
  /// Folder of the recordings `emg_<SNR>dB.h5` (with their truth).
  std::filesystem::path recordings_dir;
  /// Time already spent building the forward models [s], counted in the report's total.
  double setup_time_s = 0.0;
};

/// The report: `json` (bench_bmiss.json) and the tables as Markdown (bench_bmiss.md).
struct BmissBenchReport {
  nlohmann::json json;
  std::string markdown;
};

/// Checks the settings before any work. \throws BadInput naming the option (an SNR that is NaN
/// or -infinity, an unknown setting, method or MUAP source, a non-positive count, duration or
/// rate, an empty muscle list in the paper setting).
void check_settings(const BmissBenchSettings& settings);

/// Runs the benchmark (check_settings() first). With `recordings_only`, writes the recordings and
/// returns an empty report. \throws BadInput when the muscle is not in the anatomy or an SNR is not
/// finite.
BmissBenchReport run_bmiss_benchmark(const BmissBenchInputs& in, bool recordings_only,
                                     const ProgressCallback& progress = {});

/// Writes the subject of the benchmark into `dir` (created): the labels `labels` (by absolute
/// path), the tissue table `tissues` with muscle `muscle` given `n_units` motor units (empty
/// `muscle`: every pool as the table has it) and, for
/// `scale` != 0, muscle conductivities times (1 + scale) and fat conductivities times
/// (1 - scale). Returns the subject file. \throws BadInput when `muscle` is not in `tissues`.
std::filesystem::path write_bench_subject(const std::filesystem::path& dir,
                                          const std::filesystem::path& labels,
                                          const std::filesystem::path& tissues,
                                          const std::string& muscle, std::int64_t n_units,
                                          double scale);

/// Independent renewal discharges [s]: Gaussian ISIs of mean 1 / rate and SD cov / rate (redrawn
/// below 20 ms), the first at a uniform phase of the first interval; unit u draws from
/// rng.split(u).
std::vector<std::vector<double>> renewal_discharges(std::size_t n_units, double duration_s,
                                                    double rate_pps, double cov, const Rng& rng);

/// Per decomposed unit: the true unit it recovers (RoA >= min_roa at 0.5 ms), or -1.
std::vector<std::int64_t> recovered_truth(const Decomposition& d, const SpikeTrains& truth,
                                          double min_roa);

/// Per unit, the separability that the noise alone allows: the matched filter's peak over the
/// band-passed noise with the whole MUAP (every sample, every channel) and no other unit,
/// sqrt(sum_c |m_c|^2 / (sigma_c^2 g)), m_c the band-passed MUAP of channel c, sigma_c that
/// channel's noise rms and g the noise power gain of the band-pass. No linear filter of any
/// extension does better; a unit below about 5 cannot be detected reliably by any.
std::vector<double> noise_limited_separability(const std::vector<Eigen::MatrixXd>& muaps,
                                               const Eigen::VectorXd& noise_rms_V, double fs_Hz,
                                               const PreprocessParams& filter);

} // namespace myotwin::inversion
