#include "myotwin/forward/conductor/cylinder_conductor.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <string_view>

#include <Eigen/Dense>

#include "myotwin/core/checks.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::forward {

namespace {

constexpr double pi = M_PI;

std::string mm(double value_m) {
  return format_number(units::m_to_mm(value_m)) + " mm";
}

void validate_params(const CylinderParams& p) {
  require_positive(p.mode_tolerance, "cylinder conductor", "mode_tolerance");
  if (!(p.mode_tolerance < 1.0)) {
    throw BadInput("cylinder conductor: mode_tolerance = " + format_number(p.mode_tolerance) +
                   ": must be < 1");
  }
  if (p.max_order < 1) {
    throw BadInput("cylinder conductor: max_order = " + std::to_string(p.max_order) +
                   ": must be >= 1");
  }
  require_positive(p.k_step_factor, "cylinder conductor", "k_step_factor");
  require_positive(p.table_step_factor, "cylinder conductor", "table_step_factor");
  require_positive(p.table_z_max_m, "cylinder conductor", "table_z_max_m");
  if (p.table_n_radii < 4) {
    throw BadInput("cylinder conductor: table_n_radii = " + std::to_string(p.table_n_radii) +
                   ": must be >= 4 (cubic interpolation)");
  }
}

/// Exponentially scaled I_0, K_0, K_1: e^-x I_0(x), e^x K_0(x), e^x K_1(x).
void scaled_ik01(double x, double& ie0, double& ke0, double& ke1) {
  if (x <= 500.0) {
    ie0 = std::cyl_bessel_i(0.0, x) * std::exp(-x);
    ke0 = std::cyl_bessel_k(0.0, x) * std::exp(x);
    ke1 = std::cyl_bessel_k(1.0, x) * std::exp(x);
    return;
  }
  // Hankel asymptotic series: a_k(nu) = prod_j (4 nu^2 - (2j - 1)^2) / (k! (8x)^k).
  auto series = [x](double nu, double sign) {
    const double mu = 4.0 * nu * nu;
    double term = 1.0, sum = 1.0;
    for (int k = 1; k <= 14; ++k) {
      term *= (mu - (2.0 * k - 1.0) * (2.0 * k - 1.0)) / (k * 8.0 * x);
      sum += (sign > 0.0 || k % 2 == 0) ? term : -term;
    }
    return sum;
  };
  ie0 = series(0.0, -1.0) / std::sqrt(2.0 * pi * x);
  ke0 = series(0.0, 1.0) * std::sqrt(pi / (2.0 * x));
  ke1 = series(1.0, 1.0) * std::sqrt(pi / (2.0 * x));
}

/// Gaussian elimination with partial pivoting of a 7 x 7 system (augmented column 7).
bool solve7(std::array<std::array<double, 8>, 7>& m, std::array<double, 7>& x) {
  for (int c = 0; c < 7; ++c) {
    int p = c;
    for (int r = c + 1; r < 7; ++r) {
      if (std::abs(m[r][c]) > std::abs(m[p][c])) {
        p = r;
      }
    }
    if (!(std::abs(m[p][c]) > 0.0)) {
      return false;
    }
    std::swap(m[p], m[c]);
    const double inv = 1.0 / m[c][c];
    for (int r = c + 1; r < 7; ++r) {
      const double f = m[r][c] * inv;
      if (f != 0.0) {
        for (int j = c; j < 8; ++j) {
          m[r][j] -= f * m[c][j];
        }
      }
    }
  }
  for (int r = 6; r >= 0; --r) {
    double s = m[r][7];
    for (int j = r + 1; j < 7; ++j) {
      s -= m[r][j] * x[j];
    }
    x[r] = s / m[r][r];
  }
  return true;
}

/// Scratch space for one spectrum evaluation.
struct SpectrumWork {
  BesselLogs bone, musc_a, musc_b, musc_0, fat_b, c, d;
};

void check_source(const CylinderLayers& L, double r0) {
  const double tol = 1e-9;
  if (!std::isfinite(r0) || r0 < L.bone_radius_m - tol || r0 > L.muscle_radius_m + tol) {
    throw BadInput("cylinder conductor: source radius " + mm(r0) +
                   " lies outside the muscle layer [" + mm(L.bone_radius_m) + ", " +
                   mm(L.muscle_radius_m) + "]");
  }
}

/// G_n(R; k) for n = 0..n_max into `out` (n_max + 1 values); layers validated, r0 in [a, b].
void spectrum(const CylinderLayers& L, double r0, double k, int n_max, SpectrumWork& w,
              double* out) {
  const double a = L.bone_radius_m, b = L.muscle_radius_m, c = L.fat_radius_m, R = L.skin_radius_m;
  const double sr = L.sigma_muscle_rho_S_per_m, sb = L.sigma_bone_S_per_m, sf = L.sigma_fat_S_per_m,
               ss = L.sigma_skin_S_per_m;
  const double lam = std::sqrt(L.sigma_muscle_z_S_per_m / sr);
  const double lk = lam * k;
  r0 = std::clamp(r0, a, b);
  log_bessel_ik(k * a, n_max + 1, w.bone);
  log_bessel_ik(lk * a, n_max + 1, w.musc_a);
  log_bessel_ik(lk * b, n_max + 1, w.musc_b);
  log_bessel_ik(lk * r0, n_max + 1, w.musc_0);
  log_bessel_ik(k * b, n_max + 1, w.fat_b);
  log_bessel_ik(k * c, n_max + 1, w.c);
  log_bessel_ik(k * R, n_max + 1, w.d);
  std::array<std::array<double, 8>, 7> m{};
  std::array<double, 7> u{};
  for (int n = 0; n <= n_max; ++n) {
    const auto i = static_cast<std::size_t>(n);
    const double rIm = std::exp(w.musc_a.log_i[i] - w.musc_b.log_i[i]);
    const double rKm = std::exp(w.musc_b.log_k[i] - w.musc_a.log_k[i]);
    const double rIf = std::exp(w.fat_b.log_i[i] - w.c.log_i[i]);
    const double rKf = std::exp(w.c.log_k[i] - w.fat_b.log_k[i]);
    const double rIs = std::exp(w.c.log_i[i] - w.d.log_i[i]);
    const double rKs = std::exp(w.d.log_k[i] - w.c.log_k[i]);
    const double Fa = std::exp(w.musc_0.log_k[i] + w.musc_a.log_i[i]) / sr;
    const double dFa = Fa * lk * w.musc_a.dlog_i[i];
    const double Fb = std::exp(w.musc_0.log_i[i] + w.musc_b.log_k[i]) / sr;
    const double dFb = Fb * lk * w.musc_b.dlog_k[i];
    // Row scales of the current equations: r / (n + 1 + lambda k r) makes them O(1).
    const double nn = n + 1.0;
    const double qa = a / (nn + lk * a), qb = b / (nn + lk * b), qc = c / (nn + lk * c),
                 qd = R / (nn + k * R);
    for (auto& row : m) {
      row.fill(0.0);
    }
    // Unknowns: C (bone), A, B (muscle), D, E (fat), F, H (skin).
    m[0] = {1.0, -rIm, -1.0, 0, 0, 0, 0, Fa};
    m[1] = {qa * sb * k * w.bone.dlog_i[i],
            -qa * sr * lk * w.musc_a.dlog_i[i] * rIm,
            -qa * sr * lk * w.musc_a.dlog_k[i],
            0,
            0,
            0,
            0,
            qa * sr * dFa};
    m[2] = {0, 1.0, rKm, -rIf, -1.0, 0, 0, -Fb};
    m[3] = {0,
            qb * sr * lk * w.musc_b.dlog_i[i],
            qb * sr * lk * w.musc_b.dlog_k[i] * rKm,
            -qb * sf * k * w.fat_b.dlog_i[i] * rIf,
            -qb * sf * k * w.fat_b.dlog_k[i],
            0,
            0,
            -qb * sr * dFb};
    m[4] = {0, 0, 0, 1.0, rKf, -rIs, -1.0, 0};
    m[5] = {0,
            0,
            0,
            qc * sf * k * w.c.dlog_i[i],
            qc * sf * k * w.c.dlog_k[i] * rKf,
            -qc * ss * k * w.c.dlog_i[i] * rIs,
            -qc * ss * k * w.c.dlog_k[i],
            0};
    m[6] = {0, 0, 0, 0, 0, qd * k * w.d.dlog_i[i], qd * k * w.d.dlog_k[i] * rKs, 0};
    if (!solve7(m, u)) {
      throw NumericalError("cylinder conductor: singular boundary system at n = " +
                           std::to_string(n) + ", k = " + format_number(k) + " rad/m");
    }
    out[n] = u[5] + rKs * u[6];
  }
}

/// Decay length of the spectrum of a source at r0: fat + skin + anisotropy-scaled muscle [m].
double decay_length_m(const CylinderLayers& L, double r0) {
  const double lam = std::sqrt(L.sigma_muscle_z_S_per_m / L.sigma_muscle_rho_S_per_m);
  return (L.skin_radius_m - L.muscle_radius_m) + lam * (L.muscle_radius_m - r0);
}

int order_count(const CylinderLayers& L, double r0_max, const CylinderParams& p) {
  const double ratio = std::log(L.skin_radius_m / r0_max);
  const double n = std::ceil(std::log(1.0 / p.mode_tolerance) / ratio) + 2.0;
  if (!(n <= p.max_order)) {
    throw BadInput("cylinder conductor: a source at radius " + mm(r0_max) + " under a skin at " +
                   mm(L.skin_radius_m) + " needs " + format_number(n) +
                   " angular orders for mode_tolerance " + format_number(p.mode_tolerance) +
                   ": more than max_order = " + std::to_string(p.max_order));
  }
  return std::max(8, static_cast<int>(n));
}

/// The k grid: from 0.01 / R to 36 / t, spacing f min(0.05 k, 0.08 / t).
std::vector<double> k_grid(const CylinderLayers& L, double t, double f) {
  std::vector<double> k;
  const double k_max = 36.0 / t;
  double kk = 0.01 / L.skin_radius_m;
  while (kk < k_max) {
    k.push_back(kk);
    kk += f * std::min(0.05 * kk, 0.08 / t);
  }
  k.push_back(k_max);
  return k;
}

/// Filon weights w_j(z): int_0^kmax L(k) cos(k z) dk = sum_j w_j G_j for the piecewise-linear
/// interpolant L of G on the grid, plus G_0 held constant on [0, k_0].
void filon_weights(const std::vector<double>& k, double z, double* w) {
  const std::size_t n = k.size();
  std::fill(w, w + n, 0.0);
  w[0] = (z == 0.0) ? k[0] : std::sin(k[0] * z) / z;
  for (std::size_t j = 0; j + 1 < n; ++j) {
    const double delta = 0.5 * (k[j + 1] - k[j]);
    const double mid = 0.5 * (k[j + 1] + k[j]);
    const double t = delta * z;
    double sinc = 0.0, f = 0.0;
    if (std::abs(t) < 0.05) {
      const double t2 = t * t;
      sinc = 1.0 - t2 / 6.0 + t2 * t2 / 120.0;
      f = t * (-1.0 / 3.0 + t2 / 30.0 - t2 * t2 / 840.0);
    } else {
      sinc = std::sin(t) / t;
      f = (std::cos(t) - sinc) / t;
    }
    const double cm = std::cos(mid * z), sm = std::sin(mid * z);
    w[j] += delta * (cm * sinc - sm * f);
    w[j + 1] += delta * (cm * sinc + sm * f);
  }
}

/// #k x (N + 1) spectrum matrix with the closed-form 1 / k^2 part S(k) removed from column 0.
Eigen::MatrixXd spectrum_matrix(const CylinderLayers& L, double r0, const std::vector<double>& k,
                                int n_max, double sigma_axial, double kappa) {
  const auto n_k = static_cast<Eigen::Index>(k.size());
  Eigen::MatrixXd g(n_max + 1, n_k);
  SpectrumWork work;
  for (Eigen::Index j = 0; j < n_k; ++j) {
    const double kk = k[static_cast<std::size_t>(j)];
    spectrum(L, r0, kk, n_max, work, g.col(j).data());
    g(0, j) -= 2.0 * pi * kappa * kappa / (sigma_axial * kk * kk * (kk * kk + kappa * kappa));
  }
  return g.transpose();
}

/// Closed-form far-field part -(|z| + exp(-kappa |z|) / kappa) / (2 Sigma) [V/A].
double far_field(double z, double sigma_axial, double kappa) {
  const double az = std::abs(z);
  return -(az + std::exp(-kappa * az) / kappa) / (2.0 * sigma_axial);
}

/// Cubic Lagrange weights at s in [0, 3] for nodes 0..3.
std::array<double, 4> lagrange4(double s) {
  return {-(s - 1.0) * (s - 2.0) * (s - 3.0) / 6.0, s * (s - 2.0) * (s - 3.0) / 2.0,
          -s * (s - 1.0) * (s - 3.0) / 2.0, s * (s - 1.0) * (s - 2.0) / 6.0};
}

} // namespace

