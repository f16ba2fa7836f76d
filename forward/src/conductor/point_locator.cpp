#include "myotwin/forward/conductor/point_locator.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include <Eigen/Dense>

#include "myotwin/core/error.hpp"

namespace myotwin::forward {

namespace {

/// Largest number of buckets per axis.
constexpr std::int64_t max_cells_per_axis = 1024;
/// Target number of tets per bucket (before counting overlaps).
constexpr double tets_per_cell = 4.0;

} // namespace

std::int64_t PointLocations::n_outside() const {
  return static_cast<std::int64_t>(std::count(tet.begin(), tet.end(), std::int64_t{-1}));
}

PointLocator::PointLocator(const meshing::TetMesh& mesh, double tolerance_m)
    : nodes_m_(mesh.nodes_m), tets_(mesh.tets), tolerance_m_(tolerance_m) {
  if (!(tolerance_m >= 0.0) || !std::isfinite(tolerance_m))
    throw BadInput("PointLocator: tolerance_m = " + format_number(tolerance_m) +
                   ": must be >= 0 and finite");
  const std::int64_t n_tets = tets_.rows();
  const std::int64_t n_nodes = nodes_m_.rows();
  if (n_tets == 0 || n_nodes == 0)
    throw BadInput("PointLocator: mesh has " + std::to_string(n_nodes) + " nodes and " +
                   std::to_string(n_tets) + " tets: expected a non-empty mesh");
  for (std::int64_t t = 0; t < n_tets; ++t) {
    for (int k = 0; k < 4; ++k)
      if (tets_(t, k) < 0 || tets_(t, k) >= n_nodes)
        throw BadInput("PointLocator: tet " + std::to_string(t) + " node " +
                       std::to_string(tets_(t, k)) + ": expected 0 <= node < " +
                       std::to_string(n_nodes));
    const double v = meshing::tet_volume_m3(mesh, t);
    if (!(v > 0.0))
      throw BadInput("PointLocator: tet " + std::to_string(t) + " has volume " + format_number(v) +
                     " m^3: expected > 0");
  }
  const Eigen::Vector3d lo = nodes_m_.colwise().minCoeff().transpose();
  const Eigen::Vector3d hi = nodes_m_.colwise().maxCoeff().transpose();
  lo_m_ = lo.array() - tolerance_m_;
  const Eigen::Vector3d extent = (hi - lo).array() + 2.0 * tolerance_m_;
  // Cubic buckets sized for ~tets_per_cell tets each (flat axes get one bucket).
  const double max_extent = extent.maxCoeff();
  double volume = 1.0;
  int n_axes = 0;
  for (int a = 0; a < 3; ++a)
    if (extent[a] > 1e-12 * max_extent) {
      volume *= extent[a];
      ++n_axes;
    }
  const double n_cells_target = std::max(1.0, static_cast<double>(n_tets) / tets_per_cell);
  const double edge = std::pow(volume / n_cells_target, 1.0 / std::max(1, n_axes));
  for (int a = 0; a < 3; ++a) {
    const auto i = static_cast<std::size_t>(a);
    dims_[i] = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::ceil(extent[a] / edge)), 1,
                                        max_cells_per_axis);
    cell_m_[a] = extent[a] > 0.0 ? extent[a] / static_cast<double>(dims_[i]) : 1.0;
  }
  const std::int64_t n_cells = dims_[0] * dims_[1] * dims_[2];
  auto cell_range = [&](std::int64_t t, std::array<std::int64_t, 3>& c0,
                        std::array<std::int64_t, 3>& c1) {
    Eigen::Vector3d bmin = nodes_m_.row(tets_(t, 0)).transpose();
    Eigen::Vector3d bmax = bmin;
    for (int k = 1; k < 4; ++k) {
      bmin = bmin.cwiseMin(nodes_m_.row(tets_(t, k)).transpose());
      bmax = bmax.cwiseMax(nodes_m_.row(tets_(t, k)).transpose());
    }
    for (int a = 0; a < 3; ++a) {
      const auto i = static_cast<std::size_t>(a);
      const auto f = [&](double x) {
        return std::clamp<std::int64_t>(
            static_cast<std::int64_t>(std::floor((x - lo_m_[a]) / cell_m_[a])), 0, dims_[i] - 1);
      };
      c0[i] = f(bmin[a] - tolerance_m_);
      c1[i] = f(bmax[a] + tolerance_m_);
    }
  };
  // Counting pass, then filling pass, both in tet order: buckets list tets in ascending order.
  cell_start_.assign(static_cast<std::size_t>(n_cells + 1), 0);
  std::array<std::int64_t, 3> c0{}, c1{};
  for (std::int64_t t = 0; t < n_tets; ++t) {
    cell_range(t, c0, c1);
    for (std::int64_t k = c0[2]; k <= c1[2]; ++k)
      for (std::int64_t j = c0[1]; j <= c1[1]; ++j)
        for (std::int64_t i = c0[0]; i <= c1[0]; ++i)
          ++cell_start_[static_cast<std::size_t>(i + dims_[0] * (j + dims_[1] * k) + 1)];
  }
  for (std::size_t c = 1; c < cell_start_.size(); ++c)
    cell_start_[c] += cell_start_[c - 1];
  cell_tets_.resize(static_cast<std::size_t>(cell_start_.back()));
  std::vector<std::int64_t> fill(cell_start_.begin(), cell_start_.end() - 1);
  for (std::int64_t t = 0; t < n_tets; ++t) {
    cell_range(t, c0, c1);
    for (std::int64_t k = c0[2]; k <= c1[2]; ++k)
      for (std::int64_t j = c0[1]; j <= c1[1]; ++j)
        for (std::int64_t i = c0[0]; i <= c1[0]; ++i)
          cell_tets_[static_cast<std::size_t>(
              fill[static_cast<std::size_t>(i + dims_[0] * (j + dims_[1] * k))]++)] =
              static_cast<std::int32_t>(t);
  }
}

