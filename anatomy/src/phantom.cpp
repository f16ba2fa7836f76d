// The procedural forearm phantom: an analytic cross-section model (ForearmPhantomGeometry)
// voxelised slice by slice. See phantom.hpp for the frame, the layers and the precedence rules.
//
// Anatomy (right forearm, anatomical position; u = x / a(s) from lateral -1 to medial +1,
// v = y / b(s) from anterior -1 to posterior +1), after the usual atlas cross-sections of the
// proximal, middle and distal forearm: the mobile wad (BR, ECRL, ECRB) laterally; the
// superficial flexors (PT, FCR, PL, FCU) anteriorly over FDS; the deep flexors (FDP on the ulna,
// FPL on the radius); the extensors (ED, ECU) posteriorly over the supinator (proximally) and
// the deep extensors (represented by APL, distally). The bellies end between about 45 % (ECRL)
// and 90 % (FDP, FPL, FCU) of the length and continue as tendons to the wrist, where only
// tendons, bone and fat remain; PT and the supinator end on the radius. The radius widens
// towards the wrist (12 x 12 mm at the neck to 23 x 11.5 mm distally), the ulna towards the
// elbow (15 x 17 mm below the coronoid to 11 x 11 mm at its head); sizes for the default limb.

#include "myotwin/anatomy/phantom.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>
#include <optional>
#include <sstream>
#include <tuple>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::anatomy {