void log_bessel_ik(double x, int n_max, BesselLogs& out) {
  if (!(x > 0.0) || !std::isfinite(x) || n_max < 0) {
    throw BadInput("log_bessel_ik: x = " + format_number(x) + ", n_max = " + std::to_string(n_max) +
                   ": need finite x > 0 and n_max >= 0");
  }
  const auto n1 = static_cast<std::size_t>(n_max) + 1;
  out.log_i.resize(n1);
  out.log_k.resize(n1);
  out.dlog_i.resize(n1);
  out.dlog_k.resize(n1);
  double ie0 = 0.0, ke0 = 0.0, ke1 = 0.0;
  scaled_ik01(x, ie0, ke0, ke1);
  // I: ratios r_n = I_n / I_{n-1} by backward recurrence r_n = 1 / (2n / x + r_{n+1}), started
  // far enough above n_max that the start error has decayed (contraction r^2 per step).
  const int top = n_max + 12 + static_cast<int>(std::ceil(std::sqrt(20.0 * x)));
  double r_next = x / (top + 1.0 + std::sqrt((top + 1.0) * (top + 1.0) + x * x));
  // ratio[n] = r_n for n = 1..n_max + 1
  thread_local std::vector<double> ratio;
  ratio.assign(n1 + 1, 0.0);
  for (int n = top; n >= 1; --n) {
    const double r = 1.0 / (2.0 * n / x + r_next);
    if (n <= n_max + 1) {
      ratio[static_cast<std::size_t>(n)] = r;
    }
    r_next = r;
  }
  out.log_i[0] = std::log(ie0) + x;
  for (std::size_t n = 0; n < n1; ++n) {
    if (n > 0) {
      out.log_i[n] = out.log_i[n - 1] + std::log(ratio[n]);
    }
    out.dlog_i[n] = ratio[n + 1] + static_cast<double>(n) / x;
  }
  // K: ratios q_n = K_n / K_{n-1}, forward q_{n+1} = 1 / q_n + 2n / x (stable).
  out.log_k[0] = std::log(ke0) - x;
  double q = ke1 / ke0; // q_1
  for (std::size_t n = 0; n < n1; ++n) {
    if (n > 0) {
      out.log_k[n] = out.log_k[n - 1] + std::log(q);
      q = 1.0 / q + 2.0 * static_cast<double>(n) / x; // q_{n+1}
    }
    out.dlog_k[n] = -q + static_cast<double>(n) / x;
  }
}

