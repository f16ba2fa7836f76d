#include "myotwin/anatomy/surface_import.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <Eigen/Eigenvalues>
#include <Eigen/Geometry>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"

namespace myotwin::anatomy {

namespace {

constexpr double mm = 1e-3;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string format_mm(const Eigen::Vector3d& p_m) {
  std::ostringstream s;
  s.precision(6);
  s << "(" << p_m.x() / mm << ", " << p_m.y() / mm << ", " << p_m.z() / mm << ") mm";
  return s.str();
}

std::string read_binary_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw IoError(path.string() + ": file not found");
  if (std::filesystem::is_directory(path, ec))
    throw IoError(path.string() + ": is a folder, expected an STL file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw IoError(path.string() + ": cannot open for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad())
    throw IoError(path.string() + ": read error");
  return bytes;
}

std::uint32_t read_u32_le(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint32_t>(b[0]) | (static_cast<std::uint32_t>(b[1]) << 8) |
         (static_cast<std::uint32_t>(b[2]) << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
}

float read_f32_le(const char* p) {
  return std::bit_cast<float>(read_u32_le(p));
}

void put_u32_le(std::string& out, std::uint32_t v) {
  for (int b = 0; b < 4; ++b)
    out.push_back(static_cast<char>((v >> (8 * b)) & 0xffu));
}

/// Raw (unwelded) triangle soup: 3 rows per triangle [mm].
using Soup = std::vector<Eigen::Vector3d>;

Soup parse_binary(const std::string& bytes, std::size_t n, const std::string& name) {
  Soup soup;
  soup.reserve(3 * n);
  for (std::size_t t = 0; t < n; ++t) {
    const char* rec = bytes.data() + 84 + 50 * t;
    for (int v = 0; v < 3; ++v) {
      const char* p = rec + 12 + 12 * v;
      const Eigen::Vector3d x(read_f32_le(p), read_f32_le(p + 4), read_f32_le(p + 8));
      if (!x.allFinite())
        throw BadInput(name + ": triangle " + std::to_string(t) +
                       " has a non-finite coordinate; expected finite coordinates in mm");
      soup.push_back(x);
    }
  }
  return soup;
}

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> tokens;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i])))
      ++i;
    std::size_t j = i;
    while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j])))
      ++j;
    if (j > i)
      tokens.push_back(line.substr(i, j - i));
    i = j;
  }
  return tokens;
}

Soup parse_ascii(const std::string& text, const std::string& name) {
  Soup soup;
  bool in_facet = false;
  int n_vertices = 0;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  auto fail = [&](const std::string& what) -> BadInput {
    return BadInput(name + ": line " + std::to_string(line_no) + ": " + what +
                    " (ASCII STL: solid / facet normal / outer loop / 3 x vertex x y z / "
                    "endloop / endfacet / endsolid)");
  };
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos)
      end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    const auto tokens = split_ws(line);
    if (tokens.empty())
      continue;
    const std::string key = lower(std::string(tokens[0]));
    if (key == "solid" || key == "endsolid") {
      if (in_facet)
        throw fail("'" + key + "' inside a facet");
    } else if (key == "facet") {
      if (in_facet)
        throw fail("'facet' before 'endfacet'");
      in_facet = true;
      n_vertices = 0;
    } else if (key == "outer" || key == "endloop") {
      if (!in_facet)
        throw fail("'" + key + "' outside a facet");
    } else if (key == "vertex") {
      if (!in_facet)
        throw fail("'vertex' outside a facet");
      if (n_vertices == 3)
        throw fail("more than 3 vertices in a facet");
      if (tokens.size() != 4)
        throw fail("expected 'vertex x y z', found '" + std::string(line) + "'");
      Eigen::Vector3d x;
      for (int d = 0; d < 3; ++d) {
        const auto tok = tokens[static_cast<std::size_t>(d) + 1];
        double value = 0.0;
        const auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), value);
        if (ec != std::errc() || ptr != tok.data() + tok.size() || !std::isfinite(value))
          throw fail("coordinate '" + std::string(tok) + "' is not a finite number");
        x[d] = value;
      }
      soup.push_back(x);
      ++n_vertices;
    } else if (key == "endfacet") {
      if (!in_facet)
        throw fail("'endfacet' outside a facet");
      if (n_vertices != 3)
        throw fail("facet with " + std::to_string(n_vertices) + " vertices; expected 3");
      in_facet = false;
    } else {
      throw fail("unexpected '" + std::string(tokens[0]) + "'");
    }
  }
  if (in_facet)
    throw fail("file ends inside a facet");
  return soup;
}

struct CellKey {
  std::int64_t x, y, z;
  bool operator==(const CellKey&) const = default;
};
struct CellHash {
  std::size_t operator()(const CellKey& k) const {
    std::uint64_t h = static_cast<std::uint64_t>(k.x) * 0x9E3779B97F4A7C15ull;
    h ^= static_cast<std::uint64_t>(k.y) + 0x7F4A7C159E3779B9ull + (h << 6) + (h >> 2);
    h ^= static_cast<std::uint64_t>(k.z) + 0x94D049BB133111EBull + (h << 6) + (h >> 2);
    return static_cast<std::size_t>(h);
  }
};

