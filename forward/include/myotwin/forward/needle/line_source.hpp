#pragma once
/// \file line_source.hpp
/// Single-fibre potentials for intramuscular EMG: uniform line current elements in an infinite
/// transversely anisotropic medium, and a fast evaluation of the potential of a finite fibre
/// (end-plate to sealed tendon ends, Rosenfalck source) at point contacts.
///
/// Line element. A current I spread uniformly over the segment z in [z1, z2] of a straight
/// fibre (conductivity sigma_l along it, sigma_t across) gives, at radial distance r from its
/// axis, after scaling z' = z sqrt(sigma_t / sigma_l):
///
///     phi = I / (4 pi sigma_t L) * [asinh(z2' / r) - asinh(z1' / r)],   L = z2 - z1,
///
/// the integral of the point-source closed form of REFERENCE_VALUES.md; the difference of the
/// asinh is evaluated without cancellation. r is never taken below the fibre radius (a contact
/// inside the fibre sees the potential at its membrane), never a millimetre clamp, so a contact
/// tens of micrometres from a fibre sees its sharp spike.
///
/// Fibre potential. The fibre [0, L] is cut into n = ceil(L / dz) elements as in
/// fibre_current_density() (finite volumes, sealed ends). Summing the element currents times
/// the element-averaged transfer T_k by parts twice gives, exactly,
///
///     phi(t) = g sum_k w_k D(v (t - t0) - |s_k - z_e|),   g = sigma_i pi d^2 / (4 dz),
///
/// with D = Vm - rest the Rosenfalck deviation, w_k = T_{k-1} - 2 T_k + T_{k+1} inside and
/// T_1 - T_0, T_{n-2} - T_{n-1} at the two sealed ends. As D(u) = A (u/lambda)^3 exp(-u/lambda)
/// (an exponential polynomial), the sum over the offsets a_k = |s_k - z_e| is a recursion in
/// time: the four sums S_j = sum w_k ((u - a_k)/lambda)^j exp(-(u - a_k)/lambda) over the
/// elements already reached by the wave advance from u to u + du by a 4 x 4 binomial update,
/// and each element enters once. The cost is O(#points + #samples) per fibre and contact,
/// instead of O(#elements x #samples); the time derivatives of phi come from the same sums.
/// (D is taken exactly, without the 40 mm cut-off of fibre_current_density(): the difference
/// is below 3e-14 of the peak.)
///
/// Multi-resolution. Where an element is farther than near_radius from the contact, runs of
/// m = round(coarse_step / dz) elements are lumped: their total weight and first moment are
/// exact (telescoping sums of four T values), carried by two points at +/- the spread of the
/// run (its second moment as for uniform weights). Elements near the contact and the two
/// tendon-end elements stay at the fine step. The error against the all-fine sum is measured
/// in tests/forward/test_iemg.cpp and docs/iemg.md.

#include <Eigen/Core>

#include "myotwin/forward/conductor/infinite_medium.hpp"
#include "myotwin/forward/source/fibre_source.hpp"

