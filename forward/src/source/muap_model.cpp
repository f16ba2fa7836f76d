#include "myotwin/forward/source/muap_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>
#include <set>

#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::forward {

namespace {

/// Gauss-Hermite nodes and weights (probabilists', 9 points: exact for polynomials of degree
/// 17 against the standard normal), for the end-plate distribution.
constexpr int n_hermite = 9;
constexpr double hermite_x[n_hermite] = {
    -4.512745863399783, -3.205429002856470, -2.076847978677830, -1.023255663789133, 0.0,
    1.023255663789133,  2.076847978677830,  3.205429002856470,  4.512745863399783};
constexpr double hermite_w[n_hermite] = {
    2.234584400774664e-05, 2.789141321231769e-03, 4.991640676521789e-02,
    2.440975028949394e-01, 4.063492063492064e-01, 2.440975028949394e-01,
    4.991640676521789e-02, 2.789141321231769e-03, 2.234584400774664e-05};

/// The quiet tail of all cell potentials: index of the last sample (over all shifts, cells
/// and channels) above `fraction` of the largest |value|, plus one.
Eigen::Index active_length(const std::vector<Eigen::MatrixXd>& per_shift, Eigen::Index n_samples,
                           Eigen::Index n_channels, double fraction) {
  double peak = 0.0;
  for (const auto& p : per_shift)
    peak = std::max(peak, p.cwiseAbs().maxCoeff());
  Eigen::Index last = 0;
  for (const auto& p : per_shift)
    for (Eigen::Index ch = 0; ch < n_channels; ++ch)
      for (Eigen::Index n = n_samples - 1; n > last; --n)
        if (p.row(ch * n_samples + n).cwiseAbs().maxCoeff() > fraction * peak) {
          last = n;
          break;
        }
  return last + 1;
}

/// The (row, column) of the square cell of side `cell_size_m` that holds each fibre's seed,
/// counted from the seeds' smallest coordinates.
std::vector<std::pair<long, long>> cell_squares(const anatomy::MuscleFibres& fibres,
                                                double cell_size_m) {
  Eigen::RowVector2d lo = Eigen::RowVector2d::Constant(std::numeric_limits<double>::infinity());
  for (const auto& f : fibres.fibres)
    lo = lo.cwiseMin(f.seed_2d_m.transpose());
  std::vector<std::pair<long, long>> square;
  square.reserve(fibres.fibres.size());
  for (const auto& f : fibres.fibres)
    square.emplace_back(static_cast<long>(std::floor((f.seed_2d_m[1] - lo[1]) / cell_size_m)),
                        static_cast<long>(std::floor((f.seed_2d_m[0] - lo[0]) / cell_size_m)));
  return square;
}

/// The precomputation's length of the cell potentials [samples]: until the longest fibre's
/// last wave is extinguished at the reference CV.
Eigen::Index model_sample_count(const anatomy::MuscleFibres& fibres,
                                const MuapModelParams& params) {
  double longest_m = 0.0;
  for (const auto& f : fibres.fibres)
    longest_m = std::max(longest_m, f.length_m);
  return muap_sample_count((longest_m + rosenfalck_cutoff_m) / params.reference_cv_m_per_s,
                           params.model_fs_Hz);
}

void check_finite_positive(double value, const char* name) {
  if (!(value > 0.0) || !std::isfinite(value))
    throw BadInput(std::string("MUAP model: ") + name + " = " + format_number(value) +
                   " (expected finite and > 0)");
}

} // namespace

MuapModelParams read_muap_model_params(ConfigReader& section) {
  MuapModelParams p;
  p.cell_size_m = units::mm_to_m(section.optional<double>(
      "cell_size_mm", units::m_to_mm(p.cell_size_m), positive(),
      "side of the square cells of the muscle section over which fibre potentials are pooled"));
  p.reference_cv_m_per_s = section.optional<double>(
      "reference_cv_m_per_s", p.reference_cv_m_per_s, positive(),
      "conduction velocity of the precomputed potentials; other CVs are a time scaling");
  p.end_plate_step_m = units::mm_to_m(
      section.optional<double>("end_plate_step_mm", units::m_to_mm(p.end_plate_step_m), positive(),
                               "step between the precomputed end-plate shifts"));
  p.n_end_plate_shifts = static_cast<int>(section.optional<std::int64_t>(
      "end_plate_shifts", p.n_end_plate_shifts, int_in_range(1, 101),
      "number of precomputed end-plate shifts, odd, centred on 0 (5: +/- 2 steps)"));
  if (p.n_end_plate_shifts % 2 == 0)
    section.fail("end_plate_shifts", "expected an odd count (a band centred on 0), got " +
                                         std::to_string(p.n_end_plate_shifts));
  p.model_fs_Hz = section.optional<double>(
      "model_fs_Hz", p.model_fs_Hz, positive(),
      "sampling rate of the precomputed potentials (cubic interpolation to fs_Hz)");
  p.fs_Hz = section.optional<double>("fs_Hz", p.fs_Hz, positive(),
                                     "sampling rate of the MUAPs the model returns");
  auto source = section.section("fibre_source");
  p.source = read_fibre_source_params(source, p.source);
  return p;
}

