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
  require_positive(params.iap_length_m, "fibre potentials", "iap_length_m");
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

namespace {

/// Checks the arguments of fibre_potentials() that discretise() does not.
/// \throws BadInput naming the argument.
void check_potential_args(const AnisotropicMedium& medium, const FibrePotentialParams& params,
                          double fs_Hz, double delay_s, Eigen::Index n_samples) {
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
}

/// The constants of the Rosenfalck wave recursion: the advance per sample du [lambda], the
/// offset at sample 0 u0 [lambda], exp(-du), du^2, du^3, the amplitude [V] and the rates of the
/// time derivatives v / lambda [1/s] and its square.
struct Wave {
  double du = 0.0;
  double u0 = 0.0;
  double decay = 0.0;
  double du2 = 0.0;
  double du3 = 0.0;
  double amp = 0.0;
  double rate1 = 0.0;
  double rate2 = 0.0;
};

Wave make_wave(double lambda, double cv_m_per_s, double fs_Hz, double delay_s) {
  const double v = cv_m_per_s;
  Wave w;
  w.du = v / (fs_Hz * lambda); // wave advance per sample [lambda]
  w.u0 = -v * delay_s / lambda;
  w.decay = std::exp(-w.du);
  w.du2 = w.du * w.du;
  w.du3 = w.du2 * w.du;
  w.amp = rosenfalck_amplitude_V;
  w.rate1 = v / lambda;
  w.rate2 = w.rate1 * w.rate1;
  return w;
}

/// What every contact shares: the path and its elements (n of length h [m], end-plate z_e
/// [m], axial conductance g_S [S]), the medium and the near radius [m] inside which elements
/// are averaged exactly and runs are not lumped.
struct Elements {
  const Path& path;
  const Discretisation& d;
  double r_min = 0.0;
  double sl = 0.0;
  double st = 0.0;
  double near_radius_m = 0.0;
  double far2 = 0.0;
  double inv_sl = 0.0;
  double inv_st = 0.0;
  double point_scale = 0.0;
  double lambda = 0.0; ///< length scale of the intracellular action potential [m]

  /// Arc length of the centre of element k [m].
  [[nodiscard]] double s_of(double k) const { return (k + 0.5) * d.h; }
};

/// The element-averaged transfer [V/A] of each element to one contact, with a small
/// direct-mapped cache, and the weight [V/V] of each element's transmembrane current.
class ContactTransfer {
public:
  ContactTransfer(const Elements& el, const Eigen::Vector3d& c) : el_(el), c_(c) { key_.fill(-1); }
  [[nodiscard]] const Eigen::Vector3d& contact() const { return c_; }

  /// Transfer of element k [V/A].
  double transfer(Eigen::Index k) {
    const auto slot = static_cast<std::size_t>(k & 15);
    if (key_[slot] == k) {
      return val_[slot];
    }
    const double h = el_.d.h;
    Eigen::Vector3d p;
    Eigen::Vector3d f;
    el_.path.at((static_cast<double>(k) + 0.5) * h, p, f);
    const Eigen::Vector3d x = c_ - p;
    const double z = x.dot(f);
    const double rt2 = std::max(x.squaredNorm() - z * z, 0.0);
    double t = 0.0;
    if (rt2 + z * z > el_.far2) {
      // Beyond near_radius the element average equals the centre value to (h / r)^2 / 24
      // (< 5e-6 at 1 mm for 10 um elements), and lumped runs use only first differences.
      t = el_.point_scale / std::sqrt(rt2 * el_.inv_st + z * z * el_.inv_sl);
    } else {
      t = line_element_transfer_V_per_A(p, f, h, c_, el_.sl, el_.st, el_.r_min);
    }
    key_[slot] = k;
    val_[slot] = t;
    return t;
  }