void validate_cylinder_layers(const CylinderLayers& L) {
  const std::array<std::pair<const char*, double>, 4> radii = {
      {{"bone_radius_m", L.bone_radius_m},
       {"muscle_radius_m", L.muscle_radius_m},
       {"fat_radius_m", L.fat_radius_m},
       {"skin_radius_m", L.skin_radius_m}}};
  double previous = 0.0;
  const char* previous_name = "0";
  for (const auto& [name, value] : radii) {
    if (!std::isfinite(value) || !(value > previous)) {
      throw BadInput(std::string("cylinder conductor: ") + name + " = " + mm(value) +
                     ": radii must increase from bone to skin (must be > " + previous_name + " = " +
                     mm(previous) + ")");
    }
    previous = value;
    previous_name = name;
  }
  require_positive(L.sigma_bone_S_per_m, "cylinder conductor", "sigma_bone_S_per_m");
  require_positive(L.sigma_muscle_z_S_per_m, "cylinder conductor", "sigma_muscle_z_S_per_m");
  require_positive(L.sigma_muscle_rho_S_per_m, "cylinder conductor", "sigma_muscle_rho_S_per_m");
  require_positive(L.sigma_fat_S_per_m, "cylinder conductor", "sigma_fat_S_per_m");
  require_positive(L.sigma_skin_S_per_m, "cylinder conductor", "sigma_skin_S_per_m");
}

