#include "myotwin/anatomy/motor_units.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>
#include <sstream>
#include <string>
#include <tuple>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::anatomy {

namespace {

constexpr const char* prefix = "motor-unit pool: ";
/// Random fibre positions tried per territory centre (best-candidate sampling).
constexpr int n_centre_candidates = 24;
/// Iterative proportional fitting: stop when every unit's expected count is within this relative
/// tolerance of its target, or after max_fit_iterations.
constexpr double fit_tolerance = 1e-3;
constexpr int max_fit_iterations = 300;
/// Territory width calibration: stop when every unit's expected territory area is within this
/// relative tolerance of its target, or after max_calibrations rounds.
constexpr double area_tolerance = 0.03;
constexpr int max_calibrations = 8;
/// Repair: a fibre whose unit would have drawn it with a probability below this is an outlier.
constexpr double outlier_probability = 1e-3;
constexpr int max_repair_passes = 4;
/// Intermingling: fibres a fibre may trade units with (its nearest), and passes over all fibres.
constexpr Eigen::Index n_swap_candidates = 12;
constexpr int max_swap_passes = 20;
/// Fibres per block in the fixed-order block sums (results do not depend on the thread count).
constexpr Eigen::Index block_size = 1024;

std::string to_text(double v) {
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

[[noreturn]] void fail(const std::string& what) {
  throw BadInput(prefix + what);
}

void validate(const MotorUnitParams& p) {
  auto finite_positive = [](double v) { return std::isfinite(v) && v > 0.0; };
  if (p.n_units < 1)
    fail("n_units = " + std::to_string(p.n_units) + ": must be >= 1");
  if (!(std::isfinite(p.size_range) && p.size_range >= 1.0))
    fail("size_range = " + to_text(p.size_range) + ": must be >= 1");
  if (!(std::isfinite(p.recruitment_range) && p.recruitment_range >= 1.0))
    fail("recruitment_range = " + to_text(p.recruitment_range) + ": must be >= 1");
  if (!(p.max_recruitment_threshold > 0.0 && p.max_recruitment_threshold <= 1.0))
    fail("max_recruitment_threshold = " + to_text(p.max_recruitment_threshold) +
         ": must be in (0, 1]");
  if (!(p.largest_territory_fraction > 0.0 && p.largest_territory_fraction <= 1.0))
    fail("largest_territory_fraction = " + to_text(p.largest_territory_fraction) +
         ": must be in (0, 1]");
  if (!finite_positive(p.cv_min_m_per_s) || !finite_positive(p.cv_max_m_per_s) ||
      !finite_positive(p.cv_mean_m_per_s) || !(p.cv_min_m_per_s <= p.cv_mean_m_per_s) ||
      !(p.cv_mean_m_per_s <= p.cv_max_m_per_s))
    fail("cv_min_m_per_s = " + to_text(p.cv_min_m_per_s) +
         ", cv_mean_m_per_s = " + to_text(p.cv_mean_m_per_s) +
         ", cv_max_m_per_s = " + to_text(p.cv_max_m_per_s) + ": expected 0 < min <= mean <= max");
  if (!finite_positive(p.fibre_diameter_mean_m))
    fail("fibre_diameter_mean_m = " + to_text(p.fibre_diameter_mean_m) + ": must be > 0");
  if (!(std::isfinite(p.fibre_diameter_sd_m) && p.fibre_diameter_sd_m >= 0.0))
    fail("fibre_diameter_sd_m = " + to_text(p.fibre_diameter_sd_m) + ": must be >= 0");
  if (p.intermingling_neighbours < 0 || p.intermingling_neighbours > 64)
    fail("intermingling_neighbours = " + std::to_string(p.intermingling_neighbours) +
         ": must be in [0, 64]");
}

/// A uniform grid over 2-D points with one empty cell of padding on each side; the points of
/// cell c are items[start[c] .. start[c + 1]).
struct PointGrid {
  double x0 = 0, y0 = 0, cell = 1;
  int nx = 0, ny = 0;
  std::vector<int> start, items;

  [[nodiscard]] int cx(double x) const {
    return std::clamp(static_cast<int>(std::floor((x - x0) / cell)), 1, nx - 2);
  }
  [[nodiscard]] int cy(double y) const {
    return std::clamp(static_cast<int>(std::floor((y - y0) / cell)), 1, ny - 2);
  }
  [[nodiscard]] int id(int ix, int iy) const { return iy * nx + ix; }
};

PointGrid make_grid(const Eigen::Ref<const Eigen::MatrixX2d>& x, double cell) {
  PointGrid g;
  const double xmin = x.col(0).minCoeff(), xmax = x.col(0).maxCoeff();
  const double ymin = x.col(1).minCoeff(), ymax = x.col(1).maxCoeff();
  g.cell = cell;
  g.x0 = xmin - cell;
  g.y0 = ymin - cell;
  g.nx = static_cast<int>(std::floor((xmax - xmin) / cell)) + 3;
  g.ny = static_cast<int>(std::floor((ymax - ymin) / cell)) + 3;
  const auto n_cells = static_cast<std::size_t>(g.nx) * static_cast<std::size_t>(g.ny);
  g.start.assign(n_cells + 1, 0);
  std::vector<int> cell_of(static_cast<std::size_t>(x.rows()));
  for (Eigen::Index f = 0; f < x.rows(); ++f) {
    cell_of[f] = g.id(g.cx(x(f, 0)), g.cy(x(f, 1)));
    ++g.start[cell_of[f] + 1];
  }
  std::partial_sum(g.start.begin(), g.start.end(), g.start.begin());
  g.items.resize(static_cast<std::size_t>(x.rows()));
  std::vector<int> fill(g.start.begin(), g.start.end() - 1);
  for (Eigen::Index f = 0; f < x.rows(); ++f)
    g.items[fill[cell_of[f]]++] = static_cast<int>(f);
  return g;
}

/// The k nearest other points of every point (#points x k, row f sorted by distance; -1 where
/// fewer than k other points exist).
Eigen::MatrixXi nearest_neighbours(const Eigen::Ref<const Eigen::MatrixX2d>& x, const PointGrid& g,
                                   int k) {
  const Eigen::Index n = x.rows();
  Eigen::MatrixXi nn = Eigen::MatrixXi::Constant(n, k, -1);
  if (k == 0)
    return nn;
#pragma omp parallel for schedule(static)
  for (Eigen::Index f = 0; f < n; ++f) {
    std::vector<std::pair<double, int>> best; // (squared distance, index), sorted
    best.reserve(static_cast<std::size_t>(k) + 1);
    const int hx = g.cx(x(f, 0)), hy = g.cy(x(f, 1));
    const int max_ring = std::max(g.nx, g.ny);
    for (int ring = 0; ring <= max_ring; ++ring) {
      for (int iy = hy - ring; iy <= hy + ring; ++iy) {
        if (iy < 0 || iy >= g.ny)
          continue;
        const bool edge_row = (iy == hy - ring || iy == hy + ring);
        for (int ix = hx - ring; ix <= hx + ring; ix += (edge_row || ring == 0) ? 1 : 2 * ring) {
          if (ix < 0 || ix >= g.nx)
            continue;
          const int c = g.id(ix, iy);
          for (int j = g.start[c]; j < g.start[c + 1]; ++j) {
            const int o = g.items[j];
            if (o == f)
              continue;
            const double d2 = (x.row(o) - x.row(f)).squaredNorm();
            if (static_cast<int>(best.size()) < k || d2 < best.back().first) {
              best.insert(std::upper_bound(best.begin(), best.end(), std::make_pair(d2, o)),
                          {d2, o});
              if (static_cast<int>(best.size()) > k)
                best.pop_back();
            }
          }
        }
      }
      const double reach = ring * g.cell;
      if (static_cast<int>(best.size()) == k && best.back().first <= reach * reach)
        break;
    }
    for (int j = 0; j < static_cast<int>(best.size()); ++j)
      nn(f, j) = best[j].second;
  }
  return nn;
}

/// 1-D squared Euclidean distance transform (Felzenszwalb and Huttenlocher 2012).
void edt_1d(const double* f, double* d, int n, std::vector<int>& v, std::vector<double>& z) {
  v.assign(static_cast<std::size_t>(n), 0);
  z.assign(static_cast<std::size_t>(n) + 1, 0.0);
  constexpr double inf = std::numeric_limits<double>::infinity();
  int k = 0;
  v[0] = 0;
  z[0] = -inf;
  z[1] = inf;
  for (int q = 1; q < n; ++q) {
    if (f[q] == inf)
      continue;
    if (f[v[k]] == inf) { // only infinite values so far: replace
      v[k] = q;
      continue;
    }
    double s = ((f[q] + q * q) - (f[v[k]] + v[k] * v[k])) / (2.0 * q - 2.0 * v[k]);
    while (s <= z[k]) {
      --k;
      s = ((f[q] + q * q) - (f[v[k]] + v[k] * v[k])) / (2.0 * q - 2.0 * v[k]);
    }
    ++k;
    v[k] = q;
    z[k] = s;
    z[k + 1] = inf;
  }
  k = 0;
  for (int q = 0; q < n; ++q) {
    while (z[k + 1] < q)
      ++k;
    const double dq = q - v[k];
    d[q] = (f[v[k]] == inf) ? inf : dq * dq + f[v[k]];
  }
}

/// Depth of every fibre below the boundary of the cross-section [m], and the area the fibres
/// cover [m^2]. The cross-section is the union of the grid cells that hold fibres, holes (empty
/// cells not connected to the outside) filled.
std::pair<Eigen::VectorXd, double> fibre_depths(const Eigen::Ref<const Eigen::MatrixX2d>& x,
                                                const PointGrid& g) {
  const int nx = g.nx, ny = g.ny;
  std::vector<char> outside(static_cast<std::size_t>(nx) * ny, 0);
  std::vector<int> stack{g.id(0, 0)};
  outside[g.id(0, 0)] = 1;
  while (!stack.empty()) {
    const int c = stack.back();
    stack.pop_back();
    const int ix = c % nx, iy = c / nx;
    const std::array<std::pair<int, int>, 4> nbs{
        {{ix - 1, iy}, {ix + 1, iy}, {ix, iy - 1}, {ix, iy + 1}}};
    for (const auto& [jx, jy] : nbs) {
      if (jx < 0 || jy < 0 || jx >= nx || jy >= ny)
        continue;
      const int o = g.id(jx, jy);
      if (outside[o] || g.start[o + 1] > g.start[o])
        continue;
      outside[o] = 1;
      stack.push_back(o);
    }
  }
  constexpr double inf = std::numeric_limits<double>::infinity();
  std::vector<double> d2(outside.size());
  std::size_t n_inside = 0;
  for (std::size_t c = 0; c < outside.size(); ++c) {
    d2[c] = outside[c] ? 0.0 : inf;
    n_inside += outside[c] ? 0 : 1;
  }
  std::vector<int> v;
  std::vector<double> z, fcol(static_cast<std::size_t>(ny)), dcol(static_cast<std::size_t>(ny));
  for (int ix = 0; ix < nx; ++ix) {
    for (int iy = 0; iy < ny; ++iy)
      fcol[iy] = d2[g.id(ix, iy)];
    edt_1d(fcol.data(), dcol.data(), ny, v, z);
    for (int iy = 0; iy < ny; ++iy)
      d2[g.id(ix, iy)] = dcol[iy];
  }
  std::vector<double> row(static_cast<std::size_t>(nx));
  for (int iy = 0; iy < ny; ++iy) {
    edt_1d(&d2[g.id(0, iy)], row.data(), nx, v, z);
    std::copy(row.begin(), row.end(), d2.begin() + g.id(0, iy));
  }
  Eigen::VectorXd depth(x.rows());
  for (Eigen::Index f = 0; f < x.rows(); ++f) {
    const double cells = std::sqrt(d2[g.id(g.cx(x(f, 0)), g.cy(x(f, 1)))]);
    depth(f) = std::max(0.0, (cells - 0.5) * g.cell);
  }
  return {depth, static_cast<double>(n_inside) * g.cell * g.cell};
}

/// Exponent p of the unit CV profile cv_min + (cv_max - cv_min) x^p (x = i / (N - 1)) that makes
/// the mean over the units equal to cv_mean (the nearest reachable value otherwise).
double cv_exponent(const std::vector<double>& x, double target) {
  auto mean_pow = [&](double p) {
    double s = 0.0;
    for (double xi : x)
      s += std::pow(xi, p);
    return s / static_cast<double>(x.size());
  };
  double lo = -12.0, hi = 12.0; // log p; mean_pow decreases with p
  if (target >= mean_pow(std::exp(lo)))
    return std::exp(lo);
  if (target <= mean_pow(std::exp(hi)))
    return std::exp(hi);
  for (int it = 0; it < 100; ++it) {
    const double mid = 0.5 * (lo + hi);
    (mean_pow(std::exp(mid)) > target ? lo : hi) = mid;
  }
  return std::exp(0.5 * (lo + hi));
}

/// Checks the inputs of build_motor_unit_pool (one finite position and positive weight per fibre,
/// at least one fibre per unit, a positive area [m^2]); throws BadInput.
void validate_inputs(const Eigen::Ref<const Eigen::MatrixX2d>& positions_m,
                     const Eigen::Ref<const Eigen::VectorXd>& weights, double cross_section_area_m2,
                     const MotorUnitParams& params) {
  validate(params);
  const Eigen::Index n = positions_m.rows();
  const Eigen::Index n_units = params.n_units;
  if (weights.size() != n)
    fail(std::to_string(n) + " fibre positions but " + std::to_string(weights.size()) +
         " weights: expected one weight per fibre");
  if (n < n_units)
    fail(std::to_string(n) + " model fibres for " + std::to_string(n_units) +
         " motor units: expected at least one model fibre per unit (raise the model fibre "
         "density or lower n_units)");
  if (!(std::isfinite(cross_section_area_m2) && cross_section_area_m2 > 0.0))
    fail("cross_section_area_m2 = " + to_text(cross_section_area_m2) + ": must be > 0");
  for (Eigen::Index f = 0; f < n; ++f) {
    if (!(std::isfinite(weights(f)) && weights(f) > 0.0))
      fail("weight of fibre " + std::to_string(f) + " = " + to_text(weights(f)) +
           ": must be > 0 (the number of real fibres the model fibre stands for)");
    if (!positions_m.row(f).allFinite())
      fail("position of fibre " + std::to_string(f) + " is not finite");
  }
}

/// The cross-section as the pool sees it: each fibre's depth below the boundary [m], and its
/// nearest neighbours (columns 0..k_nn-1: intermingling neighbours; all: swap candidates).
struct PoolGeometry {
  Eigen::VectorXd depth;
  int k_nn = 0;
  Eigen::MatrixXi neighbours;
};

/// Geometry: a grid of about 4 fibres per cell, depth below the boundary, neighbours. Throws
/// BadInput when the area does not match the area the positions cover.
PoolGeometry pool_geometry(const Eigen::Ref<const Eigen::MatrixX2d>& positions_m,
                           double cross_section_area_m2, const MotorUnitParams& params) {
  const Eigen::Index n = positions_m.rows();
  const double spacing_m = std::sqrt(cross_section_area_m2 / static_cast<double>(n));
  const double extent_x = positions_m.col(0).maxCoeff() - positions_m.col(0).minCoeff();
  const double extent_y = positions_m.col(1).maxCoeff() - positions_m.col(1).minCoeff();
  const double cell = 2.0 * spacing_m;
  const double n_cells = (extent_x / cell + 3.0) * (extent_y / cell + 3.0);
  if (n_cells > 64.0 * static_cast<double>(n) + 1e5)
    fail("cross_section_area_m2 = " + to_text(cross_section_area_m2) +
         " is far too small for fibre positions spanning " + to_text(extent_x) + " m x " +
         to_text(extent_y) + " m: expected the area of the cross-section they sample, in m^2");
  const PointGrid grid = make_grid(positions_m, cell);
  PoolGeometry out;
  double covered_m2 = 0.0;
  std::tie(out.depth, covered_m2) = fibre_depths(positions_m, grid);
  if (covered_m2 > 3.0 * cross_section_area_m2 || covered_m2 < cross_section_area_m2 / 3.0)
    fail("cross_section_area_m2 = " + to_text(cross_section_area_m2) +
         " but the fibre positions cover about " + to_text(covered_m2) +
         " m^2: expected the area of the cross-section they sample, in m^2");
  out.k_nn = static_cast<int>(std::min<Eigen::Index>(params.intermingling_neighbours, n - 1));
  const int k_nn = out.k_nn;
  out.neighbours =
      nearest_neighbours(positions_m, grid,
                         k_nn > 0 ? static_cast<int>(std::min<Eigen::Index>(
                                        std::max<Eigen::Index>(k_nn, n_swap_candidates), n - 1))
                                  : 0);
  return out;
}

/// Per unit: the target represented fibre count (real fibres) and the width s_u [m] of its
/// Gaussian profile.
struct UnitTargets {
  std::vector<double> target, sigma;
};

/// Sizes, thresholds, CV [m/s] and diameter [m] per unit (index = recruitment order) into
/// pool.units; returns the targets and initial profile widths (half the territory radius).
UnitTargets plan_units(const Eigen::Ref<const Eigen::VectorXd>& weights,
                       double cross_section_area_m2, const MotorUnitParams& params,
                       MotorUnitPool& pool) {
  const Eigen::Index n_units = params.n_units;
  const double total_weight = weights.sum();
  std::vector<double> xs(static_cast<std::size_t>(n_units));
  for (Eigen::Index i = 0; i < n_units; ++i)
    xs[i] = n_units == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(n_units - 1);
  std::vector<double> rel_size(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i)
    rel_size[i] = std::pow(params.size_range, xs[i]);
  const double rel_sum = std::accumulate(rel_size.begin(), rel_size.end(), 0.0);
  const double cv_frac = params.cv_max_m_per_s > params.cv_min_m_per_s
                             ? (params.cv_mean_m_per_s - params.cv_min_m_per_s) /
                                   (params.cv_max_m_per_s - params.cv_min_m_per_s)
                             : 0.0;
  const double cv_p = n_units >= 2 ? cv_exponent(xs, cv_frac) : 1.0;

  pool.units.resize(static_cast<std::size_t>(n_units));
  UnitTargets out;
  out.target.resize(xs.size());
  out.sigma.resize(xs.size());
  for (Eigen::Index i = 0; i < n_units; ++i) {
    MotorUnit& u = pool.units[i];
    u.index = i;
    u.target_n_fibres = total_weight * rel_size[i] / rel_sum;
    u.recruitment_threshold =
        params.max_recruitment_threshold * std::pow(params.recruitment_range, xs[i] - 1.0);
    const double area =
        params.largest_territory_fraction * cross_section_area_m2 * rel_size[i] / rel_size.back();
    u.territory_radius_m = std::sqrt(area / std::numbers::pi);
    u.cv_m_per_s = n_units == 1
                       ? params.cv_mean_m_per_s
                       : params.cv_min_m_per_s + (params.cv_max_m_per_s - params.cv_min_m_per_s) *
                                                     std::pow(xs[i], cv_p);
    u.fibre_diameter_m = params.fibre_diameter_mean_m * u.cv_m_per_s / params.cv_mean_m_per_s;
    out.target[i] = u.target_n_fibres;
    out.sigma[i] = 0.5 * u.territory_radius_m;
  }
  return out;
}

/// Territory centres [m], largest unit first, by best-candidate sampling on coverage (the sum of
/// the profiles of width `sigma` [m] already placed), among fibres deeper than the territory
/// radius; draws from root.split(0).
void place_territory_centres(const Eigen::Ref<const Eigen::MatrixX2d>& positions_m,
                             const Eigen::VectorXd& depth, const std::vector<double>& sigma,
                             const Rng& root, MotorUnitPool& pool) {
  const Eigen::Index n = positions_m.rows();
  const auto n_units = static_cast<Eigen::Index>(pool.units.size());
  std::vector<int> by_depth(static_cast<std::size_t>(n));
  std::iota(by_depth.begin(), by_depth.end(), 0);
  std::stable_sort(by_depth.begin(), by_depth.end(),
                   [&](int a, int b) { return depth(a) > depth(b); });
  Rng rng = root.split(0);
  for (Eigen::Index i = n_units - 1; i >= 0; --i) {
    MotorUnit& u = pool.units[i];
    const auto deep_enough = static_cast<std::size_t>(
        std::partition_point(by_depth.begin(), by_depth.end(),
                             [&](int f) { return depth(f) >= u.territory_radius_m; }) -
        by_depth.begin());
    const std::size_t n_eligible =
        deep_enough > 0 ? deep_enough : std::max<std::size_t>(1, by_depth.size() / 10);
    double best_cover = std::numeric_limits<double>::infinity();
    for (int c = 0; c < n_centre_candidates; ++c) {
      const int f = by_depth[rng.uniform_index(n_eligible)];
      const Eigen::Vector2d p = positions_m.row(f).transpose();
      double cover = 0.0;
      for (Eigen::Index j = i + 1; j < n_units; ++j) {
        const double d2 = (p - pool.units[j].territory_centre_m).squaredNorm();
        cover += std::exp(-d2 / (2.0 * sigma[j] * sigma[j]));
      }
      if (cover < best_cover) {
        best_cover = cover;
        u.territory_centre_m = p;
      }
    }
  }
}

/// The fitted assignment probabilities log p(u|f) = L(f,u) + log a_u - log Z_f.
struct AssignmentModel {
  /// #fibres x #units: the profile L(f,u) = -|x_f - c_u|^2 / (2 s_u^2)
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> log_profile;
  Eigen::VectorXd log_a; ///< per unit: log a_u
  Eigen::VectorXd log_z; ///< per fibre: log sum_u exp(L(f,u) + log a_u)
  /// per unit: sum_f of q, q x, q y, q x^2, q x y, q y^2 with q = w_f p(u|f)
  Eigen::MatrixXd moments;

  [[nodiscard]] double log_p(Eigen::Index f, Eigen::Index i) const {
    return static_cast<double>(log_profile(f, i)) + log_a(i) - log_z(f);
  }
};

/// The profile L(f,u) of every fibre and unit from the centred positions and centres [m] and the
/// widths `sigma` [m], in parallel over fibres.
void make_profile(const Eigen::MatrixX2d& centred, const std::vector<Eigen::Vector2d>& centre_c,
                  const std::vector<double>& sigma, AssignmentModel& model) {
  const Eigen::Index n = centred.rows();
  const auto n_units = static_cast<Eigen::Index>(centre_c.size());
#pragma omp parallel for schedule(static)
  for (Eigen::Index f = 0; f < n; ++f)
    for (Eigen::Index i = 0; i < n_units; ++i) {
      const double d2 = (centred.row(f).transpose() - centre_c[i]).squaredNorm();
      model.log_profile(f, i) = static_cast<float>(-d2 / (2.0 * sigma[i] * sigma[i]));
    }
}

/// One pass over the fibres: log Z_f, and the moments of q = w_f p(u|f) per unit (column 0
/// only, unless `with_moments`), summed in fixed-order blocks of fibres.
void fit_pass(const Eigen::MatrixX2d& centred, const Eigen::Ref<const Eigen::VectorXd>& weights,
              bool with_moments, AssignmentModel& model) {
  const Eigen::Index n = centred.rows();
  const Eigen::Index n_units = model.log_a.size();
  const Eigen::Index n_blocks = (n + block_size - 1) / block_size;
  // single precision inside a block of fibres (log-probabilities to 1e-7 are plenty), double
  // across blocks
  std::vector<Eigen::MatrixXf> block_sums(static_cast<std::size_t>(n_blocks),
                                          Eigen::MatrixXf::Zero(n_units, with_moments ? 6 : 1));
  const Eigen::VectorXf log_a_f = model.log_a.cast<float>();
#pragma omp parallel for schedule(dynamic)
  for (Eigen::Index b = 0; b < n_blocks; ++b) {
    Eigen::VectorXf l(n_units);
    Eigen::MatrixXf& sums = block_sums[b];
    for (Eigen::Index f = b * block_size; f < std::min(n, (b + 1) * block_size); ++f) {
      l = model.log_profile.row(f).transpose() + log_a_f;
      const float m = l.maxCoeff();
      l = (l.array() - m).max(-60.0F).exp().matrix(); // (no denormals)
      const float z = l.sum();
      model.log_z(f) = static_cast<double>(m) + std::log(static_cast<double>(z));
      l *= static_cast<float>(weights(f)) / z;
      sums.col(0) += l;
      if (with_moments) {
        const auto x = static_cast<float>(centred(f, 0)), y = static_cast<float>(centred(f, 1));
        sums.col(1) += x * l;
        sums.col(2) += y * l;
        sums.col(3) += (x * x) * l;
        sums.col(4) += (x * y) * l;
        sums.col(5) += (y * y) * l;
      }
    }
  }
  model.moments.setZero();
  for (const auto& sums : block_sums) // fixed order, independent of threads
    model.moments.leftCols(sums.cols()) += sums.cast<double>();
}

/// Iterative proportional fitting of the unit factors a_u so that sum_f w_f p(u|f) = target_u
/// (within fit_tolerance, at most max_fit_iterations).
void fit_unit_factors(const Eigen::MatrixX2d& centred,
                      const Eigen::Ref<const Eigen::VectorXd>& weights,
                      const std::vector<double>& target, AssignmentModel& model) {
  const Eigen::Index n_units = model.log_a.size();
  for (int it = 0; it < max_fit_iterations; ++it) {
    fit_pass(centred, weights, false, model);
    double worst = 0.0;
    for (Eigen::Index i = 0; i < n_units; ++i)
      worst = std::max(worst, std::abs(model.moments(i, 0) / target[i] - 1.0));
    if (worst < fit_tolerance)
      break;
    for (Eigen::Index i = 0; i < n_units; ++i)
      model.log_a(i) += std::log(target[i] / model.moments(i, 0));
  }
}

/// Compares each unit's expected territory area, 4 pi sqrt(det C_u) from the moments, with its
/// target pi r^2: returns true when all are within area_tolerance, else rescales the widths
/// `sigma` [m] (within 1/4 and 4 times half the radius) and returns false.
bool calibrate_widths(const AssignmentModel& model, const MotorUnitPool& pool,
                      std::vector<double>& sigma) {
  const Eigen::Index n_units = model.log_a.size();
  const Eigen::MatrixXd& moments = model.moments;
  double worst = 0.0;
  std::vector<double> ratio(static_cast<std::size_t>(n_units));
  for (Eigen::Index i = 0; i < n_units; ++i) {
    const double q = moments(i, 0);
    const double mx = moments(i, 1) / q, my = moments(i, 2) / q;
    const double cxx = moments(i, 3) / q - mx * mx, cxy = moments(i, 4) / q - mx * my,
                 cyy = moments(i, 5) / q - my * my;
    const double area = 4.0 * std::numbers::pi * std::sqrt(std::max(cxx * cyy - cxy * cxy, 0.0));
    const double target_area = std::numbers::pi * std::pow(pool.units[i].territory_radius_m, 2);
    ratio[i] = target_area / std::max(area, 1e-6 * target_area);
    worst = std::max(worst, std::abs(1.0 / ratio[i] - 1.0));
  }
  if (worst < area_tolerance)
    return true;
  for (Eigen::Index i = 0; i < n_units; ++i) {
    const double nominal = 0.5 * pool.units[i].territory_radius_m;
    sigma[i] = std::clamp(sigma[i] * std::pow(ratio[i], 0.75), 0.25 * nominal, 4.0 * nominal);
  }
  return false;
}

/// Assignment probabilities: log p(u|f) = L(f,u) + log a_u - log Z_f with the profile
/// L(f,u) = -|x_f - c_u|^2 / (2 s_u^2), the unit factors a_u fitted so that
/// sum_f w_f p(u|f) = target_u, and the widths s_u calibrated so that the expected territory
/// area, 4 pi sqrt(det C_u) with C_u the covariance of p(u|.) w, equals the target (the
/// neighbouring territories and the boundary otherwise widen or narrow it).
AssignmentModel fit_assignment(const Eigen::Ref<const Eigen::MatrixX2d>& positions_m,
                               const Eigen::Ref<const Eigen::VectorXd>& weights,
                               const MotorUnitPool& pool, UnitTargets& targets) {
  const Eigen::Index n = positions_m.rows();
  const auto n_units = static_cast<Eigen::Index>(pool.units.size());
  const std::vector<double>& target = targets.target;
  std::vector<double>& sigma = targets.sigma;
  Eigen::MatrixX2d centred = positions_m.rowwise() - positions_m.colwise().mean();
  std::vector<Eigen::Vector2d> centre_c(static_cast<std::size_t>(n_units));
  for (Eigen::Index i = 0; i < n_units; ++i)
    centre_c[i] = pool.units[i].territory_centre_m - positions_m.colwise().mean().transpose();
  AssignmentModel model;
  model.log_profile.resize(n, n_units);
  model.log_a.resize(n_units);
  for (Eigen::Index i = 0; i < n_units; ++i)
    model.log_a(i) = std::log(target[i] / (2.0 * std::numbers::pi * sigma[i] * sigma[i]));
  model.log_z.resize(n);
  model.moments.resize(n_units, 6);
  for (int calibration = 0;; ++calibration) {
    make_profile(centred, centre_c, sigma, model);
    fit_unit_factors(centred, weights, target, model);
    fit_pass(centred, weights, true, model); // log_z and moments for the final factors
    if (calibration == max_calibrations)
      break;
    if (calibrate_widths(model, pool, sigma))
      break;
  }
  return model;
}

/// The state of the assignment: the seeded random order of the fibres and each unit's remaining
/// capacity (target minus the weights of its fibres, in real fibres).
struct Assignment {
  std::vector<int> order;
  std::vector<double> remaining;
};

/// Sequential assignment in a seeded random order (root.split(1)) with capacities: each fibre
/// drawn (root.split(2)) among the units with room, in proportion to p(u|f) times the unit's
/// remaining capacity over its remaining expected uptake. Sets pool.fibre_unit.
Assignment assign_sequentially(const AssignmentModel& model,
                               const Eigen::Ref<const Eigen::VectorXd>& weights,
                               const std::vector<double>& target, const Rng& root,
                               MotorUnitPool& pool) {
  const Eigen::Index n = weights.size();
  const Eigen::Index n_units = model.log_a.size();
  const Eigen::VectorXd expected = model.moments.col(0);
  Assignment out;
  std::vector<int>& order = out.order;
  order.resize(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  {
    Rng rng = root.split(1);
    for (std::size_t j = order.size(); j > 1; --j)
      std::swap(order[j - 1], order[rng.uniform_index(j)]);
  }
  Rng draw_rng = root.split(2);
  out.remaining = target;
  std::vector<double>& remaining = out.remaining;
  std::vector<double> uptake(expected.data(), expected.data() + n_units);
  pool.fibre_unit = Eigen::VectorXi::Constant(n, -1);
  std::vector<double> score(static_cast<std::size_t>(n_units)), p(score.size());
  constexpr double minus_inf = -std::numeric_limits<double>::infinity();
  for (const int f : order) {
    const double w = weights(f);
    for (Eigen::Index i = 0; i < n_units; ++i)
      p[i] = static_cast<double>(model.log_profile(f, i)) + model.log_a(i) - model.log_z(f);
    double best = minus_inf;
    for (Eigen::Index i = 0; i < n_units; ++i) {
      score[i] = minus_inf;
      if (remaining[i] < 0.5 * w)
        continue;
      score[i] = p[i] + std::log(remaining[i]) - std::log(std::max(uptake[i], 1e-9 * target[i]));
      best = std::max(best, score[i]);
    }
    int chosen = -1;
    if (best > minus_inf) {
      double total = 0.0;
      for (Eigen::Index i = 0; i < n_units; ++i) {
        score[i] = score[i] == minus_inf ? 0.0 : std::exp(score[i] - best);
        total += score[i];
      }
      double r = draw_rng.uniform() * total;
      for (Eigen::Index i = 0; i < n_units; ++i) {
        if (score[i] <= 0.0)
          continue;
        chosen = static_cast<int>(i);
        r -= score[i];
        if (r < 0.0)
          break;
      }
    } else { // every unit is full (rounding): the one with the most room left
      chosen = static_cast<int>(std::max_element(remaining.begin(), remaining.end()) -
                                remaining.begin());
    }
    pool.fibre_unit(f) = chosen;
    remaining[chosen] -= w;
    for (Eigen::Index i = 0; i < n_units; ++i)
      uptake[i] -= w * std::exp(p[i]);
  }
  return out;
}

/// A unit without fibres takes the fibre nearest its centre [m] from a unit with two or more.
void fill_empty_units(const Eigen::Ref<const Eigen::MatrixX2d>& positions_m,
                      const Eigen::Ref<const Eigen::VectorXd>& weights, Assignment& assignment,
                      MotorUnitPool& pool) {
  const Eigen::Index n = positions_m.rows();
  const auto n_units = static_cast<Eigen::Index>(pool.units.size());
  std::vector<double>& remaining = assignment.remaining;
  std::vector<std::int64_t> count(static_cast<std::size_t>(n_units), 0);
  for (Eigen::Index f = 0; f < n; ++f)
    ++count[pool.fibre_unit(f)];
  for (Eigen::Index i = 0; i < n_units; ++i) {
    if (count[i] > 0)
      continue;
    Eigen::Index best_f = -1;
    double best_d2 = std::numeric_limits<double>::infinity();
    for (Eigen::Index f = 0; f < n; ++f) {
      if (count[pool.fibre_unit(f)] < 2)
        continue;
      const double d2 =
          (positions_m.row(f).transpose() - pool.units[i].territory_centre_m).squaredNorm();
      if (d2 < best_d2) {
        best_d2 = d2;
        best_f = f;
      }
    }
    --count[pool.fibre_unit(best_f)];
    remaining[pool.fibre_unit(best_f)] += weights(best_f);
    remaining[i] -= weights(best_f);
    pool.fibre_unit(best_f) = static_cast<int>(i);
    count[i] = 1;
  }
}

/// Fibres f and g trade units; the units' remaining capacities follow. Returns g's old unit.
int trade_units(Eigen::Index f, Eigen::Index g, const Eigen::Ref<const Eigen::VectorXd>& weights,
                std::vector<double>& remaining, MotorUnitPool& pool) {
  const int a = pool.fibre_unit(f);
  const int b = pool.fibre_unit(g);
  const double dw = weights(g) - weights(f);
  remaining[a] -= dw;
  remaining[b] += dw;
  pool.fibre_unit(f) = b;
  pool.fibre_unit(g) = a;
  return b;
}

/// Whether fibres f and g may trade units a and b: each unit's represented count stays as close
/// to its target as it was (or within half a fibre).
bool keeps_counts(int f, int g, int a, int b, const Eigen::Ref<const Eigen::VectorXd>& weights,
                  const std::vector<double>& remaining) {
  const double dw = weights(g) - weights(f);
  const double tol = 0.5 * std::max(weights(f), weights(g));
  return !(std::abs(remaining[a] - dw) > std::max(std::abs(remaining[a]), tol) ||
           std::abs(remaining[b] + dw) > std::max(std::abs(remaining[b]), tol));
}

/// Repair the tail of the sequential pass: a fibre left in a unit that would have drawn it
/// with probability below outlier_probability (the last fibres go where room is left) trades
/// units with the fibre of a likelier unit that gains the most log-probability in total.
void repair_outliers(const AssignmentModel& model, const Eigen::Ref<const Eigen::VectorXd>& weights,
                     Assignment& assignment, MotorUnitPool& pool) {
  const Eigen::Index n = weights.size();
  const Eigen::Index n_units = model.log_a.size();
  std::vector<double>& remaining = assignment.remaining;
  std::vector<std::vector<int>> members(static_cast<std::size_t>(n_units));
  for (Eigen::Index f = 0; f < n; ++f)
    members[pool.fibre_unit(f)].push_back(static_cast<int>(f));
  const double log_outlier = std::log(outlier_probability);
  for (int pass = 0; pass < max_repair_passes; ++pass)
    for (const int f : assignment.order) {
      const int a = pool.fibre_unit(f);
      const double la = model.log_p(f, a);
      if (la >= log_outlier)
        continue;
      // best trade that leaves both fibres likely, else the best improvement (a later pass
      // continues the chain)
      double best_gain = 0.0, best_loose_gain = 0.0;
      int best_g = -1, best_loose_g = -1;
      for (Eigen::Index b = 0; b < n_units; ++b) {
        const double lb = model.log_p(f, b);
        if (b == a || lb < log_outlier)
          continue;
        for (const int g : members[b]) {
          const double lga = model.log_p(g, a);
          if (!keeps_counts(f, g, a, static_cast<int>(b), weights, remaining))
            continue;
          const double gain = lb + lga - la - model.log_p(g, b);
          if (lga >= log_outlier && gain > best_gain) {
            best_gain = gain;
            best_g = g;
          }
          if (gain > best_loose_gain) {
            best_loose_gain = gain;
            best_loose_g = g;
          }
        }
      }
      if (best_g < 0)
        best_g = best_loose_g;
      if (best_g < 0)
        continue;
      const int b = trade_units(f, best_g, weights, remaining, pool);
      std::replace(members[a].begin(), members[a].end(), f, best_g);
      std::replace(members[b].begin(), members[b].end(), best_g, f);
    }
}

/// The symmetric neighbour graph of the fibres: each fibre's k_nn nearest, either way (sorted,
/// without repeats).
std::vector<std::vector<int>> neighbour_graph(const Eigen::MatrixXi& neighbours, int k_nn) {
  const Eigen::Index n = neighbours.rows();
  std::vector<std::vector<int>> adj(static_cast<std::size_t>(n));
  for (Eigen::Index f = 0; f < n; ++f)
    for (int j = 0; j < k_nn; ++j) {
      const int o = neighbours(f, j);
      if (o < 0)
        continue;
      adj[f].push_back(o);
      adj[o].push_back(static_cast<int>(f));
    }
  for (auto& a : adj) {
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
  }
  return adj;
}

/// Intermingling by local swaps: a fibre sharing its unit with one of its neighbours (k nearest,
/// either way) trades units with one of its n_swap_candidates nearest fibres when that lowers
/// the number of such pairs; the moves are a fibre spacing or two, so counts and territories keep
/// their shape. Passes in seeded random orders (root.split(4)).
void intermingle(const PoolGeometry& geometry, const Eigen::Ref<const Eigen::VectorXd>& weights,
                 const Rng& root, Assignment& assignment, MotorUnitPool& pool) {
  const Eigen::MatrixXi& neighbours = geometry.neighbours;
  const std::vector<std::vector<int>> adj = neighbour_graph(neighbours, geometry.k_nn);
  std::vector<int>& order = assignment.order;
  auto same = [&](int f, int unit) {
    int c = 0;
    for (const int o : adj[f])
      c += pool.fibre_unit(o) == unit ? 1 : 0;
    return c;
  };
  auto adjacent = [&](int f, int g) {
    return std::binary_search(adj[f].begin(), adj[f].end(), g) ? 1 : 0;
  };
  Rng swap_rng = root.split(4);
  for (int pass = 0; pass < max_swap_passes; ++pass) {
    for (std::size_t j = order.size(); j > 1; --j)
      std::swap(order[j - 1], order[swap_rng.uniform_index(j)]);
    std::int64_t n_swaps = 0;
    for (const int f : order) {
      const int a = pool.fibre_unit(f);
      const int conflicts_f = same(f, a);
      if (conflicts_f == 0)
        continue;
      int best_g = -1, best_delta = 0;
      for (int j = 0; j < neighbours.cols(); ++j) {
        const int g = neighbours(f, j);
        if (g < 0)
          continue;
        const int b = pool.fibre_unit(g);
        if (b == a)
          continue;
        if (!keeps_counts(f, g, a, b, weights, assignment.remaining))
          continue;
        const int fg = adjacent(f, g);
        const int delta = (same(f, b) - fg + same(g, a) - fg) - (conflicts_f + same(g, b));
        if (delta < best_delta) {
          best_delta = delta;
          best_g = g;
        }
      }
      if (best_g < 0)
        continue;
      trade_units(f, best_g, weights, assignment.remaining, pool);
      ++n_swaps;
    }
    if (n_swaps == 0)
      break;
  }
}

/// Per-fibre diameter [m] and CV [m/s], one random stream per fibre (root.split(3)): a normal
/// draw around the unit's diameter, redrawn (up to 100 times) and clamped to the CV range.
void fibre_diameters(const MotorUnitParams& params, const Rng& root, MotorUnitPool& pool) {
  const Eigen::Index n = pool.fibre_unit.size();
  pool.fibre_cv_m_per_s.resize(n);
  pool.fibre_diameter_m.resize(n);
  const Rng fibre_root = root.split(3);
#pragma omp parallel for schedule(static)
  for (Eigen::Index f = 0; f < n; ++f) {
    const MotorUnit& u = pool.units[pool.fibre_unit(f)];
    const double sd =
        params.fibre_diameter_sd_m * u.fibre_diameter_m / params.fibre_diameter_mean_m;
    const double d_lo = u.fibre_diameter_m * params.cv_min_m_per_s / u.cv_m_per_s;
    const double d_hi = u.fibre_diameter_m * params.cv_max_m_per_s / u.cv_m_per_s;
    Rng rng = fibre_root.split(static_cast<std::uint64_t>(f));
    double d = rng.normal(u.fibre_diameter_m, sd);
    for (int attempt = 0; attempt < 100 && (d < d_lo || d > d_hi); ++attempt)
      d = rng.normal(u.fibre_diameter_m, sd);
    d = std::clamp(d, d_lo, d_hi);
    pool.fibre_diameter_m(f) = d;
    pool.fibre_cv_m_per_s(f) = u.cv_m_per_s * d / u.fibre_diameter_m;
  }
}

} // namespace

MotorUnitParams read_motor_unit_params(ConfigReader& section) {
  MotorUnitParams p;
  const MotorUnitParams d;
  // The largest human muscles have about a thousand motor units (e.g. medial gastrocnemius ~600).
  p.n_units = section.optional<std::int64_t>("n_units", d.n_units, int_in_range(1, 5000),
                                             "motor units of a muscle whose tissue-table entry "
                                             "gives none (published forearm counts 150-420)");
  p.size_range = section.optional<double>("size_range", d.size_range, in_range(1.0, 1e6),
                                          "ratio of the largest to the smallest unit's fibre "
                                          "count, exponential over the pool (Fuglevand 1993)");
  p.recruitment_range =
      section.optional<double>("recruitment_range", d.recruitment_range, in_range(1.0, 1e6),
                               "ratio of the last to the first recruitment threshold, exponential "
                               "over the pool (Fuglevand 1993)");
  p.max_recruitment_threshold = section.optional<double>(
      "max_recruitment_threshold", d.max_recruitment_threshold, in_range(1e-6, 1.0),
      "recruitment threshold of the last unit as a fraction of the maximum excitation");
  p.largest_territory_fraction = section.optional<double>(
      "largest_territory_fraction", d.largest_territory_fraction, in_range(1e-6, 1.0),
      "territory area of the largest unit as a fraction of the cross-section; others scale with "
      "size");
  p.cv_mean_m_per_s = section.optional<double>("cv_mean_m_per_s", d.cv_mean_m_per_s, positive(),
                                               "mean conduction velocity over the units; must lie "
                                               "between cv_min_m_per_s and cv_max_m_per_s");
  p.cv_min_m_per_s = section.optional<double>(
      "cv_min_m_per_s", d.cv_min_m_per_s, positive(),
      "conduction velocity of the smallest unit; lower bound of every fibre's");
  p.cv_max_m_per_s = section.optional<double>(
      "cv_max_m_per_s", d.cv_max_m_per_s, positive(),
      "conduction velocity of the largest unit; upper bound of every fibre's");
  p.fibre_diameter_mean_m = units::um_to_m(section.optional<double>(
      "fibre_diameter_mean_um", units::m_to_um(d.fibre_diameter_mean_m), positive(),
      "unit mean fibre diameter averaged over the units; a unit's mean is proportional to its CV"));
  p.fibre_diameter_sd_m = units::um_to_m(section.optional<double>(
      "fibre_diameter_sd_um", units::m_to_um(d.fibre_diameter_sd_m), non_negative(),
      "standard deviation of fibre diameters within a unit of average size; scales with its mean"));
  p.intermingling_neighbours = section.optional<std::int64_t>(
      "intermingling_neighbours", d.intermingling_neighbours, int_in_range(0, 64),
      "a fibre is not given to a unit owning one of its this many nearest neighbours; 0: off");
  if (!(p.cv_min_m_per_s <= p.cv_mean_m_per_s && p.cv_mean_m_per_s <= p.cv_max_m_per_s))
    section.fail("cv_mean_m_per_s",
                 "must lie between cv_min_m_per_s = " + to_text(p.cv_min_m_per_s) +
                     " and cv_max_m_per_s = " + to_text(p.cv_max_m_per_s));
  return p;
}

MotorUnitPool build_motor_unit_pool(const Eigen::Ref<const Eigen::MatrixX2d>& positions_m,
                                    const Eigen::Ref<const Eigen::VectorXd>& weights,
                                    double cross_section_area_m2, const MotorUnitParams& params,
                                    std::uint64_t seed) {
  // ---- 0. Inputs.
  validate_inputs(positions_m, weights, cross_section_area_m2, params);

  // ---- Geometry: a grid of about 4 fibres per cell, depth below the boundary, neighbours.
  const PoolGeometry geometry = pool_geometry(positions_m, cross_section_area_m2, params);

  // ---- 1. Sizes, thresholds, CV and diameter per unit (index = recruitment order).
  MotorUnitPool pool;
  UnitTargets targets = plan_units(weights, cross_section_area_m2, params, pool);

  const Rng root(seed);

  // ---- 2. Territory centres, largest first, by best-candidate sampling on coverage.
  place_territory_centres(positions_m, geometry.depth, targets.sigma, root, pool);

  // ---- 3. Assignment probabilities, unit factors fitted and widths calibrated.
  const AssignmentModel model = fit_assignment(positions_m, weights, pool, targets);

  // ---- 4. Sequential assignment in a seeded random order with capacities; then no unit left
  // empty and the unlikely tail repaired.
  Assignment assignment = assign_sequentially(model, weights, targets.target, root, pool);
  fill_empty_units(positions_m, weights, assignment, pool);
  repair_outliers(model, weights, assignment, pool);

  // ---- 5. Intermingling by local swaps.
  if (geometry.k_nn > 0)
    intermingle(geometry, weights, root, assignment, pool);

  for (Eigen::Index f = 0; f < positions_m.rows(); ++f) {
    MotorUnit& u = pool.units[pool.fibre_unit(f)];
    u.fibres.push_back(f);
    u.n_fibres += weights(f);
  }

  // ---- 6. Per-fibre diameter and CV, one random stream per fibre.
  fibre_diameters(params, root, pool);
  return pool;
}

} // namespace myotwin::anatomy
