#pragma once

/// \file muap_model.hpp
/// A fast parametric MUAP model of one muscle of a subject: the MUAP of a candidate motor unit
/// described by a few physical parameters (territory centre, territory radius, fibre count,
/// end-plate shift and spread, conduction velocity), through the subject's own volume conductor,
/// in about a millisecond. It is the forward model that model-informed separation searches
/// over (issue 9).
///
/// Precomputation. The muscle's section (the plane of its fibre seeds) is cut into square
/// cells; every model fibre belongs to the cell that holds its seed. With all fibres at the
/// reference CV v_ref and their end-plates moved by each of n_b shifts d_b (a band of steps
/// around the anatomy's end-plates), the fibres' potentials (weights included, nerve-branch
/// delays not) are summed per cell and divided by the cell's real fibres:
///
///     S_cb(t) = sum_{f in c} w_f phi_f(t; v_ref, z_f + d_b) / sum_{f in c} w_f,
///
/// the mean potential of one real fibre of cell c, sampled at model_fs_Hz. This costs n_b
/// passes over all the muscle's fibres (the work of computing every unit's MUAP n_b times).
///
/// Evaluation. A unit with territory centre x0 and radius r in the section, N real fibres,
/// end-plates shifted by mu with spread s, and conduction velocity v has the MUAP
///
///     M(t) = sum_c sum_b N a_c u_b S_cb(t v / v_ref),
///     a_c  = n_c exp(-|x_c - x0|^2 / (2 sigma^2)) / sum_c' (same),   sigma = r / 2,
///     u_b  = the end-plate distribution N(mu, s^2) integrated over bin b (linear hat bins),
///
/// with n_c the real fibres of cell c and x_c its fibres' mean seed: the territory's fibre
/// density (the anatomy's Gaussian territory, sigma = half the radius) times the muscle's
/// (cells with a_c below 1e-4 of the largest, beyond 4.3 sigma, are left out). The
/// conduction velocity enters exactly as a time scaling: a fibre whose action potentials travel
/// at v has Vm(s, t) = Vm_R(z_e + v t - s), so its potential at any electrode, including
/// generation at the end-plate and extinction at the tendons, depends on time only through
/// v t. M is evaluated at t_n = n / fs_Hz by cubic interpolation of the model_fs_Hz samples.
/// What the model leaves out: nerve-branch delays and per-fibre CV differences within a unit.

#include <cstddef>
#include <vector>

#include <Eigen/Core>

#include "myotwin/anatomy/fibres.hpp"
#include "myotwin/anatomy/motor_units.hpp"
#include "myotwin/core/progress.hpp"
#include "myotwin/forward/source/muap.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::forward {

/// Parameters of the MUAP model (config section `muap_model`).
struct MuapModelParams {
  /// Side of the square cells of the section [m] (key `cell_size_mm`, default 1 mm).
  double cell_size_m = 1e-3;
  /// Conduction velocity of the precomputed potentials [m/s] (key `reference_cv_m_per_s`, 4).
  double reference_cv_m_per_s = 4.0;
  /// Step between end-plate shifts [m] (key `end_plate_step_mm`, default 2 mm).
  double end_plate_step_m = 2e-3;
  /// Number of end-plate shifts, odd: -(n - 1) / 2 .. (n - 1) / 2 steps (key
  /// `end_plate_shifts`, default 5: +/- 4 mm).
  int n_end_plate_shifts = 5;
  /// Sampling rate of the precomputed potentials [Hz] (key `model_fs_Hz`, default 8192).
  double model_fs_Hz = 8192.0;
  /// Sampling rate of the MUAPs returned [Hz] (key `fs_Hz`, default 2048).
  double fs_Hz = 2048.0;
  /// Fibre source steps (sub-section `fibre_source`; defaults here 0.25 mm and 0.1 ms, coarser
  /// than the simulation's 0.1 mm and 0.05 ms: a tenth of the precomputation, for MUAPs
  /// returned at 2048 Hz).
  FibreSourceParams source = [] {
    FibreSourceParams s;
    s.dz_m = 0.25e-3;
    s.dt_s = 0.1e-3;
    return s;
  }();
};

/// Reads MuapModelParams (keys above, all optional). \throws BadInput naming the key.
MuapModelParams read_muap_model_params(ConfigReader& section);

