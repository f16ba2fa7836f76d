// `myotwin leadfield` run as a user would: a small CGAL-meshed cylinder subject (skin, fat,
// muscle) written to OUT/mesh/mesh.vtu, then exit codes, messages, files and the cache.

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/meshing/image_mesher.hpp"
#include "myotwin/meshing/mesh_io.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using myotwin::testing::TempDir;
using namespace myotwin;

namespace {

using Result = myotwin::testing::CommandResult;

Result run(const std::string& arguments) {
  return myotwin::testing::run_myotwin(arguments);
}

using myotwin::testing::quoted;

anatomy::TissueTable tissues(double fat_sigma) {
  anatomy::TissueTable t;
  t.tissues.push_back({1, "skin", anatomy::TissueClass::skin, 1.0, 1.0, "", 0});
  t.tissues.push_back({2, "fat", anatomy::TissueClass::fat, fat_sigma, fat_sigma, "", 0});
  t.tissues.push_back({3, "muscle", anatomy::TissueClass::muscle, 0.5, 0.1, "", 0});
  return t;
}

/// A subject folder with subject.json, tissues.json and OUT/mesh/mesh.vtu (a cylinder of radius
/// 20 mm and length 60 mm along z).
class CliLeadfield : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    anatomy::LabelVolume v;
    const std::int64_t n = 46, nz = 60;
    v.size = {n, n, nz};
    v.spacing_m = Eigen::Vector3d::Constant(1e-3);
    const double c = 0.5 * static_cast<double>(n - 1);
    v.origin_m = Eigen::Vector3d(-c * 1e-3, -c * 1e-3, 0.0); // axis x = y = 0
    v.labels.assign(static_cast<std::size_t>(v.n_voxels()), 0);
    for (std::int64_t k = 0; k < nz; ++k)
      for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t i = 0; i < n; ++i) {
          const double r = std::hypot(static_cast<double>(i) - c, static_cast<double>(j) - c);
          v.labels[static_cast<std::size_t>(v.index(i, j, k))] = r <= 14.0   ? 3
                                                                 : r <= 17.5 ? 2
                                                                 : r <= 20.0 ? 1
                                                                             : 0;
        }
    meshing::MeshParams p;
    for (auto& [cls, size] : p.class_cell_size_mm)
      size = 3.0;
    auto mesh = meshing::mesh_label_volume(v, tissues(0.04), p, 3).mesh;
    for (std::int64_t t = 0; t < mesh.n_tets(); ++t)
      if (mesh.labels[static_cast<std::size_t>(t)] == 3)
        mesh.fibre_direction.row(t) << 0.0, 0.0, 1.0;
    fs::create_directories(out() / "mesh");
    meshing::write_mesh_vtu(out() / "mesh" / "mesh.vtu", mesh, tissues(0.04));
    anatomy::write_tissue_table(dir_->path() / "tissues.json", tissues(0.04));
    anatomy::write_subject_file(subject(), "cylinder", "labels.nii.gz", "tissues.json");
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path subject() { return dir_->path() / "subject.json"; }
  static fs::path out() { return dir_->path() / "out"; }
  static fs::path config(const std::string& name, const std::string& text) {
    const fs::path p = dir_->path() / name;
    myotwin::write_text_file(p, text);
    return p;
  }
  static TempDir* dir_;
};
TempDir* CliLeadfield::dir_ = nullptr;

const char* small_grid = R"({"electrodes": {"grids": [{"name": "g", "rows": 2, "columns": 4,
  "ied_mm": 8, "wrap": true, "radius_mm": 3}], "reference": "g[0,0]"}})";

} // namespace

TEST_F(CliLeadfield, WritesElectrodesAndLeadFieldsAndHitsTheCacheOnTheSecondRun) {
  const auto cfg = config("small.json", small_grid);
  const auto first =
      run("leadfield " + quoted(subject()) + " -o " + quoted(out()) + " --config " + quoted(cfg));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("cache miss"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("8 electrodes"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("method direct"), std::string::npos) << first.output;
  for (const char* f : {"electrodes.json", "electrodes.vtp", "leadfields.h5"})
    EXPECT_TRUE(fs::exists(out() / "forward" / f)) << f;
  const auto j =
      nlohmann::json::parse(myotwin::read_text_file(out() / "forward" / "electrodes.json"));
  EXPECT_EQ(j["reference"], "g[0,0]");
  EXPECT_EQ(j["electrodes"].size(), 8U);
  EXPECT_EQ(j["electrodes"][5]["row"], 1);
  EXPECT_EQ(j["electrodes"][5]["column"], 1);

  const auto second =
      run("leadfield " + quoted(subject()) + " -o " + quoted(out()) + " --config " + quoted(cfg));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("cache hit"), std::string::npos) << second.output;

  // A changed conductivity changes the key.
  anatomy::write_tissue_table(subject().parent_path() / "tissues.json", tissues(0.05));
  const auto third =
      run("leadfield " + quoted(subject()) + " -o " + quoted(out()) + " --config " + quoted(cfg));
  anatomy::write_tissue_table(subject().parent_path() / "tissues.json", tissues(0.04));
  ASSERT_EQ(third.exit_code, 0) << third.output;
  EXPECT_NE(third.output.find("cache miss"), std::string::npos) << third.output;
}

