#include "myotwin/inversion/bmiss.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::inversion {

namespace {

/// The search space: x, y of the centre [m], log of the size [log fibres], end-plate shift
/// [m], CV [m/s].
constexpr int n_dims = 5;
using Point = Eigen::Matrix<double, n_dims, 1>;

/// Radical inverse of `index` in base `base` (the Halton sequence).
double halton(std::uint64_t index, std::uint64_t base) {
  double f = 1.0, r = 0.0;
  while (index > 0) {
    f /= static_cast<double>(base);
    r += f * static_cast<double>(index % base);
    index /= base;
  }
  return r;
}

struct SearchSpace {
  Eigen::MatrixX2d cells; ///< the muscle's fibre seeds in the section [m]
  double cell_size_m = 0.0;
  Point lo, hi; ///< bounds of each coordinate
  double radius_per_sqrt_fibre = 0.0;

  [[nodiscard]] Point clamp(Point p) const { return p.cwiseMax(lo).cwiseMin(hi); }

  /// Initial Nelder-Mead steps: a tenth of each range.
  [[nodiscard]] Point step() const { return 0.1 * (hi - lo).cwiseMax(Point::Constant(1e-6)); }

  /// Distance from the centre to the nearest cell centre [m].
  [[nodiscard]] double outside_m(const Point& p) const {
    return std::sqrt(
        (cells.rowwise() - p.head<2>().transpose()).rowwise().squaredNorm().minCoeff());
  }

  [[nodiscard]] forward::UnitParameters theta(const Point& p) const {
    forward::UnitParameters t;
    t.centre_m = p.head<2>();
    t.n_fibres = std::exp(p[2]);
    t.radius_m = radius_per_sqrt_fibre * std::sqrt(t.n_fibres);
    t.end_plate_shift_m = p[3];
    t.end_plate_spread_m = 0.0;
    t.cv_m_per_s = p[4];
    return t;
  }

  [[nodiscard]] Point point(const forward::UnitParameters& t) const {
    Point p;
    p << t.centre_m.x(), t.centre_m.y(), std::log(t.n_fibres), t.end_plate_shift_m, t.cv_m_per_s;
    return clamp(p);
  }

  /// The k-th probe at fibre seed `c`: a point within a cell of it (Halton bases 3 and 5), then
  /// the others.
  [[nodiscard]] Point probe_at(std::uint64_t k, Eigen::Index c) const {
    Point p;
    p[0] = cells(c, 0) + (halton(k, 3) - 0.5) * cell_size_m;
    p[1] = cells(c, 1) + (halton(k, 5) - 0.5) * cell_size_m;
    for (int d = 2; d < n_dims; ++d) {
      static constexpr std::uint64_t bases[] = {7, 11, 13};
      p[d] = lo[d] + halton(k, bases[d - 2]) * (hi[d] - lo[d]);
    }
    return p;
  }
};

/// Excess kurtosis of s over the samples not `excluded` (all when it is empty).
double excess_kurtosis(const Eigen::VectorXd& s, const std::vector<char>& excluded) {
  if (excluded.empty()) {
    const double m2 = s.squaredNorm() / static_cast<double>(s.size());
    return m2 > 0.0 ? s.array().square().square().mean() / (m2 * m2) - 3.0 : -3.0;
  }
  double m2 = 0.0, m4 = 0.0, count = 0.0;
  for (Eigen::Index k = 0; k < s.size(); ++k)
    if (!excluded[static_cast<std::size_t>(k)]) {
      const double v = s[k] * s[k];
      m2 += v;
      m4 += v * v;
      count += 1.0;
    }
  if (!(count > 0.0) || !(m2 > 0.0))
    return -3.0;
  m2 /= count;
  return m4 / count / (m2 * m2) - 3.0;
}

/// Nelder-Mead maximisation of `f` from `start` with initial steps `step`, at most
/// `max_evaluations` evaluations; points are clamped by `space`.
template <class F>
Point nelder_mead(const F& f, const Point& start, const Point& step, std::int64_t max_evaluations,
                  const SearchSpace& space, double& best_value) {
  std::vector<Point> x(n_dims + 1, start);
  std::vector<double> y(n_dims + 1);
  y[0] = f(start);
  std::int64_t evaluations = 1;
  for (int d = 0; d < n_dims; ++d) {
    x[d + 1][d] += step[d];
    x[d + 1] = space.clamp(x[d + 1]);
    y[d + 1] = f(x[d + 1]);
    ++evaluations;
  }
  std::vector<int> order(n_dims + 1);
  while (evaluations < max_evaluations) {
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return y[a] > y[b]; });
    const int worst = order.back(), second = order[n_dims - 1], best = order.front();
    Point centroid = Point::Zero();
    for (int i = 0; i < n_dims; ++i)
      centroid += x[order[i]] / n_dims;
    const Point reflected = space.clamp(centroid + (centroid - x[worst]));
    const double y_r = f(reflected);
    ++evaluations;
    if (y_r > y[best]) {
      const Point expanded = space.clamp(centroid + 2.0 * (centroid - x[worst]));
      const double y_e = f(expanded);
      ++evaluations;
      if (y_e > y_r) {
        x[worst] = expanded;
        y[worst] = y_e;
      } else {
        x[worst] = reflected;
        y[worst] = y_r;
      }
    } else if (y_r > y[second]) {
      x[worst] = reflected;
      y[worst] = y_r;
    } else {
      const Point contracted = space.clamp(centroid + 0.5 * (x[worst] - centroid));
      const double y_c = f(contracted);
      ++evaluations;
      if (y_c > y[worst]) {
        x[worst] = contracted;
        y[worst] = y_c;
      } else {
        for (int i = 0; i <= n_dims; ++i)
          if (i != best) {
            x[i] = space.clamp(x[best] + 0.5 * (x[i] - x[best]));
            y[i] = f(x[i]);
            ++evaluations;
          }
      }
    }
  }
  const auto it = std::max_element(y.begin(), y.end());
  best_value = *it;
  return x[static_cast<std::size_t>(it - y.begin())];
}

