#pragma once
/// \file emg_io.hpp
/// Writing synthesised EMG with its ground truth: `emg.h5` (HDF5, the project's array format)
/// and a MATLAB v5 `.mat` in the DEMUSE layout that openhdemg (`emg_from_demuse`) and MATLAB
/// tools read. Both layouts are documented in docs/formats.md.

#include <cstdint>
#include <filesystem>
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

} // namespace myotwin::forward
