#include "myotwin/forward/needle/iemg.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <string_view>

#include <Eigen/Geometry>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/units.hpp"
#include "myotwin/forward/source/fibre_source.hpp"

namespace myotwin::forward {

namespace {

/// Quintic Hermite basis on [0, 1] at theta: weights of f0, h f0', h^2 f0'', h^2 f1'', h f1',
/// f1.
std::array<double, 6> hermite_basis(double t) {
  const double t2 = t * t;
  const double t3 = t2 * t;
  const double t4 = t3 * t;
  const double t5 = t4 * t;
  return {1.0 - 10.0 * t3 + 15.0 * t4 - 6.0 * t5, t - 6.0 * t3 + 8.0 * t4 - 3.0 * t5,
          0.5 * (t2 - 3.0 * t3 + 3.0 * t4 - t5),  0.5 * (t3 - 2.0 * t4 + t5),
          -4.0 * t3 + 7.0 * t4 - 3.0 * t5,        10.0 * t3 - 15.0 * t4 + 6.0 * t5};
}

/// Adds sign * s(n / fs - t0) to out[n] for every output sample n, where s is given at its
/// nodes (node i at time (first_node + i) / fs after t0's origin) with its derivatives: column
/// `col` of phi, dphi, d2phi.
void place(const Eigen::MatrixXd& phi, const Eigen::MatrixXd& dphi, const Eigen::MatrixXd& d2phi,
           Eigen::Index col, Eigen::Index first_node, double t0_s, double fs_Hz, double sign,
           double* out, Eigen::Index n_out) {
  const Eigen::Index n_nodes = phi.rows();
  if (n_nodes < 2) {
    return;
  }
  // Node i sits at absolute sample position x_i = t0 fs + first_node + i.
  const double x0 = t0_s * fs_Hz + static_cast<double>(first_node);
  const double n0 = std::ceil(x0);
  const double theta = n0 - x0; // in [0, 1)
  const auto b = hermite_basis(theta);
  const double h = 1.0 / fs_Hz;
  const double h2 = h * h;
  const auto start = static_cast<Eigen::Index>(n0);
  for (Eigen::Index i = 0; i + 1 < n_nodes; ++i) {
    const Eigen::Index n = start + i;
    if (n < 0) {
      continue;
    }
    if (n >= n_out) {
      break;
    }
    out[n] += sign * (b[0] * phi(i, col) + b[1] * h * dphi(i, col) + b[2] * h2 * d2phi(i, col) +
                      b[3] * h2 * d2phi(i + 1, col) + b[4] * h * dphi(i + 1, col) +
                      b[5] * phi(i + 1, col));
  }
}

FibrePath sub_fibre_path(const IemgMuscle& muscle, const SubFibre& f) {
  const auto& model = muscle.model_fibres.fibres[static_cast<std::size_t>(f.model)];
  FibrePath p;
  p.polyline_m = model.points_m;
  p.offset_m = f.offset_m;
  p.geometry.length_m = model.length_m;
  p.geometry.end_plate_m = f.end_plate_m;
  p.geometry.diameter_m = muscle.pool.fibre_diameter_m[f.model];
  p.geometry.cv_m_per_s = muscle.pool.fibre_cv_m_per_s[f.model];
  return p;
}

/// Distance [m] from `x` to the polyline of `path` (its points shifted by its offset).
double distance_to_path(const FibrePath& path, const Eigen::Vector3d& x) {
  double best = std::numeric_limits<double>::infinity();
  for (Eigen::Index i = 0; i + 1 < path.polyline_m.rows(); ++i) {
    const Eigen::Vector3d a = path.polyline_m.row(i).transpose() + path.offset_m;
    const Eigen::Vector3d b = path.polyline_m.row(i + 1).transpose() + path.offset_m;
    const Eigen::Vector3d ab = b - a;
    const double len2 = ab.squaredNorm();
    const double t = len2 > 0.0 ? std::clamp((x - a).dot(ab) / len2, 0.0, 1.0) : 0.0;
    best = std::min(best, (a + t * ab - x).norm());
  }
  return best;
}

/// The potentials of one fibre at the contacts' surfaces: every patch near the fibre point by
/// point (within full_quadrature_factor extents of its centre) or by its coarser rule (within
/// quadrature_factor), the others at their centres, all in one fibre_potentials() call, then
/// combined with the quadrature weights.
FibrePotentials surface_potentials(const FibrePath& path,
                                   const std::vector<ContactSurface>& contacts,
                                   const IemgParams& params, double delay_s, Eigen::Index n_samples,
                                   bool points_only) {
  const auto n_c = static_cast<Eigen::Index>(contacts.size());
  if (points_only) {
    Eigen::MatrixX3d x(n_c, 3);
    for (Eigen::Index j = 0; j < n_c; ++j)
      x.row(j) = contacts[static_cast<std::size_t>(j)].patches.front().centre_m.transpose();
    return fibre_potentials(path, x, params.medium, params.fibre, params.fs_Hz, delay_s, n_samples,
                            true);
  }
  std::vector<Eigen::Vector3d> pts;
  std::vector<std::pair<Eigen::Index, double>> owner; // contact, weight
  for (Eigen::Index j = 0; j < n_c; ++j) {
    for (const auto& patch : contacts[static_cast<std::size_t>(j)].patches) {
      const double d =
          patch.extent_m > 0.0 ? distance_to_path(path, patch.centre_m) / patch.extent_m : 1e300;
      if (d >= quadrature_factor) {
        pts.push_back(patch.centre_m);
        owner.emplace_back(j, patch.weight);
        continue;
      }
      const bool mid = d >= full_quadrature_factor && patch.mid_points_m.rows() > 0;
      const Eigen::MatrixX3d& q = mid ? patch.mid_points_m : patch.points_m;
      const Eigen::VectorXd& qw = mid ? patch.mid_weights : patch.weights;
      for (Eigen::Index i = 0; i < q.rows(); ++i) {
        pts.push_back(q.row(i).transpose());
        owner.emplace_back(j, patch.weight * qw[i]);
      }
    }
  }
  Eigen::MatrixX3d x(static_cast<Eigen::Index>(pts.size()), 3);
  Eigen::MatrixXd w = Eigen::MatrixXd::Zero(x.rows(), n_c);
  for (std::size_t i = 0; i < pts.size(); ++i) {
    x.row(static_cast<Eigen::Index>(i)) = pts[i].transpose();
    w(static_cast<Eigen::Index>(i), owner[i].first) += owner[i].second;
  }
  const FibrePotentials p = fibre_potentials(path, x, params.medium, params.fibre, params.fs_Hz,
                                             delay_s, n_samples, true);
  return {p.phi_V * w, p.dphi_V_per_s * w, p.d2phi_V_per_s2 * w};
}

} // namespace

double sub_fibre_distance_m(const IemgMuscle& muscle, const SubFibre& fibre,
                            const Eigen::Vector3d& x_m) {
  return distance_to_path(sub_fibre_path(muscle, fibre), x_m);
}

IemgParams read_iemg_params(ConfigReader& section) {
  IemgParams p;
  p.fs_Hz =
      section.optional<double>("fs_Hz", p.fs_Hz, positive(),
                               "sampling rate of the MUAPs and the EMG (Akhmadeev et al. 2020)");
  p.fibre.dz_m = units::mm_to_m(section.optional<double>(
      "spatial_resolution_mm", units::m_to_mm(p.fibre.dz_m), positive(),
      "fine step of the line source along the fibre (Akhmadeev et al. 2020)"));
  p.fibre.coarse_step_m = units::mm_to_m(section.optional<double>(
      "coarse_step_mm", units::m_to_mm(p.fibre.coarse_step_m), positive(),
      "lumped step along the fibre beyond near_radius_mm of every contact"));
  p.fibre.near_radius_m = units::mm_to_m(section.optional<double>(
      "near_radius_mm", units::m_to_mm(p.fibre.near_radius_m), positive(),
      "fibre elements within this distance of a contact stay at the fine step"));
  const auto profile = section.optional<std::string>(
      "iap_profile", "nandedkar_stalberg", one_of({"nandedkar_stalberg", "rosenfalck"}),
      "intracellular action potential: Rosenfalck's (1969) 96 mV (z/1 mm)^3 exp(-z/1 mm) "
      "compressed 2x along the fibre (Nandedkar and Stalberg 1983, lambda 0.5 mm), or plain "
      "Rosenfalck (lambda 1 mm, the surface model's)");
  p.fibre.iap_length_m =
      profile == "rosenfalck" ? rosenfalck_length_m : nandedkar_stalberg_length_m;
  p.fibre.sigma_i_S_per_m = section.optional<double>(
      "sigma_i_S_per_m", p.fibre.sigma_i_S_per_m, positive(),
      "intracellular conductivity of the muscle fibre (Akhmadeev et al. 2020)");
  p.medium.sigma_l_S_per_m = section.optional<double>(
      "sigma_l_S_per_m", p.medium.sigma_l_S_per_m, positive(),
      "extracellular conductivity along the fibres (Akhmadeev et al. 2020)");
  p.medium.sigma_t_S_per_m = section.optional<double>(
      "sigma_t_S_per_m", p.medium.sigma_t_S_per_m, positive(),
      "extracellular conductivity across the fibres (Akhmadeev et al. 2020)");
  p.end_plate_percent = section.optional<double>(
      "end_plate_percent", p.end_plate_percent, in_range(0.0, 100.0),
      "cylinder only: end-plate band centre, % of the fibre length from the origin end");
  p.jitter_s = units::us_to_s(section.optional<double>(
      "jitter_us", units::s_to_us(p.jitter_s), non_negative(),
      "SD of the neuromuscular-junction jitter of every fibre at every discharge (0: none)"));
  p.jitter_energy_fraction = section.optional<double>(
      "jitter_energy_fraction", p.jitter_energy_fraction, in_range(1e-9, 1.0),
      "share of a unit's derivative energy whose fibres are jittered exactly; the rest at mean "
      "timing");
  p.max_jitter_fibres =
      section.optional<std::int64_t>("max_jitter_fibres", p.max_jitter_fibres, positive_int(),
                                     "at most this many jittered fibres per unit");
  p.jitter_min_V = units::uV_to_V(
      section.optional<double>("jitter_min_uV", units::V_to_uV(p.jitter_min_V), non_negative(),
                               "fibres whose jitter moves their potential by less (jitter x peak "
                               "of dphi/dt) are not jittered"));
  p.sub_fibre_end_plate_sd_m = units::mm_to_m(section.optional<double>(
      "sub_fibre_end_plate_sd_mm", units::m_to_mm(p.sub_fibre_end_plate_sd_m), non_negative(),
      "SD of a real sub-fibre's end-plate about its model fibre's"));
  p.muap_duration_s = units::ms_to_s(section.optional<double>(
      "muap_duration_ms", units::s_to_ms(p.muap_duration_s), non_negative(),
      "MUAP length; 0: until the unit's last wave is extinguished"));
  p.units = section.optional<std::vector<std::int64_t>>(
      "units", {}, {}, "units to simulate, 0-based indices in recruitment order; empty: all");
  for (const auto u : p.units) {
    if (u < 0) {
      section.fail("units", "unit indices must be >= 0 (recruitment order)");
    }
  }
  return p;
}

CylinderMuscleParams read_cylinder_params(ConfigReader& section) {
  CylinderMuscleParams p;
  p.radius_m = units::mm_to_m(section.optional<double>(
      "radius_mm", units::m_to_mm(p.radius_m), positive(), "radius of the cylindrical muscle"));
  p.length_m = units::mm_to_m(section.optional<double>(
      "length_mm", units::m_to_mm(p.length_m), positive(),
      "length of the cylinder's straight parallel fibres, along +z from z = 0"));
  p.real_density_per_m2 =
      1e6 * section.optional<double>("real_density_per_mm2", 1e-6 * p.real_density_per_m2,
                                     positive(),
                                     "density of real muscle fibres in the cross-section");
  p.model_density_per_m2 =
      1e6 * section.optional<double>(
                "model_density_per_mm2", 1e-6 * p.model_density_per_m2, positive(),
                "density of model fibres, each standing for real/model density real fibres");
  p.end_plate_band_fraction =
      0.01 * section.optional<double>(
                 "end_plate_band_percent", 100.0 * p.end_plate_band_fraction, in_range(0.0, 50.0),
                 "half-width of the uniform end-plate band, % of the fibre length");
  ConfigReader mu = section.section("motor_units");
  p.motor_units = anatomy::read_motor_unit_params(mu);
  return p;
}

IemgMuscle cylinder_muscle(const CylinderMuscleParams& params, double end_plate_fraction,
                           const Rng& rng) {
  if (!(params.radius_m > 0.0) || !(params.length_m > 0.0) ||
      !(params.model_density_per_m2 > 0.0) || !(params.real_density_per_m2 > 0.0)) {
    throw BadInput("cylinder muscle: radius, length and densities must be > 0");
  }
  if (!(end_plate_fraction >= 0.0 && end_plate_fraction <= 1.0)) {
    throw BadInput("cylinder muscle: end_plate_percent = " +
                   format_number(100.0 * end_plate_fraction) + ": must lie in [0, 100]");
  }
  const double area = M_PI * params.radius_m * params.radius_m;
  const auto n = static_cast<Eigen::Index>(std::llround(area * params.model_density_per_m2));
  if (n < params.motor_units.n_units) {
    throw BadInput("cylinder muscle: " + std::to_string(n) +
                   " model fibres (radius_mm x "
                   "model_density_per_mm2) for " +
                   std::to_string(params.motor_units.n_units) +
                   " motor units: need at least one per unit");
  }
  IemgMuscle m;
  m.name = "cylinder";
  Rng pos_rng = rng.split(0);
  Eigen::MatrixX2d xy(n, 2);
  for (Eigen::Index i = 0; i < n;) {
    const double x = pos_rng.uniform(-params.radius_m, params.radius_m);
    const double y = pos_rng.uniform(-params.radius_m, params.radius_m);
    if (x * x + y * y < params.radius_m * params.radius_m) {
      xy.row(i++) << x, y;
    }
  }
  const double weight = params.real_density_per_m2 / params.model_density_per_m2;
  m.pool = anatomy::build_motor_unit_pool(xy, Eigen::VectorXd::Constant(n, weight), area,
                                          params.motor_units, rng.split(1).next());
  m.model_fibres.name = "cylinder";
  m.model_fibres.section_area_m2 = area;
  m.model_fibres.plane_centre_m = Eigen::Vector3d(0.0, 0.0, 0.5 * params.length_m);
  m.model_fibres.fibres.resize(static_cast<std::size_t>(n));
  for (Eigen::Index i = 0; i < n; ++i) {
    auto& f = m.model_fibres.fibres[static_cast<std::size_t>(i)];
    f.points_m.resize(2, 3);
    f.points_m << xy(i, 0), xy(i, 1), 0.0, xy(i, 0), xy(i, 1), params.length_m;
    f.length_m = params.length_m;
    Rng e = rng.split(2).split(static_cast<std::uint64_t>(i));
    f.end_plate_m = std::clamp(params.length_m *
                                   (end_plate_fraction + e.uniform(-params.end_plate_band_fraction,
                                                                   params.end_plate_band_fraction)),
                               0.0, params.length_m);
    f.weight = weight;
    f.seed_2d_m = xy.row(i).transpose();
    f.seed_m = Eigen::Vector3d(xy(i, 0), xy(i, 1), 0.5 * params.length_m);
  }
  m.centre_m = m.model_fibres.plane_centre_m;
  return m;
}

void spread_sub_fibres(IemgMuscle& muscle, const IemgParams& params,
                       const NerveBranchingParams& branching, const Rng& rng) {
  const auto n_model = static_cast<Eigen::Index>(muscle.model_fibres.fibres.size());
  if (muscle.pool.fibre_cv_m_per_s.size() != n_model ||
      muscle.pool.fibre_diameter_m.size() != n_model) {
    throw BadInput("spread_sub_fibres: the pool has " +
                   std::to_string(muscle.pool.fibre_cv_m_per_s.size()) + " fibre CVs for " +
                   std::to_string(n_model) + " model fibres");
  }
  if (!(params.sub_fibre_end_plate_sd_m >= 0.0)) {
    throw BadInput("spread_sub_fibres: sub_fibre_end_plate_sd_m = " +
                   format_number(params.sub_fibre_end_plate_sd_m) + ": must be >= 0");
  }
  muscle.fibres.clear();
  muscle.unit_fibres.assign(muscle.pool.units.size(), {});
  for (std::size_t u = 0; u < muscle.pool.units.size(); ++u) {
    const auto& unit = muscle.pool.units[u];
    if (unit.fibres.empty()) {
      continue;
    }
    const double n_u = static_cast<double>(unit.fibres.size());
    const double territory_area = unit.territory_radius_m > 0.0
                                      ? M_PI * unit.territory_radius_m * unit.territory_radius_m
                                      : muscle.model_fibres.section_area_m2 / n_model * n_u;
    const double patch_radius = std::sqrt(territory_area / (M_PI * n_u));
    NerveBranching b;
    if (branching.enabled) {
      b = nerve_branching(muscle.model_fibres, muscle.pool, u, branching,
                          rng.split((std::uint64_t{1} << 32) + u));
    }
    const std::size_t first = muscle.fibres.size();
    for (std::size_t local = 0; local < unit.fibres.size(); ++local) {
      const auto i = unit.fibres[local];
      const auto& model = muscle.model_fibres.fibres[static_cast<std::size_t>(i)];
      Rng r = rng.split(static_cast<std::uint64_t>(i));
      const double w = std::max(model.weight, 1.0);
      auto n_sub = static_cast<std::int64_t>(std::floor(w));
      if (r.uniform() < w - std::floor(w)) {
        ++n_sub;
      }
      Eigen::Vector3d axis = model.insertion_end_m() - model.origin_end_m();
      axis.normalize();
      Eigen::Vector3d e1 = axis.unitOrthogonal();
      const Eigen::Vector3d e2 = axis.cross(e1);
      for (std::int64_t k = 0; k < n_sub; ++k) {
        SubFibre s;
        s.model = i;
        s.unit = static_cast<std::int32_t>(u);
        const double rho = patch_radius * std::sqrt(r.uniform());
        const double phi = 2.0 * M_PI * r.uniform();
        s.offset_m = rho * (std::cos(phi) * e1 + std::sin(phi) * e2);
        s.end_plate_m = std::clamp(model.end_plate_m + params.sub_fibre_end_plate_sd_m * r.normal(),
                                   0.0, model.length_m);
        const PolylineSamples p =
            sample_polyline(model.points_m, Eigen::VectorXd::Constant(1, s.end_plate_m));
        s.end_plate_point_m = p.points_m.row(0).transpose() + s.offset_m;
        if (branching.enabled) {
          const Eigen::Vector3d br =
              b.branch_points_m.row(b.branch[static_cast<Eigen::Index>(local)]).transpose();
          s.delay_s = (br - b.entry_m).norm() / branching.axon_cv_m_per_s +
                      (s.end_plate_point_m - br).norm() / branching.terminal_cv_m_per_s;
        }
        muscle.unit_fibres[u].push_back(static_cast<Eigen::Index>(muscle.fibres.size()));
        muscle.fibres.push_back(s);
      }
    }
    double min_delay = std::numeric_limits<double>::infinity();
    for (std::size_t f = first; f < muscle.fibres.size(); ++f) {
      min_delay = std::min(min_delay, muscle.fibres[f].delay_s);
    }
    for (std::size_t f = first; f < muscle.fibres.size(); ++f) {
      muscle.fibres[f].delay_s -= min_delay;
    }
  }
}

std::vector<UnitMuap> iemg_muaps(const IemgMuscle& muscle, const std::vector<std::int64_t>& units,
                                 const Eigen::Ref<const Eigen::MatrixX3d>& contacts_m,
                                 const IemgParams& params, const ProgressCallback& progress) {
  if (contacts_m.rows() < 1 || !contacts_m.allFinite()) {
    throw BadInput("iemg_muaps: " + std::to_string(contacts_m.rows()) +
                   " contacts: need at least one, all finite");
  }
  std::vector<ContactSurface> surfaces;
  for (Eigen::Index j = 0; j < contacts_m.rows(); ++j)
    surfaces.push_back(point_contact(contacts_m.row(j).transpose()));
  return iemg_muaps(muscle, units, surfaces, params, progress);
}

std::vector<UnitMuap> iemg_muaps(const IemgMuscle& muscle, const std::vector<std::int64_t>& units,
                                 const std::vector<ContactSurface>& contacts,
                                 const IemgParams& params, const ProgressCallback& progress) {
  if (muscle.fibres.empty() || muscle.unit_fibres.size() != muscle.pool.units.size()) {
    throw BadInput("iemg_muaps: the muscle has no real fibres: spread its model fibres "
                   "(spread_sub_fibres()) before computing MUAPs");
  }
  if (contacts.empty()) {
    throw BadInput("iemg_muaps: no contacts: need at least one");
  }
  bool points_only = true;
  for (const auto& c : contacts) {
    double sum = 0.0;
    for (const auto& patch : c.patches) {
      sum += patch.weight;
      if (patch.points_m.rows() < 1 || patch.points_m.rows() != patch.weights.size() ||
          !patch.points_m.allFinite() || std::abs(patch.weights.sum() - 1.0) > 1e-9)
        throw BadInput("iemg_muaps: contact " + c.name +
                       ": a patch needs finite points and weights summing to 1");
      points_only = points_only && patch.extent_m == 0.0 && patch.points_m.rows() == 1;
    }
    if (c.patches.empty() || std::abs(sum - 1.0) > 1e-9)
      throw BadInput("iemg_muaps: contact " + c.name + ": needs patches whose weights sum to 1");
  }
  points_only = points_only && std::all_of(contacts.begin(), contacts.end(),
                                           [](const auto& c) { return c.patches.size() == 1; });
  if (!(params.fs_Hz > 0.0)) {
    throw BadInput("iemg_muaps: fs_Hz = " + format_number(params.fs_Hz) + ": must be > 0");
  }
  std::vector<std::int64_t> list = units;
  if (list.empty()) {
    list.resize(muscle.pool.units.size());
    std::iota(list.begin(), list.end(), 0);
  }
  for (const auto u : list) {
    if (u < 0 || u >= static_cast<std::int64_t>(muscle.pool.units.size())) {
      throw BadInput("iemg_muaps: units contains " + std::to_string(u) + ": the muscle has " +
                     std::to_string(muscle.pool.units.size()) + " units (0-based)");
    }
  }
  const auto n_c = static_cast<Eigen::Index>(contacts.size());
  const double fs = params.fs_Hz;
  std::size_t total = 0;
  for (const auto u : list) {
    total += muscle.unit_fibres[static_cast<std::size_t>(u)].size();
  }
  ProgressReporter reporter(progress, "iEMG MUAPs", total);
  std::vector<UnitMuap> out;
  constexpr std::size_t chunk = 32;
  for (const auto u : list) {
    const auto& ids = muscle.unit_fibres[static_cast<std::size_t>(u)];
    UnitMuap m;
    m.unit = u;
    m.n_fibres = static_cast<std::int64_t>(ids.size());
    Eigen::Index n_samples = 0;
    if (params.muap_duration_s > 0.0) {
      n_samples = static_cast<Eigen::Index>(std::floor(params.muap_duration_s * fs + 1e-9)) + 1;
    } else {
      double end_s = 0.0;
      for (const auto id : ids) {
        const auto& f = muscle.fibres[static_cast<std::size_t>(id)];
        const auto& model = muscle.model_fibres.fibres[static_cast<std::size_t>(f.model)];
        const double half = std::max(f.end_plate_m, model.length_m - f.end_plate_m);
        end_s = std::max(end_s, f.delay_s + (half + rosenfalck_cutoff_m) /
                                                muscle.pool.fibre_cv_m_per_s[f.model]);
      }
      // (at least 3 samples: a unit whose fibres a needle's body cut is a flat MUAP)
      n_samples = std::max<Eigen::Index>(3, static_cast<Eigen::Index>(std::ceil(end_s * fs)) + 1);
    }
    const std::size_t n_chunks = (ids.size() + chunk - 1) / chunk;
    std::vector<Eigen::MatrixXd> c0(n_chunks), c1(n_chunks), c2(n_chunks);
    Eigen::VectorXd energy = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(ids.size()));
    Eigen::VectorXd peak_rate = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(ids.size()));
#pragma omp parallel for schedule(dynamic)
    for (std::size_t c = 0; c < n_chunks; ++c) {
      c0[c] = Eigen::MatrixXd::Zero(n_samples, n_c);
      c1[c] = Eigen::MatrixXd::Zero(n_samples, n_c);
      c2[c] = Eigen::MatrixXd::Zero(n_samples, n_c);
      const std::size_t end = std::min(ids.size(), (c + 1) * chunk);
      for (std::size_t k = c * chunk; k < end; ++k) {
        const auto& f = muscle.fibres[static_cast<std::size_t>(ids[k])];
        const auto p = surface_potentials(sub_fibre_path(muscle, f), contacts, params, f.delay_s,
                                          n_samples, points_only);
        c0[c] += p.phi_V;
        c1[c] += p.dphi_V_per_s;
        c2[c] += p.d2phi_V_per_s2;
        energy[static_cast<Eigen::Index>(k)] = p.dphi_V_per_s.squaredNorm();
        peak_rate[static_cast<Eigen::Index>(k)] = p.dphi_V_per_s.cwiseAbs().maxCoeff();
      }
      reporter.advance(end - c * chunk);
    }
    m.phi_V = Eigen::MatrixXd::Zero(n_samples, n_c);
    m.dphi_V_per_s = Eigen::MatrixXd::Zero(n_samples, n_c);
    m.d2phi_V_per_s2 = Eigen::MatrixXd::Zero(n_samples, n_c);
    for (std::size_t c = 0; c < n_chunks; ++c) {
      m.phi_V += c0[c];
      m.dphi_V_per_s += c1[c];
      m.d2phi_V_per_s2 += c2[c];
    }
    // The jittered set: largest derivative energies first (ties by index).
    if (params.jitter_s > 0.0 && !ids.empty()) {
      std::vector<Eigen::Index> order(ids.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](Eigen::Index a, Eigen::Index b) { return energy[a] > energy[b]; });
      const double e_total = energy.sum();
      double e_kept = 0.0;
      std::vector<Eigen::Index> keep;
      for (const auto k : order) {
        if (static_cast<std::int64_t>(keep.size()) >= params.max_jitter_fibres ||
            (e_total > 0.0 && e_kept >= params.jitter_energy_fraction * e_total)) {
          break;
        }
        if (params.jitter_s * peak_rate[k] < params.jitter_min_V) {
          continue; // its jitter moves it by less than jitter_min_V: taken at its mean timing
        }
        keep.push_back(k);
        e_kept += energy[k];
      }
      m.jitter_energy_captured = e_total > 0.0 ? e_kept / e_total : 1.0;
      const auto n_keep = keep.size();
      m.jitter_fibres.resize(n_keep);
      m.window_start.resize(n_keep);
      m.window_phi_V.resize(n_keep);
      m.window_dphi_V_per_s.resize(n_keep);
      m.window_d2phi_V_per_s2.resize(n_keep);
      const auto pad = static_cast<Eigen::Index>(std::ceil(6.0 * params.jitter_s * fs)) + 2;
#pragma omp parallel for schedule(dynamic)
      for (std::size_t q = 0; q < n_keep; ++q) {
        const auto id = ids[static_cast<std::size_t>(keep[q])];
        const auto& f = muscle.fibres[static_cast<std::size_t>(id)];
        const auto p = surface_potentials(sub_fibre_path(muscle, f), contacts, params, f.delay_s,
                                          n_samples, points_only);
        const Eigen::VectorXd d = p.dphi_V_per_s.cwiseAbs().rowwise().maxCoeff();
        const double threshold =
            std::max(1e-3 * d.maxCoeff(), 0.1 * params.jitter_min_V / params.jitter_s);
        Eigen::Index first = 0;
        Eigen::Index last = n_samples - 1;
        while (first < last && d[first] <= threshold) {
          ++first;
        }
        while (last > first && d[last] <= threshold) {
          --last;
        }
        first = std::max<Eigen::Index>(0, first - pad);
        last = std::min<Eigen::Index>(n_samples - 1, last + pad);
        const Eigen::Index len = last - first + 1;
        m.jitter_fibres[q] = id;
        m.window_start[q] = first;
        m.window_phi_V[q] = p.phi_V.middleRows(first, len);
        m.window_dphi_V_per_s[q] = p.dphi_V_per_s.middleRows(first, len);
        m.window_d2phi_V_per_s2[q] = p.d2phi_V_per_s2.middleRows(first, len);
      }
    }
    out.push_back(std::move(m));
  }
  reporter.finish();
  return out;
}

