#pragma once
/// \file emg_file.hpp
/// EMG files, both ways. Writing synthesised EMG with its ground truth: `emg.h5` (HDF5, the
/// project's array format) and a MATLAB v5 `.mat` in the DEMUSE layout that openhdemg
/// (`emg_from_demuse`) and MATLAB tools read (docs/formats.md); reading any recording for
/// decomposition or noise calibration (read_emg()).
///
/// Reading multichannel EMG from the project's `emg.h5`, from MATLAB `.mat`
/// files (v5 and v7.3) in the layouts that DEMUSE, MUedit and openhdemg write, or from CSV.
///
/// Formats (docs/inversion.md):
/// - `.h5` / `.hdf5`: dataset `emg` (#channels x #samples [V]) with attribute `fs_Hz` (on the
///   dataset or the root; EmgReadOptions::fs_Hz when it has none), optional
///   `channels/grid_row_col` (#channels x 2).
/// - `.mat`: the sampling rate in a numeric scalar `fsamp` (or `fs_Hz`, or a struct `signal`
///   with fields `data` and `fsamp`, as MUedit saves); the signal in `SIG` (a cell grid of
///   rows x columns, each a 1 x #samples or #samples x 1 vector, empty cells for missing
///   electrodes: channel order is MATLAB's column-major cell order and grid_row_col the cell's
///   position), or a numeric matrix `SIG`, `data` or `Data` of #channels x #samples (a matrix
///   with more rows than columns is taken as #samples x #channels, as OT BioLab exports).
/// - `.csv`, `.tsv`, `.txt` (text tables separated by commas, semicolons, tabs or blanks, as the
///   first row shows): optional comment lines `# fs_Hz = 2048`; a header line naming the columns
///   (a first row of numbers is data instead: the columns are named ch0, ch1, ...); one row per
///   sample. A column named `time_s`, `time`, `t` or `t_s` (or the first, with
///   EmgReadOptions::time_column) gives the sample times (uniform spacing, from which fs_Hz
///   follows when not given otherwise); every other column is a channel.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/mat_file.hpp"
#include "myotwin/forward/electrodes/electrodes.hpp"
#include "myotwin/forward/emg/emg.hpp"