/// Welds a soup [mm] into a surface [m]; drops triangles that collapse.
TriangleSurface weld(const Soup& soup, const std::string& name) {
  Eigen::Vector3d lo = Eigen::Vector3d::Constant(std::numeric_limits<double>::infinity());
  Eigen::Vector3d hi = -lo;
  for (const auto& x : soup) {
    lo = lo.cwiseMin(x);
    hi = hi.cwiseMax(x);
  }
  const double diagonal = (hi - lo).norm();
  const double tol = 1e-6 * diagonal;
  const double cell = tol > 0.0 ? tol : 1.0;
  std::unordered_map<CellKey, std::vector<int>, CellHash> grid;
  std::vector<Eigen::Vector3d> unique;
  std::vector<int> index(soup.size());
  for (std::size_t v = 0; v < soup.size(); ++v) {
    const Eigen::Vector3d& x = soup[v];
    const CellKey key{static_cast<std::int64_t>(std::floor((x.x() - lo.x()) / cell)),
                      static_cast<std::int64_t>(std::floor((x.y() - lo.y()) / cell)),
                      static_cast<std::int64_t>(std::floor((x.z() - lo.z()) / cell))};
    int found = -1;
    for (std::int64_t dz = -1; dz <= 1 && found < 0; ++dz)
      for (std::int64_t dy = -1; dy <= 1 && found < 0; ++dy)
        for (std::int64_t dx = -1; dx <= 1 && found < 0; ++dx) {
          const auto it = grid.find({key.x + dx, key.y + dy, key.z + dz});
          if (it == grid.end())
            continue;
          for (int u : it->second)
            if ((unique[static_cast<std::size_t>(u)] - x).norm() <= tol) {
              found = u;
              break;
            }
        }
    if (found < 0) {
      found = static_cast<int>(unique.size());
      unique.push_back(x);
      grid[key].push_back(found);
    }
    index[v] = found;
  }
  std::vector<Eigen::Vector3i> triangles;
  triangles.reserve(soup.size() / 3);
  for (std::size_t t = 0; t + 2 < soup.size(); t += 3) {
    const Eigen::Vector3i tri(index[t], index[t + 1], index[t + 2]);
    if (tri[0] == tri[1] || tri[1] == tri[2] || tri[0] == tri[2])
      continue;
    triangles.push_back(tri);
  }
  if (triangles.empty())
    throw BadInput(name + ": no non-degenerate triangle (" + std::to_string(soup.size() / 3) +
                   " triangles read); expected a closed triangulated surface");
  TriangleSurface s;
  s.vertices_m.resize(static_cast<Eigen::Index>(unique.size()), 3);
  for (std::size_t v = 0; v < unique.size(); ++v)
    s.vertices_m.row(static_cast<Eigen::Index>(v)) = unique[v].transpose() * mm;
  s.triangles.resize(static_cast<Eigen::Index>(triangles.size()), 3);
  for (std::size_t t = 0; t < triangles.size(); ++t)
    s.triangles.row(static_cast<Eigen::Index>(t)) = triangles[t].transpose();
  return s;
}

/// Watertight point-in-triangle test in the (x, y) projection. The edge function of each edge
/// is computed from its endpoints in a canonical (lexicographic) order, so two triangles that
/// share an edge see exactly opposite values; points on an edge belong to the triangle for
/// which it is a "top-left" edge (as in rasterisers), so such a point is counted once.
struct Point2 {
  double x, y;
};
bool less2(const Point2& a, const Point2& b) {
  return a.x < b.x || (a.x == b.x && a.y < b.y);
}
double edge_function(const Point2& u, const Point2& v, const Point2& p) {
  if (less2(u, v))
    return (v.x - u.x) * (p.y - u.y) - (v.y - u.y) * (p.x - u.x);
  return -((u.x - v.x) * (p.y - v.y) - (u.y - v.y) * (p.x - v.x));
}
bool top_left(const Point2& u, const Point2& v) {
  const double dx = v.x - u.x;
  const double dy = v.y - u.y;
  return dy < 0.0 || (dy == 0.0 && dx > 0.0);
}
bool covers(const Point2& u, const Point2& v, const Point2& p) {
  const double e = edge_function(u, v, p);
  return e > 0.0 || (e == 0.0 && top_left(u, v));
}

/// A triangle prepared for k-direction rays: counter-clockwise projection, a vertex and the
/// (unnormalised) normal for the crossing height.
struct RayTriangle {
  Point2 a, b, c;
  Eigen::Vector3d p0;
  Eigen::Vector3d normal;
  /// True when the ray through (p.x, p.y) crosses the triangle; `z` is the crossing height.
  bool crossing(const Point2& p, double& z) const {
    if (!covers(a, b, p) || !covers(b, c, p) || !covers(c, a, p))
      return false;
    z = p0.z() - (normal.x() * (p.x - p0.x()) + normal.y() * (p.y - p0.y())) / normal.z();
    return true;
  }
};