Eigen::RowVectorXd hermite_at(const Eigen::Ref<const Eigen::MatrixXd>& phi,
                              const Eigen::Ref<const Eigen::MatrixXd>& dphi,
                              const Eigen::Ref<const Eigen::MatrixXd>& d2phi, double fs_Hz,
                              double t_s) {
  Eigen::RowVectorXd v = Eigen::RowVectorXd::Zero(phi.cols());
  const double x = t_s * fs_Hz;
  if (!(x >= 0.0) || x > static_cast<double>(phi.rows() - 1)) {
    return v;
  }
  auto i = static_cast<Eigen::Index>(std::floor(x));
  i = std::min(i, phi.rows() - 2);
  const auto b = hermite_basis(x - static_cast<double>(i));
  const double h = 1.0 / fs_Hz;
  return b[0] * phi.row(i) + b[1] * h * dphi.row(i) + b[2] * h * h * d2phi.row(i) +
         b[3] * h * h * d2phi.row(i + 1) + b[4] * h * dphi.row(i + 1) + b[5] * phi.row(i + 1);
}

IemgEmg synthesize_iemg(const std::vector<UnitMuap>& muaps,
                        const std::vector<std::vector<double>>& discharge_times_s,
                        double duration_s, double fs_Hz, double jitter_s, const Rng& rng) {
  if (muaps.empty()) {
    throw BadInput("synthesize_iemg: no MUAPs: compute them (iemg_muaps()) before the EMG");
  }
  if (muaps.size() != discharge_times_s.size()) {
    throw BadInput("synthesize_iemg: " + std::to_string(muaps.size()) + " MUAPs but " +
                   std::to_string(discharge_times_s.size()) + " discharge trains: must be equal");
  }
  if (!(duration_s > 0.0) || !(fs_Hz > 0.0) || !(jitter_s >= 0.0)) {
    throw BadInput("synthesize_iemg: duration_s = " + format_number(duration_s) +
                   ", fs_Hz = " + format_number(fs_Hz) + ", jitter_s = " + format_number(jitter_s) +
                   ": must be > 0, > 0 and >= 0");
  }
  const Eigen::Index n_c = muaps.front().phi_V.cols();
  for (std::size_t u = 0; u < muaps.size(); ++u) {
    if (muaps[u].phi_V.cols() != n_c) {
      throw BadInput("synthesize_iemg: MUAP " + std::to_string(u) + " has " +
                     std::to_string(muaps[u].phi_V.cols()) + " contacts, the first " +
                     std::to_string(n_c));
    }
    for (const double t : discharge_times_s[u]) {
      if (!(t >= 0.0 && t < duration_s)) {
        throw BadInput("synthesize_iemg: unit " + std::to_string(muaps[u].unit) +
                       " discharges at " + format_number(t) + " s: must lie in [0, " +
                       format_number(duration_s) + ")");
      }
    }
  }
  const auto n_out = static_cast<Eigen::Index>(std::llround(duration_s * fs_Hz));
  IemgEmg emg;
  emg.fs_Hz = fs_Hz;
  emg.jitter_s.resize(muaps.size());
  for (std::size_t u = 0; u < muaps.size(); ++u) {
    const auto& m = muaps[u];
    const auto n_k = static_cast<Eigen::Index>(discharge_times_s[u].size());
    const auto n_j = static_cast<Eigen::Index>(m.jitter_fibres.size());
    emg.jitter_s[u] = Eigen::MatrixXd::Zero(n_k, jitter_s > 0.0 ? n_j : 0);
    if (jitter_s > 0.0) {
      const Rng ru = rng.split(static_cast<std::uint64_t>(m.unit));
      for (Eigen::Index k = 0; k < n_k; ++k) {
        const Rng rk = ru.split(static_cast<std::uint64_t>(k));
        for (Eigen::Index q = 0; q < n_j; ++q) {
          Rng rf =
              rk.split(static_cast<std::uint64_t>(m.jitter_fibres[static_cast<std::size_t>(q)]));
          emg.jitter_s[u](k, q) = jitter_s * rf.normal();
        }
      }
    }
  }
  Eigen::MatrixXd out = Eigen::MatrixXd::Zero(n_out, n_c); // column-major: one column per contact
#pragma omp parallel for schedule(static)
  for (Eigen::Index c = 0; c < n_c; ++c) {
    double* col = out.col(c).data();
    for (std::size_t u = 0; u < muaps.size(); ++u) {
      const auto& m = muaps[u];
      for (std::size_t k = 0; k < discharge_times_s[u].size(); ++k) {
        const double t = discharge_times_s[u][k];
        place(m.phi_V, m.dphi_V_per_s, m.d2phi_V_per_s2, c, 0, t, fs_Hz, 1.0, col, n_out);
        for (Eigen::Index q = 0; q < emg.jitter_s[u].cols(); ++q) {
          const auto qi = static_cast<std::size_t>(q);
          const double j = emg.jitter_s[u](static_cast<Eigen::Index>(k), q);
          place(m.window_phi_V[qi], m.window_dphi_V_per_s[qi], m.window_d2phi_V_per_s2[qi], c,
                m.window_start[qi], t + j, fs_Hz, 1.0, col, n_out);
          place(m.window_phi_V[qi], m.window_dphi_V_per_s[qi], m.window_d2phi_V_per_s2[qi], c,
                m.window_start[qi], t, fs_Hz, -1.0, col, n_out);
        }
      }
    }
  }
  emg.clean_V = out.transpose();
  return emg;
}

} // namespace myotwin::forward