namespace {

using units::m_to_mm;
using units::mm_to_m;

/// How far (fraction of the limb length) each tendon reaches into its muscle's belly.
constexpr double tendon_overlap_fraction = 0.02;
/// Exponent of the belly profile sin(pi/2 w)^p: < 1 gives full bellies with short tapers.
constexpr double belly_profile_exponent = 0.6;
/// A belly claims the points within `belly_reach` times its nominal semi-axes (but at least its
/// tendon's size) that no other belly holds more deeply; beyond, intermuscular fat.
constexpr double belly_reach = 2.5;
/// Smallest distance between a bone and the fat layer accepted by the parameter check [m].
constexpr double bone_clearance_m = 0.0002;

/// A point of a centre line: fraction f of the length from the elbow, normalised (u, v).
struct Station {
  double f = 0.0;
  double u = 0.0;
  double v = 0.0;
};

/// A point of a bone track: fraction f, normalised centre (u, v) and semi-axes (su, sv).
struct BoneStation {
  double f = 0.0;
  double u = 0.0;
  double v = 0.0;
  double su = 0.0;
  double sv = 0.0;
};

/// One muscle of the phantom before jitter. Fractions of the length from the elbow; belly
/// semi-axes normalised by the outer semi-axes; tendon semi-axes in mm (x, y).
struct MuscleSpec {
  const char* name;
  const char* full_name;
  double tendon_start;
  double belly_start;
  double belly_end;
  double tendon_end;
  double peak; ///< fraction of the belly where its cross-section is largest
  double ru;   ///< belly semi-axis along x at the peak, / a(s)
  double rv;   ///< belly semi-axis along y at the peak, / b(s)
  std::array<double, 2> proximal_tendon_mm;
  std::array<double, 2> distal_tendon_mm;
  std::vector<Station> path; ///< centre line (piecewise linear, constant beyond the ends)
};

// clang-format off
/// The muscles, in label order (the order is also the precedence of overlapping tendons). Columns:
/// abbreviation, name; proximal tendon start, belly start, belly end, distal tendon end, peak
/// (fractions); belly semi-axes ru, rv; proximal and distal tendon semi-axes (x, y) [mm]; centre
/// line {f, u, v}.
const std::vector<MuscleSpec>& muscle_specs() {
  static const std::vector<MuscleSpec> specs = {
      {"BR", "brachioradialis", 0.00, 0.03, 0.65, 1.00, 0.30, 0.22, 0.28, {4.0, 3.0}, {3.5, 2.0},
       {{0.00, -0.62, -0.30}, {0.30, -0.66, -0.25}, {0.62, -0.64, -0.16}, {1.00, -0.68, -0.16}}},
      {"ECRL", "extensor carpi radialis longus", 0.00, 0.03, 0.45, 1.00, 0.30, 0.17, 0.22,
       {4.0, 3.0}, {2.5, 2.0},
       {{0.00, -0.78, 0.05}, {0.30, -0.74, 0.12}, {0.45, -0.66, 0.25}, {1.00, -0.42, 0.52}}},
      {"ECRB", "extensor carpi radialis brevis", 0.00, 0.05, 0.62, 1.00, 0.45, 0.17, 0.18,
       {4.0, 3.0}, {2.5, 2.0}, {{0.00, -0.62, 0.40}, {0.45, -0.52, 0.45}, {1.00, -0.22, 0.55}}},
      {"ED", "extensor digitorum", 0.00, 0.06, 0.80, 1.00, 0.45, 0.24, 0.17, {5.0, 3.0},
       {6.0, 2.0}, {{0.00, -0.25, 0.68}, {0.45, -0.15, 0.66}, {1.00, 0.08, 0.60}}},
      {"ECU", "extensor carpi ulnaris", 0.00, 0.06, 0.85, 1.00, 0.40, 0.15, 0.15, {3.5, 3.0},
       {3.0, 2.0}, {{0.00, 0.12, 0.74}, {0.40, 0.16, 0.66}, {1.00, 0.42, 0.55}}},
      {"APL", "abductor pollicis longus", 0.28, 0.33, 0.85, 1.00, 0.50, 0.15, 0.12, {3.0, 2.0},
       {2.0, 1.8},
       {{0.28, -0.15, 0.40}, {0.55, -0.33, 0.40}, {0.80, -0.52, 0.38}, {1.00, -0.60, 0.42}}},
      {"SUP", "supinator", 0.00, 0.04, 0.30, 0.34, 0.40, 0.16, 0.16, {4.0, 3.0}, {3.0, 2.0},
       {{0.00, -0.45, 0.32}, {0.15, -0.42, 0.34}, {0.30, -0.48, 0.32}, {0.34, -0.52, 0.30}}},
      {"PT", "pronator teres", 0.00, 0.03, 0.42, 0.50, 0.35, 0.20, 0.17, {4.0, 3.0}, {3.5, 2.0},
       {{0.00, 0.22, -0.52}, {0.20, -0.05, -0.45}, {0.42, -0.45, -0.22}, {0.50, -0.60, -0.10}}},
      {"FCR", "flexor carpi radialis", 0.00, 0.05, 0.62, 1.00, 0.35, 0.15, 0.13, {3.5, 2.5},
       {2.5, 2.0}, {{0.00, 0.05, -0.62}, {0.35, -0.08, -0.60}, {1.00, -0.32, -0.42}}},
      {"PL", "palmaris longus", 0.00, 0.05, 0.55, 1.00, 0.35, 0.11, 0.09, {3.0, 2.0}, {2.5, 1.2},
       {{0.00, 0.25, -0.68}, {0.35, 0.12, -0.68}, {1.00, 0.00, -0.52}}},
      {"FCU", "flexor carpi ulnaris", 0.00, 0.04, 0.90, 1.00, 0.40, 0.21, 0.25, {4.0, 3.0},
       {3.5, 2.5},
       {{0.00, 0.58, -0.22}, {0.40, 0.64, -0.12}, {0.85, 0.56, -0.20}, {1.00, 0.52, -0.32}}},
      {"FDS", "flexor digitorum superficialis", 0.00, 0.07, 0.85, 1.00, 0.45, 0.26, 0.20,
       {5.0, 3.0}, {7.0, 2.5}, {{0.00, 0.20, -0.45}, {0.45, 0.12, -0.45}, {1.00, 0.10, -0.40}}},
      {"FDP", "flexor digitorum profundus", 0.00, 0.05, 0.90, 1.00, 0.40, 0.24, 0.22, {4.0, 3.0},
       {6.0, 2.0}, {{0.00, 0.30, -0.05}, {0.40, 0.18, -0.14}, {1.00, 0.10, -0.17}}},
      {"FPL", "flexor pollicis longus", 0.20, 0.25, 0.90, 1.00, 0.50, 0.17, 0.15, {3.0, 2.0},
       {2.5, 2.0}, {{0.20, -0.12, -0.15}, {0.50, -0.18, -0.22}, {1.00, -0.20, -0.25}}},
  };
  return specs;
}

/// The radius: lateral, deep; narrow at the neck, wide and flat at the wrist.
const std::array<BoneStation, 4> radius_track = {{
    {0.0, -0.350, 0.09, 0.150, 0.171},
    {0.5, -0.326, 0.10, 0.222, 0.236},
    {0.8, -0.300, 0.12, 0.317, 0.260},
    {1.0, -0.280, 0.15, 0.418, 0.2875},
}};
/// The ulna: medial and posterior; large below the elbow, small at its head.
const std::array<BoneStation, 3> ulna_track = {{
    {0.0, 0.300, 0.371, 0.1875, 0.243},
    {0.5, 0.326, 0.291, 0.163, 0.218},
    {1.0, 0.450, 0.200, 0.200, 0.275},
}};
// clang-format on

/// Linear interpolation in a track sorted by f, constant beyond its ends.
template <class T, class Get> double interpolate(const T& track, double f, Get get) {
  if (f <= track.front().f)
    return get(track.front());
  if (f >= track.back().f)
    return get(track.back());
  for (std::size_t i = 1; i < track.size(); ++i) {
    if (f <= track[i].f) {
      const double w = (f - track[i - 1].f) / (track[i].f - track[i - 1].f);
      return (1.0 - w) * get(track[i - 1]) + w * get(track[i]);
    }
  }
  return get(track.back());
}

template <class T> SectionEllipse bone_section(const T& track, double f, double a, double b) {
  SectionEllipse e;
  e.centre_x_m = a * interpolate(track, f, [](const BoneStation& p) { return p.u; });
  e.centre_y_m = b * interpolate(track, f, [](const BoneStation& p) { return p.v; });
  e.semi_x_m = a * interpolate(track, f, [](const BoneStation& p) { return p.su; });
  e.semi_y_m = b * interpolate(track, f, [](const BoneStation& p) { return p.sv; });
  return e;
}

/// Number of terms of the fat-thickness jitter.
constexpr std::size_t n_fat_terms = 6;

/// A parameter problem: the key (in mm units), its value and what was expected.
struct ParamIssue {
  std::string key;
  double value = 0.0;
  std::string expectation;
};

/// Fat thickness without jitter along the direction (cos, sin) [m]: flexor value towards -y,
/// extensor value towards +y, linear in sin(angle) between them.
double base_fat_m(const PhantomParams& p, double sin_angle) {
  return p.fat_extensor_m + (p.fat_flexor_m - p.fat_extensor_m) * 0.5 * (1.0 - sin_angle);
}

std::pair<double, double> semi_axes(const PhantomParams& p, double s_m) {
  const double w = std::clamp(s_m / p.length_m, 0.0, 1.0);
  return {0.5 * ((1.0 - w) * p.elbow_width_m + w * p.wrist_width_m),
          0.5 * ((1.0 - w) * p.elbow_depth_m + w * p.wrist_depth_m)};
}

/// Voxel counts of the grid along x, y, z.
std::array<std::int64_t, 3> grid_size(const PhantomParams& p) {
  const double width = std::max(p.elbow_width_m, p.wrist_width_m) + 2.0 * p.margin_m;
  const double depth = std::max(p.elbow_depth_m, p.wrist_depth_m) + 2.0 * p.margin_m;
  const double length = p.length_m + 2.0 * p.margin_m;
  auto count = [](double extent, double step) {
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(extent / step - 1e-9)));
  };
  return {count(width, p.voxel_inplane_m), count(depth, p.voxel_inplane_m),
          count(length, p.voxel_axial_m)};
}

