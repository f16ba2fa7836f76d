#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using myotwin::BadInput;
using myotwin::IoError;
using myotwin::anatomy::check_labels_in_table;
using myotwin::anatomy::default_conductivity;
using myotwin::anatomy::LabelVolume;
using myotwin::anatomy::read_tissue_table;
using myotwin::anatomy::TissueClass;
using myotwin::anatomy::TissueTable;
using myotwin::testing::expect_error;
using myotwin::testing::TempDir;
using nlohmann::json;

namespace {

const char* const forearm_table = R"({ "tissues": [
  { "label": 1,  "name": "skin", "class": "skin" },
  { "label": 2,  "name": "subcutaneous_fat", "class": "fat", "sigma_S_per_m": 0.05 },
  { "label": 3,  "name": "radius", "class": "bone" },
  { "label": 20, "name": "FCR", "class": "muscle", "sigma_l_S_per_m": 0.4, "sigma_t_S_per_m": 0.09 },
  { "label": 21, "name": "ECU", "class": "muscle" },
  { "label": 60, "name": "FCR_tendon_distal", "class": "tendon", "muscle": "FCR" },
  { "label": 61, "name": "loose_tendon", "class": "tendon", "sigma_S_per_m": 0.25 },
  { "label": 90, "name": "blood_vessel", "class": "other", "sigma_S_per_m": 0.7 } ] })";

fs::path write_file(const TempDir& dir, const std::string& name, const std::string& text) {
  const fs::path p = dir / name;
  std::ofstream(p) << text;
  return p;
}

/// A table with `entry` (one JSON object) appended to two valid tissues.
std::string table_with(const std::string& entry) {
  return R"({"tissues": [ {"label": 1, "name": "skin", "class": "skin"},
                           {"label": 20, "name": "FCR", "class": "muscle"}, )" +
         entry + "]}";
}

} // namespace

TEST(TissueTable, ReadsEveryClassWithDefaultsAndOverridesInFileOrder) {
  TempDir dir;
  const TissueTable t = read_tissue_table(write_file(dir, "tissues.json", forearm_table));
  ASSERT_EQ(t.tissues.size(), 8u);
  EXPECT_EQ(t.tissues[0].name, "skin");
  EXPECT_EQ(t.tissues[0].tissue_class, TissueClass::skin);
  EXPECT_DOUBLE_EQ(t.tissues[0].sigma_l_S_per_m, 1.0);
  EXPECT_DOUBLE_EQ(t.tissues[0].sigma_t_S_per_m, 1.0);
  EXPECT_DOUBLE_EQ(t.find(2)->sigma_l_S_per_m, 0.05);
  EXPECT_DOUBLE_EQ(t.find(2)->sigma_t_S_per_m, 0.05);
  EXPECT_DOUBLE_EQ(t.find("radius")->sigma_l_S_per_m, 0.02);
  EXPECT_DOUBLE_EQ(t.find("FCR")->sigma_l_S_per_m, 0.4);
  EXPECT_DOUBLE_EQ(t.find("FCR")->sigma_t_S_per_m, 0.09);
  EXPECT_DOUBLE_EQ(t.find("ECU")->sigma_l_S_per_m, 0.5);
  EXPECT_DOUBLE_EQ(t.find("ECU")->sigma_t_S_per_m, 0.1);
  EXPECT_EQ(t.find(60)->muscle, "FCR");
  EXPECT_DOUBLE_EQ(t.find(60)->sigma_l_S_per_m, 0.3);
  EXPECT_EQ(t.find(61)->muscle, "");
  EXPECT_DOUBLE_EQ(t.find(61)->sigma_t_S_per_m, 0.25);
  EXPECT_EQ(t.find(90)->tissue_class, TissueClass::other);
  EXPECT_EQ(t.find(5), nullptr);
  EXPECT_EQ(t.find("biceps"), nullptr);
}

