#include "myotwin/forward/electrodes/electrodes.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <set>

#include <Eigen/Eigenvalues>

#include "myotwin/anatomy/label_schemes.hpp"
#include "myotwin/anatomy/polydata_io.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/hash.hpp"
#include "myotwin/forward/conductor/fem.hpp"
#include "myotwin/forward/conductor/lead_field.hpp"

namespace myotwin::forward {

namespace {

constexpr double pi = std::numbers::pi;
constexpr int n_contour_rays = 360;

std::string mm(double v_m) {
  return format_number(std::round(v_m * 1e4) / 10.0) + " mm";
}

std::string point_mm(const Eigen::Vector3d& p_m) {
  std::string s = "(";
  for (int k = 0; k < 3; ++k) {
    s += format_number(std::round(p_m[k] * 1e4) / 10.0);
    s += k < 2 ? ", " : ") mm";
  }
  return s;
}

Check<std::vector<double>> three_numbers() {
  return {[](const std::vector<double>& v) -> std::optional<std::string> {
            if (v.size() != 3)
              return "expected 3 numbers [x, y, z]";
            for (double x : v)
              if (!std::isfinite(x))
                return "expected finite numbers";
            return std::nullopt;
          },
          "[x, y, z], finite"};
}

Eigen::Vector3d to_vec(const std::vector<double>& v) {
  return {v[0], v[1], v[2]};
}

/// The outer boundary with per-face geometry and an index sorted by the faces' axial start.
struct Surface {
  meshing::TriArray faces;
  std::vector<std::int64_t> face_tet;
  Eigen::MatrixX3d centroid_m;
  Eigen::MatrixX3d normal;
  Eigen::VectorXd area_m2;
  Eigen::VectorXd t_lo_m, t_hi_m;
  std::vector<Eigen::Index> by_t_lo; ///< face indices sorted by t_lo
  std::vector<double> sorted_t_lo;
  double max_extent_m = 0.0;
  Eigen::VectorXd node_t_m;             ///< axial coordinate of every node
  std::vector<Eigen::Index> nodes_by_t; ///< node indices sorted by t
  std::vector<double> sorted_node_t;
};

Surface make_surface(const meshing::TetMesh& mesh, const LimbAxis& ax) {
  Surface s;
  s.faces = meshing::boundary_faces(mesh, &s.face_tet);
  const Eigen::Index nf = s.faces.rows();
  s.centroid_m.resize(nf, 3);
  s.normal.resize(nf, 3);
  s.area_m2.resize(nf);
  s.t_lo_m.resize(nf);
  s.t_hi_m.resize(nf);
  for (Eigen::Index f = 0; f < nf; ++f) {
    const Eigen::Vector3d a = mesh.nodes_m.row(s.faces(f, 0)).transpose();
    const Eigen::Vector3d b = mesh.nodes_m.row(s.faces(f, 1)).transpose();
    const Eigen::Vector3d c = mesh.nodes_m.row(s.faces(f, 2)).transpose();
    const Eigen::Vector3d n = (b - a).cross(c - a);
    s.area_m2[f] = 0.5 * n.norm();
    s.normal.row(f) = (n.norm() > 0.0 ? n.normalized() : Eigen::Vector3d::Zero()).transpose();
    s.centroid_m.row(f) = ((a + b + c) / 3.0).transpose();
    const double ta = (a - ax.origin_m).dot(ax.axis), tb = (b - ax.origin_m).dot(ax.axis),
                 tc = (c - ax.origin_m).dot(ax.axis);
    s.t_lo_m[f] = std::min({ta, tb, tc});
    s.t_hi_m[f] = std::max({ta, tb, tc});
    s.max_extent_m = std::max(s.max_extent_m, s.t_hi_m[f] - s.t_lo_m[f]);
  }
  s.by_t_lo.resize(static_cast<std::size_t>(nf));
  for (Eigen::Index f = 0; f < nf; ++f)
    s.by_t_lo[static_cast<std::size_t>(f)] = f;
  std::stable_sort(s.by_t_lo.begin(), s.by_t_lo.end(),
                   [&](Eigen::Index x, Eigen::Index y) { return s.t_lo_m[x] < s.t_lo_m[y]; });
  for (auto f : s.by_t_lo)
    s.sorted_t_lo.push_back(s.t_lo_m[f]);
  s.node_t_m = (mesh.nodes_m.rowwise() - ax.origin_m.transpose()) * ax.axis;
  s.nodes_by_t.resize(static_cast<std::size_t>(mesh.n_nodes()));
  for (Eigen::Index i = 0; i < mesh.n_nodes(); ++i)
    s.nodes_by_t[static_cast<std::size_t>(i)] = i;
  std::stable_sort(s.nodes_by_t.begin(), s.nodes_by_t.end(),
                   [&](Eigen::Index x, Eigen::Index y) { return s.node_t_m[x] < s.node_t_m[y]; });
  for (auto i : s.nodes_by_t)
    s.sorted_node_t.push_back(s.node_t_m[i]);
  return s;
}

/// Calls f(face) for every face whose axial range overlaps [t0, t1], in a fixed order.
template <class F> void for_faces_in_slab(const Surface& s, double t0, double t1, F&& f) {
  const auto begin =
      std::lower_bound(s.sorted_t_lo.begin(), s.sorted_t_lo.end(), t0 - s.max_extent_m - 1e-12);
  const auto end = std::upper_bound(s.sorted_t_lo.begin(), s.sorted_t_lo.end(), t1 + 1e-12);
  for (auto it = begin; it != end; ++it) {
    const Eigen::Index face = s.by_t_lo[static_cast<std::size_t>(it - s.sorted_t_lo.begin())];
    if (s.t_hi_m[face] >= t0 - 1e-12)
      f(face);
  }
}

/// Mean of the nodes within 2 mm of t (widened until 20 nodes).
Eigen::Vector3d local_centre(const meshing::TetMesh& mesh, const Surface& s, const LimbAxis& ax,
                             double t_m) {
  double w = 2e-3;
  for (;;) {
    const auto lo = std::lower_bound(s.sorted_node_t.begin(), s.sorted_node_t.end(), t_m - w);
    const auto hi = std::upper_bound(s.sorted_node_t.begin(), s.sorted_node_t.end(), t_m + w);
    if (hi - lo >= 20 || w > 2.0 * ax.length_m + 1.0) {
      Eigen::Vector3d sum = Eigen::Vector3d::Zero();
      for (auto it = lo; it != hi; ++it)
        sum +=
            mesh.nodes_m.row(s.nodes_by_t[static_cast<std::size_t>(it - s.sorted_node_t.begin())])
                .transpose();
      Eigen::Vector3d c = hi > lo ? Eigen::Vector3d(sum / static_cast<double>(hi - lo))
                                  : Eigen::Vector3d(ax.origin_m + t_m * ax.axis);
      // Put the centre exactly at axial position t.
      c += (t_m - (c - ax.origin_m).dot(ax.axis)) * ax.axis;
      return c;
    }
    w *= 2.0;
  }
}

struct Hit {
  Eigen::Index face = -1;
  Eigen::Vector3d point_m = Eigen::Vector3d::Zero();
};

/// Whether the line o + dist d crosses boundary face f (Moller-Trumbore); dist is where.
bool line_hits_face(const meshing::TetMesh& mesh, const Surface& s, Eigen::Index f,
                    const Eigen::Vector3d& o, const Eigen::Vector3d& d, double& dist) {
  const Eigen::Vector3d a = mesh.nodes_m.row(s.faces(f, 0)).transpose();
  const Eigen::Vector3d e1 = mesh.nodes_m.row(s.faces(f, 1)).transpose() - a;
  const Eigen::Vector3d e2 = mesh.nodes_m.row(s.faces(f, 2)).transpose() - a;
  const Eigen::Vector3d p = d.cross(e2);
  const double det = e1.dot(p);
  if (std::abs(det) < 1e-30)
    return false;
  const Eigen::Vector3d q = o - a;
  const double u = q.dot(p) / det;
  if (u < -1e-9 || u > 1.0 + 1e-9)
    return false;
  const Eigen::Vector3d r = q.cross(e1);
  const double v = d.dot(r) / det;
  if (v < -1e-9 || u + v > 1.0 + 1e-9)
    return false;
  dist = e2.dot(r) / det;
  return true;
}

/// Farthest crossing of the ray o + s d (s > 0, d perpendicular to the axis) with the boundary.
Hit cast_ray(const meshing::TetMesh& mesh, const Surface& s, const Eigen::Vector3d& o,
             const Eigen::Vector3d& d, double t_m) {
  Hit hit;
  double best = 0.0;
  for_faces_in_slab(s, t_m, t_m, [&](Eigen::Index f) {
    double dist = 0.0;
    if (!line_hits_face(mesh, s, f, o, d, dist))
      return;
    if (dist > best) {
      best = dist;
      hit.face = f;
    }
  });
  if (hit.face >= 0)
    hit.point_m = o + best * d;
  return hit;
}

Eigen::Vector3d direction_at(const LimbAxis& ax, double angle_rad) {
  return std::cos(angle_rad) * ax.e1 + std::sin(angle_rad) * ax.e2;
}

double angle_of(const LimbAxis& ax, const Eigen::Vector3d& v) {
  return std::atan2(v.dot(ax.e2), v.dot(ax.e1));
}

/// The skin contour at axial position t: 360 ray hits, cumulative arc length.
struct Contour {
  bool ok = false;
  double failed_angle_deg = 0.0;
  std::vector<double> arc_m; ///< n_contour_rays + 1 cumulative lengths (last = perimeter)
  [[nodiscard]] double perimeter_m() const { return arc_m.back(); }
  /// Arc length at angle theta [rad].
  [[nodiscard]] double arc_at(double theta) const {
    double k = theta / (2.0 * pi) * n_contour_rays;
    k -= std::floor(k / n_contour_rays) * n_contour_rays;
    const auto i = std::min(static_cast<int>(k), n_contour_rays - 1);
    const double frac = k - i;
    return arc_m[static_cast<std::size_t>(i)] +
           frac * (arc_m[static_cast<std::size_t>(i) + 1] - arc_m[static_cast<std::size_t>(i)]);
  }
  /// Angle [rad] at arc length a (taken modulo the perimeter).
  [[nodiscard]] double angle_at(double a) const {
    const double p = perimeter_m();
    a -= std::floor(a / p) * p;
    auto it = std::upper_bound(arc_m.begin(), arc_m.end(), a);
    auto i = static_cast<int>(it - arc_m.begin()) - 1;
    i = std::clamp(i, 0, n_contour_rays - 1);
    const double seg = arc_m[static_cast<std::size_t>(i) + 1] - arc_m[static_cast<std::size_t>(i)];
    const double frac = seg > 0.0 ? (a - arc_m[static_cast<std::size_t>(i)]) / seg : 0.0;
    return 2.0 * pi * (i + frac) / n_contour_rays;
  }
};

Contour make_contour(const meshing::TetMesh& mesh, const Surface& s, const LimbAxis& ax,
                     double t_m) {
  Contour c;
  const Eigen::Vector3d o = local_centre(mesh, s, ax, t_m);
  std::vector<Eigen::Vector3d> pts;
  for (int k = 0; k < n_contour_rays; ++k) {
    const double th = 2.0 * pi * k / n_contour_rays;
    const Hit h = cast_ray(mesh, s, o, direction_at(ax, th), t_m);
    if (h.face < 0) {
      c.failed_angle_deg = 360.0 * k / n_contour_rays;
      return c;
    }
    pts.push_back(h.point_m);
  }
  // Arc length as the integral of r dtheta (the angular step is ied / local radius): robust to
  // the zigzag of the ray hits on a faceted surface, which would lengthen a polygonal contour.
  c.arc_m.push_back(0.0);
  const double dth = 2.0 * pi / n_contour_rays;
  for (int k = 0; k < n_contour_rays; ++k) {
    const Eigen::Vector3d& a = pts[static_cast<std::size_t>(k)];
    const Eigen::Vector3d& b = pts[static_cast<std::size_t>((k + 1) % n_contour_rays)];
    c.arc_m.push_back(c.arc_m.back() + 0.5 * ((a - o).norm() + (b - o).norm()) * dth);
  }
  c.ok = true;
  return c;
}

struct Placer {
  const meshing::TetMesh& mesh;
  const anatomy::TissueTable& tissues;
  const LimbAxis& ax;
  const Surface& s;
  bool has_skin = false;
  std::map<double, Contour> contours;