CylinderLayers read_cylinder_layers(ConfigReader& section) {
  CylinderLayers L;
  auto radius = [&section](const char* key, double default_m, std::string_view doc) {
    return units::mm_to_m(
        section.optional<double>(key, units::m_to_mm(default_m), positive(), doc));
  };
  L.bone_radius_m = radius("bone_radius_mm", L.bone_radius_m,
                           "outer radius of the bone, the innermost layer (Farina et al. 2004)");
  L.muscle_radius_m = radius("muscle_radius_mm", L.muscle_radius_m,
                             "outer radius of the muscle layer; > bone_radius_mm");
  L.fat_radius_m =
      radius("fat_radius_mm", L.fat_radius_m, "outer radius of the fat layer; > muscle_radius_mm");
  L.skin_radius_m = radius("skin_radius_mm", L.skin_radius_m,
                           "outer radius of the skin, the insulated surface; > fat_radius_mm");
  L.sigma_bone_S_per_m =
      section.optional<double>("sigma_bone_S_per_m", L.sigma_bone_S_per_m, positive(),
                               "conductivity of the bone layer, isotropic");
  L.sigma_muscle_z_S_per_m = section.optional<double>(
      "sigma_muscle_z_S_per_m", L.sigma_muscle_z_S_per_m, positive(),
      "conductivity of the muscle along the cylinder axis (the fibre direction)");
  L.sigma_muscle_rho_S_per_m =
      section.optional<double>("sigma_muscle_rho_S_per_m", L.sigma_muscle_rho_S_per_m, positive(),
                               "conductivity of the muscle across the axis (radial and angular)");
  L.sigma_fat_S_per_m =
      section.optional<double>("sigma_fat_S_per_m", L.sigma_fat_S_per_m, positive(),
                               "conductivity of the fat layer, isotropic");
  L.sigma_skin_S_per_m =
      section.optional<double>("sigma_skin_S_per_m", L.sigma_skin_S_per_m, positive(),
                               "conductivity of the skin layer, isotropic");
  const std::array<std::pair<const char*, double>, 4> radii = {
      {{"bone_radius_mm", L.bone_radius_m},
       {"muscle_radius_mm", L.muscle_radius_m},
       {"fat_radius_mm", L.fat_radius_m},
       {"skin_radius_mm", L.skin_radius_m}}};
  for (std::size_t i = 1; i < radii.size(); ++i) {
    if (!(radii[i].second > radii[i - 1].second)) {
      section.fail(radii[i].first, std::string("must be > ") + radii[i - 1].first + " = " +
                                       format_number(units::m_to_mm(radii[i - 1].second)) +
                                       " (radii increase from bone to skin)");
    }
  }
  return L;
}