/// Squared distance from `p` to triangle (a, b, c) (Ericson, Real-Time Collision Detection,
/// 5.1.5: closest point by Voronoi regions).
double point_triangle_distance2(const Eigen::Vector3d& p, const Eigen::Vector3d& a,
                                const Eigen::Vector3d& b, const Eigen::Vector3d& c) {
  const Eigen::Vector3d ab = b - a, ac = c - a, ap = p - a;
  const double d1 = ab.dot(ap), d2 = ac.dot(ap);
  if (d1 <= 0.0 && d2 <= 0.0)
    return ap.squaredNorm();
  const Eigen::Vector3d bp = p - b;
  const double d3 = ab.dot(bp), d4 = ac.dot(bp);
  if (d3 >= 0.0 && d4 <= d3)
    return bp.squaredNorm();
  const double vc = d1 * d4 - d3 * d2;
  if (vc <= 0.0 && d1 >= 0.0 && d3 <= 0.0)
    return (ap - (d1 / (d1 - d3)) * ab).squaredNorm();
  const Eigen::Vector3d cp = p - c;
  const double d5 = ab.dot(cp), d6 = ac.dot(cp);
  if (d6 >= 0.0 && d5 <= d6)
    return cp.squaredNorm();
  const double vb = d5 * d2 - d1 * d6;
  if (vb <= 0.0 && d2 >= 0.0 && d6 <= 0.0)
    return (ap - (d2 / (d2 - d6)) * ac).squaredNorm();
  const double va = d3 * d6 - d5 * d4;
  if (va <= 0.0 && (d4 - d3) >= 0.0 && (d5 - d6) >= 0.0)
    return (bp - ((d4 - d3) / ((d4 - d3) + (d5 - d6))) * (c - b)).squaredNorm();
  const double denom = 1.0 / (va + vb + vc);
  const double v = vb * denom, w = vc * denom;
  return (ap - ab * v - ac * w).squaredNorm();
}

/// Squared distance [m^2] from each non-muscle voxel centre to the surface, for voxels within
/// `limit_m` of it (+infinity elsewhere and for muscle voxels): every triangle updates the
/// voxels within `limit_m` of its plane and of its bounding sphere grown by `limit_m`. Threads
/// own slabs of k planes, so the result does not depend on the thread count.
std::vector<float> surface_distance2_band(const TriangleSurface& surface, const LabelVolume& vol,
                                          const std::vector<std::uint8_t>& muscle, double limit_m) {
  std::vector<float> d2(muscle.size(), std::numeric_limits<float>::infinity());
  const double h = vol.spacing_m.x();
  const std::int64_t nx = vol.size[0], ny = vol.size[1], nz = vol.size[2];
  const double limit2 = limit_m * limit_m;
  struct Tri {
    Eigen::Vector3d a, b, c, unit_normal, centre;
    double reach2; // (bounding-sphere radius + limit)^2
  };
  std::vector<Tri> tris;
  tris.reserve(static_cast<std::size_t>(surface.triangles.rows()));
  for (Eigen::Index t = 0; t < surface.triangles.rows(); ++t) {
    Tri tri;
    tri.a = surface.vertices_m.row(surface.triangles(t, 0)).transpose();
    tri.b = surface.vertices_m.row(surface.triangles(t, 1)).transpose();
    tri.c = surface.vertices_m.row(surface.triangles(t, 2)).transpose();
    const Eigen::Vector3d n = (tri.b - tri.a).cross(tri.c - tri.a);
    tri.unit_normal = n.norm() > 0.0 ? Eigen::Vector3d(n.normalized()) : Eigen::Vector3d::Zero();
    tri.centre = (tri.a + tri.b + tri.c) / 3.0;
    const double radius =
        std::sqrt(std::max({(tri.a - tri.centre).squaredNorm(), (tri.b - tri.centre).squaredNorm(),
                            (tri.c - tri.centre).squaredNorm()}));
    tri.reach2 = (radius + limit_m) * (radius + limit_m);
    tris.push_back(tri);
  }
  // Index range [lo, hi] of grid coordinates within `half` of `centre` along axis d.
  auto range = [&](int d, double centre, double half) {
    const std::int64_t n_d = vol.size[static_cast<std::size_t>(d)];
    const double o = vol.origin_m[d];
    return std::pair<std::int64_t, std::int64_t>{
        std::max<std::int64_t>(0, static_cast<std::int64_t>(std::ceil((centre - half - o) / h))),
        std::min<std::int64_t>(n_d - 1,
                               static_cast<std::int64_t>(std::floor((centre + half - o) / h)))};
  };
#pragma omp parallel
  {
#ifdef _OPENMP
    const std::int64_t n_threads = omp_get_num_threads();
    const std::int64_t thread = omp_get_thread_num();
#else
    const std::int64_t n_threads = 1;
    const std::int64_t thread = 0;
#endif
    const std::int64_t k_begin = nz * thread / n_threads;
    const std::int64_t k_end = nz * (thread + 1) / n_threads;
    for (const Tri& tri : tris) {
      // Voxels within the triangle's bounding sphere grown by the limit, and within the limit
      // of its plane.
      const double reach = std::sqrt(tri.reach2);
      auto [k0, k1] = range(2, tri.centre.z(), reach);
      k0 = std::max(k0, k_begin);
      k1 = std::min(k1, k_end - 1);
      for (std::int64_t k = k0; k <= k1; ++k) {
        const double z = vol.origin_m.z() + h * static_cast<double>(k);
        const double rz2 = (z - tri.centre.z()) * (z - tri.centre.z());
        const auto [j0, j1] = range(1, tri.centre.y(), std::sqrt(tri.reach2 - rz2));
        for (std::int64_t j = j0; j <= j1; ++j) {
          const double y = vol.origin_m.y() + h * static_cast<double>(j);
          const double r2 = rz2 + (y - tri.centre.y()) * (y - tri.centre.y());
          if (r2 > tri.reach2)
            continue;
          auto [i0, i1] = range(0, tri.centre.x(), std::sqrt(tri.reach2 - r2));
          // Plane distance at i: c0 + cx * i; keep |.| <= limit.
          const double c0 = tri.unit_normal.dot(Eigen::Vector3d(vol.origin_m.x(), y, z) - tri.a);
          const double cx = tri.unit_normal.x() * h;
          if (std::abs(cx) > 1e-300) {
            double u0 = (-limit_m - c0) / cx, u1 = (limit_m - c0) / cx;
            if (u0 > u1)
              std::swap(u0, u1);
            i0 = std::max(i0, static_cast<std::int64_t>(std::ceil(u0)) - 1);
            i1 = std::min(i1, static_cast<std::int64_t>(std::floor(u1)) + 1);
          } else if (std::abs(c0) > limit_m) {
            continue;
          }
          const std::size_t row = static_cast<std::size_t>(nx * (j + ny * k));
          for (std::int64_t i = i0; i <= i1; ++i) {
            const std::size_t idx = row + static_cast<std::size_t>(i);
            if (muscle[idx] != 0)
              continue;
            const double plane = c0 + cx * static_cast<double>(i);
            if (plane * plane > limit2 || plane * plane >= static_cast<double>(d2[idx]))
              continue;
            const Eigen::Vector3d p(vol.origin_m.x() + h * static_cast<double>(i), y, z);
            const double dd = point_triangle_distance2(p, tri.a, tri.b, tri.c);
            if (dd <= limit2 && dd < static_cast<double>(d2[idx]))
              d2[idx] = static_cast<float>(dd);
          }
        }
      }
    }
  }
  return d2;
}