/// Least-squares fit of a unit's spike-triggered MUAP `sta` (#channels x #window, column k at
/// offset first + k from the discharge) through the model: the model MUAP `model_muap`
/// (filtered, #samples x #channels) at every lag against the window, scaled by least squares;
/// the lag of the smallest residual wins. Returns the relative residual |sta - a m| / |sta| and
/// sets `scale` to the least-squares a; with `free_scale` false the residual is that of a = 1
/// (the model's own amplitude, which carries the fibre count). The cross-products of all lags
/// are the diagonals of one product sta^T m^T.
double fit_residual(const Eigen::MatrixXd& model_muap, const Eigen::MatrixXd& sta, double& scale,
                    bool free_scale) {
  const Eigen::Index n_m = model_muap.rows(), n_w = sta.cols();
  const double sta_norm2 = sta.squaredNorm();
  // g(k, j) = sum over channels of sta(ch, k) m(j, ch); lag = k - j.
  const Eigen::MatrixXd g = sta.transpose() * model_muap.transpose();
  // Prefix sums of the model's energy per sample.
  Eigen::VectorXd energy_prefix(n_m + 1);
  energy_prefix[0] = 0.0;
  for (Eigen::Index j = 0; j < n_m; ++j)
    energy_prefix[j + 1] = energy_prefix[j] + model_muap.row(j).squaredNorm();
  // The residual at one lag and its least-squares scale (nullopt where the windows do not
  // overlap).
  auto at_lag = [&](Eigen::Index lag) -> std::optional<std::pair<double, double>> {
    // Window column k holds model sample k - lag, for k in [k0, k1).
    const Eigen::Index k0 = std::max<Eigen::Index>(0, lag);
    const Eigen::Index k1 = std::min<Eigen::Index>(n_w, lag + n_m);
    if (k1 <= k0)
      return std::nullopt;
    const double mm = energy_prefix[k1 - lag] - energy_prefix[k0 - lag];
    if (!(mm > 0.0))
      return std::nullopt;
    double sm = 0.0;
    for (Eigen::Index k = k0; k < k1; ++k)
      sm += g(k, k - lag);
    const double a = sm / mm;
    // |sta - a m|^2 with m zero outside the window.
    return std::pair{free_scale ? sta_norm2 - a * sm : sta_norm2 - 2.0 * sm + mm, a};
  };
  double best = std::numeric_limits<double>::infinity();
  Eigen::Index best_lag = 0;
  scale = 0.0;
  for (Eigen::Index lag = -n_m + 1; lag < n_w; ++lag)
    if (const auto r = at_lag(lag); r && r->first < best) {
      best = r->first;
      best_lag = lag;
      scale = r->second;
    }
  // Between samples: the minimum of the parabola through the residuals at the best lag and its
  // two neighbours. The discharges (and so the window) are on the sample grid while the unit's
  // activation is not; without this the residual steps with the lag, and the CV, which moves
  // the MUAP's features in time, would absorb part of the step.
  const auto before = at_lag(best_lag - 1), after = at_lag(best_lag + 1);
  if (before && after) {
    const double curvature = before->first - 2.0 * best + after->first;
    if (curvature > 0.0) {
      const double slope = 0.5 * (after->first - before->first);
      const double delta = std::clamp(-slope / curvature, -0.5, 0.5);
      best += slope * delta + 0.5 * curvature * delta * delta;
      scale += delta * (delta > 0.0 ? after->second - scale : scale - before->second);
    }
  }
  return std::sqrt(std::max(0.0, best) / sta_norm2);
}

/// The search space of `muscle` under `model`: candidates near the muscle's fibre seeds, sizes
/// within params' bounds (0: the pool's range), territory radius r = c sqrt(N) with c the pool's
/// median r / sqrt(N). \throws BadInput for a pool without fibres or size bounds that exclude it.
SearchSpace make_space(const forward::MuapModel& model, const anatomy::MuscleModel& muscle,
                       const BmissParams& params) {
  SearchSpace space;
  space.cell_size_m = model.params().cell_size_m;
  const auto& b = model.bounds();
  // Candidates sit near the muscle's fibre seeds (probes pick a seed, then a point within a
  // cell of it; a point farther than a cell from every seed is outside the muscle).
  space.cells.resize(static_cast<Eigen::Index>(muscle.fibres.fibres.size()), 2);
  for (std::size_t i = 0; i < muscle.fibres.fibres.size(); ++i)
    space.cells.row(static_cast<Eigen::Index>(i)) = muscle.fibres.fibres[i].seed_2d_m.transpose();
  double n_min = params.size_min_fibres, n_max = params.size_max_fibres;
  std::vector<double> ratio;
  double pool_min = std::numeric_limits<double>::infinity(), pool_max = 0.0;
  for (const auto& u : muscle.pool.units)
    if (u.n_fibres > 0.0) {
      pool_min = std::min(pool_min, u.n_fibres);
      pool_max = std::max(pool_max, u.n_fibres);
      ratio.push_back(u.territory_radius_m / std::sqrt(u.n_fibres));
    }
  if (ratio.empty())
    throw BadInput("invert: muscle \"" + muscle.geometry.name +
                   "\" has no motor units with fibres");
  std::nth_element(ratio.begin(), ratio.begin() + static_cast<std::ptrdiff_t>(ratio.size() / 2),
                   ratio.end());
  space.radius_per_sqrt_fibre = ratio[ratio.size() / 2];
  if (!(n_min > 0.0))
    n_min = pool_min;
  if (!(n_max > 0.0))
    n_max = pool_max;
  if (n_min > pool_max || n_max < pool_min)
    throw BadInput("invert: size bounds [" + format_number(n_min) + ", " + format_number(n_max) +
                   "] fibres (invert.size_min_fibres, size_max_fibres) exclude every motor unit "
                   "of muscle \"" +
                   muscle.geometry.name + "\" (its units have " + format_number(pool_min) + " to " +
                   format_number(pool_max) + " fibres)");
  space.lo << b.centre_min_m.x(), b.centre_min_m.y(), std::log(n_min), b.end_plate_shift_min_m,
      params.cv_min_m_per_s;
  space.hi << b.centre_max_m.x(), b.centre_max_m.y(), std::log(std::max(n_max, n_min * 1.0001)),
      b.end_plate_shift_max_m, params.cv_max_m_per_s;
  return space;
}

/// A candidate unit: the muscle it lies in (an index into the muscles searched: a discrete
/// parameter) and its point in that muscle's space.
struct Candidate {
  std::size_t muscle = 0;
  Point p = Point::Zero();
};

/// The search spaces of every muscle searched. A probe draws one fibre seed among all muscles'
/// seeds together (the first Halton coordinate), so that each muscle gets probes in proportion
/// to its model fibres, i.e. to its section; with one muscle the sequence is that muscle's own.
struct MuscleSpaces {
  std::vector<SearchMuscle> muscles;
  std::vector<SearchSpace> spaces;
  std::vector<Eigen::Index> first_seed; ///< muscle m's seeds are [first_seed[m], first_seed[m+1])

