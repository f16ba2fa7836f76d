#include "myotwin/anatomy/fibre_field.hpp"

#include <algorithm>
#include <cmath>
#include <deque>

#include <Eigen/Eigenvalues>
#include <Eigen/IterativeLinearSolvers>
#include <Eigen/SparseCore>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/timer.hpp"

namespace myotwin::anatomy {

namespace {

enum : std::uint8_t { outside = 0, free_voxel = 1, origin_voxel = 2, insertion_voxel = 3 };

std::string muscle_id(const MuscleGeometry& g) {
  return "muscle " + g.name + " (label " + std::to_string(g.label) + ")";
}

/// Strides of the grid's axes in the flat voxel index.
std::array<std::int64_t, 3> grid_strides(const FibreField& field) {
  return {1, field.size[0], field.size[0] * field.size[1]};
}

/// Sets up the cropped grid of `field` (size, spacing, direction, origin): the muscle's bounding
/// box in `volume`, upsampled `f` times, with FibreField::padding outside voxels on each side;
/// returns the state of every grid voxel (outside, free, origin or insertion).
std::vector<std::uint8_t> crop_grid(const LabelVolume& volume, const MuscleGeometry& geometry,
                                    std::int64_t f, FibreField& field) {
  auto ijk_of = [&](std::int64_t idx) {
    return std::array<std::int64_t, 3>{idx % volume.size[0],
                                       (idx / volume.size[0]) % volume.size[1],
                                       idx / (volume.size[0] * volume.size[1])};
  };
  std::array<std::int64_t, 3> lo{volume.size[0], volume.size[1], volume.size[2]};
  std::array<std::int64_t, 3> hi{-1, -1, -1};
  for (const auto idx : geometry.voxels) {
    const auto c = ijk_of(idx);
    for (std::size_t a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], c[a]);
      hi[a] = std::max(hi[a], c[a]);
    }
  }
  // pad voxels on each side: room for the smoothed wall indicator (kernel radius 3).
  constexpr std::int64_t pad = FibreField::padding;
  for (std::size_t a = 0; a < 3; ++a)
    field.size[a] = (hi[a] - lo[a] + 1) * f + 2 * pad;
  field.spacing_m = volume.spacing_m / static_cast<double>(f);
  field.direction = volume.direction;
  const double fd = static_cast<double>(f);
  // Grid index g of volume index c: c = lo - 0.5 + (g - pad + 0.5) / f.
  const double g0 = (0.5 - static_cast<double>(pad)) / fd;
  field.origin_m = volume.physical_point(static_cast<double>(lo[0]) - 0.5 + g0,
                                         static_cast<double>(lo[1]) - 0.5 + g0,
                                         static_cast<double>(lo[2]) - 0.5 + g0);
  const auto n_grid = static_cast<std::size_t>(field.n_voxels());
  std::vector<std::uint8_t> state(n_grid, outside);
  auto mark = [&](const std::vector<std::int64_t>& voxels, std::uint8_t s) {
    for (const auto idx : voxels) {
      const auto c = ijk_of(idx);
      for (std::int64_t a = 0; a < f; ++a)
        for (std::int64_t b = 0; b < f; ++b)
          for (std::int64_t e = 0; e < f; ++e)
            state[static_cast<std::size_t>(field.index((c[0] - lo[0]) * f + a + pad,
                                                       (c[1] - lo[1]) * f + b + pad,
                                                       (c[2] - lo[2]) * f + e + pad))] = s;
    }
  };
  mark(geometry.voxels, free_voxel);
  mark(geometry.origin_voxels, origin_voxel);
  mark(geometry.insertion_voxels, insertion_voxel);
  return state;
}