double cylinder_axial_conductance_S_m(const CylinderLayers& L) {
  const double a2 = L.bone_radius_m * L.bone_radius_m, b2 = L.muscle_radius_m * L.muscle_radius_m,
               c2 = L.fat_radius_m * L.fat_radius_m, d2 = L.skin_radius_m * L.skin_radius_m;
  return pi * (L.sigma_bone_S_per_m * a2 + L.sigma_muscle_z_S_per_m * (b2 - a2) +
               L.sigma_fat_S_per_m * (c2 - b2) + L.sigma_skin_S_per_m * (d2 - c2));
}

Eigen::VectorXd cylinder_skin_spectrum(const CylinderLayers& layers, double source_r_m,
                                       double k_per_m, int n_max) {
  validate_cylinder_layers(layers);
  check_source(layers, source_r_m);
  if (!(k_per_m > 0.0) || !std::isfinite(k_per_m) || n_max < 0) {
    throw BadInput("cylinder_skin_spectrum: k = " + format_number(k_per_m) + " rad/m, n_max = " +
                   std::to_string(n_max) + ": need finite k > 0 and n_max >= 0");
  }
  Eigen::VectorXd g(n_max + 1);
  SpectrumWork work;
  spectrum(layers, source_r_m, k_per_m, n_max, work, g.data());
  return g;
}