  [[nodiscard]] Candidate probe(std::uint64_t k) const {
    const Eigen::Index total = first_seed.back();
    const auto c = std::min<Eigen::Index>(
        total - 1, static_cast<Eigen::Index>(halton(k, 2) * static_cast<double>(total)));
    const auto m = static_cast<std::size_t>(
        std::upper_bound(first_seed.begin(), first_seed.end(), c) - first_seed.begin() - 1);
    return {m, spaces[m].probe_at(k, c - first_seed[m])};
  }

  /// More than a cell from every fibre seed of its muscle.
  [[nodiscard]] bool outside(const Candidate& c) const {
    const SearchSpace& s = spaces[c.muscle];
    return s.outside_m(c.p) > s.cell_size_m;
  }

  [[nodiscard]] forward::UnitParameters theta(const Candidate& c) const {
    return spaces[c.muscle].theta(c.p);
  }

  [[nodiscard]] Eigen::MatrixXd muap(const Candidate& c) const {
    return muscles[c.muscle].model->muap(theta(c));
  }

  [[nodiscard]] const forward::MuapModel& model() const { return *muscles.front().model; }
};

/// The spaces of `muscles` (make_space() of each). \throws BadInput for no muscles, a missing
/// model or muscle, models of different channels or rates, and as make_space().
MuscleSpaces make_spaces(const std::vector<SearchMuscle>& muscles, const BmissParams& params) {
  if (muscles.empty())
    throw BadInput("invert: no muscles to search (expected at least one)");
  MuscleSpaces ms;
  ms.muscles = muscles;
  ms.first_seed.push_back(0);
  for (const auto& m : muscles) {
    if (m.model == nullptr || m.muscle == nullptr)
      throw BadInput("invert: a muscle to search has no MUAP model or anatomy");
    const auto& first = *muscles.front().model;
    if (m.model->n_channels() != first.n_channels() ||
        m.model->params().fs_Hz != first.params().fs_Hz)
      throw BadInput("invert: the MUAP model of muscle \"" + m.muscle->geometry.name + "\" has " +
                     std::to_string(m.model->n_channels()) + " channels at " +
                     format_number(m.model->params().fs_Hz) + " Hz, that of \"" +
                     muscles.front().muscle->geometry.name + "\" " +
                     std::to_string(first.n_channels()) + " at " +
                     format_number(first.params().fs_Hz) + " Hz: expected the same electrodes");
    ms.spaces.push_back(make_space(*m.model, *m.muscle, params));
    ms.first_seed.push_back(ms.first_seed.back() + ms.spaces.back().cells.rows());
  }
  return ms;
}

/// fit_properties() in `ms`: probes over every muscle, Nelder-Mead within the muscle of each
/// start.
FittedProperties fit_properties(const Eigen::MatrixXd& sta, const MuscleSpaces& ms,
                                const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                                const BmissParams& params) {
  const auto& filter = params.separation.preprocess;
  const double fs = ms.model().params().fs_Hz;
  auto residual = [&](const Candidate& c) {
    if (ms.outside(c))
      return -1e9;
    double scale = 0.0;
    const Eigen::MatrixXd m = band_passed_muap(ms.muap(c), fs, filter);
    return -fit_residual(m, sta, scale, params.fit_free_scale);
  };
  // A global probe of the bounds, then Nelder-Mead from the best distinct probes.
  std::vector<std::pair<double, Candidate>> probes;
  for (std::int64_t k = 0; k < params.n_fit_probe; ++k) {
    const Candidate c = ms.probe(static_cast<std::uint64_t>(k + 1));
    probes.emplace_back(-residual(c), c);
  }
  std::sort(probes.begin(), probes.end(),
            [](const auto& a, const auto& c) { return a.first < c.first; });
  std::vector<std::pair<double, Candidate>> fits;
  for (const auto& [res, start] : probes) {
    if (static_cast<std::int64_t>(fits.size()) >= params.n_fit_starts)
      break;
    (void)res;
    double value = 0.0;
    const std::size_t m = start.muscle;
    const SearchSpace& space = ms.spaces[m];
    const Point best = nelder_mead(
        [&](const Point& p) {
          return residual({m, p});
        },
        start.p, space.step(), params.nelder_mead_evaluations * 2, space, value);
    fits.emplace_back(-value, Candidate{m, best});
  }
  std::sort(fits.begin(), fits.end(),
            [](const auto& a, const auto& c) { return a.first < c.first; });
  FittedProperties fp;
  const Candidate& best = fits.front().second;
  const SearchSpace& space = ms.spaces[best.muscle];
  const anatomy::MuscleModel& muscle = *ms.muscles[best.muscle].muscle;
  fp.muscle = best.muscle;
  fp.theta = space.theta(best.p);
  const Eigen::MatrixXd m = band_passed_muap(ms.muap(best), fs, filter);
  fp.relative_residual = fit_residual(m, sta, fp.amplitude_scale, params.fit_free_scale);
  // Spread over the starts in the best's muscle within 10 % of the best residual.
  Point mean = Point::Zero(), square = Point::Zero();
  int n_near = 0;
  for (const auto& [res, c] : fits)
    if (c.muscle == best.muscle && res <= 1.1 * fits.front().first + 1e-12) {
      Point q = c.p;
      q[2] = std::exp(c.p[2]);
      mean += q;
      square += q.cwiseAbs2();
      ++n_near;
    }
  mean /= n_near;
  const Point sd = (square / n_near - mean.cwiseAbs2()).cwiseMax(Point::Zero()).cwiseSqrt();
  fp.spread.centre_m = sd.head<2>();
  fp.spread.n_fibres = sd[2];
  fp.spread.radius_m = space.radius_per_sqrt_fibre * sd[2] / (2.0 * std::sqrt(fp.theta.n_fibres));
  fp.spread.end_plate_shift_m = sd[3];
  fp.spread.end_plate_spread_m = 0.0;
  fp.spread.cv_m_per_s = sd[4];
  const Eigen::Vector3d centre = muscle.fibres.plane_centre_m +
                                 fp.theta.centre_m.x() * muscle.fibres.plane_e1 +
                                 fp.theta.centre_m.y() * muscle.fibres.plane_e2;
  fp.depth_m =
      skin_points_m.rows() > 0
          ? std::sqrt(
                (skin_points_m.rowwise() - centre.transpose()).rowwise().squaredNorm().minCoeff())
          : std::numeric_limits<double>::quiet_NaN();
  return fp;
}

} // namespace

DecomposeParams separation_space(const BmissParams& params) {
  DecomposeParams p = params.separation;
  if (params.extension_factor > 0)
    p.extension_factor = params.extension_factor;
  return p;
}

