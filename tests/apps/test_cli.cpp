// Runs the built `myotwin` executable as a user would and checks exit codes, messages and files.

#include <cstdio>
#include <fstream>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "myotwin/core/files.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using myotwin::testing::TempDir;

namespace {

using Result = myotwin::testing::CommandResult;

Result run(const std::string& arguments) {
  return myotwin::testing::run_myotwin(arguments);
}

using myotwin::testing::quoted;

bool same_bytes(const fs::path& a, const fs::path& b) {
  return myotwin::read_text_file(a) == myotwin::read_text_file(b);
}

/// One phantom for the whole suite (generation takes a few seconds).
class Cli : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    phantom_result_ = new Result(run("phantom --quiet -o " + quoted(dir_->path() / "phantom")));
  }
  static void TearDownTestSuite() {
    delete phantom_result_;
    delete dir_;
  }
  static fs::path phantom() { return dir_->path() / "phantom"; }
  static TempDir* dir_;
  static Result* phantom_result_;
};
TempDir* Cli::dir_ = nullptr;
Result* Cli::phantom_result_ = nullptr;

} // namespace

TEST_F(Cli, PrintsItsVersionAndHelpWithUnits) {
  const auto v = run("--version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.output.find("myotwin 0."), std::string::npos);
  const auto h = run("phantom --help");
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.output.find("--seed"), std::string::npos);
  EXPECT_NE(h.output.find("mm"), std::string::npos);
  const auto a = run("anatomy info --help");
  EXPECT_EQ(a.exit_code, 0);
  EXPECT_NE(a.output.find("cm^3"), std::string::npos);
}

TEST_F(Cli, RejectsUsageErrorsWithExitCodeTwo) {
  EXPECT_EQ(run("").exit_code, 2);
  EXPECT_EQ(run("frobnicate").exit_code, 2);
  const auto r = run("phantom");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--output"), std::string::npos);
  EXPECT_EQ(run("phantom -o x --threads -3").exit_code, 2);
}

TEST_F(Cli, PrintsACompleteDefaultConfigThatItAcceptsBack) {
  TempDir dir;
  const auto r = run("config defaults");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto config = nlohmann::json::parse(r.output);
  EXPECT_EQ(config["seed"], 1993);
  EXPECT_DOUBLE_EQ(config["phantom"]["length_mm"].get<double>(), 240.0);
  myotwin::write_text_file(dir / "run.json", r.output);
  const auto again = run("phantom --quiet --config " + quoted(dir / "run.json") + " -o " +
                         quoted(dir / "p") + " --seed 5");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  const auto resolved =
      nlohmann::json::parse(myotwin::read_text_file(dir / "p" / "resolved_config.json"));
  EXPECT_EQ(resolved["seed"], 5); // --seed wins over the config
  EXPECT_EQ(resolved["phantom"], config["phantom"]);
}

