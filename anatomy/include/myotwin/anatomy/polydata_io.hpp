#pragma once
/// \file polydata_io.hpp
/// VTK XML files for ParaView: PolyData (`.vtp`: polylines (fibres) with per-point and
/// per-line data, and triangle surfaces) and UnstructuredGrid (`.vtu`: tetrahedral meshes with
/// per-cell data). Written with vtkXMLPolyDataWriter in appended binary
/// mode with zlib compression, atomically (temporary name, renamed when complete). Coordinates
/// are written as they are given, in metres (SI), as float64; no VTK type appears here.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <Eigen/Core>

namespace myotwin::anatomy {

/// A set of polylines stored flat: line `l` is points `offsets[l]` to `offsets[l + 1] - 1`.
struct Polylines {
  Eigen::MatrixX3d points_m;            ///< #points x 3 positions [m]
  std::vector<std::int64_t> offsets{0}; ///< #lines + 1 start indices; front 0, back #points
  /// Per-point arrays (name -> #points values), float64 in the file.
  std::map<std::string, Eigen::VectorXd> point_data;
  /// Per-point integer arrays (name -> #points values), int64 in the file.
  std::map<std::string, std::vector<std::int64_t>> point_data_int;
  /// Per-line arrays (name -> #lines values), float64 in the file.
  std::map<std::string, Eigen::VectorXd> cell_data;
  /// Per-line integer arrays (name -> #lines values), int64 in the file.
  std::map<std::string, std::vector<std::int64_t>> cell_data_int;

  /// Number of polylines.
  [[nodiscard]] std::int64_t n_lines() const {
    return static_cast<std::int64_t>(offsets.size()) - 1;
  }
  /// Number of points of all lines.
  [[nodiscard]] std::int64_t n_points() const { return points_m.rows(); }
};

/// Builds the flat form from one #points_l x 3 matrix [m] per line (no data arrays).
Polylines make_polylines(const std::vector<Eigen::MatrixX3d>& lines_m);

/// Writes polylines and their data arrays to a `.vtp` file atomically.
/// \throws BadInput (naming the file and the array) when offsets are not increasing from 0 to
/// #points, a line has fewer than 2 points, an array has the wrong length or an empty name, or
/// a name is used twice among the point (or the line) arrays; IoError when writing fails.
void write_polylines_vtp(const std::filesystem::path& path, const Polylines& lines);

/// Reads the polylines of a `.vtp` file with their point and line data (floating-point arrays
/// into point_data / cell_data, integer arrays into point_data_int / cell_data_int; only
/// single-component arrays). Other cells (vertices, polygons, strips) are ignored.
/// \throws IoError when the file is missing; BadInput when it is not a readable VTK PolyData
/// file.
Polylines read_polylines_vtp(const std::filesystem::path& path);

/// Writes a triangle surface to a `.vtp` file atomically.
/// \param vertices_m #vertices x 3 positions [m]
/// \param triangles  #triangles x 3 vertex indices (rows of vertices_m)
/// \param cell_data  per-triangle arrays (name -> #triangles values), float64 in the file
/// \throws BadInput for an index out of range or an array of the wrong length; IoError.
void write_surface_vtp(const std::filesystem::path& path,
                       const Eigen::Ref<const Eigen::MatrixX3d>& vertices_m,
                       const Eigen::Ref<const Eigen::MatrixX3i>& triangles,
                       const std::map<std::string, Eigen::VectorXd>& cell_data = {});

/// A triangle surface read from a `.vtp` file (polygons with 3 vertices).
struct SurfaceMesh {
  Eigen::MatrixX3d vertices_m;                      ///< #vertices x 3 positions [m]
  Eigen::MatrixX3i triangles;                       ///< #triangles x 3 vertex indices
  std::map<std::string, Eigen::VectorXd> cell_data; ///< per-triangle floating-point arrays
};

/// Reads the triangles of a `.vtp` file (polygons that are not triangles are BadInput).
/// \throws IoError when the file is missing; BadInput when it is not readable PolyData.
SurfaceMesh read_surface_vtp(const std::filesystem::path& path);

/// A tetrahedral grid with per-cell arrays, as stored in a `.vtu` file.
struct TetGrid {
  Eigen::MatrixX3d points_m;                                            ///< #points x 3 [m]
  Eigen::Matrix<std::int32_t, Eigen::Dynamic, 4, Eigen::RowMajor> tets; ///< #tets x 4 indices
  /// Per-cell integer arrays (name -> #tets values), int32 in the file.
  std::map<std::string, std::vector<std::int32_t>> cell_data_int;
  /// Per-cell 3-vectors (name -> #tets x 3), float64 in the file.
  std::map<std::string, Eigen::MatrixX3d> cell_vectors;
};

/// Writes a tetrahedral grid (VTK_TETRA cells) to a `.vtu` file atomically (appended binary,
/// zlib). \throws BadInput for an index out of range or an array of the wrong length; IoError.
void write_tets_vtu(const std::filesystem::path& path, const TetGrid& grid);

/// Reads a `.vtu` file whose cells are all tetrahedra, with its single-component integer and
/// 3-component floating-point cell arrays. \throws IoError when the file is missing; BadInput
/// when it is not a VTK UnstructuredGrid file, has no cells, or has a cell that is not a
/// tetrahedron (naming the cell and its VTK type).
TetGrid read_tets_vtu(const std::filesystem::path& path);

} // namespace myotwin::anatomy