TEST_F(CliLeadfield, RejectsBadElectrodeConfigWithExitCodeTwo) {
  const auto wide = config("wide.json", R"({"electrodes": {"grids": [{"name": "wide",
    "rows": 1, "columns": 20, "ied_mm": 8, "wrap": true}]}})");
  const auto r1 = run("leadfield --quiet " + quoted(subject()) + " -o " + quoted(out()) +
                      " --config " + quoted(wide));
  EXPECT_EQ(r1.exit_code, 2);
  EXPECT_NE(r1.output.find("'wide': wrapped span 20 columns x 8 mm = 160 mm exceeds the limb "
                           "circumference"),
            std::string::npos)
      << r1.output;
  const auto typo = config("typo.json", R"({"electrodes": {"grid": []}})");
  const auto r2 = run("leadfield --quiet " + quoted(subject()) + " -o " + quoted(out()) +
                      " --config " + quoted(typo));
  EXPECT_EQ(r2.exit_code, 2);
  EXPECT_NE(r2.output.find("electrodes.grid: unknown key"), std::string::npos) << r2.output;
  const auto needle = config("needle.json", R"({"electrodes": {"needles": [{"name": "n1",
    "position_mm": [16, 0, 30]}]}})");
  const auto r3 = run("leadfield --quiet " + quoted(subject()) + " -o " + quoted(out()) +
                      " --config " + quoted(needle));
  EXPECT_EQ(r3.exit_code, 2);
  EXPECT_NE(r3.output.find("'n1'"), std::string::npos) << r3.output;
  EXPECT_NE(r3.output.find("lies in tissue 'fat'"), std::string::npos) << r3.output;
}

TEST_F(CliLeadfield, RefusesAboveTheMemoryLimitNamingTheEstimateAndItsDrivers) {
  // The mesh's nodes x 8 electrodes and the stiffness matrix need ~1 MB: above 0.001 GiB.
  const fs::path limited = dir_->path() / "small_limit";
  fs::create_directories(limited / "mesh");
  fs::copy_file(out() / "mesh" / "mesh.vtu", limited / "mesh" / "mesh.vtu",
                fs::copy_options::overwrite_existing);
  const auto r =
      run("leadfield " + quoted(subject()) + " -o " + quoted(limited) +
          " --quiet --max-memory-GiB 0.001 --config " + quoted(config("limit.json", small_grid)));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  for (const std::string fragment :
       {"leadfield needs about", "mesh nodes (mesh.cell_size_mm.*) x 8 electrodes",
        "more than the limit of 0.001 GiB set by --max-memory-GiB"})
    EXPECT_NE(r.output.find(fragment), std::string::npos) << fragment << "\n" << r.output;
  // Refused before writing anything: not even the electrodes.
  EXPECT_FALSE(fs::exists(limited / "forward" / "electrodes.json"));
  EXPECT_FALSE(fs::exists(limited / "forward" / "leadfields.h5"));
}

TEST_F(CliLeadfield, RefusesAMeshWhoseCholeskyFactorWouldNotFitBeforeWritingAnything) {
  // The limit holds the lead fields and the matrix but only half the factor's fill estimate
  // (45 bytes x #nodes^(4/3)): refused, naming the factor, before anything is written.
  const auto n = static_cast<double>(meshing::read_mesh_vtu(out() / "mesh" / "mesh.vtu").n_nodes());
  const double beside = 4.0 * 8.0 * n * 8.0 + 400.0 * n;
  const double limit_gib = (beside + 0.5 * 45.0 * std::pow(n, 4.0 / 3.0)) / 1073741824.0;
  const fs::path limited = dir_->path() / "factor_limit";
  fs::create_directories(limited / "mesh");
  fs::copy_file(out() / "mesh" / "mesh.vtu", limited / "mesh" / "mesh.vtu",
                fs::copy_options::overwrite_existing);
  std::ostringstream limit;
  limit.precision(12);
  limit << limit_gib;
  const auto r = run("leadfield " + quoted(subject()) + " -o " + quoted(limited) +
                     " --quiet --max-memory-GiB " + limit.str() + " --config " +
                     quoted(config("factor.json", small_grid)));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  for (const std::string fragment : {"leadfield needs about", "x 8 electrodes", "Cholesky factor ~",
                                     "by a fill estimate", "set by --max-memory-GiB"})
    EXPECT_NE(r.output.find(fragment), std::string::npos) << fragment << "\n" << r.output;
  // Nothing written: the forward folder (made before the mesh is read) stays empty.
  EXPECT_TRUE(fs::is_empty(limited / "forward"));
  // With the factor's room the run goes ahead and prints its estimate with the time.
  std::ostringstream enough;
  enough.precision(12);
  enough << 4.0 * limit_gib + 0.05;
  const auto ok =
      run("leadfield " + quoted(subject()) + " -o " + quoted(limited) + " --max-memory-GiB " +
          enough.str() + " --config " + quoted(config("factor.json", small_grid)));
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  for (const std::string fragment : {"leadfield: estimated", "and about", "factorisation"})
    EXPECT_NE(ok.output.find(fragment), std::string::npos) << fragment << "\n" << ok.output;
}

TEST_F(CliLeadfield, AsksForTheMeshWhenItIsMissing) {
  TempDir empty;
  const auto r = run("leadfield " + quoted(subject()) + " -o " + quoted(empty.path()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("mesh.vtu: not found: run `myotwin mesh"), std::string::npos) << r.output;
}