Eigen::Vector4d PointLocator::barycentric(std::int64_t t, const Eigen::Vector3d& point_m) const {
  const Eigen::Vector3d x0 = nodes_m_.row(tets_(t, 0)).transpose();
  Eigen::Matrix3d d;
  for (int k = 0; k < 3; ++k)
    d.col(k) = nodes_m_.row(tets_(t, k + 1)).transpose() - x0;
  const Eigen::Vector3d l = d.inverse() * (point_m - x0);
  return {1.0 - l.sum(), l[0], l[1], l[2]};
}

std::int64_t PointLocator::locate_one(const Eigen::Vector3d& p, Eigen::Vector4d& weights) const {
  std::array<std::int64_t, 3> c{};
  for (int a = 0; a < 3; ++a) {
    const double u = (p[a] - lo_m_[a]) / cell_m_[a];
    if (!(u >= 0.0) || !(u <= static_cast<double>(dims_[static_cast<std::size_t>(a)])))
      return -1;
    c[static_cast<std::size_t>(a)] = std::min<std::int64_t>(static_cast<std::int64_t>(u),
                                                            dims_[static_cast<std::size_t>(a)] - 1);
  }
  const auto cell = static_cast<std::size_t>(c[0] + dims_[0] * (c[1] + dims_[1] * c[2]));
  std::int64_t best = -1;
  double best_depth = -tolerance_m_;
  Eigen::Vector4d best_w = Eigen::Vector4d::Zero();
  for (auto i = cell_start_[cell]; i < cell_start_[cell + 1]; ++i) {
    const std::int64_t t = cell_tets_[static_cast<std::size_t>(i)];
    const Eigen::Vector3d x0 = nodes_m_.row(tets_(t, 0)).transpose();
    Eigen::Matrix3d d;
    for (int k = 0; k < 3; ++k)
      d.col(k) = nodes_m_.row(tets_(t, k + 1)).transpose() - x0;
    const Eigen::Matrix3d inv = d.inverse();
    const Eigen::Vector3d l = inv * (p - x0);
    const Eigen::Vector4d w(1.0 - l.sum(), l[0], l[1], l[2]);
    // Signed distance to each face plane: weight / |gradient of the weight|.
    double depth = w[0] / inv.colwise().sum().norm();
    for (int k = 0; k < 3; ++k)
      depth = std::min(depth, w[k + 1] / inv.row(k).norm());
    if (depth > best_depth || (best < 0 && depth >= best_depth)) {
      best = t;
      best_depth = depth;
      best_w = w;
    }
  }
  if (best >= 0) {
    best_w = best_w.cwiseMax(0.0);
    best_w /= best_w.sum();
  }
  weights = best_w;
  return best;
}

PointLocations PointLocator::locate(
    const Eigen::Ref<const Eigen::Matrix<double, Eigen::Dynamic, 3>>& points_m) const {
  const Eigen::Index n = points_m.rows();
  PointLocations out;
  out.tet.assign(static_cast<std::size_t>(n), -1);
  out.nodes = meshing::TetArray::Zero(n, 4);
  out.weights.setZero(n, 4);
#pragma omp parallel for schedule(static)
  for (Eigen::Index p = 0; p < n; ++p) {
    Eigen::Vector4d w;
    const std::int64_t t = locate_one(points_m.row(p).transpose(), w);
    out.tet[static_cast<std::size_t>(p)] = t;
    if (t >= 0) {
      out.nodes.row(p) = tets_.row(t);
      out.weights.row(p) = w.transpose();
    }
  }
  return out;
}

Eigen::MatrixXd sample(const PointLocations& locations,
                       const Eigen::Ref<const Eigen::MatrixXd>& nodal_values) {
  const Eigen::Index n = locations.size();
  for (Eigen::Index p = 0; p < n; ++p) {
    if (locations.tet[static_cast<std::size_t>(p)] < 0)
      throw BadInput("sample: point " + std::to_string(p) +
                     " is outside the mesh: expected every point located in a tet");
    for (int k = 0; k < 4; ++k)
      if (locations.nodes(p, k) < 0 || locations.nodes(p, k) >= nodal_values.rows())
        throw BadInput("sample: point " + std::to_string(p) + " uses node " +
                       std::to_string(locations.nodes(p, k)) + " but the field has " +
                       std::to_string(nodal_values.rows()) + " nodes");
  }
  Eigen::MatrixXd out(n, nodal_values.cols());
#pragma omp parallel for schedule(static)
  for (Eigen::Index p = 0; p < n; ++p) {
    out.row(p) = locations.weights(p, 0) * nodal_values.row(locations.nodes(p, 0));
    for (int k = 1; k < 4; ++k)
      out.row(p) += locations.weights(p, k) * nodal_values.row(locations.nodes(p, k));
  }
  return out;
}

} // namespace myotwin::forward
