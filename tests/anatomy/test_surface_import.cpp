// Surface import (STL -> muscle, fat and skin labels) and VTK PolyData files.

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <numbers>
#include <string>
#include <vector>

#include <Eigen/Geometry>
#include <gtest/gtest.h>
#include <omp.h>

#include "myotwin/anatomy/fibre_field.hpp"
#include "myotwin/anatomy/fibres.hpp"
#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/muscle_geometry.hpp"
#include "myotwin/anatomy/polydata_io.hpp"
#include "myotwin/anatomy/surface_import.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "test_support.hpp"

namespace myotwin::anatomy {
namespace {

using myotwin::testing::expect_error;
using myotwin::testing::TempDir;

constexpr double mm = 1e-3;
constexpr double pi = std::numbers::pi;

/// An icosphere of `radius_m` around `centre_m` (20 * 4^levels outward triangles).
TriangleSurface icosphere(double radius_m, const Eigen::Vector3d& centre_m, int levels) {
  const double t = (1.0 + std::sqrt(5.0)) / 2.0;
  std::vector<Eigen::Vector3d> v = {{-1, t, 0}, {1, t, 0}, {-1, -t, 0}, {1, -t, 0},
                                    {0, -1, t}, {0, 1, t}, {0, -1, -t}, {0, 1, -t},
                                    {t, 0, -1}, {t, 0, 1}, {-t, 0, -1}, {-t, 0, 1}};
  for (auto& p : v)
    p.normalize();
  std::vector<Eigen::Vector3i> f = {{0, 11, 5}, {0, 5, 1},  {0, 1, 7},   {0, 7, 10}, {0, 10, 11},
                                    {1, 5, 9},  {5, 11, 4}, {11, 10, 2}, {10, 7, 6}, {7, 1, 8},
                                    {3, 9, 4},  {3, 4, 2},  {3, 2, 6},   {3, 6, 8},  {3, 8, 9},
                                    {4, 9, 5},  {2, 4, 11}, {6, 2, 10},  {8, 6, 7},  {9, 8, 1}};
  for (int l = 0; l < levels; ++l) {
    std::map<std::pair<int, int>, int> mid;
    auto midpoint = [&](int a, int b) {
      const auto key = std::make_pair(std::min(a, b), std::max(a, b));
      const auto it = mid.find(key);
      if (it != mid.end())
        return it->second;
      v.push_back((v[static_cast<std::size_t>(a)] + v[static_cast<std::size_t>(b)]).normalized());
      const int id = static_cast<int>(v.size()) - 1;
      mid[key] = id;
      return id;
    };
    std::vector<Eigen::Vector3i> g;
    for (const auto& tri : f) {
      const int a = midpoint(tri[0], tri[1]), b = midpoint(tri[1], tri[2]),
                c = midpoint(tri[2], tri[0]);
      g.push_back({tri[0], a, c});
      g.push_back({tri[1], b, a});
      g.push_back({tri[2], c, b});
      g.push_back({a, b, c});
    }
    f = g;
  }
  TriangleSurface s;
  s.vertices_m.resize(static_cast<Eigen::Index>(v.size()), 3);
  for (std::size_t i = 0; i < v.size(); ++i)
    s.vertices_m.row(static_cast<Eigen::Index>(i)) = (centre_m + radius_m * v[i]).transpose();
  s.triangles.resize(static_cast<Eigen::Index>(f.size()), 3);
  for (std::size_t i = 0; i < f.size(); ++i)
    s.triangles.row(static_cast<Eigen::Index>(i)) = f[i].transpose();
  return s;
}

/// An axis-aligned box [lo, lo + size], 12 triangles.
TriangleSurface box(const Eigen::Vector3d& lo, const Eigen::Vector3d& size) {
  TriangleSurface s;
  s.vertices_m.resize(8, 3);
  for (int i = 0; i < 8; ++i)
    s.vertices_m.row(i) << lo.x() + ((i & 1) ? size.x() : 0.0), lo.y() + ((i & 2) ? size.y() : 0.0),
        lo.z() + ((i & 4) ? size.z() : 0.0);
  s.triangles.resize(12, 3);
  s.triangles << 0, 2, 1, 1, 2, 3, 4, 5, 6, 5, 7, 6, 0, 1, 4, 1, 5, 4, 2, 6, 3, 3, 6, 7, 0, 4, 2, 2,
      4, 6, 1, 3, 5, 3, 7, 5;
  return s;
}

/// Writes an ASCII STL (mm) of `s`.
void write_ascii_stl(const std::filesystem::path& path, const TriangleSurface& s) {
  std::ofstream out(path);
  out.precision(17);
  out << "solid test\n";
  for (Eigen::Index t = 0; t < s.triangles.rows(); ++t) {
    out << "  facet normal 0 0 0\n    outer loop\n";
    for (int k = 0; k < 3; ++k) {
      const Eigen::RowVector3d p = s.vertices_m.row(s.triangles(t, k)) / mm;
      out << "      vertex " << p.x() << " " << p.y() << " " << p.z() << "\n";
    }
    out << "    endloop\n  endfacet\n";
  }
  out << "endsolid test\n";
}

/// Voxel count per label as volumes [m^3].
std::map<std::int32_t, double> label_volumes(const LabelVolume& v) {
  std::map<std::int32_t, double> out;
  for (const auto& [label, count] : label_histogram(v))
    out[label] = static_cast<double>(count) * v.voxel_volume_m3();
  return out;
}

/// Volume of a box grown by distance t (Minkowski sum with a ball) [m^3].
double grown_box_volume(const Eigen::Vector3d& size, double t) {
  const double a = size.x(), b = size.y(), c = size.z();
  return a * b * c + 2.0 * (a * b + b * c + c * a) * t + pi * (a + b + c) * t * t +
         4.0 / 3.0 * pi * t * t * t;
}

double ball_volume(double r) {
  return 4.0 / 3.0 * pi * r * r * r;
}

TEST(SurfaceImport, BinarySphereGivesAnalyticMuscleFatAndSkinVolumes) {
  TempDir dir;
  const double r = 20 * mm;
  const auto sphere = icosphere(r, Eigen::Vector3d(3.1 * mm, -7.3 * mm, 12.7 * mm), 5);
  write_stl(dir / "sphere.stl", sphere);
  const TriangleSurface read = read_stl(dir / "sphere.stl");
  EXPECT_EQ(read.vertices_m.rows(), sphere.vertices_m.rows()); // welded back to shared vertices
  EXPECT_EQ(read.triangles.rows(), sphere.triangles.rows());
  EXPECT_NO_THROW(check_closed_manifold(read, "sphere"));
  EXPECT_NEAR(enclosed_volume_m3(read), ball_volume(r), 0.003 * ball_volume(r));

  SurfaceImportParams params;
  params.muscle_name = "ball";
  const SurfaceSubject subject = import_surface(dir / "sphere.stl", params);
  const auto volumes = label_volumes(subject.volume);
  const double muscle = volumes.at(params.muscle_label);
  const double fat = volumes.at(params.fat_label);
  const double skin = volumes.at(params.skin_label);
  const double fat_exact = ball_volume(r + 3 * mm) - ball_volume(r);
  const double skin_exact = ball_volume(r + 4.2 * mm) - ball_volume(r + 3 * mm);
  std::printf("sphere r = 20 mm: muscle %+.2f %%, fat %+.2f %%, skin %+.2f %%\n",
              100 * (muscle / ball_volume(r) - 1), 100 * (fat / fat_exact - 1),
              100 * (skin / skin_exact - 1));
  EXPECT_NEAR(muscle, ball_volume(r), 0.03 * ball_volume(r));
  EXPECT_NEAR(fat, fat_exact, 0.10 * fat_exact);
  EXPECT_NEAR(skin, skin_exact, 0.10 * skin_exact);

  // Grid: isotropic 0.5 mm, identity axes, margin of background all around.
  EXPECT_EQ(subject.volume.spacing_m, Eigen::Vector3d::Constant(0.5 * mm));
  EXPECT_TRUE(subject.volume.direction.isIdentity());
  const auto& v = subject.volume;
  for (std::int64_t k : {std::int64_t{0}, v.size[2] - 1})
    for (std::int64_t j = 0; j < v.size[1]; ++j)
      for (std::int64_t i = 0; i < v.size[0]; ++i)
        ASSERT_EQ(v.at(i, j, k), 0);
  // The centre voxel is muscle; tissue table has skin, fat and the named muscle.
  const Eigen::Vector3d c = (Eigen::Vector3d(3.1, -7.3, 12.7) * mm - v.origin_m) / (0.5 * mm);
  EXPECT_EQ(v.at(std::lround(c.x()), std::lround(c.y()), std::lround(c.z())), params.muscle_label);
  ASSERT_EQ(subject.tissues.tissues.size(), 3U);
  const Tissue* ball = subject.tissues.find("ball");
  ASSERT_NE(ball, nullptr);
  EXPECT_EQ(ball->tissue_class, TissueClass::muscle);
  EXPECT_EQ(ball->label, params.muscle_label);
  EXPECT_DOUBLE_EQ(ball->sigma_l_S_per_m, 0.5);
  EXPECT_DOUBLE_EQ(ball->sigma_t_S_per_m, 0.1);
  ASSERT_NE(subject.tissues.find("fat"), nullptr);
  EXPECT_DOUBLE_EQ(subject.tissues.find("fat")->sigma_l_S_per_m, 0.04);
  ASSERT_NE(subject.tissues.find("skin"), nullptr);
  EXPECT_DOUBLE_EQ(subject.tissues.find("skin")->sigma_l_S_per_m, 1.0);
  EXPECT_NO_THROW(check_labels_in_table(subject.volume, subject.tissues, "sphere"));
}

TEST(SurfaceImport, AsciiBoxGivesAnalyticMuscleFatAndSkinVolumes) {
  TempDir dir;
  const Eigen::Vector3d size(30 * mm, 20 * mm, 40 * mm);
  const auto b = box(Eigen::Vector3d(1.13 * mm, 2.07 * mm, -3.31 * mm), size);
  write_ascii_stl(dir / "box.STL", b); // upper-case extension is accepted
  SurfaceImportParams params;
  params.voxel_size_m = 0.4 * mm;
  params.fat_thickness_m = 2.0 * mm;
  params.skin_thickness_m = 1.5 * mm;
  params.margin_m = 1.0 * mm;
  const SurfaceSubject subject = import_surface(dir / "box.STL", params);
  const auto volumes = label_volumes(subject.volume);
  const double muscle_exact = size.prod();
  const double fat_exact = grown_box_volume(size, 2 * mm) - muscle_exact;
  const double skin_exact = grown_box_volume(size, 3.5 * mm) - grown_box_volume(size, 2 * mm);
  std::printf("box: muscle %+.2f %%, fat %+.2f %%, skin %+.2f %%\n",
              100 * (volumes.at(params.muscle_label) / muscle_exact - 1),
              100 * (volumes.at(params.fat_label) / fat_exact - 1),
              100 * (volumes.at(params.skin_label) / skin_exact - 1));
  EXPECT_NEAR(volumes.at(params.muscle_label), muscle_exact, 0.03 * muscle_exact);
  EXPECT_NEAR(volumes.at(params.fat_label), fat_exact, 0.10 * fat_exact);
  EXPECT_NEAR(volumes.at(params.skin_label), skin_exact, 0.10 * skin_exact);
}

TEST(SurfaceImport, GridAlignedBoxUsesTieRuleConsistently) {
  // Faces, edges and vertices exactly on voxel centres and rays: each ray is counted once.
  TempDir dir;
  SurfaceImportParams params;
  params.voxel_size_m = 1 * mm;
  params.fat_thickness_m = 0.0;
  params.skin_thickness_m = 0.0;
  params.margin_m = 2 * mm;
  const auto b = box(Eigen::Vector3d(0, 0, 0), Eigen::Vector3d(10 * mm, 6 * mm, 8 * mm));
  const SurfaceSubject subject = voxelise_surface(b, params, "box");
  const auto hist = label_histogram(subject.volume);
  // Centres on the faces: one of each pair of opposite faces is inside -> 10 x 6 x 8 voxels.
  EXPECT_EQ(hist.at(params.muscle_label), 10 * 6 * 8);
  EXPECT_EQ(hist.size(), 2U); // background and muscle only
  EXPECT_EQ(subject.tissues.tissues.size(), 1U);
}

TEST(SurfaceImport, BinaryFileWhoseHeaderStartsWithSolidIsReadAsBinary) {
  TempDir dir;
  const auto b = box(Eigen::Vector3d(0, 0, 0), Eigen::Vector3d(1, 2, 3) * mm);
  write_stl(dir / "box.stl", b);
  std::string bytes;
  {
    std::ifstream in(dir / "box.stl", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  bytes.replace(0, 12, "solid header");
  {
    std::ofstream out(dir / "solid.stl", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const auto s = read_stl(dir / "solid.stl");
  EXPECT_EQ(s.triangles.rows(), 12);
  EXPECT_EQ(s.vertices_m.rows(), 8);
  EXPECT_NEAR(enclosed_volume_m3(s), 6e-9, 1e-15);
}

TEST(SurfaceImport, OpenSurfaceIsBadInputCountingBoundaryEdges) {
  TempDir dir;
  auto sphere = icosphere(10 * mm, Eigen::Vector3d::Zero(), 2);
  TriangleSurface open = sphere;
  open.triangles.conservativeResize(sphere.triangles.rows() - 1, 3);
  write_stl(dir / "open.stl", open);
  expect_error<BadInput>([&] { import_surface(dir / "open.stl", SurfaceImportParams{}); },
                         {"open.stl", "3 boundary edges", "expected a closed surface"});
  // A triangle used twice makes non-manifold edges.
  TriangleSurface doubled = sphere;
  doubled.triangles.conservativeResize(sphere.triangles.rows() + 1, 3);
  doubled.triangles.row(sphere.triangles.rows()) = sphere.triangles.row(0);
  expect_error<BadInput>([&] { check_closed_manifold(doubled, "doubled"); },
                         {"doubled", "0 boundary edges", "3 non-manifold edges"});
}

TEST(SurfaceImport, BadFilesAreReported) {
  TempDir dir;
  expect_error<IoError>([&] { read_stl(dir / "missing.stl"); }, {"missing.stl", "not found"});
  write_ascii_stl(dir / "box.obj", box(Eigen::Vector3d::Zero(), Eigen::Vector3d::Ones() * mm));
  expect_error<BadInput>([&] { read_stl(dir / "box.obj"); }, {"box.obj", ".obj", ".stl"});
  std::ofstream(dir / "empty.stl").close();
  expect_error<BadInput>([&] { read_stl(dir / "empty.stl"); }, {"empty.stl", "empty"});
  std::ofstream(dir / "junk.stl") << "this is not an STL file at all, not even close......";
  expect_error<BadInput>([&] { read_stl(dir / "junk.stl"); }, {"junk.stl", "not an STL file"});
  std::ofstream(dir / "short.stl") << "solid x\n facet normal 0 0 1\n outer loop\n"
                                      "  vertex 0 0 0\n  vertex 1 0 0\n endloop\n endfacet\n";
  expect_error<BadInput>([&] { read_stl(dir / "short.stl"); },
                         {"short.stl", "line 7", "2 vertices; expected 3"});
  std::ofstream(dir / "nan.stl") << "solid x\n facet normal 0 0 1\n outer loop\n"
                                    "  vertex 0 0 nan\n";
  expect_error<BadInput>([&] { read_stl(dir / "nan.stl"); }, {"nan.stl", "line 4", "'nan'"});
  std::ofstream(dir / "none.stl") << "solid x\nendsolid x\n";
  expect_error<BadInput>([&] { read_stl(dir / "none.stl"); }, {"none.stl", "no triangles"});
  std::ofstream(dir / "point.stl") << "solid x\n facet normal 0 0 1\n outer loop\n"
                                      "  vertex 1 1 1\n  vertex 1 1 1\n  vertex 1 1 1\n"
                                      " endloop\n endfacet\nendsolid\n";
  expect_error<BadInput>([&] { read_stl(dir / "point.stl"); },
                         {"point.stl", "no non-degenerate triangle"});
}

TEST(SurfaceImport, SurfaceThinnerThanAVoxelIsBadInput) {
  const auto tiny = icosphere(0.1 * mm, Eigen::Vector3d::Zero(), 1);
  expect_error<BadInput>([&] { voxelise_surface(tiny, SurfaceImportParams{}, "tiny.stl"); },
                         {"tiny.stl", "no voxel centre", "thicker than a voxel"});
  SurfaceImportParams huge;
  huge.voxel_size_m = 1e-6;
  expect_error<BadInput>(
      [&] { voxelise_surface(icosphere(0.05, Eigen::Vector3d::Zero(), 1), huge, "big.stl"); },
      {"big.stl", "voxel_size_mm = 0.001", "2^29"});
}

TEST(SurfaceImport, ParamsAreReadInMillimetresStrictly) {
  ConfigReader cfg(nlohmann::json::parse(R"({"import": {"voxel_size_mm": 0.25,
      "fat_thickness_mm": 4, "skin_thickness_mm": 1.5, "margin_mm": 0, "muscle_name": "biceps"}})"),
                   "subject.json");
  auto section = cfg.section("import");
  const auto p = read_surface_import_params(section);
  EXPECT_DOUBLE_EQ(p.voxel_size_m, 0.25e-3);
  EXPECT_DOUBLE_EQ(p.fat_thickness_m, 4e-3);
  EXPECT_DOUBLE_EQ(p.skin_thickness_m, 1.5e-3);
  EXPECT_DOUBLE_EQ(p.margin_m, 0.0);
  EXPECT_EQ(p.muscle_name, "biceps");
  EXPECT_NO_THROW(cfg.finish());

  ConfigReader defaults(nlohmann::json::object(), "subject.json");
  auto empty = defaults.section("import");
  const auto d = read_surface_import_params(empty);
  EXPECT_DOUBLE_EQ(d.voxel_size_m, 0.5e-3);
  EXPECT_DOUBLE_EQ(d.fat_thickness_m, 3e-3);
  EXPECT_DOUBLE_EQ(d.skin_thickness_m, 1.2e-3);
  EXPECT_EQ(defaults.resolved()["import"]["voxel_size_mm"], 0.5);

  ConfigReader bad(nlohmann::json::parse(R"({"import": {"voxel_size_mm": -1}})"), "subject.json");
  auto bad_section = bad.section("import");
  expect_error<BadInput>([&] { read_surface_import_params(bad_section); },
                         {"subject.json", "import.voxel_size_mm", "-1", "> 0"});
  ConfigReader typo(nlohmann::json::parse(R"({"import": {"fat_thicknes_mm": 2}})"), "subject.json");
  auto typo_section = typo.section("import");
  read_surface_import_params(typo_section);
  expect_error<BadInput>([&] { typo.finish(); }, {"import.fat_thicknes_mm", "unknown key"});
  ConfigReader shell(nlohmann::json::parse(R"({"import": {"muscle_name": "fat"}})"), "s.json");
  auto shell_section = shell.section("import");
  expect_error<BadInput>([&] { read_surface_import_params(shell_section); },
                         {"import.muscle_name", "fat", "must differ"});
}

TEST(SurfaceImport, SameLabelsAtOneAndTwoThreads) {
  const auto sphere = icosphere(10 * mm, Eigen::Vector3d(0.3 * mm, 0.1 * mm, -0.2 * mm), 3);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const SurfaceSubject one = voxelise_surface(sphere, SurfaceImportParams{}, "sphere");
  omp_set_num_threads(2);
  const SurfaceSubject two = voxelise_surface(sphere, SurfaceImportParams{}, "sphere");
  omp_set_num_threads(saved);
  EXPECT_EQ(one.volume.size, two.volume.size);
  EXPECT_TRUE(one.volume.labels == two.volume.labels);
}

TEST(SurfaceImport, TendonEndsStopTheFibresAtTheirLengths) {
  // A 10 x 12 x 40 mm box along z, 0.5 mm voxels: 8 mm of tendon at the start (low z) and a
  // quarter of the length (10 mm) at the end. The fibres run from one tendon to the other:
  // 40 - 8 - 10 = 22 mm, within two voxels.
  const Eigen::Vector3d size(10 * mm, 12 * mm, 40 * mm);
  SurfaceImportParams params;
  params.muscle_name = "m";
  params.tendon_start_m = 8 * mm;
  params.tendon_end_fraction = 0.25;
  const SurfaceSubject subject =
      voxelise_surface(box(Eigen::Vector3d(0.01 * mm, 0.02 * mm, 0.03 * mm), size), params, "box");
  EXPECT_NEAR(subject.length_m, 40 * mm, 1e-9);
  EXPECT_NEAR(subject.tendon_start_m, 8 * mm, 1e-12);
  EXPECT_NEAR(subject.tendon_end_m, 10 * mm, 1e-9);
  EXPECT_GT(subject.axis.z(), 0.999999);
  const auto volumes = label_volumes(subject.volume);
  const double section = size.x() * size.y();
  EXPECT_NEAR(volumes.at(params.tendon_start_label), 8 * mm * section, 1e-12);
  EXPECT_NEAR(volumes.at(params.tendon_end_label), 10 * mm * section, 1e-12);
  EXPECT_NEAR(volumes.at(params.muscle_label), 22 * mm * section, 1e-12);
  const Tissue* origin = subject.tissues.find("m_tendon_origin");
  const Tissue* insertion = subject.tissues.find("m_tendon_insertion");
  ASSERT_NE(origin, nullptr);
  ASSERT_NE(insertion, nullptr);
  EXPECT_EQ(origin->tissue_class, TissueClass::tendon);
  EXPECT_EQ(origin->muscle, "m");
  EXPECT_EQ(insertion->label, params.tendon_end_label);
  // The anatomy takes the tendons as origin and insertion; the fibres stop at them.
  const MuscleGeometry g =
      compute_muscle_geometry(subject.volume, subject.tissues, params.muscle_label, {});
  EXPECT_EQ(g.origin_source, EndSource::tendon);
  EXPECT_EQ(g.insertion_source, EndSource::tendon);
  FibreParams fp;
  fp.model_density_per_m2 = 0.5e6;
  const MuscleFibres fibres =
      generate_fibres(solve_fibre_field(subject.volume, g, {}), g, fp, Rng(3));
  ASSERT_GT(fibres.fibres.size(), 10u);
  double lo = 1.0, hi = 0.0;
  for (const auto& f : fibres.fibres) {
    lo = std::min(lo, f.length_m);
    hi = std::max(hi, f.length_m);
  }
  std::printf("box with tendons: %zu fibres, %.2f to %.2f mm (22 mm of muscle)\n",
              fibres.fibres.size(), lo / mm, hi / mm);
  EXPECT_GT(lo, 22 * mm - 1.0 * mm); // within two voxels
  EXPECT_LT(hi, 22 * mm + 1.0 * mm);
  // Tendons that leave less than two voxels of muscle are refused, naming the lengths.
  params.tendon_start_m = 20 * mm;
  params.tendon_end_fraction = 0.5;
  myotwin::testing::expect_error<BadInput>(
      [&] { voxelise_surface(box(Eigen::Vector3d::Zero(), size), params, "box"); },
      {"box", "20 mm (start)", "20 mm (end)", "expected shorter tendons"});
}

TEST(SurfaceImport, RealBicepsSurfaceIsClosedAndVoxelisesToAPlausibleVolume) {
  const auto path = myotwin::testing::shared_data("real/opendihu_biceps/biceps_full.stl");
  if (path.empty())
    GTEST_SKIP() << "real data absent: " << MYOTWIN_SHARED_DATA
                 << "/real/opendihu_biceps/biceps_full.stl";
  const TriangleSurface s = read_stl(path);
  EXPECT_NO_THROW(check_closed_manifold(s, path.string()));
  const Eigen::Vector3d extent_mm =
      (s.vertices_m.colwise().maxCoeff() - s.vertices_m.colwise().minCoeff()).transpose() / mm;
  std::printf("biceps: %ld vertices, %ld triangles, bounding box %.1f x %.1f x %.1f mm, "
              "enclosed volume %.1f cm^3\n",
              static_cast<long>(s.vertices_m.rows()), static_cast<long>(s.triangles.rows()),
              extent_mm.x(), extent_mm.y(), extent_mm.z(), enclosed_volume_m3(s) * 1e6);
  EXPECT_NEAR(extent_mm.x(), 105, 5);
  EXPECT_NEAR(extent_mm.y(), 84, 5);
  EXPECT_NEAR(extent_mm.z(), 344, 5);

  SurfaceImportParams params;
  params.muscle_name = "biceps";
  const auto t0 = std::chrono::steady_clock::now();
  const SurfaceSubject subject = import_surface(path, params);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto volumes = label_volumes(subject.volume);
  const double muscle = volumes.at(params.muscle_label);
  std::printf("biceps voxelised at 0.5 mm in %.2f s: %ld x %ld x %ld voxels, muscle %.1f cm^3 "
              "(surface %.1f cm^3), fat %.1f cm^3, skin %.1f cm^3\n",
              seconds, static_cast<long>(subject.volume.size[0]),
              static_cast<long>(subject.volume.size[1]), static_cast<long>(subject.volume.size[2]),
              muscle * 1e6, enclosed_volume_m3(s) * 1e6, volumes.at(params.fat_label) * 1e6,
              volumes.at(params.skin_label) * 1e6);
  EXPECT_NEAR(muscle, enclosed_volume_m3(s), 0.03 * enclosed_volume_m3(s));
  EXPECT_GT(muscle, 50e-6); // a biceps is some 100 to 400 cm^3
  EXPECT_LT(muscle, 1000e-6);
  ASSERT_NE(subject.tissues.find("biceps"), nullptr);
}

Polylines sample_polylines() {
  std::vector<Eigen::MatrixX3d> lines;
  for (int l = 0; l < 3; ++l) {
    Eigen::MatrixX3d p(4 + l, 3);
    for (Eigen::Index i = 0; i < p.rows(); ++i)
      p.row(i) << 0.001 * l + 1e-7 * static_cast<double>(i), 0.002 * std::sin(0.3 * i),
          0.0123456789 * static_cast<double>(i);
    lines.push_back(p);
  }
  Polylines out = make_polylines(lines);
  Eigen::VectorXd s(out.n_points());
  for (Eigen::Index i = 0; i < s.size(); ++i)
    s[i] = std::sqrt(static_cast<double>(i)) / 3.0;
  out.point_data["position"] = s;
  out.point_data_int["index"] =
      std::vector<std::int64_t>{0, 1, 2, 3, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5};
  out.cell_data["cv_m_per_s"] = Eigen::Vector3d(3.9, 4.1, 5.25);
  out.cell_data_int["motor_unit"] = {7, -1, 1234567890123LL};
  return out;
}

TEST(PolyData, PolylinesRoundTripWithPointAndLineData) {
  TempDir dir;
  const Polylines lines = sample_polylines();
  EXPECT_EQ(lines.n_lines(), 3);
  EXPECT_EQ(lines.n_points(), 15);
  write_polylines_vtp(dir / "fibers.vtp", lines);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1); // no temporary file left
  const Polylines back = read_polylines_vtp(dir / "fibers.vtp");
  EXPECT_EQ(back.offsets, lines.offsets);
  EXPECT_EQ(back.points_m, lines.points_m); // float64, exact
  ASSERT_EQ(back.point_data.size(), 1U);
  EXPECT_EQ(back.point_data.at("position"), lines.point_data.at("position"));
  EXPECT_EQ(back.point_data_int, lines.point_data_int);
  ASSERT_EQ(back.cell_data.size(), 1U);
  EXPECT_EQ(back.cell_data.at("cv_m_per_s"), lines.cell_data.at("cv_m_per_s"));
  EXPECT_EQ(back.cell_data_int, lines.cell_data_int);
  // Appended binary data, zlib compressed.
  const std::string text = read_text_file(dir / "fibers.vtp");
  EXPECT_NE(text.find("vtkZLibDataCompressor"), std::string::npos);
  EXPECT_NE(text.find("<AppendedData encoding=\"raw\">"), std::string::npos);
}

TEST(PolyData, BadPolylinesAreReportedAndNothingIsWritten) {
  TempDir dir;
  Polylines wrong = sample_polylines();
  wrong.cell_data["diameter_m"] = Eigen::VectorXd::Ones(2);
  expect_error<BadInput>([&] { write_polylines_vtp(dir / "f.vtp", wrong); },
                         {"f.vtp", "line data array \"diameter_m\"", "2 values; expected 3"});
  Polylines twice = sample_polylines();
  twice.point_data["index"] = Eigen::VectorXd::Zero(15);
  expect_error<BadInput>([&] { write_polylines_vtp(dir / "f.vtp", twice); },
                         {"\"index\" is given twice"});
  Polylines single = sample_polylines();
  single.offsets = {0, 1, 15};
  single.cell_data.clear();
  single.cell_data_int.clear();
  expect_error<BadInput>([&] { write_polylines_vtp(dir / "f.vtp", single); },
                         {"polyline 0 has 1 points; expected at least 2"});
  EXPECT_FALSE(std::filesystem::exists(dir / "f.vtp"));
  expect_error<IoError>([&] { read_polylines_vtp(dir / "missing.vtp"); }, {"missing.vtp"});
  std::ofstream(dir / "junk.vtp") << "<VTKFile type=\"Nonsense\">";
  expect_error<BadInput>([&] { read_polylines_vtp(dir / "junk.vtp"); }, {"junk.vtp"});
}

TEST(PolyData, SurfaceRoundTrip) {
  TempDir dir;
  const auto sphere = icosphere(0.01, Eigen::Vector3d(0.1, 0.2, 0.3), 1);
  Eigen::VectorXd area(sphere.triangles.rows());
  for (Eigen::Index t = 0; t < area.size(); ++t)
    area[t] = static_cast<double>(t) * 0.5;
  write_surface_vtp(dir / "skin.vtp", sphere.vertices_m, sphere.triangles, {{"area_m2", area}});
  const SurfaceMesh back = read_surface_vtp(dir / "skin.vtp");
  EXPECT_EQ(back.vertices_m, sphere.vertices_m);
  EXPECT_EQ(back.triangles, sphere.triangles);
  EXPECT_EQ(back.cell_data.at("area_m2"), area);
  Eigen::MatrixX3i bad = sphere.triangles;
  bad(0, 0) = 1000;
  expect_error<BadInput>([&] { write_surface_vtp(dir / "bad.vtp", sphere.vertices_m, bad); },
                         {"bad.vtp", "outside 0..41"});
}

} // namespace
} // namespace myotwin::anatomy