/// Keeps the 6-connected pieces that hold both origin and insertion voxels: sets field.inside and
/// field.n_voxels_dropped, marks the dropped voxels outside in `state`; returns the voxels kept.
std::int64_t keep_connected(std::vector<std::uint8_t>& state, FibreField& field) {
  const auto n_grid = state.size();
  // The grid has an outside layer all round, so +-stride never leaves it from an inside voxel.
  const auto stride = grid_strides(field);
  std::vector<std::int32_t> comp(n_grid, -1);
  std::vector<std::uint8_t> keep_comp;
  {
    std::deque<std::int64_t> queue;
    for (std::size_t p0 = 0; p0 < n_grid; ++p0) {
      if (state[p0] == outside || comp[p0] >= 0)
        continue;
      const auto c_id = static_cast<std::int32_t>(keep_comp.size());
      comp[p0] = c_id;
      queue.push_back(static_cast<std::int64_t>(p0));
      bool has_o = false, has_i = false;
      while (!queue.empty()) {
        const std::int64_t p = queue.front();
        queue.pop_front();
        has_o |= state[static_cast<std::size_t>(p)] == origin_voxel;
        has_i |= state[static_cast<std::size_t>(p)] == insertion_voxel;
        for (std::size_t a = 0; a < 3; ++a)
          for (const std::int64_t q : {p - stride[a], p + stride[a]}) {
            const auto qs = static_cast<std::size_t>(q);
            if (state[qs] != outside && comp[qs] < 0) {
              comp[qs] = c_id;
              queue.push_back(q);
            }
          }
      }
      keep_comp.push_back(has_o && has_i ? 1 : 0);
    }
  }
  field.inside.assign(n_grid, 0);
  std::int64_t n_inside = 0, n_muscle = 0;
  for (std::size_t p = 0; p < n_grid; ++p) {
    if (state[p] == outside)
      continue;
    ++n_muscle;
    if (keep_comp[static_cast<std::size_t>(comp[p])]) {
      field.inside[p] = 1;
      ++n_inside;
    } else {
      state[p] = outside;
    }
  }
  field.n_voxels_dropped = n_muscle - n_inside;
  return n_inside;
}

/// Numbers the free voxels as unknowns (-1 elsewhere), counts the Dirichlet voxels, and sets
/// field.value to its boundary values (1 at insertion voxels, 0 elsewhere).
std::vector<std::int32_t> number_unknowns(const std::vector<std::uint8_t>& state,
                                          FibreField& field) {
  const auto n_grid = state.size();
  std::vector<std::int32_t> unknown(n_grid, -1);
  std::int32_t n_unknowns = 0;
  for (std::size_t p = 0; p < n_grid; ++p) {
    if (state[p] == free_voxel)
      unknown[p] = n_unknowns++;
    else if (state[p] != outside)
      ++field.n_dirichlet;
  }
  field.n_unknowns = n_unknowns;
  field.value.assign(n_grid, 0.0);
  for (std::size_t p = 0; p < n_grid; ++p)
    if (state[p] == insertion_voxel)
      field.value[p] = 1.0;
  return unknown;
}

/// The 7-point Laplacian A (weights 1 / h^2 [1/m^2], zero flux at the wall) on the unknowns, and
/// the right-hand side b from the Dirichlet values in field.value.
void assemble_laplace(const std::vector<std::uint8_t>& state,
                      const std::vector<std::int32_t>& unknown, const FibreField& field,
                      Eigen::SparseMatrix<double>& A, Eigen::VectorXd& b) {
  const auto n_grid = state.size();
  const auto stride = grid_strides(field);
  const auto n_unknowns = static_cast<std::int32_t>(field.n_unknowns);
  const Eigen::Vector3d w = field.spacing_m.cwiseProduct(field.spacing_m).cwiseInverse();
  std::vector<Eigen::Triplet<double>> triplets;
  triplets.reserve(static_cast<std::size_t>(n_unknowns) * 7);
  b = Eigen::VectorXd::Zero(n_unknowns);
  for (std::size_t p = 0; p < n_grid; ++p) {
    const std::int32_t r = unknown[p];
    if (r < 0)
      continue;
    double diag = 0.0;
    for (std::size_t a = 0; a < 3; ++a)
      for (const std::int64_t q :
           {static_cast<std::int64_t>(p) - stride[a], static_cast<std::int64_t>(p) + stride[a]}) {
        const auto qs = static_cast<std::size_t>(q);
        if (state[qs] == outside)
          continue;
        diag += w[static_cast<Eigen::Index>(a)];
        if (unknown[qs] >= 0)
          triplets.emplace_back(r, unknown[qs], -w[static_cast<Eigen::Index>(a)]);
        else
          b[r] += w[static_cast<Eigen::Index>(a)] * field.value[qs];
      }
    triplets.emplace_back(r, r, diag);
  }
  A.resize(n_unknowns, n_unknowns);
  A.setFromTriplets(triplets.begin(), triplets.end());
}

