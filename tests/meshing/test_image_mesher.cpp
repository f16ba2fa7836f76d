#include <algorithm>
#include <cmath>
#include <numbers>

#include <gtest/gtest.h>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/phantom.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/meshing/image_mesher.hpp"
#include "myotwin/meshing/mesh_quality.hpp"
#include "test_support.hpp"

using namespace myotwin;
using namespace myotwin::meshing;
using anatomy::LabelVolume;
using anatomy::TissueClass;

namespace {

anatomy::TissueTable two_tissues() {
  anatomy::TissueTable t;
  t.tissues.push_back({1, "box", TissueClass::fat, 0.04, 0.04, "", 0});
  t.tissues.push_back({2, "ball", TissueClass::muscle, 0.5, 0.1, "", 0});
  return t;
}

/// n^3 voxels of size h [m], label 1 everywhere, label 2 inside a sphere of radius r [m]
/// around the centre of the box.
LabelVolume sphere_in_cube(std::int64_t n, double h_m, double r_m) {
  LabelVolume v;
  v.size = {n, n, n};
  v.spacing_m = Eigen::Vector3d::Constant(h_m);
  v.labels.assign(static_cast<std::size_t>(n * n * n), 1);
  const double c = 0.5 * static_cast<double>(n - 1);
  for (std::int64_t k = 0; k < n; ++k)
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < n; ++i) {
        const Eigen::Vector3d d(static_cast<double>(i) - c, static_cast<double>(j) - c,
                                static_cast<double>(k) - c);
        if ((d * h_m).norm() <= r_m)
          v.labels[static_cast<std::size_t>(v.index(i, j, k))] = 2;
      }
  return v;
}

double label_volume_m3(const TetMesh& m, std::int32_t label) {
  double v = 0.0;
  for (std::int64_t t = 0; t < m.n_tets(); ++t)
    if (m.labels[static_cast<std::size_t>(t)] == label)
      v += tet_volume_m3(m, t);
  return v;
}

} // namespace

TEST(ImageMesher, SphereInCubeVolumesMatchAnalyticAndAnglesStayAboveFiveDegrees) {
  const double h = 1e-3, r = 12e-3;
  const std::int64_t n = 40;
  const LabelVolume v = sphere_in_cube(n, h, r);
  MeshParams p;
  p.class_cell_size_mm[TissueClass::fat] = 3.0;
  p.class_cell_size_mm[TissueClass::muscle] = 2.0;
  const auto res = mesh_label_volume(v, two_tissues(), p, 7);
  const double sphere = 4.0 / 3.0 * std::numbers::pi * r * r * r;
  const double cube = std::pow(static_cast<double>(n) * h, 3) - sphere;
  EXPECT_NEAR(label_volume_m3(res.mesh, 2) / sphere, 1.0, 0.03);
  EXPECT_NEAR(label_volume_m3(res.mesh, 1) / cube, 1.0, 0.03);
  const MeshQuality q = mesh_quality(res.mesh);
  EXPECT_GT(q.min_dihedral_deg, 5.0);
  EXPECT_EQ(q.n_degenerate, 0);
  for (std::int64_t t = 0; t < res.mesh.n_tets(); ++t)
    ASSERT_GT(tet_volume_m3(res.mesh, t), 0.0);
  std::cout << "sphere-in-cube: " << res.mesh.n_nodes() << " nodes, " << res.mesh.n_tets()
            << " tets, sphere volume ratio " << label_volume_m3(res.mesh, 2) / sphere
            << ", cube ratio " << label_volume_m3(res.mesh, 1) / cube << ", min dihedral "
            << q.min_dihedral_deg << " deg, " << res.total_time_s << " s\n";
}
