#pragma once
// The dataset of a sweep (`myotwin sweep --dataset`, docs/scaling.md): the MUAPs and parameters
// of every simulated unit of every run, in chunk files of a bounded size with an index, for a
// training pipeline to stream.

#include <filesystem>
#include <string>
#include <vector>

#include "sweep_plan.hpp"

namespace myotwin::app {

/// Writes OUT/dataset/chunk_NNNNN.h5 and OUT/dataset/index.json from the runs of `plan` whose row
/// in `rows` (JSON text, one per run) has status ok, in the order of the plan. A chunk holds the
/// units of consecutive runs with the same channels, samples and sampling rate, up to
/// `chunk_bytes` of MUAPs (at least one unit): `muaps` (units x channels x samples [V]),
/// `run_index`, `unit_id`, and the units' parameters (`depth_m`, `n_fibres`, `cv_m_per_s`,
/// `territory_centre_m`, `end_plate_m`) as muaps.h5 has them; the index lists each chunk's
/// shape and, per run in it, where its units start in the chunk (`first_unit`) and in the run
/// (`run_first_unit`) and how many there are, and each run's subject and settings. Holds one chunk
/// in memory. Returns the number of units written. \throws IoError, BadInput when a run's
/// muaps.h5 cannot be read.
std::size_t write_sweep_dataset(const SweepPlan& plan, const std::vector<std::string>& rows,
                                const std::filesystem::path& out, double chunk_bytes);

} // namespace myotwin::app