  const Contour& contour(double t_m) {
    auto it = contours.find(t_m);
    if (it == contours.end())
      it = contours.emplace(t_m, make_contour(mesh, s, ax, t_m)).first;
    return it->second;
  }

  const anatomy::Tissue* tissue_of_tet(std::int64_t t) const {
    return tissues.find(mesh.labels[static_cast<std::size_t>(t)]);
  }

  /// Projects the point at axial t and angle theta on the skin; fills position, normal, axial,
  /// angle. \throws BadInput naming `who`.
  Hit project(const std::string& who, double t_m, double theta, PlacedElectrode& e) {
    if (t_m < 0.0 || t_m > ax.length_m)
      throw BadInput(who + ": axial position " + mm(t_m) + " is outside the mesh (0 to " +
                     mm(ax.length_m) +
                     " along the limb axis): the electrode falls off the mesh "
                     "end");
    const Eigen::Vector3d o = local_centre(mesh, s, ax, t_m);
    const Hit h = cast_ray(mesh, s, o, direction_at(ax, theta), t_m);
    if (h.face < 0)
      throw BadInput(who + ": the ray from the limb axis at axial position " + mm(t_m) +
                     ", angle " + format_number(theta * 180.0 / pi) +
                     " deg does not reach the skin: the electrode is off the skin");
    return accept(who, h, t_m, theta, e);
  }

  /// Projects `p` (a point near the skin) on the skin along the line through it in direction
  /// `n` (the crossing of the boundary nearest p within 10 mm), else radially from the axis;
  /// fills position, normal, axial, angle. \throws BadInput naming `who`.
  Hit project_along(const std::string& who, const Eigen::Vector3d& p, const Eigen::Vector3d& n,
                    PlacedElectrode& e) {
    const double t_p = (p - ax.origin_m).dot(ax.axis);
    if (t_p < 0.0 || t_p > ax.length_m)
      throw BadInput(who + ": axial position " + mm(t_p) + " is outside the mesh (0 to " +
                     mm(ax.length_m) + "): the grid falls off the mesh end");
    const double reach = 10e-3;
    Hit best;
    double best_s = reach;
    const double dt = reach * std::abs(n.dot(ax.axis)) + 1e-6;
    for_faces_in_slab(s, t_p - dt, t_p + dt, [&](Eigen::Index f) {
      double dist = 0.0; // p + dist n lies on the face
      if (!line_hits_face(mesh, s, f, p, n, dist))
        return;
      if (std::abs(dist) < best_s && s.normal.row(f).dot(n) > 0.0) {
        best_s = std::abs(dist);
        best.face = f;
        best.point_m = p + dist * n;
      }
    });
    if (best.face < 0) {
      const Eigen::Vector3d lc = local_centre(mesh, s, ax, t_p);
      return project(who, t_p, angle_of(ax, p - lc), e);
    }
    const double t = (best.point_m - ax.origin_m).dot(ax.axis);
    const Eigen::Vector3d lc = local_centre(mesh, s, ax, std::clamp(t, 0.0, ax.length_m));
    return accept(who, best, t, angle_of(ax, best.point_m - lc), e);
  }

  /// The checks of a skin point found at `h` (axial t, angle theta): not on an end face, on
  /// skin when the mesh has skin; fills e. \throws BadInput naming `who`.
  Hit accept(const std::string& who, const Hit& h, double t_m, double theta, PlacedElectrode& e) {
    const Eigen::Vector3d n = s.normal.row(h.face).transpose();
    const bool at_end = s.t_lo_m[h.face] < 1e-3 || s.t_hi_m[h.face] > ax.length_m - 1e-3;
    if (at_end && std::abs(n.dot(ax.axis)) > 0.85)
      throw BadInput(who + ": projects at " + point_mm(h.point_m) +
                     " onto an end face of the mesh (normal along the limb axis): the electrode "
                     "falls off the mesh end");
    if (has_skin) {
      const auto* tissue = tissue_of_tet(s.face_tet[static_cast<std::size_t>(h.face)]);
      if (tissue == nullptr || tissue->tissue_class != anatomy::TissueClass::skin)
        throw BadInput(who + ": projects at " + point_mm(h.point_m) +
                       " onto the boundary of tissue '" + (tissue ? tissue->name : "?") +
                       "' (class " + (tissue ? anatomy::to_string(tissue->tissue_class) : "?") +
                       "), not skin: the electrode is off the skin");
    }
    e.position_m = h.point_m;
    e.axial_m = t_m;
    double deg = theta * 180.0 / pi;
    deg -= 360.0 * std::floor(deg / 360.0);
    e.angle_deg = deg;
    return h;
  }