MuapModel::MuapModel(const anatomy::MuscleFibres& fibres, const anatomy::MotorUnitPool& pool,
                     const TransferFunction& transfer, Eigen::Index n_channels,
                     const MuapModelParams& params, const ProgressCallback& progress)
    : params_(params), n_channels_(n_channels) {
  const auto n_fibres = static_cast<Eigen::Index>(fibres.fibres.size());
  if (n_fibres == 0)
    throw BadInput("MUAP model: muscle \"" + fibres.name + "\" has no fibres");
  check_finite_positive(params.cell_size_m, "cell_size_m");
  check_finite_positive(params.reference_cv_m_per_s, "reference_cv_m_per_s");
  check_finite_positive(params.end_plate_step_m, "end_plate_step_m");
  check_finite_positive(params.model_fs_Hz, "model_fs_Hz");
  check_finite_positive(params.fs_Hz, "fs_Hz");
  if (params.n_end_plate_shifts < 1 || params.n_end_plate_shifts % 2 == 0)
    throw BadInput("MUAP model: n_end_plate_shifts = " + std::to_string(params.n_end_plate_shifts) +
                   " (expected odd and >= 1)");
  if (pool.fibre_diameter_m.size() != n_fibres)
    throw BadInput("MUAP model: " + std::to_string(pool.fibre_diameter_m.size()) +
                   " fibre diameters for " + std::to_string(n_fibres) + " fibres");

  // 1. Cells: the square of side cell_size holding each fibre's seed, numbered in (row,
  // column) order of the occupied ones.
  Eigen::MatrixX2d seeds(n_fibres, 2);
  for (Eigen::Index f = 0; f < n_fibres; ++f)
    seeds.row(f) = fibres.fibres[static_cast<std::size_t>(f)].seed_2d_m.transpose();
  const std::vector<std::pair<long, long>> square = cell_squares(fibres, params.cell_size_m);
  std::map<std::pair<long, long>, int> cell_of_square;
  for (const auto& sq : square)
    cell_of_square.emplace(sq, 0);
  int next = 0;
  for (auto& [key, id] : cell_of_square)
    id = next++;
  std::vector<int> cell(static_cast<std::size_t>(n_fibres));
  cell_centre_m_ = Eigen::MatrixX2d::Zero(next, 2);
  cell_fibres_ = Eigen::VectorXd::Zero(next);
  for (Eigen::Index f = 0; f < n_fibres; ++f) {
    const int c = cell_of_square.at(square[static_cast<std::size_t>(f)]);
    cell[static_cast<std::size_t>(f)] = c;
    const double w = fibres.fibres[static_cast<std::size_t>(f)].weight;
    cell_centre_m_.row(c) += w * seeds.row(f);
    cell_fibres_[c] += w;
  }
  for (int c = 0; c < next; ++c) {
    if (!(cell_fibres_[c] > 0.0))
      throw BadInput("MUAP model: muscle \"" + fibres.name +
                     "\" has a cell whose fibres weigh nothing");
    cell_centre_m_.row(c) /= cell_fibres_[c];
  }

  // 2. One pseudo-unit holding every fibre, all at the reference CV; one pass per shift.
  anatomy::MotorUnitPool all;
  all.units.resize(1);
  all.units[0].fibres.resize(static_cast<std::size_t>(n_fibres));
  for (Eigen::Index f = 0; f < n_fibres; ++f)
    all.units[0].fibres[static_cast<std::size_t>(f)] = f;
  all.fibre_unit = Eigen::VectorXi::Zero(n_fibres);
  all.fibre_cv_m_per_s = Eigen::VectorXd::Constant(n_fibres, params.reference_cv_m_per_s);
  all.fibre_diameter_m = pool.fibre_diameter_m;
  double longest_m = 0.0;
  for (const auto& f : fibres.fibres)
    longest_m = std::max(longest_m, f.length_m);
  MuapParams muap_params;
  muap_params.source = params.source;
  muap_params.fs_Hz = params.model_fs_Hz;
  muap_params.duration_s = (longest_m + rosenfalck_cutoff_m) / params.reference_cv_m_per_s;
  n_model_samples_ = model_sample_count(fibres, params);
  const int half = params.n_end_plate_shifts / 2;
  ProgressReporter report(progress, "MUAP model (end-plate shifts)",
                          static_cast<std::size_t>(params.n_end_plate_shifts));
  std::vector<Eigen::MatrixXd> per_shift;
  anatomy::MuscleFibres shifted = fibres;
  for (int b = -half; b <= half; ++b) {
    const double d = b * params.end_plate_step_m;
    for (std::size_t f = 0; f < fibres.fibres.size(); ++f)
      shifted.fibres[f].end_plate_m =
          std::clamp(fibres.fibres[f].end_plate_m + d, 0.0, fibres.fibres[f].length_m);
    const std::vector<Eigen::MatrixXd> sums = unit_muap_groups(
        shifted, all, 0, n_channels, transfer, muap_params, Eigen::VectorXd(), cell);
    Eigen::MatrixXd columns(n_model_samples_ * n_channels, next);
    for (int c = 0; c < next; ++c) {
      const Eigen::MatrixXd& s = sums[static_cast<std::size_t>(c)];
      columns.col(c) = Eigen::Map<const Eigen::VectorXd>(s.data(), s.size()) / cell_fibres_[c];
    }
    per_shift.push_back(std::move(columns));
    report.advance();
  }
  report.finish();

  // 3. Drop the common quiet tail (below 1e-5 of the largest cell potential).
  const Eigen::Index keep = active_length(per_shift, n_model_samples_, n_channels, 1e-5);
  for (auto& p : per_shift) {
    Eigen::MatrixXf trimmed(keep * n_channels, p.cols());
    for (Eigen::Index ch = 0; ch < n_channels; ++ch)
      trimmed.middleRows(ch * keep, keep) = p.middleRows(ch * n_model_samples_, keep).cast<float>();
    potentials_.push_back(std::move(trimmed));
  }
  n_model_samples_ = keep;

  // 4. Bounds and the output length (long enough for the slowest CV of the bounds).
  bounds_.centre_min_m = cell_centre_m_.colwise().minCoeff().transpose();
  bounds_.centre_max_m = cell_centre_m_.colwise().maxCoeff().transpose();
  bounds_.end_plate_shift_min_m = -half * params.end_plate_step_m;
  bounds_.end_plate_shift_max_m = half * params.end_plate_step_m;
  bounds_.cv_min_m_per_s = 2.0;
  bounds_.cv_max_m_per_s = 7.0;
  const double model_duration_s = static_cast<double>(n_model_samples_ - 1) / params.model_fs_Hz;
  n_out_samples_ = muap_sample_count(
      model_duration_s * params.reference_cv_m_per_s / bounds_.cv_min_m_per_s, params.fs_Hz);
}