BmissParams read_bmiss_params(ConfigReader& s, const DecomposeParams& separation) {
  BmissParams p;
  p.separation = separation;
  p.n_iterations = s.optional<std::int64_t>(
      "n_iterations", p.n_iterations, int_in_range(1, 1000),
      "iterations of probe, refinement and hand-over of the model-informed search");
  p.n_probe = s.optional<std::int64_t>(
      "n_probe", p.n_probe, int_in_range(1, 10000000),
      "quasi-random (Halton) candidate units probed through the MUAP model per iteration");
  p.n_refine = s.optional<std::int64_t>(
      "n_refine", p.n_refine, int_in_range(0, 10000),
      "best distinct candidates refined by Nelder-Mead and handed over per iteration");
  p.nelder_mead_evaluations = s.optional<std::int64_t>(
      "nelder_mead_evaluations", p.nelder_mead_evaluations, int_in_range(n_dims + 1, 100000),
      "score evaluations of the Nelder-Mead refinement of each refined candidate");
  p.n_fit_starts = s.optional<std::int64_t>(
      "n_fit_starts", p.n_fit_starts, int_in_range(1, 1000),
      "Nelder-Mead starts of the property fit of each accepted unit: its best probes");
  p.fit_free_scale = s.optional<bool>("fit_free_scale", p.fit_free_scale, {},
                                      "fit the MUAP amplitude freely (shape only, the fibre count "
                                      "is lost); false: the model's own volts");
  p.n_fit_probe = s.optional<std::int64_t>(
      "n_fit_probe", p.n_fit_probe, int_in_range(1, 1000000),
      "quasi-random points probed by the property fit of each unit; must be >= n_fit_starts");
  if (p.n_fit_probe < p.n_fit_starts)
    s.fail("n_fit_probe", "expected >= n_fit_starts (" + std::to_string(p.n_fit_starts) +
                              "), got " + std::to_string(p.n_fit_probe));
  p.handover_fixed_point = s.optional<std::int64_t>(
      "handover_fixed_point", p.handover_fixed_point, int_in_range(0, 10000),
      "fixed-point iterations at most when a candidate is handed over; 0: CoV-of-ISI refinement "
      "only");
  p.handover_retry = s.optional<bool>(
      "handover_retry", p.handover_retry, {},
      "retry a failed hand-over from the same vector with the full blind fixed-point iterations");
  p.extension_factor =
      s.optional<std::int64_t>("extension_factor", p.extension_factor, int_in_range(0, 1000),
                               "extension factor of a finer separation space for the hand-over; 0: "
                               "none (search space only)");
  p.cancellation = s.optional<bool>(
      "cancellation", p.cancellation, {},
      "subtract accepted units from the recording and whiten again after each iteration (slower)");
  p.size_min_fibres = s.optional<double>(
      "size_min_fibres", p.size_min_fibres, non_negative(),
      "smallest candidate unit size, in real fibres; 0: the smallest unit of the muscle's pool");
  p.size_max_fibres = s.optional<double>(
      "size_max_fibres", p.size_max_fibres, non_negative(),
      "largest candidate unit size, in real fibres; 0: the largest unit of the muscle's pool");
  p.cv_min_m_per_s = s.optional<double>("cv_min_m_per_s", p.cv_min_m_per_s, positive(),
                                        "smallest conduction velocity of a candidate unit");
  p.cv_max_m_per_s = s.optional<double>(
      "cv_max_m_per_s", p.cv_max_m_per_s, positive(),
      "largest conduction velocity of a candidate unit; must be >= cv_min_m_per_s");
  if (p.cv_max_m_per_s < p.cv_min_m_per_s)
    s.fail("cv_max_m_per_s", "expected >= cv_min_m_per_s (" + format_number(p.cv_min_m_per_s) +
                                 "), got " + format_number(p.cv_max_m_per_s));
  if (p.size_max_fibres > 0.0 && p.size_max_fibres < p.size_min_fibres)
    s.fail("size_max_fibres", "expected >= size_min_fibres (" + format_number(p.size_min_fibres) +
                                  "), got " + format_number(p.size_max_fibres));
  p.max_muscle_distance_m = units::mm_to_m(s.optional<double>(
      "max_muscle_distance_mm", units::m_to_mm(p.max_muscle_distance_m), positive(),
      "a muscle is searched only when some of its fibres lie within this distance of an "
      "electrode [mm]; a muscle list none of which is that close is refused"));
  p.muscles = s.optional<std::vector<std::string>>(
      "muscles", p.muscles, {},
      "muscles searched, by name (a unit's muscle is a parameter of the search); empty: those of "
      "simulate.muscles, or every muscle of the anatomy when that is empty too");
  return p;
}

nlohmann::json to_json(const BmissParams& p) {
  return {{"n_iterations", p.n_iterations},
          {"n_probe", p.n_probe},
          {"n_refine", p.n_refine},
          {"nelder_mead_evaluations", p.nelder_mead_evaluations},
          {"n_fit_starts", p.n_fit_starts},
          {"n_fit_probe", p.n_fit_probe},
          {"fit_free_scale", p.fit_free_scale},
          {"handover_fixed_point", p.handover_fixed_point},
          {"handover_retry", p.handover_retry},
          {"extension_factor", p.extension_factor},
          {"cancellation", p.cancellation},
          {"size_min_fibres", p.size_min_fibres},
          {"size_max_fibres", p.size_max_fibres},
          {"cv_min_m_per_s", p.cv_min_m_per_s},
          {"cv_max_m_per_s", p.cv_max_m_per_s},
          {"max_muscle_distance_mm", 1e3 * p.max_muscle_distance_m},
          {"muscles", p.muscles}};
}

// Over the MUAP's samples the zero-phase filter is H m with H(t, j) = h(t - j), h the filter's
// response to an isolated impulse (|t - j| < #samples): one filtered impulse and an
// #samples^2 x #channels product instead of filtering every channel with a quarter second of
// zeros on both sides (the old way, 40 times the work).
Eigen::MatrixXd band_passed_muap(const Eigen::Ref<const Eigen::MatrixXd>& muap, double fs_Hz,
                                 const PreprocessParams& filter) {
  const Eigen::Index n = muap.rows();
  const auto pad = static_cast<Eigen::Index>(std::ceil(0.25 * fs_Hz));
  Eigen::MatrixXd impulse = Eigen::MatrixXd::Zero(1, 2 * (n + pad) + 1);
  impulse(0, n + pad) = 1.0;
  (void)filter_signals(impulse, fs_Hz, filter);
  Eigen::MatrixXd h(n, n);
  for (Eigen::Index t = 0; t < n; ++t)
    for (Eigen::Index j = 0; j < n; ++j)
      h(t, j) = impulse(0, n + pad + t - j);
  return h * muap;
}