Eigen::VectorXd cylinder_skin_potential_V(const CylinderLayers& layers, double source_r_m,
                                          const Eigen::Ref<const Eigen::VectorXd>& dtheta_rad,
                                          const Eigen::Ref<const Eigen::VectorXd>& dz_m,
                                          const CylinderParams& params) {
  validate_cylinder_layers(layers);
  validate_params(params);
  check_source(layers, source_r_m);
  if (dtheta_rad.size() != dz_m.size()) {
    throw BadInput("cylinder_skin_potential_V: " + std::to_string(dtheta_rad.size()) +
                   " angular offsets but " + std::to_string(dz_m.size()) +
                   " axial offsets: must be equal");
  }
  if (!dtheta_rad.allFinite() || !dz_m.allFinite()) {
    throw BadInput("cylinder_skin_potential_V: offsets must be finite");
  }
  const double r0 = std::clamp(source_r_m, layers.bone_radius_m, layers.muscle_radius_m);
  const int n_max = order_count(layers, r0, params);
  const std::vector<double> k = k_grid(layers, decay_length_m(layers, r0), params.k_step_factor);
  const double sigma_axial = cylinder_axial_conductance_S_m(layers);
  const double kappa = 1.0 / layers.skin_radius_m;
  const Eigen::MatrixXd g = spectrum_matrix(layers, r0, k, n_max, sigma_axial, kappa);
  const auto n_k = static_cast<Eigen::Index>(k.size());
  Eigen::VectorXd out(dz_m.size());
  Eigen::VectorXd coef(n_max + 1), w(n_k);
  for (Eigen::Index i = 0; i < dz_m.size(); ++i) {
    for (int n = 0; n <= n_max; ++n) {
      coef[n] = (n == 0 ? 1.0 : 2.0) * std::cos(n * dtheta_rad[i]) / (2.0 * pi * pi);
    }
    filon_weights(k, dz_m[i], w.data());
    out[i] = w.dot(g * coef) + far_field(dz_m[i], sigma_axial, kappa);
  }
  return out;
}