  /// Selects the pad faces around e.position_m. `rotation` turns the pad from the axis.
  void make_pad(const std::string& who, const GridSpec& g, const Hit& h, double rotation_rad,
                PlacedElectrode& e) {
    const double r = g.shape == PadShape::circle ? g.radius_mm * 1e-3 : 0.5 * g.side_mm * 1e-3;
    const double reach = g.shape == PadShape::circle ? r : r * std::sqrt(2.0);
    const double t = e.axial_m;
    if (t - reach < 0.0 || t + reach > ax.length_m)
      throw BadInput(who + ": the pad (axial " + mm(t - reach) + " to " + mm(t + reach) +
                     ") falls off the mesh end (0 to " + mm(ax.length_m) + ")");
    const Eigen::Vector3d hit_n = s.normal.row(h.face).transpose();
    // Normal: area-weighted mean of the nearby faces on the same side.
    Eigen::Vector3d n = Eigen::Vector3d::Zero();
    const double cos70 = std::cos(70.0 * pi / 180.0);
    for_faces_in_slab(s, t - reach, t + reach, [&](Eigen::Index f) {
      if ((s.centroid_m.row(f).transpose() - e.position_m).norm() <= reach &&
          s.normal.row(f).dot(hit_n) > cos70)
        n += s.area_m2[f] * s.normal.row(f).transpose();
    });
    n = n.norm() > 0.0 ? n.normalized() : hit_n;
    e.normal = n;
    Eigen::Vector3d u = ax.axis.cross(n);
    u = u.norm() > 1e-9 ? Eigen::Vector3d(u.normalized()) : ax.e1;
    const Eigen::Vector3d v = n.cross(u);
    const Eigen::Vector3d ur = std::cos(rotation_rad) * u + std::sin(rotation_rad) * v;
    const Eigen::Vector3d vr = -std::sin(rotation_rad) * u + std::cos(rotation_rad) * v;
    std::vector<Eigen::Index> chosen;
    for_faces_in_slab(s, t - reach, t + reach, [&](Eigen::Index f) {
      const Eigen::Vector3d d = s.centroid_m.row(f).transpose() - e.position_m;
      const double dn = d.dot(n);
      if (std::abs(dn) > std::max(reach, 1e-3) || s.normal.row(f).dot(n) < cos70)
        return;
      const Eigen::Vector3d dt = d - dn * n;
      const double x = dt.dot(ur), y = dt.dot(vr);
      const bool inside = g.shape == PadShape::circle ? x * x + y * y <= r * r
                                                      : std::abs(x) <= r && std::abs(y) <= r;
      if (inside)
        chosen.push_back(f);
    });
    if (chosen.empty())
      chosen.push_back(h.face);
    std::sort(chosen.begin(), chosen.end());
    e.pad_faces.resize(static_cast<Eigen::Index>(chosen.size()), 3);
    e.area_m2 = 0.0;
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      e.pad_faces.row(static_cast<Eigen::Index>(i)) = s.faces.row(chosen[i]);
      e.area_m2 += s.area_m2[chosen[i]];
    }
    e.nominal_area_m2 = g.shape == PadShape::circle ? pi * r * r : 4.0 * r * r;
  }
};

std::string electrode_name(const GridSpec& g, std::int64_t row, std::int64_t column) {
  if (g.rows == 1 && g.columns == 1)
    return g.name;
  return g.name + "[" + std::to_string(row) + "," + std::to_string(column) + "]";
}

/// Whether any tet of the mesh is of the skin class (then pads must sit on skin).
bool mesh_has_skin(const meshing::TetMesh& mesh, const anatomy::TissueTable& tissues) {
  for (const auto label : mesh.labels) {
    const auto* t = tissues.find(label);
    if (t != nullptr && t->tissue_class == anatomy::TissueClass::skin)
      return true;
  }
  return false;
}

/// A point on the skin by axial position [m] and angle around the axis [rad].
struct AxialAngle {
  double t_m = 0.0;
  double theta_rad = 0.0;
};

/// The grid centre: from centre_mm (its angle seen from the local centre of its section), else
/// from the axial position (or fraction) and angle_deg.
AxialAngle grid_centre(const Placer& placer, const GridSpec& g) {
  const LimbAxis& ax = placer.ax;
  AxialAngle c0;
  if (g.centre_mm) {
    const Eigen::Vector3d c = *g.centre_mm * 1e-3;
    c0.t_m = (c - ax.origin_m).dot(ax.axis);
    const Eigen::Vector3d lc = c0.t_m >= 0.0 && c0.t_m <= ax.length_m
                                   ? local_centre(placer.mesh, placer.s, ax, c0.t_m)
                                   : Eigen::Vector3d(ax.origin_m + c0.t_m * ax.axis);
    c0.theta_rad = angle_of(ax, c - lc);
  } else {
    c0.t_m = g.axial_position_mm ? *g.axial_position_mm * 1e-3 : g.axial_fraction * ax.length_m;
    c0.theta_rad = g.angle_deg * pi / 180.0;
  }
  return c0;
}

/// The limb circumference [m] at the centre of a wrapped grid. \throws BadInput for an open
/// contour or a span of columns beyond the circumference (unless even_columns).
double wrapped_circumference(Placer& placer, const GridSpec& g, const std::string& gwho,
                             double t0) {
  const double ied = g.ied_mm * 1e-3;
  const Contour& c0 = placer.contour(t0);
  if (!c0.ok)
    throw BadInput(gwho + ": the skin contour at axial position " + mm(t0) +
                   " is not closed (no skin at angle " + format_number(c0.failed_angle_deg) +
                   " deg)");
  const double circumference = c0.perimeter_m();
  const double span = static_cast<double>(g.columns) * ied;
  if (g.columns > 1 && !g.even_columns && span > circumference * (1.0 + 1e-9))
    throw BadInput(gwho + ": wrapped span " + std::to_string(g.columns) + " columns x " +
                   format_number(g.ied_mm) + " mm = " + format_number(span * 1e3) +
                   " mm exceeds the limb circumference " +
                   format_number(std::round(circumference * 1e4) / 10.0) +
                   " mm at axial position " + mm(t0) +
                   ": use fewer columns or a smaller ied_mm, or wrap: false");
  return circumference;
}

/// The skin under a flat grid: a plane fitted through the outward boundary faces near its
/// centre (origin c, u across the rows, v along them, outward normal n; turned by the grid's
/// rotation) and a quadric height field h(x, y) = q0 + q1 x + q2 y + q3 x^2 + q4 x y + q5 y^2
/// over it fitted to the same faces.
struct SkinFrame {
  Eigen::Vector3d c = Eigen::Vector3d::Zero();
  Eigen::Vector3d u = Eigen::Vector3d::UnitX();
  Eigen::Vector3d v = Eigen::Vector3d::UnitY();
  Eigen::Vector3d n = Eigen::Vector3d::UnitZ();
  Eigen::Matrix<double, 6, 1> q = Eigen::Matrix<double, 6, 1>::Zero();
  std::int64_t n_faces = 0;

  [[nodiscard]] double h(double x, double y) const {
    return q[0] + q[1] * x + q[2] * y + q[3] * x * x + q[4] * x * y + q[5] * y * y;
  }
  [[nodiscard]] double hx(double x, double y) const { return q[1] + 2.0 * q[3] * x + q[4] * y; }
  [[nodiscard]] double hy(double x, double y) const { return q[2] + q[4] * x + 2.0 * q[5] * y; }

