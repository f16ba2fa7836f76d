#pragma once
/// \file montage.hpp
/// Spatial filters (montages) of a surface grid, derived from monopolar signals with the real
/// grid geometry: single differential along the rows (the limb axis) or the columns, double
/// differential, and the Laplacian (normal double differential). A montage is a weight matrix
/// W, #derived x #channels, applied to EMG (W * emg, channels x samples) or to a MUAP
/// (muap * W^T, samples x channels). Each derived channel is anchored at one electrode (row,
/// column) and exists only where all the electrodes it needs exist.
///
/// With rows r and columns c of the grid, V(r, c) the monopolar signal:
/// - `sd_rows`:    V(r + 1, c) - V(r, c)                          anchor (r, c)
/// - `sd_columns`: V(r, c + 1) - V(r, c)                          anchor (r, c)
/// - `dd_rows`:    V(r + 1, c) - 2 V(r, c) + V(r - 1, c)          anchor (r, c)
/// - `dd_columns`: V(r, c + 1) - 2 V(r, c) + V(r, c - 1)          anchor (r, c)
/// - `laplacian`:  4 V(r, c) - V(r +- 1, c) - V(r, c +- 1)        anchor (r, c)
/// With `wrap_columns` (a grid that closes around the limb) column indices are taken modulo the
/// number of columns, so the last column has a neighbour in the first.

#include <string>
#include <vector>

#include <Eigen/Core>
#include <Eigen/SparseCore>

#include "myotwin/core/hdf5_io.hpp"

namespace myotwin::forward {

enum class Montage { monopolar, sd_rows, sd_columns, dd_rows, dd_columns, laplacian };

/// "monopolar", "sd_rows", ...
std::string to_string(Montage montage);
/// Parses a montage name. \throws BadInput naming the value and the allowed names.
Montage montage_from_string(const std::string& name);

/// The weights of a montage.
struct MontageWeights {
  Montage montage = Montage::monopolar;
  Eigen::SparseMatrix<double, Eigen::RowMajor> weights; ///< #derived x #channels
  MatrixXi64 anchor_row_col;                            ///< #derived x 2 (row, column)
};

/// The montage of a grid whose channels sit at `grid_row_col` (#channels x 2, 0-based; rows
/// with a negative entry, e.g. needles, take no part). Derived channels are ordered by anchor
/// row, then column.
/// \throws BadInput for a grid position used by two channels, or a grid with no derived
/// channel for this montage (e.g. `sd_rows` on a one-row grid), naming the montage.
MontageWeights montage_weights(const Eigen::Ref<const MatrixXi64>& grid_row_col, Montage montage,
                               bool wrap_columns = false);

} // namespace myotwin::forward
