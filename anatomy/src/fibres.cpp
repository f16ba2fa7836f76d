#include "myotwin/anatomy/fibres.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <sstream>

#include <Eigen/Geometry>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::anatomy {

namespace {

/// Poisson-disk radius r for a model density rho: Bridson's sampling fills a region with about
/// 0.7 / r^2 points per unit area (measured; maximal random packing of disks of diameter r
/// gives 0.547 * 4 / (pi r^2) = 0.697 / r^2).
constexpr double poisson_fill = 0.7;

std::string muscle_id(const MuscleGeometry& g) {
  return "muscle " + g.name + " (label " + std::to_string(g.label) + ")";
}

/// The section: the u = level surface projected on the seed plane, rasterised.
struct Section {
  double level = 0.5; ///< the field value of the seed surface
  Eigen::Vector3d centre, normal, e1, e2;
  double t_min = 0.0, t_max = 0.0, dt = 0.0; ///< search range along the normal [m]
  Eigen::Vector2d lo = Eigen::Vector2d::Zero();
  double pixel = 0.0;
  std::int64_t nx = 0, ny = 0;
  std::vector<std::uint8_t> mask;

  [[nodiscard]] Eigen::Vector3d to_3d(const Eigen::Vector2d& p) const {
    return centre + p.x() * e1 + p.y() * e2;
  }
  [[nodiscard]] bool in_region(const Eigen::Vector2d& p) const {
    const auto ix = static_cast<std::int64_t>(std::floor((p.x() - lo.x()) / pixel));
    const auto iy = static_cast<std::int64_t>(std::floor((p.y() - lo.y()) / pixel));
    if (ix < 0 || iy < 0 || ix >= nx || iy >= ny)
      return false;
    return mask[static_cast<std::size_t>(ix + nx * iy)] != 0;
  }
  [[nodiscard]] Eigen::Vector2d pixel_centre(std::int64_t ix, std::int64_t iy) const {
    return lo +
           pixel * Eigen::Vector2d(static_cast<double>(ix) + 0.5, static_cast<double>(iy) + 0.5);
  }
};

/// The point of the u = level surface on the line through `p` (2-D) along the plane normal that
/// is nearest to the plane, or nothing.
std::optional<Eigen::Vector3d> lift(const FibreField& field, const Section& sec,
                                    const Eigen::Vector2d& p) {
  const Eigen::Vector3d x0 = sec.to_3d(p);
  const auto n_t = static_cast<std::int64_t>(std::ceil((sec.t_max - sec.t_min) / sec.dt));
  bool prev_inside = false;
  double prev_v = 0.0, prev_t = 0.0;
  double best_t = std::numeric_limits<double>::infinity();
  for (std::int64_t s = 0; s <= n_t; ++s) {
    const double t = sec.t_min + sec.dt * static_cast<double>(s);
    const FieldSample smp = field.sample(x0 + t * sec.normal);
    if (smp.inside && prev_inside && (prev_v < sec.level) != (smp.value < sec.level) &&
        smp.value != prev_v) {
      const double tc = prev_t + (sec.level - prev_v) / (smp.value - prev_v) * (t - prev_t);
      if (std::abs(tc) < std::abs(best_t))
        best_t = tc;
    }
    prev_inside = smp.inside;
    prev_v = smp.value;
    prev_t = t;
  }
  if (!std::isfinite(best_t))
    return std::nullopt;
  const Eigen::Vector3d x = x0 + best_t * sec.normal;
  if (!field.contains(x))
    return std::nullopt;
  return x;
}

/// Bridson's Poisson-disk sampling of the section region with minimum distance r; leftover
/// parts of the region (not reached from the first sample) are restarted in raster order.
std::vector<Eigen::Vector2d> poisson_disk(const Section& sec, double r, int attempts, Rng& rng) {
  std::vector<Eigen::Vector2d> samples;
  const double cell = r / std::numbers::sqrt2;
  const double width = sec.pixel * static_cast<double>(sec.nx);
  const double height = sec.pixel * static_cast<double>(sec.ny);
  const auto gx = static_cast<std::int64_t>(std::ceil(width / cell)) + 1;
  const auto gy = static_cast<std::int64_t>(std::ceil(height / cell)) + 1;
  std::vector<std::int64_t> grid(static_cast<std::size_t>(gx * gy), -1);
  auto cell_of = [&](const Eigen::Vector2d& p) {
    return std::array<std::int64_t, 2>{
        std::clamp<std::int64_t>(static_cast<std::int64_t>((p.x() - sec.lo.x()) / cell), 0, gx - 1),
        std::clamp<std::int64_t>(static_cast<std::int64_t>((p.y() - sec.lo.y()) / cell), 0,
                                 gy - 1)};
  };
  auto far_enough = [&](const Eigen::Vector2d& p) {
    const auto c = cell_of(p);
    for (std::int64_t y = std::max<std::int64_t>(0, c[1] - 2);
         y <= std::min<std::int64_t>(gy - 1, c[1] + 2); ++y)
      for (std::int64_t x = std::max<std::int64_t>(0, c[0] - 2);
           x <= std::min<std::int64_t>(gx - 1, c[0] + 2); ++x) {
        const std::int64_t s = grid[static_cast<std::size_t>(x + gx * y)];
        if (s >= 0 && (samples[static_cast<std::size_t>(s)] - p).squaredNorm() < r * r)
          return false;
      }
    return true;
  };
  std::vector<std::int64_t> active;
  auto add = [&](const Eigen::Vector2d& p) {
    const auto c = cell_of(p);
    grid[static_cast<std::size_t>(c[0] + gx * c[1])] = static_cast<std::int64_t>(samples.size());
    active.push_back(static_cast<std::int64_t>(samples.size()));
    samples.push_back(p);
  };
  auto run = [&]() {
    while (!active.empty()) {
      const auto a = static_cast<std::size_t>(rng.uniform_index(active.size()));
      const Eigen::Vector2d base = samples[static_cast<std::size_t>(active[a])];
      bool found = false;
      for (int k = 0; k < attempts && !found; ++k) {
        const double radius = r * std::sqrt(1.0 + 3.0 * rng.uniform()); // uniform in annulus
        const double angle = 2.0 * std::numbers::pi * rng.uniform();
        const Eigen::Vector2d q = base + radius * Eigen::Vector2d(std::cos(angle), std::sin(angle));
        if (sec.in_region(q) && far_enough(q)) {
          add(q);
          found = true;
        }
      }
      if (!found) {
        active[a] = active.back();
        active.pop_back();
      }
    }
  };
  // First sample: a random point of a random region pixel.
  std::vector<std::int64_t> region;
  for (std::int64_t p = 0; p < sec.nx * sec.ny; ++p)
    if (sec.mask[static_cast<std::size_t>(p)])
      region.push_back(p);
  if (region.empty())
    return samples;
  {
    const std::int64_t p = region[static_cast<std::size_t>(rng.uniform_index(region.size()))];
    const Eigen::Vector2d q =
        sec.lo + sec.pixel * Eigen::Vector2d(static_cast<double>(p % sec.nx) + rng.uniform(),
                                             static_cast<double>(p / sec.nx) + rng.uniform());
    add(q);
    run();
  }
  for (const auto p : region) {
    const Eigen::Vector2d q = sec.pixel_centre(p % sec.nx, p / sec.nx);
    if (far_enough(q)) {
      add(q);
      run();
    }
  }
  return samples;
}

struct Trace {
  std::vector<Eigen::Vector3d> points; ///< from the seed outwards (seed excluded)
  bool reached = false;
};

/// Wall indicator above which the field direction is left as it is (about 1.6 voxels below a
/// flat side); between it and the wall (0.5) the part of the direction normal to the wall is
/// removed progressively, fully at the wall.
constexpr double wall_deep = 0.95;

/// The tracer's view of the field at a point.
struct Probe {
  bool valid = false;          ///< false: too far from the domain
  double value = 0.0;          ///< u
  double nearest_value = -1.0; ///< u of the nearest voxel if it is in the domain, else -1
  Eigen::Vector3d direction = Eigen::Vector3d::Zero(); ///< unit tracing direction
};

/// Value and tracing direction at `x`: u and grad u interpolated trilinearly over the in-domain
/// voxels among the 8 surrounding voxel centres (weights renormalised; valid wherever one of
/// them is in the domain, so the trace may cross the staircase surface), then, near the smoothed
/// wall (FibreField::wall), the direction is made tangent to the wall, where the zero-flux
/// condition wants it, and beyond the wall it is pulled back inside.
Probe probe(const FibreField& field, const Eigen::Vector3d& x, double sign) {
  Probe out;
  const Eigen::Vector3d c = field.continuous_index(x);
  const Eigen::Vector3d f = c.array().floor();
  const Eigen::Vector3d t = c - f;
  double w_sum = 0.0, v_sum = 0.0;
  Eigen::Vector3d d_sum = Eigen::Vector3d::Zero();
  for (int corner = 0; corner < 8; ++corner) {
    const int di = corner & 1, dj = (corner >> 1) & 1, dk = (corner >> 2) & 1;
    const std::int64_t i = static_cast<std::int64_t>(f[0]) + di;
    const std::int64_t j = static_cast<std::int64_t>(f[1]) + dj;
    const std::int64_t k = static_cast<std::int64_t>(f[2]) + dk;
    if (i < 0 || j < 0 || k < 0 || i >= field.size[0] || j >= field.size[1] || k >= field.size[2])
      continue;
    const auto idx = static_cast<std::size_t>(field.index(i, j, k));
    if (field.inside[idx] == 0)
      continue;
    const double w = (di ? t[0] : 1.0 - t[0]) * (dj ? t[1] : 1.0 - t[1]) * (dk ? t[2] : 1.0 - t[2]);
    w_sum += w;
    v_sum += w * field.value[idx];
    d_sum += w * field.gradient_direction[idx];
  }
  if (!(w_sum > 1e-9))
    return out;
  out.value = v_sum / w_sum;
  {
    const auto ni = static_cast<std::int64_t>(f[0]) + (t[0] >= 0.5 ? 1 : 0);
    const auto nj = static_cast<std::int64_t>(f[1]) + (t[1] >= 0.5 ? 1 : 0);
    const auto nk = static_cast<std::int64_t>(f[2]) + (t[2] >= 0.5 ? 1 : 0);
    if (ni >= 0 && nj >= 0 && nk >= 0 && ni < field.size[0] && nj < field.size[1] &&
        nk < field.size[2]) {
      const auto idx = static_cast<std::size_t>(field.index(ni, nj, nk));
      if (field.inside[idx])
        out.nearest_value = field.value[idx];
    }
  }
  Eigen::Vector3d d = sign * d_sum;
  if (!(d.norm() > 1e-12))
    return out;
  d.normalize();
  Eigen::Vector3d g;
  const double wall = field.wall_at(x, g);
  const double g_norm = g.norm();
  if (wall < wall_deep && g_norm > 0.0) {
    const Eigen::Vector3d n_in = g / g_norm;
    const double w = std::clamp((wall_deep - wall) / (wall_deep - 0.5), 0.0, 1.0);
    d -= w * d.dot(n_in) * n_in;
    // Pulled back only where the trace has left the voxels (the smoothed wall cuts the corners
    // of the staircase: a fibre that runs in such a corner is left there).
    if (wall < 0.5 && out.nearest_value < 0.0)
      d += std::min(1.0, 4.0 * (0.5 - wall)) * n_in;
  }
  const double norm = d.norm();
  if (!(norm > 1e-3))
    return out;
  out.direction = d / norm;
  out.valid = true;
  return out;
}

/// Traces from `x0` along `sign` * grad u (see probe()) with classical RK4 until u reaches the
/// target (1 for sign > 0, 0 for sign < 0). Stops without reaching it when no step of at least
/// h0 / 64 stays near the domain, after 16 consecutive steps without progress in u, or after
/// `max_steps` steps.
Trace trace(const FibreField& field, const Eigen::Vector3d& x0, double sign, double h0, bool extend,
            std::int64_t max_steps) {
  Trace out;
  const double target = sign > 0 ? 1.0 : 0.0;
  Eigen::Vector3d x = x0;
  Probe s = probe(field, x, sign);
  if (!s.valid)
    return out;
  double h = h0;
  int n_stalled = 0;
  Eigen::Vector3d last_dir = s.direction;
  for (std::int64_t step = 0; step < max_steps; ++step) {
    const Eigen::Vector3d& k1 = s.direction;
    const Probe s2 = probe(field, x + 0.5 * h * k1, sign);
    const Probe s3 = s2.valid ? probe(field, x + 0.5 * h * s2.direction, sign) : s2;
    const Probe s4 = s3.valid ? probe(field, x + h * s3.direction, sign) : s3;
    Probe sn;
    Eigen::Vector3d xn;
    if (s4.valid) {
      xn = x + h * (k1 + 2.0 * s2.direction + 2.0 * s3.direction + s4.direction) / 6.0;
      sn = probe(field, xn, sign);
    }
    if (!sn.valid) {
      h *= 0.5;
      if (h < h0 / 64.0)
        break; // left the muscle
      continue;
    }
    // Reached: u interpolates to the target, or the nearest voxel is an origin (insertion)
    // voxel, where u is fixed (inside a single fixed layer at the tendon the interpolated u
    // reaches the target only in the outer half, where the wall turns the direction).
    const bool done = sign > 0 ? sn.value >= target - 1e-12 || sn.nearest_value == target
                               : sn.value <= target + 1e-12 || sn.nearest_value == target;
    if (done) {
      const double dv = sn.value - s.value;
      const double t = dv != 0.0 ? std::clamp((target - s.value) / dv, 0.0, 1.0) : 1.0;
      last_dir = xn - x;
      x = x + t * (xn - x);
      out.points.push_back(x);
      out.reached = true;
      break;
    }
    n_stalled = sign * (sn.value - s.value) > 0.0 ? 0 : n_stalled + 1;
    if (n_stalled > 16)
      break;
    last_dir = xn - x;
    x = xn;
    s = sn;
    out.points.push_back(x);
    h = h0;
  }
  if (out.reached && extend && last_dir.squaredNorm() > 0.0) {
    // Straight on to the surface of the muscle (the tendon interface or the muscle's end).
    const Eigen::Vector3d d = last_dir.normalized();
    const double limit = field.spacing_m
                             .cwiseProduct(Eigen::Vector3d(static_cast<double>(field.size[0]),
                                                           static_cast<double>(field.size[1]),
                                                           static_cast<double>(field.size[2])))
                             .norm();
    double a = 0.0;
    while (a < limit && field.contains(x + (a + h0) * d))
      a += h0;
    double b = a + h0; // contains(x + a d) is true, contains(x + b d) false (or at the limit)
    for (int it = 0; it < 30; ++it) {
      const double m = 0.5 * (a + b);
      if (field.contains(x + m * d))
        a = m;
      else
        b = m;
    }
    if (a > 0.0)
      out.points.push_back(x + a * d);
  }
  return out;
}

/// Resamples a polyline at arc-length step `ds` (last segment shorter); returns the length.
double resample(const std::vector<Eigen::Vector3d>& line, double ds,
                Eigen::Matrix<double, Eigen::Dynamic, 3>& out) {
  std::vector<double> acc(line.size(), 0.0);
  for (std::size_t i = 1; i < line.size(); ++i)
    acc[i] = acc[i - 1] + (line[i] - line[i - 1]).norm();
  const double length = acc.back();
  const auto n_full = static_cast<std::int64_t>(std::floor(length / ds + 1e-9));
  const bool tail = length - static_cast<double>(n_full) * ds > 1e-9 * ds;
  const std::int64_t n_points = n_full + 1 + (tail ? 1 : 0);
  out.resize(n_points, 3);
  std::size_t seg = 1;
  for (std::int64_t k = 0; k <= n_full; ++k) {
    const double s = std::min(static_cast<double>(k) * ds, length);
    while (seg + 1 < line.size() && acc[seg] < s)
      ++seg;
    const double len = acc[seg] - acc[seg - 1];
    const double t = len > 0.0 ? std::clamp((s - acc[seg - 1]) / len, 0.0, 1.0) : 0.0;
    out.row(k) = ((1.0 - t) * line[seg - 1] + t * line[seg]).transpose();
  }
  if (tail)
    out.row(n_points - 1) = line.back().transpose();
  return length;
}

/// Calls visit(i, j, k, a, p, q, t) for every grid edge from an in-domain voxel p = (i, j, k) to
/// its in-domain neighbour q along axis a on which u crosses `level`, at fraction t of the edge.
template <class Visit>
void for_each_crossing(const FibreField& field, double level, const Visit& visit) {
  const std::array<std::int64_t, 3> stride{1, field.size[0], field.size[0] * field.size[1]};
  for (std::int64_t k = 0; k < field.size[2]; ++k)
    for (std::int64_t j = 0; j < field.size[1]; ++j)
      for (std::int64_t i = 0; i < field.size[0]; ++i) {
        const std::int64_t p = field.index(i, j, k);
        if (!field.inside[static_cast<std::size_t>(p)])
          continue;
        const double up = field.value[static_cast<std::size_t>(p)];
        for (std::size_t a = 0; a < 3; ++a) {
          const std::int64_t q = p + stride[a];
          if (q >= field.n_voxels() || !field.inside[static_cast<std::size_t>(q)])
            continue;
          const double uq = field.value[static_cast<std::size_t>(q)];
          if ((up < level) == (uq < level))
            continue;
          visit(i, j, k, a, p, q, (level - up) / (uq - up));
        }
      }
}

/// The level c of the seed surface u = c: the level set with the most crossings of grid edges
/// (about its area), so that seeds cover the belly rather than a narrow neck where the potential
/// of a muscle with thin ends drops fastest. Levels from the middle outwards; a level replaces
/// the best only with 2 % more crossings.
double choose_seed_level(const FibreField& field) {
  double level = 0.5;
  std::int64_t best = -1;
  for (const double candidate :
       {0.5, 0.45, 0.55, 0.4, 0.6, 0.35, 0.65, 0.3, 0.7, 0.25, 0.75, 0.2, 0.8, 0.15, 0.85}) {
    std::int64_t n = 0;
    for_each_crossing(field, candidate, [&n](auto...) { ++n; });
    if (static_cast<double>(n) > 1.02 * static_cast<double>(best)) {
      best = n;
      level = candidate;
    }
  }
  return level;
}

/// The crossings of the seed surface with the grid edges [m], and the sum of the field direction
/// interpolated at them.
struct SeedSurface {
  std::vector<Eigen::Vector3d> crossings;
  Eigen::Vector3d dir_sum = Eigen::Vector3d::Zero();
};

/// The crossings of u = `level` with the grid edges [m] and their summed field direction.
SeedSurface seed_surface(const FibreField& field, double level) {
  SeedSurface out;
  for_each_crossing(
      field, level,
      [&](std::int64_t i, std::int64_t j, std::int64_t k, std::size_t a, std::int64_t p,
          std::int64_t q, double t) {
        Eigen::Vector3d step = Eigen::Vector3d::Zero();
        step[static_cast<Eigen::Index>(a)] = 1.0;
        out.crossings.push_back(field.physical_point(static_cast<double>(i) + t * step[0],
                                                     static_cast<double>(j) + t * step[1],
                                                     static_cast<double>(k) + t * step[2]));
        out.dir_sum += (1.0 - t) * field.gradient_direction[static_cast<std::size_t>(p)] +
                       t * field.gradient_direction[static_cast<std::size_t>(q)];
      });
  return out;
}

/// The seed plane through the crossings' centroid, normal to their mean field direction (else to
/// the muscle axis), with the 2-D box of the projected crossings and the search range along the
/// normal, both padded by two voxels [m]; pixels of half the smallest voxel size (at most 4e6).
/// The mask is left empty.
Section seed_plane(const FibreField& field, const MuscleGeometry& geometry,
                   const SeedSurface& surface, double level) {
  const double h_min = field.min_spacing_m();
  const double h_max = field.spacing_m.maxCoeff();
  const auto& crossings = surface.crossings;
  Section sec;
  sec.level = level;
  sec.normal =
      surface.dir_sum.norm() > 0.0 ? Eigen::Vector3d(surface.dir_sum.normalized()) : geometry.axis;
  sec.centre = Eigen::Vector3d::Zero();
  for (const auto& x : crossings)
    sec.centre += x;
  sec.centre /= static_cast<double>(crossings.size());
  {
    Eigen::Index a_min = 0;
    sec.normal.cwiseAbs().minCoeff(&a_min);
    Eigen::Vector3d a = Eigen::Vector3d::Zero();
    a[a_min] = 1.0;
    sec.e1 = (a - a.dot(sec.normal) * sec.normal).normalized();
    sec.e2 = sec.normal.cross(sec.e1);
  }
  Eigen::Vector2d lo2 = Eigen::Vector2d::Constant(std::numeric_limits<double>::infinity());
  Eigen::Vector2d hi2 = -lo2;
  sec.t_min = std::numeric_limits<double>::infinity();
  sec.t_max = -sec.t_min;
  for (const auto& x : crossings) {
    const Eigen::Vector3d d = x - sec.centre;
    const Eigen::Vector2d p(d.dot(sec.e1), d.dot(sec.e2));
    lo2 = lo2.cwiseMin(p);
    hi2 = hi2.cwiseMax(p);
    sec.t_min = std::min(sec.t_min, d.dot(sec.normal));
    sec.t_max = std::max(sec.t_max, d.dot(sec.normal));
  }
  sec.t_min -= 2.0 * h_max;
  sec.t_max += 2.0 * h_max;
  sec.dt = 0.25 * h_min;
  sec.pixel = 0.5 * h_min;
  lo2 -= Eigen::Vector2d::Constant(2.0 * h_max);
  hi2 += Eigen::Vector2d::Constant(2.0 * h_max);
  {
    const Eigen::Vector2d ext = hi2 - lo2;
    const double max_pixels = 4.0e6;
    if (ext.prod() / (sec.pixel * sec.pixel) > max_pixels)
      sec.pixel = std::sqrt(ext.prod() / max_pixels);
    sec.nx = static_cast<std::int64_t>(std::ceil(ext.x() / sec.pixel));
    sec.ny = static_cast<std::int64_t>(std::ceil(ext.y() / sec.pixel));
  }
  sec.lo = lo2;
  return sec;
}

/// Rasterises the section region into sec.mask (in parallel): the pixels whose line along the
/// normal meets the seed surface inside the domain. Returns the number of region pixels.
std::int64_t rasterise_section(const FibreField& field, Section& sec) {
  sec.mask.assign(static_cast<std::size_t>(sec.nx * sec.ny), 0);
  {
    const std::int64_t n_pix = sec.nx * sec.ny;
#pragma omp parallel for schedule(dynamic, 64)
    for (std::int64_t p = 0; p < n_pix; ++p)
      sec.mask[static_cast<std::size_t>(p)] =
          lift(field, sec, sec.pixel_centre(p % sec.nx, p / sec.nx)).has_value() ? 1 : 0;
  }
  std::int64_t n_region = 0;
  for (const auto m : sec.mask)
    n_region += m;
  return n_region;
}

/// Lifts each seed onto the seed surface and traces it both ways, in parallel; each fibre depends
/// on its index only (its end plate drawn from fibre_rng.split(index)). Empty where a seed could
/// not be lifted or its fibre is no longer than two steps.
std::vector<std::optional<Fibre>> trace_fibres(const FibreField& field, const Section& sec,
                                               const std::vector<Eigen::Vector2d>& seeds_2d,
                                               const FibreParams& params, const Rng& fibre_rng) {
  const double h0 = params.step_fraction * field.min_spacing_m();
  const double diag = field.spacing_m
                          .cwiseProduct(Eigen::Vector3d(static_cast<double>(field.size[0]),
                                                        static_cast<double>(field.size[1]),
                                                        static_cast<double>(field.size[2])))
                          .norm();
  // Each half of a fibre is at most 1.5 grid diagonals long (the grid holds the muscle).
  const auto max_steps = static_cast<std::int64_t>(1.5 * diag / h0) + 100;
  const auto n_seeds = static_cast<std::int64_t>(seeds_2d.size());
  std::vector<std::optional<Fibre>> traced(static_cast<std::size_t>(n_seeds));
#pragma omp parallel for schedule(dynamic, 4)
  for (std::int64_t f = 0; f < n_seeds; ++f) {
    const auto fi = static_cast<std::size_t>(f);
    const auto x0 = lift(field, sec, seeds_2d[fi]);
    if (!x0)
      continue;
    const Trace back = trace(field, *x0, -1.0, h0, params.extend_to_surface, max_steps);
    const Trace fwd = trace(field, *x0, 1.0, h0, params.extend_to_surface, max_steps);
    std::vector<Eigen::Vector3d> line;
    line.reserve(back.points.size() + fwd.points.size() + 1);
    line.insert(line.end(), back.points.rbegin(), back.points.rend());
    line.push_back(*x0);
    line.insert(line.end(), fwd.points.begin(), fwd.points.end());
    if (line.size() < 2)
      continue;
    Fibre fibre;
    fibre.length_m = resample(line, params.resample_step_m, fibre.points_m);
    if (!(fibre.length_m > 2.0 * h0))
      continue;
    fibre.seed_m = *x0;
    fibre.seed_2d_m = seeds_2d[fi];
    fibre.reaches_origin = back.reached;
    fibre.reaches_insertion = fwd.reached;
    Rng own = fibre_rng.split(static_cast<std::uint64_t>(f));
    const double fraction =
        std::clamp(params.end_plate_fraction + params.end_plate_spread * own.normal(), 0.0, 1.0);
    fibre.end_plate_m = fraction * fibre.length_m;
    traced[fi] = std::move(fibre);
  }
  return traced;
}

/// Moves the traced fibres into result.fibres in seed order, dropping stubs (shorter than
/// min_length_fraction of the median length [m]) and counting them in result.n_seeds_dropped.
void keep_fibres(std::vector<std::optional<Fibre>>& traced, double min_length_fraction,
                 MuscleFibres& result) {
  std::vector<double> lengths;
  for (const auto& t : traced)
    if (t)
      lengths.push_back(t->length_m);
  double min_length_m = 0.0;
  if (!lengths.empty()) {
    const auto mid = lengths.begin() + static_cast<std::ptrdiff_t>(lengths.size() / 2);
    std::nth_element(lengths.begin(), mid, lengths.end());
    min_length_m = min_length_fraction * *mid;
  }
  for (auto& t : traced) {
    if (t && t->length_m >= min_length_m)
      result.fibres.push_back(std::move(*t));
    else
      ++result.n_seeds_dropped;
  }
}

} // namespace

