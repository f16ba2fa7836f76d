#include "myotwin/forward/source/fibre_source.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "myotwin/core/checks.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::forward {

namespace {

/// Vm - rest [V] for z >= 0 (zero for z < 0 and beyond the cut-off).
double rosenfalck_deviation_V(double z_m) noexcept {
  if (z_m <= 0.0 || z_m > rosenfalck_cutoff_m) {
    return 0.0;
  }
  const double u = z_m / rosenfalck_length_m;
  return rosenfalck_amplitude_V * u * u * u * std::exp(-u);
}

void check_geometry(const FibreGeometry1D& g) {
  require_positive(g.length_m, "fibre source", "length_m");
  require_positive(g.diameter_m, "fibre source", "diameter_m");
  require_positive(g.cv_m_per_s, "fibre source", "cv_m_per_s");
  if (!(g.end_plate_m >= 0.0 && g.end_plate_m <= g.length_m)) {
    throw BadInput("fibre source: end_plate_m = " + format_number(g.end_plate_m) +
                   ": must lie in [0, length_m = " + format_number(g.length_m) + "]");
  }
}

} // namespace

double rosenfalck_vm_V(double z_m) noexcept {
  if (z_m <= 0.0) {
    return rosenfalck_rest_V;
  }
  const double u = z_m / rosenfalck_length_m;
  return rosenfalck_amplitude_V * u * u * u * std::exp(-u) + rosenfalck_rest_V;
}

double rosenfalck_dvm_dz_V_per_m(double z_m) noexcept {
  if (z_m <= 0.0) {
    return 0.0;
  }
  const double u = z_m / rosenfalck_length_m;
  return rosenfalck_amplitude_V / rosenfalck_length_m * (3.0 * u * u - u * u * u) * std::exp(-u);
}

double rosenfalck_d2vm_dz2_V_per_m2(double z_m) noexcept {
  if (z_m <= 0.0) {
    return 0.0;
  }
  const double u = z_m / rosenfalck_length_m;
  return rosenfalck_amplitude_V / (rosenfalck_length_m * rosenfalck_length_m) *
         (6.0 * u - 6.0 * u * u + u * u * u) * std::exp(-u);
}

double rosenfalck_current_per_length_A_per_m(double z_m, double sigma_i_S_per_m,
                                             double diameter_m) noexcept {
  const double area_m2 = M_PI * diameter_m * diameter_m / 4.0;
  return sigma_i_S_per_m * area_m2 * rosenfalck_d2vm_dz2_V_per_m2(z_m);
}

FibreSourceParams read_fibre_source_params(ConfigReader& section,
                                           const FibreSourceParams& defaults) {
  FibreSourceParams p = defaults;
  p.sigma_i_S_per_m = section.optional<double>(
      "sigma_i_S_per_m", p.sigma_i_S_per_m, positive(),
      "intracellular conductivity of the muscle fibre (Akhmadeev et al. 2020)");
  p.dz_m = units::mm_to_m(section.optional<double>(
      "dz_mm", units::m_to_mm(p.dz_m), positive(),
      "space step along the fibre of the transmembrane-current discretisation"));
  p.dt_s = units::ms_to_s(section.optional<double>("dt_ms", units::s_to_ms(p.dt_s), positive(),
                                                   "time step of the fibre source currents"));
  return p;
}

double fibre_source_duration_s(const FibreGeometry1D& geometry) {
  check_geometry(geometry);
  const double longest_half_m =
      std::max(geometry.end_plate_m, geometry.length_m - geometry.end_plate_m);
  return (longest_half_m + rosenfalck_cutoff_m) / geometry.cv_m_per_s;
}