/// Checks the consistency of the parameters (ranges are checked by the reader; the basic ones
/// again here for direct callers).
std::optional<ParamIssue> check_params(const PhantomParams& p) {
  struct Positive {
    const char* key;
    double value_m;
  };
  for (const auto& [key, value] :
       {Positive{"length_mm", p.length_m}, Positive{"elbow_width_mm", p.elbow_width_m},
        Positive{"elbow_depth_mm", p.elbow_depth_m}, Positive{"wrist_width_mm", p.wrist_width_m},
        Positive{"wrist_depth_mm", p.wrist_depth_m},
        Positive{"skin_thickness_mm", p.skin_thickness_m},
        Positive{"voxel_inplane_mm", p.voxel_inplane_m},
        Positive{"voxel_axial_mm", p.voxel_axial_m}}) {
    if (!(value > 0.0) || !std::isfinite(value))
      return ParamIssue{key, m_to_mm(value), "must be > 0"};
  }
  if (!(p.fat_flexor_m >= 0.0))
    return ParamIssue{"fat_flexor_mm", m_to_mm(p.fat_flexor_m), "must be >= 0"};
  if (!(p.fat_extensor_m >= 0.0))
    return ParamIssue{"fat_extensor_mm", m_to_mm(p.fat_extensor_m), "must be >= 0"};
  if (!(p.margin_m >= 0.0))
    return ParamIssue{"margin_mm", m_to_mm(p.margin_m), "must be >= 0"};
  if (!(p.variability >= 0.0 && p.variability <= 0.3))
    return ParamIssue{"variability", p.variability, "must be in [0, 0.3]"};

  // The skin must be a closed layer of at least 1.5 voxels.
  if (p.voxel_inplane_m > p.skin_thickness_m / 1.5) {
    return ParamIssue{
        "voxel_inplane_mm", m_to_mm(p.voxel_inplane_m),
        "must be <= skin_thickness_mm / 1.5 = " + format_number(m_to_mm(p.skin_thickness_m) / 1.5) +
            " mm, so that the skin is a closed layer"};
  }

  // Skin and fat (with the largest jitter) within half of the smallest semi-axis.
  const bool flexor_thicker = p.fat_flexor_m >= p.fat_extensor_m;
  const std::string fat_key = flexor_thicker ? "fat_flexor_mm" : "fat_extensor_mm";
  const double fat_max_m = std::max(p.fat_flexor_m, p.fat_extensor_m);
  const double soft_max_m = p.skin_thickness_m + fat_max_m * (1.0 + p.variability);
  const double smallest_semi_m =
      0.5 * std::min({p.elbow_width_m, p.elbow_depth_m, p.wrist_width_m, p.wrist_depth_m});
  if (soft_max_m > 0.5 * smallest_semi_m) {
    return ParamIssue{
        fat_key, m_to_mm(fat_max_m),
        "skin_thickness_mm + fat (with variability) = " + format_number(m_to_mm(soft_max_m)) +
            " mm must be <= half the smallest outer semi-axis (" +
            format_number(m_to_mm(0.5 * smallest_semi_m)) + " mm)"};
  }

  // The bones must lie inside the skin and fat everywhere (so that they are whole ellipses).
  constexpr int n_stations = 48;
  constexpr int n_points = 96;
  for (int is = 0; is <= n_stations; ++is) {
    const double f = static_cast<double>(is) / n_stations;
    const auto [a, b] = semi_axes(p, f * p.length_m);
    for (const SectionEllipse& e :
         {bone_section(radius_track, f, a, b), bone_section(ulna_track, f, a, b)}) {
      for (int ip = 0; ip < n_points; ++ip) {
        const double phi = 2.0 * std::numbers::pi * ip / n_points;
        const double x = e.centre_x_m + e.semi_x_m * std::cos(phi);
        const double y = e.centre_y_m + e.semi_y_m * std::sin(phi);
        const double r = std::hypot(x, y);
        const double rho = std::hypot(x / a, y / b);
        const double depth = rho > 0.0 ? r * (1.0 / rho - 1.0) : std::min(a, b);
        const double needed = p.skin_thickness_m +
                              base_fat_m(p, r > 0.0 ? y / r : 0.0) * (1.0 + p.variability) +
                              bone_clearance_m;
        if (depth < needed) {
          return ParamIssue{fat_key, m_to_mm(fat_max_m),
                            "skin and fat leave no room for the radius and ulna at " +
                                format_number(m_to_mm(f * p.length_m)) +
                                " mm from the elbow (the soft layers must be thinner than " +
                                format_number(m_to_mm(std::max(0.0, depth - bone_clearance_m))) +
                                " mm there): make the fat thinner or the limb larger"};
        }
      }
    }
  }

  const auto n = grid_size(p);
  const double n_voxels =
      static_cast<double>(n[0]) * static_cast<double>(n[1]) * static_cast<double>(n[2]);
  constexpr double max_voxels = 1.0e9;
  if (n_voxels > max_voxels) {
    return ParamIssue{"voxel_inplane_mm", m_to_mm(p.voxel_inplane_m),
                      "gives " + format_number(n_voxels) + " voxels (with voxel_axial_mm = " +
                          format_number(m_to_mm(p.voxel_axial_m)) + "); at most " +
                          format_number(max_voxels) + " are allowed"};
  }
  return std::nullopt;
}

