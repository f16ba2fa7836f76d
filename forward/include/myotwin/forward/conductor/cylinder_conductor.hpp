#pragma once
/// \file cylinder_conductor.hpp
/// Analytical layered cylindrical volume conductor (Farina, Mesin, Martina and Merletti 2004,
/// IEEE TBME 51(3):415-426): concentric layers bone (r < a, isotropic), muscle (a < r < b,
/// sigma_z along the axis = fibre direction, sigma_rho across), fat (b < r < c) and skin
/// (c < r < R), insulated at r = R, infinite along z. The potential on the skin of a point
/// current in the muscle at (r0, theta0, z0) depends on (r0, theta - theta0, z - z0) only.
///
/// Method. With x = field - source, the potential of a 1 A point source is
///
///   phi(R, dtheta, dz) = 1 / (2 pi^2) int_0^inf cos(k dz) [G_0(k) + 2 sum_{n>=1} cos(n dtheta)
///   G_n(k)] dk,
///
/// where G_n(r; k) is, in each layer, a combination of I_n(s k r) and K_n(s k r) with
/// s = sqrt(sigma_z / sigma_rho) in the muscle and 1 elsewhere, plus the free-space term
/// I_n(s k r<) K_n(s k r>) / sigma_rho in the muscle (the addition theorem of 1 / |x|). The seven
/// coefficients per (n, k) follow from continuity of potential and normal current at r = a, b, c,
/// zero normal current at r = R and regularity at r = 0; the 7 x 7 system is solved numerically,
/// with the basis functions normalised to 1 at one end of their layer and Bessel functions handled
/// through their logarithms (log_bessel_ik()), so nothing overflows for any order or argument.
///
/// The insulated infinite cylinder carries the current of a single point source to z = +-inf:
/// G_0 ~ 2 pi / (Sigma k^2) as k -> 0 with Sigma = pi sum_layers sigma_z (r_out^2 - r_in^2), and
/// the potential grows as -|dz| / (2 Sigma). That part, S(k) = 2 pi kappa^2 / (Sigma k^2 (k^2 +
/// kappa^2)) with kappa = 1 / R, is inverted in closed form, -(|dz| + exp(-kappa |dz|) / kappa) /
/// (2 Sigma); the rest is integrated numerically (piecewise-linear Filon quadrature, exact in the
/// oscillation cos(k dz)). The potential is defined up to an additive constant, which no
/// zero-net-current source (a fibre) sees; here it is fixed by phi + |dz| / (2 Sigma) -> 0 as
/// |dz| -> inf.

#include <memory>
#include <vector>

#include <Eigen/Core>

#include "myotwin/forward/source/muap.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::forward {

/// The layers of the cylinder (config section `cylinder`). Defaults: Farina, Mesin, Martina and
/// Merletti 2004 geometry (bone radius 7 mm, muscle to 20 mm, fat 3 mm, skin 1 mm) and the
/// conductivities of REFERENCE_VALUES.md (fat 0.04 S/m, the project's tissue default; Farina 2004
/// used 0.04-0.05).
struct CylinderLayers {
  double bone_radius_m = 7.0e-3;         ///< outer radius of the bone a [m] (key `bone_radius_mm`)
  double muscle_radius_m = 20.0e-3;      ///< outer radius of the muscle b [m] (`muscle_radius_mm`)
  double fat_radius_m = 23.0e-3;         ///< outer radius of the fat c [m] (`fat_radius_mm`)
  double skin_radius_m = 24.0e-3;        ///< outer radius of the skin R [m] (`skin_radius_mm`)
  double sigma_bone_S_per_m = 0.02;      ///< bone [S/m] (`sigma_bone_S_per_m`)
  double sigma_muscle_z_S_per_m = 0.5;   ///< muscle along the axis [S/m] (`sigma_muscle_z_S_per_m`)
  double sigma_muscle_rho_S_per_m = 0.1; ///< muscle across [S/m] (`sigma_muscle_rho_S_per_m`)
  double sigma_fat_S_per_m = 0.04;       ///< fat [S/m] (`sigma_fat_S_per_m`)
  double sigma_skin_S_per_m = 1.0;       ///< skin [S/m] (`sigma_skin_S_per_m`)
};