Eigen::VectorXd whitened_column(const Eigen::Ref<const Eigen::MatrixXd>& muap,
                                const WhitenedEmg& data, const PreprocessParams& filter) {
  const Eigen::MatrixXd m = band_passed_muap(muap, data.fs_Hz, filter);
  const auto& kept = data.preprocessing.kept;
  const Eigen::Index r = data.extension_factor;
  // The delay d* whose R-sample window [d* - R + 1, d*] holds the most energy.
  Eigen::VectorXd energy = Eigen::VectorXd::Zero(m.rows());
  for (const auto c : kept)
    energy += m.col(static_cast<Eigen::Index>(c)).cwiseAbs2();
  Eigen::Index best_d = 0;
  double best_e = -1.0, window = 0.0;
  for (Eigen::Index d = 0; d < m.rows() + r - 1; ++d) {
    if (d < m.rows())
      window += energy[d];
    if (d - r >= 0)
      window -= energy[d - r];
    if (window > best_e) {
      best_e = window;
      best_d = d;
    }
  }
  Eigen::VectorXd column(static_cast<Eigen::Index>(kept.size()) * r);
  for (std::size_t i = 0; i < kept.size(); ++i)
    for (Eigen::Index k = 0; k < r; ++k) {
      const Eigen::Index t = best_d - k;
      column[static_cast<Eigen::Index>(i) * r + k] =
          t >= 0 && t < m.rows() ? m(t, static_cast<Eigen::Index>(kept[i])) : 0.0;
    }
  return data.whiten * column;
}

CandidateScore score_muap(const Eigen::Ref<const Eigen::MatrixXd>& muap, const WhitenedEmg& data,
                          const std::vector<Eigen::VectorXd>& basis,
                          const PreprocessParams& filter) {
  CandidateScore out;
  Eigen::VectorXd w = whitened_column(muap, data, filter);
  for (const auto& b : basis)
    w -= b.dot(w) * b;
  const double norm = w.norm();
  if (!(norm > 0.0) || !std::isfinite(norm))
    return out;
  w /= norm;
  out.kurtosis = excess_kurtosis(project(data.z, w), data.excluded);
  out.w = std::move(w);
  return out;
}

std::vector<std::int64_t> peaks_above(const Eigen::Ref<const Eigen::VectorXd>& s, double fraction,
                                      std::int64_t min_distance) {
  std::vector<std::int64_t> candidates;
  if (s.size() == 0)
    return candidates;
  const double threshold = fraction * s.maxCoeff();
  for (Eigen::Index k = 0; k < s.size(); ++k)
    if (s[k] > threshold && (k == 0 || s[k] > s[k - 1]) && (k + 1 == s.size() || s[k] >= s[k + 1]))
      candidates.push_back(k);
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](std::int64_t a, std::int64_t b) { return s[a] > s[b]; });
  std::vector<std::int64_t> kept;
  std::vector<char> blocked(static_cast<std::size_t>(s.size()), 0);
  for (const std::int64_t k : candidates) {
    if (blocked[static_cast<std::size_t>(k)])
      continue;
    kept.push_back(k);
    const std::int64_t lo = std::max<std::int64_t>(0, k - min_distance + 1);
    const std::int64_t hi = std::min<std::int64_t>(s.size() - 1, k + min_distance - 1);
    for (std::int64_t j = lo; j <= hi; ++j)
      blocked[static_cast<std::size_t>(j)] = 1;
  }
  std::sort(kept.begin(), kept.end());
  return kept;
}

std::optional<Verdict> hand_over(const Eigen::VectorXd& w, std::int64_t iteration,
                                 WhitenedEmg& data, AcceptedUnits& accepted,
                                 const BmissParams& params, DecomposeStats& stats,
                                 std::vector<HandedOver>* record) {
  // The model's vector is already close to the unit: a few fixed-point steps only, so that the
  // source does not drift to another unit or an outlier, then the CoV-of-ISI refinement; when
  // that fails acceptance, the full fixed-point iterations from the same vector.
  DecomposeParams handover = params.separation;
  const std::int64_t full = handover.max_fixed_point_iterations;
  std::optional<Verdict> verdict;
  for (const std::int64_t steps : {std::min(full, params.handover_fixed_point), full}) {
    handover.max_fixed_point_iterations = steps;
    SeparatedSource source = separate_from(data, w, accepted.vectors(), handover);
    if (source.w.size() == 0)
      return std::nullopt;
    ++stats.n_candidates;
    if (record != nullptr)
      record->push_back(
          {iteration, peaks_above(source.s, 0.3,
                                  std::max<std::int64_t>(
                                      1, std::llround(params.separation.min_peak_distance_ms *
                                                      1e-3 * data.fs_Hz)))});
    const double sil = source.detection.sil, cov = source.cov_isi_local;
    const auto n_d = source.detection.discharges.size();
    verdict = accepted.offer(std::move(source), iteration, data, params.separation, stats);
    log_debug("invert: hand-over (", steps, " fixed-point steps): ", n_d, " discharges, SIL ",
              format_number(sil), ", local CoV ", format_number(cov), ", verdict ",
              static_cast<int>(*verdict));
    const bool rejected = *verdict == Verdict::few_discharges || *verdict == Verdict::low_sil ||
                          *verdict == Verdict::irregular;
    if (!rejected || !params.handover_retry || steps == full)
      break;
  }
  return verdict;
}