/// Initial guess of the unknowns: the normalised position along the principal axis, 0 at the
/// mean axial position of the origin voxels and 1 at that of the insertion voxels, clamped.
Eigen::VectorXd initial_guess(const std::vector<std::uint8_t>& state,
                              const std::vector<std::int32_t>& unknown,
                              const MuscleGeometry& geometry, const FibreField& field) {
  const auto n_grid = state.size();
  const auto stride = grid_strides(field);
  const auto axial_position_m = [&](std::size_t p) {
    const auto k = static_cast<std::int64_t>(p) / stride[2];
    const auto j = (static_cast<std::int64_t>(p) / stride[1]) % field.size[1];
    const auto i = static_cast<std::int64_t>(p) % field.size[0];
    return (field.physical_point(static_cast<double>(i), static_cast<double>(j),
                                 static_cast<double>(k)) -
            geometry.centroid_m)
        .dot(geometry.axis);
  };
  double s_o = 0.0, s_i = 0.0;
  std::int64_t n_o = 0, n_i = 0;
  for (std::size_t p = 0; p < n_grid; ++p) {
    if (state[p] != origin_voxel && state[p] != insertion_voxel)
      continue;
    const double s = axial_position_m(p);
    if (state[p] == origin_voxel) {
      s_o += s;
      ++n_o;
    } else {
      s_i += s;
      ++n_i;
    }
  }
  s_o /= static_cast<double>(n_o);
  s_i /= static_cast<double>(n_i);
  Eigen::VectorXd guess(field.n_unknowns);
  for (std::size_t p = 0; p < n_grid; ++p) {
    if (unknown[p] < 0)
      continue;
    const double s = axial_position_m(p);
    const double g = std::abs(s_i - s_o) > 0.0 ? (s - s_o) / (s_i - s_o) : 0.5;
    guess[unknown[p]] = std::clamp(g, 0.0, 1.0);
  }
  return guess;
}

/// Solves A u = b by incompletely-Cholesky-preconditioned conjugate gradients from `guess`;
/// records the iterations and residual in `field`. Throws NumericalError when it fails.
Eigen::VectorXd solve_cg(const Eigen::SparseMatrix<double>& A, const Eigen::VectorXd& b,
                         const Eigen::VectorXd& guess, const FibreFieldParams& params,
                         const std::string& id, FibreField& field) {
  // Natural (grid) ordering: the triangular solves of the preconditioner then walk memory in
  // order; with the default AMD ordering they dominated the run time (measured with perf).
  Eigen::ConjugateGradient<
      Eigen::SparseMatrix<double>, Eigen::Lower | Eigen::Upper,
      Eigen::IncompleteCholesky<double, Eigen::Lower, Eigen::NaturalOrdering<int>>>
      cg;
  cg.setTolerance(params.tolerance);
  cg.setMaxIterations(static_cast<Eigen::Index>(params.max_iterations));
  cg.compute(A);
  if (cg.info() != Eigen::Success)
    throw NumericalError(id + ": fibre field: incomplete Cholesky factorisation failed (" +
                         std::to_string(field.n_unknowns) + " unknowns)");
  Eigen::VectorXd u = cg.solveWithGuess(b, guess);
  field.n_iterations = cg.iterations();
  field.relative_residual = cg.error();
  if (cg.info() != Eigen::Success)
    throw NumericalError(
        id + ": fibre field: conjugate gradients stopped after " + std::to_string(cg.iterations()) +
        " iterations at relative residual " + std::to_string(cg.error()) +
        ": expected <= " + std::to_string(params.tolerance) +
        " (fibre_field.max_iterations = " + std::to_string(params.max_iterations) + ")");
  return u;
}

