#pragma once
/// \file emg_input.hpp
/// Reading multichannel EMG for decomposition, from the project's `emg.h5`, from MATLAB `.mat`
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

namespace myotwin::inversion {

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

} // namespace myotwin::inversion
