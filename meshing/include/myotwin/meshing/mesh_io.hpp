#pragma once
/// \file mesh_io.hpp
/// Mesh files: `mesh.vtu` (VTK XML UnstructuredGrid, appended binary, zlib; opens in ParaView)
/// with nodes in metres and cell data `tissue_label` (int32), `tissue_class` (int32: 0 muscle,
/// 1 fat, 2 skin, 3 bone, 4 tendon, 5 other) and `fibre_direction` (3 x float64, unit vector in
/// muscle tets, zero elsewhere); and the skin surface `skin.vtp` (the mesh's outer boundary).

#include <filesystem>

#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin::meshing {

/// Writes `mesh` to a `.vtu` file atomically. \throws BadInput for a label missing from
/// `tissues`; IoError when writing fails.
void write_mesh_vtu(const std::filesystem::path& path, const TetMesh& mesh,
                    const anatomy::TissueTable& tissues);

/// Reads a tet mesh from a `.vtu` file, e.g. one made elsewhere. Needs the cell array
/// `tissue_label`; `fibre_direction` is optional (zero when absent). Tets with negative volume
/// are reoriented. With `tissues`, every label must be in the table.
/// \throws IoError for a missing file; BadInput for a file that is not a tet mesh, lacks
/// `tissue_label`, has a degenerate (zero-volume) tet or a label missing from the table.
TetMesh read_mesh_vtu(const std::filesystem::path& path,
                      const anatomy::TissueTable* tissues = nullptr);

/// Writes the outer boundary of the mesh (its skin surface) as triangles to a `.vtp` file, with
/// the cell data `tissue_label` of the tet each triangle bounds. \throws IoError.
void write_boundary_vtp(const std::filesystem::path& path, const TetMesh& mesh);

} // namespace myotwin::meshing
