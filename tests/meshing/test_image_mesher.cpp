#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include <gtest/gtest.h>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/phantom.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/config.hpp"
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

namespace {

/// Inverse of the physical map: the voxel-frame position [m] of a physical point.
Eigen::Vector3d to_voxel_frame(const LabelVolume& v, const Eigen::Vector3d& x_m) {
  return v.direction.transpose() * (x_m - v.origin_m);
}

Eigen::Matrix3d rotation(double a_rad, double b_rad, double c_rad) {
  return (Eigen::AngleAxisd(a_rad, Eigen::Vector3d::UnitZ()) *
          Eigen::AngleAxisd(b_rad, Eigen::Vector3d::UnitY()) *
          Eigen::AngleAxisd(c_rad, Eigen::Vector3d::UnitX()))
      .toRotationMatrix();
}

} // namespace

TEST(ImageMesher, MeshLiesWhereTheImageLiesWithAnisotropicSpacingAndRotatedDirection) {
  // A block filling the whole image: its physical extent is the voxels' extent, i.e. from
  // -h/2 to (n - 1/2) h along each image axis from voxel 0's centre.
  LabelVolume v;
  v.size = {12, 10, 8};
  v.spacing_m = Eigen::Vector3d(0.6e-3, 0.9e-3, 1.5e-3);
  v.origin_m = Eigen::Vector3d(0.1, -0.2, 0.05);
  v.direction = rotation(0.4, -0.7, 1.1);
  if (v.direction.determinant() > 0) // also exercise a left-handed frame (flipped k axis)
    v.direction.col(2) *= -1.0;
  v.labels.assign(static_cast<std::size_t>(v.n_voxels()), 1);
  anatomy::TissueTable t;
  t.tissues.push_back({1, "block", TissueClass::muscle, 0.5, 0.1, "", 0});
  MeshParams p;
  p.class_cell_size_mm[TissueClass::muscle] = 1.5;
  const auto res = mesh_label_volume(v, t, p, 3);
  Eigen::Vector3d lo = Eigen::Vector3d::Constant(1e9), hi = Eigen::Vector3d::Constant(-1e9);
  for (Eigen::Index i = 0; i < res.mesh.nodes_m.rows(); ++i) {
    const Eigen::Vector3d q = to_voxel_frame(v, res.mesh.nodes_m.row(i).transpose());
    lo = lo.cwiseMin(q);
    hi = hi.cwiseMax(q);
  }
  for (int a = 0; a < 3; ++a) {
    const double h = v.spacing_m[a];
    const double n = static_cast<double>(v.size[static_cast<std::size_t>(a)]);
    // Mesh_3 rounds the block's edges a little (no feature protection in 5.5): the extreme
    // nodes lie on the faces within the facet distance (0.4 mm).
    EXPECT_NEAR(lo[a], -0.5 * h, 0.25e-3) << "axis " << a;
    EXPECT_NEAR(hi[a], (n - 0.5) * h, 0.25e-3) << "axis " << a;
  }
  double volume = 0.0;
  for (std::int64_t k = 0; k < res.mesh.n_tets(); ++k) {
    ASSERT_GT(tet_volume_m3(res.mesh, k), 0.0) << "tet " << k << " is inverted";
    volume += tet_volume_m3(res.mesh, k);
  }
  EXPECT_NEAR(volume / (static_cast<double>(v.n_voxels()) * v.voxel_volume_m3()), 1.0, 0.05);
}

TEST(ImageMesher, SameInputsAndSeedGiveABitIdenticalMesh) {
  const LabelVolume v = sphere_in_cube(30, 1e-3, 9e-3);
  MeshParams p;
  const auto a = mesh_label_volume(v, two_tissues(), p, 11);
  const auto b = mesh_label_volume(v, two_tissues(), p, 11);
  ASSERT_EQ(a.mesh.n_nodes(), b.mesh.n_nodes());
  ASSERT_EQ(a.mesh.n_tets(), b.mesh.n_tets());
  EXPECT_EQ(0, std::memcmp(a.mesh.nodes_m.data(), b.mesh.nodes_m.data(),
                           sizeof(double) * static_cast<std::size_t>(a.mesh.nodes_m.size())));
  EXPECT_TRUE(a.mesh.tets == b.mesh.tets);
  EXPECT_EQ(a.mesh.labels, b.mesh.labels);
}

TEST(ImageMesher, SmallIslandsAreMergedButEveryLabelKeepsItsLargestPart) {
  LabelVolume v = sphere_in_cube(20, 1e-3, 6e-3);
  // Two stray voxels of label 2 in the box, and a label 3 that exists only as one voxel.
  v.labels[static_cast<std::size_t>(v.index(2, 2, 2))] = 2;
  v.labels[static_cast<std::size_t>(v.index(17, 3, 4))] = 2;
  v.labels[static_cast<std::size_t>(v.index(3, 16, 15))] = 3;
  const auto report = remove_small_islands(v, 8);
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].label, 2);
  EXPECT_EQ(report[0].n_islands, 2);
  EXPECT_EQ(report[0].n_voxels, 2);
  EXPECT_EQ(v.at(2, 2, 2), 1);
  EXPECT_EQ(v.at(17, 3, 4), 1);
  EXPECT_EQ(v.at(3, 16, 15), 3); // the only part of label 3 stays
}

