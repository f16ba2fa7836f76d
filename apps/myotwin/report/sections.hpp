#pragma once
// One function per section of the report. Each reads the files of its stage from the output
// folder with the project's readers and returns the section; the caller decides which stages are
// present (report.cpp).

#include <filesystem>

#include "../layout.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/meshing/tet_mesh.hpp"
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
/// volume when `subject` (loaded from `subject_file`) is given.
Section subject_section(const Layout& layout, const std::filesystem::path& subject_file,
                        const anatomy::Subject* subject);
/// Mesh (mesh/mesh_quality.json; mesh/mesh.vtu as `mesh` when present): the cross-sections of
/// the Subject section with the cut tets' edges over them (without `subject`: the mesh cut at
/// fractions of its extent, edges only), the dihedral-angle histogram and the counts it reports.
Section mesh_section(const Layout& layout, const anatomy::Subject* subject,
                     const meshing::TetMesh* mesh);
/// Electrodes (forward/electrodes.json): the electrodes on the unwrapped skin over the modelled
/// muscles' projections (with `mesh` and anatomy/motor_units.h5), and the lead-field sensitivity
/// of the middle electrode of the first grid over the cross-section through it (with `mesh` and
/// forward/leadfields.h5).
Section electrodes_section(const Layout& layout, const meshing::TetMesh* mesh);
/// Model-informed inversion (inversion/properties.json): fitted properties per unit.
Section inversion_section(const Layout& layout);
/// Needle EMG (iemg/emg.h5, iemg/muaps.h5): traces and MUAP templates.
Section needle_section(const Layout& layout);

} // namespace myotwin::app::report
