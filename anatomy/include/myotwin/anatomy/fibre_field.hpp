#pragma once
/// \file fibre_field.hpp
/// The fibre field of a muscle: the solution u of a Laplace problem on the muscle's voxels,
/// u = 0 on the origin, u = 1 on the insertion, zero flux through the rest of the muscle
/// surface. u is the normalised position along the fibres and its normalised gradient the
/// fibre direction.
///
/// Discretisation: cell-centred finite differences on the voxel grid (optionally upsampled by
/// an integer factor, nearest neighbour), the 7-point stencil with weights 1 / h_a^2 per grid
/// axis a (anisotropic spacing); a missing neighbour contributes no flux (zero-flux boundary).
/// The direction matrix is orthonormal, so the Laplacian in index space needs no cross terms;
/// gradients are mapped to the physical (LPS) frame by direction * diag(1 / spacing). Solved
/// with Eigen's ConjugateGradient and an incomplete Cholesky preconditioner (Eigen's own
/// threading stays off).

#include <array>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/muscle_geometry.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::anatomy {

/// Parameters of the fibre-field solve (config section `fibre_field`).
struct FibreFieldParams {
  /// Integer upsampling of the muscle mask, nearest neighbour, 1 = none (key `upsampling`,
  /// 1 to 8). Helps thin muscles, at upsampling^3 times the unknowns.
  int upsampling = 1;
  /// Relative residual |b - A u| / |b| at which conjugate gradients stop (key `tolerance`).
  double tolerance = 1e-8;
  /// Iteration limit of conjugate gradients (key `max_iterations`).
  std::int64_t max_iterations = 20000;
};

/// Reads the `fibre_field` section: `upsampling`, `tolerance`, `max_iterations`.
/// \throws BadInput for a wrong type or value.
FibreFieldParams read_fibre_field_params(ConfigReader& section);

/// The field sampled at a point.
struct FieldSample {
  bool inside = false;                                 ///< false: the point left the muscle
  double value = 0.0;                                  ///< u in [0, 1]
  Eigen::Vector3d direction = Eigen::Vector3d::Zero(); ///< unit fibre direction (grad u)
};

/// The solved field on a cropped grid: the bounding box of the muscle (in the possibly
/// upsampled grid) plus `padding` voxels on each side.
struct FibreField {
  /// Grid voxels of outside margin around the muscle's bounding box.
  static constexpr std::int64_t padding = 3;
  std::int32_t label = 0;                                  ///< muscle label
  std::array<std::int64_t, 3> size{0, 0, 0};               ///< grid voxels along i, j, k
  Eigen::Vector3d spacing_m = Eigen::Vector3d::Ones();     ///< voxel size [m]
  Eigen::Vector3d origin_m = Eigen::Vector3d::Zero();      ///< centre of grid voxel (0,0,0) [m]
  Eigen::Matrix3d direction = Eigen::Matrix3d::Identity(); ///< columns: i, j, k axes (unit)
  /// Per grid voxel: 1 in the solved domain (muscle voxels connected to both the origin and
  /// the insertion), 0 elsewhere. #voxels, i fastest.
  std::vector<std::uint8_t> inside;
  /// Per grid voxel: u (0 outside the domain). #voxels.
  std::vector<double> value;
  /// Per grid voxel: unit grad u in the physical frame (zero outside): central differences,
  /// one-sided where a neighbour is outside; where grad u = 0 (inside a thick origin or
  /// insertion region) the mean direction of the neighbours, filled in layer by layer. #voxels.
  std::vector<Eigen::Vector3d> gradient_direction;
  /// Per grid voxel: the smoothed wall indicator, a sub-voxel description of the muscle's
  /// zero-flux surface: the indicator of the domain convolved with a Gaussian of one grid voxel
  /// per axis (radius 3 voxels). The faces of origin and insertion voxels that the fibres cross
  /// (fibre direction within 60 degrees of the face normal) are no wall: the three outside
  /// voxels beyond each count as inside. The wall is the 0.5 level set (the voxel faces of a
  /// flat side; staircase corners are cut), the gradient its inward normal. #voxels, in [0, 1].
  std::vector<float> wall;
  /// The wall indicator at `x_m` (trilinear) and its gradient in the physical frame [1/m] in
  /// `gradient_per_m`; 0 and zero outside the grid.
  [[nodiscard]] double wall_at(const Eigen::Vector3d& x_m, Eigen::Vector3d& gradient_per_m) const;
  std::int64_t n_unknowns = 0;       ///< free unknowns of the linear system
  std::int64_t n_dirichlet = 0;      ///< voxels with u fixed (origin and insertion)
  std::int64_t n_voxels_dropped = 0; ///< muscle voxels cut off from origin or insertion
  std::int64_t n_iterations = 0;     ///< conjugate-gradient iterations
  double relative_residual = 0.0;    ///< final |b - A u| / |b|
  double solve_time_s = 0.0;         ///< wall time of the factorisation and solve [s]

  /// Number of grid voxels.
  [[nodiscard]] std::int64_t n_voxels() const { return size[0] * size[1] * size[2]; }
  /// Linear index of grid voxel (i, j, k).
  [[nodiscard]] std::int64_t index(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return i + size[0] * (j + size[1] * k);
  }
  /// Physical centre of grid voxel (i, j, k) (continuous indices allowed) [m].
  [[nodiscard]] Eigen::Vector3d physical_point(double i, double j, double k) const {
    return origin_m + direction * spacing_m.cwiseProduct(Eigen::Vector3d(i, j, k));
  }
  /// Continuous grid index of a physical point [m].
  [[nodiscard]] Eigen::Vector3d continuous_index(const Eigen::Vector3d& x_m) const {
    return (direction.transpose() * (x_m - origin_m)).cwiseQuotient(spacing_m);
  }
  /// True if the grid voxel nearest to `x_m` is in the domain.
  [[nodiscard]] bool contains(const Eigen::Vector3d& x_m) const;
  /// Value and direction at `x_m` [m]: trilinear interpolation over the in-domain voxels among
  /// the 8 surrounding voxel centres (weights renormalised), direction normalised. `inside` is
  /// false (and the rest zero) when the nearest voxel is not in the domain.
  [[nodiscard]] FieldSample sample(const Eigen::Vector3d& x_m) const;
  /// Smallest voxel size of the grid [m].
  [[nodiscard]] double min_spacing_m() const { return spacing_m.minCoeff(); }
};

/// Solves the fibre field of a muscle whose geometry (voxels, origin, insertion) was computed
/// on `volume`. With upsampling, every sub-voxel of an origin (insertion) voxel is fixed.
/// \throws BadInput (naming the muscle) when origin and insertion are not
/// connected through the muscle; NumericalError when conjugate gradients do not converge.
FibreField solve_fibre_field(const LabelVolume& volume, const MuscleGeometry& geometry,
                             const FibreFieldParams& params);

} // namespace myotwin::anatomy