void check_params(const SurfaceImportParams& p, const std::string& name) {
  auto bad = [&](const std::string& key, double value_m, const std::string& expected) {
    std::ostringstream s;
    s << name << ": " << key << " = " << value_m / mm << ": " << expected;
    throw BadInput(s.str());
  };
  if (!(p.voxel_size_m > 0.0) || !std::isfinite(p.voxel_size_m))
    bad("voxel_size_mm", p.voxel_size_m, "must be > 0");
  if (!(p.fat_thickness_m >= 0.0) || !std::isfinite(p.fat_thickness_m))
    bad("fat_thickness_mm", p.fat_thickness_m, "must be >= 0");
  if (!(p.skin_thickness_m >= 0.0) || !std::isfinite(p.skin_thickness_m))
    bad("skin_thickness_mm", p.skin_thickness_m, "must be >= 0");
  if (!(p.margin_m >= 0.0) || !std::isfinite(p.margin_m))
    bad("margin_mm", p.margin_m, "must be >= 0");
  if (!(p.tendon_start_m >= 0.0) || !std::isfinite(p.tendon_start_m))
    bad("tendon_start_mm", p.tendon_start_m, "must be >= 0");
  if (!(p.tendon_end_m >= 0.0) || !std::isfinite(p.tendon_end_m))
    bad("tendon_end_mm", p.tendon_end_m, "must be >= 0");
  if (!(p.tendon_start_fraction >= 0.0 && p.tendon_start_fraction < 1.0))
    throw BadInput(name + ": tendon_start_fraction = " + format_number(p.tendon_start_fraction) +
                   ": must be in [0, 1)");
  if (!(p.tendon_end_fraction >= 0.0 && p.tendon_end_fraction < 1.0))
    throw BadInput(name + ": tendon_end_fraction = " + format_number(p.tendon_end_fraction) +
                   ": must be in [0, 1)");
  if (p.muscle_name.empty())
    throw BadInput(name + ": muscle_name is empty: expected a muscle name such as \"biceps\"");
  if (p.muscle_name == "skin" || p.muscle_name == "fat")
    throw BadInput(name + ": muscle_name = \"" + p.muscle_name +
                   "\": must differ from the shell names \"skin\" and \"fat\"");
  if (p.muscle_label <= 0 || p.fat_label <= 0 || p.skin_label <= 0 ||
      p.muscle_label == p.fat_label || p.muscle_label == p.skin_label ||
      p.fat_label == p.skin_label)
    throw BadInput(name + ": muscle, fat and skin labels must be distinct and > 0");
}

/// The grid of the subject: isotropic voxels of voxel_size over the surface's bounding box
/// grown by the fat, skin and margin; labels all 0. \throws BadInput beyond 2^29 voxels.
LabelVolume surface_grid(const TriangleSurface& surface, const SurfaceImportParams& params,
                         const std::string& name) {
  const double h = params.voxel_size_m;
  const double pad = params.fat_thickness_m + params.skin_thickness_m + params.margin_m;
  const Eigen::Vector3d lo = surface.vertices_m.colwise().minCoeff().transpose();
  const Eigen::Vector3d hi = surface.vertices_m.colwise().maxCoeff().transpose();

  LabelVolume vol;
  vol.spacing_m = Eigen::Vector3d::Constant(h);
  vol.origin_m = lo - Eigen::Vector3d::Constant(pad);
  vol.direction = Eigen::Matrix3d::Identity();
  double n_total = 1.0;
  for (int d = 0; d < 3; ++d) {
    vol.size[static_cast<std::size_t>(d)] =
        static_cast<std::int64_t>(std::ceil((hi[d] - lo[d] + 2.0 * pad) / h)) + 1;
    n_total *= static_cast<double>(vol.size[static_cast<std::size_t>(d)]);
  }
  constexpr double max_voxels = static_cast<double>(std::int64_t{1} << 29);
  if (n_total > max_voxels) {
    std::ostringstream s;
    s << name << ": voxel_size_mm = " << h / mm << " needs " << vol.size[0] << " x " << vol.size[1]
      << " x " << vol.size[2] << " voxels; expected at most 2^29 (use larger voxels)";
    throw BadInput(s.str());
  }
  vol.labels.assign(static_cast<std::size_t>(vol.n_voxels()), 0);
  return vol;
}

