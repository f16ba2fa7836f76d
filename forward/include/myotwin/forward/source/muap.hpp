#pragma once
/// \file muap.hpp
/// Motor-unit action potentials (MUAPs): the sum over a unit's model fibres of each fibre's
/// potential at the electrodes, each fibre with its own end-plate, conduction velocity, diameter
/// and weight (the number of real fibres it stands for), in the infinite anisotropic medium of
/// infinite_medium.hpp (point electrodes, e.g. needle contacts).
///
/// Per fibre: fibre_current_density() at the source steps (dz, dt of FibreSourceParams), the
/// transfer from its element centres (sample_polyline() on the fibre's polyline, local fibre
/// directions) to the electrodes (infinite_medium_transfer()), single_fibre_potentials(), then
/// linear interpolation in time onto the output grid t_n = n / fs, shifted by the fibre's delay.
/// When the source step equals 1 / fs and the delays are whole output samples, the
/// interpolation is exact (a copy). Fibres are computed in parallel (OpenMP) into separate
/// buffers and summed in fibre order, so the result is the same bits at any thread count.

#include <cstddef>
#include <functional>
#include <vector>

#include <Eigen/Core>

#include "myotwin/anatomy/fibres.hpp"
#include "myotwin/anatomy/motor_units.hpp"
#include "myotwin/forward/conductor/infinite_medium.hpp"
#include "myotwin/forward/conductor/point_locator.hpp"
#include "myotwin/forward/source/fibre_source.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::forward {

/// Parameters of MUAP computation (config section `muap`).
struct MuapParams {
  /// The fibre source (sub-section `fibre_source`, see read_fibre_source_params()).
  FibreSourceParams source;
  /// Output sampling rate [Hz] (key `fs_Hz`, default 10240 Hz, the intramuscular default of
  /// Akhmadeev et al. 2020).
  double fs_Hz = 10240.0;
  /// Length of the MUAP [s] (key `duration_ms`, default 0: automatic, until the last wave of the
  /// slowest-to-finish fibre, delay included, has been extinguished; see
  /// fibre_source_duration_s()). A shorter duration truncates the MUAP.
  double duration_s = 0.0;
};

/// Reads MuapParams from a config section: `fs_Hz` (> 0), `duration_ms` (>= 0, 0 automatic) and
/// the sub-section `fibre_source`. \throws BadInput naming the key for a wrong type or value.
MuapParams read_muap_params(ConfigReader& section);

/// Number of output samples of a MUAP of duration `duration_s` [s] at `fs_Hz` [Hz]:
/// floor(duration * fs) + 1 (samples at t = 0 .. duration inclusive, up to rounding).
Eigen::Index muap_sample_count(double duration_s, double fs_Hz);

/// MUAP of motor unit `unit` of `pool` (whose fibres index `fibres.fibres`) at point electrodes
/// in an infinite anisotropic medium.
///
/// t = 0 is the unit's neuromuscular activation: fibre i of the unit (i-th entry of
/// pool.units[unit].fibres) starts its two waves at its end-plate at t = delays_s[i] (0 when
/// `delays_s` is empty), with the fibre's own CV (pool.fibre_cv_m_per_s) and diameter
/// (pool.fibre_diameter_m); its potential is multiplied by its weight (Fibre::weight).
///
/// \param fibres the muscle's model fibres (polylines from origin to insertion end [m]).
/// \param pool the muscle's motor-unit pool built on those fibres.
/// \param unit index of the unit in pool.units (recruitment order).
/// \param electrodes_m #electrodes x 3 electrode positions [m] (>= 1 row).
/// \param medium the volume conductor.
/// \param params source steps, output rate and duration.
/// \param delays_s empty, or one delay per fibre of the unit [s] (>= 0, finite), e.g. nerve
/// branch delays and jitter.
/// \return #samples x #electrodes potentials [V] at t_n = n / fs_Hz, n = 0 .. #samples - 1,
/// with #samples = muap_sample_count(duration, fs_Hz).
/// \throws BadInput with a message naming the problem: unit index out of range, a unit without
/// fibres, empty or non-finite electrodes, fibre indices or per-fibre vectors inconsistent with
/// `fibres`, fs_Hz not > 0, duration negative or not finite, a delay vector of the wrong size or
/// with negative or non-finite entries, and whatever the fibre source and the transfer reject.
Eigen::MatrixXd
unit_muap_infinite_medium(const anatomy::MuscleFibres& fibres, const anatomy::MotorUnitPool& pool,
                          std::size_t unit, const Eigen::Ref<const Eigen::MatrixX3d>& electrodes_m,
                          const AnisotropicMedium& medium, const MuapParams& params,
                          const Eigen::Ref<const Eigen::VectorXd>& delays_s = Eigen::VectorXd());

/// The volume conductor as MUAP computation sees it: for #points source positions [m] with the
/// local unit fibre directions, the #points x #electrodes potentials [V] that a unit point
/// current (1 A) at each position produces at each electrode. Called from several threads at
/// once: must be thread-safe.
using TransferFunction = std::function<Eigen::MatrixXd(const Eigen::MatrixX3d& points_m,
                                                       const Eigen::MatrixX3d& directions)>;

/// MUAP of motor unit `unit` in any volume conductor given by `transfer` (see
/// unit_muap_infinite_medium() for the model, arguments, result and errors).
/// \param n_electrodes number of columns `transfer` returns (>= 1).
Eigen::MatrixXd unit_muap(const anatomy::MuscleFibres& fibres, const anatomy::MotorUnitPool& pool,
                          std::size_t unit, Eigen::Index n_electrodes,
                          const TransferFunction& transfer, const MuapParams& params,
                          const Eigen::Ref<const Eigen::VectorXd>& delays_s = Eigen::VectorXd());

/// The MUAP of unit `unit` split by fibre group: entry g is the sum over the unit's fibres i
/// with groups[i] == g (i in the order of pool.units[unit].fibres), all entries the same length
/// (that of the whole unit); their sum is unit_muap(). `groups`: one group index >= 0 per fibre
/// of the unit, or empty (one group). Used for per-discharge variability: each group is shifted
/// by its own jitter at each discharge. Other arguments, result and errors as unit_muap().
/// \throws BadInput also for a group vector of the wrong size or a negative group.
std::vector<Eigen::MatrixXd>
unit_muap_groups(const anatomy::MuscleFibres& fibres, const anatomy::MotorUnitPool& pool,
                 std::size_t unit, Eigen::Index n_electrodes, const TransferFunction& transfer,
                 const MuapParams& params, const Eigen::Ref<const Eigen::VectorXd>& delays_s,
                 const std::vector<int>& groups);

/// The infinite anisotropic medium as a TransferFunction (point electrodes, #electrodes x 3 [m]).
TransferFunction infinite_medium_transfer_function(const Eigen::MatrixX3d& electrodes_m,
                                                   const AnisotropicMedium& medium);

/// The finite-element volume conductor as a TransferFunction, by reciprocity: the potential at
/// electrode e of a unit current at x is the lead field of e at x (the potential at x for 1 A
/// injected at e; lead_fields(), #nodes x #electrodes [V/A]), interpolated in the tet that
/// contains x. The source's zero net current makes the grounded node's sink drop out. Keeps
/// references: `locator` and `lead_fields_V_per_A` must outlive the function.
/// The function throws BadInput naming the first source point that lies outside the mesh.
TransferFunction lead_field_transfer_function(const PointLocator& locator,
                                              const Eigen::MatrixXd& lead_fields_V_per_A);

} // namespace myotwin::forward