TEST_F(Cli, RejectsUnknownConfigKeysNamingThem) {
  TempDir dir;
  myotwin::write_text_file(dir / "run.json", R"({"phantom": {"lenght_mm": 200}})");
  const auto r = run("phantom --config " + quoted(dir / "run.json") + " -o " + quoted(dir / "p"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("phantom.lenght_mm: unknown key"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("length_mm"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "p" / "labels.nii.gz"));
}

TEST_F(Cli, GeneratesTheSamePhantomFilesForTheSameSeed) {
  ASSERT_EQ(phantom_result_->exit_code, 0) << phantom_result_->output;
  for (const char* f : {"labels.nii.gz", "tissues.json", "subject.json", "resolved_config.json"}) {
    EXPECT_TRUE(fs::exists(phantom() / f)) << f;
  }
  TempDir dir;
  ASSERT_EQ(run("phantom --quiet --threads 1 -o " + quoted(dir / "again")).exit_code, 0);
  for (const char* f : {"labels.nii.gz", "tissues.json", "subject.json"}) {
    EXPECT_TRUE(same_bytes(phantom() / f, dir / "again" / f)) << f << " differs";
  }
  // The resolved configuration records the thread count; all else is the same.
  auto first = nlohmann::json::parse(myotwin::read_text_file(phantom() / "resolved_config.json"));
  auto again =
      nlohmann::json::parse(myotwin::read_text_file(dir / "again" / "resolved_config.json"));
  EXPECT_EQ(again["threads"], 1);
  first.erase("threads");
  again.erase("threads");
  EXPECT_EQ(first, again);
  ASSERT_EQ(run("phantom --quiet --seed 7 -o " + quoted(dir / "other")).exit_code, 0);
  EXPECT_FALSE(same_bytes(phantom() / "labels.nii.gz", dir / "other" / "labels.nii.gz"));
}

TEST_F(Cli, BundledSampleIsWhatThePhantomCommandGenerates) {
  const fs::path sample = fs::path(MYOTWIN_SOURCE_DIR) / "sample_data/forearm";
  ASSERT_TRUE(fs::exists(sample / "labels.nii.gz"));
  for (const char* f : {"labels.nii.gz", "tissues.json", "subject.json"}) {
    EXPECT_TRUE(same_bytes(phantom() / f, sample / f))
        << f << " differs from sample_data/forearm: regenerate it (see its README)";
  }
}

TEST_F(Cli, AnatomyInfoReportsEveryLabelOfThePhantom) {
  TempDir dir;
  const auto r =
      run("anatomy info " + quoted(phantom() / "subject.json") + " -o " + quoted(dir / "info"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"skin", "radius", "ulna", "FCR", "FCU", "ECU", "BR"}) {
    EXPECT_NE(r.output.find(name), std::string::npos) << name;
  }
  EXPECT_NE(r.output.find("spacing 0.500 x 0.500 x 1.000 mm"), std::string::npos) << r.output;
  const auto info =
      nlohmann::json::parse(myotwin::read_text_file(dir / "info" / "anatomy_info.json"));
  EXPECT_GE(info["labels"].size(), 8u + 16u);
  EXPECT_TRUE(fs::exists(dir / "info" / "resolved_config.json"));
}

TEST_F(Cli, BadInputsGiveAClearMessageAndExitCodeTwo) {
  TempDir dir;
  // A missing subject file.
  auto r = run("anatomy info " + quoted(dir / "none.json"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("none.json: no such file"), std::string::npos) << r.output;

  // A truncated NIfTI.
  fs::create_directories(dir / "s");
  const std::string bytes = myotwin::read_text_file(phantom() / "labels.nii.gz");
  myotwin::write_text_file(dir / "s" / "labels.nii.gz", bytes.substr(0, bytes.size() / 3));
  fs::copy_file(phantom() / "tissues.json", dir / "s" / "tissues.json");
  fs::copy_file(phantom() / "subject.json", dir / "s" / "subject.json");
  r = run("anatomy info " + quoted(dir / "s" / "subject.json"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("labels.nii.gz"), std::string::npos) << r.output;

  // Labels absent from the tissue table.
  fs::copy_file(phantom() / "labels.nii.gz", dir / "s" / "labels.nii.gz",
                fs::copy_options::overwrite_existing);
  auto table = nlohmann::json::parse(myotwin::read_text_file(phantom() / "tissues.json"));
  auto& tissues = table["tissues"];
  tissues.erase(std::remove_if(tissues.begin(), tissues.end(),
                               [](const nlohmann::json& t) { return t["name"] == "ulna"; }),
                tissues.end());
  myotwin::write_text_file(dir / "s" / "tissues.json", table.dump(2));
  r = run("anatomy info " + quoted(dir / "s" / "subject.json"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("not in the tissue table"), std::string::npos) << r.output;

  // An output folder that cannot be written: nothing is written anywhere.
  myotwin::write_text_file(dir / "file", "x");
  r = run("phantom --quiet -o " + quoted(dir / "file" / "out"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("cannot create the output folder"), std::string::npos) << r.output;
}

TEST_F(Cli, AnatomyInfoReadsTheRealCtSegmentation) {
  if (myotwin::testing::shared_data("real/totalsegmentator_ct/organs_seg.nii.gz").empty()) {
    GTEST_SKIP() << "../shared/data/real/totalsegmentator_ct is absent";
  }
  const fs::path subject =
      fs::path(MYOTWIN_SOURCE_DIR) / "sample_data/totalsegmentator_ct/subject.json";
  const auto r = run("anatomy info " + quoted(subject));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("122 x 101 x 30 voxels"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("iliopsoas"), std::string::npos);
}

TEST_F(Cli, AnatomyBuildsTheMusclesAndWritesItsFiles) {
  TempDir dir;
  myotwin::write_text_file(dir / "run.json", R"({"anatomy": {"muscles": ["PL"]}})");
  const auto r = run("anatomy " + quoted(phantom() / "subject.json") + " --config " +
                     quoted(dir / "run.json") + " -o " + quoted(dir / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("PL"), std::string::npos);
  for (const char* f : {"anatomy/fibers.vtp", "anatomy/motor_units.h5", "anatomy/anatomy.json",
                        "resolved_config.json"}) {
    EXPECT_TRUE(fs::exists(dir / "out" / f)) << f;
  }
  const auto resolved =
      nlohmann::json::parse(myotwin::read_text_file(dir / "out" / "resolved_config.json"));
  EXPECT_TRUE(resolved["anatomy"]["fibres"].contains("model_density_per_mm2"));
  EXPECT_EQ(run("anatomy").exit_code, 2);
  const auto bad = run("anatomy " + quoted(phantom() / "subject.json") + " -o " +
                       quoted(dir / "bad") + " --config " + quoted(dir / "typo.json"));
  EXPECT_EQ(bad.exit_code, 2);
}

TEST_F(Cli, AnatomyImportRejectsAnOpenSurfaceAndWritesNothing) {
  TempDir dir;
  // A tetrahedron with one face missing, as ASCII STL in mm.
  myotwin::write_text_file(dir / "open.stl", "solid open\n"
                                             "facet normal 0 0 -1\nouter loop\n"
                                             "vertex 0 0 0\nvertex 10 0 0\nvertex 0 10 0\n"
                                             "endloop\nendfacet\n"
                                             "facet normal 0 -1 0\nouter loop\n"
                                             "vertex 0 0 0\nvertex 0 0 10\nvertex 10 0 0\n"
                                             "endloop\nendfacet\n"
                                             "facet normal -1 0 0\nouter loop\n"
                                             "vertex 0 0 0\nvertex 0 10 0\nvertex 0 0 10\n"
                                             "endloop\nendfacet\n"
                                             "endsolid open\n");
  const auto r = run("anatomy import " + quoted(dir / "open.stl") + " -o " + quoted(dir / "s"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("boundary edges"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "s" / "labels.nii.gz"));
}
