#pragma once
/// \file surface_import.hpp
/// Building a subject around one real muscle shape: a closed triangulated surface (STL, mm)
/// becomes a muscle label in a label volume, with subcutaneous fat and skin shells of given
/// thickness wrapped around it (by Euclidean distance from the muscle) and background around
/// them. Coordinates are taken as they are in the STL (converted from mm to metres) and used as
/// the physical (LPS) frame of the volume, whose axes are the STL's axes.
///
/// Config section (keys in mm, defaults shown):
/// \code
/// { "voxel_size_mm": 0.5, "fat_thickness_mm": 3.0, "skin_thickness_mm": 1.2,
///   "margin_mm": 4.0, "muscle_name": "muscle",
///   "tendon_start_mm": 0, "tendon_end_mm": 0, "tendon_start_fraction": 0,
///   "tendon_end_fraction": 0 }
/// \endcode
///
/// Tendon ends: the surface's voxels within a length (mm, or a fraction of the surface's length)
/// of each end along its principal axis (the direction of largest variance of the muscle voxel
/// centres, oriented so that its largest component is positive: "start" is the end at the lower
/// projection) become tendon labels `<muscle>_tendon_origin` (start) and
/// `<muscle>_tendon_insertion` (end), class tendon, of that muscle, so that the fibres stop at
/// them (the anatomy stage takes them as origin and insertion).

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/tissue_table.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::anatomy {

/// A triangulated surface with shared vertices.
struct TriangleSurface {
  Eigen::MatrixX3d vertices_m; ///< #vertices x 3 positions [m]
  Eigen::MatrixX3i triangles;  ///< #triangles x 3 vertex indices (rows of vertices_m)
};

/// Reads an STL file (ASCII or binary; coordinates in mm) and welds coincident vertices
/// (positions within 1e-6 of the bounding-box diagonal are merged); triangles that collapse
/// to a segment or point in the weld are dropped. Binary and ASCII are told apart by size
/// (binary: exactly 84 + 50 n bytes for the n triangles its header announces), so binary files
/// whose header starts with `solid` are read correctly.
/// \throws IoError when the file is missing or unreadable; BadInput (naming the file) for an
/// extension other than `.stl`, an empty file, a file that is neither valid binary nor ASCII
/// STL (with the line of an ASCII error), non-finite coordinates, or no non-degenerate triangle.
TriangleSurface read_stl(const std::filesystem::path& path);

/// Writes a surface as binary STL (coordinates in mm), atomically. Used by tests and to export
/// surfaces. \throws IoError on failure.
void write_stl(const std::filesystem::path& path, const TriangleSurface& surface);

/// Checks that `surface` is closed and manifold: every edge is shared by exactly two
/// triangles. \throws BadInput naming `name`, the number of boundary edges (edges of only one
/// triangle) and of non-manifold edges (edges of more than two), with an example edge position.
void check_closed_manifold(const TriangleSurface& surface, const std::string& name);

/// Volume enclosed by a closed surface [m^3] (divergence theorem; absolute value, so the
/// orientation of the triangles does not matter).
double enclosed_volume_m3(const TriangleSurface& surface);

/// Parameters of the import (config keys in mm, see the file comment).
struct SurfaceImportParams {
  double voxel_size_m = 0.0005;       ///< isotropic voxel size (`voxel_size_mm`, > 0)
  double fat_thickness_m = 0.003;     ///< fat shell around the muscle (`fat_thickness_mm`, >= 0)
  double skin_thickness_m = 0.0012;   ///< skin shell around the fat (`skin_thickness_mm`, >= 0)
  double margin_m = 0.004;            ///< background around the skin (`margin_mm`, >= 0)
  std::string muscle_name = "muscle"; ///< name of the muscle in the tissue table (`muscle_name`)
  std::int32_t skin_label = 1;        ///< label of the skin shell (fixed)
  std::int32_t fat_label = 2;         ///< label of the fat shell (fixed)
  std::int32_t muscle_label = 10;     ///< label of the muscle (fixed)
  /// Tendon at the start (lower projection) of the principal axis [m] (`tendon_start_mm`, >= 0).
  double tendon_start_m = 0.0;
  double tendon_end_m = 0.0; ///< tendon at the end of the principal axis [m] (`tendon_end_mm`)
  /// The same as a fraction of the surface's length along the axis (`tendon_start_fraction`,
  /// [0, 1); not with tendon_start_mm > 0).
  double tendon_start_fraction = 0.0;
  double tendon_end_fraction = 0.0;     ///< (`tendon_end_fraction`)
  std::int32_t tendon_start_label = 11; ///< label of the start tendon (fixed)
  std::int32_t tendon_end_label = 12;   ///< label of the end tendon (fixed)
};

/// Reads the import parameters from a config section (keys in mm). \throws BadInput for a
/// value out of range or a wrong type (unknown keys are reported by the parent's finish()).
SurfaceImportParams read_surface_import_params(ConfigReader& section);

/// A subject built around an imported muscle surface.
struct SurfaceSubject {
  LabelVolume volume;    ///< background 0, skin, fat, muscle and tendon labels (params' labels)
  TissueTable tissues;   ///< skin, fat (if their thickness > 0), the muscle and its tendons
  double length_m = 0.0; ///< the muscle voxels' extent along their principal axis [m]
  double tendon_start_m = 0.0; ///< length of the start tendon made [m] (0: none)
  double tendon_end_m = 0.0;   ///< length of the end tendon made [m] (0: none)
  Eigen::Vector3d axis = Eigen::Vector3d::UnitZ(); ///< the principal axis used for the tendons
};

/// Voxelises a closed surface (already checked) into a subject on an isotropic grid aligned
/// with the surface's axes, whose first voxel centre lies at the surface's bounding-box minimum
/// less fat + skin + margin. A voxel is muscle when its centre is inside the surface (ray
/// parity along the grid's k axis, with a watertight tie rule so that rays through edges and
/// vertices count each crossing once). Fat and skin are the other voxels whose centre lies
/// within fat, resp. fat + skin, thickness of the surface (exact point-to-triangle distance,
/// evaluated in a narrow band around the surface). `name` is used in messages.
/// \throws BadInput for invalid parameters, a grid over 2^29 voxels, or no muscle voxel (the
/// surface thinner than a voxel).
SurfaceSubject voxelise_surface(const TriangleSurface& surface, const SurfaceImportParams& params,
                                const std::string& name);

/// Reads an STL file, checks that it is closed and manifold, and voxelises it
/// (read_stl(), check_closed_manifold(), voxelise_surface()).
/// \throws IoError, BadInput (see those functions; messages name the file).
SurfaceSubject import_surface(const std::filesystem::path& stl_path,
                              const SurfaceImportParams& params);

} // namespace myotwin::anatomy