CylinderSkinTable::CylinderSkinTable(const CylinderLayers& layers, const CylinderParams& params)
    : layers_(layers) {
  validate_cylinder_layers(layers);
  validate_params(params);
  const double R = layers.skin_radius_m, a = layers.bone_radius_m, b = layers.muscle_radius_m;
  sigma_axial_ = cylinder_axial_conductance_S_m(layers);
  kappa_ = 1.0 / R;
  n_r_ = params.table_n_radii;
  log_depth_lo_ = std::log(R - b);
  h_log_depth_ = (std::log(R - a) - log_depth_lo_) / static_cast<double>(n_r_ - 1);
  const double t = R - b; // decay length of the shallowest source
  n_orders_ = order_count(layers, b, params);
  const double h_theta_target = 0.1 * params.table_step_factor * t / R;
  n_theta_ = static_cast<Eigen::Index>(std::ceil(pi / h_theta_target)) + 1;
  h_theta_ = pi / static_cast<double>(n_theta_ - 1);
  h_u_ = 0.05 * params.table_step_factor;
  z_s_ = 0.1 * params.table_step_factor * t / h_u_;
  n_z_ = static_cast<Eigen::Index>(std::ceil(std::asinh(params.table_z_max_m / z_s_) / h_u_)) + 1;
  n_z_ = std::max<Eigen::Index>(n_z_, 4);
  z_max_ = z_s_ * std::sinh(static_cast<double>(n_z_ - 1) * h_u_);

  const std::vector<double> k = k_grid(layers, t, params.k_step_factor);
  const auto n_k = static_cast<Eigen::Index>(k.size());
  Eigen::MatrixXd W(n_z_, n_k);
  {
    Eigen::VectorXd w(n_k);
    for (Eigen::Index i = 0; i < n_z_; ++i) {
      filon_weights(k, z_s_ * std::sinh(static_cast<double>(i) * h_u_), w.data());
      W.row(i) = w.transpose();
    }
  }
  Eigen::MatrixXd C(n_orders_ + 1, n_theta_);
  for (Eigen::Index m = 0; m < n_theta_; ++m) {
    for (int n = 0; n <= n_orders_; ++n) {
      C(n, m) =
          (n == 0 ? 1.0 : 2.0) * std::cos(n * static_cast<double>(m) * h_theta_) / (2.0 * pi * pi);
    }
  }
  table_.assign(static_cast<std::size_t>(n_r_ * n_z_ * n_theta_), 0.0);
  std::string error;
#pragma omp parallel for schedule(dynamic, 1)
  for (Eigen::Index j = 0; j < n_r_; ++j) {
    try {
      const double depth = std::exp(log_depth_lo_ + static_cast<double>(j) * h_log_depth_);
      const double r0 = std::clamp(R - depth, a, b);
      const Eigen::MatrixXd g = spectrum_matrix(layers, r0, k, n_orders_, sigma_axial_, kappa_);
      const Eigen::MatrixXd T = (W * g) * C; // n_z x n_theta
      double* dst = table_.data() + static_cast<std::size_t>(j * n_z_ * n_theta_);
      for (Eigen::Index i = 0; i < n_z_; ++i) {
        for (Eigen::Index m = 0; m < n_theta_; ++m) {
          dst[i * n_theta_ + m] = T(i, m);
        }
      }
    } catch (const std::exception& e) {
#pragma omp critical(cylinder_table_error)
      if (error.empty()) {
        error = e.what();
      }
    }
  }
  if (!error.empty()) {
    throw NumericalError(error);
  }
}