/// Normalised gradient of u in the physical frame at every domain voxel: central differences
/// where all six neighbours are in the domain; at the surface of the free region a least-squares
/// plane through the in-domain voxels of the 3x3x3 neighbourhood (weights 1 / distance^2), which
/// follows a staircase surface better than one-sided differences; one-sided differences where
/// that plane is undetermined (fewer than three independent neighbours). Zero where u is flat.
void gradient_directions(const std::vector<std::uint8_t>& state, FibreField& field) {
  const auto n_grid = state.size();
  const auto stride = grid_strides(field);
  field.gradient_direction.assign(n_grid, Eigen::Vector3d::Zero());
  const Eigen::Matrix3d to_physical = field.direction * field.spacing_m.cwiseInverse().asDiagonal();
  const Eigen::Matrix3d scale = field.direction * field.spacing_m.asDiagonal();
  for (std::size_t p = 0; p < n_grid; ++p) {
    if (!field.inside[p])
      continue;
    Eigen::Vector3d g_idx = Eigen::Vector3d::Zero();
    bool interior = true;
    for (std::size_t a = 0; a < 3; ++a) {
      const auto qm = p - static_cast<std::size_t>(stride[a]);
      const auto qp = p + static_cast<std::size_t>(stride[a]);
      const bool in_m = field.inside[qm] != 0, in_p = field.inside[qp] != 0;
      interior = interior && in_m && in_p;
      double d = 0.0;
      if (in_m && in_p)
        d = 0.5 * (field.value[qp] - field.value[qm]);
      else if (in_p)
        d = field.value[qp] - field.value[p];
      else if (in_m)
        d = field.value[p] - field.value[qm];
      g_idx[static_cast<Eigen::Index>(a)] = d;
    }
    Eigen::Vector3d g = to_physical * g_idx;
    if (!interior && state[p] == free_voxel) {
      Eigen::Matrix3d m = Eigen::Matrix3d::Zero();
      Eigen::Vector3d r = Eigen::Vector3d::Zero();
      for (int dk = -1; dk <= 1; ++dk)
        for (int dj = -1; dj <= 1; ++dj)
          for (int di = -1; di <= 1; ++di) {
            if (di == 0 && dj == 0 && dk == 0)
              continue;
            const auto q = static_cast<std::size_t>(static_cast<std::int64_t>(p) + di * stride[0] +
                                                    dj * stride[1] + dk * stride[2]);
            if (!field.inside[q])
              continue;
            const Eigen::Vector3d d = scale * Eigen::Vector3d(di, dj, dk);
            const double w = 1.0 / d.squaredNorm();
            m += w * d * d.transpose();
            r += w * (field.value[q] - field.value[p]) * d;
          }
      Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> eig(m);
      if (eig.eigenvalues()[0] > 1e-3 * eig.eigenvalues()[2])
        g = m.ldlt().solve(r);
    }
    const double norm = g.norm();
    if (norm > 0.0)
      field.gradient_direction[p] = g / norm;
  }
}

