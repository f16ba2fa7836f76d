#include "myotwin/forward/source/muap.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::forward {

namespace {

/// Fibres computed in parallel before their buffers are summed (in fibre order); fixed, so the
/// summation order does not depend on the thread count, and bounds the buffer memory.
constexpr std::size_t fibre_block = 16;

/// Fractional positions within this distance of a grid index are taken as that index, so that
/// a source step of 1 / fs gives an exact copy despite rounding of n / fs.
constexpr double snap_tolerance = 1e-9;

/// Writes weight * phi(t_n - delay) (linear interpolation on the source grid k dt, zero before 0
/// and after the last row) into out[n, :] (zero on entry) for every output sample n.
void resample_into(const Eigen::MatrixXd& phi_V, double dt_s, double fs_Hz, double delay_s,
                   double weight, Eigen::MatrixXd& out) {
  const Eigen::Index n_src = phi_V.rows();
  if (n_src == 0) {
    return;
  }
  for (Eigen::Index n = 0; n < out.rows(); ++n) {
    const double tau_s = static_cast<double>(n) / fs_Hz - delay_s;
    double pos = tau_s / dt_s;
    if (pos < -snap_tolerance) {
      continue;
    }
    pos = std::max(pos, 0.0);
    auto k = static_cast<Eigen::Index>(std::floor(pos));
    double frac = pos - static_cast<double>(k);
    if (frac < snap_tolerance) {
      frac = 0.0;
    } else if (frac > 1.0 - snap_tolerance) {
      frac = 0.0;
      ++k;
    }
    if (k >= n_src) {
      break; // the fibre's waves are extinguished
    }
    if (frac == 0.0) {
      out.row(n) = weight * phi_V.row(k);
    } else if (k + 1 < n_src) {
      out.row(n) = weight * ((1.0 - frac) * phi_V.row(k) + frac * phi_V.row(k + 1));
    } else {
      out.row(n) = weight * ((1.0 - frac) * phi_V.row(k));
    }
  }
}

} // namespace

MuapParams read_muap_params(ConfigReader& section) {
  MuapParams p;
  p.fs_Hz =
      section.optional<double>("fs_Hz", p.fs_Hz, in_range(limits::min_fs_Hz, limits::max_fs_Hz),
                               "sampling rate of the computed MUAPs");
  p.duration_s = units::ms_to_s(section.optional<double>(
      "duration_ms", units::s_to_ms(p.duration_s), in_range(0.0, 1000.0),
      "length of each MUAP; 0: automatic, until the slowest fibre's last wave is extinguished"));
  auto source = section.section("fibre_source");
  p.source = read_fibre_source_params(source);
  return p;
}

Eigen::Index muap_sample_count(double duration_s, double fs_Hz) {
  return static_cast<Eigen::Index>(std::floor(duration_s * fs_Hz + snap_tolerance)) + 1;
}

TransferFunction infinite_medium_transfer_function(const Eigen::MatrixX3d& electrodes_m,
                                                   const AnisotropicMedium& medium) {
  return
      [electrodes_m, medium](const Eigen::MatrixX3d& points_m, const Eigen::MatrixX3d& directions) {
        return infinite_medium_transfer(points_m, directions, electrodes_m, medium);
      };
}

TransferFunction lead_field_transfer_function(const PointLocator& locator,
                                              const Eigen::MatrixXd& lead_fields_V_per_A) {
  return [&locator, &lead_fields_V_per_A](const Eigen::MatrixX3d& points_m,
                                          const Eigen::MatrixX3d& /*directions*/) {
    return sample(locator.locate(points_m), lead_fields_V_per_A);
  };
}

Eigen::MatrixXd unit_muap_infinite_medium(const anatomy::MuscleFibres& fibres,
                                          const anatomy::MotorUnitPool& pool, std::size_t unit,
                                          const Eigen::Ref<const Eigen::MatrixX3d>& electrodes_m,
                                          const AnisotropicMedium& medium, const MuapParams& params,
                                          const Eigen::Ref<const Eigen::VectorXd>& delays_s) {
  if (electrodes_m.rows() == 0) {
    throw BadInput("MUAP: no electrodes (electrode matrix has 0 rows)");
  }
  if (!electrodes_m.allFinite()) {
    throw BadInput("MUAP: electrode positions must be finite");
  }
  return unit_muap(fibres, pool, unit, electrodes_m.rows(),
                   infinite_medium_transfer_function(electrodes_m, medium), params, delays_s);
}

