#include "myotwin/forward/needle/line_source.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <Eigen/Geometry>

#include "myotwin/core/checks.hpp"
#include "myotwin/core/error.hpp"

namespace myotwin::forward {

namespace {

/// A polyline by arc length (zero-length segments dropped), shifted by an offset.
class Path {
public:
  Path(const Eigen::Matrix<double, Eigen::Dynamic, 3>& points, const Eigen::Vector3d& offset) {
    if (points.rows() < 2) {
      throw BadInput("fibre potentials: polyline has " + std::to_string(points.rows()) +
                     " points: needs at least 2");
    }
    pts_.push_back(points.row(0).transpose() + offset);
    cum_.push_back(0.0);
    for (Eigen::Index i = 1; i < points.rows(); ++i) {
      const Eigen::Vector3d p = points.row(i).transpose() + offset;
      const double len = (p - pts_.back()).norm();
      if (len > 0.0) {
        pts_.push_back(p);
        cum_.push_back(cum_.back() + len);
      }
    }
    if (!(cum_.back() > 0.0) || !std::isfinite(cum_.back())) {
      throw BadInput("fibre potentials: polyline length = " + format_number(cum_.back()) +
                     ": must be finite and > 0");
    }
  }
  [[nodiscard]] double length() const { return cum_.back(); }
  /// Position and unit tangent at arc length s (clamped to the polyline).
  void at(double s, Eigen::Vector3d& p, Eigen::Vector3d& dir) const {
    const auto it = std::upper_bound(cum_.begin(), cum_.end(), s);
    auto seg = static_cast<std::size_t>(std::max<std::ptrdiff_t>(it - cum_.begin() - 1, 0));
    seg = std::min(seg, cum_.size() - 2);
    const double len = cum_[seg + 1] - cum_[seg];
    const double w = std::clamp((s - cum_[seg]) / len, 0.0, 1.0);
    dir = (pts_[seg + 1] - pts_[seg]) / len;
    p = pts_[seg] + w * len * dir;
  }

private:
  std::vector<Eigen::Vector3d> pts_;
  std::vector<double> cum_;
};

struct Discretisation {
  Eigen::Index n = 0;
  double h = 0.0;
  double z_e = 0.0;
  double g_S = 0.0;
};

Discretisation discretise(const Path& path, const FibrePath& fibre,
                          const FibrePotentialParams& params) {
  require_positive(params.dz_m, "fibre potentials", "spatial resolution dz_m");
  require_positive(params.sigma_i_S_per_m, "fibre potentials", "sigma_i_S_per_m");
  require_positive(fibre.geometry.diameter_m, "fibre potentials", "diameter_m");
  require_positive(fibre.geometry.cv_m_per_s, "fibre potentials", "cv_m_per_s");
  Discretisation d;
  const double length = path.length();
  d.n = static_cast<Eigen::Index>(std::max(2.0, std::ceil(length / params.dz_m - 1e-9)));
  d.h = length / static_cast<double>(d.n);
  d.z_e = std::clamp(fibre.geometry.end_plate_m, 0.0, length);
  d.g_S = params.sigma_i_S_per_m * M_PI * fibre.geometry.diameter_m * fibre.geometry.diameter_m /
          4.0 / d.h;
  return d;
}

} // namespace

double asinh_difference(double x, double y) noexcept {
  if (x == y) {
    return 0.0;
  }
  if (x > 0.0 && y > 0.0) {
    return std::asinh((x - y) * (x + y) /
                      (x * std::sqrt(1.0 + y * y) + y * std::sqrt(1.0 + x * x)));
  }
  if (x < 0.0 && y < 0.0) {
    return -asinh_difference(-x, -y);
  }
  return std::asinh(x) - std::asinh(y);
}

double line_source_potential_V(double current_A, double z1_m, double z2_m, double r_m,
                               double sigma_l_S_per_m, double sigma_t_S_per_m) noexcept {
  const double k = std::sqrt(sigma_t_S_per_m / sigma_l_S_per_m);
  return current_A / (4.0 * M_PI * sigma_t_S_per_m * (z2_m - z1_m)) *
         asinh_difference(k * z2_m / r_m, k * z1_m / r_m);
}

double line_element_transfer_V_per_A(const Eigen::Vector3d& centre_m,
                                     const Eigen::Vector3d& direction, double length_m,
                                     const Eigen::Vector3d& contact_m, double sigma_l_S_per_m,
                                     double sigma_t_S_per_m, double r_min_m) noexcept {
  const Eigen::Vector3d d = contact_m - centre_m;
  const double z = d.dot(direction);
  const double r = std::max(d.cross(direction).norm(), r_min_m);
  return line_source_potential_V(1.0, -0.5 * length_m - z, 0.5 * length_m - z, r, sigma_l_S_per_m,
                                 sigma_t_S_per_m);
}

FibrePotentials fibre_potentials(const FibrePath& fibre,
                                 const Eigen::Ref<const Eigen::MatrixX3d>& contacts_m,
                                 const AnisotropicMedium& medium,
                                 const FibrePotentialParams& params, double fs_Hz, double delay_s,
                                 Eigen::Index n_samples, bool derivatives) {
  const Path path(fibre.polyline_m, fibre.offset_m);
  const Discretisation d = discretise(path, fibre, params);
  require_positive(params.coarse_step_m, "fibre potentials", "coarse_step_m");
  if (!(params.near_radius_m > 0.0)) // infinity is allowed: every element summed directly
    throw BadInput("fibre potentials: near_radius_m = " + format_number(params.near_radius_m) +
                   ": must be > 0 (infinity: no lumping)");
  require_positive(medium.sigma_l_S_per_m, "fibre potentials", "sigma_l_S_per_m");
  require_positive(medium.sigma_t_S_per_m, "fibre potentials", "sigma_t_S_per_m");
  require_positive(fs_Hz, "fibre potentials", "fs_Hz");
  if (n_samples < 1) {
    throw BadInput("fibre potentials: n_samples = " + std::to_string(n_samples) + ": must be >= 1");
  }
  if (!std::isfinite(delay_s)) {
    throw BadInput("fibre potentials: delay_s = " + format_number(delay_s) + ": must be finite");
  }
  const Eigen::Index n = d.n;
  const double h = d.h;
  const double r_min = 0.5 * fibre.geometry.diameter_m;
  const double sl = medium.sigma_l_S_per_m;
  const double st = medium.sigma_t_S_per_m;
  const auto m = static_cast<Eigen::Index>(std::max(1.0, std::round(params.coarse_step_m / h)));
  // First element on the insertion side of the end-plate: s_k = (k + 1/2) h >= z_e.
  const auto k_right =
      std::clamp<Eigen::Index>(static_cast<Eigen::Index>(std::ceil(d.z_e / h - 0.5)), 0, n);

  const Eigen::Index n_contacts = contacts_m.rows();
  FibrePotentials out;
  out.phi_V = Eigen::MatrixXd::Zero(n_samples, n_contacts);
  if (derivatives) {
    out.dphi_V_per_s = Eigen::MatrixXd::Zero(n_samples, n_contacts);
    out.d2phi_V_per_s2 = Eigen::MatrixXd::Zero(n_samples, n_contacts);
  }
  const double lambda = rosenfalck_length_m;
  const double v = fibre.geometry.cv_m_per_s;
  const double du = v / (fs_Hz * lambda); // wave advance per sample [lambda]
  const double u0 = -v * delay_s / lambda;
  const double decay = std::exp(-du);
  const double du2 = du * du;
  const double du3 = du2 * du;
  const double amp = rosenfalck_amplitude_V;
  const double rate1 = v / lambda;
  const double rate2 = rate1 * rate1;

  const double far2 = params.near_radius_m * params.near_radius_m;
  const double inv_sl = 1.0 / sl;
  const double inv_st = 1.0 / st;
  const double point_scale = 1.0 / (4.0 * M_PI * st * std::sqrt(sl));
  std::vector<double> pa;
  std::vector<double> pw;
  std::vector<double> ma;
  std::vector<double> mw;
  for (Eigen::Index j = 0; j < n_contacts; ++j) {
    const Eigen::Vector3d c = contacts_m.row(j).transpose();
    // Element-averaged transfer of element k, with a small direct-mapped cache.
    std::array<Eigen::Index, 16> key{};
    key.fill(-1);
    std::array<double, 16> val{};
    const auto transfer = [&](Eigen::Index k) {
      const auto slot = static_cast<std::size_t>(k & 15);
      if (key[slot] == k) {
        return val[slot];
      }
      Eigen::Vector3d p;
      Eigen::Vector3d f;
      path.at((static_cast<double>(k) + 0.5) * h, p, f);
      const Eigen::Vector3d x = c - p;
      const double z = x.dot(f);
      const double rt2 = std::max(x.squaredNorm() - z * z, 0.0);
      double t = 0.0;
      if (rt2 + z * z > far2) {
        // Beyond near_radius the element average equals the centre value to (h / r)^2 / 24
        // (< 5e-6 at 1 mm for 10 um elements), and lumped runs use only first differences.
        t = point_scale / std::sqrt(rt2 * inv_st + z * z * inv_sl);
      } else {
        t = line_element_transfer_V_per_A(p, f, h, c, sl, st, r_min);
      }
      key[slot] = k;
      val[slot] = t;
      return t;
    };
    const auto weight = [&](Eigen::Index k) {
      double w = 0.0;
      const double tk = transfer(k);
      if (k > 0) {
        w += transfer(k - 1) - tk;
      }
      if (k < n - 1) {
        w += transfer(k + 1) - tk;
      }
      return d.g_S * w;
    };
    const auto s_of = [&](double k) { return (k + 0.5) * h; };
    // A run [lo, hi] of interior elements (1 <= lo <= hi <= n - 2): either its fine points,
    // or two lumped points with its exact weight and first moment. `sign` = +1 on the insertion
    // side (offset grows with s), -1 on the origin side.
    const auto add_run = [&](Eigen::Index lo, Eigen::Index hi, double sign) {
      const Eigen::Index count = hi - lo + 1;
      const double s_mid = s_of(0.5 * static_cast<double>(lo + hi));
      bool fine = count < 2;
      if (!fine) {
        Eigen::Vector3d p;
        Eigen::Vector3d f;
        path.at(s_mid, p, f);
        fine = (p - c).norm() < params.near_radius_m + 0.5 * static_cast<double>(count) * h;
      }
      if (fine) {
        if (sign > 0) {
          for (Eigen::Index k = lo; k <= hi; ++k) {
            pa.push_back((s_of(static_cast<double>(k)) - d.z_e) / lambda);
            pw.push_back(weight(k));
          }
        } else {
          for (Eigen::Index k = hi; k >= lo; --k) {
            pa.push_back((d.z_e - s_of(static_cast<double>(k))) / lambda);
            pw.push_back(weight(k));
          }
        }
        return;
      }
      const double t_lo_m = transfer(lo - 1);
      const double t_lo = transfer(lo);
      const double t_hi = transfer(hi);
      const double t_hi_p = transfer(hi + 1);
      const double x_lo = s_of(static_cast<double>(lo)) - s_mid;
      const double x_hi = s_of(static_cast<double>(hi)) - s_mid;
      const double m0 = d.g_S * ((t_hi_p - t_hi) - (t_lo - t_lo_m));
      const double m1 =
          sign * d.g_S * (x_hi * (t_hi_p - t_hi) - x_lo * (t_lo - t_lo_m) - h * (t_hi - t_lo));
      const double q = h * std::sqrt((static_cast<double>(count * count) - 1.0) / 12.0);
      const double a_c = sign * (s_mid - d.z_e);
      pa.push_back((a_c - q) / lambda);
      pw.push_back(0.5 * m0 - 0.5 * m1 / q);
      pa.push_back((a_c + q) / lambda);
      pw.push_back(0.5 * m0 + 0.5 * m1 / q);
    };
    // The recursion over the merged points (offsets ascending) into column j.
    const auto accumulate = [&]() {
      double s0 = 0.0;
      double s1 = 0.0;
      double s2 = 0.0;
      double s3 = 0.0;
      std::size_t next = 0;
      const std::size_t n_points = ma.size();
      double* phi = out.phi_V.col(j).data();
      double* dphi = derivatives ? out.dphi_V_per_s.col(j).data() : nullptr;
      double* d2phi = derivatives ? out.d2phi_V_per_s2.col(j).data() : nullptr;
      for (Eigen::Index i = 0; i < n_samples; ++i) {
        if (i > 0) {
          s3 = decay * (s3 + 3.0 * du * s2 + 3.0 * du2 * s1 + du3 * s0);
          s2 = decay * (s2 + 2.0 * du * s1 + du2 * s0);
          s1 = decay * (s1 + du * s0);
          s0 = decay * s0;
        }
        const double u = u0 + static_cast<double>(i) * du;
        while (next < n_points && ma[next] < u) {
          const double x = u - ma[next];
          const double e = mw[next] * std::exp(-x);
          s0 += e;
          s1 += e * x;
          s2 += e * x * x;
          s3 += e * x * x * x;
          ++next;
        }
        if (next == 0) {
          continue;
        }
        phi[i] = amp * s3;
        if (derivatives) {
          dphi[i] = amp * rate1 * (3.0 * s2 - s3);
          d2phi[i] = amp * rate2 * (6.0 * s1 - 6.0 * s2 + s3);
        }
      }
    };

    // Insertion side: k_right .. n - 1.
    pa.clear();
    pw.clear();
    for (Eigen::Index k = k_right; k < n;) {
      if (k == 0 || k == n - 1) {
        pa.push_back((s_of(static_cast<double>(k)) - d.z_e) / lambda);
        pw.push_back(weight(k));
        ++k;
        continue;
      }
      const Eigen::Index hi = std::min(k + m - 1, n - 2);
      add_run(k, hi, 1.0);
      k = hi + 1;
    }
    const std::size_t n_right = pa.size();
    // Origin side: k_right - 1 down to 0.
    for (Eigen::Index k = k_right - 1; k >= 0;) {
      if (k == 0 || k == n - 1) {
        pa.push_back((d.z_e - s_of(static_cast<double>(k))) / lambda);
        pw.push_back(weight(k));
        --k;
        continue;
      }
      const Eigen::Index lo = std::max<Eigen::Index>(k - m + 1, 1);
      add_run(lo, k, -1.0);
      k = lo - 1;
    }
    // Both sides' offsets are ascending: merge them into one recursion.
    ma.resize(pa.size());
    mw.resize(pa.size());
    {
      std::size_t a = 0;
      std::size_t b = n_right;
      for (std::size_t o = 0; o < pa.size(); ++o) {
        if (b >= pa.size() || (a < n_right && pa[a] <= pa[b])) {
          ma[o] = pa[a];
          mw[o] = pw[a++];
        } else {
          ma[o] = pa[b];
          mw[o] = pw[b++];
        }
      }
    }
    accumulate();
  }
  return out;
}

Eigen::MatrixXd fibre_potentials_direct(const FibrePath& fibre,
                                        const Eigen::Ref<const Eigen::MatrixX3d>& contacts_m,
                                        const AnisotropicMedium& medium,
                                        const FibrePotentialParams& params, double fs_Hz,
                                        Eigen::Index n_samples) {
  const Path path(fibre.polyline_m, fibre.offset_m);
  const Discretisation d = discretise(path, fibre, params);
  require_positive(fs_Hz, "fibre potentials", "fs_Hz");
  FibreGeometry1D g = fibre.geometry;
  g.length_m = path.length();
  g.end_plate_m = d.z_e;
  FibreSourceParams sp;
  sp.sigma_i_S_per_m = params.sigma_i_S_per_m;
  sp.dz_m = params.dz_m;
  sp.dt_s = 1.0 / fs_Hz;
  const FibreCurrents currents =
      fibre_current_density(g, sp, static_cast<double>(n_samples - 1) / fs_Hz);
  Eigen::MatrixXd transfer(d.n, contacts_m.rows());
  for (Eigen::Index k = 0; k < d.n; ++k) {
    Eigen::Vector3d p;
    Eigen::Vector3d f;
    path.at(currents.s_m[k], p, f);
    for (Eigen::Index j = 0; j < contacts_m.rows(); ++j) {
      transfer(k, j) = line_element_transfer_V_per_A(
          p, f, currents.dz_m, contacts_m.row(j).transpose(), medium.sigma_l_S_per_m,
          medium.sigma_t_S_per_m, 0.5 * fibre.geometry.diameter_m);
    }
  }
  Eigen::MatrixXd phi = currents.current_A * transfer;
  return phi.topRows(std::min(n_samples, phi.rows()));
}

} // namespace myotwin::forward