/// Voxels with a flat field (inside thick Dirichlet regions such as end caps, or where one
/// voxel layer is fixed on both sides) take the mean direction of their neighbours, layer by
/// layer from the solved field inwards (double-buffered: independent of the scan order).
void fill_flat_directions(FibreField& field) {
  const auto n_grid = field.inside.size();
  const auto stride = grid_strides(field);
  for (;;) {
    std::vector<std::pair<std::size_t, Eigen::Vector3d>> updates;
    for (std::size_t p = 0; p < n_grid; ++p) {
      if (!field.inside[p] || field.gradient_direction[p].squaredNorm() > 0.0)
        continue;
      Eigen::Vector3d sum = Eigen::Vector3d::Zero();
      for (std::size_t a = 0; a < 3; ++a)
        for (const std::size_t q :
             {p - static_cast<std::size_t>(stride[a]), p + static_cast<std::size_t>(stride[a])})
          if (field.inside[q])
            sum += field.gradient_direction[q];
      if (sum.norm() > 1e-12)
        updates.emplace_back(p, sum.normalized());
    }
    if (updates.empty())
      break;
    for (const auto& [p, d] : updates)
      field.gradient_direction[p] = d;
  }
}

/// The grid indices (i, j, k) of flat index p.
std::array<std::int64_t, 3> grid_ijk(const FibreField& field, std::size_t p) {
  const auto stride = grid_strides(field);
  const auto q = static_cast<std::int64_t>(p);
  return {q % field.size[0], (q / stride[1]) % field.size[1], q / stride[2]};
}

/// The tendon interface: the faces of origin and insertion voxels that the fibres cross (the
/// fibre direction within 60 degrees of the face's outward normal) are no wall; flags the
/// columns of three outside voxels beyond them, which count as inside for the wall indicator.
std::vector<std::uint8_t> tendon_extensions(const std::vector<std::uint8_t>& state,
                                            const FibreField& field) {
  const auto n_grid = state.size();
  const auto stride = grid_strides(field);
  std::vector<std::uint8_t> extended(n_grid, 0);
  for (std::size_t p = 0; p < n_grid; ++p) {
    if (state[p] != origin_voxel && state[p] != insertion_voxel)
      continue;
    const Eigen::Vector3d fibre =
        (state[p] == insertion_voxel ? 1.0 : -1.0) * field.gradient_direction[p];
    const auto c = grid_ijk(field, p);
    for (std::size_t a = 0; a < 3; ++a)
      for (const std::int64_t d : {-1, 1}) {
        const Eigen::Vector3d normal =
            static_cast<double>(d) * field.direction.col(static_cast<Eigen::Index>(a));
        if (fibre.dot(normal) < 0.5)
          continue;
        for (std::int64_t layer = 1; layer <= 3; ++layer) {
          const std::int64_t n = c[a] + d * layer;
          if (n < 0 || n >= field.size[a])
            break;
          const auto q =
              static_cast<std::size_t>(static_cast<std::int64_t>(p) + d * layer * stride[a]);
          if (field.inside[q])
            break;
          extended[q] = 1;
        }
      }
  }
  return extended;
}

/// The smoothed wall indicator: the domain's indicator (tendon interfaces extended outwards)
/// convolved with a Gaussian of one grid voxel per axis (separable, radius 3, normalised).
std::vector<float> smoothed_wall(const std::vector<std::uint8_t>& state, const FibreField& field) {
  const auto n_grid = state.size();
  const auto stride = grid_strides(field);
  std::vector<float> ind(n_grid, 0.0f);
  for (std::size_t p = 0; p < n_grid; ++p)
    if (field.inside[p])
      ind[p] = 1.0f;
  const std::vector<std::uint8_t> extended = tendon_extensions(state, field);
  for (std::size_t p = 0; p < n_grid; ++p)
    if (extended[p])
      ind[p] = 1.0f;
  std::array<float, 7> kernel{};
  float k_sum = 0.0f;
  for (int t = -3; t <= 3; ++t) {
    kernel[static_cast<std::size_t>(t + 3)] = std::exp(-0.5f * static_cast<float>(t * t));
    k_sum += kernel[static_cast<std::size_t>(t + 3)];
  }
  for (auto& k : kernel)
    k /= k_sum;
  std::vector<float> tmp(n_grid, 0.0f);
  for (std::size_t a = 0; a < 3; ++a) {
    for (std::size_t p = 0; p < n_grid; ++p) {
      const auto c = grid_ijk(field, p);
      float acc = 0.0f;
      for (std::int64_t t = -3; t <= 3; ++t) {
        const std::int64_t n = c[a] + t;
        if (n < 0 || n >= field.size[a])
          continue;
        acc += kernel[static_cast<std::size_t>(t + 3)] *
               ind[static_cast<std::size_t>(static_cast<std::int64_t>(p) + t * stride[a])];
      }
      tmp[p] = acc;
    }
    std::swap(ind, tmp);
  }
  return ind;
}

} // namespace