TEST(TissueTable, WriteThenReadGivesTheSameTableWithAllConductivitiesWritten) {
  TempDir dir;
  const TissueTable t = read_tissue_table(write_file(dir, "in.json", forearm_table));
  const json j = myotwin::anatomy::to_json(t);
  EXPECT_DOUBLE_EQ(j["tissues"][0]["sigma_S_per_m"].get<double>(), 1.0); // default written out
  EXPECT_FALSE(j["tissues"][0].contains("sigma_l_S_per_m"));
  EXPECT_DOUBLE_EQ(j["tissues"][4]["sigma_t_S_per_m"].get<double>(), 0.1);
  EXPECT_EQ(j["tissues"][5]["muscle"], "FCR");
  EXPECT_FALSE(j["tissues"][6].contains("muscle"));

  myotwin::anatomy::write_tissue_table(dir / "out.json", t);
  const TissueTable back = read_tissue_table(dir / "out.json");
  ASSERT_EQ(back.tissues.size(), t.tissues.size());
  for (std::size_t i = 0; i < t.tissues.size(); ++i) {
    EXPECT_EQ(back.tissues[i].label, t.tissues[i].label);
    EXPECT_EQ(back.tissues[i].name, t.tissues[i].name);
    EXPECT_EQ(back.tissues[i].tissue_class, t.tissues[i].tissue_class);
    EXPECT_EQ(back.tissues[i].sigma_l_S_per_m, t.tissues[i].sigma_l_S_per_m);
    EXPECT_EQ(back.tissues[i].sigma_t_S_per_m, t.tissues[i].sigma_t_S_per_m);
    EXPECT_EQ(back.tissues[i].muscle, t.tissues[i].muscle);
  }
  EXPECT_EQ(myotwin::anatomy::to_json(back), j);
}

TEST(TissueTable, ReadsFromAReaderOnAnObjectOfALargerConfig) {
  myotwin::ConfigReader run(json::parse(R"({"anatomy": {"tissues": [
      {"label": 4, "name": "m", "class": "muscle"}]}})"),
                            "run.json");
  auto section = run.section("anatomy");
  const TissueTable t = read_tissue_table(section);
  ASSERT_EQ(t.tissues.size(), 1u);
  EXPECT_EQ(t.tissues[0].label, 4);
  run.finish();

  myotwin::ConfigReader bad(
      json::parse(R"({"anatomy": {"tissues": [{"label": 4, "name": "m", "class": "muscle",
                                               "sigma_l_S_per_m": 0}]}})"),
      "run.json");
  auto bad_section = bad.section("anatomy");
  expect_error<BadInput>([&] { read_tissue_table(bad_section); },
                         {"run.json: anatomy.tissues[0].sigma_l_S_per_m = 0: must be > 0"});
}

TEST(TissueTable, DuplicateLabelIsBadInputNamingBothEntries) {
  TempDir dir;
  const auto p = write_file(dir, "tissues.json",
                            table_with(R"({"label": 20, "name": "ECU", "class": "muscle"})"));
  expect_error<BadInput>([&] { read_tissue_table(p); },
                         {"tissues.json", "tissues[2].label = 20", "tissues[1] (\"FCR\")",
                          "each label may appear once"});
}

TEST(TissueTable, DuplicateNameIsBadInputNamingBothEntries) {
  TempDir dir;
  const auto p = write_file(dir, "tissues.json",
                            table_with(R"({"label": 21, "name": "FCR", "class": "muscle"})"));
  expect_error<BadInput>([&] { read_tissue_table(p); },
                         {"tissues.json", "tissues[2].name = \"FCR\"", "tissues[1]", "label 20",
                          "each name may appear once"});
}