  /// Weight of element k: g_S times the second difference of the transfer.
  double weight(Eigen::Index k) {
    double w = 0.0;
    const double tk = transfer(k);
    if (k > 0) {
      w += transfer(k - 1) - tk;
    }
    if (k < el_.d.n - 1) {
      w += transfer(k + 1) - tk;
    }
    return el_.d.g_S * w;
  }

private:
  const Elements& el_;
  Eigen::Vector3d c_;
  std::array<Eigen::Index, 16> key_{};
  std::array<double, 16> val_{};
};

/// Source points: offsets from the end-plate along the wave [lambda] and their weights.
struct SourcePoints {
  std::vector<double> a;
  std::vector<double> w;
};

/// Adds a run [lo, hi] of interior elements (1 <= lo <= hi <= n - 2): either its fine points,
/// or two lumped points with its exact weight and first moment. `sign` = +1 on the insertion
/// side (offset grows with s), -1 on the origin side.
void add_run(const Elements& el, ContactTransfer& tr, Eigen::Index lo, Eigen::Index hi, double sign,
             SourcePoints& pts) {
  const double lambda = el.lambda;
  const double h = el.d.h;
  const double z_e = el.d.z_e;
  const Eigen::Index count = hi - lo + 1;
  const double s_mid = el.s_of(0.5 * static_cast<double>(lo + hi));
  bool fine = count < 2;
  if (!fine) {
    Eigen::Vector3d p;
    Eigen::Vector3d f;
    el.path.at(s_mid, p, f);
    fine = (p - tr.contact()).norm() < el.near_radius_m + 0.5 * static_cast<double>(count) * h;
  }
  if (fine) {
    if (sign > 0) {
      for (Eigen::Index k = lo; k <= hi; ++k) {
        pts.a.push_back((el.s_of(static_cast<double>(k)) - z_e) / lambda);
        pts.w.push_back(tr.weight(k));
      }
    } else {
      for (Eigen::Index k = hi; k >= lo; --k) {
        pts.a.push_back((z_e - el.s_of(static_cast<double>(k))) / lambda);
        pts.w.push_back(tr.weight(k));
      }
    }
    return;
  }
  const double t_lo_m = tr.transfer(lo - 1);
  const double t_lo = tr.transfer(lo);
  const double t_hi = tr.transfer(hi);
  const double t_hi_p = tr.transfer(hi + 1);
  const double x_lo = el.s_of(static_cast<double>(lo)) - s_mid;
  const double x_hi = el.s_of(static_cast<double>(hi)) - s_mid;
  const double g_S = el.d.g_S;
  const double m0 = g_S * ((t_hi_p - t_hi) - (t_lo - t_lo_m));
  const double m1 =
      sign * g_S * (x_hi * (t_hi_p - t_hi) - x_lo * (t_lo - t_lo_m) - h * (t_hi - t_lo));
  const double q = h * std::sqrt((static_cast<double>(count * count) - 1.0) / 12.0);
  const double a_c = sign * (s_mid - z_e);
  pts.a.push_back((a_c - q) / lambda);
  pts.w.push_back(0.5 * m0 - 0.5 * m1 / q);
  pts.a.push_back((a_c + q) / lambda);
  pts.w.push_back(0.5 * m0 + 0.5 * m1 / q);
}

/// The source points of one contact in runs of m elements: the insertion side k_right .. n - 1
/// (offsets ascending), then the origin side k_right - 1 down to 0 (offsets ascending); the end
/// elements alone. Returns the number of insertion-side points.
std::size_t collect_points(const Elements& el, ContactTransfer& tr, Eigen::Index m,
                           Eigen::Index k_right, SourcePoints& pts) {
  const double lambda = el.lambda;
  const Eigen::Index n = el.d.n;
  pts.a.clear();
  pts.w.clear();
  // Insertion side: k_right .. n - 1.
  for (Eigen::Index k = k_right; k < n;) {
    if (k == 0 || k == n - 1) {
      pts.a.push_back((el.s_of(static_cast<double>(k)) - el.d.z_e) / lambda);
      pts.w.push_back(tr.weight(k));
      ++k;
      continue;
    }
    const Eigen::Index hi = std::min(k + m - 1, n - 2);
    add_run(el, tr, k, hi, 1.0, pts);
    k = hi + 1;
  }
  const std::size_t n_right = pts.a.size();
  // Origin side: k_right - 1 down to 0.
  for (Eigen::Index k = k_right - 1; k >= 0;) {
    if (k == 0 || k == n - 1) {
      pts.a.push_back((el.d.z_e - el.s_of(static_cast<double>(k))) / lambda);
      pts.w.push_back(tr.weight(k));
      --k;
      continue;
    }
    const Eigen::Index lo = std::max<Eigen::Index>(k - m + 1, 1);
    add_run(el, tr, lo, k, -1.0, pts);
    k = lo - 1;
  }
  return n_right;
}

/// Merges the two sides' ascending offsets (the first n_right points, then the rest) into one
/// ascending sequence `merged`.
void merge_sides(const SourcePoints& pts, std::size_t n_right, SourcePoints& merged) {
  merged.a.resize(pts.a.size());
  merged.w.resize(pts.a.size());
  std::size_t a = 0;
  std::size_t b = n_right;
  for (std::size_t o = 0; o < pts.a.size(); ++o) {
    if (b >= pts.a.size() || (a < n_right && pts.a[a] <= pts.a[b])) {
      merged.a[o] = pts.a[a];
      merged.w[o] = pts.w[a++];
    } else {
      merged.a[o] = pts.a[b];
      merged.w[o] = pts.w[b++];
    }
  }
}

/// The recursion over the merged points (offsets ascending) into column j of `out`: the
/// potential [V] and, with `derivatives`, its first two time derivatives.
void accumulate(const SourcePoints& merged, const Wave& wave, Eigen::Index n_samples,
                bool derivatives, Eigen::Index j, FibrePotentials& out) {
  double s0 = 0.0;
  double s1 = 0.0;
  double s2 = 0.0;
  double s3 = 0.0;
  std::size_t next = 0;
  const std::size_t n_points = merged.a.size();
  const std::vector<double>& ma = merged.a;
  const std::vector<double>& mw = merged.w;
  const double du = wave.du;
  const double du2 = wave.du2;
  const double du3 = wave.du3;
  const double decay = wave.decay;
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
    const double u = wave.u0 + static_cast<double>(i) * du;
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
    phi[i] = wave.amp * s3;
    if (derivatives) {
      dphi[i] = wave.amp * wave.rate1 * (3.0 * s2 - s3);
      d2phi[i] = wave.amp * wave.rate2 * (6.0 * s1 - 6.0 * s2 + s3);
    }
  }
}

} // namespace