FibreFieldParams read_fibre_field_params(ConfigReader& section) {
  FibreFieldParams p;
  p.upsampling = static_cast<int>(
      section.optional<std::int64_t>("upsampling", p.upsampling, int_in_range(1, 8),
                                     "nearest-neighbour upsampling of the muscle mask for the "
                                     "Laplace solve; 1: none; helps thin muscles"));
  p.tolerance = section.optional<double>(
      "tolerance", p.tolerance, in_range(1e-14, 1e-2),
      "relative residual |b - Au| / |b| at which the conjugate gradients of the fibre field stop");
  p.max_iterations = section.optional<std::int64_t>(
      "max_iterations", p.max_iterations, int_in_range(1, 10000000),
      "iteration limit of the conjugate gradients of the fibre field");
  return p;
}

bool FibreField::contains(const Eigen::Vector3d& x_m) const {
  const Eigen::Vector3d c = continuous_index(x_m);
  std::array<std::int64_t, 3> n{};
  for (int a = 0; a < 3; ++a) {
    n[static_cast<std::size_t>(a)] = static_cast<std::int64_t>(std::floor(c[a] + 0.5));
    if (n[static_cast<std::size_t>(a)] < 0 ||
        n[static_cast<std::size_t>(a)] >= size[static_cast<std::size_t>(a)])
      return false;
  }
  return inside[static_cast<std::size_t>(index(n[0], n[1], n[2]))] != 0;
}

FieldSample FibreField::sample(const Eigen::Vector3d& x_m) const {
  FieldSample out;
  if (!contains(x_m))
    return out;
  const Eigen::Vector3d c = continuous_index(x_m);
  const Eigen::Vector3d f = c.array().floor();
  const Eigen::Vector3d t = c - f;
  const auto i0 = static_cast<std::int64_t>(f[0]);
  const auto j0 = static_cast<std::int64_t>(f[1]);
  const auto k0 = static_cast<std::int64_t>(f[2]);
  double w_sum = 0.0, v_sum = 0.0;
  Eigen::Vector3d d_sum = Eigen::Vector3d::Zero();
  for (int corner = 0; corner < 8; ++corner) {
    const int di = corner & 1, dj = (corner >> 1) & 1, dk = (corner >> 2) & 1;
    const std::int64_t i = i0 + di, j = j0 + dj, k = k0 + dk;
    if (i < 0 || j < 0 || k < 0 || i >= size[0] || j >= size[1] || k >= size[2])
      continue;
    const auto idx = static_cast<std::size_t>(index(i, j, k));
    if (inside[idx] == 0)
      continue;
    const double w = (di ? t[0] : 1.0 - t[0]) * (dj ? t[1] : 1.0 - t[1]) * (dk ? t[2] : 1.0 - t[2]);
    w_sum += w;
    v_sum += w * value[idx];
    d_sum += w * gradient_direction[idx];
  }
  if (!(w_sum > 0.0))
    return out;
  out.inside = true;
  out.value = v_sum / w_sum;
  const double norm = d_sum.norm();
  if (norm > 0.0)
    out.direction = d_sum / norm;
  return out;
}

