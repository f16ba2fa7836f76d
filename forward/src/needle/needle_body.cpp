// The body of a clinical needle and the fibres it meets (iemg.hpp, NeedleBody), and where a point
// lies with respect to the muscle's fibres (the needle-outside-the-muscle check).

#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Geometry>

#include "myotwin/forward/needle/iemg.hpp"

namespace myotwin::forward {

namespace {

/// Distance [m] between the segment [a, b] and the needle's axis line: a lower bound on the
/// distance from the segment to anything within the shaft's radius of the axis.
double segment_axis_distance(const NeedleBody& body, const Eigen::Vector3d& a,
                             const Eigen::Vector3d& b) {
  const Eigen::Vector3d u = b - a;
  const Eigen::Vector3d c = u.cross(body.axis);
  const Eigen::Vector3d d = a - body.tip_m;
  if (c.norm() > 1e-12 * std::max(u.norm(), 1e-300))
    return std::abs(d.dot(c)) / c.norm();
  return (d - d.dot(body.axis) * body.axis).norm(); // parallel to the axis
}

/// The smallest signed distance to the body along the segment [a, b] and where it is (golden
/// section: the signed distance to a convex body is convex along a line).
double segment_minimum(const NeedleBody& body, const Eigen::Vector3d& a, const Eigen::Vector3d& b,
                       Eigen::Vector3d& at) {
  const double len = (b - a).norm();
  const double g = 0.5 * (std::sqrt(5.0) - 1.0);
  double lo = 0.0;
  double hi = 1.0;
  double x1 = hi - g * (hi - lo);
  double x2 = lo + g * (hi - lo);
  double f1 = needle_body_distance_m(body, a + x1 * (b - a));
  double f2 = needle_body_distance_m(body, a + x2 * (b - a));
  for (int it = 0; it < 100 && (hi - lo) * len > 1e-9; ++it) {
    if (f1 <= f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - g * (hi - lo);
      f1 = needle_body_distance_m(body, a + x1 * (b - a));
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + g * (hi - lo);
      f2 = needle_body_distance_m(body, a + x2 * (b - a));
    }
  }
  const double t = 0.5 * (lo + hi);
  double best = needle_body_distance_m(body, a + t * (b - a));
  at = a + t * (b - a);
  for (const double e : {0.0, 1.0}) { // the ends (the minimum of a convex function may sit there)
    const double f = needle_body_distance_m(body, a + e * (b - a));
    if (f < best) {
      best = f;
      at = a + e * (b - a);
    }
  }
  return best;
}

/// The deepest point of a polyline (its points shifted by `offset`) in the body: the smallest
/// signed distance, where, and the direction of the segment there. Segments farther from the axis
/// than the body's radius plus `margin` are skipped (returns +infinity when all are).
double polyline_minimum(const NeedleBody& body, const Eigen::MatrixX3d& points,
                        const Eigen::Vector3d& offset, double margin, Eigen::Vector3d& at,
                        Eigen::Vector3d& direction) {
  double best = std::numeric_limits<double>::infinity();
  for (Eigen::Index i = 0; i + 1 < points.rows(); ++i) {
    const Eigen::Vector3d a = points.row(i).transpose() + offset;
    const Eigen::Vector3d b = points.row(i + 1).transpose() + offset;
    if ((b - a).norm() == 0.0 || segment_axis_distance(body, a, b) > body.radius_m + margin)
      continue;
    Eigen::Vector3d p;
    const double f = segment_minimum(body, a, b, p);
    if (f < best) {
      best = f;
      at = p;
      direction = (b - a).normalized();
    }
  }
  return best;
}

/// Gradient of the signed distance at x (central differences of 1 nm).
Eigen::Vector3d distance_gradient(const NeedleBody& body, const Eigen::Vector3d& x) {
  constexpr double h = 1e-9;
  Eigen::Vector3d g;
  for (int i = 0; i < 3; ++i) {
    const Eigen::Vector3d e = h * Eigen::Vector3d::Unit(i);
    g[i] = (needle_body_distance_m(body, x + e) - needle_body_distance_m(body, x - e)) / (2.0 * h);
  }
  return g;
}

/// Radius [m] of the body's cross-section at `s` behind the tip (0 ahead of it): the cone's
/// R min(1, s / c); for a bevel, R over the bevel's length 2 R / tan(bevel) centred on the core
/// (a linear ramp from its forward point) and R behind it.
double section_radius(const NeedleBody& body, double s) {
  if (body.cone_length_m > 0.0)
    return s <= 0.0 ? 0.0 : body.radius_m * std::min(1.0, s / body.cone_length_m);
  const double along =
      std::sqrt(std::max(0.0, 1.0 - std::pow(body.bevel_normal.dot(body.axis), 2)));
  const double half = body.radius_m * along / std::max(body.bevel_normal.dot(body.axis), 1e-6);
  return body.radius_m * std::clamp((s + half) / (2.0 * half), 0.0, 1.0);
}

/// Streamline displacement of one fibre: its segment nearest the needle's axis, the common
/// perpendicular from the axis to it (lateral distance y0 [m], direction `side`) and the axial
/// position s of its foot behind the tip. The fibre moves to the closest approach of the
/// streamline of potential flow past a cylinder of radius a (the needle's section there plus the
/// fibre's radius) that starts at y0: r = (y0 + sqrt(y0^2 + 4 a^2)) / 2 (stream function
/// psi = U (r - a^2 / r) sin(theta) at theta = 90 deg). Returns the shift [m] (zero ahead of the
/// tip, for a fibre along the axis, or beyond 20 a).
Eigen::Vector3d streamline_shift(const NeedleBody& body, const Eigen::MatrixX3d& points,
                                 const Eigen::Vector3d& offset, double r_f, std::int64_t index) {
  double best = std::numeric_limits<double>::infinity();
  Eigen::Vector3d shift = Eigen::Vector3d::Zero();
  for (Eigen::Index i = 0; i + 1 < points.rows(); ++i) {
    const Eigen::Vector3d a = points.row(i).transpose() + offset;
    const Eigen::Vector3d b = points.row(i + 1).transpose() + offset;
    const Eigen::Vector3d u = b - a;
    const Eigen::Vector3d n = u.cross(body.axis);
    if (n.norm() < 1e-9 * u.norm())
      continue; // along the axis: left to the push below
    const Eigen::Vector3d d = a - body.tip_m;
    const double y = d.dot(n) / n.norm(); // signed lateral distance
    if (std::abs(y) >= best)
      continue;
    // The foot on the axis: solve for the closest points of the two lines.
    const double uu = u.dot(u);
    const double ua = u.dot(body.axis);
    const double du = d.dot(u);
    const double da = d.dot(body.axis);
    const double den = uu - ua * ua; // |axis| = 1
    const double t = (ua * da - du) / den;
    if (t < 0.0 || t > 1.0)
      continue; // the closest approach lies beyond this segment
    const double along = da + t * ua;
    best = std::abs(y);
    const double radius = section_radius(body, -along);
    if (!(radius > 0.0)) {
      shift.setZero();
      continue;
    }
    const double ra = radius + r_f;
    const double y0 = std::abs(y);
    if (y0 > 20.0 * ra) {
      shift.setZero();
      continue;
    }
    const double side = y > 0.0 ? 1.0 : y < 0.0 ? -1.0 : (index % 2 == 0 ? 1.0 : -1.0);
    const double r = 0.5 * (y0 + std::sqrt(y0 * y0 + 4.0 * ra * ra));
    shift = side * (r - y0) * n.normalized();
  }
  return shift;
}

/// Distance from x to the segment [a, b].
double point_segment_distance(const Eigen::Vector3d& x, const Eigen::Vector3d& a,
                              const Eigen::Vector3d& b) {
  const Eigen::Vector3d ab = b - a;
  const double len2 = ab.squaredNorm();
  const double t = len2 > 0.0 ? std::clamp((x - a).dot(ab) / len2, 0.0, 1.0) : 0.0;
  return (a + t * ab - x).norm();
}

} // namespace

NeedleBody iemg_needle_body(const IemgElectrodes& e, const Eigen::Vector3d& centre_m,
                            std::int64_t position) {
  NeedleBody b;
  if (e.kind != IemgElectrodeKind::concentric && e.kind != IemgElectrodeKind::monopolar &&
      e.kind != IemgElectrodeKind::single_fibre)
    return b;
  const Eigen::Matrix3d r = iemg_needle_frame(e);
  const Eigen::Vector3d origin = e.relative_to_centre ? centre_m : Eigen::Vector3d::Zero();
  b.present = true;
  b.axis = r.col(0);
  b.tip_m = origin + e.position_m +
            static_cast<double>(position) * e.step_m * iemg_trajectory_direction(e);
  b.radius_m = 0.5 * e.outer_diameter_m;
  if (e.kind == IemgElectrodeKind::monopolar) {
    const double slant = e.tip_area_m2 / (M_PI * b.radius_m);
    b.cone_length_m = std::sqrt(std::max(slant * slant - b.radius_m * b.radius_m, 0.0));
  } else {
    // The bevel plane holds w = cos(bevel) axis + sin(bevel) e1 and e2 (the core's plane,
    // needle_electrodes.cpp); its normal with a forward part: sin(bevel) axis - cos(bevel) e1.
    b.bevel_normal = std::sin(e.bevel_rad) * r.col(0) - std::cos(e.bevel_rad) * r.col(1);
  }
  return b;
}

double needle_body_distance_m(const NeedleBody& b, const Eigen::Vector3d& x) {
  const Eigen::Vector3d d = x - b.tip_m;
  const double along = d.dot(b.axis);
  const double s = -along; // behind the tip
  const double rho = (d - along * b.axis).norm();
  const double radius = b.radius_m;
  if (b.cone_length_m > 0.0) {
    // In the meridian half-plane (s, rho) the body is {s >= 0, rho <= R min(1, s / c)}: its
    // boundary is the slant (0, 0)-(c, R) and the shaft line rho = R for s >= c.
    const double c = b.cone_length_m;
    const bool inside = s >= 0.0 && rho <= radius * std::min(1.0, s / c);
    const double t = std::clamp((s * c + rho * radius) / (c * c + radius * radius), 0.0, 1.0);
    const double slant = std::hypot(s - t * c, rho - t * radius);
    const double shaft = s >= c ? std::abs(rho - radius) : std::hypot(s - c, rho - radius);
    const double dist = std::min(slant, shaft);
    return inside ? -dist : dist;
  }
  return std::max(rho - radius, d.dot(b.bevel_normal));
}

std::int64_t apply_needle_body(IemgMuscle& muscle, const NeedleBody& body, NeedleBodyMode mode) {
  if (!body.present || mode == NeedleBodyMode::none)
    return 0;
  const auto n = static_cast<std::int64_t>(muscle.fibres.size());
  std::vector<char> hit(static_cast<std::size_t>(n), 0);
#pragma omp parallel for schedule(dynamic, 256)
  for (std::int64_t i = 0; i < n; ++i) {
    SubFibre& f = muscle.fibres[static_cast<std::size_t>(i)];
    const auto& model = muscle.model_fibres.fibres[static_cast<std::size_t>(f.model)];
    const double r_f = 0.5 * muscle.pool.fibre_diameter_m[f.model];
    Eigen::Vector3d at;
    Eigen::Vector3d dir;
    double depth = polyline_minimum(body, model.points_m, f.offset_m, r_f, at, dir);
    hit[static_cast<std::size_t>(i)] = depth < r_f ? 1 : 0;
    if (mode == NeedleBodyMode::exclude)
      continue;
    // Every fibre near the needle follows its streamline around the shaft (the muscle is
    // incompressible: the fibres the needle meets are parted, not piled up on its surface).
    const Eigen::Vector3d shift = streamline_shift(body, model.points_m, f.offset_m, r_f, i);
    if (shift.squaredNorm() > 0.0) {
      f.offset_m += shift;
      f.end_plate_point_m += shift;
      depth = polyline_minimum(body, model.points_m, f.offset_m, r_f, at, dir);
    }
    // What still reaches into the body (near the tip, where the section narrows): pushed across
    // its own direction along the body's outward normal at its deepest point until it touches.
    for (int step = 0; step < 8 && depth < r_f; ++step) {
      Eigen::Vector3d g = distance_gradient(body, at);
      Eigen::Vector3d push = g - g.dot(dir) * dir;
      if (push.norm() < 1e-6) { // the fibre runs along the normal: push it across the needle
        push = dir.cross(body.axis);
        if (push.norm() < 1e-6)
          push = dir.unitOrthogonal();
      }
      push.normalize();
      const double rate = std::max(g.dot(push), 0.1);
      const Eigen::Vector3d move = (r_f - depth) / rate * push + 1e-9 * push;
      f.offset_m += move;
      f.end_plate_point_m += move;
      depth = polyline_minimum(body, model.points_m, f.offset_m, r_f, at, dir);
    }
  }
  std::int64_t count = 0;
  for (const char h : hit)
    count += h;
  if (mode == NeedleBodyMode::exclude && count > 0) {
    for (auto& ids : muscle.unit_fibres)
      ids.erase(std::remove_if(ids.begin(), ids.end(),
                               [&](Eigen::Index id) { return hit[static_cast<std::size_t>(id)]; }),
                ids.end());
  }
  return count;
}

double muscle_distance_m(const IemgMuscle& muscle, const Eigen::Vector3d& x_m) {
  double best = std::numeric_limits<double>::infinity();
  for (const auto& f : muscle.model_fibres.fibres)
    for (Eigen::Index i = 0; i + 1 < f.points_m.rows(); ++i)
      best = std::min(best, point_segment_distance(x_m, f.points_m.row(i).transpose(),
                                                   f.points_m.row(i + 1).transpose()));
  return best;
}

double model_fibre_spacing_m(const IemgMuscle& muscle) {
  const auto n = static_cast<double>(std::max<std::size_t>(1, muscle.model_fibres.fibres.size()));
  double area = muscle.model_fibres.section_area_m2;
  if (!(area > 0.0)) {
    for (const auto& u : muscle.pool.units)
      area += M_PI * u.territory_radius_m * u.territory_radius_m;
  }
  return std::sqrt(area / n);
}

double muscle_inside_tolerance_m(const IemgMuscle& muscle) {
  return 2.0 * model_fibre_spacing_m(muscle);
}

} // namespace myotwin::forward
