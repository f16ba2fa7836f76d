#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "myotwin/core/error.hpp"
#include "myotwin/meshing/mesh_quality.hpp"
#include "myotwin/meshing/tet_mesh.hpp"
#include "test_support.hpp"

using namespace myotwin;
using namespace myotwin::meshing;

TEST(TetMesh, StructuredBoxHasPositiveTetsThatFillTheBox) {
  const TetMesh m = structured_box_mesh({0, 0, 0}, {0.02, 0.03, 0.04}, {2, 3, 4});
  EXPECT_EQ(m.n_nodes(), 3 * 4 * 5);
  EXPECT_EQ(m.n_tets(), 6 * 2 * 3 * 4);
  double total = 0.0;
  for (std::int64_t t = 0; t < m.n_tets(); ++t) {
    const double v = tet_volume_m3(m, t);
    EXPECT_NEAR(v, 0.01 * 0.01 * 0.01 / 6.0, 1e-15);
    total += v;
  }
  EXPECT_NEAR(total, 0.02 * 0.03 * 0.04, 1e-15);
}

TEST(TetMesh, BoundaryOfABoxIsItsSixSidesOrientedOutward) {
  const TetMesh m = structured_box_mesh({0, 0, 0}, {1, 1, 1}, {3, 3, 3});
  const TriArray b = boundary_faces(m);
  EXPECT_EQ(b.rows(), 6 * 9 * 2);
  // Divergence theorem: sum of (centroid . n) * area over the closed surface = 3 V.
  double flux = 0.0;
  for (Eigen::Index f = 0; f < b.rows(); ++f) {
    const Eigen::Vector3d a = m.nodes_m.row(b(f, 0));
    const Eigen::Vector3d c1 = m.nodes_m.row(b(f, 1));
    const Eigen::Vector3d c2 = m.nodes_m.row(b(f, 2));
    const Eigen::Vector3d an = 0.5 * (c1 - a).cross(c2 - a);
    flux += ((a + c1 + c2) / 3.0).dot(an);
  }
  EXPECT_NEAR(flux, 3.0, 1e-12);
}

TEST(TetMesh, LabelSurfaceAndComponentsSeeTwoSeparateBlocks) {
  TetMesh m = structured_box_mesh({0, 0, 0}, {3, 1, 1}, {3, 1, 1}, 1);
  // Label the middle cube 2: the two label-1 cubes are then two components.
  for (std::int64_t t = 6; t < 12; ++t)
    m.labels[static_cast<std::size_t>(t)] = 2;
  const auto comp = tet_components(m, {1});
  EXPECT_EQ(comp[0], 0);
  EXPECT_EQ(comp[17], 1);
  EXPECT_EQ(comp[7], -1);
  const auto all = tet_components(m);
  EXPECT_EQ(*std::max_element(all.begin(), all.end()), 0);
  // The middle cube's surface: 6 sides of 2 triangles.
  EXPECT_EQ(label_surface(m, 2).rows(), 12);
}

TEST(TetMesh, StructuredBoxRejectsBadSizes) {
  myotwin::testing::expect_error<BadInput>(
      [] {
        structured_box_mesh({0, 0, 0}, {1, 1, 1}, {0, 1, 1});
      },
      {"axis 0", "= 0", ">= 1"});
  myotwin::testing::expect_error<BadInput>(
      [] {
        structured_box_mesh({0, 0, 0}, {1, -1, 1}, {1, 1, 1});
      },
      {"axis 1", "must be > 0"});
}

TEST(TetMesh, RegularTetHasTheClosedFormAnglesAndRadiusEdgeRatio) {
  // Vertices of a regular tet inscribed in a cube: every dihedral angle is acos(1/3) =
  // 70.5288 degrees, circumradius / edge = sqrt(6) / 4.
  TetMesh m;
  m.nodes_m.resize(4, 3);
  m.nodes_m << 1, 1, 1, 1, -1, -1, -1, 1, -1, -1, -1, 1;
  m.tets.resize(1, 4);
  m.tets << 0, 1, 2, 3;
  m.labels = {1};
  if (tet_volume_m3(m, 0) < 0)
    std::swap(m.tets(0, 2), m.tets(0, 3));
  for (const double a : tet_dihedral_angles_deg(m, 0))
    EXPECT_NEAR(a, std::acos(1.0 / 3.0) * 180.0 / 3.14159265358979323846, 1e-9);
  EXPECT_NEAR(tet_radius_edge_ratio(m, 0), std::sqrt(6.0) / 4.0, 1e-12);
  // A flat (degenerate) tet: angles 0 and 180, counted by the quality report.
  m.nodes_m.row(3) << 0, 0, 0;
  m.nodes_m.row(0) << 1, -1, 0;
  m.nodes_m.row(1) << -1, -1, 0;
  m.nodes_m.row(2) << 0, 1, 0;
  const auto q = mesh_quality(m);
  EXPECT_EQ(q.n_degenerate, 1);
  EXPECT_EQ(q.n_isolated, 1);
}