/// A tendon in one cross-section.
struct TendonSection {
  SectionEllipse ellipse;
  std::int32_t label = 0;
};

/// A muscle belly in one cross-section, in normalised coordinates (u, v) = (x / a, y / b).
struct BellySection {
  double u = 0.0;
  double v = 0.0;
  double inv_ru2 = 0.0;
  double inv_rv2 = 0.0;
  std::int32_t label = 0;
};

} // namespace

/// The jittered geometry: the muscles after jitter and the fat coefficients.
struct ForearmPhantomGeometry::Impl {
  /// A muscle after jitter.
  struct Muscle {
    const MuscleSpec* spec = nullptr;
    PhantomMuscle description;
    double du = 0.0; ///< shift of the centre line, normalised
    double dv = 0.0;
    double ku = 1.0; ///< scale of the belly semi-axes
    double kv = 1.0;
    double belly_start = 0.0; ///< fractions of the length
    double belly_end = 0.0;
  };

  /// One cross-section, ready for voxel queries.
  struct Slice {
    double a = 0.0;
    double b = 0.0;
    double skin_m = 0.0;
    double fat_flexor_m = 0.0;
    double fat_extensor_m = 0.0;
    double variability = 0.0;
    std::array<double, 5> fat_j{}; ///< jitter J = j0 cos + j1 sin + j2 cos2 + j3 sin2 + j4
    SectionEllipse radius;
    SectionEllipse ulna;
    std::vector<TendonSection> tendons;
    std::vector<BellySection> bellies;

    [[nodiscard]] double fat_m(double c, double s) const {
      const double base = fat_extensor_m + (fat_flexor_m - fat_extensor_m) * 0.5 * (1.0 - s);
      const double j = fat_j[0] * c + fat_j[1] * s + fat_j[2] * (c * c - s * s) +
                       fat_j[3] * (2.0 * c * s) + fat_j[4];
      return base * (1.0 + variability * j);
    }

    [[nodiscard]] std::int32_t label(double x, double y) const {
      const double u = x / a;
      const double v = y / b;
      const double rho2 = u * u + v * v;
      if (rho2 > 1.0)
        return 0;
      const double r = std::sqrt(x * x + y * y);
      if (r > 0.0) {
        const double depth = r * (1.0 / std::sqrt(rho2) - 1.0);
        if (depth < skin_m)
          return phantom_label::skin;
        if (depth < skin_m + fat_m(x / r, y / r))
          return phantom_label::subcutaneous_fat;
      }
      if (radius.contains(x, y))
        return phantom_label::radius;
      if (ulna.contains(x, y))
        return phantom_label::ulna;
      for (const auto& t : tendons) {
        if (t.ellipse.contains(x, y))
          return t.label;
      }
      // The belly in whose ellipse the point lies deepest (the first one on a tie).
      std::int32_t best = phantom_label::intermuscular_fat;
      double best_q = std::numeric_limits<double>::infinity();
      for (const auto& m : bellies) {
        const double du = u - m.u;
        const double dv = v - m.v;
        const double q = du * du * m.inv_ru2 + dv * dv * m.inv_rv2;
        if (q < best_q) {
          best_q = q;
          best = m.label;
        }
      }
      return best_q <= 1.0 ? best : phantom_label::intermuscular_fat;
    }
  };

