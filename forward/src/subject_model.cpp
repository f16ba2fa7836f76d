#include "myotwin/forward/subject_model.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/forward/conductor/lead_field_run.hpp"
#include "myotwin/meshing/mesh_io.hpp"

namespace myotwin::forward {

namespace {

/// The centroids of the muscle tets, for the nearest muscle tet of a point outside the mesh,
/// bucketed in a uniform grid (about 4 centroids per cell) so that a query visits the cells
/// around the point only.
struct MuscleTets {
  std::vector<std::int64_t> tets;
  Eigen::MatrixX3d centroids_m;
  Eigen::Vector3d lo = Eigen::Vector3d::Zero(); ///< grid corner [m]
  double h = 1.0;                               ///< cell size [m]
  std::array<std::int64_t, 3> n{1, 1, 1};       ///< cells per axis
  std::vector<std::int64_t> cell_start;         ///< n_cells + 1 offsets into cell_items
  std::vector<std::int64_t> cell_items;         ///< centroid indices of each cell, ascending

  [[nodiscard]] Eigen::Vector3d centroid(std::int64_t k) const {
    return centroids_m.row(k).transpose();
  }
  [[nodiscard]] std::int64_t cell_of(double x, int a) const {
    return std::clamp(static_cast<std::int64_t>(std::floor((x - lo[a]) / h)), std::int64_t{0},
                      n[static_cast<std::size_t>(a)] - 1);
  }
  /// Buckets the centroids (call once after filling centroids_m).
  void build_grid() {
    const auto m = centroids_m.rows();
    if (m == 0)
      return;
    lo = centroids_m.colwise().minCoeff().transpose();
    const Eigen::Vector3d extent = centroids_m.colwise().maxCoeff().transpose() - lo;
    const double volume = std::max(extent.prod(), 1e-30);
    h = std::max(std::cbrt(4.0 * volume / static_cast<double>(m)), 1e-3 * extent.maxCoeff());
    if (!(h > 0.0))
      h = 1.0;
    for (int a = 0; a < 3; ++a)
      n[static_cast<std::size_t>(a)] =
          std::min<std::int64_t>(1024, static_cast<std::int64_t>(extent[a] / h) + 1);
    std::vector<std::int64_t> cell(static_cast<std::size_t>(m));
    cell_start.assign(static_cast<std::size_t>(n[0] * n[1] * n[2] + 1), 0);
    for (Eigen::Index k = 0; k < m; ++k) {
      const auto c = cell_of(centroids_m(k, 0), 0) +
                     n[0] * (cell_of(centroids_m(k, 1), 1) + n[1] * cell_of(centroids_m(k, 2), 2));
      cell[static_cast<std::size_t>(k)] = c;
      ++cell_start[static_cast<std::size_t>(c + 1)];
    }
    for (std::size_t c = 1; c < cell_start.size(); ++c)
      cell_start[c] += cell_start[c - 1];
    cell_items.resize(static_cast<std::size_t>(m));
    std::vector<std::int64_t> fill(cell_start.begin(), cell_start.end() - 1);
    for (Eigen::Index k = 0; k < m; ++k) // ascending k within each cell
      cell_items[static_cast<std::size_t>(
          fill[static_cast<std::size_t>(cell[static_cast<std::size_t>(k)])]++)] = k;
  }
  /// Index into `tets` of the tet whose centroid is nearest `p` (lowest index on ties, as a
  /// scan over all of them gives); -1 when there is no muscle tet. Visits rings of cells around
  /// p's cell until no unvisited cell can hold a centroid as near as the best found.
  [[nodiscard]] std::int64_t nearest(const Eigen::Vector3d& p) const {
    if (centroids_m.rows() == 0)
      return -1;
    std::array<std::int64_t, 3> q{};
    for (int a = 0; a < 3; ++a)
      q[static_cast<std::size_t>(a)] = cell_of(p[a], a);
    std::int64_t best = -1;
    double best_d2 = std::numeric_limits<double>::infinity();
    for (std::int64_t r = 0;; ++r) {
      std::array<std::int64_t, 3> from{}, to{};
      for (std::size_t a = 0; a < 3; ++a) {
        from[a] = std::max<std::int64_t>(0, q[a] - r);
        to[a] = std::min(n[a] - 1, q[a] + r);
      }
      for (std::int64_t k = from[2]; k <= to[2]; ++k)
        for (std::int64_t j = from[1]; j <= to[1]; ++j)
          for (std::int64_t i = from[0]; i <= to[0]; ++i) {
            if (std::max({std::abs(i - q[0]), std::abs(j - q[1]), std::abs(k - q[2])}) != r)
              continue; // visited in an earlier ring
            const auto c = static_cast<std::size_t>(i + n[0] * (j + n[1] * k));
            for (auto e = cell_start[c]; e < cell_start[c + 1]; ++e) {
              const auto t = cell_items[static_cast<std::size_t>(e)];
              const double d2 = (centroids_m.row(t) - p.transpose()).squaredNorm();
              if (d2 < best_d2 || (d2 == best_d2 && t < best)) {
                best_d2 = d2;
                best = t;
              }
            }
          }
      // The nearest unvisited cell lies beyond the ring's box on an axis with cells left.
      double bound = std::numeric_limits<double>::infinity();
      bool cells_left = false;
      for (std::size_t a = 0; a < 3; ++a) {
        const auto ai = static_cast<int>(a);
        if (q[a] - r > 0) {
          cells_left = true;
          bound = std::min(bound, p[ai] - (lo[ai] + static_cast<double>(q[a] - r) * h));
        }
        if (q[a] + r < n[a] - 1) {
          cells_left = true;
          bound = std::min(bound, lo[ai] + static_cast<double>(q[a] + r + 1) * h - p[ai]);
        }
      }
      if (!cells_left || (best >= 0 && bound > 0.0 && best_d2 < bound * bound))
        return best;
    }
  }
};

MuscleTets muscle_tets(const meshing::TetMesh& mesh, const anatomy::TissueTable& tissues) {
  MuscleTets m;
  for (std::int64_t t = 0; t < mesh.n_tets(); ++t) {
    const auto* tissue = tissues.find(mesh.labels[static_cast<std::size_t>(t)]);
    if (tissue != nullptr && tissue->tissue_class == anatomy::TissueClass::muscle)
      m.tets.push_back(t);
  }
  m.centroids_m.resize(static_cast<Eigen::Index>(m.tets.size()), 3);
  for (std::size_t k = 0; k < m.tets.size(); ++k) {
    Eigen::Vector3d c = Eigen::Vector3d::Zero();
    for (int i = 0; i < 4; ++i)
      c += 0.25 * mesh.nodes_m.row(mesh.tets(m.tets[k], i)).transpose();
    m.centroids_m.row(static_cast<Eigen::Index>(k)) = c.transpose();
  }
  m.build_grid();
  return m;
}

} // namespace

TransferFunction nearest_muscle_transfer_function(const meshing::TetMesh& mesh,
                                                  const anatomy::TissueTable& tissues,
                                                  const PointLocator& locator,
                                                  const Eigen::MatrixXd& lead_fields_V_per_A) {
  auto muscle = std::make_shared<MuscleTets>(muscle_tets(mesh, tissues));
  return [&locator, &mesh, &lead_fields_V_per_A, muscle](const Eigen::MatrixX3d& points_m,
                                                         const Eigen::MatrixX3d& /*directions*/) {
    PointLocations loc = locator.locate(points_m);
    for (Eigen::Index k = 0; k < loc.size(); ++k) {
      if (loc.tet[static_cast<std::size_t>(k)] >= 0)
        continue;
      const auto near = muscle->nearest(points_m.row(k).transpose());
      if (near < 0)
        continue; // no muscle: sample() names the point
      const auto t = muscle->tets[static_cast<std::size_t>(near)];
      Eigen::Vector4d w = locator.barycentric(t, points_m.row(k).transpose()).cwiseMax(0.0);
      w /= w.sum() > 0.0 ? w.sum() : 1.0;
      if (!(w.sum() > 0.0))
        w.setConstant(0.25);
      loc.tet[static_cast<std::size_t>(k)] = t;
      loc.nodes.row(k) = mesh.tets.row(t);
      loc.weights.row(k) = w.transpose();
    }
    return sample(loc, lead_fields_V_per_A);
  };
}

std::unique_ptr<SubjectForwardModel> load_subject_forward_model(const SubjectModelFiles& files,
                                                                const ElectrodeConfig& electrodes,
                                                                std::int64_t reference_node) {
  auto model = std::make_unique<SubjectForwardModel>();
  const anatomy::SubjectFiles subject = anatomy::read_subject_file(files.subject);
  model->tissues = anatomy::read_tissue_table(subject.tissues);
  model->anatomy = anatomy::read_subject_anatomy(files.anatomy_dir);
  model->mesh = meshing::read_mesh_vtu(files.mesh, &model->tissues);

  // The lead fields of the same electrodes on the same mesh and conductivities.
  model->layout = place_electrodes(model->mesh, model->tissues, electrodes);
  const auto key =
      key_hex(lead_field_identity(model->mesh, model->tissues, reference_node, model->layout).key);
  auto cache = read_lead_field_cache(files.lead_fields, key, "");
  if (!cache)
    throw BadInput(files.lead_fields.string() + ": its key (" + read_cache_key(files.lead_fields) +
                   ") is not that of this mesh, these conductivities and electrodes (" + key + ")" +
                   (files.rerun_hint.empty() ? "" : ": " + files.rerun_hint));
  model->lead_fields = std::move(*cache);
  log_info("lead fields: ", model->lead_fields.lead_fields_V_per_A.cols(),
           " electrodes, reference ", model->lead_fields.reference, " (cache ", key, ")");
  model->locator = std::make_unique<PointLocator>(model->mesh);
  model->transfer = nearest_muscle_transfer_function(model->mesh, model->tissues, *model->locator,
                                                     model->lead_fields.lead_fields_V_per_A);
  // Fibre points outside the mesh: counted and reported once.
  {
    const Eigen::MatrixX3d points = fibre_points(model->anatomy);
    const PointLocations loc = model->locator->locate(points);
    const MuscleTets muscle = muscle_tets(model->mesh, model->tissues);
    for (Eigen::Index k = 0; k < loc.size(); ++k)
      if (loc.tet[static_cast<std::size_t>(k)] < 0) {
        ++model->fibre_points_moved;
        const auto t = muscle.nearest(points.row(k).transpose());
        if (t >= 0)
          model->fibre_points_moved_max_m =
              std::max(model->fibre_points_moved_max_m,
                       (muscle.centroid(t) - points.row(k).transpose()).norm());
      }
    if (model->fibre_points_moved > 0)
      log_warning(model->fibre_points_moved, " of ", points.rows(),
                  " fibre points lie outside the mesh (up to ",
                  model->fibre_points_moved_max_m * 1e3,
                  " mm from the nearest muscle tet's centroid): taken at the nearest muscle tet");
  }

  // Skin: the nodes of the boundary faces.
  const meshing::TriArray skin = meshing::boundary_faces(model->mesh);
  std::vector<char> on_skin(static_cast<std::size_t>(model->mesh.n_nodes()), 0);
  for (Eigen::Index f = 0; f < skin.rows(); ++f)
    for (int c = 0; c < 3; ++c)
      on_skin[static_cast<std::size_t>(skin(f, c))] = 1;
  model->skin_points_m.resize(std::count(on_skin.begin(), on_skin.end(), 1), 3);
  for (std::size_t i = 0, row = 0; i < on_skin.size(); ++i)
    if (on_skin[i])
      model->skin_points_m.row(static_cast<Eigen::Index>(row++)) =
          model->mesh.nodes_m.row(static_cast<Eigen::Index>(i));
  return model;
}

} // namespace myotwin::forward