Eigen::MatrixXd unit_muap(const anatomy::MuscleFibres& fibres, const anatomy::MotorUnitPool& pool,
                          std::size_t unit, Eigen::Index n_electrodes,
                          const TransferFunction& transfer_of, const MuapParams& params,
                          const Eigen::Ref<const Eigen::VectorXd>& delays_s) {
  return unit_muap_groups(fibres, pool, unit, n_electrodes, transfer_of, params, delays_s, {})
      .front();
}

std::vector<Eigen::MatrixXd>
unit_muap_groups(const anatomy::MuscleFibres& fibres, const anatomy::MotorUnitPool& pool,
                 std::size_t unit, Eigen::Index n_electrodes, const TransferFunction& transfer_of,
                 const MuapParams& params, const Eigen::Ref<const Eigen::VectorXd>& delays_s,
                 const std::vector<int>& groups) {
  // ---- checks ----
  if (unit >= pool.units.size()) {
    throw BadInput("MUAP: unit index " + std::to_string(unit) + " out of range: the pool has " +
                   std::to_string(pool.units.size()) + " units");
  }
  const auto& members = pool.units[unit].fibres;
  if (members.empty()) {
    throw BadInput("MUAP: unit " + std::to_string(unit) + " has no fibres");
  }
  if (n_electrodes <= 0) {
    throw BadInput("MUAP: no electrodes (" + std::to_string(n_electrodes) + " requested)");
  }
  if (!(params.fs_Hz > 0.0) || !std::isfinite(params.fs_Hz)) {
    throw BadInput("MUAP: fs_Hz = " + format_number(params.fs_Hz) + ": must be finite and > 0");
  }
  if (!(params.duration_s >= 0.0) || !std::isfinite(params.duration_s)) {
    throw BadInput("MUAP: duration_s = " + format_number(params.duration_s) +
                   ": must be finite and >= 0 (0: automatic)");
  }
  if (!(params.source.dt_s > 0.0) || !std::isfinite(params.source.dt_s)) {
    throw BadInput("MUAP: fibre source dt_s = " + format_number(params.source.dt_s) +
                   ": must be finite and > 0");
  }
  const auto n_fibres_total = static_cast<std::int64_t>(fibres.fibres.size());
  if (pool.fibre_cv_m_per_s.size() != n_fibres_total ||
      pool.fibre_diameter_m.size() != n_fibres_total) {
    throw BadInput(
        "MUAP: the pool's per-fibre CV (" + std::to_string(pool.fibre_cv_m_per_s.size()) +
        ") and diameter (" + std::to_string(pool.fibre_diameter_m.size()) +
        ") vectors do not match the number of fibres (" + std::to_string(n_fibres_total) + ")");
  }
  for (const auto f : members) {
    if (f < 0 || f >= n_fibres_total) {
      throw BadInput("MUAP: unit " + std::to_string(unit) + " refers to fibre " +
                     std::to_string(f) + ", out of range [0, " + std::to_string(n_fibres_total) +
                     ")");
    }
  }
  const auto n_members = static_cast<Eigen::Index>(members.size());
  if (delays_s.size() != 0 && delays_s.size() != n_members) {
    throw BadInput("MUAP: " + std::to_string(delays_s.size()) + " fibre delays for unit " +
                   std::to_string(unit) + " with " + std::to_string(n_members) +
                   " fibres (give one per fibre, or none)");
  }
  if (!groups.empty() && groups.size() != members.size()) {
    throw BadInput("MUAP: " + std::to_string(groups.size()) + " fibre groups for unit " +
                   std::to_string(unit) + " with " + std::to_string(n_members) +
                   " fibres (give one per fibre, or none)");
  }
  int n_groups = 1;
  for (const int g : groups) {
    if (g < 0) {
      throw BadInput("MUAP: negative fibre group " + std::to_string(g) + " in unit " +
                     std::to_string(unit));
    }
    n_groups = std::max(n_groups, g + 1);
  }
  for (Eigen::Index i = 0; i < delays_s.size(); ++i) {
    if (!(delays_s[i] >= 0.0) || !std::isfinite(delays_s[i])) {
      throw BadInput("MUAP: delay of fibre " + std::to_string(i) + " of unit " +
                     std::to_string(unit) + " = " + format_number(delays_s[i]) +
                     " s: must be finite and >= 0");
    }
  }

  // ---- per-fibre geometry and duration ----
  std::vector<FibreGeometry1D> geometry(members.size());
  std::vector<double> delay(members.size(), 0.0);
  double auto_duration_s = 0.0;
  for (std::size_t i = 0; i < members.size(); ++i) {
    const auto f = static_cast<std::size_t>(members[i]);
    const auto& fibre = fibres.fibres[f];
    FibreGeometry1D& g = geometry[i];
    g.length_m = fibre.length_m;
    g.end_plate_m = std::clamp(fibre.end_plate_m, 0.0, std::max(fibre.length_m, 0.0));
    g.diameter_m = pool.fibre_diameter_m[static_cast<Eigen::Index>(f)];
    g.cv_m_per_s = pool.fibre_cv_m_per_s[static_cast<Eigen::Index>(f)];
    if (fibre.points_m.rows() < 2) {
      throw BadInput("MUAP: fibre " + std::to_string(f) + " has " +
                     std::to_string(fibre.points_m.rows()) + " points (needs >= 2)");
    }
    if (!std::isfinite(fibre.weight)) {
      throw BadInput("MUAP: fibre " + std::to_string(f) + " weight " + format_number(fibre.weight) +
                     " is not finite");
    }
    delay[i] = delays_s.size() == 0 ? 0.0 : delays_s[static_cast<Eigen::Index>(i)];
    auto_duration_s = std::max(auto_duration_s, delay[i] + fibre_source_duration_s(g));
  }
  const double duration_s = params.duration_s > 0.0 ? params.duration_s : auto_duration_s;
  const Eigen::Index n_samples = muap_sample_count(duration_s, params.fs_Hz);
  const double dt_s = params.source.dt_s;

  // ---- fibres in parallel, summed in fibre order ----
  std::vector<Eigen::MatrixXd> muaps(static_cast<std::size_t>(n_groups),
                                     Eigen::MatrixXd::Zero(n_samples, n_electrodes));
  std::vector<Eigen::MatrixXd> buffers;
  std::vector<std::exception_ptr> errors;
  for (std::size_t begin = 0; begin < members.size(); begin += fibre_block) {
    const std::size_t end = std::min(members.size(), begin + fibre_block);
    const auto count = static_cast<std::int64_t>(end - begin);
    buffers.assign(end - begin, Eigen::MatrixXd());
    errors.assign(end - begin, nullptr);
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t j = 0; j < count; ++j) {
      const std::size_t i = begin + static_cast<std::size_t>(j);
      try {
        const auto& fibre = fibres.fibres[static_cast<std::size_t>(members[i])];
        // Source up to the output's end (one step beyond, for interpolation) or extinction.
        const double remaining_s = duration_s - delay[i];
        if (remaining_s < 0.0) {
          continue;
        }
        const double source_s = std::min(fibre_source_duration_s(geometry[i]), remaining_s + dt_s);
        const FibreCurrents fc = fibre_current_density(geometry[i], params.source, source_s);
        const PolylineSamples samples = sample_polyline(fibre.points_m, fc.s_m);
        const Eigen::MatrixXd transfer = transfer_of(samples.points_m, samples.directions);
        if (transfer.rows() != samples.points_m.rows() || transfer.cols() != n_electrodes)
          throw Error("MUAP: the volume conductor returned a " + std::to_string(transfer.rows()) +
                      " x " + std::to_string(transfer.cols()) + " transfer for " +
                      std::to_string(samples.points_m.rows()) + " points and " +
                      std::to_string(n_electrodes) + " electrodes");
        const Eigen::MatrixXd phi = single_fibre_potentials(fc.current_A, transfer);
        Eigen::MatrixXd out = Eigen::MatrixXd::Zero(n_samples, n_electrodes);
        resample_into(phi, dt_s, params.fs_Hz, delay[i], fibre.weight, out);
        buffers[static_cast<std::size_t>(j)] = std::move(out);
      } catch (...) {
        errors[static_cast<std::size_t>(j)] = std::current_exception();
      }
    }
    for (std::size_t j = 0; j < buffers.size(); ++j) {
      if (errors[j]) {
        std::rethrow_exception(errors[j]);
      }
      if (buffers[j].size() != 0) {
        muaps[groups.empty() ? 0 : static_cast<std::size_t>(groups[begin + j])] += buffers[j];
      }
    }
  }
  return muaps;
}

} // namespace myotwin::forward