double FibreField::wall_at(const Eigen::Vector3d& x_m, Eigen::Vector3d& gradient_per_m) const {
  gradient_per_m.setZero();
  if (wall.empty())
    return 0.0;
  const Eigen::Vector3d c = continuous_index(x_m);
  const Eigen::Vector3d f = c.array().floor();
  const Eigen::Vector3d t = c - f;
  double v = 0.0;
  Eigen::Vector3d g = Eigen::Vector3d::Zero();
  for (int corner = 0; corner < 8; ++corner) {
    const int d[3] = {corner & 1, (corner >> 1) & 1, (corner >> 2) & 1};
    const std::int64_t i = static_cast<std::int64_t>(f[0]) + d[0];
    const std::int64_t j = static_cast<std::int64_t>(f[1]) + d[1];
    const std::int64_t k = static_cast<std::int64_t>(f[2]) + d[2];
    if (i < 0 || j < 0 || k < 0 || i >= size[0] || j >= size[1] || k >= size[2])
      continue;
    const double w_c = wall[static_cast<std::size_t>(index(i, j, k))];
    double w = w_c;
    for (int a = 0; a < 3; ++a)
      w *= d[a] ? t[a] : 1.0 - t[a];
    v += w;
    for (int a = 0; a < 3; ++a) {
      double ga = d[a] ? w_c : -w_c;
      for (int b = 0; b < 3; ++b)
        if (b != a)
          ga *= d[b] ? t[b] : 1.0 - t[b];
      g[a] += ga;
    }
  }
  gradient_per_m = direction * spacing_m.cwiseInverse().asDiagonal() * g;
  return v;
}

FibreField solve_fibre_field(const LabelVolume& volume, const MuscleGeometry& geometry,
                             const FibreFieldParams& params) {
  const std::string id = muscle_id(geometry);
  if (params.upsampling < 1 || params.upsampling > 8)
    throw BadInput(id + ": fibre_field.upsampling = " + std::to_string(params.upsampling) +
                   ": expected an integer from 1 to 8");
  if (geometry.voxels.empty())
    throw BadInput(id + ": number of voxels = 0: expected at least one voxel");
  Stopwatch watch;

  // 1. Cropped (upsampled) grid.
  FibreField field;
  field.label = geometry.label;
  std::vector<std::uint8_t> state = crop_grid(volume, geometry, params.upsampling, field);

  // 2. Keep the 6-connected pieces that hold both origin and insertion voxels.
  if (keep_connected(state, field) == 0)
    throw BadInput(id + ": origin (" + std::to_string(geometry.origin_voxels.size()) +
                   " voxels) and insertion (" + std::to_string(geometry.insertion_voxels.size()) +
                   " voxels) are not connected through the muscle: expected a piece of muscle "
                   "that touches both");

  // 3. Linear system on the free voxels, solved from the axial position as initial guess.
  const std::vector<std::int32_t> unknown = number_unknowns(state, field);
  if (field.n_unknowns > 0) {
    Eigen::SparseMatrix<double> A;
    Eigen::VectorXd b;
    assemble_laplace(state, unknown, field, A, b);
    const Eigen::VectorXd guess = initial_guess(state, unknown, geometry, field);
    const Eigen::VectorXd u = solve_cg(A, b, guess, params, id, field);
    for (std::size_t p = 0; p < state.size(); ++p)
      if (unknown[p] >= 0)
        field.value[p] = std::clamp(u[unknown[p]], 0.0, 1.0);
  }

  // 4. Normalised gradient in the physical frame, flat regions filled from their neighbours.
  gradient_directions(state, field);
  fill_flat_directions(field);

  // 5. The smoothed wall indicator.
  field.wall = smoothed_wall(state, field);
  field.solve_time_s = watch.elapsed_s();
  return field;
}

} // namespace myotwin::anatomy