namespace {

/// Checks that `recording` has the forward model's channels and sampling rate.
/// \throws BadInput otherwise.
void check_against_model(const forward::EmgRecording& recording, const forward::MuapModel& model) {
  if (model.n_channels() != recording.emg.rows())
    throw BadInput(recording.source.string() + ": " + std::to_string(recording.emg.rows()) +
                   " channels, but the subject's forward model has " +
                   std::to_string(model.n_channels()) +
                   " electrodes: the EMG must come from the config's electrodes, in order");
  if (std::abs(model.params().fs_Hz - recording.fs_Hz) > 1e-9 * recording.fs_Hz)
    throw BadInput(recording.source.string() + ": sampled at " + format_number(recording.fs_Hz) +
                   " Hz, the MUAP model at " + format_number(model.params().fs_Hz) +
                   " Hz (set muap_model.fs_Hz)");
}

/// The whitened EMG of an inversion: the search space (the decompose extension) and, when
/// finer, the separation space; the half width of the peel-off window [samples]; and the
/// search space's orthonormal spike-triggered means of the units accepted in the separation
/// space (the deflation basis of the candidates when there are two spaces).
struct Spaces {
  WhitenedEmg data;
  std::optional<WhitenedEmg> fine;
  std::int64_t peel_half = 0;
  std::vector<Eigen::VectorXd> search_basis;
  /// The space in which sources are separated and units accepted.
  WhitenedEmg& separation() { return fine ? *fine : data; }
};

/// Whitens `recording` in the search space and, when params ask for a finer extension, in the
/// separation space too (its whitening counted in `stats`).
Spaces whiten_spaces(const forward::EmgRecording& recording, const BmissParams& params,
                     DecomposeStats& stats) {
  Spaces s;
  s.data = whiten_emg(recording, params.separation, stats);
  if (params.extension_factor > 0 && params.extension_factor != s.data.extension_factor) {
    DecomposeStats fine_stats;
    s.fine = whiten_emg(recording, separation_space(params), fine_stats);
    stats.n_whitened = fine_stats.n_whitened;
    stats.time_whiten_s += fine_stats.time_whiten_s;
    log_info("invert: search space R = ", s.data.extension_factor, " (", s.data.z.rows(),
             " whitened dimensions), separation space R = ", s.fine->extension_factor, " (",
             s.fine->z.rows(), ")");
  }
  s.peel_half = std::llround(params.separation.peel_off_window_ms / 2.0 * 1e-3 * s.data.fs_Hz);
  return s;
}

/// The deflation basis of the candidates: the accepted units in the search space (with one
/// space, the accepted units' own vectors).
std::vector<Eigen::VectorXd> search_vectors(const Spaces& spaces, const AcceptedUnits& accepted) {
  return spaces.fine ? spaces.search_basis : accepted.vectors();
}

/// Removes a unit accepted in the separation space from the search space too: its
/// spike-triggered mean joins the search basis, and it is peeled off.
void remove_from_search(const std::vector<std::int64_t>& discharges, const BmissParams& params,
                        Spaces& spaces) {
  Eigen::VectorXd v = spike_triggered_mean(spaces.data.z, discharges);
  for (const auto& q : spaces.search_basis)
    v -= q.dot(v) * q;
  if (v.norm() > 0.0)
    spaces.search_basis.push_back(v.normalized());
  if (params.separation.peel_off)
    peel_off(spaces.data.z, discharges, spaces.peel_half);
}

/// What the candidates of an inversion are scored with: the MUAP models and search spaces of
/// the muscles, and the parameters.
struct Search {
  const MuscleSpaces& spaces;
  const BmissParams& params;

  /// score_muap() of the candidate `c` in `data`, deflated by `basis`; candidates outside
  /// their muscle (more than a cell from every fibre seed) score -3.
  [[nodiscard]] CandidateScore score(const Candidate& c, const WhitenedEmg& data,
                                     const std::vector<Eigen::VectorXd>& basis) const {
    if (spaces.outside(c))
      return CandidateScore{};
    return score_muap(spaces.muap(c), data, basis, params.separation.preprocess);
  }
};

/// Probed candidates with their kurtosis, and their indices best first.
struct Probes {
  std::vector<Candidate> points;
  std::vector<double> scores;
  std::vector<std::size_t> order;
};

/// Step 1: scores n_probe candidates of the probe sequence from `probe_index` on (advanced past
/// them), in parallel (each score is independent).
Probes probe_candidates(const Search& search, const WhitenedEmg& data,
                        const std::vector<Eigen::VectorXd>& basis, std::uint64_t& probe_index) {
  const BmissParams& params = search.params;
  Probes probes;
  std::vector<Candidate>& points = probes.points;
  std::vector<double>& scores = probes.scores;
  points.resize(static_cast<std::size_t>(params.n_probe));
  scores.resize(points.size());
  for (std::size_t k = 0; k < points.size(); ++k)
    points[k] = search.spaces.probe(probe_index++);
#pragma omp parallel for schedule(dynamic, 4)
  for (std::int64_t k = 0; k < params.n_probe; ++k)
    scores[static_cast<std::size_t>(k)] =
        search.score(points[static_cast<std::size_t>(k)], data, basis).kurtosis;
  probes.order.resize(points.size());
  std::iota(probes.order.begin(), probes.order.end(), 0);
  std::sort(probes.order.begin(), probes.order.end(), [&](std::size_t a, std::size_t c) {
    return scores[a] > scores[c] || (scores[a] == scores[c] && a < c);
  });
  return probes;
}

/// Step 2: refines the best distinct candidates (in different muscles, or centres at least a
/// cell apart; at most n_refine) by Nelder-Mead on the kurtosis within their muscle, in
/// parallel.
std::vector<Candidate> refine_candidates(const Search& search, const WhitenedEmg& data,
                                         const std::vector<Eigen::VectorXd>& basis,
                                         const Probes& probes) {
  const BmissParams& params = search.params;
  std::vector<Candidate> chosen;
  for (const auto k : probes.order) {
    if (static_cast<std::int64_t>(chosen.size()) >= params.n_refine)
      break;
    const Candidate& p = probes.points[k];
    const bool distinct = std::none_of(chosen.begin(), chosen.end(), [&](const Candidate& c) {
      return c.muscle == p.muscle &&
             (c.p.head<2>() - p.p.head<2>()).norm() < search.spaces.spaces[c.muscle].cell_size_m;
    });
    if (distinct)
      chosen.push_back(p);
  }
  std::vector<Candidate> refined(chosen.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t k = 0; k < static_cast<std::int64_t>(chosen.size()); ++k) {
    const Candidate& start = chosen[static_cast<std::size_t>(k)];
    const std::size_t m = start.muscle;
    const SearchSpace& space = search.spaces.spaces[m];
    double value = 0.0;
    refined[static_cast<std::size_t>(k)] = {
        m, nelder_mead(
               [&](const Point& p) {
                 return search.score({m, p}, data, basis).kurtosis;
               },
               start.p, space.step(), params.nelder_mead_evaluations, space, value)};
  }
  return refined;
}

/// Step 3: hands the refined candidates over to the refinement in the separation space, in
/// order: the model's separation vector itself (one space), or the spike-triggered mean of the
/// separation space at the discharges of the model's source (two spaces). Returns the discharge
/// trains of the units accepted.
std::vector<std::vector<std::int64_t>>
hand_over_candidates(const Search& search, const std::vector<Candidate>& refined, std::int64_t it,
                     Spaces& spaces, AcceptedUnits& accepted, DecomposeStats& stats,
                     std::vector<HandedOver>& record) {
  const BmissParams& params = search.params;
  std::vector<std::vector<std::int64_t>> new_trains;
  for (const auto& p : refined) {
    const CandidateScore c = search.score(p, spaces.data, search_vectors(spaces, accepted));
    if (c.w.size() == 0)
      continue;
    Eigen::VectorXd w = c.w;
    if (spaces.fine) {
      DecomposeParams coarse = params.separation;
      coarse.max_fixed_point_iterations =
          std::min<std::int64_t>(coarse.max_fixed_point_iterations, params.handover_fixed_point);
      const SeparatedSource source = separate_from(spaces.data, c.w, spaces.search_basis, coarse);
      if (source.detection.discharges.size() < 2)
        continue;
      w = spike_triggered_mean(spaces.separation().z, source.detection.discharges);
    }
    const std::size_t before = accepted.size();
    const auto v = hand_over(w, it, spaces.separation(), accepted, params, stats, &record);
    log_debug("invert: candidate kurtosis ", format_number(c.kurtosis), ", verdict ",
              v ? static_cast<int>(*v) : -1);
    if (v == Verdict::accepted && accepted.size() > before) {
      new_trains.push_back(accepted.unit(accepted.size() - 1).discharges);
      if (spaces.fine)
        remove_from_search(new_trains.back(), params, spaces);
    }
  }
  return new_trains;
}

/// Step 4: successive cancellation of the accepted units, in both spaces (the search basis
/// emptied).
void cancel_units(const BmissParams& params, Spaces& spaces, AcceptedUnits& accepted,
                  DecomposeStats& stats) {
  (void)accepted.cancel(spaces.separation(), params.separation, stats);
  if (spaces.fine) {
    std::vector<std::vector<std::int64_t>> all;
    for (std::size_t k = 0; k < accepted.size(); ++k)
      all.push_back(accepted.unit(k).discharges);
    (void)cancel_trains(
        spaces.data, all, spaces.peel_half,
        std::max<std::int64_t>(
            1, std::llround(params.separation.min_peak_distance_ms * 1e-3 * spaces.data.fs_Hz)),
        stats);
    spaces.search_basis.clear();
  }
}

/// Iteration `it` of the model-informed separation: probe, refine, hand over, cancel this
/// iteration's units; returns its statistics.
BmissIteration run_iteration(const Search& search, std::int64_t it, std::uint64_t& probe_index,
                             Spaces& spaces, AcceptedUnits& accepted, DecomposeStats& stats,
                             std::vector<HandedOver>& record) {
  const BmissParams& params = search.params;
  Stopwatch watch;
  BmissIteration stat;
  const std::vector<Eigen::VectorXd> basis = search_vectors(spaces, accepted);
  // 1. Probe.
  const Probes probes = probe_candidates(search, spaces.data, basis, probe_index);
  stat.n_probed = params.n_probe;
  stat.best_score = probes.order.empty() ? -3.0 : probes.scores[probes.order.front()];
  // 2. Refine.
  const std::vector<Candidate> refined = refine_candidates(search, spaces.data, basis, probes);
  stat.n_refined = static_cast<std::int64_t>(refined.size());
  // 3. Hand-over.
  const auto new_trains =
      hand_over_candidates(search, refined, it, spaces, accepted, stats, record);
  stat.n_accepted = static_cast<std::int64_t>(new_trains.size());
  // 4. Successive cancellation of this iteration's units.
  if (params.cancellation && !new_trains.empty() && it + 1 < params.n_iterations)
    cancel_units(params, spaces, accepted, stats);
  stat.n_units_total = static_cast<std::int64_t>(accepted.size());
  stat.time_s = watch.elapsed_s();
  log_info("invert: iteration ", it + 1, "/", params.n_iterations, ": best kurtosis ",
           format_number(stat.best_score), ", ", stat.n_accepted, " new units (",
           stat.n_units_total, " in all), ", format_number(stat.time_s), " s");
  return stat;
}

/// The properties of each unit: least squares through the models from several starts, in
/// parallel over units.
std::vector<FittedProperties>
fit_unit_properties(const std::vector<MotorUnit>& units, const MuscleSpaces& ms,
                    const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                    const BmissParams& params) {
  std::vector<FittedProperties> properties(units.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t ui = 0; ui < static_cast<std::int64_t>(units.size()); ++ui)
    properties[static_cast<std::size_t>(ui)] =
        fit_properties(units[static_cast<std::size_t>(ui)].muap, ms, skin_points_m, params);
  return properties;
}

} // namespace