  PhantomParams params;
  std::array<double, n_fat_terms> fat_coefficients{};
  std::vector<Muscle> muscles;
  std::vector<PhantomMuscle> descriptions;

  explicit Impl(const PhantomParams& p) : params(p) {
    const double sigma = p.variability;
    const Rng rng(p.seed);
    // Fat: J(angle, s) = sum of c_k b_k with |b_k| <= 1 and sum |c_k| <= 1, so |J| <= 1.
    Rng fat_rng = rng.split(0);
    for (auto& c : fat_coefficients)
      c = fat_rng.uniform(-1.0, 1.0) / static_cast<double>(n_fat_terms);
    // Muscles: shift of the centre line (up to a quarter of the variability, normalised),
    // scale of the belly (1 +- variability), ends of the belly (+- a tenth of it).
    const auto& specs = muscle_specs();
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const MuscleSpec& spec = specs[i];
      Rng mrng = rng.split(1 + i);
      Muscle m;
      m.spec = &spec;
      m.du = 0.25 * sigma * mrng.uniform(-1.0, 1.0);
      m.dv = 0.25 * sigma * mrng.uniform(-1.0, 1.0);
      m.ku = 1.0 + sigma * mrng.uniform(-1.0, 1.0);
      m.kv = 1.0 + sigma * mrng.uniform(-1.0, 1.0);
      m.belly_start = spec.belly_start + 0.1 * sigma * mrng.uniform(-1.0, 1.0);
      m.belly_end = spec.belly_end + 0.1 * sigma * mrng.uniform(-1.0, 1.0);
      // Keep each tendon at least 1 % of the length long.
      m.belly_start = std::max(m.belly_start, spec.tendon_start + 0.01);
      m.belly_end = std::min(m.belly_end, spec.tendon_end - 0.01);

      PhantomMuscle& d = m.description;
      const auto k = static_cast<std::int32_t>(i);
      d.name = spec.name;
      d.full_name = spec.full_name;
      d.label = phantom_label::first_muscle + k;
      d.proximal_tendon_label = phantom_label::first_proximal_tendon + k;
      d.distal_tendon_label = phantom_label::first_distal_tendon + k;
      d.proximal_tendon_start_m = spec.tendon_start * p.length_m;
      d.belly_start_m = m.belly_start * p.length_m;
      d.belly_end_m = m.belly_end * p.length_m;
      d.distal_tendon_end_m = spec.tendon_end * p.length_m;
      descriptions.push_back(d);
      muscles.push_back(std::move(m));
    }
  }

  /// Coefficients of the fat jitter at fraction f of the length: J(angle) = j0 cos + j1 sin +
  /// j2 cos 2angle + j3 sin 2angle + j4.
  [[nodiscard]] std::array<double, 5> fat_jitter(double f) const {
    const auto& c = fat_coefficients;
    const double phase = std::numbers::pi * std::clamp(f, 0.0, 1.0);
    return {c[0] + c[5] * std::sin(phase), c[1], c[2], c[3], c[4] * std::cos(phase)};
  }

  [[nodiscard]] Slice slice(double s_m) const {
    const PhantomParams& p = params;
    const double f = s_m / p.length_m;
    Slice sl;
    std::tie(sl.a, sl.b) = semi_axes(p, s_m);
    sl.skin_m = p.skin_thickness_m;
    sl.fat_flexor_m = p.fat_flexor_m;
    sl.fat_extensor_m = p.fat_extensor_m;
    sl.variability = p.variability;
    sl.fat_j = fat_jitter(f);
    sl.radius = bone_section(radius_track, f, sl.a, sl.b);
    sl.ulna = bone_section(ulna_track, f, sl.a, sl.b);

    for (const Muscle& m : muscles) {
      const MuscleSpec& spec = *m.spec;
      const double u = m.du + interpolate(spec.path, f, [](const Station& st) { return st.u; });
      const double v = m.dv + interpolate(spec.path, f, [](const Station& st) { return st.v; });
      const double x = u * sl.a;
      const double y = v * sl.b;
      // Tendons, reaching into the belly.
      if (f >= spec.tendon_start && f <= m.belly_start + tendon_overlap_fraction) {
        sl.tendons.push_back(
            {{x, y, mm_to_m(spec.proximal_tendon_mm[0]), mm_to_m(spec.proximal_tendon_mm[1])},
             m.description.proximal_tendon_label});
      }
      if (f >= m.belly_end - tendon_overlap_fraction && f <= spec.tendon_end) {
        sl.tendons.push_back(
            {{x, y, mm_to_m(spec.distal_tendon_mm[0]), mm_to_m(spec.distal_tendon_mm[1])},
             m.description.distal_tendon_label});
      }
      // Belly: the profile rises from the proximal tendon's size to the peak and falls to the
      // distal tendon's size.
      if (f >= m.belly_start && f <= m.belly_end) {
        const double t = (f - m.belly_start) / (m.belly_end - m.belly_start);
        const double w = t < spec.peak ? t / spec.peak : (1.0 - t) / (1.0 - spec.peak);
        const double shape = std::pow(std::sin(0.5 * std::numbers::pi * std::clamp(w, 0.0, 1.0)),
                                      belly_profile_exponent);
        const auto& tendon_mm = t < spec.peak ? spec.proximal_tendon_mm : spec.distal_tendon_mm;
        const double ru =
            std::max(belly_reach * m.ku * spec.ru * shape, mm_to_m(tendon_mm[0]) / sl.a);
        const double rv =
            std::max(belly_reach * m.kv * spec.rv * shape, mm_to_m(tendon_mm[1]) / sl.b);
        sl.bellies.push_back({u, v, 1.0 / (ru * ru), 1.0 / (rv * rv), m.description.label});
      }
    }
    return sl;
  }
};