/// Reads CylinderLayers from a config section: radii in mm (`bone_radius_mm`, `muscle_radius_mm`,
/// `fat_radius_mm`, `skin_radius_mm`) and conductivities in S/m (keys as in CylinderLayers).
/// \throws BadInput naming the key for a wrong type, a non-positive value or radii that do not
/// increase from bone to skin.
CylinderLayers read_cylinder_layers(ConfigReader& section);

/// Checks the layers. \throws BadInput naming the field and value when radii are not finite and
/// strictly increasing (0 < a < b < c < R) or a conductivity is not finite and > 0.
void validate_cylinder_layers(const CylinderLayers& layers);

/// Numerical parameters of the cylinder solution. With the defaults, halving the k step and
/// tightening the angular truncation 100-fold changes the direct evaluation by 0.03 %, and the
/// table interpolates it to 0.01 % of the local potential range (docs/forward.md).
struct CylinderParams {
  /// Truncation of the angular series: orders n <= N with (r0 / R)^N <= tolerance (the decay of
  /// the n-th mode at small k); default 1e-6.
  double mode_tolerance = 1e-6;
  /// Largest order allowed (guards against sources at the skin of huge cylinders); default 4000.
  int max_order = 4000;
  /// Grid factor of the k quadrature: spacing min(0.05 k, 0.08 / t) times this factor, where t is
  /// the decay length of the spectrum (fat + skin + anisotropy-scaled muscle above the source);
  /// default 1.
  double k_step_factor = 1.0;
  /// Grid factor of the interpolation table in dtheta and dz (spacing 0.1 t near the source,
  /// growing 5 % per node along z); default 1.
  double table_step_factor = 1.0;
  /// Radial table nodes across the muscle (uniform in log(R - r0)); default 24.
  int table_n_radii = 24;
  /// Axial extent of the table [m]: beyond |dz| = z_max only the closed-form far-field part
  /// -(|dz| + exp(-|dz| / R) R) / (2 Sigma) is kept; default 0.25 m.
  double table_z_max_m = 0.25;
};

/// Logarithms of modified Bessel functions for x > 0 and orders 0..n_max, with their logarithmic
/// derivatives: log I_n(x), log K_n(x), I_n'(x) / I_n(x), K_n'(x) / K_n(x). Finite for any x > 0
/// and order (std::cyl_bessel_i / _k overflow or underflow there). I_n from a backward ratio
/// recurrence, K_n from the forward recurrence, I_0, K_0, K_1 from <cmath> with exponential
/// scaling (Hankel asymptotic series for x > 500). Relative accuracy about 1e-13.
struct BesselLogs {
  std::vector<double> log_i, log_k, dlog_i, dlog_k; ///< each n_max + 1 entries
};
/// Fills `out` for argument `x` (> 0) and orders 0..`n_max` (>= 0); see BesselLogs.
void log_bessel_ik(double x, int n_max, BesselLogs& out);

/// Axial conductance of the whole cross-section, Sigma = pi sum sigma_z (r_out^2 - r_in^2) [S m].
double cylinder_axial_conductance_S_m(const CylinderLayers& layers);

/// The spectrum G_n(R; k) at the skin of a 1 A point source at radius `source_r_m` in the muscle,
/// for orders n = 0..`n_max` at axial frequency `k_per_m` > 0 [rad/m]; see the file comment
/// (phi = 1 / (2 pi^2) int cos(k dz) sum_n e^{i n dtheta} G_n dk). Returns n_max + 1 values
/// [V m / A] (G_0 without the subtraction of its 1 / k^2 part).
/// \throws BadInput for invalid layers, a source outside [a, b] or k not > 0.
Eigen::VectorXd cylinder_skin_spectrum(const CylinderLayers& layers, double source_r_m,
                                       double k_per_m, int n_max);