BmissResult invert(const forward::EmgRecording& recording, const forward::MuapModel& model,
                   const anatomy::MuscleModel& muscle,
                   const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                   const BmissParams& params, const ProgressCallback& progress) {
  return invert(recording, {SearchMuscle{&model, &muscle}}, skin_points_m, params, progress);
}

BmissResult invert(const forward::EmgRecording& recording, const std::vector<SearchMuscle>& muscles,
                   const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                   const BmissParams& params, const ProgressCallback& progress) {
  const MuscleSpaces ms = make_spaces(muscles, params);
  check_against_model(recording, ms.model());
  validate(params.separation);
  BmissResult result;
  DecomposeStats stats;
  // The search space (the decompose extension) and, when finer, the separation space.
  Spaces spaces = whiten_spaces(recording, params, stats);
  const Search search{ms, params};

  // Iterations of probe, refine, hand-over and cancellation.
  AcceptedUnits accepted;
  ProgressReporter report(progress, "model-informed separation (iterations)",
                          static_cast<std::size_t>(params.n_iterations));
  std::uint64_t probe_index = 1;
  for (std::int64_t it = 0; it < params.n_iterations; ++it) {
    result.iterations.push_back(
        run_iteration(search, it, probe_index, spaces, accepted, stats, result.handed_over));
    report.advance();
  }
  report.finish();
  result.decomposition = accepted.finish(spaces.separation(), separation_space(params), stats);

  // Properties: least squares through the model from several starts.
  result.properties = fit_unit_properties(result.decomposition.units, ms, skin_points_m, params);
  return result;
}

namespace {

/// The checks of the MUAP `sta` given to `who` (fit_properties() or model_residual()).
void check_muap(const char* who, const Eigen::MatrixXd& sta, const forward::MuapModel& model) {
  if (sta.rows() != model.n_channels())
    throw BadInput(
        std::string(who) + ": the MUAP has " + std::to_string(sta.rows()) +
        " channels, but the forward model has " + std::to_string(model.n_channels()) +
        " electrodes: expected #channels x #window samples, channels in the model's order");
  if (sta.cols() == 0 || !sta.allFinite() || !(sta.squaredNorm() > 0.0))
    throw BadInput(std::string(who) + ": the MUAP (" + std::to_string(sta.rows()) + " x " +
                   std::to_string(sta.cols()) +
                   ") is empty, zero or not finite: expected a MUAP in volts");
}

} // namespace