bool SectionEllipse::contains(double x_m, double y_m) const {
  const double u = (x_m - centre_x_m) / semi_x_m;
  const double v = (y_m - centre_y_m) / semi_y_m;
  return u * u + v * v <= 1.0;
}

double SectionEllipse::area_m2() const {
  return std::numbers::pi * semi_x_m * semi_y_m;
}

ForearmPhantomGeometry::ForearmPhantomGeometry(const PhantomParams& params) {
  if (const auto issue = check_params(params)) {
    throw BadInput("phantom." + issue->key + " = " + format_number(issue->value) + ": " +
                   issue->expectation);
  }
  impl_ = std::make_shared<const Impl>(params);
}

const PhantomParams& ForearmPhantomGeometry::params() const {
  return impl_->params;
}

std::pair<double, double> ForearmPhantomGeometry::outer_semi_axes(double s_m) const {
  return semi_axes(impl_->params, s_m);
}

double ForearmPhantomGeometry::fat_thickness_m(double s_m, double angle_rad) const {
  Impl::Slice slice; // only the fat of the slice
  slice.fat_flexor_m = impl_->params.fat_flexor_m;
  slice.fat_extensor_m = impl_->params.fat_extensor_m;
  slice.variability = impl_->params.variability;
  slice.fat_j = impl_->fat_jitter(s_m / impl_->params.length_m);
  return slice.fat_m(std::cos(angle_rad), std::sin(angle_rad));
}

SectionEllipse ForearmPhantomGeometry::radius_section(double s_m) const {
  const auto [a, b] = outer_semi_axes(s_m);
  return bone_section(radius_track, s_m / impl_->params.length_m, a, b);
}

SectionEllipse ForearmPhantomGeometry::ulna_section(double s_m) const {
  const auto [a, b] = outer_semi_axes(s_m);
  return bone_section(ulna_track, s_m / impl_->params.length_m, a, b);
}

const std::vector<PhantomMuscle>& ForearmPhantomGeometry::muscles() const {
  return impl_->descriptions;
}

std::int32_t ForearmPhantomGeometry::label_at(double x_m, double y_m, double s_m) const {
  if (s_m < 0.0 || s_m > impl_->params.length_m)
    return 0;
  return impl_->slice(s_m).label(x_m, y_m);
}

TissueTable ForearmPhantomGeometry::tissue_table() const {
  TissueTable table;
  auto add = [&table](std::int32_t label, std::string name, TissueClass c, std::string muscle) {
    Tissue t;
    t.label = label;
    t.name = std::move(name);
    t.tissue_class = c;
    const auto sigma = default_conductivity(c);
    t.sigma_l_S_per_m = sigma->first;
    t.sigma_t_S_per_m = sigma->second;
    t.muscle = std::move(muscle);
    table.tissues.push_back(std::move(t));
  };
  add(phantom_label::skin, "skin", TissueClass::skin, "");
  add(phantom_label::subcutaneous_fat, "subcutaneous_fat", TissueClass::fat, "");
  add(phantom_label::radius, "radius", TissueClass::bone, "");
  add(phantom_label::ulna, "ulna", TissueClass::bone, "");
  // Intermuscular septa, vessels, nerves and fat: modelled as fat (a conservative, poorly
  // conducting choice for the gaps between muscle bellies).
  add(phantom_label::intermuscular_fat, "intermuscular_fat", TissueClass::fat, "");
  // Motor-unit counts used in published forearm models (REFERENCE_VALUES.md: ECRB 186,
  // ECRL 204, PL 164, FCU 422, ECU 180, ED 186, FDS 158); the other muscles keep the config's
  // default.
  const std::map<std::string, std::int64_t> n_motor_units = {
      {"ECRB", 186}, {"ECRL", 204}, {"PL", 164}, {"FCU", 422},
      {"ECU", 180},  {"ED", 186},   {"FDS", 158}};
  for (const auto& m : impl_->descriptions) {
    add(m.label, m.name, TissueClass::muscle, "");
    if (const auto it = n_motor_units.find(m.name); it != n_motor_units.end())
      table.tissues.back().n_motor_units = it->second;
  }
  for (const auto& m : impl_->descriptions)
    add(m.proximal_tendon_label, m.name + "_tendon_proximal", TissueClass::tendon, m.name);
  for (const auto& m : impl_->descriptions)
    add(m.distal_tendon_label, m.name + "_tendon_distal", TissueClass::tendon, m.name);
  return table;
}

