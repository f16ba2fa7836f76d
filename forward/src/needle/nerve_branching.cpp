#include "myotwin/forward/needle/nerve_branching.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "myotwin/core/checks.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/units.hpp"
#include "myotwin/forward/source/fibre_source.hpp"

namespace myotwin::forward {

namespace {

/// Deterministic k-means of the rows of `x` (#points x 3) into k clusters: k-means++ seeding
/// from `rng`, then at most `max_iterations` Lloyd steps (ties to the lower index). Returns the
/// assignment; `centres` receives the k x 3 cluster centres.
Eigen::VectorXi kmeans(const Eigen::MatrixX3d& x, Eigen::Index k, int max_iterations, Rng rng,
                       Eigen::MatrixX3d& centres) {
  const Eigen::Index n = x.rows();
  centres.resize(k, 3);
  centres.row(0) =
      x.row(static_cast<Eigen::Index>(rng.uniform_index(static_cast<std::uint64_t>(n))));
  Eigen::VectorXd d2(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    d2[i] = (x.row(i) - centres.row(0)).squaredNorm();
  }
  for (Eigen::Index c = 1; c < k; ++c) {
    const double total = d2.sum();
    Eigen::Index pick = 0;
    if (total > 0.0) {
      const double target = rng.uniform() * total;
      double cumulative = 0.0;
      pick = n - 1;
      for (Eigen::Index i = 0; i < n; ++i) {
        cumulative += d2[i];
        if (cumulative > target && d2[i] > 0.0) {
          pick = i;
          break;
        }
      }
    }
    centres.row(c) = x.row(pick);
    for (Eigen::Index i = 0; i < n; ++i) {
      d2[i] = std::min(d2[i], (x.row(i) - centres.row(c)).squaredNorm());
    }
  }
  Eigen::VectorXi assign = Eigen::VectorXi::Constant(n, -1);
  for (int it = 0; it < max_iterations; ++it) {
    bool changed = false;
    for (Eigen::Index i = 0; i < n; ++i) {
      Eigen::Index best = 0;
      double best_d2 = std::numeric_limits<double>::infinity();
      for (Eigen::Index c = 0; c < k; ++c) {
        const double v = (x.row(i) - centres.row(c)).squaredNorm();
        if (v < best_d2) {
          best_d2 = v;
          best = c;
        }
      }
      if (assign[i] != static_cast<int>(best)) {
        assign[i] = static_cast<int>(best);
        changed = true;
      }
    }
    Eigen::MatrixX3d sum = Eigen::MatrixX3d::Zero(k, 3);
    Eigen::VectorXd count = Eigen::VectorXd::Zero(k);
    for (Eigen::Index i = 0; i < n; ++i) {
      sum.row(assign[i]) += x.row(i);
      count[assign[i]] += 1.0;
    }
    for (Eigen::Index c = 0; c < k; ++c) {
      if (count[c] > 0.0) {
        centres.row(c) = sum.row(c) / count[c];
      }
    }
    if (!changed) {
      break;
    }
  }
  return assign;
}

} // namespace

NerveBranchingParams read_nerve_branching_params(ConfigReader& section) {
  NerveBranchingParams p;
  p.axon_cv_m_per_s =
      section.optional<double>("axon_cv_m_per_s", p.axon_cv_m_per_s, positive(),
                               "conduction velocity of the first-layer branches, "
                               "entry point to branch points (Akhmadeev et al. 2020)");
  p.terminal_cv_m_per_s =
      section.optional<double>("terminal_cv_m_per_s", p.terminal_cv_m_per_s, positive(),
                               "conduction velocity of the terminal branches, branch point to "
                               "end-plate (Akhmadeev et al. 2020)");
  p.branches_per_sqrt_fibre =
      section.optional<double>("branches_per_sqrt_fibre", p.branches_per_sqrt_fibre, positive(),
                               "branch points per square root of the unit's model-fibre count");
  p.entry_offset_m = units::mm_to_m(section.optional<double>(
      "entry_offset_mm", units::m_to_mm(p.entry_offset_m), non_negative(),
      "shift of the axon entry point from the end-plate centroid towards the origin end"));
  p.max_iterations = static_cast<int>(section.optional<std::int64_t>(
      "max_iterations", p.max_iterations, int_in_range(1, 100000),
      "at most this many Lloyd iterations of the k-means that places the branch points"));
  p.enabled = section.optional<bool>(
      "enabled", p.enabled, {},
      "per-fibre delays from two-layer terminal nerve branching; false: every delay is 0");
  return p;
}

NerveBranching nerve_branching(const anatomy::MuscleFibres& fibres,
                               const anatomy::MotorUnitPool& pool, std::size_t unit,
                               const NerveBranchingParams& params, const Rng& rng) {
  require_positive(params.axon_cv_m_per_s, "nerve branching", "axon_cv_m_per_s");
  require_positive(params.terminal_cv_m_per_s, "nerve branching", "terminal_cv_m_per_s");
  require_positive(params.branches_per_sqrt_fibre, "nerve branching", "branches_per_sqrt_fibre");
  if (!(params.entry_offset_m >= 0.0) || !std::isfinite(params.entry_offset_m)) {
    throw BadInput("nerve branching: entry_offset_m = " + format_number(params.entry_offset_m) +
                   ": must be finite and >= 0");
  }
  if (params.max_iterations < 1) {
    throw BadInput("nerve branching: max_iterations = " + std::to_string(params.max_iterations) +
                   ": must be >= 1");
  }
  if (unit >= pool.units.size()) {
    throw BadInput("nerve branching: unit " + std::to_string(unit) + ": the pool has " +
                   std::to_string(pool.units.size()) + " units");
  }
  const auto& ids = pool.units[unit].fibres;
  if (ids.empty()) {
    throw BadInput("nerve branching: unit " + std::to_string(unit) + " has no fibres");
  }
  const auto n = static_cast<Eigen::Index>(ids.size());
  NerveBranching out;
  out.end_plates_m.resize(n, 3);
  Eigen::Vector3d direction = Eigen::Vector3d::Zero();
  Eigen::Vector3d centroid = Eigen::Vector3d::Zero();
  double total_weight = 0.0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const auto id = ids[static_cast<std::size_t>(i)];
    if (id < 0 || id >= static_cast<std::int64_t>(fibres.fibres.size())) {
      throw BadInput("nerve branching: unit " + std::to_string(unit) + " names fibre " +
                     std::to_string(id) + ": the muscle has " +
                     std::to_string(fibres.fibres.size()) + " fibres");
    }
    const auto& f = fibres.fibres[static_cast<std::size_t>(id)];
    const Eigen::VectorXd s = Eigen::VectorXd::Constant(1, f.end_plate_m);
    const PolylineSamples p = sample_polyline(f.points_m, s);
    out.end_plates_m.row(i) = p.points_m.row(0);
    direction += (f.insertion_end_m() - f.origin_end_m());
    const double w = f.weight > 0.0 ? f.weight : 1.0;
    centroid += w * p.points_m.row(0).transpose();
    total_weight += w;
  }
  centroid /= total_weight;
  if (direction.norm() > 0.0) {
    direction.normalize();
  }
  out.entry_m = centroid - params.entry_offset_m * direction;