/// Potentials on the skin [V] of a 1 A point source at radius `source_r_m` in the muscle, at the
/// offsets (dtheta_rad[i], dz_m[i]) (equal lengths; electrode minus source), by direct quadrature
/// (no table; about N x #k 7 x 7 solves, e.g. 80 x 570 for the defaults).
/// \throws BadInput for invalid layers or params, a source outside the muscle [a, b], vectors of
/// different lengths or non-finite offsets, or more orders than params.max_order.
Eigen::VectorXd cylinder_skin_potential_V(const CylinderLayers& layers, double source_r_m,
                                          const Eigen::Ref<const Eigen::VectorXd>& dtheta_rad,
                                          const Eigen::Ref<const Eigen::VectorXd>& dz_m,
                                          const CylinderParams& params = {});

/// A precomputed table of the skin potential over (r0, dtheta, dz) for the whole muscle layer,
/// interpolated with tricubic Lagrange polynomials (in log(R - r0), dtheta, asinh(dz / z_s)).
/// Immutable after construction: potential() may be called from several threads.
class CylinderSkinTable {
public:
  /// Builds the table (parallel over radii; the same bits at any thread count).
  /// \throws BadInput for invalid layers or params.
  CylinderSkinTable(const CylinderLayers& layers, const CylinderParams& params = {});

  /// Potential [V] on the skin at offsets (dtheta [rad], any value; dz [m]) of a 1 A source at
  /// radius r0 [m]. \throws BadInput when r0 lies outside the muscle [a, b] (1 nm tolerance).
  [[nodiscard]] double potential_V(double r0_m, double dtheta_rad, double dz_m) const;

  [[nodiscard]] const CylinderLayers& layers() const { return layers_; }
  /// Table sizes: radii, dtheta nodes on [0, pi], dz nodes on [0, z_max], angular orders N.
  [[nodiscard]] Eigen::Index n_radii() const { return n_r_; }
  [[nodiscard]] Eigen::Index n_theta() const { return n_theta_; }
  [[nodiscard]] Eigen::Index n_z() const { return n_z_; }
  [[nodiscard]] int n_orders() const { return n_orders_; }

private:
  CylinderLayers layers_;
  double sigma_axial_ = 0.0;  // Sigma [S m]
  double kappa_ = 0.0;        // 1 / R [1/m]
  double log_depth_lo_ = 0.0; // log(R - b)
  double h_log_depth_ = 0.0;  // radial node spacing in log(R - r0)
  double h_theta_ = 0.0;
  double z_s_ = 0.0, h_u_ = 0.0, z_max_ = 0.0;
  Eigen::Index n_r_ = 0, n_theta_ = 0, n_z_ = 0;
  int n_orders_ = 0;
  std::vector<double> table_; // [r][z][theta], far-field part excluded [V]
};

/// The layered cylinder as a TransferFunction for point electrodes on the skin:
/// `electrodes_m` #electrodes x 3 positions [m] in the cylinder's frame (axis = z axis through
/// the origin), each within 0.05 mm of the skin radius R (potentials are taken at r = R).
/// Source points must lie in the muscle layer (a <= r0 <= b, 1 nm tolerance); the fibre
/// directions are ignored (the anisotropy is along the axis: the model is exact for fibres
/// parallel to z). Builds a CylinderSkinTable (shared by copies of the function; about 0.5 s on
/// 2 cores for the defaults). The function throws BadInput naming the first source point outside
/// the muscle.
/// \throws BadInput for invalid layers or params, empty or non-finite electrodes, or an
/// electrode off the skin.
TransferFunction cylinder_transfer_function(const CylinderLayers& layers,
                                            const Eigen::MatrixX3d& electrodes_m,
                                            const CylinderParams& params = {});

} // namespace myotwin::forward
