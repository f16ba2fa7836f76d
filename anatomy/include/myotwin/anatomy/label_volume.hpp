#pragma once
/// \file label_volume.hpp
/// Label volumes: a 3-D image of integer tissue labels in its physical frame. Reading and
/// writing go through ITK (NIfTI .nii/.nii.gz, NRRD .nrrd/.nhdr, MetaImage .mha/.mhd); no ITK type
/// appears here. Coordinates are metres in the image's physical (LPS) frame as ITK reports it:
/// x = origin + direction * diag(spacing) * (i, j, k).

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <vector>

#include <Eigen/Core>

namespace myotwin::anatomy {

/// Integer labels on a regular grid, x (i) fastest, then y (j), then z (k).
struct LabelVolume {
  std::array<std::int64_t, 3> size{0, 0, 0};               ///< voxels along i, j, k
  Eigen::Vector3d spacing_m = Eigen::Vector3d::Ones();     ///< voxel size along i, j, k [m]
  Eigen::Vector3d origin_m = Eigen::Vector3d::Zero();      ///< centre of voxel (0,0,0) [m]
  Eigen::Matrix3d direction = Eigen::Matrix3d::Identity(); ///< columns: i, j, k axes (unit)
  std::vector<std::int32_t> labels;                        ///< size[0]*size[1]*size[2] labels

  /// Number of voxels.
  [[nodiscard]] std::int64_t n_voxels() const { return size[0] * size[1] * size[2]; }
  /// Linear index of voxel (i, j, k).
  [[nodiscard]] std::int64_t index(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return i + size[0] * (j + size[1] * k);
  }
  /// Label at voxel (i, j, k).
  [[nodiscard]] std::int32_t at(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return labels[static_cast<std::size_t>(index(i, j, k))];
  }
  /// Physical position of the centre of voxel (i, j, k) [m].
  [[nodiscard]] Eigen::Vector3d physical_point(double i, double j, double k) const {
    return origin_m + direction * spacing_m.cwiseProduct(Eigen::Vector3d(i, j, k));
  }
  /// Volume of one voxel [m^3].
  [[nodiscard]] double voxel_volume_m3() const { return spacing_m.prod(); }
};

/// A scalar image (for example a CT in Hounsfield units or an MR magnitude image) on a regular
/// grid, in the same layout and frame as LabelVolume.
struct IntensityVolume {
  std::array<std::int64_t, 3> size{0, 0, 0};               ///< voxels along i, j, k
  Eigen::Vector3d spacing_m = Eigen::Vector3d::Ones();     ///< voxel size along i, j, k [m]
  Eigen::Vector3d origin_m = Eigen::Vector3d::Zero();      ///< centre of voxel (0,0,0) [m]
  Eigen::Matrix3d direction = Eigen::Matrix3d::Identity(); ///< columns: i, j, k axes (unit)
  std::vector<float> values;                               ///< size[0]*size[1]*size[2] values

  /// Number of voxels.
  [[nodiscard]] std::int64_t n_voxels() const { return size[0] * size[1] * size[2]; }
};

/// Reads a 3-D scalar image of any pixel type (integer or float) as float values, with its
/// geometry (mm -> m), through the same readers and checks as read_label_volume().
/// \throws IoError for a missing or unreadable file; BadInput for an unsupported extension, a
/// corrupt or truncated file, a multi-component image or one that is not 3-D.
IntensityVolume read_intensity_volume(const std::filesystem::path& path);

/// Reads a label volume. Accepts 3-D scalar images of any integer pixel type.
/// \throws IoError for a missing or unreadable file; BadInput for an unsupported extension, a
/// corrupt or truncated file, a float or multi-component (RGB) image, an image that is not 3-D
/// (naming the file, what was found and what was expected).
LabelVolume read_label_volume(const std::filesystem::path& path);

/// Writes a label volume atomically in the format given by the extension (.nii.gz, .nii,
/// .nrrd, .mha); the pixel type is the smallest unsigned type (uint8, uint16) that holds the
/// labels, int32 otherwise. \throws BadInput for an unsupported extension, IoError on failure.
void write_label_volume(const std::filesystem::path& path, const LabelVolume& volume);

/// Voxel count per label, in increasing label order.
std::map<std::int32_t, std::int64_t> label_histogram(const LabelVolume& volume);

/// True if `path` has an extension that read_label_volume() accepts.
bool is_label_volume_path(const std::filesystem::path& path);

} // namespace myotwin::anatomy
