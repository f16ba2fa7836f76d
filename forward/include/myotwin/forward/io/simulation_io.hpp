#pragma once
/// \file simulation_io.hpp
/// The files of a surface EMG simulation (`myotwin simulate`; layouts in docs/formats.md):
/// muaps.h5, emg.h5 with the ground truth and the force, the DEMUSE-layout emg.mat, and
/// montages.h5 (the spatial filters of the first grid); and the summary of a simulation (per
/// unit its largest MUAP, per muscle its force) that simulate_report.json holds.

#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "myotwin/forward/electrodes/electrodes.hpp"
#include "myotwin/forward/emg/montage.hpp"
#include "myotwin/forward/simulation.hpp"

namespace myotwin::forward {

/// Where write_simulation() writes; an empty path is not written.
struct SimulationFiles {
  std::filesystem::path muaps, emg, emg_mat, montages;
};

/// Writes the files of `sim` recorded by the electrodes `layout`. The excitation is written as
/// the EMG's reference signal when it is sampled like the EMG. In emg.mat, a layout with needles
/// gets one SIG cell per channel. `montages` (may be empty: no file) are applied to the first
/// grid's channels; `ring` closes them around a wrapped grid with evenly spread columns.
/// \throws IoError when a file cannot be written.
void write_simulation(const SimulationFiles& files, const EmgSimulation& sim,
                      const ElectrodeLayout& layout, const std::vector<Montage>& montages,
                      bool ring);

/// The summary of `sim`: n_units, units_per_muscle, muap_fs_Hz, muap_tail_samples_dropped,
/// emg_fs_Hz, muap_peak_to_peak_V [lowest, highest], per unit (unit_id, muscle, n_fibres,
/// depth_mm, peak_to_peak_uV and channel of its largest MUAP channel, duration_ms where |v|
/// exceeds 5 % of its peak, n_discharges, twitch) and per muscle the force (mean of the second
/// half and peak, fractions of the maximum).
nlohmann::json simulation_summary(const EmgSimulation& sim);

} // namespace myotwin::forward