TEST(ImageMesher, RejectsAnEmptyImageAndLabelsMissingFromTheTable) {
  LabelVolume empty;
  empty.size = {4, 4, 4};
  empty.labels.assign(64, 0);
  myotwin::testing::expect_error<BadInput>(
      [&] { mesh_label_volume(empty, two_tissues(), MeshParams{}, 1); }, {"no foreground voxels"});
  LabelVolume v = sphere_in_cube(10, 1e-3, 3e-3);
  v.labels[0] = 9;
  myotwin::testing::expect_error<BadInput>(
      [&] { mesh_label_volume(v, two_tissues(), MeshParams{}, 1); }, {"9"});
  MeshParams p;
  p.tissue_cell_size_mm["femur"] = 3.0;
  myotwin::testing::expect_error<BadInput>(
      [&] { mesh_label_volume(sphere_in_cube(10, 1e-3, 3e-3), two_tissues(), p, 1); },
      {"tissue_cell_sizes", "femur", "no tissue of that name"});
}

TEST(ImageMesher, CriteriaThatAreZeroOrNegativeAreRejectedWithTheirKey) {
  const auto read = [](const std::string& text) {
    ConfigReader r(nlohmann::json::parse(text), "run.json");
    auto mesh = r.section("mesh");
    read_mesh_params(mesh);
    r.finish();
  };
  myotwin::testing::expect_error<BadInput>(
      [&] { read(R"({"mesh": {"cell_size_mm": {"skin": 0}}})"); },
      {"run.json", "mesh.cell_size_mm.skin", "0", "must be in [0.05, 1000]"});
  myotwin::testing::expect_error<BadInput>(
      [&] { read(R"({"mesh": {"facet_distance_mm": {"fat": -0.1}}})"); },
      {"mesh.facet_distance_mm.fat", "-0.1"});
  myotwin::testing::expect_error<BadInput>([&] { read(R"({"mesh": {"facet_angle_deg": 0}})"); },
                                           {"mesh.facet_angle_deg"});
  myotwin::testing::expect_error<BadInput>(
      [&] { read(R"({"mesh": {"tissue_cell_sizes": [{"tissue": "skin", "cell_size_mm": -2}]}})"); },
      {"mesh.tissue_cell_sizes[0].cell_size_mm", "-2"});
  myotwin::testing::expect_error<BadInput>([&] { read(R"({"mesh": {"cell_sise_mm": 3}})"); },
                                           {"mesh.cell_sise_mm", "unknown key"});
}

/// The sample forearm, meshed once at the default criteria for the tests below (~15 s).
class ForearmMesh : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    subject_ = new anatomy::Subject(anatomy::load_subject(
        std::filesystem::path(MYOTWIN_SOURCE_DIR) / "sample_data/forearm/subject.json"));
    result_ = new ImageMeshResult(
        mesh_label_volume(subject_->volume, subject_->tissues, MeshParams{}, 1993));
  }
  static void TearDownTestSuite() {
    delete result_;
    delete subject_;
  }
  // One process meshes once (ctest starts a process per test): the checks are steps.
  void check_skin_layer();
  void check_tissue_volumes();
  static anatomy::Subject* subject_;
  static ImageMeshResult* result_;
};
anatomy::Subject* ForearmMesh::subject_ = nullptr;
ImageMeshResult* ForearmMesh::result_ = nullptr;