/// The parameters of a candidate unit (theta), in physical units.
struct UnitParameters {
  Eigen::Vector2d centre_m = Eigen::Vector2d::Zero(); ///< territory centre in the section [m]
  double radius_m = 2e-3;  ///< territory radius [m] (> 0); Gaussian SD = radius / 2
  double n_fibres = 100.0; ///< real fibres (> 0)
  /// Mean end-plate shift along the fibres from each fibre's own (anatomy) end-plate [m].
  double end_plate_shift_m = 0;
  double end_plate_spread_m = 1e-3; ///< SD of the unit's end-plates around it [m] (>= 0)
  double cv_m_per_s = 4.0;          ///< conduction velocity [m/s] (> 0)
};

/// The bounds of each parameter the model can represent.
struct UnitParameterBounds {
  Eigen::Vector2d centre_min_m, centre_max_m; ///< bounding box of the cells' centres [m]
  double end_plate_shift_min_m = 0.0, end_plate_shift_max_m = 0.0; ///< the shift band [m]
  double cv_min_m_per_s = 2.0, cv_max_m_per_s = 7.0; ///< time-scaling range kept plausible
};

/// See the file comment.
class MuapModel {
public:
  /// Precomputes the cell potentials of the muscle (`fibres`, `pool` for the fibre diameters)
  /// at the `n_channels` electrodes of `transfer`. Progress reports one step per end-plate
  /// shift. \throws BadInput for a muscle without fibres, invalid params, and whatever
  /// unit_muap() rejects.
  MuapModel(const anatomy::MuscleFibres& fibres, const anatomy::MotorUnitPool& pool,
            const TransferFunction& transfer, Eigen::Index n_channels,
            const MuapModelParams& params, const ProgressCallback& progress = {});

  /// The memory of a model, computed before it is built [bytes] (docs/reliability.md,
  /// "Bounded resources").
  struct MemoryEstimate {
    /// The constructor's peak: per end-plate shift the cell potentials in double precision
    /// ((#model samples x #channels) x #cells; the longest fibre fixes #model samples), the
    /// sums of the shift being computed (one more set), then the single-precision copies beside
    /// the doubles.
    double peak_bytes = 0.0;
    /// What the model keeps: the single-precision potentials (at most; the quiet tail is cut).
    double kept_bytes = 0.0;
  };
  [[nodiscard]] static MemoryEstimate estimate_memory(const anatomy::MuscleFibres& fibres,
                                                      Eigen::Index n_channels,
                                                      const MuapModelParams& params);

  /// MUAP of the unit `theta`: #samples x #channels [V] at params.fs_Hz, sample 0 at the
  /// unit's activation, #samples fixed (that of the slowest CV in the bounds).
  /// \throws BadInput for a parameter outside its domain (radius, n_fibres, CV not > 0, a
  /// negative spread, non-finite values).
  [[nodiscard]] Eigen::MatrixXd muap(const UnitParameters& theta) const;

  /// The parameters of unit `unit` of the pool the model was built from: its territory
  /// centre and radius, real fibre count and CV (its fibres' mean as the MUAP
  /// shows it, anatomy::realised_cv_m_per_s()); end-plate shift and spread 0 (the shifts are
  /// relative to each fibre's own end-plate, whose spread is inside the cells' potentials).
  [[nodiscard]] UnitParameters parameters_of(const anatomy::MuscleFibres& fibres,
                                             const anatomy::MotorUnitPool& pool,
                                             std::size_t unit) const;

  [[nodiscard]] const UnitParameterBounds& bounds() const { return bounds_; }
  [[nodiscard]] Eigen::Index n_cells() const { return cell_centre_m_.rows(); }
  [[nodiscard]] Eigen::Index n_channels() const { return n_channels_; }
  [[nodiscard]] Eigen::Index n_samples() const { return n_out_samples_; }
  [[nodiscard]] const MuapModelParams& params() const { return params_; }

private:
  MuapModelParams params_;
  Eigen::Index n_channels_ = 0;
  Eigen::Index n_model_samples_ = 0;
  Eigen::Index n_out_samples_ = 0;
  Eigen::MatrixX2d cell_centre_m_; ///< #cells x 2: mean seed of each cell's fibres [m]
  Eigen::VectorXd cell_fibres_;    ///< #cells: real fibres per cell
  /// Per end-plate shift b: (#model samples * #channels) x #cells, column c = S_cb (sample
  /// major within a channel: row = channel * #model samples + sample), single precision.
  std::vector<Eigen::MatrixXf> potentials_;
  UnitParameterBounds bounds_;
};

} // namespace myotwin::forward
