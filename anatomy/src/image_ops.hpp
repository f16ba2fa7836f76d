#pragma once
// Binary-image operations of the subject builder, done by ITK filters in image_ops.cpp (the only
// file besides label_volume.cpp that includes ITK). Private to the anatomy library: masks are
// plain byte vectors (0 / 1) on a Grid, x fastest, as LabelVolume stores its labels.

#include <array>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "myotwin/anatomy/label_volume.hpp"

namespace myotwin::anatomy::image_ops {

/// The geometry of a regular grid (as LabelVolume without the data).
struct Grid {
  std::array<std::int64_t, 3> size{0, 0, 0};
  Eigen::Vector3d spacing_m = Eigen::Vector3d::Ones();
  Eigen::Vector3d origin_m = Eigen::Vector3d::Zero();
  Eigen::Matrix3d direction = Eigen::Matrix3d::Identity();
  [[nodiscard]] std::int64_t n_voxels() const { return size[0] * size[1] * size[2]; }
};

/// 0 / 1 per voxel.
using Mask = std::vector<std::uint8_t>;

/// The grid of a label volume.
Grid grid_of(const LabelVolume& v);

/// Euclidean distance [m] from each voxel centre to the nearest voxel centre of `set` (0 on
/// the set; the largest float where `set` is empty). Voxels outside the grid do not count:
/// the grid's faces are not a boundary. Signed Maurer distance map, exact, anisotropic spacing.
std::vector<float> distance_to_set_m(const Grid& grid, const Mask& set);

/// Fills the holes of `mask`: background regions not connected (6-connectivity) to the grid's
/// faces, in 3-D and then in each slice k = const (2-D).
Mask fill_holes(const Grid& grid, const Mask& mask);

/// 6-connected components of `mask`: component id per voxel (0 outside the mask, 1.. inside,
/// numbered by decreasing size, ties by first voxel in grid order) and the sizes (index 0 unused).
struct Components {
  std::vector<std::uint32_t> id;
  std::vector<std::int64_t> sizes; ///< sizes[c] voxels of component c (sizes[0] = 0)
  [[nodiscard]] std::size_t count() const { return sizes.empty() ? 0 : sizes.size() - 1; }
};
Components connected_components(const Grid& grid, const Mask& mask);

/// The threshold between the two classes of the histogram of `values` (Otsu 1979, 256 bins).
double otsu_threshold(const Grid& grid, const std::vector<float>& values);

/// `v` resampled to isotropic voxels of `voxel_m` over the same physical extent (same
/// direction; the first voxel's corner at the input's first voxel corner), nearest neighbour.
LabelVolume resample_labels(const LabelVolume& v, double voxel_m);

/// `v` resampled onto the grid of `target` (linear interpolation; outside: `outside_value`).
IntensityVolume resample_intensity(const IntensityVolume& v, const Grid& target,
                                   float outside_value);

} // namespace myotwin::anatomy::image_ops