void ForearmMesh::check_skin_layer() {
  const TetMesh& m = result_->mesh;
  const auto q = mesh_quality(m, &subject_->volume, &subject_->tissues);
  EXPECT_EQ(q.n_components, 1);
  const auto skin = std::find_if(q.tissues.begin(), q.tissues.end(),
                                 [](const TissueQuality& t) { return t.name == "skin"; });
  ASSERT_NE(skin, q.tissues.end());
  EXPECT_EQ(skin->n_components, 1);
  // Every outer face on the side of the limb (normal across the limb axis z) bounds skin; only
  // the two cut ends show the inner tissues.
  std::vector<std::int64_t> face_tet;
  const TriArray faces = boundary_faces(m, &face_tet);
  std::int64_t n_side = 0, n_side_not_skin = 0;
  // The limb's cut ends: the extent of the mesh along the image's k axis (z).
  const Eigen::VectorXd node_z = (m.nodes_m.rowwise() - subject_->volume.origin_m.transpose()) *
                                 subject_->volume.direction.col(2);
  const double z_lo = node_z.minCoeff() + 3e-3, z_hi = node_z.maxCoeff() - 3e-3;
  for (Eigen::Index f = 0; f < faces.rows(); ++f) {
    const Eigen::Vector3d a = m.nodes_m.row(faces(f, 0));
    const Eigen::Vector3d n = (Eigen::Vector3d(m.nodes_m.row(faces(f, 1))) - a)
                                  .cross(Eigen::Vector3d(m.nodes_m.row(faces(f, 2))) - a)
                                  .normalized();
    // Away from the two cut ends, whose rims Mesh_3 rounds (no feature protection in 5.5).
    const double z = (subject_->volume.direction.transpose() * (a - subject_->volume.origin_m))[2];
    if (std::abs(n.dot(subject_->volume.direction.col(2))) > 0.5 || z < z_lo || z > z_hi)
      continue;
    ++n_side;
    const bool not_skin =
        m.labels[static_cast<std::size_t>(face_tet[static_cast<std::size_t>(f)])] != 1;
    n_side_not_skin += not_skin;
  }
  EXPECT_GT(n_side, 1000);
  EXPECT_EQ(n_side_not_skin, 0) << "of " << n_side << " side faces";
  // Through the skin: no tet of fat or muscle touches the outside on the side of the limb,
  // and the skin layer exists at every slice: its tets cover the whole length.
  double zmin = 1e9, zmax = -1e9;
  for (std::int64_t t = 0; t < m.n_tets(); ++t) {
    if (m.labels[static_cast<std::size_t>(t)] != 1)
      continue;
    const double z = node_z[m.tets(t, 0)];
    zmin = std::min(zmin, z);
    zmax = std::max(zmax, z);
  }
  EXPECT_GT(zmax - zmin, node_z.maxCoeff() - node_z.minCoeff() - 6e-3);
}

void ForearmMesh::check_tissue_volumes() {
  const auto q = mesh_quality(result_->mesh, &subject_->volume, &subject_->tissues);
  EXPECT_GT(q.n_tets, 100000);
  EXPECT_LT(q.n_tets, 600000);
  EXPECT_EQ(q.n_degenerate, 0);
  EXPECT_GT(q.min_dihedral_deg, 1.0);
  EXPECT_GT(q.dihedral_p01_deg, 8.0);
  for (const auto& t : q.tissues) {
    EXPECT_GT(t.n_tets, 0) << t.name;
    EXPECT_NEAR(t.mesh_volume_m3 / t.voxel_volume_m3, 1.0, 0.05) << t.name;
  }
}

TEST_F(ForearmMesh, SkinIsOneConnectedLayerAndEveryTissueVolumeIsWithinFivePercent) {
  {
    SCOPED_TRACE("skin layer");
    check_skin_layer();
  }
  {
    SCOPED_TRACE("tissue volumes");
    check_tissue_volumes();
  }
}

TEST(ImageMesher, RealCtSegmentationMeshesWithAllItsLabels) {
  const auto path = myotwin::testing::shared_data("real/totalsegmentator_ct/organs_seg.nii.gz");
  if (path.empty())
    GTEST_SKIP() << "../shared/data/real/totalsegmentator_ct is absent";
  const auto s = anatomy::load_subject(std::filesystem::path(MYOTWIN_SOURCE_DIR) /
                                       "sample_data/totalsegmentator_ct/subject.json");
  const auto res = mesh_label_volume(s.volume, s.tissues, MeshParams{}, 1993);
  const auto q = mesh_quality(res.mesh, &s.volume, &s.tissues);
  const auto hist = anatomy::label_histogram(s.volume);
  for (const auto& [label, count] : hist) {
    if (label == 0)
      continue;
    const auto t = std::find_if(q.tissues.begin(), q.tissues.end(),
                                [&](const TissueQuality& e) { return e.label == label; });
    ASSERT_NE(t, q.tissues.end());
    EXPECT_GT(t->n_tets, 0) << "label " << label << " (" << count << " voxels) has no tets";
  }
  EXPECT_EQ(q.n_degenerate, 0);
  EXPECT_GT(q.min_dihedral_deg, 1.0);
  // The image is in an oblique frame (sform): the mesh must lie inside the image's extent.
  for (Eigen::Index i = 0; i < res.mesh.nodes_m.rows(); ++i) {
    const Eigen::Vector3d c = to_voxel_frame(s.volume, res.mesh.nodes_m.row(i).transpose())
                                  .cwiseQuotient(s.volume.spacing_m);
    for (int a = 0; a < 3; ++a) {
      // Surface points are found by bisection to 1e-3 of the image diagonal (CGAL's default).
      ASSERT_GE(c[a], -0.5 - 0.05);
      ASSERT_LE(c[a], static_cast<double>(s.volume.size[static_cast<std::size_t>(a)]) - 0.5 + 0.05);
    }
  }
}