FibreParams read_fibre_params(ConfigReader& section) {
  FibreParams p;
  p.model_density_per_m2 =
      section.optional<double>("model_density_per_mm2", p.model_density_per_m2 * 1e-6, positive(),
                               "model fibres seeded per area of muscle cross-section; each stands "
                               "for several real fibres") *
      1e6;
  p.real_density_per_m2 =
      section.optional<double>("real_density_per_mm2", p.real_density_per_m2 * 1e-6, positive(),
                               "real fibres per area of cross-section (literature 200-400), sets "
                               "the weight of each model fibre") *
      1e6;
  p.step_fraction = section.optional<double>("step_fraction", p.step_fraction, in_range(0.0, 0.25),
                                             "RK4 tracing step as a fraction of the smallest voxel "
                                             "size of the fibre-field grid; must be > 0");
  if (p.step_fraction <= 0.0)
    section.fail("step_fraction", "must be > 0 and <= 0.25");
  p.resample_step_m = units::mm_to_m(
      section.optional<double>("resample_step_mm", units::m_to_mm(p.resample_step_m), positive(),
                               "arc-length step of the output fibre polylines"));
  p.end_plate_fraction = section.optional<double>(
      "end_plate_fraction", p.end_plate_fraction, in_range(0.0, 1.0),
      "mean end-plate position as a fraction of fibre length from the origin end");
  p.end_plate_spread = section.optional<double>(
      "end_plate_spread", p.end_plate_spread, in_range(0.0, 0.5),
      "standard deviation of the end-plate position as a fraction of fibre length");
  p.extend_to_surface = section.optional<bool>("extend_to_surface", p.extend_to_surface, {},
                                               "continue each fibre straight from u = 0 or 1 to "
                                               "the muscle surface, so that it ends on the tendon");
  p.poisson_attempts = static_cast<int>(section.optional<std::int64_t>(
      "poisson_attempts", p.poisson_attempts, int_in_range(1, 1000),
      "candidates per active sample in Bridson's Poisson-disk seeding of the fibres"));
  p.min_length_fraction = section.optional<double>(
      "min_length_fraction", p.min_length_fraction, in_range(0.0, 0.9),
      "fibres shorter than this fraction of the median fibre length are dropped (stubs)");
  return p;
}