MuapModel::MemoryEstimate MuapModel::estimate_memory(const anatomy::MuscleFibres& fibres,
                                                     Eigen::Index n_channels,
                                                     const MuapModelParams& params) {
  const std::vector<std::pair<long, long>> square = cell_squares(fibres, params.cell_size_m);
  const auto n_cells =
      static_cast<double>(std::set<std::pair<long, long>>(square.begin(), square.end()).size());
  const double one_set = static_cast<double>(model_sample_count(fibres, params)) *
                         static_cast<double>(n_channels) * n_cells;
  const double n_b = params.n_end_plate_shifts;
  return {one_set * (8.0 * n_b + std::max(8.0, 4.0 * n_b)), one_set * 4.0 * n_b};
}

Eigen::MatrixXd MuapModel::muap(const UnitParameters& theta) const {
  check_finite_positive(theta.radius_m, "radius_m");
  check_finite_positive(theta.n_fibres, "n_fibres");
  check_finite_positive(theta.cv_m_per_s, "cv_m_per_s");
  if (!(theta.end_plate_spread_m >= 0.0) || !std::isfinite(theta.end_plate_spread_m))
    throw BadInput("MUAP model: end_plate_spread_m = " + format_number(theta.end_plate_spread_m) +
                   " (expected finite and >= 0)");
  if (!theta.centre_m.allFinite() || !std::isfinite(theta.end_plate_shift_m))
    throw BadInput("MUAP model: the territory centre and end-plate shift must be finite");

  // Cell weights: the territory's Gaussian times the cells' fibres, normalised to N fibres.
  const double sigma = 0.5 * theta.radius_m;
  const Eigen::VectorXd d2 =
      (cell_centre_m_.rowwise() - theta.centre_m.transpose()).rowwise().squaredNorm();
  Eigen::VectorXd a = cell_fibres_.array() * (-d2.array() / (2.0 * sigma * sigma)).exp();
  const double total = a.sum();
  if (!(total > 0.0)) {
    // Far from every cell: the nearest cell alone.
    Eigen::Index nearest = 0;
    d2.minCoeff(&nearest);
    a.setZero();
    a[nearest] = 1.0;
  } else {
    a /= total;
  }
  a *= theta.n_fibres;
  // Cells whose weight is below 1e-4 of the largest are left out: for the Gaussian territory
  // they lie beyond 4.3 sigma and hold about 1e-4 of its fibres.
  const double a_min = 1e-4 * a.maxCoeff();
  std::vector<Eigen::Index> active;
  for (Eigen::Index c = 0; c < a.size(); ++c)
    if (a[c] >= a_min)
      active.push_back(c);

  // End-plate weights on the hat functions of the shift grid (clamped to the band).
  const int n_b = static_cast<int>(potentials_.size());
  const int half = n_b / 2;
  std::vector<double> u(static_cast<std::size_t>(n_b), 0.0);
  const int n_nodes = theta.end_plate_spread_m > 0.0 ? n_hermite : 1;
  for (int k = 0; k < n_nodes; ++k) {
    const double x =
        theta.end_plate_shift_m + (n_nodes > 1 ? theta.end_plate_spread_m * hermite_x[k] : 0.0);
    const double w = n_nodes > 1 ? hermite_w[k] : 1.0;
    const double pos =
        std::clamp(x / params_.end_plate_step_m + half, 0.0, static_cast<double>(n_b - 1));
    const int i0 = std::min(static_cast<int>(std::floor(pos)), n_b - 1);
    const double frac = pos - i0;
    u[static_cast<std::size_t>(i0)] += w * (1.0 - frac);
    if (frac > 0.0)
      u[static_cast<std::size_t>(i0 + 1)] += w * frac;
  }

  // The unit at the reference CV, at the model rate (potentials stored in single precision:
  // the sum streams them from memory, and half the bytes is twice the speed).
  Eigen::VectorXf mf = Eigen::VectorXf::Zero(n_model_samples_ * n_channels_);
  for (int b = 0; b < n_b; ++b) {
    if (u[static_cast<std::size_t>(b)] == 0.0)
      continue;
    const Eigen::MatrixXf& p = potentials_[static_cast<std::size_t>(b)];
    for (const auto c : active)
      mf.noalias() += static_cast<float>(u[static_cast<std::size_t>(b)] * a[c]) * p.col(c);
  }
  const Eigen::VectorXd m = mf.cast<double>();

  // Time scaling to the unit's CV and the output rate (4-point Lagrange interpolation).
  Eigen::MatrixXd out = Eigen::MatrixXd::Zero(n_out_samples_, n_channels_);
  const double scale = theta.cv_m_per_s / params_.reference_cv_m_per_s;
  for (Eigen::Index n = 0; n < n_out_samples_; ++n) {
    const double pos = static_cast<double>(n) / params_.fs_Hz * scale * params_.model_fs_Hz;
    const auto i = static_cast<Eigen::Index>(std::floor(pos));
    if (i > n_model_samples_ - 1)
      break;
    const double t = pos - static_cast<double>(i);
    const double w[4] = {-t * (t - 1.0) * (t - 2.0) / 6.0, (t + 1.0) * (t - 1.0) * (t - 2.0) / 2.0,
                         -(t + 1.0) * t * (t - 2.0) / 2.0, (t + 1.0) * t * (t - 1.0) / 6.0};
    for (Eigen::Index ch = 0; ch < n_channels_; ++ch) {
      const double* x = m.data() + ch * n_model_samples_;
      double v = 0.0;
      for (int k = 0; k < 4; ++k) {
        const Eigen::Index j = i - 1 + k;
        if (j >= 0 && j < n_model_samples_)
          v += w[k] * x[j];
      }
      out(n, ch) = v;
    }
  }
  return out;
}

UnitParameters MuapModel::parameters_of(const anatomy::MuscleFibres& fibres,
                                        const anatomy::MotorUnitPool& pool,
                                        std::size_t unit) const {
  if (unit >= pool.units.size())
    throw BadInput("MUAP model: unit " + std::to_string(unit) + " of a pool of " +
                   std::to_string(pool.units.size()));
  const auto& u = pool.units[unit];
  UnitParameters theta;
  theta.centre_m = u.territory_centre_m;
  theta.radius_m = u.territory_radius_m;
  theta.cv_m_per_s = anatomy::realised_cv_m_per_s(fibres, pool, unit);
  // The shifts are relative to each fibre's own end-plate, whose spread over the muscle is
  // already inside the cells' potentials: the anatomy's unit is at shift 0, spread 0.
  double weight = 0.0;
  for (const auto f : u.fibres)
    weight += fibres.fibres[static_cast<std::size_t>(f)].weight;
  theta.n_fibres = weight;
  theta.end_plate_shift_m = 0.0;
  theta.end_plate_spread_m = 0.0;
  return theta;
}

} // namespace myotwin::forward