FittedProperties fit_properties(const Eigen::MatrixXd& sta, const forward::MuapModel& model,
                                const anatomy::MuscleModel& muscle,
                                const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                                const BmissParams& params) {
  check_muap("fit_properties", sta, model);
  if (params.n_fit_starts < 1 || params.n_fit_probe < params.n_fit_starts)
    throw BadInput("fit_properties: n_fit_starts = " + std::to_string(params.n_fit_starts) +
                   " and n_fit_probe = " + std::to_string(params.n_fit_probe) +
                   ": expected 1 <= n_fit_starts <= n_fit_probe");
  return fit_properties(sta, make_spaces({SearchMuscle{&model, &muscle}}, params), skin_points_m,
                        params);
}

FittedProperties fit_properties(const Eigen::MatrixXd& sta,
                                const std::vector<SearchMuscle>& muscles,
                                const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                                const BmissParams& params) {
  const MuscleSpaces ms = make_spaces(muscles, params);
  check_muap("fit_properties", sta, ms.model());
  if (params.n_fit_starts < 1 || params.n_fit_probe < params.n_fit_starts)
    throw BadInput("fit_properties: n_fit_starts = " + std::to_string(params.n_fit_starts) +
                   " and n_fit_probe = " + std::to_string(params.n_fit_probe) +
                   ": expected 1 <= n_fit_starts <= n_fit_probe");
  return fit_properties(sta, ms, skin_points_m, params);
}

double model_residual(const Eigen::MatrixXd& sta, const forward::MuapModel& model,
                      const anatomy::MuscleModel& muscle, const forward::UnitParameters& theta,
                      const BmissParams& params, bool as_searched) {
  check_muap("model_residual", sta, model);
  forward::UnitParameters t = theta;
  if (as_searched) {
    const SearchSpace space = make_space(model, muscle, params);
    t = space.theta(space.point(theta));
  }
  double scale = 0.0;
  const Eigen::MatrixXd m =
      band_passed_muap(model.muap(t), model.params().fs_Hz, params.separation.preprocess);
  return fit_residual(m, sta, scale, params.fit_free_scale);
}

RunEstimate estimate_invert(double n_rows, double n_samples,
                            const std::vector<const anatomy::MuscleModel*>& muscles,
                            Eigen::Index n_channels, const forward::MuapModelParams& model_params,
                            const BmissParams& params, int threads) {
  // Constants measured on 2 cores (docs/reliability.md, "Time estimates").
  constexpr double model_s_per_fibre_channel_pass = 4.2e-5;
  constexpr double source_s_per_value = 2e-10; // one probe's source: whitened dims x samples
  constexpr double handover_s_per_value = 1.3e-8;
  // The models are built one at a time: the peak is the kept models and the largest excess.
  forward::MuapModel::MemoryEstimate model;
  double excess = 0.0, n_fibres = 0.0;
  std::string names;
  for (const auto* muscle : muscles) {
    const auto m = forward::MuapModel::estimate_memory(muscle->fibres, n_channels, model_params);
    model.kept_bytes += m.kept_bytes;
    excess = std::max(excess, m.peak_bytes - m.kept_bytes);
    n_fibres += static_cast<double>(muscle->fibres.fibres.size());
    names += (names.empty() ? "" : ", ") + muscle->geometry.name;
  }
  model.peak_bytes = model.kept_bytes + excess;
  const DecomposeParams& separation = params.separation;
  RunEstimate e = estimate_decompose(n_rows, n_samples, separation, threads);
  const auto gib = [](double bytes) {
    return format_number(std::round(bytes / 1073741824.0 * 1e3) / 1e3) + " GiB";
  };
  const auto r = static_cast<double>(extension_factor_for(n_rows, separation));
  const double n_ext = n_rows * r;
  const double whiten_s = 3e-10 * n_ext * n_ext * n_samples;
  const double model_s = model_s_per_fibre_channel_pass * n_fibres *
                         static_cast<double>(n_channels) * (model_params.n_end_plate_shifts + 2.0);
  const double iterations = static_cast<double>(params.n_iterations);
  const double probes_s =
      iterations *
      static_cast<double>(params.n_probe + params.n_refine * params.nelder_mead_evaluations) *
      source_s_per_value * n_ext * n_samples;
  const double handovers_s =
      iterations * static_cast<double>(params.n_refine) * handover_s_per_value * n_ext * n_samples;
  e.seconds = model_s + whiten_s + probes_s + handovers_s;
  e.time_parts = "MUAP model " + format_duration(model_s) + ", whitening " +
                 format_duration(whiten_s) + ", " + format_number(iterations) +
                 " iterations of probes " + format_duration(probes_s) + " and hand-overs " +
                 format_duration(handovers_s) + "; then the property fit of each unit found";
  e.drivers = "MUAP model of " + names + ": " + format_number(n_fibres) + " model fibres x " +
              format_number(static_cast<double>(n_channels)) + " channels x " +
              format_number(model_params.n_end_plate_shifts) +
              " end-plate shifts (muap_model.cell_size_mm = " +
              format_number(model_params.cell_size_m * 1e3) +
              ", muap_model.model_fs_Hz = " + format_number(model_params.model_fs_Hz) + ") " +
              gib(model.peak_bytes) + " while it is built, " + gib(model.kept_bytes) +
              " kept; invert.n_iterations " + format_number(iterations) + ", n_probe " +
              format_number(static_cast<double>(params.n_probe)) + ", n_refine " +
              format_number(static_cast<double>(params.n_refine)) + "; separation: " + e.drivers;
  e.bytes = std::max(model.peak_bytes, model.kept_bytes + e.bytes);
  return e;
}

double distance_to_electrodes(const anatomy::MuscleFibres& fibres,
                              const Eigen::Ref<const Eigen::MatrixX3d>& electrodes_m) {
  // Per fibre, then the smallest (an exact minimum: any order gives the same bits).
  std::vector<double> nearest(fibres.fibres.size(), std::numeric_limits<double>::infinity());
  if (electrodes_m.rows() == 0)
    return std::numeric_limits<double>::infinity();
#pragma omp parallel for schedule(dynamic, 16)
  for (std::int64_t f = 0; f < static_cast<std::int64_t>(fibres.fibres.size()); ++f) {
    const auto& points = fibres.fibres[static_cast<std::size_t>(f)].points_m;
    double best = std::numeric_limits<double>::infinity();
    for (Eigen::Index k = 0; k < points.rows(); ++k)
      best = std::min(best,
                      (electrodes_m.rowwise() - points.row(k)).rowwise().squaredNorm().minCoeff());
    nearest[static_cast<std::size_t>(f)] = best;
  }
  const double d2 = nearest.empty() ? std::numeric_limits<double>::infinity()
                                    : *std::min_element(nearest.begin(), nearest.end());
  return std::sqrt(d2);
}

} // namespace myotwin::inversion
