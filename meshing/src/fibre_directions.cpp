#include "myotwin/meshing/fibre_directions.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <unordered_map>

#include <Eigen/Eigenvalues>

#include "myotwin/core/error.hpp"

namespace myotwin::meshing {

namespace {

/// Points with unit tangents in uniform buckets, for nearest-neighbour queries.
class PointBuckets {
public:
  PointBuckets(std::vector<Eigen::Vector3d> points, std::vector<Eigen::Vector3d> tangents,
               double cell_m)
      : points_(std::move(points)), tangents_(std::move(tangents)), cell_(cell_m) {
    for (std::size_t i = 0; i < points_.size(); ++i)
      buckets_[key(cell_of(points_[i]))].push_back(static_cast<std::int64_t>(i));
  }
  [[nodiscard]] bool empty() const { return points_.empty(); }

  /// Weighted mean tangent of the k nearest points within `radius_m` (zero if none).
  [[nodiscard]] Eigen::Vector3d direction(const Eigen::Vector3d& x, int k, double radius_m) const {
    const auto c = cell_of(x);
    const auto rings = static_cast<std::int64_t>(std::ceil(radius_m / cell_));
    std::vector<std::pair<double, std::int64_t>> found;
    for (std::int64_t r = 0; r <= rings; ++r) {
      // Shell r of buckets around c.
      for (std::int64_t dz = -r; dz <= r; ++dz)
        for (std::int64_t dy = -r; dy <= r; ++dy)
          for (std::int64_t dx = -r; dx <= r; ++dx) {
            if (std::max({std::abs(dx), std::abs(dy), std::abs(dz)}) != r)
              continue;
            const auto it = buckets_.find(key({c[0] + dx, c[1] + dy, c[2] + dz}));
            if (it == buckets_.end())
              continue;
            for (const auto i : it->second) {
              const double d = (points_[static_cast<std::size_t>(i)] - x).norm();
              if (d <= radius_m)
                found.emplace_back(d, i);
            }
          }
      // Points beyond ring r are at least r * cell away: stop once k are nearer than that.
      if (static_cast<int>(found.size()) >= k) {
        std::sort(found.begin(), found.end());
        if (found[static_cast<std::size_t>(k - 1)].first <= static_cast<double>(r) * cell_)
          break;
      }
    }
    if (found.empty())
      return Eigen::Vector3d::Zero();
    std::sort(found.begin(), found.end());
    found.resize(std::min(found.size(), static_cast<std::size_t>(k)));
    const Eigen::Vector3d& ref = tangents_[static_cast<std::size_t>(found.front().second)];
    Eigen::Vector3d sum = Eigen::Vector3d::Zero();
    for (const auto& [d, i] : found) {
      const Eigen::Vector3d& t = tangents_[static_cast<std::size_t>(i)];
      sum += (t.dot(ref) < 0.0 ? -1.0 : 1.0) / (d + 1e-6) * t;
    }
    return sum.norm() > 0.0 ? Eigen::Vector3d(sum.normalized()) : ref;
  }

private:
  [[nodiscard]] std::array<std::int64_t, 3> cell_of(const Eigen::Vector3d& x) const {
    return {static_cast<std::int64_t>(std::floor(x[0] / cell_)),
            static_cast<std::int64_t>(std::floor(x[1] / cell_)),
            static_cast<std::int64_t>(std::floor(x[2] / cell_))};
  }
  static std::uint64_t key(const std::array<std::int64_t, 3>& c) {
    const auto u = [](std::int64_t v) {
      return static_cast<std::uint64_t>(v + (1 << 20)) & 0x1FFFFF;
    };
    return u(c[0]) | (u(c[1]) << 21) | (u(c[2]) << 42);
  }
  std::vector<Eigen::Vector3d> points_;
  std::vector<Eigen::Vector3d> tangents_;
  double cell_;
  std::unordered_map<std::uint64_t, std::vector<std::int64_t>> buckets_;
};

Eigen::Vector3d centroid(const TetMesh& m, std::int64_t t) {
  return 0.25 * (m.nodes_m.row(m.tets(t, 0)) + m.nodes_m.row(m.tets(t, 1)) +
                 m.nodes_m.row(m.tets(t, 2)) + m.nodes_m.row(m.tets(t, 3)))
                    .transpose();
}

} // namespace

std::vector<MuscleFibreDirections> assign_fibre_directions(TetMesh& mesh,
                                                           const anatomy::TissueTable& tissues,
                                                           const anatomy::Polylines* fibres, int k,
                                                           double max_distance_m) {
  mesh.fibre_direction = Eigen::MatrixX3d::Zero(mesh.n_tets(), 3);
  const std::vector<std::int64_t>* fibre_label = nullptr;
  if (fibres != nullptr) {
    const auto it = fibres->cell_data_int.find("muscle_label");
    if (it == fibres->cell_data_int.end())
      throw BadInput("fibres: no line array \"muscle_label\"; expected the anatomy's fibers.vtp");
    fibre_label = &it->second;
  }
  // Muscle tets by label.
  std::map<std::int32_t, std::vector<std::int64_t>> muscle_tets;
  for (std::int64_t t = 0; t < mesh.n_tets(); ++t) {
    const auto* tissue = tissues.find(mesh.labels[static_cast<std::size_t>(t)]);
    if (tissue != nullptr && tissue->tissue_class == anatomy::TissueClass::muscle)
      muscle_tets[tissue->label].push_back(t);
  }
  std::vector<MuscleFibreDirections> report;
  for (const auto& [label, tets] : muscle_tets) {
    MuscleFibreDirections r;
    r.label = label;
    r.name = tissues.find(label)->name;
    r.n_tets = static_cast<std::int64_t>(tets.size());
    // Principal axis: volume-weighted PCA of the tet centroids.
    double vol = 0.0;
    Eigen::Vector3d mean = Eigen::Vector3d::Zero();
    for (const auto t : tets) {
      const double v = std::abs(tet_volume_m3(mesh, t));
      vol += v;
      mean += v * centroid(mesh, t);
    }
    mean /= vol;
    Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
    for (const auto t : tets) {
      const Eigen::Vector3d d = centroid(mesh, t) - mean;
      cov += std::abs(tet_volume_m3(mesh, t)) * d * d.transpose();
    }
    const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> eig(cov);
    Eigen::Vector3d axis = eig.eigenvectors().col(2);
    if (axis[2] < 0.0)
      axis = -axis;
    // The fibre points of this muscle with their tangents.
    std::vector<Eigen::Vector3d> points, tangents;
    if (fibres != nullptr) {
      for (std::int64_t l = 0; l < fibres->n_lines(); ++l) {
        if ((*fibre_label)[static_cast<std::size_t>(l)] != label)
          continue;
        const auto a = fibres->offsets[static_cast<std::size_t>(l)];
        const auto b = fibres->offsets[static_cast<std::size_t>(l) + 1];
        for (auto i = a; i < b; ++i) {
          const Eigen::Vector3d t = fibres->points_m.row(std::min(i + 1, b - 1)) -
                                    fibres->points_m.row(std::max(i - 1, a));
          if (t.norm() == 0.0)
            continue;
          points.emplace_back(fibres->points_m.row(i).transpose());
          tangents.push_back(t.normalized());
        }
      }
    }
    const PointBuckets buckets(std::move(points), std::move(tangents), 1e-3);
    const auto n = static_cast<std::int64_t>(tets.size());
    std::vector<char> from_fibre(tets.size(), 0);
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) {
      const auto t = tets[static_cast<std::size_t>(i)];
      Eigen::Vector3d f = buckets.empty() ? Eigen::Vector3d::Zero()
                                          : buckets.direction(centroid(mesh, t), k, max_distance_m);
      from_fibre[static_cast<std::size_t>(i)] = f.squaredNorm() > 0.0;
      if (f.squaredNorm() == 0.0)
        f = axis;
      if (f.dot(axis) < 0.0)
        f = -f;
      mesh.fibre_direction.row(t) = f.transpose();
    }
    double angle_sum = 0.0;
    for (std::size_t i = 0; i < tets.size(); ++i) {
      r.n_from_fibres += from_fibre[i];
      const Eigen::Vector3d f = mesh.fibre_direction.row(tets[i]).transpose();
      angle_sum += std::acos(std::clamp(f.dot(axis), -1.0, 1.0)) * 180.0 / std::numbers::pi;
    }
    r.n_from_axis = r.n_tets - r.n_from_fibres;
    r.mean_angle_to_axis_deg = angle_sum / static_cast<double>(tets.size());
    report.push_back(r);
  }
  return report;
}

nlohmann::json to_json(const std::vector<MuscleFibreDirections>& report) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : report) {
    j.push_back({{"label", r.label},
                 {"name", r.name},
                 {"n_tets", r.n_tets},
                 {"n_from_fibres", r.n_from_fibres},
                 {"n_from_principal_axis", r.n_from_axis},
                 {"mean_angle_to_axis_deg", r.mean_angle_to_axis_deg}});
  }
  return j;
}

} // namespace myotwin::meshing