double CylinderSkinTable::potential_V(double r0_m, double dtheta_rad, double dz_m) const {
  check_source(layers_, r0_m);
  const double R = layers_.skin_radius_m;
  const double r0 = std::clamp(r0_m, layers_.bone_radius_m, layers_.muscle_radius_m);
  const double az = std::abs(dz_m);
  const double far = far_field(az, sigma_axial_, kappa_);
  if (az >= z_max_) {
    return far;
  }
  // radial stencil (one-sided at the ends)
  const double pr = (std::log(R - r0) - log_depth_lo_) / h_log_depth_;
  const Eigen::Index ir =
      std::clamp(static_cast<Eigen::Index>(std::floor(pr)) - 1, Eigen::Index{0}, n_r_ - 4);
  const auto wr = lagrange4(pr - static_cast<double>(ir));
  // angle: even and 2 pi periodic, reduced to [0, pi], reflected at both ends
  double th = std::fmod(std::abs(dtheta_rad), 2.0 * pi);
  if (th > pi) {
    th = 2.0 * pi - th;
  }
  const double pt = th / h_theta_;
  const Eigen::Index it = static_cast<Eigen::Index>(std::floor(pt)) - 1;
  const auto wt = lagrange4(pt - static_cast<double>(it));
  std::array<Eigen::Index, 4> mt{};
  for (int q = 0; q < 4; ++q) {
    Eigen::Index m = it + q;
    if (m < 0) {
      m = -m;
    }
    if (m > n_theta_ - 1) {
      m = 2 * (n_theta_ - 1) - m;
    }
    mt[static_cast<std::size_t>(q)] = m;
  }
  // axial: u = asinh(z / z_s) / h_u, even in u; one-sided at z_max
  const double pz = std::asinh(az / z_s_) / h_u_;
  Eigen::Index iz = static_cast<Eigen::Index>(std::floor(pz)) - 1;
  iz = std::min(iz, n_z_ - 4);
  const auto wz = lagrange4(pz - static_cast<double>(iz));
  double sum = 0.0;
  for (int p = 0; p < 4; ++p) {
    const double* slab = table_.data() + static_cast<std::size_t>((ir + p) * n_z_ * n_theta_);
    double sz = 0.0;
    for (int q = 0; q < 4; ++q) {
      const Eigen::Index zi = std::abs(iz + q);
      const double* row = slab + zi * n_theta_;
      double st = 0.0;
      for (int s = 0; s < 4; ++s) {
        st += wt[static_cast<std::size_t>(s)] * row[mt[static_cast<std::size_t>(s)]];
      }
      sz += wz[static_cast<std::size_t>(q)] * st;
    }
    sum += wr[static_cast<std::size_t>(p)] * sz;
  }
  return sum + far;
}

TransferFunction cylinder_transfer_function(const CylinderLayers& layers,
                                            const Eigen::MatrixX3d& electrodes_m,
                                            const CylinderParams& params) {
  validate_cylinder_layers(layers);
  if (electrodes_m.rows() < 1 || !electrodes_m.allFinite()) {
    throw BadInput("cylinder_transfer_function: electrodes must be >= 1 finite rows, got " +
                   std::to_string(electrodes_m.rows()));
  }
  const double R = layers.skin_radius_m;
  const Eigen::Index n_e = electrodes_m.rows();
  Eigen::VectorXd theta_e(n_e), z_e(n_e);
  for (Eigen::Index e = 0; e < n_e; ++e) {
    const double r = std::hypot(electrodes_m(e, 0), electrodes_m(e, 1));
    if (std::abs(r - R) > 0.05e-3) {
      throw BadInput("cylinder_transfer_function: electrode " + std::to_string(e) +
                     " lies at radius " + mm(r) + ": must be on the skin, radius " + mm(R) +
                     " (+-0.05 mm)");
    }
    theta_e[e] = std::atan2(electrodes_m(e, 1), electrodes_m(e, 0));
    z_e[e] = electrodes_m(e, 2);
  }
  auto table = std::make_shared<const CylinderSkinTable>(layers, params);
  return [table, theta_e, z_e](const Eigen::MatrixX3d& points_m,
                               const Eigen::MatrixX3d& /*directions*/) {
    Eigen::MatrixXd out(points_m.rows(), theta_e.size());
    const CylinderLayers& L = table->layers();
    for (Eigen::Index i = 0; i < points_m.rows(); ++i) {
      const double r0 = std::hypot(points_m(i, 0), points_m(i, 1));
      if (!std::isfinite(r0) || r0 < L.bone_radius_m - 1e-9 || r0 > L.muscle_radius_m + 1e-9) {
        throw BadInput("cylinder transfer: source point " + std::to_string(i) + " at (" +
                       mm(points_m(i, 0)) + ", " + mm(points_m(i, 1)) + ", " + mm(points_m(i, 2)) +
                       ") has radius " + mm(r0) + ": outside the muscle layer [" +
                       mm(L.bone_radius_m) + ", " + mm(L.muscle_radius_m) + "]");
      }
      const double th0 = std::atan2(points_m(i, 1), points_m(i, 0));
      for (Eigen::Index e = 0; e < theta_e.size(); ++e) {
        out(i, e) = table->potential_V(r0, theta_e[e] - th0, z_e[e] - points_m(i, 2));
      }
    }
    return out;
  };
}

} // namespace myotwin::forward
