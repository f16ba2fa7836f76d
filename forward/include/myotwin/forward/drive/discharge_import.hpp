#pragma once
/// \file discharge_import.hpp
/// Real motor-unit discharge times, imported from decomposition results, to drive the model
/// instead of the Fuglevand pool (drive.hpp).
///
/// Formats:
/// - MATLAB `.mat` (v5 or v7.3, read with matio): a cell array `MUPulses` (one cell per unit,
///   each a non-empty real numeric vector of 1-based sample indices, strictly increasing) and a
///   numeric scalar `fsamp` [Hz], as written by DEMUSE, MUedit and the openhdemg exporters.
///   Time of a discharge = (index - 1) / fsamp [s].
/// - CSV: a header line `unit,time_s`, then one discharge per row: an integer unit id >= 0 and
///   a time [s] >= 0. Units are ordered by id; a unit's times are sorted. Blank lines and lines
///   starting with `#` are ignored. An optional comment line `# fs_Hz = 2048` gives the source
///   sampling rate.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

namespace myotwin::forward {

/// Discharge times read from a file.
struct ImportedDischarges {
  /// The file read.
  std::filesystem::path source;
  /// Sampling rate of the source [Hz]: `fsamp` of a MAT file, the `# fs_Hz` line of a CSV, or
  /// none.
  std::optional<double> fs_Hz;
  /// Per unit, in file order (MAT cell order, CSV ascending id): discharge times [s], sorted.
  std::vector<std::vector<double>> times_s;
  /// Per unit: 0-based sample indices at fs_Hz (index - 1 of a MAT file); empty for CSV input.
  std::vector<std::vector<std::int64_t>> sample_indices;
  /// Per unit: its id in the file (MAT: cell index from 0; CSV: the `unit` column).
  std::vector<std::int64_t> unit_ids;
};

/// Reads a MATLAB file (v5 or v7.3) with a `MUPulses` cell array and a scalar `fsamp`.
/// \throws IoError if the file is missing or not a MAT file matio can open; BadInput naming the
/// file and variable when MUPulses or fsamp is missing or of the wrong type/shape, a unit is
/// empty, or an index is not an integer >= 1 or not strictly increasing.
ImportedDischarges read_discharges_mat(const std::filesystem::path& path);

/// Reads a CSV of discharges (format in the file comment). \throws IoError if the file cannot
/// be read; BadInput naming the file and line for a bad header or row, or when there are no rows.
ImportedDischarges read_discharges_csv(const std::filesystem::path& path);

/// Reads by extension: `.mat` -> read_discharges_mat(), `.csv` -> read_discharges_csv().
/// \throws BadInput for another extension.
ImportedDischarges read_discharges(const std::filesystem::path& path);

/// Imported units assigned to the model's units by recruitment order.
struct DischargeMapping {
  /// #model units vectors: the discharge times [s] of the imported unit assigned to each model
  /// unit; empty for model units beyond the imported count.
  std::vector<std::vector<double>> times_s;
  /// #model units: index into ImportedDischarges::times_s of the assigned unit, or -1.
  std::vector<std::int64_t> imported_unit;
  /// Indices of imported units left over (more imported than model units), in recruitment
  /// order, for the caller to report.
  std::vector<std::int64_t> unassigned_imported;
  /// Number of model units without an imported unit.
  std::int64_t n_model_units_without_discharges = 0;
};

/// Maps imported units onto `n_model_units` model units (in recruitment order): the imported
/// unit with the earliest first discharge goes to model unit 0, the next to unit 1, and so on
/// (ties by file order).
DischargeMapping map_by_recruitment_order(const ImportedDischarges& imported,
                                          std::size_t n_model_units);

} // namespace myotwin::forward