namespace {

/// True for the labels of muscles and tendons.
bool is_muscle_or_tendon(std::int32_t label) {
  return label >= phantom_label::first_muscle;
}

/// Relabels the pieces of each muscle and tendon label that are not face-connected to its
/// largest piece (specks where a belly tapers around its tendon or a tendon passes a bone):
/// each takes the most common label among its face neighbours that are muscle, tendon or
/// intermuscular fat and belong to a largest piece (the smallest such label on a tie), or
/// intermuscular fat if there is none. Sequential and in index order, hence deterministic.
void remove_detached_pieces(LabelVolume& volume) {
  const std::int64_t nx = volume.size[0];
  const std::int64_t ny = volume.size[1];
  const std::int64_t nz = volume.size[2];
  std::vector<std::int32_t>& labels = volume.labels;
  auto for_each_neighbour = [&](std::int64_t v, auto&& visit) {
    const std::int64_t i = v % nx;
    const std::int64_t j = (v / nx) % ny;
    const std::int64_t k = v / (nx * ny);
    if (i > 0)
      visit(v - 1);
    if (i + 1 < nx)
      visit(v + 1);
    if (j > 0)
      visit(v - nx);
    if (j + 1 < ny)
      visit(v + nx);
    if (k > 0)
      visit(v - nx * ny);
    if (k + 1 < nz)
      visit(v + nx * ny);
  };

  // Components (6-connected) of the muscle and tendon labels.
  std::vector<std::int32_t> component(labels.size(), -1);
  std::vector<std::int64_t> component_size;
  std::vector<std::int32_t> component_label;
  std::vector<std::int64_t> stack;
  for (std::int64_t start = 0; start < volume.n_voxels(); ++start) {
    const std::int32_t label = labels[static_cast<std::size_t>(start)];
    if (!is_muscle_or_tendon(label) || component[static_cast<std::size_t>(start)] >= 0)
      continue;
    const auto id = static_cast<std::int32_t>(component_size.size());
    std::int64_t size = 0;
    component[static_cast<std::size_t>(start)] = id;
    stack.assign(1, start);
    while (!stack.empty()) {
      const std::int64_t v = stack.back();
      stack.pop_back();
      ++size;
      for_each_neighbour(v, [&](std::int64_t w) {
        const auto wi = static_cast<std::size_t>(w);
        if (labels[wi] == label && component[wi] < 0) {
          component[wi] = id;
          stack.push_back(w);
        }
      });
    }
    component_size.push_back(size);
    component_label.push_back(label);
  }

  // The largest component of each label (the first found on a tie).
  std::map<std::int32_t, std::int32_t> largest;
  for (std::size_t c = 0; c < component_size.size(); ++c) {
    auto [it, inserted] = largest.try_emplace(component_label[c], static_cast<std::int32_t>(c));
    if (!inserted && component_size[c] > component_size[static_cast<std::size_t>(it->second)])
      it->second = static_cast<std::int32_t>(c);
  }
  if (largest.size() == component_size.size())
    return; // nothing detached
  std::vector<char> main_piece(component_size.size(), 0);
  for (const auto& [label, c] : largest)
    main_piece[static_cast<std::size_t>(c)] = 1;
  auto is_main = [&](std::int32_t c) { return main_piece[static_cast<std::size_t>(c)] != 0; };

  // Votes of the neighbours of each detached piece, then its new label.
  std::map<std::int32_t, std::map<std::int32_t, std::int64_t>> votes;
  for (std::int64_t v = 0; v < volume.n_voxels(); ++v) {
    const std::int32_t c = component[static_cast<std::size_t>(v)];
    if (c < 0 || is_main(c))
      continue;
    auto& piece_votes = votes[c];
    for_each_neighbour(v, [&](std::int64_t w) {
      const auto wi = static_cast<std::size_t>(w);
      const std::int32_t label = labels[wi];
      const std::int32_t cw = component[wi];
      if (label == phantom_label::intermuscular_fat ||
          (cw >= 0 && label != component_label[static_cast<std::size_t>(c)] && is_main(cw)))
        ++piece_votes[label];
    });
  }
  std::map<std::int32_t, std::int32_t> replacement;
  for (const auto& [c, piece_votes] : votes) {
    std::int32_t best = phantom_label::intermuscular_fat;
    std::int64_t best_votes = 0;
    for (const auto& [label, n] : piece_votes) {
      if (n > best_votes) {
        best = label;
        best_votes = n;
      }
    }
    replacement[c] = best;
  }
  for (std::size_t v = 0; v < labels.size(); ++v) {
    const std::int32_t c = component[v];
    if (c >= 0 && !is_main(c))
      labels[v] = replacement.at(c);
  }
}

/// A default in mm without the rounding noise of the m -> mm conversion (1.2, not
/// 1.2000000000000002), so that the resolved configuration reads as typed.
double default_mm(double value_m) {
  return std::round(m_to_mm(value_m) * 1e9) / 1e9;
}

} // namespace