FibreCurrents fibre_current_density(const FibreGeometry1D& geometry,
                                    const FibreSourceParams& params, double duration_s) {
  check_geometry(geometry);
  require_positive(params.sigma_i_S_per_m, "fibre source", "sigma_i_S_per_m");
  require_positive(params.dz_m, "fibre source", "dz_m");
  require_positive(params.dt_s, "fibre source", "dt_s");
  if (!(duration_s >= 0.0) || !std::isfinite(duration_s)) {
    throw BadInput("fibre source: duration_s = " + format_number(duration_s) +
                   ": must be finite and >= 0");
  }

  const auto n_space =
      static_cast<Eigen::Index>(std::max(2.0, std::ceil(geometry.length_m / params.dz_m - 1e-9)));
  const auto n_time = static_cast<Eigen::Index>(std::floor(duration_s / params.dt_s + 1e-9)) + 1;
  const double dz_m = geometry.length_m / static_cast<double>(n_space);

  FibreCurrents out;
  out.dz_m = dz_m;
  out.s_m.resize(n_space);
  for (Eigen::Index k = 0; k < n_space; ++k) {
    out.s_m[k] = (static_cast<double>(k) + 0.5) * dz_m;
  }
  out.t_s.resize(n_time);
  for (Eigen::Index i = 0; i < n_time; ++i) {
    out.t_s[i] = static_cast<double>(i) * params.dt_s;
  }

  // Axial conductance between neighbouring element centres times dz: I_k = g (V_{k+1} - 2 V_k +
  // V_{k-1}) with g = sigma_i A / dz [S]. Only Vm - rest is needed: constants cancel.
  const double g_S =
      params.sigma_i_S_per_m * M_PI * geometry.diameter_m * geometry.diameter_m / 4.0 / dz_m;
  out.current_A.resize(n_time, n_space);
  Eigen::VectorXd v(n_space);
  // flux[k] = g (V_k - V_{k-1}) at the interface between elements k - 1 and k (the axial
  // current from k to k - 1).
  Eigen::VectorXd flux(n_space + 1);
  for (Eigen::Index i = 0; i < n_time; ++i) {
    const double travelled_m = geometry.cv_m_per_s * out.t_s[i];
    for (Eigen::Index k = 0; k < n_space; ++k) {
      const double dist_m = std::abs(out.s_m[k] - geometry.end_plate_m);
      v[k] = rosenfalck_deviation_V(travelled_m - dist_m);
    }
    flux[0] = 0.0; // sealed ends
    flux[n_space] = 0.0;
    for (Eigen::Index k = 1; k < n_space; ++k) {
      flux[k] = g_S * (v[k] - v[k - 1]);
    }
    // Membrane current out of element k = axial current in from the right minus out to the left:
    // g (V_{k+1} - V_k) - g (V_k - V_{k-1}); the sum over k telescopes to zero.
    for (Eigen::Index k = 0; k < n_space; ++k) {
      out.current_A(i, k) = flux[k + 1] - flux[k];
    }
  }
  return out;
}

Eigen::MatrixXd single_fibre_potentials(const Eigen::Ref<const Eigen::MatrixXd>& currents_A,
                                        const Eigen::Ref<const Eigen::MatrixXd>& transfer_V_per_A) {
  if (currents_A.cols() != transfer_V_per_A.rows()) {
    throw BadInput("single_fibre_potentials: currents have " + std::to_string(currents_A.cols()) +
                   " fibre elements but the transfer matrix has " +
                   std::to_string(transfer_V_per_A.rows()) + " rows: must be equal");
  }
  Eigen::MatrixXd phi_V(currents_A.rows(), transfer_V_per_A.cols());
  phi_V.noalias() = currents_A * transfer_V_per_A;
  return phi_V;
}

PolylineSamples
sample_polyline(const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, 3>>& polyline_m,
                const Eigen::Ref<const Eigen::VectorXd>& s_m) {
  const Eigen::Index n_points = polyline_m.rows();
  if (n_points < 2) {
    throw BadInput("sample_polyline: polyline has " + std::to_string(n_points) +
                   " points: needs at least 2");
  }
  Eigen::VectorXd cumulative(n_points);
  cumulative[0] = 0.0;
  for (Eigen::Index j = 1; j < n_points; ++j) {
    cumulative[j] = cumulative[j - 1] + (polyline_m.row(j) - polyline_m.row(j - 1)).norm();
  }
  const double total_m = cumulative[n_points - 1];
  if (!(total_m > 0.0)) {
    throw BadInput("sample_polyline: polyline length = " + format_number(total_m) +
                   ": must be > 0");
  }
  PolylineSamples out;
  out.points_m.resize(s_m.size(), 3);
  out.directions.resize(s_m.size(), 3);
  Eigen::Index seg = 0; // segment [seg, seg + 1]; samples are usually sorted, so search onwards
  for (Eigen::Index k = 0; k < s_m.size(); ++k) {
    const double s = std::clamp(s_m[k], 0.0, total_m);
    if (s < cumulative[seg]) {
      seg = 0;
    }
    while (seg + 2 < n_points &&
           (cumulative[seg + 1] < s || cumulative[seg + 1] == cumulative[seg])) {
      ++seg;
    }
    // The tangent of the nearest segment of non-zero length (forwards, then backwards).
    Eigen::Index tseg = seg;
    while (tseg + 2 < n_points && cumulative[tseg + 1] == cumulative[tseg]) {
      ++tseg;
    }
    while (tseg > 0 && cumulative[tseg + 1] == cumulative[tseg]) {
      --tseg;
    }
    const double seg_len = cumulative[seg + 1] - cumulative[seg];
    const double w = seg_len > 0.0 ? std::clamp((s - cumulative[seg]) / seg_len, 0.0, 1.0) : 0.0;
    out.points_m.row(k) = (1.0 - w) * polyline_m.row(seg) + w * polyline_m.row(seg + 1);
    Eigen::RowVector3d dir = polyline_m.row(tseg + 1) - polyline_m.row(tseg);
    const double norm = dir.norm();
    out.directions.row(k) =
        norm > 0.0 ? Eigen::RowVector3d(dir / norm) : Eigen::RowVector3d(0, 0, 1);
  }
  return out;
}

} // namespace myotwin::forward