  const auto n_branches = std::clamp<Eigen::Index>(
      static_cast<Eigen::Index>(
          std::llround(params.branches_per_sqrt_fibre * std::sqrt(static_cast<double>(n)))),
      1, n);
  out.branch = kmeans(out.end_plates_m, n_branches, params.max_iterations, rng.split(unit),
                      out.branch_points_m);
  out.delays_s.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const Eigen::Vector3d b = out.branch_points_m.row(out.branch[i]).transpose();
    out.delays_s[i] = (b - out.entry_m).norm() / params.axon_cv_m_per_s +
                      (out.end_plates_m.row(i).transpose() - b).norm() / params.terminal_cv_m_per_s;
  }
  out.delays_s.array() -= out.delays_s.minCoeff();
  return out;
}

Eigen::VectorXd nerve_branch_delays_s(const anatomy::MuscleFibres& fibres,
                                      const anatomy::MotorUnitPool& pool, std::size_t unit,
                                      const NerveBranchingParams& params, const Rng& rng) {
  if (!params.enabled) {
    if (unit >= pool.units.size()) {
      throw BadInput("nerve branching: unit " + std::to_string(unit) + ": the pool has " +
                     std::to_string(pool.units.size()) + " units");
    }
    return Eigen::VectorXd::Zero(static_cast<Eigen::Index>(pool.units[unit].fibres.size()));
  }
  return nerve_branching(fibres, pool, unit, params, rng).delays_s;
}

} // namespace myotwin::forward