namespace myotwin::forward {

/// Properties of the simulated units, written beside the discharges as ground truth. Every
/// member is optional (empty = not written); a non-empty member has one entry (row) per unit.
struct UnitProperties {
  /// Unit ids used in `truth/spikes/<id>`; empty = 0 .. #units - 1.
  std::vector<std::int64_t> unit_id;
  /// Name of the muscle of each unit.
  std::vector<std::string> muscle;
  /// Depth of the territory centre below the skin [m].
  Eigen::VectorXd depth_m;
  /// Territory centre, #units x 3 [m].
  Eigen::MatrixXd territory_centre_m;
  /// Size: number of fibres.
  VectorXi64 n_fibres;
  /// Conduction velocity [m/s]: as the unit's MUAP shows it (anatomy::realised_cv_m_per_s(),
  /// its fibres' mean weighted by their share of the MUAP) in `simulate`'s truth.
  Eigen::VectorXd cv_m_per_s;
  /// End-plate position, #units x k (k = 1: along the fibre [m]; k = 3: a point [m]).
  Eigen::MatrixXd end_plate_m;
};

/// Where the channels are. Both members optional (empty = not written).
struct ChannelLayout {
  /// Grid position of each channel, #channels x 2 (row, column), 0-based.
  MatrixXi64 grid_row_col;
  /// Electrode centres, #channels x 3 [m].
  Eigen::MatrixXd position_m;
  /// Name of the grid (e.g. "GR10MM0808"); may be empty.
  std::string grid_name;
};

/// The channel layout of placed electrodes (grid row and column, centre, grid name), written
/// beside EMG.
ChannelLayout channel_layout(const ElectrodeLayout& layout);

/// Force of the simulated muscles beside the EMG (both members empty = not written).
struct MuscleForce {
  /// #muscles x #samples, each a fraction of that muscle's maximum force (see force.hpp).
  Eigen::MatrixXd fraction_of_max;
  /// Name of the muscle of each row.
  std::vector<std::string> muscles;
};

/// Writes `emg.h5` atomically: dataset `emg` (#channels x #samples [V]) with attribute `fs_Hz`
/// (also on the root), `emg_clean`, `snr_dB` (realised, per channel), group `truth` with
/// `truth/unit_id` and one int64 dataset of 0-based discharge sample indices per unit
/// (`truth/spikes/<unit id>`), the unit properties under `truth/units/` (`depth_m`,
/// `territory_centre_m`, `n_fibres`, `cv_m_per_s`, `end_plate_m`, `muscle_index` with attribute
/// `muscles` = the names joined by ';'), and the layout under `channels/` (`grid_row_col`,
/// `position_m`, attribute `grid_name`). `reference` (optional, #samples): the excitation or
/// force, written as `reference`. `force` (optional): dataset `force` (#muscles x #samples,
/// fraction of each muscle's maximum) with attribute `muscles` (names joined by ';').
/// \throws BadInput when a property or the layout does not have one row per unit / channel;
/// IoError when the file cannot be written.
void write_emg_h5(const std::filesystem::path& path, const EmgResult& emg,
                  const UnitProperties& units = {}, const ChannelLayout& layout = {},
                  const Eigen::Ref<const Eigen::VectorXd>& reference = Eigen::VectorXd(),
                  const MuscleForce& force = {});

/// Writes a MATLAB v5 `.mat` atomically in the DEMUSE layout: `SIG` (cell, grid rows x grid
/// columns when the layout has grid_row_col, else #channels x 1, each a 1 x #samples double
/// [V]; empty cells for unused grid positions), `fsamp` [Hz], `MUPulses` (1 x #units cell of
/// 1 x n double, 1-based sample indices), `IPTs` (#units x #samples, 1 at each discharge),
/// `ref_signal` (1 x #samples: `reference`, or zeros), `SIG_clean` (like SIG, noise-free) and
/// `unit_id`, `IED` (inter-electrode distance [mm]: the median distance between grid neighbours,
/// 0 without a grid; openhdemg's DEMUSE loader requires it), and, when given, `force` (#muscles x
/// #samples, rows as in emg.h5). The file's header text is fixed (no creation time): the same
/// data give the same bytes. v5 limits a
/// variable to 2^31 bytes: larger signals throw (use emg.h5). MUPulses reads back with
/// read_discharges_mat(). \throws BadInput for a layout of the wrong size or a signal too large for
/// v5; IoError when the file cannot be written.
void write_emg_mat(const std::filesystem::path& path, const EmgResult& emg,
                   const UnitProperties& units = {}, const ChannelLayout& layout = {},
                   const Eigen::Ref<const Eigen::VectorXd>& reference = Eigen::VectorXd(),
                   const MuscleForce& force = {});

/// The DEMUSE `SIG` cell of `signal` (#channels x #samples): grid rows x grid columns when
/// `grid_row_col` has a (row, column) per channel, each a 1 x #samples double, 0 x 0 where the
/// grid has no electrode; #channels x 1 without a grid. Shared by emg.mat and
/// decomposition.mat. \throws BadInput naming `where` for two channels at one grid position.
mat::Array demuse_signal_cell(const Eigen::MatrixXd& signal, const MatrixXi64& grid_row_col,
                              const std::string& where);

/// The DEMUSE `MUPulses` cell: 1 x #units, each a 1 x n double of the given 1-based sample
/// indices (0 x 0 for a unit without discharges).
mat::Array demuse_pulses_cell(const std::vector<std::vector<std::int64_t>>& one_based);

/// The inter-electrode distance [mm] that DEMUSE files carry as `IED`: the median distance
/// between grid neighbours (same row or column, one step apart); 0 without a grid or positions.
double inter_electrode_distance_mm(const MatrixXi64& grid_row_col,
                                   const Eigen::MatrixXd& position_m);

// ---- Reading
/// A multichannel recording.
struct EmgRecording {
  /// The file it was read from (for messages).
  std::filesystem::path source;
  /// Sampling rate [Hz].
  double fs_Hz = 0.0;
  /// Signals, #channels x #samples [V, or the file's unit].
  Eigen::MatrixXd emg;
  /// Grid position (row, column) of each channel, #channels x 2, 0-based; empty when unknown.
  MatrixXi64 grid_row_col;
  /// Electrode centres, #channels x 3 [m] (emg.h5 `channels/position_m`); empty when unknown.
  Eigen::MatrixXd position_m;
  /// Channel names (CSV header); empty when the file has none.
  std::vector<std::string> channel_names;
};

/// Options of read_emg().
struct EmgReadOptions {
  /// Sampling rate [Hz] to use when the file has none (CSV without `# fs_Hz`); when the file
  /// has one, the two must agree to 1e-6 relative.
  std::optional<double> fs_Hz;
  /// Declared duration [s]: the recording must have round(duration_s * fs_Hz) samples (+-1).
  std::optional<double> duration_s;
  /// HDF5: the dataset holding the signal; empty: `emg`, or `noise` when only that exists (as
  /// `myotwin noise generate` writes).
  std::string dataset;
  /// Text tables: the first column is the time [s] whatever its header says.
  bool time_column = false;
};

/// Reads a recording by extension (.h5/.hdf5, .mat, .csv) and checks it (check_recording()).
/// \throws IoError if the file is missing or unreadable; BadInput naming the file and variable
/// or line for a missing signal or sampling rate, a wrong shape, or a failed check.
EmgRecording read_emg(const std::filesystem::path& path, const EmgReadOptions& options = {});

/// Checks a recording: fs_Hz finite and > 0, at least 1 channel and 2 samples, every sample
/// finite (naming the first bad channel and sample), the grid layout of the right size, the
/// declared duration (if any) matching #samples / fs_Hz.
/// \throws BadInput naming the source.
void check_recording(const EmgRecording& recording, const EmgReadOptions& options = {});

} // namespace myotwin::forward
