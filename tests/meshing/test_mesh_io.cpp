#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "myotwin/anatomy/polydata_io.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/meshing/fibre_directions.hpp"
#include "myotwin/meshing/mesh_io.hpp"
#include "test_support.hpp"

using namespace myotwin;
using namespace myotwin::meshing;
using anatomy::TissueClass;
using myotwin::testing::expect_error;
using myotwin::testing::TempDir;

namespace {

anatomy::TissueTable table() {
  anatomy::TissueTable t;
  t.tissues.push_back({1, "fat", TissueClass::fat, 0.04, 0.04, "", 0});
  t.tissues.push_back({2, "m", TissueClass::muscle, 0.5, 0.1, "", 0});
  return t;
}

/// A 20 x 20 x 60 mm box of muscle (label 2) with a fat lid at the top 4 mm.
TetMesh muscle_box() {
  TetMesh m = structured_box_mesh({0, 0, 0}, {0.02, 0.02, 0.06}, {5, 5, 15}, 2);
  for (std::int64_t t = 0; t < m.n_tets(); ++t) {
    const double z = 0.25 * (m.nodes_m(m.tets(t, 0), 2) + m.nodes_m(m.tets(t, 1), 2) +
                             m.nodes_m(m.tets(t, 2), 2) + m.nodes_m(m.tets(t, 3), 2));
    if (z > 0.056)
      m.labels[static_cast<std::size_t>(t)] = 1;
  }
  return m;
}

} // namespace

TEST(MeshIo, VtuRoundTripKeepsNodesTetsLabelsAndFibres) {
  TempDir dir;
  TetMesh m = muscle_box();
  assign_fibre_directions(m, table(), nullptr);
  write_mesh_vtu(dir / "mesh.vtu", m, table());
  const TetMesh r = read_mesh_vtu(dir / "mesh.vtu", nullptr);
  ASSERT_EQ(r.n_nodes(), m.n_nodes());
  EXPECT_EQ(0, std::memcmp(r.nodes_m.data(), m.nodes_m.data(),
                           sizeof(double) * static_cast<std::size_t>(m.nodes_m.size())));
  EXPECT_TRUE(r.tets == m.tets);
  EXPECT_EQ(r.labels, m.labels);
  EXPECT_TRUE(r.fibre_direction == m.fibre_direction);
  const auto grid = anatomy::read_tets_vtu(dir / "mesh.vtu");
  EXPECT_EQ(grid.cell_data_int.at("tissue_class")[0], static_cast<int>(TissueClass::muscle));
}

TEST(MeshIo, ReadingRejectsFilesThatAreNotTetMeshes) {
  TempDir dir;
  expect_error<IoError>([&] { read_mesh_vtu(dir / "absent.vtu"); }, {"absent.vtu", "not found"});
  {
    std::ofstream f(dir / "text.vtu");
    f << "this is not a mesh\n";
  }
  expect_error<BadInput>([&] { read_mesh_vtu(dir / "text.vtu"); },
                         {"text.vtu", "not a VTK XML UnstructuredGrid"});
  // A triangle surface saved as PolyData is not a tet mesh either.
  const TetMesh m = muscle_box();
  const TriArray b = boundary_faces(m);
  anatomy::write_surface_vtp(dir / "skin.vtp", m.nodes_m, b.cast<int>());
  std::filesystem::copy(dir / "skin.vtp", dir / "skin.vtu");
  expect_error<BadInput>([&] { read_mesh_vtu(dir / "skin.vtu"); }, {"skin.vtu", "not a VTK XML"});
  // A tet grid without labels.
  anatomy::TetGrid g;
  g.points_m = m.nodes_m;
  g.tets = m.tets;
  anatomy::write_tets_vtu(dir / "nolabels.vtu", g);
  expect_error<BadInput>([&] { read_mesh_vtu(dir / "nolabels.vtu"); },
                         {"nolabels.vtu", "tissue_label"});
  // Labels missing from the table.
  anatomy::TissueTable only_fat;
  only_fat.tissues.push_back({1, "fat", TissueClass::fat, 0.04, 0.04, "", 0});
  write_mesh_vtu(dir / "mesh.vtu", m, table());
  expect_error<BadInput>([&] { read_mesh_vtu(dir / "mesh.vtu", &only_fat); },
                         {"mesh.vtu", "tissue_label 2", "not in the tissue table"});
}

TEST(MeshIo, BoundarySurfaceFileHasTheOuterFaces) {
  TempDir dir;
  const TetMesh m = muscle_box();
  write_boundary_vtp(dir / "skin.vtp", m);
  const auto s = anatomy::read_surface_vtp(dir / "skin.vtp");
  EXPECT_EQ(s.triangles.rows(), 2 * (2 * 5 * 5 + 4 * 5 * 15));
  EXPECT_EQ(s.vertices_m.rows(), 6 * 6 * 16 - 4 * 4 * 14);
}

TEST(FibreDirections, FollowTheNearestFibresAndFallBackToThePrincipalAxis) {
  TetMesh m = muscle_box();
  // Without fibres: the principal axis of the muscle (z), zero in fat.
  auto report = assign_fibre_directions(m, table(), nullptr);
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].n_from_axis, report[0].n_tets);
  for (std::int64_t t = 0; t < m.n_tets(); ++t) {
    const Eigen::Vector3d f = m.fibre_direction.row(t);
    if (m.labels[static_cast<std::size_t>(t)] == 1) {
      EXPECT_EQ(f.norm(), 0.0);
    } else {
      // The Kuhn split's tet centroids tilt the axis by about 0.1 degree.
      EXPECT_NEAR(std::abs(f.z()), 1.0, 1e-5);
    }
  }
  // Fibres tilted 30 degrees in the x-z plane, on a 2 mm grid through the box.
  const double tilt = 30.0 * 3.14159265358979 / 180.0;
  const Eigen::Vector3d dir(std::sin(tilt), 0.0, std::cos(tilt));
  std::vector<Eigen::MatrixX3d> lines;
  for (double x = -0.03; x <= 0.05; x += 0.002)
    for (double y = 0.001; y < 0.02; y += 0.002) {
      Eigen::MatrixX3d l(80, 3);
      for (int i = 0; i < 80; ++i)
        l.row(i) = (Eigen::Vector3d(x, y, 0.0) + 0.001 * i * dir).transpose();
      lines.push_back(l);
    }
  anatomy::Polylines fibres = anatomy::make_polylines(lines);
  fibres.cell_data_int["muscle_label"].assign(lines.size(), 2);
  report = assign_fibre_directions(m, table(), &fibres);
  EXPECT_EQ(report[0].n_from_fibres, report[0].n_tets);
  EXPECT_NEAR(report[0].mean_angle_to_axis_deg, 30.0, 0.2);
  for (std::int64_t t = 0; t < m.n_tets(); ++t)
    if (m.labels[static_cast<std::size_t>(t)] == 2) {
      EXPECT_NEAR(std::abs(Eigen::Vector3d(m.fibre_direction.row(t)).dot(dir)), 1.0, 1e-9);
    }
  fibres.cell_data_int.clear();
  expect_error<BadInput>([&] { assign_fibre_directions(m, table(), &fibres); }, {"muscle_label"});
}