/// The triangles of `surface` prepared for k-direction rays (those parallel to the rays left
/// out: their neighbours account for the crossing).
std::vector<RayTriangle> ray_triangles(const TriangleSurface& surface) {
  std::vector<RayTriangle> tris;
  tris.reserve(static_cast<std::size_t>(surface.triangles.rows()));
  for (Eigen::Index t = 0; t < surface.triangles.rows(); ++t) {
    const Eigen::Vector3d a = surface.vertices_m.row(surface.triangles(t, 0)).transpose();
    Eigen::Vector3d b = surface.vertices_m.row(surface.triangles(t, 1)).transpose();
    Eigen::Vector3d c = surface.vertices_m.row(surface.triangles(t, 2)).transpose();
    const Eigen::Vector3d normal = (b - a).cross(c - a);
    if (normal.z() == 0.0)
      continue; // parallel to the rays: its neighbours account for the crossing
    if (normal.z() < 0.0)
      std::swap(b, c); // counter-clockwise in the (x, y) projection
    tris.push_back({{a.x(), a.y()}, {b.x(), b.y()}, {c.x(), c.y()}, a, normal});
  }
  return tris;
}

/// Step 1: the heights of the crossings of the k-direction ray through the voxel centres of
/// each (i, j) column of `vol` (index i + nx j), in triangle order.
std::vector<std::vector<double>> column_crossings(const std::vector<RayTriangle>& tris,
                                                  const LabelVolume& vol) {
  const double h = vol.spacing_m.x();
  const std::int64_t nx = vol.size[0], ny = vol.size[1];
  std::vector<std::vector<double>> crossings(static_cast<std::size_t>(nx * ny));
  for (const RayTriangle& tri : tris) {
    const double x_lo = std::min({tri.a.x, tri.b.x, tri.c.x});
    const double x_hi = std::max({tri.a.x, tri.b.x, tri.c.x});
    const double y_lo = std::min({tri.a.y, tri.b.y, tri.c.y});
    const double y_hi = std::max({tri.a.y, tri.b.y, tri.c.y});
    const auto i0 = std::max<std::int64_t>(
        0, static_cast<std::int64_t>(std::floor((x_lo - vol.origin_m.x()) / h)));
    const auto i1 = std::min<std::int64_t>(
        nx - 1, static_cast<std::int64_t>(std::ceil((x_hi - vol.origin_m.x()) / h)));
    const auto j0 = std::max<std::int64_t>(
        0, static_cast<std::int64_t>(std::floor((y_lo - vol.origin_m.y()) / h)));
    const auto j1 = std::min<std::int64_t>(
        ny - 1, static_cast<std::int64_t>(std::ceil((y_hi - vol.origin_m.y()) / h)));
    for (std::int64_t j = j0; j <= j1; ++j)
      for (std::int64_t i = i0; i <= i1; ++i) {
        const Eigen::Vector3d centre =
            vol.physical_point(static_cast<double>(i), static_cast<double>(j), 0.0);
        double z = 0.0;
        if (tri.crossing({centre.x(), centre.y()}, z))
          crossings[static_cast<std::size_t>(i + nx * j)].push_back(z);
      }
  }
  return crossings;
}

/// Step 2: parity fill: labels `label` the centres with an odd number of crossings below them.
/// A column with an odd count (rounding at a vertex) is cast again, shifted by a tiny fraction
/// of a voxel; warns about columns still odd. Empties `crossings`.
void parity_fill(const std::vector<RayTriangle>& tris, std::vector<std::vector<double>>& crossings,
                 std::int32_t label, const std::string& name, LabelVolume& vol) {
  const double h = vol.spacing_m.x();
  const std::int64_t nx = vol.size[0], ny = vol.size[1], nz = vol.size[2];
  std::int64_t n_odd_columns = 0;
#pragma omp parallel for schedule(dynamic, 64) reduction(+ : n_odd_columns)
  for (std::int64_t col = 0; col < nx * ny; ++col) {
    auto& zs = crossings[static_cast<std::size_t>(col)];
    for (int attempt = 1; zs.size() % 2 != 0 && attempt <= 3; ++attempt) {
      const Eigen::Vector3d centre =
          vol.physical_point(static_cast<double>(col % nx), static_cast<double>(col / nx), 0.0);
      const Point2 p{centre.x() + h * 1.234567e-6 * attempt,
                     centre.y() + h * 0.7654321e-6 * attempt};
      zs.clear();
      for (const RayTriangle& tri : tris) {
        double z = 0.0;
        if (tri.crossing(p, z))
          zs.push_back(z);
      }
    }
    if (zs.empty())
      continue;
    if (zs.size() % 2 != 0) {
      ++n_odd_columns;
      zs.pop_back();
    }
    std::sort(zs.begin(), zs.end());
    for (std::size_t c = 0; c + 1 < zs.size(); c += 2) {
      // Centres with zs[c] < z_k <= zs[c + 1].
      const auto k0 = std::max<std::int64_t>(
          0, static_cast<std::int64_t>(std::floor((zs[c] - vol.origin_m.z()) / h)) + 1);
      const auto k1 = std::min<std::int64_t>(
          nz - 1, static_cast<std::int64_t>(std::floor((zs[c + 1] - vol.origin_m.z()) / h)));
      for (std::int64_t k = k0; k <= k1; ++k)
        vol.labels[static_cast<std::size_t>(col + nx * ny * k)] = label;
    }
    std::vector<double>().swap(zs);
  }
  if (n_odd_columns > 0)
    log_warning(name, ": ", n_odd_columns,
                " voxel columns cross the surface an odd number of times (rounding); their "
                "last crossing was ignored");
}