TEST(TissueTable, NegativeOrZeroConductivityIsBadInputWithTheKeyPath) {
  TempDir dir;
  const auto p =
      write_file(dir, "tissues.json", table_with(R"({"label": 2, "name": "fat", "class": "fat"},
                    {"label": 9, "name": "liver", "class": "other", "sigma_S_per_m": -0.5})"));
  expect_error<BadInput>([&] { read_tissue_table(p); },
                         {"tissues.json: tissues[3].sigma_S_per_m = -0.5: must be > 0"});
  const auto zero = write_file(
      dir, "zero.json",
      table_with(R"({"label": 21, "name": "ECU", "class": "muscle", "sigma_t_S_per_m": 0})"));
  expect_error<BadInput>([&] { read_tissue_table(zero); },
                         {"zero.json: tissues[2].sigma_t_S_per_m = 0: must be > 0"});
}

TEST(TissueTable, UnknownKeysAreBadInputWithTheDottedPathAndAllowedKeys) {
  TempDir dir;
  const auto p = write_file(
      dir, "tissues.json",
      table_with(R"({"label": 2, "name": "fat", "class": "fat", "sigma_S_per_mm": 0.04})"));
  expect_error<BadInput>([&] { read_tissue_table(p); },
                         {"tissues.json: tissues[2].sigma_S_per_mm: unknown key", "sigma_S_per_m"});
  const auto top = write_file(dir, "top.json", R"({"tissues": [{"label": 1, "name": "skin",
                                                   "class": "skin"}], "colour": "red"})");
  expect_error<BadInput>([&] { read_tissue_table(top); }, {"top.json: colour: unknown key"});
  const auto muscle_key = write_file(
      dir, "m.json", table_with(R"({"label": 2, "name": "fat", "class": "fat", "muscle": "FCR"})"));
  expect_error<BadInput>([&] { read_tissue_table(muscle_key); },
                         {"m.json: tissues[2].muscle: unknown key"});
}

TEST(TissueTable, OtherClassWithoutConductivityIsBadInputSayingOneIsRequired) {
  TempDir dir;
  const auto p = write_file(dir, "tissues.json",
                            table_with(R"({"label": 5, "name": "liver", "class": "other"})"));
  expect_error<BadInput>([&] { read_tissue_table(p); },
                         {"tissues.json: tissues[2].sigma_S_per_m", "conductivity",
                          "required for \"liver\"", "no default"});
  // A misspelt key is reported as such rather than as a missing conductivity.
  const auto typo = write_file(
      dir, "typo.json",
      table_with(R"({"label": 5, "name": "liver", "class": "other", "sigma_S_m": 0.1})"));
  expect_error<BadInput>([&] { read_tissue_table(typo); },
                         {"typo.json: tissues[2].sigma_S_m: unknown key", "sigma_S_per_m"});
}

TEST(TissueTable, AnisotropyKeysMustMatchTheClass) {
  TempDir dir;
  const auto iso = write_file(
      dir, "iso.json",
      table_with(R"({"label": 2, "name": "fat", "class": "fat", "sigma_l_S_per_m": 0.04})"));
  expect_error<BadInput>(
      [&] { read_tissue_table(iso); },
      {"iso.json: tissues[2].sigma_l_S_per_m = 0.04", "fat is isotropic", "sigma_S_per_m"});
  const auto aniso = write_file(
      dir, "aniso.json",
      table_with(R"({"label": 21, "name": "ECU", "class": "muscle", "sigma_S_per_m": 0.3})"));
  expect_error<BadInput>(
      [&] { read_tissue_table(aniso); },
      {"aniso.json: tissues[2].sigma_S_per_m = 0.3", "muscle is anisotropic", "sigma_l_S_per_m"});
}

TEST(TissueTable, LabelsClassesAndNamesAreChecked) {
  TempDir dir;
  const auto zero =
      write_file(dir, "z.json", table_with(R"({"label": 0, "name": "air", "class": "other"})"));
  expect_error<BadInput>([&] { read_tissue_table(zero); },
                         {"z.json: tissues[2].label = 0: must be > 0", "background"});
  const auto neg =
      write_file(dir, "n.json", table_with(R"({"label": -2, "name": "x", "class": "fat"})"));
  expect_error<BadInput>([&] { read_tissue_table(neg); }, {"n.json: tissues[2].label = -2"});
  const auto cls =
      write_file(dir, "c.json", table_with(R"({"label": 7, "name": "x", "class": "nerve"})"));
  expect_error<BadInput>([&] { read_tissue_table(cls); },
                         {"c.json: tissues[2].class = \"nerve\"", "\"muscle\"", "\"other\""});
  const auto name =
      write_file(dir, "e.json", table_with(R"({"label": 7, "name": "", "class": "fat"})"));
  expect_error<BadInput>([&] { read_tissue_table(name); }, {"e.json: tissues[2].name"});
  const auto missing = write_file(dir, "l.json", table_with(R"({"name": "x", "class": "fat"})"));
  expect_error<BadInput>([&] { read_tissue_table(missing); },
                         {"l.json: tissues[2].label: missing required key"});
  const auto empty = write_file(dir, "empty.json", R"({"tissues": []})");
  expect_error<BadInput>([&] { read_tissue_table(empty); }, {"empty.json: tissues"});
}