namespace myotwin::forward {

/// asinh(x) - asinh(y), without cancellation when x and y are close and of the same sign.
double asinh_difference(double x, double y) noexcept;

/// Potential [V] of a current `current_A` [A] spread uniformly over the segment z in
/// [z1_m, z2_m] (z1 < z2) of a line along the fibre direction, at radial distance `r_m` [m]
/// from the line, z measured along the fibre from the field point's foot on the line, in an
/// infinite medium of conductivities `sigma_l_S_per_m` (along) and `sigma_t_S_per_m` (across)
/// [S/m]. No regularisation: r must be > 0.
double line_source_potential_V(double current_A, double z1_m, double z2_m, double r_m,
                               double sigma_l_S_per_m, double sigma_t_S_per_m) noexcept;

/// Potential per unit current [V/A] at `contact_m` of a straight element centred at
/// `centre_m`, along the unit direction `direction`, of length `length_m` [m], carrying a
/// uniform current, with the radial distance clamped to at least `r_min_m` [m].
double line_element_transfer_V_per_A(const Eigen::Vector3d& centre_m,
                                     const Eigen::Vector3d& direction, double length_m,
                                     const Eigen::Vector3d& contact_m, double sigma_l_S_per_m,
                                     double sigma_t_S_per_m, double r_min_m) noexcept;

/// Length scale of the Nandedkar-Stalberg (1983) intracellular action potential [m] (0.5 mm):
/// Vm(z) = 768 mV (z/1 mm)^3 exp(-2 z/1 mm) - 90 mV = 96 mV (z/lambda)^3 exp(-z/lambda) - 90 mV
/// with lambda = 0.5 mm, Rosenfalck's (1969) profile compressed 2x along the fibre (same peak,
/// transmembrane current 4x), proposed for single-fibre potentials (Nandedkar and Stalberg 1983,
/// Med Biol Eng Comput 21:158) and used for needle EMG by Hamilton-Wright and Stashuk (2005,
/// IEEE TBME 52:171) and Akhmadeev et al. (2020).
inline constexpr double nandedkar_stalberg_length_m = 0.5e-3;

/// Discretisation of the fast fibre potential.
struct FibrePotentialParams {
  /// Length scale lambda of the intracellular action potential D(z) = 96 mV (z/lambda)^3
  /// exp(-z/lambda) [m] (key `iap_profile`: "nandedkar_stalberg" 0.5 mm, the default for needle
  /// work, or "rosenfalck" 1 mm, rosenfalck_length_m, the surface model's profile).
  double iap_length_m = nandedkar_stalberg_length_m;
  /// Fine step along the fibre [m] (the spatial resolution of the source; key
  /// `spatial_resolution_mm`, default 0.01 mm as in Akhmadeev et al. 2020).
  double dz_m = 1e-5;
  /// Lumped step far from the contact [m] (key `coarse_step_mm`, default 1 mm: with the
  /// Nandedkar-Stalberg profile the far field then carries 0.25-0.6 % of each contact's own peak,
  /// 0.5 mm keeps it below 0.04 % at twice the cost; docs/iemg.md, docs/benchmarks.md).
  double coarse_step_m = 1.0e-3;
  /// Elements within this distance of the contact stay at the fine step [m] (key
  /// `near_radius_mm`, default 1 mm; infinity: all fine).
  double near_radius_m = 1e-3;
  /// Intracellular conductivity [S/m] (key `sigma_i_S_per_m`, default 1.01, Akhmadeev 2020).
  double sigma_i_S_per_m = 1.01;
};

/// A fibre as the fast evaluation sees it: a polyline (#points x 3 [m], >= 2 points) shifted
/// by `offset_m`, its end-plate arc length, diameter and CV (FibreGeometry1D; length_m is
/// ignored: the polyline's own arc length is used, and the end-plate is clamped to it).
struct FibrePath {
  Eigen::Matrix<double, Eigen::Dynamic, 3> polyline_m;
  Eigen::Vector3d offset_m = Eigen::Vector3d::Zero();
  FibreGeometry1D geometry;
};

/// Potentials of one fibre and their first two time derivatives at the contacts.
struct FibrePotentials {
  Eigen::MatrixXd phi_V;          ///< #samples x #contacts [V]
  Eigen::MatrixXd dphi_V_per_s;   ///< #samples x #contacts [V/s] (empty unless asked)
  Eigen::MatrixXd d2phi_V_per_s2; ///< #samples x #contacts [V/s^2] (empty unless asked)
};

/// Fast potential of one fibre (see the file comment) at t_n = n / fs_Hz, n = 0 .. n_samples-1,
/// the two waves leaving the end-plate at t = delay_s (any real delay, not quantised), in the
/// medium's conductivities (its r_min is replaced by the fibre radius, diameter / 2).
/// `contacts_m`: #contacts x 3 [m]. \throws BadInput for a degenerate polyline, non-positive
/// steps, diameter, CV or conductivities, fs_Hz not > 0, n_samples < 1, a non-finite delay.
FibrePotentials fibre_potentials(const FibrePath& fibre,
                                 const Eigen::Ref<const Eigen::MatrixX3d>& contacts_m,
                                 const AnisotropicMedium& medium,
                                 const FibrePotentialParams& params, double fs_Hz, double delay_s,
                                 Eigen::Index n_samples, bool derivatives);

/// The reference the fast evaluation is checked against: the finite-volume element currents of
/// the profile of params.iap_length_m (as fibre_current_density(), which it equals for the
/// Rosenfalck length) at dz and dt = 1 / fs (delay 0) times the element-averaged line-source
/// transfer of every element, O(#elements x #samples). Returns #samples x #contacts [V] (the first
/// n_samples instants).
Eigen::MatrixXd fibre_potentials_direct(const FibrePath& fibre,
                                        const Eigen::Ref<const Eigen::MatrixX3d>& contacts_m,
                                        const AnisotropicMedium& medium,
                                        const FibrePotentialParams& params, double fs_Hz,
                                        Eigen::Index n_samples);

} // namespace myotwin::forward
