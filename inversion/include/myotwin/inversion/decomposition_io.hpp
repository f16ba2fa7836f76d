#pragma once
/// \file decomposition_io.hpp
/// Writing a decomposition: `decomposition.h5` (the project's format), `summary.json` and a
/// MATLAB v5 `.mat` in the DEMUSE layout that MUedit and openhdemg open. Layouts in
/// docs/formats.md. Every file is written atomically.

#include <filesystem>

#include <nlohmann/json.hpp>

#include "myotwin/inversion/bmiss.hpp"
#include "myotwin/inversion/decompose.hpp"

namespace myotwin::inversion {

/// Writes `decomposition.h5`: root attributes fs_Hz, n_samples, n_channels, extension_factor,
/// n_units, source; `units/unit_id` (0 .. n - 1), `units/discharges/<id>` (int64, 0-based),
/// per-unit vectors `units/sil`, `units/pnr_dB`, `units/cov_isi`, `units/rate_pps`,
/// `units/n_discharges`; `units/sources` (#units x #samples), `units/filters` (3-D, #units x
/// #channels x R), `units/muaps` (3-D, #units x #channels x #window [V], attribute
/// first_offset_samples), `neural_drive_pps` (#samples), `channels/kept` and
/// `channels/rejected` (indices), `channels/rms_V`, and `channels/grid_row_col` when known.
/// \throws IoError when the file cannot be written.
void write_decomposition_h5(const std::filesystem::path& path, const Decomposition& result,
                            const forward::EmgRecording& recording);

/// Writes a MATLAB v5 `.mat`: `MUPulses` (1 x #units cell of 1 x n double, 1-based), `fsamp`,
/// `IPTs` (#units x #samples sources), `MUFilters` (1 x #units cell, #channels x R each),
/// `SIL`, `PNR`, `CoV_ISI` (1 x #units), `SIG` (the input EMG as a cell grid, or #channels x 1,
/// each 1 x #samples), `ref_signal` (1 x #samples, zeros), `neural_drive` (1 x #samples [pps]),
/// `discardChannelsVec` (1 x #channels, 1 = rejected). \throws BadInput when a variable exceeds
/// the v5 limit of 2 GiB; IoError when the file cannot be written.
void write_decomposition_mat(const std::filesystem::path& path, const Decomposition& result,
                             const forward::EmgRecording& recording);

/// The search's counts and timings, as the summary holds them: `n_whitened`, `candidates`
/// (total, converged, fixed_point_iterations, rejected_low_sil, rejected_few_discharges,
/// rejected_irregular, duplicates) and `time_s` (preprocess, whiten, iterations [s]).
nlohmann::json stats_json(const DecomposeStats& stats);

/// The summary: input, parameters, channel report, counts, timings (stats_json()) and per-unit
/// statistics.
nlohmann::json summary_json(const Decomposition& result, const forward::EmgRecording& recording,
                            const DecomposeParams& params);

/// Writes the fitted motor-unit properties of the model-informed separation of `muscles` (the
/// names of the muscles searched, in order; FittedProperties::muscle indexes them):
/// `json_path` (per unit: territory centre and its SD, radius, depth below the skin, fibre count,
/// end-plate shift, CV, each with its spread over the near-best starts, amplitude scale and
/// relative residual, lengths in mm; with several muscles also the unit's muscle) and `h5_path`
/// (dataset `properties`, #units x 8, SI units, its columns named in an attribute; with several
/// muscles also `muscle_index`, per unit). \throws IoError when a file cannot be written.
void write_fitted_properties(const std::filesystem::path& json_path,
                             const std::filesystem::path& h5_path,
                             const std::vector<FittedProperties>& properties,
                             const std::vector<std::string>& muscles);

} // namespace myotwin::inversion