FibrePotentials fibre_potentials(const FibrePath& fibre,
                                 const Eigen::Ref<const Eigen::MatrixX3d>& contacts_m,
                                 const AnisotropicMedium& medium,
                                 const FibrePotentialParams& params, double fs_Hz, double delay_s,
                                 Eigen::Index n_samples, bool derivatives) {
  // 1. The elements and the checks.
  const Path path(fibre.polyline_m, fibre.offset_m);
  const Discretisation d = discretise(path, fibre, params);
  check_potential_args(medium, params, fs_Hz, delay_s, n_samples);
  const Eigen::Index n = d.n;
  const double h = d.h;
  const double sl = medium.sigma_l_S_per_m;
  const double st = medium.sigma_t_S_per_m;
  const Elements el{path,
                    d,
                    0.5 * fibre.geometry.diameter_m,
                    sl,
                    st,
                    params.near_radius_m,
                    params.near_radius_m * params.near_radius_m,
                    1.0 / sl,
                    1.0 / st,
                    1.0 / (4.0 * M_PI * st * std::sqrt(sl)),
                    params.iap_length_m};
  // Elements per lumped run, and the first element on the insertion side of the end-plate:
  // s_k = (k + 1/2) h >= z_e.
  const auto m = static_cast<Eigen::Index>(std::max(1.0, std::round(params.coarse_step_m / h)));
  const auto k_right =
      std::clamp<Eigen::Index>(static_cast<Eigen::Index>(std::ceil(d.z_e / h - 0.5)), 0, n);

  // 2. The outputs and the wave.
  const Eigen::Index n_contacts = contacts_m.rows();
  FibrePotentials out;
  out.phi_V = Eigen::MatrixXd::Zero(n_samples, n_contacts);
  if (derivatives) {
    out.dphi_V_per_s = Eigen::MatrixXd::Zero(n_samples, n_contacts);
    out.d2phi_V_per_s2 = Eigen::MatrixXd::Zero(n_samples, n_contacts);
  }
  const Wave wave = make_wave(params.iap_length_m, fibre.geometry.cv_m_per_s, fs_Hz, delay_s);

  // 3. Per contact: the source points of both sides, merged, through the recursion.
  SourcePoints pts;
  SourcePoints merged;
  for (Eigen::Index j = 0; j < n_contacts; ++j) {
    ContactTransfer tr(el, contacts_m.row(j).transpose());
    const std::size_t n_right = collect_points(el, tr, m, k_right, pts);
    merge_sides(pts, n_right, merged);
    accumulate(merged, wave, n_samples, derivatives, j, out);
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
  require_positive(fibre.geometry.cv_m_per_s, "fibre potentials", "cv_m_per_s");
  if (n_samples < 1)
    throw BadInput("fibre potentials: n_samples = " + std::to_string(n_samples) + ": must be >= 1");
  // Deviation of every element centre from rest at every instant, then the sealed-end second
  // differences (the element currents [A]).
  const double lambda = params.iap_length_m;
  Eigen::MatrixXd dev(n_samples, d.n);
  for (Eigen::Index i = 0; i < n_samples; ++i) {
    const double travelled = fibre.geometry.cv_m_per_s * static_cast<double>(i) / fs_Hz;
    for (Eigen::Index k = 0; k < d.n; ++k) {
      const double u =
          (travelled - std::abs((static_cast<double>(k) + 0.5) * d.h - d.z_e)) / lambda;
      dev(i, k) = u > 0.0 ? rosenfalck_amplitude_V * u * u * u * std::exp(-u) : 0.0;
    }
  }
  Eigen::MatrixXd current = Eigen::MatrixXd::Zero(n_samples, d.n);
  for (Eigen::Index k = 0; k < d.n; ++k) {
    if (k > 0)
      current.col(k) += d.g_S * (dev.col(k - 1) - dev.col(k));
    if (k < d.n - 1)
      current.col(k) += d.g_S * (dev.col(k + 1) - dev.col(k));
  }
  Eigen::MatrixXd transfer(d.n, contacts_m.rows());
  for (Eigen::Index k = 0; k < d.n; ++k) {
    Eigen::Vector3d p;
    Eigen::Vector3d f;
    path.at((static_cast<double>(k) + 0.5) * d.h, p, f);
    for (Eigen::Index j = 0; j < contacts_m.rows(); ++j) {
      transfer(k, j) = line_element_transfer_V_per_A(p, f, d.h, contacts_m.row(j).transpose(),
                                                     medium.sigma_l_S_per_m, medium.sigma_t_S_per_m,
                                                     0.5 * fibre.geometry.diameter_m);
    }
  }
  return current * transfer;
}

} // namespace myotwin::forward