TEST(TissueTable, TendonMustNameAMuscleOfTheTable) {
  TempDir dir;
  const auto unknown = write_file(
      dir, "t.json",
      table_with(R"({"label": 60, "name": "t", "class": "tendon", "muscle": "biceps"})"));
  expect_error<BadInput>([&] { read_tissue_table(unknown); },
                         {"t.json: tissues[2].muscle = \"biceps\"", "no tissue called \"biceps\""});
  const auto not_muscle =
      write_file(dir, "s.json",
                 table_with(R"({"label": 60, "name": "t", "class": "tendon", "muscle": "skin"})"));
  expect_error<BadInput>(
      [&] { read_tissue_table(not_muscle); },
      {"s.json: tissues[2].muscle = \"skin\"", "class skin", "expected a muscle"});
}

TEST(TissueTable, FileProblemsNameTheFile) {
  TempDir dir;
  expect_error<IoError>([&] { read_tissue_table(dir / "absent.json"); }, {"absent.json"});
  const auto bad = write_file(dir, "bad.json", "{\"tissues\": [ {\"label\": 1,, } ]}");
  expect_error<BadInput>([&] { read_tissue_table(bad); }, {"bad.json", "not valid JSON", "line 1"});
  const auto no_tissues = write_file(dir, "none.json", "{}");
  expect_error<BadInput>([&] { read_tissue_table(no_tissues); },
                         {"none.json: tissues: missing required key"});
}

TEST(TissueTable, CheckLabelsListsMissingLabelsWithVoxelCounts) {
  TempDir dir;
  const TissueTable t = read_tissue_table(write_file(dir, "tissues.json", forearm_table));
  LabelVolume v;
  v.size = {5, 2, 1};
  v.labels = {0, 1, 7, 7, 20, 44, 7, 0, 2, 3};
  expect_error<BadInput>(
      [&] { check_labels_in_table(v, t, "labels.nii.gz"); },
      {"labels.nii.gz: 2 labels are not in the tissue table", "7 (3 voxels), 44 (1 voxel)"});
  v.labels = {0, 1, 2, 3, 20, 21, 60, 61, 90, 0};
  EXPECT_NO_THROW(check_labels_in_table(v, t, "labels.nii.gz"));
}

TEST(TissueTable, ClassNamesAndDefaultConductivities) {
  using myotwin::anatomy::tissue_class_from_string;
  using myotwin::anatomy::to_string;
  for (const auto c : {TissueClass::muscle, TissueClass::fat, TissueClass::skin, TissueClass::bone,
                       TissueClass::tendon, TissueClass::other})
    EXPECT_EQ(tissue_class_from_string(to_string(c)), c);
  expect_error<BadInput>([] { tissue_class_from_string("Muscle"); },
                         {"\"Muscle\"", "\"muscle\", \"fat\""});
  EXPECT_EQ(default_conductivity(TissueClass::muscle), std::make_pair(0.5, 0.1));
  EXPECT_EQ(default_conductivity(TissueClass::fat), std::make_pair(0.04, 0.04));
  EXPECT_EQ(default_conductivity(TissueClass::skin), std::make_pair(1.0, 1.0));
  EXPECT_EQ(default_conductivity(TissueClass::bone), std::make_pair(0.02, 0.02));
  EXPECT_EQ(default_conductivity(TissueClass::tendon), std::make_pair(0.3, 0.3));
  EXPECT_FALSE(default_conductivity(TissueClass::other).has_value());
}