  /// The point of the fitted surface at arc `ax_m` along the row through the centre (y = 0),
  /// then arc `ay_m` along the column there (midpoint steps of at most 0.1 mm).
  [[nodiscard]] Eigen::Vector3d along_skin(double ax_m, double ay_m,
                                           Eigen::Vector3d* normal = nullptr) const {
    const auto walk = [](double arc, double start, auto slope) {
      const int steps = std::max(1, static_cast<int>(std::ceil(std::abs(arc) / 1e-4)));
      const double ds = arc / steps;
      double p = start;
      for (int k = 0; k < steps; ++k) {
        const double half = p + 0.5 * ds / std::sqrt(1.0 + std::pow(slope(p), 2));
        p += ds / std::sqrt(1.0 + std::pow(slope(half), 2));
      }
      return p;
    };
    const double x = walk(ax_m, 0.0, [this](double t) { return hx(t, 0.0); });
    const double y = walk(ay_m, 0.0, [this, x](double t) { return hy(x, t); });
    if (normal != nullptr)
      *normal = (n - hx(x, y) * u - hy(x, y) * v).normalized();
    return c + x * u + y * v + h(x, y) * n;
  }
};

/// Fits the SkinFrame at `centre_m` (a point on the skin) to the outward boundary faces (skin
/// faces when the mesh has skin) within `radius_m`: `outward` tells the outside, rows are
/// turned by `rotation_rad` from the limb axis about the normal.
SkinFrame fit_skin_frame(const Placer& placer, const Eigen::Vector3d& centre_m,
                         const Eigen::Vector3d& outward, double radius_m, double rotation_rad) {
  const LimbAxis& ax = placer.ax;
  const Surface& s = placer.s;
  const double t = (centre_m - ax.origin_m).dot(ax.axis);
  std::vector<Eigen::Index> faces;
  for_faces_in_slab(s, t - radius_m, t + radius_m, [&](Eigen::Index f) {
    if ((s.centroid_m.row(f).transpose() - centre_m).norm() > radius_m ||
        s.normal.row(f).dot(outward) <= 0.0)
      return;
    if (placer.has_skin) {
      const auto* tissue = placer.tissue_of_tet(s.face_tet[static_cast<std::size_t>(f)]);
      if (tissue == nullptr || tissue->tissue_class != anatomy::TissueClass::skin)
        return;
    }
    faces.push_back(f);
  });
  SkinFrame fr;
  fr.c = centre_m;
  fr.n_faces = static_cast<std::int64_t>(faces.size());
  // The plane: area-weighted least squares through the face centroids.
  Eigen::Vector3d n = outward.normalized();
  if (faces.size() >= 3) {
    double w = 0.0;
    Eigen::Vector3d mean = Eigen::Vector3d::Zero();
    for (auto f : faces) {
      w += s.area_m2[f];
      mean += s.area_m2[f] * s.centroid_m.row(f).transpose();
    }
    mean /= w;
    Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
    for (auto f : faces) {
      const Eigen::Vector3d d = s.centroid_m.row(f).transpose() - mean;
      cov += s.area_m2[f] * d * d.transpose();
    }
    const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> eig(cov);
    // A patch spread in two directions; else (a strip) keep the outward direction.
    if (eig.eigenvalues()[1] > 1e-3 * eig.eigenvalues()[2]) {
      n = eig.eigenvectors().col(0).normalized();
      if (n.dot(outward) < 0.0)
        n = -n;
    }
  }
  Eigen::Vector3d u = ax.axis.cross(n);
  u = u.norm() > 1e-9 ? Eigen::Vector3d(u.normalized()) : ax.e1;
  const Eigen::Vector3d v = n.cross(u);
  fr.n = n;
  fr.u = std::cos(rotation_rad) * u + std::sin(rotation_rad) * v;
  fr.v = -std::sin(rotation_rad) * u + std::cos(rotation_rad) * v;
  // The height field: area-weighted least squares; a plane through the centre when the patch
  // is too small for a quadric.
  if (faces.size() >= 12) {
    Eigen::Matrix<double, 6, 6> ata = Eigen::Matrix<double, 6, 6>::Zero();
    Eigen::Matrix<double, 6, 1> atb = Eigen::Matrix<double, 6, 1>::Zero();
    for (auto f : faces) {
      const Eigen::Vector3d d = s.centroid_m.row(f).transpose() - centre_m;
      const double x = d.dot(fr.u), y = d.dot(fr.v), z = d.dot(n);
      Eigen::Matrix<double, 6, 1> a;
      a << 1.0, x, y, x * x, x * y, y * y;
      ata += s.area_m2[f] * a * a.transpose();
      atb += s.area_m2[f] * z * a;
    }
    const Eigen::Matrix<double, 6, 1> q = ata.ldlt().solve(atb);
    if (q.allFinite())
      fr.q = q;
  }
  return fr;
}

/// Where a grid's electrodes are laid out from: its centre (axial, angle), the centre's pad,
/// and the skin frame fitted under the grid (non-wrapped grids).
struct GridFrame {
  AxialAngle c0;
  PlacedElectrode centre;
  SkinFrame skin;
};

/// Column j of a wrapped grid at offset (xr, yr) [m] from the centre: axial t0 + yr, the angle
/// an arc xr (or an even share of the perimeter) round the contour. \throws BadInput off the
/// mesh end, for an open contour or a span beyond the circumference.
AxialAngle wrapped_electrode(Placer& placer, const GridSpec& g, const std::string& who,
                             const AxialAngle& c0, std::int64_t j, double xr, double yr) {
  const LimbAxis& ax = placer.ax;
  const double ied = g.ied_mm * 1e-3;
  const double t = c0.t_m + yr;
  if (t < 0.0 || t > ax.length_m)
    throw BadInput(who + ": axial position " + mm(t) + " is outside the mesh (0 to " +
                   mm(ax.length_m) + "): the grid falls off the mesh end");
  const Contour& c = placer.contour(t);
  if (!c.ok)
    throw BadInput(who + ": the skin contour at axial position " + mm(t) +
                   " is not closed (no skin at angle " + format_number(c.failed_angle_deg) +
                   " deg): off the skin");
  if (g.columns > 1 && !g.even_columns &&
      static_cast<double>(g.columns) * ied > c.perimeter_m() * (1 + 1e-9))
    throw BadInput(who + ": wrapped span " + std::to_string(g.columns) + " columns x " +
                   format_number(g.ied_mm) +
                   " mm = " + format_number(static_cast<double>(g.columns) * g.ied_mm) +
                   " mm exceeds the limb circumference " +
                   format_number(std::round(c.perimeter_m() * 1e4) / 10.0) +
                   " mm at axial position " + mm(t));
  const double arc = g.even_columns
                         ? (static_cast<double>(j) - 0.5 * static_cast<double>(g.columns - 1)) *
                               c.perimeter_m() / static_cast<double>(g.columns)
                         : xr;
  return {t, c.angle_at(c.arc_at(c0.theta_rad) + arc)};
}

/// The axial position and angle (seen from the local centre) of a point near the skin.
/// \throws BadInput off the mesh end.
AxialAngle axial_angle_of(const Placer& placer, const std::string& who, const Eigen::Vector3d& p) {
  const LimbAxis& ax = placer.ax;
  const double t = (p - ax.origin_m).dot(ax.axis);
  if (t < 0.0 || t > ax.length_m)
    throw BadInput(who + ": axial position " + mm(t) + " is outside the mesh (0 to " +
                   mm(ax.length_m) + "): the grid falls off the mesh end");
  return {t, angle_of(ax, p - local_centre(placer.mesh, placer.s, ax, t))};
}

/// The electrode of row i, column j of a grid: offset from the centre by the rotated ied
/// lattice, projected on the skin, with its pad.
PlacedElectrode grid_electrode(Placer& placer, const GridSpec& g, const std::string& gwho,
                               const GridFrame& frame, double rot, std::int64_t i, std::int64_t j) {
  const double ied = g.ied_mm * 1e-3;
  PlacedElectrode e;
  e.name = electrode_name(g, i, j);
  e.kind = ElectrodeKind::pad;
  e.group = g.name;
  e.row = i;
  e.column = j;
  const std::string who = gwho + " electrode " + e.name;
  const double x = (static_cast<double>(j) - 0.5 * static_cast<double>(g.columns - 1)) * ied;
  const double y = (static_cast<double>(i) - 0.5 * static_cast<double>(g.rows - 1)) * ied;
  const double xr = x * std::cos(rot) - y * std::sin(rot);
  const double yr = x * std::sin(rot) + y * std::cos(rot);
  // Flat grids: the lattice laid along the fitted skin (frame.skin is already turned by rot),
  // each point taken onto the skin along the fitted surface's normal there.
  Hit h;
  if (g.wrap) {
    const AxialAngle at = wrapped_electrode(placer, g, who, frame.c0, j, xr, yr);
    h = placer.project(who, at.t_m, at.theta_rad, e);
  } else {
    Eigen::Vector3d normal;
    const Eigen::Vector3d p = frame.skin.along_skin(x, y, &normal);
    h = placer.project_along(who, p, normal, e);
  }
  placer.make_pad(who, g, h, rot, e);
  return e;
}

/// A muscle of the mesh: its tissue, the volume-weighted centroid of its tets and their mean
/// fibre direction (each signed along the limb axis; the principal axis of the tet centroids
/// when the tets carry no fibre direction).
struct MuscleGeometry {
  const anatomy::Tissue* tissue = nullptr;
  Eigen::Vector3d centroid_m = Eigen::Vector3d::Zero();
  Eigen::Vector3d fibre = Eigen::Vector3d::UnitZ();
};

/// The muscle `name` (any spelling, or its label) among the muscle tissues of the mesh.
/// \throws BadInput naming `key` and listing the muscles present.
MuscleGeometry muscle_geometry(const Placer& placer, const std::string& key,
                               const std::string& name) {
  const meshing::TetMesh& mesh = placer.mesh;
  std::set<std::int32_t> present(mesh.labels.begin(), mesh.labels.end());
  const std::string want = anatomy::canonical_tissue_name(name);
  MuscleGeometry m;
  std::string list;
  for (const auto& t : placer.tissues.tissues) {
    if (t.tissue_class != anatomy::TissueClass::muscle || present.count(t.label) == 0)
      continue;
    list += (list.empty() ? "" : ", ") + t.name;
    if (m.tissue == nullptr &&
        (anatomy::canonical_tissue_name(t.name) == want || std::to_string(t.label) == name))
      m.tissue = &t;
  }
  if (m.tissue == nullptr)
    throw BadInput(key + " = \"" + name +
                   "\": no muscle of that name in the mesh: expected one of " +
                   (list.empty() ? std::string("(the mesh has no muscle)") : list));
  double volume = 0.0;
  Eigen::Vector3d fibre = Eigen::Vector3d::Zero();
  std::vector<Eigen::Vector3d> centroids;
  for (std::int64_t t = 0; t < mesh.n_tets(); ++t) {
    if (mesh.labels[static_cast<std::size_t>(t)] != m.tissue->label)
      continue;
    const double v = std::abs(meshing::tet_volume_m3(mesh, t));
    Eigen::Vector3d c = Eigen::Vector3d::Zero();
    for (int k = 0; k < 4; ++k)
      c += 0.25 * mesh.nodes_m.row(mesh.tets(t, k)).transpose();
    centroids.push_back(c);
    volume += v;
    m.centroid_m += v * c;
    if (mesh.fibre_direction.rows() == mesh.n_tets()) {
      Eigen::Vector3d f = mesh.fibre_direction.row(t).transpose();
      fibre += v * (f.dot(placer.ax.axis) < 0.0 ? Eigen::Vector3d(-f) : f);
    }
  }
  m.centroid_m /= volume;
  if (fibre.norm() > 1e-12 * volume) {
    m.fibre = fibre.normalized();
  } else {
    Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
    for (const auto& c : centroids)
      cov += (c - m.centroid_m) * (c - m.centroid_m).transpose();
    m.fibre = Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d>(cov).eigenvectors().col(2);
  }
  return m;
}

/// The skin point over a muscle: its centroid projected radially on the skin.
Hit skin_over(Placer& placer, const std::string& who, const MuscleGeometry& m,
              PlacedElectrode& at) {
  const LimbAxis& ax = placer.ax;
  const double t = std::clamp((m.centroid_m - ax.origin_m).dot(ax.axis), 0.0, ax.length_m);
  const Eigen::Vector3d lc = local_centre(placer.mesh, placer.s, ax, t);
  return placer.project(who, t, angle_of(ax, m.centroid_m - lc), at);
}

/// Rotation [rad] that turns the rows of a frame fitted with rotation 0 onto the fibre
/// direction projected on its plane, in (-90, 90] degrees.
double fibre_rotation(const SkinFrame& f0, const Eigen::Vector3d& fibre) {
  double a = fibre.dot(f0.u), b = fibre.dot(f0.v);
  if (b < 0.0 || (b == 0.0 && a > 0.0)) {
    a = -a;
    b = -b;
  }
  return std::atan2(-a, b);
}

/// The radius of skin a flat grid's frame is fitted over: its half-diagonal plus a pad
/// (at least 5 mm).
double frame_radius(const GridSpec& g) {
  const double reach = g.shape == PadShape::circle ? g.radius_mm : 0.5 * g.side_mm * std::sqrt(2.0);
  const double half_diagonal =
      0.5 * g.ied_mm *
      std::hypot(static_cast<double>(g.rows - 1), static_cast<double>(g.columns - 1));
  return std::max(half_diagonal + reach, 5.0) * 1e-3;
}

/// Places grid gi: its centre, the circumference there (wrapped grids; else 0) into
/// layout.grid_circumference_m, its electrodes row by row into layout.electrodes.
/// \throws BadInput naming the grid and electrode that falls off the mesh or the skin; for a
/// grid placed by muscle, how many of its electrodes, rows and columns fit.
void place_grid(Placer& placer, const GridSpec& g, std::size_t gi, ElectrodeLayout& layout) {
  const LimbAxis& ax = placer.ax;
  const std::string gwho = "electrodes.grids[" + std::to_string(gi) + "] '" + g.name + "'";
  double rot = g.rotation_deg * pi / 180.0;
  GridFrame frame;
  std::optional<AnatomicalPlacement> placed;
  Hit centre_hit;
  if (g.muscle.empty()) {
    frame.c0 = grid_centre(placer, g);
    centre_hit = placer.project(gwho + " centre", frame.c0.t_m, frame.c0.theta_rad, frame.centre);
  } else {
    // Over the muscle: its skin point, the frame there, rows along its fibres, the offset.
    const MuscleGeometry m =
        muscle_geometry(placer, "electrodes.grids[" + std::to_string(gi) + "].muscle", g.muscle);
    const std::string who = gwho + " over muscle '" + m.tissue->name + "'";
    PlacedElectrode over;
    const Hit h0 = skin_over(placer, who + " (its centre)", m, over);
    const Eigen::Vector3d out0 = direction_at(ax, over.angle_deg * pi / 180.0);
    const SkinFrame f0 = fit_skin_frame(placer, over.position_m, out0, frame_radius(g), 0.0);
    rot += fibre_rotation(f0, m.fibre);
    frame.c0 = {over.axial_m, over.angle_deg * pi / 180.0};
    frame.centre = over;
    centre_hit = h0;
    if (g.offset_mm.norm() > 0.0) {
      const SkinFrame f1 = fit_skin_frame(placer, over.position_m, out0, frame_radius(g), rot);
      frame.c0 = axial_angle_of(placer, who + " offset centre",
                                f1.along_skin(g.offset_mm[0] * 1e-3, g.offset_mm[1] * 1e-3));
      frame.centre = PlacedElectrode{};
      centre_hit =
          placer.project(who + " offset centre", frame.c0.t_m, frame.c0.theta_rad, frame.centre);
    }
    placed = AnatomicalPlacement{
        g.name, g.muscle, m.tissue->name, Eigen::Vector3d::Zero(), over.position_m, m.fibre, 0.0};
  }
  const double circumference = g.wrap ? wrapped_circumference(placer, g, gwho, frame.c0.t_m) : 0.0;
  layout.grid_circumference_m.push_back(circumference);
  placer.make_pad(gwho + " centre", g, centre_hit, rot, frame.centre);
  if (!g.wrap)
    frame.skin = fit_skin_frame(placer, frame.centre.position_m,
                                direction_at(ax, frame.c0.theta_rad), frame_radius(g), rot);
  if (!placed) {
    for (std::int64_t i = 0; i < g.rows; ++i)
      for (std::int64_t j = 0; j < g.columns; ++j)
        layout.electrodes.push_back(grid_electrode(placer, g, gwho, frame, rot, i, j));
    return;
  }
  // A grid over a muscle fits whole or says how much of it does.
  std::vector<PlacedElectrode> electrodes;
  std::vector<char> fits(static_cast<std::size_t>(g.rows * g.columns), 0);
  std::string first_error;
  for (std::int64_t i = 0; i < g.rows; ++i)
    for (std::int64_t j = 0; j < g.columns; ++j) {
      try {
        electrodes.push_back(grid_electrode(placer, g, gwho, frame, rot, i, j));
        fits[static_cast<std::size_t>(i * g.columns + j)] = 1;
      } catch (const BadInput& e) {
        if (first_error.empty())
          first_error = e.what();
      }
    }
  if (!first_error.empty()) {
    std::int64_t full_rows = 0, full_columns = 0;
    for (std::int64_t i = 0; i < g.rows; ++i) {
      bool all = true;
      for (std::int64_t j = 0; j < g.columns; ++j)
        all = all && fits[static_cast<std::size_t>(i * g.columns + j)];
      full_rows += all ? 1 : 0;
    }
    for (std::int64_t j = 0; j < g.columns; ++j) {
      bool all = true;
      for (std::int64_t i = 0; i < g.rows; ++i)
        all = all && fits[static_cast<std::size_t>(i * g.columns + j)];
      full_columns += all ? 1 : 0;
    }
    throw BadInput(gwho + " (" + std::to_string(g.rows) + " x " + std::to_string(g.columns) + ", " +
                   format_number(g.ied_mm) + " mm) does not fit on the skin over muscle '" +
                   placed->tissue + "': " + std::to_string(electrodes.size()) + " of " +
                   std::to_string(g.rows * g.columns) + " electrodes fit (" +
                   std::to_string(full_rows) + " whole rows, " + std::to_string(full_columns) +
                   " whole columns); first that does not: " + first_error +
                   ". Use fewer rows or columns, a smaller ied_mm, or offset_mm");
  }
  for (auto& e : electrodes)
    layout.electrodes.push_back(std::move(e));
  placed->centre_m = frame.centre.position_m;
  placed->rotation_deg = rot * 180.0 / pi;
  layout.placements.push_back(*placed);
}

/// The contact points of a needle (#points x 3 [m]): its position, or n_points evenly from
/// start to end.
Eigen::MatrixX3d needle_contacts(const NeedleSpec& nd) {
  Eigen::MatrixX3d points(nd.n_points, 3);
  if (nd.position_mm) {
    points.row(0) = (*nd.position_mm * 1e-3).transpose();
  } else {
    for (std::int64_t k = 0; k < nd.n_points; ++k) {
      const double f = static_cast<double>(k) / static_cast<double>(nd.n_points - 1);
      points.row(k) = ((nd.start_mm + f * (nd.end_mm - nd.start_mm)) * 1e-3).transpose();
    }
  }
  return points;
}

/// Places needle ni: its contacts, each checked to lie in a muscle, its mean position and its
/// axial position [m] and angle [deg] on the limb axis. \throws BadInput naming the needle and
/// the contact outside the mesh or outside muscle.
PlacedElectrode place_needle(Placer& placer, const PointLocator& locator, const NeedleSpec& nd,
                             std::size_t ni, ElectrodeLayout& layout) {
  const LimbAxis& ax = placer.ax;
  const std::string who = "electrodes.needles[" + std::to_string(ni) + "] '" + nd.name + "'";
  PlacedElectrode e;
  e.name = nd.name;
  e.group = nd.name;
  e.kind = nd.position_mm || !nd.muscle.empty() ? ElectrodeKind::point : ElectrodeKind::line;
  if (nd.muscle.empty()) {
    e.contact_points_m = needle_contacts(nd);
  } else {
    // depth_mm under the skin over the muscle, along the inward normal fitted over 10 mm.
    const MuscleGeometry m =
        muscle_geometry(placer, "electrodes.needles[" + std::to_string(ni) + "].muscle", nd.muscle);
    PlacedElectrode over;
    skin_over(placer, who + " over muscle '" + m.tissue->name + "'", m, over);
    const SkinFrame f = fit_skin_frame(placer, over.position_m,
                                       direction_at(ax, over.angle_deg * pi / 180.0), 10e-3, 0.0);
    const Eigen::Vector3d p = over.position_m - nd.depth_mm * 1e-3 * f.n;
    const PointLocations at = locator.locate(p.transpose());
    const auto tet = at.tet[0];
    if (tet < 0 || placer.mesh.labels[static_cast<std::size_t>(tet)] != m.tissue->label) {
      // The depths along the line where the muscle is.
      const int n = 2000;
      Eigen::MatrixX3d line(n, 3);
      for (int k = 0; k < n; ++k)
        line.row(k) = (over.position_m - (0.1e-3 * k) * f.n).transpose();
      const PointLocations l = locator.locate(line);
      double lo = -1.0, hi = -1.0;
      for (int k = 0; k < n; ++k) {
        const auto tk = l.tet[static_cast<std::size_t>(k)];
        if (tk >= 0 && placer.mesh.labels[static_cast<std::size_t>(tk)] == m.tissue->label) {
          lo = lo < 0.0 ? 0.1 * k : lo;
          hi = 0.1 * k;
        }
      }
      throw BadInput(who + ": depth_mm = " + format_number(nd.depth_mm) + " under the skin at " +
                     point_mm(over.position_m) + " is not in muscle '" + m.tissue->name + "': " +
                     (lo < 0.0 ? std::string("the line inward from there does not cross it "
                                             "within 200 mm")
                               : "expected a depth from " + format_number(lo) + " to " +
                                     format_number(hi) + " mm"));
    }
    e.contact_points_m = p.transpose();
    layout.placements.push_back(
        AnatomicalPlacement{nd.name, nd.muscle, m.tissue->name, p, over.position_m, m.fibre, 0.0});
  }
  const PointLocations loc = locator.locate(e.contact_points_m);
  for (Eigen::Index k = 0; k < loc.size(); ++k) {
    const Eigen::Vector3d p = e.contact_points_m.row(k).transpose();
    const std::string what = nd.position_mm
                                 ? "contact at " + point_mm(p)
                                 : "contact point " + std::to_string(k) + " at " + point_mm(p);
    const auto tet = loc.tet[static_cast<std::size_t>(k)];
    if (tet < 0)
      throw BadInput(who + ": " + what +
                     " is outside the mesh: expected a point inside a "
                     "muscle");
    const auto* tissue = placer.tissue_of_tet(tet);
    if (tissue == nullptr || tissue->tissue_class != anatomy::TissueClass::muscle)
      throw BadInput(who + ": " + what + " lies in tissue '" + (tissue ? tissue->name : "?") +
                     "' (class " + (tissue ? anatomy::to_string(tissue->tissue_class) : "?") +
                     ", label " +
                     std::to_string(placer.mesh.labels[static_cast<std::size_t>(tet)]) +
                     "): expected a muscle");
  }
  e.position_m = e.contact_points_m.colwise().mean().transpose();
  e.axial_m = (e.position_m - ax.origin_m).dot(ax.axis);
  e.angle_deg = angle_of(ax, e.position_m - ax.origin_m) * 180.0 / pi;
  if (e.angle_deg < 0.0)
    e.angle_deg += 360.0;
  return e;
}

/// The index of the electrode named `reference` (the last of that name). \throws BadInput when
/// none is.
std::int64_t reference_index(const std::vector<PlacedElectrode>& electrodes,
                             const std::string& reference) {
  std::int64_t index = -1;
  for (std::size_t k = 0; k < electrodes.size(); ++k)
    if (electrodes[k].name == reference)
      index = static_cast<std::int64_t>(k);
  if (index < 0) {
    std::string examples;
    for (std::size_t k = 0; k < std::min<std::size_t>(3, electrodes.size()); ++k)
      examples += (k ? ", " : "") + electrodes[k].name;
    throw BadInput("electrodes.reference = \"" + reference +
                   "\": names no electrode: expected \"average\" or an electrode name (e.g. " +
                   examples + ")");
  }
  return index;
}

/// The names of the grids and needles read so far: each must be unique and not empty.
class UniqueNames {
public:
  void check(ConfigReader& r, const std::string& name) {
    if (name.empty())
      r.fail("name", "must not be empty");
    if (!names_.insert(name).second)
      r.fail("name", "is used by another grid or needle: expected unique names");
  }

private:
  std::set<std::string> names_;
};

/// Where grid `g` goes: over a muscle (with an offset), at a point, or by axial position and
/// angle around the limb axis (the default).
void read_grid_centre(ConfigReader& r, GridSpec& g) {
  if (r.has("muscle")) {
    if (r.has("centre_mm") || r.has("axial_position_mm") || r.has("axial_fraction") ||
        r.has("angle_deg"))
      r.fail("muscle", "give either muscle or centre_mm / axial_position_mm / axial_fraction "
                       "/ angle_deg, not both");
    g.muscle = r.required<std::string>(
        "muscle", {},
        "place the grid over this muscle (tissue name in any spelling, or its label): centred "
        "on the skin over it, rows along its fibres; replaces the centre keys; not with wrap");
    if (g.muscle.empty())
      r.fail("muscle", "must not be empty");
    const auto offset = r.optional<std::vector<double>>(
        "offset_mm", {0.0, 0.0},
        {[](const std::vector<double>& v) -> std::optional<std::string> {
           if (v.size() != 2 || !std::isfinite(v[0]) || !std::isfinite(v[1]))
             return "expected 2 finite numbers [across, along]";
           return std::nullopt;
         },
         "[across, along], finite"},
        "with muscle: the grid centre moved across and along its rows, measured along the "
        "skin");
    g.offset_mm = {offset[0], offset[1]};
  } else if (r.has("centre_mm")) {
    if (r.has("axial_position_mm") || r.has("axial_fraction") || r.has("angle_deg"))
      r.fail("centre_mm", "give either centre_mm or axial_position_mm / axial_fraction "
                          "and angle_deg, not both");
    g.centre_mm =
        to_vec(r.required<std::vector<double>>("centre_mm", three_numbers(),
                                               "grid centre as a point, projected radially on "
                                               "the skin; replaces axial position and angle"));
  } else {
    if (r.has("axial_position_mm") && r.has("axial_fraction"))
      r.fail("axial_fraction", "give either axial_position_mm or axial_fraction, not both");
    if (r.has("axial_position_mm"))
      g.axial_position_mm = r.required<double>(
          "axial_position_mm", non_negative(),
          "grid centre along the limb axis, from the axis start; replaces axial_fraction");
    else
      g.axial_fraction =
          r.optional<double>("axial_fraction", 0.5, in_range(0.0, 1.0),
                             "grid centre along the limb axis as a fraction of the limb length");
    g.angle_deg = r.optional<double>("angle_deg", 0.0, in_range(-3600.0, 3600.0),
                                     "angle of the grid centre around the limb axis (0: the "
                                     "world axis most perpendicular to it)");
  }
}

/// The grid at index `i` of `electrodes.grids`.
GridSpec read_grid(ConfigReader& r, std::size_t i, UniqueNames& names) {
  GridSpec g;
  g.name = r.optional<std::string>(
      "name", i == 0 ? "grid" : "grid" + std::to_string(i + 1), {},
      "grid name, unique; its electrodes are called name[row,column] (a 1 x 1 grid: name)");
  names.check(r, g.name);
  g.rows = r.optional<std::int64_t>("rows", 10, int_in_range(1, 100000),
                                    "electrodes along the limb axis");
  g.columns = r.optional<std::int64_t>("columns", 32, int_in_range(1, 100000),
                                       "electrodes across the limb axis");
  g.ied_mm = r.optional<double>("ied_mm", 8.0, positive(),
                                "inter-electrode distance between neighbouring rows and columns");
  const auto shape = r.optional<std::string>(
      "shape", "circle", one_of({"circle", "square"}),
      "pad shape: a disc of radius_mm, or a square of side_mm aligned with the grid");
  g.shape = shape == "circle" ? PadShape::circle : PadShape::square;
  if (g.shape == PadShape::circle)
    g.radius_mm = r.optional<double>("radius_mm", 1.5, positive(), "radius of a circular pad");
  else
    g.side_mm = r.optional<double>("side_mm", 3.0, positive(), "side of a square pad");
  read_grid_centre(r, g);
  g.rotation_deg = r.optional<double>(
      "rotation_deg", 0.0, in_range(-360.0, 360.0),
      "rotation of the grid rows away from the limb axis (with muscle: from its fibres), "
      "about the skin normal");
  g.wrap = r.optional<bool>("wrap", false, {},
                            "columns follow the limb circumference instead of the tangent plane");
  if (g.wrap && !g.muscle.empty())
    r.fail("wrap", "is true with muscle: a grid placed over a muscle is flat (wrap: false)");
  if (g.wrap) {
    g.even_columns =
        r.optional<std::string>("column_spacing", "ied", one_of({"ied", "even"}),
                                "wrap only: ied (columns ied_mm apart along the contour) or "
                                "even (spread around the circumference)") == "even";
    if (g.even_columns && g.rotation_deg != 0.0)
      r.fail("column_spacing", "\"even\" needs rotation_deg = 0");
  }
  return g;
}

/// One entry of `electrodes.needles`: a point in a muscle at a depth, a point, or a line contact.
NeedleSpec read_needle(ConfigReader& r, UniqueNames& names) {
  NeedleSpec n;
  n.name = r.required<std::string>(
      "name", {}, "name of the needle or fine-wire contact, unique among all electrodes");
  names.check(r, n.name);
  if (r.has("muscle")) {
    if (r.has("position_mm") || r.has("start_mm") || r.has("end_mm") || r.has("n_points"))
      r.fail("muscle", "give either muscle and depth_mm, or position_mm, or start_mm and "
                       "end_mm, not several");
    n.muscle = r.required<std::string>(
        "muscle", {},
        "a point contact in this muscle (tissue name in any spelling, or its label), "
        "depth_mm under the skin over it; replaces position_mm");
    if (n.muscle.empty())
      r.fail("muscle", "must not be empty");
    n.depth_mm = r.required<double>(
        "depth_mm", positive(),
        "with muscle: depth of the contact under the skin over the muscle, along the inward "
        "normal");
  } else if (r.has("position_mm")) {
    if (r.has("start_mm") || r.has("end_mm") || r.has("n_points"))
      r.fail("position_mm", "give either position_mm (a point contact) or start_mm, end_mm "
                            "and n_points (a line contact), not both");
    n.position_mm = to_vec(r.required<std::vector<double>>(
        "position_mm", three_numbers(),
        "point contact inside a muscle; replaces start_mm, end_mm and n_points"));
    n.n_points = 1;
  } else {
    if (!r.has("start_mm"))
      r.fail("position_mm", "missing: expected position_mm [x, y, z] or start_mm and end_mm");
    n.start_mm = to_vec(r.required<std::vector<double>>("start_mm", three_numbers(),
                                                        "start of a line contact inside a muscle"));
    n.end_mm = to_vec(r.required<std::vector<double>>("end_mm", three_numbers(),
                                                      "end of a line contact inside a muscle"));
    n.n_points =
        r.optional<std::int64_t>("n_points", 5, int_in_range(2, 10000),
                                 "points sampling a line contact; they share the current equally");
    if ((n.end_mm - n.start_mm).norm() <= 0.0)
      r.fail("end_mm", "equals start_mm: expected a line of non-zero length");
  }
  return n;
}

/// `electrodes.placed`: written by leadfield into resolved_config.json; read (so that the file
/// reads back) and ignored.
void read_placed(ConfigReader& section) {
  for (auto& r : section.required_array("placed")) {
    (void)r.optional<std::string>("group", "", {}, "output only: the grid or needle");
    (void)r.optional<std::string>("muscle", "", {}, "output only: the muscle asked for");
    (void)r.optional<std::string>("tissue", "", {}, "output only: the tissue it matched");
    (void)r.optional<std::vector<double>>(
        "centre_mm", {}, {}, "output only: grid centre on the skin or needle contact (LPS)");
    (void)r.optional<std::vector<double>>("skin_point_mm", {}, {},
                                          "output only: the skin point over the muscle (LPS)");
    (void)r.optional<std::vector<double>>("fibre_direction", {}, {},
                                          "output only: the muscle's mean fibre direction");
    (void)r.optional<double>("rotation_deg", 0.0, {},
                             "output only: grid rows from the limb axis about the normal");
  }
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Configuration

ElectrodeConfig read_electrode_config(ConfigReader& section) {
  ElectrodeConfig config;
  UniqueNames names;
  if (section.has("grids")) {
    auto grids = section.required_array("grids");
    for (std::size_t i = 0; i < grids.size(); ++i)
      config.grids.push_back(read_grid(grids[i], i, names));
  }
  if (section.has("needles"))
    for (auto& r : section.required_array("needles"))
      config.needles.push_back(read_needle(r, names));
  if (config.grids.empty() && config.needles.empty()) {
    GridSpec g;
    g.wrap = true;
    g.even_columns = true;
    config.grids.push_back(g);
  }
  if (section.has("limb_axis")) {
    const auto a = to_vec(section.required<std::vector<double>>(
        "limb_axis", three_numbers(),
        "direction of the limb axis (rows of grids, wrapped columns around it); default: the "
        "principal axis of the mesh nodes"));
    if (!(a.norm() > 0.0))
      section.fail("limb_axis", "is a zero vector: expected a direction");
    config.limb_axis = a.normalized();
  }
  if (section.has("placed"))
    read_placed(section);
  config.reference = section.optional<std::string>(
      "reference", "average", {},
      "recording reference: average (common average) or the name of an electrode");
  if (config.reference.empty())
    section.fail("reference", "must be \"average\" or the name of an electrode");
  return config;
}

nlohmann::json to_json(const ElectrodeConfig& config) {
  nlohmann::json j;
  j["grids"] = nlohmann::json::array();
  for (const auto& g : config.grids) {
    nlohmann::json x = {{"name", g.name},
                        {"rows", g.rows},
                        {"columns", g.columns},
                        {"ied_mm", g.ied_mm},
                        {"rotation_deg", g.rotation_deg},
                        {"wrap", g.wrap}};
    if (g.wrap)
      x["column_spacing"] = g.even_columns ? "even" : "ied";
    if (g.shape == PadShape::circle) {
      x["shape"] = "circle";
      x["radius_mm"] = g.radius_mm;
    } else {
      x["shape"] = "square";
      x["side_mm"] = g.side_mm;
    }
    if (!g.muscle.empty()) {
      x["muscle"] = g.muscle;
      x["offset_mm"] = {g.offset_mm[0], g.offset_mm[1]};
    } else if (g.centre_mm) {
      x["centre_mm"] = {g.centre_mm->x(), g.centre_mm->y(), g.centre_mm->z()};
    } else {
      if (g.axial_position_mm)
        x["axial_position_mm"] = *g.axial_position_mm;
      else
        x["axial_fraction"] = g.axial_fraction;
      x["angle_deg"] = g.angle_deg;
    }
    j["grids"].push_back(x);
  }
  j["needles"] = nlohmann::json::array();
  for (const auto& n : config.needles) {
    nlohmann::json x = {{"name", n.name}};
    if (!n.muscle.empty()) {
      x["muscle"] = n.muscle;
      x["depth_mm"] = n.depth_mm;
    } else if (n.position_mm) {
      x["position_mm"] = {n.position_mm->x(), n.position_mm->y(), n.position_mm->z()};
    } else {
      x["start_mm"] = {n.start_mm.x(), n.start_mm.y(), n.start_mm.z()};
      x["end_mm"] = {n.end_mm.x(), n.end_mm.y(), n.end_mm.z()};
      x["n_points"] = n.n_points;
    }
    j["needles"].push_back(x);
  }
  if (config.limb_axis)
    j["limb_axis"] = {config.limb_axis->x(), config.limb_axis->y(), config.limb_axis->z()};
  j["reference"] = config.reference;
  return j;
}

// ---------------------------------------------------------------------------------------------
// Placement

LimbAxis limb_axis(const meshing::TetMesh& mesh, const std::optional<Eigen::Vector3d>& direction) {
  const Eigen::Index n = mesh.n_nodes();
  if (n < 4)
    throw BadInput("limb_axis: a mesh of " + std::to_string(n) + " nodes: expected at least 4");
  if (direction && !(direction->norm() > 0.0))
    throw BadInput("electrodes.limb_axis: a zero vector: expected a direction");
  Eigen::Vector3d mean = Eigen::Vector3d::Zero();
  for (Eigen::Index i = 0; i < n; ++i)
    mean += mesh.nodes_m.row(i).transpose();
  mean /= static_cast<double>(n);
  Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
  for (Eigen::Index i = 0; i < n; ++i) {
    const Eigen::Vector3d d = mesh.nodes_m.row(i).transpose() - mean;
    cov += d * d.transpose();
  }
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> eig(cov);
  Eigen::Vector3d a =
      direction ? Eigen::Vector3d(direction->normalized()) : eig.eigenvectors().col(2).normalized();
  Eigen::Index big = 0;
  a.cwiseAbs().maxCoeff(&big);
  if (a[big] < 0.0)
    a = -a;
  LimbAxis ax;
  ax.axis = a;
  ax.set_by_config = direction.has_value();
  Eigen::Index least = 0;
  a.cwiseAbs().minCoeff(&least);
  const Eigen::Vector3d w = Eigen::Vector3d::Unit(least);
  ax.e1 = (w - w.dot(a) * a).normalized();
  ax.e2 = a.cross(ax.e1);
  double lo = 0.0, hi = 0.0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double t = (mesh.nodes_m.row(i).transpose() - mean).dot(a);
    lo = i == 0 ? t : std::min(lo, t);
    hi = i == 0 ? t : std::max(hi, t);
  }
  ax.origin_m = mean + lo * a;
  ax.length_m = hi - lo;
  return ax;
}

ElectrodeLayout place_electrodes(const meshing::TetMesh& mesh, const anatomy::TissueTable& tissues,
                                 const ElectrodeConfig& config) {
  // 1. The limb axis, the outer surface, whether pads must sit on skin.
  ElectrodeLayout layout;
  layout.axis = limb_axis(mesh, config.limb_axis);
  const LimbAxis& ax = layout.axis;
  const Surface surface = make_surface(mesh, ax);
  Placer placer{mesh, tissues, ax, surface, false, {}};
  placer.has_skin = mesh_has_skin(mesh, tissues);

  // 2. The grids.
  for (std::size_t gi = 0; gi < config.grids.size(); ++gi)
    place_grid(placer, config.grids[gi], gi, layout);

  // 3. The needles.
  if (!config.needles.empty()) {
    const PointLocator locator(mesh);
    for (std::size_t ni = 0; ni < config.needles.size(); ++ni)
      layout.electrodes.push_back(place_needle(placer, locator, config.needles[ni], ni, layout));
  }

  // 4. The reference.
  layout.reference = config.reference;
  if (config.reference != "average")
    layout.reference_index = reference_index(layout.electrodes, config.reference);
  return layout;
}

Eigen::MatrixXd layout_currents(const meshing::TetMesh& mesh, const PointLocator& locator,
                                const ElectrodeLayout& layout, std::int64_t reference_node) {
  const std::int64_t n_nodes = mesh.n_nodes();
  if (reference_node < 0 || reference_node >= n_nodes)
    throw BadInput("layout_currents: reference node " + std::to_string(reference_node) +
                   ": expected 0 <= node < " + std::to_string(n_nodes));
  const auto n_el = static_cast<Eigen::Index>(layout.electrodes.size());
  Eigen::MatrixXd b = Eigen::MatrixXd::Zero(n_nodes, n_el);
#pragma omp parallel for schedule(dynamic)
  for (Eigen::Index e = 0; e < n_el; ++e) {
    const PlacedElectrode& el = layout.electrodes[static_cast<std::size_t>(e)];
    if (el.kind == ElectrodeKind::pad) {
      try {
        b.col(e) = pad_current_rhs(mesh.nodes_m, el.pad_faces, 1.0);
      } catch (const std::exception&) {
        b.col(e).setZero(); // reported below
      }
    } else {
      const PointLocations loc = locator.locate(el.contact_points_m);
      const double share = 1.0 / static_cast<double>(loc.size());
      for (Eigen::Index k = 0; k < loc.size(); ++k)
        if (loc.tet[static_cast<std::size_t>(k)] >= 0)
          b.col(e) += point_current_rhs(n_nodes, loc, k, share);
    }
  }
  // Errors are checked serially (exceptions may not leave an OpenMP region).
  for (Eigen::Index e = 0; e < n_el; ++e)
    if (std::abs(b.col(e).sum() - 1.0) > 1e-9)
      throw BadInput("electrode " + layout.electrodes[static_cast<std::size_t>(e)].name +
                     ": its current does not enter the mesh (a contact outside the mesh or an "
                     "empty pad)");
  b.row(reference_node).setZero();
  return b;
}

Eigen::MatrixXd apply_reference(const Eigen::Ref<const Eigen::MatrixXd>& lead_fields_V_per_A,
                                const ElectrodeLayout& layout) {
  if (layout.reference_index < 0)
    return average_reference(lead_fields_V_per_A);
  return rereference_to_electrode(lead_fields_V_per_A, layout.reference_index);
}

nlohmann::json placements_json(const ElectrodeLayout& layout) {
  const auto mm3 = [](const Eigen::Vector3d& v) {
    return nlohmann::json{std::round(v.x() * 1e6) / 1e3, std::round(v.y() * 1e6) / 1e3,
                          std::round(v.z() * 1e6) / 1e3};
  };
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : layout.placements)
    list.push_back(
        {{"group", p.group},
         {"muscle", p.muscle},
         {"tissue", p.tissue},
         {"centre_mm", mm3(p.centre_m)},
         {"skin_point_mm", mm3(p.skin_point_m)},
         {"fibre_direction", {p.fibre_direction.x(), p.fibre_direction.y(), p.fibre_direction.z()}},
         {"rotation_deg", p.rotation_deg}});
  return list;
}