MuscleFibres generate_fibres(const FibreField& field, const MuscleGeometry& geometry,
                             const FibreParams& params, const Rng& rng) {
  const std::string id = muscle_id(geometry);
  if (!(params.model_density_per_m2 > 0.0) || !(params.real_density_per_m2 > 0.0) ||
      !(params.step_fraction > 0.0 && params.step_fraction <= 0.25) ||
      !(params.resample_step_m > 0.0) || params.poisson_attempts < 1)
    throw BadInput(id + ": fibre parameters: expected densities > 0, 0 < step_fraction <= "
                        "0.25, resample step > 0, poisson_attempts >= 1");
  MuscleFibres result;
  result.label = geometry.label;
  result.name = geometry.name;

  // 1. The seed surface: the level set of u with the most crossings, then its crossings.
  const double level = choose_seed_level(field);
  result.seed_level = level;
  const SeedSurface surface = seed_surface(field, level);
  if (surface.crossings.empty())
    throw BadInput(id + ": fibre field has no crossing of u = 0.5: expected a section "
                        "between origin and insertion to place seeds on");

  // 2. Seed plane and the section region on it.
  Section sec = seed_plane(field, geometry, surface, level);
  const std::int64_t n_region = rasterise_section(field, sec);
  result.plane_centre_m = sec.centre;
  result.plane_normal = sec.normal;
  result.plane_e1 = sec.e1;
  result.plane_e2 = sec.e2;
  result.section_pixel_m = sec.pixel;
  result.section_area_m2 = static_cast<double>(n_region) * sec.pixel * sec.pixel;
  if (n_region == 0)
    throw BadInput(id + ": section area at u = 0.5 = 0 mm^2: expected a section to place seeds "
                        "on");

  // 3. Seeds.
  Rng seed_rng = rng.split(0);
  const double r = std::sqrt(poisson_fill / params.model_density_per_m2);
  const std::vector<Eigen::Vector2d> seeds_2d =
      poisson_disk(sec, r, params.poisson_attempts, seed_rng);

  // 4. Lift and trace, in parallel; each fibre depends on its index only.
  const Rng fibre_rng = rng.split(1);
  const auto n_seeds = static_cast<std::int64_t>(seeds_2d.size());
  std::vector<std::optional<Fibre>> traced = trace_fibres(field, sec, seeds_2d, params, fibre_rng);

  // 5. Stubs (much shorter than the median fibre) dropped; weights from the real density.
  keep_fibres(traced, params.min_length_fraction, result);
  if (result.fibres.empty())
    throw BadInput(id + ": 0 fibres from " + std::to_string(n_seeds) + " seeds on a section of " +
                   format_number(units::m2_to_mm2(result.section_area_m2)) +
                   " mm^2: expected at least one fibre (model density " +
                   format_number(params.model_density_per_m2 * 1e-6) + " per mm^2)");
  const double weight = params.real_density_per_m2 * result.section_area_m2 /
                        static_cast<double>(result.fibres.size());
  for (auto& fibre : result.fibres)
    fibre.weight = weight;
  return result;
}

} // namespace myotwin::anatomy