PhantomParams read_phantom_params(ConfigReader& section, std::uint64_t seed) {
  const PhantomParams d;
  PhantomParams p;
  auto length = [&section](const char* key, double default_m, const Check<double>& check,
                           std::string_view doc) {
    return mm_to_m(section.optional<double>(key, default_mm(default_m), check, doc));
  };
  p.length_m = length("length_mm", d.length_m, in_range(20.0, 1000.0),
                      "length of the forearm segment from the elbow to the wrist");
  p.elbow_width_m =
      length("elbow_width_mm", d.elbow_width_m, in_range(10.0, 300.0),
             "medio-lateral outer diameter of the limb at the elbow; tapers linearly to the wrist");
  p.elbow_depth_m = length("elbow_depth_mm", d.elbow_depth_m, in_range(10.0, 300.0),
                           "antero-posterior outer diameter of the limb at the elbow");
  p.wrist_width_m = length("wrist_width_mm", d.wrist_width_m, in_range(10.0, 300.0),
                           "medio-lateral outer diameter of the limb at the wrist");
  p.wrist_depth_m = length("wrist_depth_mm", d.wrist_depth_m, in_range(10.0, 300.0),
                           "antero-posterior outer diameter of the limb at the wrist");
  p.skin_thickness_m = length("skin_thickness_mm", d.skin_thickness_m, in_range(0.1, 10.0),
                              "thickness of the skin layer");
  p.fat_flexor_m = length(
      "fat_flexor_mm", d.fat_flexor_m, in_range(0.0, 50.0),
      "subcutaneous fat thickness on the flexor (anterior) side, varying smoothly with the angle");
  p.fat_extensor_m = length("fat_extensor_mm", d.fat_extensor_m, in_range(0.0, 50.0),
                            "subcutaneous fat thickness on the extensor (posterior) side");
  p.voxel_inplane_m = length("voxel_inplane_mm", d.voxel_inplane_m, in_range(0.05, 5.0),
                             "voxel size of the label volume across the limb (x and y)");
  p.voxel_axial_m = length("voxel_axial_mm", d.voxel_axial_m, in_range(0.05, 10.0),
                           "voxel size of the label volume along the limb (z)");
  p.margin_m = length("margin_mm", d.margin_m, in_range(0.0, 100.0),
                      "background around the limb on every side of the volume");
  p.variability = section.optional<double>(
      "variability", d.variability, in_range(0.0, 0.3),
      "relative seeded jitter of fat thickness and muscle sizes, positions and ends; 0: none");
  p.seed = seed;
  if (const auto issue = check_params(p))
    section.fail(issue->key, issue->expectation);
  return p;
}

std::pair<double, double> phantom_outer_semi_axes(const PhantomParams& params, double z_m) {
  return semi_axes(params, z_m);
}

Phantom generate_forearm_phantom(const PhantomParams& params) {
  const ForearmPhantomGeometry geometry(params);
  const ForearmPhantomGeometry::Impl& impl = *geometry.impl_;

  Phantom phantom;
  LabelVolume& volume = phantom.volume;
  volume.size = grid_size(params);
  volume.spacing_m =
      Eigen::Vector3d(params.voxel_inplane_m, params.voxel_inplane_m, params.voxel_axial_m);
  volume.direction = Eigen::Matrix3d::Identity();
  for (int axis = 0; axis < 3; ++axis) {
    volume.origin_m[axis] =
        -0.5 * static_cast<double>(volume.size[axis] - 1) * volume.spacing_m[axis];
  }
  volume.labels.assign(static_cast<std::size_t>(volume.n_voxels()), 0);

  const std::int64_t nx = volume.size[0];
  const std::int64_t ny = volume.size[1];
  const std::int64_t nz = volume.size[2];
  const double half_length = 0.5 * params.length_m;
  const double z_tolerance = 1e-6 * params.voxel_axial_m;
  // Each voxel is computed on its own from its slice's geometry: the same labels for any
  // number of threads.
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t k = 0; k < nz; ++k) {
    const double z = volume.origin_m.z() + static_cast<double>(k) * volume.spacing_m.z();
    if (std::abs(z) > half_length + z_tolerance)
      continue;
    const double s = std::clamp(half_length - z, 0.0, params.length_m);
    const ForearmPhantomGeometry::Impl::Slice slice = impl.slice(s);
    for (std::int64_t j = 0; j < ny; ++j) {
      const double y = volume.origin_m.y() + static_cast<double>(j) * volume.spacing_m.y();
      if (std::abs(y) > slice.b)
        continue;
      std::int32_t* row = volume.labels.data() + volume.index(0, j, k);
      for (std::int64_t i = 0; i < nx; ++i) {
        const double x = volume.origin_m.x() + static_cast<double>(i) * volume.spacing_m.x();
        row[i] = slice.label(x, y);
      }
    }
  }

  remove_detached_pieces(volume);
  phantom.tissues = geometry.tissue_table();
  phantom.muscles = geometry.muscles();
  return phantom;
}

} // namespace myotwin::anatomy