nlohmann::json to_json(const ElectrodeLayout& layout) {
  const auto vec = [](const Eigen::Vector3d& v) { return nlohmann::json{v.x(), v.y(), v.z()}; };
  nlohmann::json j;
  j["limb_axis"] = {{"origin_m", vec(layout.axis.origin_m)},
                    {"direction", vec(layout.axis.axis)},
                    {"angle_zero", vec(layout.axis.e1)},
                    {"angle_90_deg", vec(layout.axis.e2)},
                    {"length_m", layout.axis.length_m},
                    {"set_by", layout.axis.set_by_config ? "electrodes.limb_axis"
                                                         : "principal axis of the mesh nodes"}};
  j["placed"] = placements_json(layout);
  j["reference"] = layout.reference;
  j["reference_index"] = layout.reference_index;
  j["grid_circumference_m"] = layout.grid_circumference_m;
  j["n_electrodes"] = layout.electrodes.size();
  auto& list = j["electrodes"] = nlohmann::json::array();
  for (std::size_t k = 0; k < layout.electrodes.size(); ++k) {
    const auto& e = layout.electrodes[k];
    nlohmann::json x = {{"index", k},
                        {"name", e.name},
                        {"group", e.group},
                        {"kind", e.kind == ElectrodeKind::pad     ? "pad"
                                 : e.kind == ElectrodeKind::point ? "point"
                                                                  : "line"},
                        {"row", e.row},
                        {"column", e.column},
                        {"position_m", vec(e.position_m)},
                        {"axial_m", e.axial_m},
                        {"angle_deg", e.angle_deg}};
    if (e.kind == ElectrodeKind::pad) {
      x["normal"] = vec(e.normal);
      x["area_m2"] = e.area_m2;
      x["nominal_area_m2"] = e.nominal_area_m2;
      x["area_ratio"] = e.nominal_area_m2 > 0.0 ? e.area_m2 / e.nominal_area_m2 : 0.0;
      x["n_faces"] = e.pad_faces.rows();
    } else {
      nlohmann::json pts = nlohmann::json::array();
      for (Eigen::Index p = 0; p < e.contact_points_m.rows(); ++p)
        pts.push_back(vec(e.contact_points_m.row(p).transpose()));
      x["contact_points_m"] = pts;
    }
    list.push_back(x);
  }
  return j;
}

