#pragma once
/// \file fibre_source.hpp
/// The source of a single muscle fibre: the Rosenfalck (1969) intracellular action potential,
/// its transmembrane current, and the current of a finite fibre whose two action potentials
/// start at the end-plate at t = 0, travel towards both tendon ends at the conduction velocity and
/// are extinguished there.
///
/// Discretisation: the fibre [0, L] is cut into n = ceil(L / dz) equal elements (the step is
/// shortened to L / n); Vm is sampled at the element centres and the current leaving element k is
/// the intracellular axial current flowing in minus the one flowing out (finite volumes, sealed
/// ends):
///
///   I_k = (sigma_i pi d^2 / 4) (V_{k+1} - 2 V_k + V_{k-1}) / dz,   no axial flux at s = 0 and L.
///
/// This is i_m(s) dz with i_m = (sigma_i pi d^2 / 4) d^2Vm/ds^2 in the interior, and the sum over
/// the elements telescopes to zero at every instant, including generation at the end-plate and
/// extinction at the ends. Far from the electrodes a fibre therefore looks like a quadrupole
/// (plus a dipole only while the two ends are at different potentials).

#include <Eigen/Core>

namespace myotwin {
class ConfigReader;
}

namespace myotwin::forward {

/// Resting potential of the Rosenfalck action potential [V] (-90 mV).
inline constexpr double rosenfalck_rest_V = -90.0e-3;
/// Amplitude factor A of Vm = A (z/lambda)^3 exp(-z/lambda) + rest [V] (96 mV).
inline constexpr double rosenfalck_amplitude_V = 96.0e-3;
/// Length scale lambda of the Rosenfalck action potential [m] (1 mm).
inline constexpr double rosenfalck_length_m = 1.0e-3;
/// Distance behind the wave front beyond which Vm is taken as rest in fibre currents [m]
/// (40 mm; the deviation there is 2.6e-14 V).
inline constexpr double rosenfalck_cutoff_m = 40.0e-3;

/// Rosenfalck intracellular action potential Vm(z) = 96 mV (z/1 mm)^3 exp(-z/1 mm) - 90 mV [V];
/// z [m] is the distance behind the wave front (z >= 0 on the depolarised side), Vm = -90 mV for
/// z < 0. Peak +39.05 mV at z = 3 mm (REFERENCE_VALUES.md).
double rosenfalck_vm_V(double z_m) noexcept;

/// First derivative dVm/dz of rosenfalck_vm_V() [V/m]; 0 for z < 0. Peaks at z = 3 - sqrt(3) mm.
double rosenfalck_dvm_dz_V_per_m(double z_m) noexcept;

/// Second derivative d^2Vm/dz^2 of rosenfalck_vm_V() [V/m^2]; 0 for z < 0.
double rosenfalck_d2vm_dz2_V_per_m2(double z_m) noexcept;

/// Transmembrane current per unit length of an infinite fibre,
/// i_m = (sigma_i pi d^2 / 4) d^2Vm/dz^2 [A/m] (outward positive), at distance z [m] behind the
/// front; `sigma_i_S_per_m` intracellular conductivity [S/m], `diameter_m` fibre diameter [m].
double rosenfalck_current_per_length_A_per_m(double z_m, double sigma_i_S_per_m,
                                             double diameter_m) noexcept;

/// A fibre as a line: arc length from tendon end to tendon end, end-plate position and the
/// properties that shape its source.
struct FibreGeometry1D {
  double length_m = 0.0;     ///< arc length L between the two tendon ends [m]
  double end_plate_m = 0.0;  ///< arc length of the end-plate from the s = 0 end, in [0, L] [m]
  double diameter_m = 55e-6; ///< fibre diameter [m] (55 um, Akhmadeev 2020)
  double cv_m_per_s = 4.0;   ///< conduction velocity [m/s] (literature 3-5 m/s)
};

/// Parameters of the fibre source (config section `fibre_source`).
struct FibreSourceParams {
  /// Intracellular conductivity [S/m] (key `sigma_i_S_per_m`, default 1.01, Akhmadeev et al.
  /// 2020).
  double sigma_i_S_per_m = 1.01;
  /// Space step along the fibre [m] (key `dz_mm`, default 0.1 mm: a tenth of the Rosenfalck
  /// length scale, so the discrete second difference is within about 1 % of the analytic one).
  double dz_m = 0.1e-3;
  /// Time step [s] (key `dt_ms`, default 0.05 ms = 20 kHz, about ten times the 2048 Hz output
  /// rate; the front moves 0.2 mm per step at 4 m/s).
  double dt_s = 0.05e-3;
};

/// Reads FibreSourceParams from a config section (keys `sigma_i_S_per_m`, `dz_mm`, `dt_ms`, all
/// > 0); absent keys keep `defaults`. \throws BadInput naming the key for a missing-type or
/// non-positive value.
FibreSourceParams read_fibre_source_params(ConfigReader& section,
                                           const FibreSourceParams& defaults = {});

/// The sampled currents of one fibre.
struct FibreCurrents {
  /// #space element centres along the arc, (k + 1/2) dz [m].
  Eigen::VectorXd s_m;
  /// #time instants k dt, k = 0 .. n_time - 1 [s].
  Eigen::VectorXd t_s;
  /// Element length actually used, L / #space (<= the requested dz) [m].
  double dz_m = 0.0;
  /// #time x #space current leaving the fibre through each element's membrane [A] (outward
  /// positive); each row sums to zero up to rounding.
  Eigen::MatrixXd current_A;
};

/// Time for both action potentials to be extinguished: (max(z_e, L - z_e) + 40 mm) / CV [s],
/// i.e. until the tail of the slower-to-finish wave has left the fibre (the 40 mm cut-off of
/// rosenfalck_cutoff_m). \throws BadInput for an invalid geometry.
double fibre_source_duration_s(const FibreGeometry1D& geometry);

/// Membrane currents of a finite fibre at t = k dt for k = 0 .. floor(duration / dt): two waves
/// leave the end-plate at t = 0 at the fibre's CV (Vm(s, t) = Vm_R(z_e + CV t - s) for s >= z_e
/// and Vm_R(s - z_e + CV t) for s < z_e) and are extinguished at the ends (sealed-end finite
/// volumes, see the file comment). Cost O(#time x #space).
/// \throws BadInput when length, diameter, CV, dz, dt or sigma_i are not > 0, the end-plate is
/// outside [0, L], or the duration is negative or not finite.
FibreCurrents fibre_current_density(const FibreGeometry1D& geometry,
                                    const FibreSourceParams& params, double duration_s);

/// Potentials of one fibre at the electrodes: phi = currents * transfer.
/// `currents_A`: #time x #space element currents [A] (FibreCurrents::current_A);
/// `transfer_V_per_A`: #space x #electrodes potential per unit current injected at each element
/// [V/A] (lead field sampled at the element centres, e.g. infinite_medium_transfer()).
/// Returns #time x #electrodes potentials [V]. \throws BadInput when the inner sizes differ.
Eigen::MatrixXd single_fibre_potentials(const Eigen::Ref<const Eigen::MatrixXd>& currents_A,
                                        const Eigen::Ref<const Eigen::MatrixXd>& transfer_V_per_A);

/// Points and unit tangents along a polyline at given arc lengths.
struct PolylineSamples {
  Eigen::Matrix<double, Eigen::Dynamic, 3> points_m;   ///< #samples x 3 positions [m]
  Eigen::Matrix<double, Eigen::Dynamic, 3> directions; ///< #samples x 3 unit tangents
};

/// Samples a fibre polyline (#points x 3 [m], >= 2 points, e.g. anatomy::Fibre::points_m) at arc
/// lengths `s_m` (e.g. FibreCurrents::s_m) by linear interpolation; the tangent is that of the
/// segment holding each sample. Arc lengths are clamped to [0, polyline length].
/// \throws BadInput for fewer than 2 points or a polyline of zero length.
PolylineSamples
sample_polyline(const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, 3>>& polyline_m,
                const Eigen::Ref<const Eigen::VectorXd>& s_m);

} // namespace myotwin::forward
