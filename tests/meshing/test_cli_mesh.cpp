// `myotwin mesh` run as a user would: files, summary, exit codes, nothing written on bad input.

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/meshing/mesh_io.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace myotwin;
using myotwin::testing::quoted;
using myotwin::testing::run_myotwin;
using myotwin::testing::TempDir;

namespace {

/// A subject in `dir`: a 24^3 box of fat (label 1, 1 mm voxels) with a ball of muscle (label
/// 2); `empty` leaves every voxel 0.
fs::path write_subject(const fs::path& dir, bool empty = false) {
  anatomy::LabelVolume v;
  v.size = {24, 24, 24};
  v.spacing_m = Eigen::Vector3d::Constant(1e-3);
  v.labels.assign(24 * 24 * 24, empty ? 0 : 1);
  for (std::int64_t k = 0; k < 24 && !empty; ++k)
    for (std::int64_t j = 0; j < 24; ++j)
      for (std::int64_t i = 0; i < 24; ++i)
        if (Eigen::Vector3d(i - 11.5, j - 11.5, k - 11.5).norm() < 7.0)
          v.labels[static_cast<std::size_t>(v.index(i, j, k))] = 2;
  fs::create_directories(dir);
  anatomy::write_label_volume(dir / "labels.nii.gz", v);
  anatomy::TissueTable t;
  t.tissues.push_back({1, "fat", anatomy::TissueClass::fat, 0.04, 0.04, "", 0});
  t.tissues.push_back({2, "ball", anatomy::TissueClass::muscle, 0.5, 0.1, "", 0});
  anatomy::write_tissue_table(dir / "tissues.json", t);
  anatomy::write_subject_file(dir / "subject.json", "ball", "labels.nii.gz", "tissues.json");
  return dir / "subject.json";
}

} // namespace

TEST(CliMesh, WritesTheMeshItsQualityAndTheSkinAndPrintsASummary) {
  TempDir dir;
  const auto subject = write_subject(dir / "s");
  // Perturbation alone takes ~8 s on this small ball (it lifts the smallest angle from 4.5 to
  // 11.6 degrees); this test is about the command, so it runs without.
  {
    std::ofstream c(dir / "fast.json");
    c << R"({"mesh": {"perturb": false}})";
  }
  const std::string config = " --config " + quoted(dir / "fast.json");
  const auto r = run_myotwin("mesh " + quoted(subject) + config + " -o " + quoted(dir / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("nodes"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ball"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("principal axes"), std::string::npos) << r.output;
  const auto q = nlohmann::json::parse(read_text_file(dir / "out/mesh/mesh_quality.json"));
  EXPECT_GT(q.at("n_tets").get<int>(), 1000);
  EXPECT_EQ(q.at("tissues").size(), 2u);
  EXPECT_TRUE(fs::exists(dir / "out/mesh/skin.vtp"));
  EXPECT_TRUE(fs::exists(dir / "out/resolved_config.json"));
  const auto s = anatomy::load_subject(subject);
  const auto mesh = meshing::read_mesh_vtu(dir / "out/mesh/mesh.vtu", &s.tissues);
  EXPECT_EQ(mesh.n_tets(), q.at("n_tets").get<std::int64_t>());
  // The same run again gives the same bytes.
  ASSERT_EQ(run_myotwin("mesh --quiet " + quoted(subject) + config + " -o " + quoted(dir / "again"))
                .exit_code,
            0);
  EXPECT_EQ(read_text_file(dir / "out/mesh/mesh.vtu"), read_text_file(dir / "again/mesh/mesh.vtu"));
}

TEST(CliMesh, BadInputExitsWithTwoAndWritesNothing) {
  TempDir dir;
  const auto empty = write_subject(dir / "empty", true);
  auto r = run_myotwin("mesh " + quoted(empty) + " -o " + quoted(dir / "o1"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no foreground"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "o1/mesh/mesh.vtu"));

  const auto subject = write_subject(dir / "s");
  {
    std::ofstream c(dir / "bad.json");
    c << R"({"mesh": {"cell_size_mm": {"muscle": -1}}})";
  }
  r = run_myotwin("mesh " + quoted(subject) + " --config " + quoted(dir / "bad.json") + " -o " +
                  quoted(dir / "o2"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("mesh.cell_size_mm.muscle = -1"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "o2/mesh/mesh.vtu"));

  r = run_myotwin("mesh " + quoted(subject) + " --anatomy " + quoted(dir / "nowhere") + " -o " +
                  quoted(dir / "o4"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("fibers.vtp"), std::string::npos) << r.output;

  // A label missing from the table.
  {
    std::ofstream t(dir / "s/tissues.json");
    t << R"({"tissues": [{"label": 1, "name": "fat", "class": "fat"}]})";
  }
  r = run_myotwin("mesh " + quoted(subject) + " -o " + quoted(dir / "o3"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("2"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "o3/mesh/mesh.vtu"));
}