/// 1 for the voxels of `vol` labelled `label`, 0 elsewhere. \throws BadInput when there are
/// none (a surface thinner than a voxel).
std::vector<std::uint8_t> muscle_mask(const LabelVolume& vol, std::int32_t label,
                                      const std::string& name) {
  std::vector<std::uint8_t> muscle(vol.labels.size());
  std::int64_t n_muscle = 0;
  for (std::size_t v = 0; v < muscle.size(); ++v) {
    muscle[v] = vol.labels[v] == label ? 1 : 0;
    n_muscle += muscle[v];
  }
  if (n_muscle == 0) {
    std::ostringstream s;
    s << name
      << ": no voxel centre lies inside the surface at voxel_size_mm = " << vol.spacing_m.x() / mm
      << "; expected a surface thicker than a voxel";
    throw BadInput(s.str());
  }
  return muscle;
}

/// Step 3: fat and skin shells: labels the voxel centres outside the muscle within fat, resp.
/// fat + skin, thickness of the surface (exact distance to the triangles, in a narrow band).
void label_shells(const TriangleSurface& surface, const std::vector<std::uint8_t>& muscle,
                  const SurfaceImportParams& params, LabelVolume& vol) {
  if (!(params.fat_thickness_m > 0.0 || params.skin_thickness_m > 0.0))
    return;
  const double fat_limit = params.fat_thickness_m;
  const double skin_limit = params.fat_thickness_m + params.skin_thickness_m;
  const std::vector<float> d2 = surface_distance2_band(surface, vol, muscle, skin_limit);
  const double fat_limit2 = fat_limit * fat_limit;
  const double skin_limit2 = skin_limit * skin_limit;
  const bool has_fat = params.fat_thickness_m > 0.0;
  const bool has_skin = params.skin_thickness_m > 0.0;
#pragma omp parallel for schedule(static)
  for (std::int64_t v = 0; v < vol.n_voxels(); ++v) {
    const auto idx = static_cast<std::size_t>(v);
    if (muscle[idx] != 0)
      continue;
    const double dd = d2[idx];
    if (has_fat && dd <= fat_limit2)
      vol.labels[idx] = params.fat_label;
    else if (has_skin && dd <= skin_limit2)
      vol.labels[idx] = params.skin_label;
  }
}

/// The tissue table of the subject: skin and fat (when their thickness > 0) and the muscle,
/// with default conductivities.
TissueTable surface_tissues(const SurfaceImportParams& params) {
  TissueTable table;
  auto add = [&](std::int32_t label, const std::string& tissue_name, TissueClass cls) {
    const auto sigma = default_conductivity(cls).value();
    Tissue t;
    t.label = label;
    t.name = tissue_name;
    t.tissue_class = cls;
    t.sigma_l_S_per_m = sigma.first;
    t.sigma_t_S_per_m = sigma.second;
    table.tissues.push_back(t);
  };
  if (params.skin_thickness_m > 0.0)
    add(params.skin_label, "skin", TissueClass::skin);
  if (params.fat_thickness_m > 0.0)
    add(params.fat_label, "fat", TissueClass::fat);
  add(params.muscle_label, params.muscle_name, TissueClass::muscle);
  return table;
}

/// Relabels the muscle voxels within the tendon lengths of the two ends of the muscle's principal
/// axis (see the file comment) and adds the tendons to the table; records the axis, the length
/// and the tendon lengths in `subject`. \throws BadInput when the tendons leave no muscle.
void label_tendon_ends(const SurfaceImportParams& params, const std::string& name, LabelVolume& vol,
                       SurfaceSubject& subject) {
  std::vector<std::int64_t> voxels;
  Eigen::Vector3d sum = Eigen::Vector3d::Zero();
  std::vector<Eigen::Vector3d> points;
  for (std::int64_t k = 0; k < vol.size[2]; ++k)
    for (std::int64_t j = 0; j < vol.size[1]; ++j)
      for (std::int64_t i = 0; i < vol.size[0]; ++i)
        if (vol.at(i, j, k) == params.muscle_label) {
          voxels.push_back(vol.index(i, j, k));
          points.push_back(vol.physical_point(static_cast<double>(i), static_cast<double>(j),
                                              static_cast<double>(k)));
          sum += points.back();
        }
  if (points.empty())
    return;
  const Eigen::Vector3d centroid = sum / static_cast<double>(points.size());
  Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
  for (const auto& x : points)
    cov += (x - centroid) * (x - centroid).transpose();
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> eig(cov);
  Eigen::Vector3d axis = eig.eigenvectors().col(2).normalized();
  Eigen::Index imax = 0;
  axis.cwiseAbs().maxCoeff(&imax);
  if (axis[imax] < 0.0)
    axis = -axis;
  std::vector<double> s(points.size());
  for (std::size_t v = 0; v < points.size(); ++v)
    s[v] = (points[v] - centroid).dot(axis);
  const double s_min = *std::min_element(s.begin(), s.end());
  const double s_max = *std::max_element(s.begin(), s.end());
  const double h = params.voxel_size_m;
  const double length = s_max - s_min + h; // voxel extent along the axis, at most one voxel
  subject.axis = axis;
  subject.length_m = length;
  subject.tendon_start_m =
      params.tendon_start_m > 0.0 ? params.tendon_start_m : params.tendon_start_fraction * length;
  subject.tendon_end_m =
      params.tendon_end_m > 0.0 ? params.tendon_end_m : params.tendon_end_fraction * length;
  if (subject.tendon_start_m <= 0.0 && subject.tendon_end_m <= 0.0)
    return;
  const double start_limit = s_min - 0.5 * h + subject.tendon_start_m;
  const double end_limit = s_max + 0.5 * h - subject.tendon_end_m;
  if (start_limit >= end_limit - 2.0 * h)
    throw BadInput(name + ": tendons of " + format_number(subject.tendon_start_m / mm) +
                   " mm (start) and " + format_number(subject.tendon_end_m / mm) +
                   " mm (end) leave less than two voxels of muscle in a surface " +
                   format_number(length / mm) +
                   " mm long along its principal axis: expected shorter tendons");
  std::int64_t n_start = 0, n_end = 0;
  for (std::size_t v = 0; v < voxels.size(); ++v) {
    auto& label = vol.labels[static_cast<std::size_t>(voxels[v])];
    if (subject.tendon_start_m > 0.0 && s[v] < start_limit) {
      label = params.tendon_start_label;
      ++n_start;
    } else if (subject.tendon_end_m > 0.0 && s[v] > end_limit) {
      label = params.tendon_end_label;
      ++n_end;
    }
  }
  const auto add = [&](std::int32_t label, const std::string& suffix) {
    const auto sigma = default_conductivity(TissueClass::tendon).value();
    Tissue t;
    t.label = label;
    t.name = params.muscle_name + "_tendon_" + suffix;
    t.tissue_class = TissueClass::tendon;
    t.sigma_l_S_per_m = sigma.first;
    t.sigma_t_S_per_m = sigma.second;
    t.muscle = params.muscle_name;
    subject.tissues.tissues.push_back(t);
  };
  if (n_start > 0)
    add(params.tendon_start_label, "origin");
  if (n_end > 0)
    add(params.tendon_end_label, "insertion");
}

} // namespace

