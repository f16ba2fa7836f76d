#pragma once
// One function per section of the report. Each reads the files of its stage from the output
// folder with the project's readers and returns the section; the caller decides which stages are
// present (report.cpp).

#include <filesystem>

#include "../layout.hpp"
#include "page.hpp"

namespace myotwin::app::report {

/// EMG (forward/emg.h5): a few channels over time (min/max envelope), the RMS map over the
/// grid, the mean power spectrum, the force and excitation.
Section emg_section(const Layout& layout);
/// MUAPs (forward/muaps.h5, grid layout from forward/emg.h5): the MUAP over the whole grid of
/// chosen units (smallest, median, largest, shallowest, deepest) and peak-to-peak vs depth.
Section muap_section(const Layout& layout);
/// Decomposition (decomposition/decomposition.h5, score.json, the truth and force of
/// forward/emg.h5 when present): raster over the truth coloured by RoA, statistics table,
/// discharge rates over force.
Section decomposition_section(const Layout& layout);
/// Subject (anatomy/): muscle table, territories, fibre lengths; cross-sections of the label
/// volume when `subject` (subject.json) is given.
Section subject_section(const Layout& layout, const std::filesystem::path& subject);
/// Mesh (mesh/mesh_quality.json): dihedral-angle histogram and the counts it reports.
Section mesh_section(const Layout& layout);
/// Electrodes (forward/electrodes.json): the electrodes on the unwrapped skin.
Section electrodes_section(const Layout& layout);
/// Model-informed inversion (inversion/properties.json): fitted properties per unit.
Section inversion_section(const Layout& layout);
/// Needle EMG (iemg/emg.h5, iemg/muaps.h5): traces and MUAP templates.
Section needle_section(const Layout& layout);

} // namespace myotwin::app::report