void write_electrodes_vtp(const std::filesystem::path& path, const meshing::TetMesh& mesh,
                          const ElectrodeLayout& layout) {
  Eigen::Index n_tri = 0;
  for (const auto& e : layout.electrodes)
    n_tri += e.kind == ElectrodeKind::pad ? e.pad_faces.rows() : e.contact_points_m.rows();
  Eigen::MatrixX3d vertices(3 * n_tri, 3);
  Eigen::MatrixX3i triangles(n_tri, 3);
  Eigen::VectorXd index(n_tri);
  Eigen::Index t = 0;
  for (std::size_t k = 0; k < layout.electrodes.size(); ++k) {
    const auto& e = layout.electrodes[k];
    const auto add = [&](const Eigen::Vector3d& a, const Eigen::Vector3d& b,
                         const Eigen::Vector3d& c) {
      vertices.row(3 * t) = a.transpose();
      vertices.row(3 * t + 1) = b.transpose();
      vertices.row(3 * t + 2) = c.transpose();
      triangles.row(t) << static_cast<int>(3 * t), static_cast<int>(3 * t + 1),
          static_cast<int>(3 * t + 2);
      index[t] = static_cast<double>(k);
      ++t;
    };
    if (e.kind == ElectrodeKind::pad) {
      for (Eigen::Index f = 0; f < e.pad_faces.rows(); ++f)
        add(mesh.nodes_m.row(e.pad_faces(f, 0)).transpose(),
            mesh.nodes_m.row(e.pad_faces(f, 1)).transpose(),
            mesh.nodes_m.row(e.pad_faces(f, 2)).transpose());
    } else {
      const double h = 0.3e-3; // a 0.3 mm marker triangle per contact point
      for (Eigen::Index p = 0; p < e.contact_points_m.rows(); ++p) {
        const Eigen::Vector3d c = e.contact_points_m.row(p).transpose();
        add(c + h * layout.axis.e1, c + h * layout.axis.e2, c - h * layout.axis.e1);
      }
    }
  }
  anatomy::write_surface_vtp(path, vertices, triangles, {{"electrode", index}});
}

std::uint64_t hash_layout(const ElectrodeLayout& layout, std::uint64_t hash) {
  const auto n = static_cast<std::int64_t>(layout.electrodes.size());
  hash = fnv1a64(&n, sizeof n, hash);
  for (const auto& e : layout.electrodes) {
    hash = fnv1a64(e.name.data(), e.name.size() + 1, hash);
    const auto kind = static_cast<std::int32_t>(e.kind);
    hash = fnv1a64(&kind, sizeof kind, hash);
    const meshing::TriArray& f = e.pad_faces;
    hash = fnv1a64(f.data(), sizeof(std::int32_t) * static_cast<std::size_t>(f.size()), hash);
    const Eigen::MatrixX3d& c = e.contact_points_m;
    hash = fnv1a64(c.data(), sizeof(double) * static_cast<std::size_t>(c.size()), hash);
  }
  hash = fnv1a64(layout.reference.data(), layout.reference.size() + 1, hash);
  return hash;
}

} // namespace myotwin::forward