TriangleSurface read_stl(const std::filesystem::path& path) {
  const std::string name = path.string();
  if (lower(path.extension().string()) != ".stl")
    throw BadInput(name + ": extension '" + path.extension().string() +
                   "' is not supported; expected an STL surface (.stl)");
  const std::string bytes = read_binary_file(path);
  if (bytes.empty())
    throw BadInput(name + ": file is empty; expected an STL surface");
  Soup soup;
  const bool binary_size =
      bytes.size() >= 84 && bytes.size() == 84 + 50 * std::size_t{read_u32_le(bytes.data() + 80)};
  if (binary_size) {
    soup = parse_binary(bytes, read_u32_le(bytes.data() + 80), name);
  } else {
    const auto first = bytes.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || lower(bytes.substr(first, 5)) != "solid") {
      std::ostringstream s;
      s << name << ": not an STL file: " << bytes.size()
        << " bytes, which is not 84 + 50 n for the "
        << (bytes.size() >= 84 ? std::to_string(read_u32_le(bytes.data() + 80)) : "n")
        << " triangles of a binary header, and no ASCII 'solid' at the start";
      throw BadInput(s.str());
    }
    soup = parse_ascii(bytes, name);
  }
  if (soup.empty())
    throw BadInput(name + ": no triangles; expected a closed triangulated surface");
  return weld(soup, name);
}

void write_stl(const std::filesystem::path& path, const TriangleSurface& surface) {
  std::string out(80, '\0');
  const std::string header = "binary STL written by myotwin (mm)";
  std::copy(header.begin(), header.end(), out.begin());
  put_u32_le(out, static_cast<std::uint32_t>(surface.triangles.rows()));
  auto put_f = [&](double v) {
    put_u32_le(out, std::bit_cast<std::uint32_t>(static_cast<float>(v)));
  };
  for (Eigen::Index t = 0; t < surface.triangles.rows(); ++t) {
    const Eigen::Vector3d a = surface.vertices_m.row(surface.triangles(t, 0)).transpose() / mm;
    const Eigen::Vector3d b = surface.vertices_m.row(surface.triangles(t, 1)).transpose() / mm;
    const Eigen::Vector3d c = surface.vertices_m.row(surface.triangles(t, 2)).transpose() / mm;
    Eigen::Vector3d n = (b - a).cross(c - a);
    if (n.norm() > 0.0)
      n.normalize();
    for (const auto& x : {n, a, b, c})
      for (int d = 0; d < 3; ++d)
        put_f(x[d]);
    out.push_back('\0');
    out.push_back('\0');
  }
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream f(tmp, std::ios::binary);
    f.write(out.data(), static_cast<std::streamsize>(out.size()));
    f.close();
    if (!f)
      throw IoError(path.string() + ": cannot write");
  });
}

void check_closed_manifold(const TriangleSurface& surface, const std::string& name) {
  std::vector<std::pair<int, int>> edges;
  edges.reserve(static_cast<std::size_t>(3 * surface.triangles.rows()));
  for (Eigen::Index t = 0; t < surface.triangles.rows(); ++t)
    for (int e = 0; e < 3; ++e) {
      const int a = surface.triangles(t, e);
      const int b = surface.triangles(t, (e + 1) % 3);
      edges.emplace_back(std::min(a, b), std::max(a, b));
    }
  std::sort(edges.begin(), edges.end());
  std::int64_t n_boundary = 0;
  std::int64_t n_nonmanifold = 0;
  std::pair<int, int> example{-1, -1};
  for (std::size_t i = 0; i < edges.size();) {
    std::size_t j = i;
    while (j < edges.size() && edges[j] == edges[i])
      ++j;
    const std::size_t count = j - i;
    if (count != 2 && example.first < 0)
      example = edges[i];
    if (count == 1)
      ++n_boundary;
    else if (count > 2)
      ++n_nonmanifold;
    i = j;
  }
  if (n_boundary == 0 && n_nonmanifold == 0)
    return;
  const Eigen::Vector3d mid =
      0.5 *
      (surface.vertices_m.row(example.first) + surface.vertices_m.row(example.second)).transpose();
  std::ostringstream s;
  s << name << ": surface is not closed and manifold: " << n_boundary
    << " boundary edges (edges of only one triangle) and " << n_nonmanifold
    << " non-manifold edges (edges of more than two triangles), e.g. the edge at " << format_mm(mid)
    << "; expected a closed surface, every edge shared by exactly two triangles";
  throw BadInput(s.str());
}

double enclosed_volume_m3(const TriangleSurface& surface) {
  double six_v = 0.0;
  for (Eigen::Index t = 0; t < surface.triangles.rows(); ++t) {
    const Eigen::Vector3d a = surface.vertices_m.row(surface.triangles(t, 0)).transpose();
    const Eigen::Vector3d b = surface.vertices_m.row(surface.triangles(t, 1)).transpose();
    const Eigen::Vector3d c = surface.vertices_m.row(surface.triangles(t, 2)).transpose();
    six_v += a.dot(b.cross(c));
  }
  return std::abs(six_v) / 6.0;
}

SurfaceImportParams read_surface_import_params(ConfigReader& section) {
  SurfaceImportParams p;
  p.voxel_size_m = section.optional<double>(
                       "voxel_size_mm", p.voxel_size_m / mm, positive(),
                       "isotropic voxel size of the label volume built around the surface") *
                   mm;
  p.fat_thickness_m =
      section.optional<double>("fat_thickness_mm", p.fat_thickness_m / mm, non_negative(),
                               "thickness of the fat shell around the muscle; 0: no fat") *
      mm;
  p.skin_thickness_m =
      section.optional<double>("skin_thickness_mm", p.skin_thickness_m / mm, non_negative(),
                               "thickness of the skin shell around the fat; 0: no skin") *
      mm;
  p.margin_m = section.optional<double>("margin_mm", p.margin_m / mm, non_negative(),
                                        "background around the skin on every side of the volume") *
               mm;
  const auto tendon_mm = [&](const char* key, const char* end) {
    return section.optional<double>(key, 0.0, in_range(0.0, 1.0e4),
                                    std::string("length of the tendon at the ") + end +
                                        " of the surface's principal axis; 0: none") *
           mm;
  };
  const auto tendon_fraction = [&](const char* key, const char* end) {
    return section.optional<double>(key, 0.0, in_range(0.0, 0.9),
                                    std::string("tendon at the ") + end +
                                        " of the principal axis as a fraction of the surface's "
                                        "length (instead of the length in mm); 0: none");
  };
  p.tendon_start_m = tendon_mm("tendon_start_mm", "start (lower projection)");
  p.tendon_end_m = tendon_mm("tendon_end_mm", "end (higher projection)");
  p.tendon_start_fraction = tendon_fraction("tendon_start_fraction", "start");
  p.tendon_end_fraction = tendon_fraction("tendon_end_fraction", "end");
  if (p.tendon_start_m > 0.0 && p.tendon_start_fraction > 0.0)
    section.fail("tendon_start_fraction",
                 "give tendon_start_mm or tendon_start_fraction, not both");
  if (p.tendon_end_m > 0.0 && p.tendon_end_fraction > 0.0)
    section.fail("tendon_end_fraction", "give tendon_end_mm or tendon_end_fraction, not both");
  p.muscle_name = section.optional<std::string>(
      "muscle_name", p.muscle_name,
      Check<std::string>(
          [](const std::string& v) -> std::optional<std::string> {
            if (v.empty())
              return "must not be empty";
            if (v == "skin" || v == "fat")
              return "must differ from the shell names \"skin\" and \"fat\"";
            return std::nullopt;
          },
          "not empty, not \"skin\" or \"fat\""),
      "name of the imported muscle in the tissue table");
  return p;
}

SurfaceSubject voxelise_surface(const TriangleSurface& surface, const SurfaceImportParams& params,
                                const std::string& name) {
  check_params(params, name);
  if (surface.triangles.rows() == 0 || surface.vertices_m.rows() == 0)
    throw BadInput(name + ": surface has no triangles");
  LabelVolume vol = surface_grid(surface, params, name);

  // 1. Crossings of the k-direction rays through the voxel centres of each (i, j) column.
  const std::vector<RayTriangle> tris = ray_triangles(surface);
  std::vector<std::vector<double>> crossings = column_crossings(tris, vol);

  // 2. Parity fill: a centre is inside when an odd number of crossings lie below it.
  parity_fill(tris, crossings, params.muscle_label, name, vol);
  const std::vector<std::uint8_t> muscle = muscle_mask(vol, params.muscle_label, name);

  // 3. Fat and skin shells within their thicknesses of the surface.
  label_shells(surface, muscle, params, vol);

  SurfaceSubject subject;
  subject.tissues = surface_tissues(params);
  // 4. Tendon ends along the principal axis.
  label_tendon_ends(params, name, vol, subject);
  subject.volume = std::move(vol);
  return subject;
}

SurfaceSubject import_surface(const std::filesystem::path& stl_path,
                              const SurfaceImportParams& params) {
  const TriangleSurface surface = read_stl(stl_path);
  check_closed_manifold(surface, stl_path.string());
  return voxelise_surface(surface, params, stl_path.string());
}

} // namespace myotwin::anatomy
