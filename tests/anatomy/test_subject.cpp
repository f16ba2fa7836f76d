#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <Eigen/Geometry>
#include <gtest/gtest.h>

#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using myotwin::BadInput;
using myotwin::IoError;
using myotwin::anatomy::LabelVolume;
using myotwin::anatomy::load_subject;
using myotwin::anatomy::read_subject_file;
using myotwin::anatomy::summarise_labels;
using myotwin::anatomy::TissueClass;
using myotwin::anatomy::TissueTable;
using myotwin::anatomy::write_subject_file;
using myotwin::testing::expect_error;
using myotwin::testing::TempDir;

namespace {

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

const char* const tissues_json = R"({"tissues": [
  {"label": 1, "name": "skin", "class": "skin"},
  {"label": 2, "name": "fat", "class": "fat"},
  {"label": 5, "name": "FCR", "class": "muscle"}]})";

/// A 6 x 5 x 4 volume: skin shell, fat inside it, a 2 x 2 x 3 muscle block of label 5.
LabelVolume small_volume() {
  LabelVolume v;
  v.size = {6, 5, 4};
  v.spacing_m = Eigen::Vector3d(0.5e-3, 0.8e-3, 2.0e-3);
  v.origin_m = Eigen::Vector3d(0.01, -0.02, 0.03);
  v.labels.assign(static_cast<std::size_t>(v.n_voxels()), 2);
  for (std::int64_t k = 0; k < 4; ++k)
    for (std::int64_t j = 0; j < 5; ++j)
      for (std::int64_t i = 0; i < 6; ++i) {
        auto& l = v.labels[static_cast<std::size_t>(v.index(i, j, k))];
        if (i == 0 || j == 0)
          l = 1;
        else if (i >= 2 && i <= 3 && j >= 1 && j <= 2 && k >= 1)
          l = 5;
      }
  v.labels[static_cast<std::size_t>(v.index(5, 4, 3))] = 0;
  return v;
}

/// A subject folder: subject/subject.json naming ../data/labels.nii.gz and ../data/tissues.json.
fs::path make_subject(const TempDir& dir, const LabelVolume& v, const std::string& tissues) {
  fs::create_directories(dir / "data");
  myotwin::anatomy::write_label_volume(dir / "data" / "labels.nii.gz", v);
  write_file(dir / "data" / "tissues.json", tissues);
  fs::create_directories(dir / "subject");
  write_subject_file(dir / "subject" / "subject.json", "forearm", "../data/labels.nii.gz",
                     "../data/tissues.json");
  return dir / "subject" / "subject.json";
}

} // namespace

TEST(Subject, LoadsLabelsAndTissuesByPathsRelativeToTheSubjectFile) {
  TempDir dir;
  const LabelVolume v = small_volume();
  const fs::path subject_file = make_subject(dir, v, tissues_json);

  const auto files = read_subject_file(subject_file);
  EXPECT_EQ(files.name, "forearm");
  EXPECT_TRUE(files.labels.is_absolute());
  EXPECT_EQ(files.labels, fs::absolute(dir / "data" / "labels.nii.gz").lexically_normal());
  EXPECT_EQ(files.tissues, fs::absolute(dir / "data" / "tissues.json").lexically_normal());

  const auto s = load_subject(subject_file);
  EXPECT_EQ(s.files.name, "forearm");
  EXPECT_EQ(s.volume.labels, v.labels);
  EXPECT_EQ(s.tissues.tissues.size(), 3u);
  EXPECT_NEAR(s.volume.spacing_m[2], 2e-3, 1e-9);
}

TEST(Subject, WritesTheSubjectFileWithPathsAsGiven) {
  TempDir dir;
  write_subject_file(dir / "subject.json", "arm", "labels.nrrd", "t/tissues.json");
  const auto j = nlohmann::json::parse(myotwin::read_text_file(dir / "subject.json"));
  EXPECT_EQ(j, nlohmann::json::parse(
                   R"({"name": "arm", "labels": "labels.nrrd", "tissues": "t/tissues.json"})"));
}

TEST(Subject, SubjectFileIsStrict) {
  TempDir dir;
  write_file(dir / "a.json",
             R"({"name": "x", "labels": "l.nii.gz", "tissues": "t.json", "lables": "y"})");
  expect_error<BadInput>([&] { read_subject_file(dir / "a.json"); },
                         {"a.json: lables: unknown key", "labels", "name", "tissues"});
  write_file(dir / "b.json", R"({"name": "x", "tissues": "t.json"})");
  expect_error<BadInput>([&] { read_subject_file(dir / "b.json"); },
                         {"b.json: labels: missing required key"});
  write_file(dir / "c.json", R"({"name": "x", "labels": "labels.png", "tissues": "t.json"})");
  expect_error<BadInput>([&] { read_subject_file(dir / "c.json"); },
                         {"c.json: labels = \"labels.png\"", "expected a label volume"});
  write_file(dir / "d.json", R"({"name": "", "labels": "l.nii.gz", "tissues": "t.json"})");
  expect_error<BadInput>([&] { read_subject_file(dir / "d.json"); }, {"d.json: name"});
  expect_error<IoError>([&] { read_subject_file(dir / "absent.json"); }, {"absent.json"});
}

TEST(Subject, MissingLabelFileIsAnIoErrorNamingBothFiles) {
  TempDir dir;
  write_file(dir / "subject.json",
             R"({"name": "x", "labels": "nowhere/labels.nii.gz", "tissues": "t.json"})");
  expect_error<IoError>([&] { load_subject(dir / "subject.json"); },
                        {"subject.json", "labels", "nowhere/labels.nii.gz", "does not exist"});
}

TEST(Subject, LabelsAbsentFromTheTissueTableAreListedWithVoxelCounts) {
  TempDir dir;
  const fs::path subject_file = make_subject(dir, small_volume(), R"({"tissues": [
      {"label": 1, "name": "skin", "class": "skin"}]})");
  expect_error<BadInput>(
      [&] { load_subject(subject_file); },
      {"labels.nii.gz", "2 labels are not in the tissue table", "2 (", "5 (12 voxels)"});
}

TEST(Subject, SummaryCountsVolumesAndBoundingBoxesOfVoxelCentres) {
  const LabelVolume v = small_volume();
  TissueTable table;
  table.tissues = {{1, "skin", TissueClass::skin, 1.0, 1.0, ""},
                   {5, "FCR", TissueClass::muscle, 0.5, 0.1, ""}};
  const auto summary = summarise_labels(v, table);
  ASSERT_EQ(summary.size(), 3u); // labels 1, 2, 5; background excluded
  EXPECT_EQ(summary[0].label, 1);
  EXPECT_EQ(summary[1].label, 2);
  EXPECT_EQ(summary[1].name, ""); // not in this table
  const auto& m = summary[2];
  EXPECT_EQ(m.label, 5);
  EXPECT_EQ(m.name, "FCR");
  EXPECT_EQ(m.tissue_class, TissueClass::muscle);
  EXPECT_EQ(m.n_voxels, 12);
  EXPECT_NEAR(m.volume_m3, 12 * 0.5e-3 * 0.8e-3 * 2.0e-3, 1e-18);
  // Identity direction: voxels i 2..3, j 1..2, k 1..3.
  EXPECT_LT((m.bbox_min_m - v.physical_point(2, 1, 1)).norm(), 1e-15);
  EXPECT_LT((m.bbox_max_m - v.physical_point(3, 2, 3)).norm(), 1e-15);
  std::int64_t total = 0;
  for (const auto& s : summary)
    total += s.n_voxels;
  EXPECT_EQ(total, v.n_voxels() - 1);
}

TEST(Subject, BoundingBoxesFollowTheDirectionMatrix) {
  LabelVolume v = small_volume();
  const auto brute_force_box = [&](const LabelVolume& vol, std::int32_t label) {
    Eigen::Vector3d lo = Eigen::Vector3d::Constant(std::numeric_limits<double>::infinity());
    Eigen::Vector3d hi = -lo;
    for (std::int64_t k = 0; k < vol.size[2]; ++k)
      for (std::int64_t j = 0; j < vol.size[1]; ++j)
        for (std::int64_t i = 0; i < vol.size[0]; ++i)
          if (vol.at(i, j, k) == label) {
            const Eigen::Vector3d x = vol.physical_point(
                static_cast<double>(i), static_cast<double>(j), static_cast<double>(k));
            lo = lo.cwiseMin(x);
            hi = hi.cwiseMax(x);
          }
    return std::pair{lo, hi};
  };
  // A permutation with flips (as in LPS-from-RAS images): the box is exact.
  v.direction << 0, -1, 0, -1, 0, 0, 0, 0, 1;
  for (const auto& s : summarise_labels(v, TissueTable{})) {
    const auto [lo, hi] = brute_force_box(v, s.label);
    EXPECT_LT((s.bbox_min_m - lo).norm(), 1e-15) << s.label;
    EXPECT_LT((s.bbox_max_m - hi).norm(), 1e-15) << s.label;
    EXPECT_TRUE((s.bbox_min_m.array() <= s.bbox_max_m.array()).all());
  }
  // An oblique direction: the box of the 8 mapped corners contains every voxel centre.
  v.direction = Eigen::AngleAxisd(0.6, Eigen::Vector3d(1, 1, 0).normalized()).matrix();
  for (const auto& s : summarise_labels(v, TissueTable{})) {
    const auto [lo, hi] = brute_force_box(v, s.label);
    EXPECT_TRUE((s.bbox_min_m.array() <= lo.array() + 1e-15).all()) << s.label;
    EXPECT_TRUE((s.bbox_max_m.array() >= hi.array() - 1e-15).all()) << s.label;
  }
}

TEST(Subject, InfoJsonGivesGeometryInMillimetresAndLabelsInCubicCentimetres) {
  LabelVolume v = small_volume();
  v.direction << 0, -1, 0, -1, 0, 0, 0, 0, 1;
  TissueTable table;
  table.tissues = {{5, "FCR", TissueClass::muscle, 0.5, 0.1, ""}};
  const auto j = myotwin::anatomy::to_json(v, summarise_labels(v, table));
  EXPECT_EQ(j["image"]["size"], nlohmann::json::parse("[6, 5, 4]"));
  EXPECT_NEAR(j["image"]["spacing_mm"][1].get<double>(), 0.8, 1e-12);
  EXPECT_NEAR(j["image"]["origin_mm"][0].get<double>(), 10.0, 1e-12);
  EXPECT_EQ(j["image"]["direction"][0][1].get<double>(), -1.0);
  const auto& labels = j["labels"];
  ASSERT_EQ(labels.size(), 3u);
  EXPECT_EQ(labels[2]["name"], "FCR");
  EXPECT_EQ(labels[2]["class"], "muscle");
  EXPECT_EQ(labels[2]["voxels"], 12);
  EXPECT_NEAR(labels[2]["volume_cm3"].get<double>(), 12 * 0.5 * 0.8 * 2.0 * 1e-3, 1e-12);
  // Label 5 spans i 2..3, j 1..2: x = 10 - 0.8 j mm, y = -20 - 0.5 i mm.
  EXPECT_NEAR(labels[2]["bbox_min_mm"][0].get<double>(), 10.0 - 0.8 * 2, 1e-9);
  EXPECT_NEAR(labels[2]["bbox_max_mm"][0].get<double>(), 10.0 - 0.8 * 1, 1e-9);
  EXPECT_NEAR(labels[2]["bbox_min_mm"][1].get<double>(), -20.0 - 0.5 * 3, 1e-9);
  EXPECT_NEAR(labels[2]["bbox_max_mm"][2].get<double>(), 30.0 + 2.0 * 3, 1e-9);
}

TEST(Subject, RealCtSampleSubjectLoadsWithEveryLabelInItsTable) {
  if (myotwin::testing::shared_data("real/totalsegmentator_ct/organs_seg.nii.gz").empty())
    GTEST_SKIP() << "real data absent: " MYOTWIN_SHARED_DATA "/real/totalsegmentator_ct";
  const fs::path subject_file =
      fs::path(MYOTWIN_SOURCE_DIR) / "sample_data" / "totalsegmentator_ct" / "subject.json";
  const auto s = load_subject(subject_file);
  EXPECT_EQ(s.files.name, "totalsegmentator_ct_abdomen");
  const auto summary = summarise_labels(s.volume, s.tissues);
  EXPECT_EQ(summary.size(), 41u);
  std::int64_t n_muscle = 0;
  std::int64_t total = 0;
  for (const auto& l : summary) {
    EXPECT_FALSE(l.name.empty()) << l.label;
    total += l.n_voxels;
    if (l.tissue_class == TissueClass::muscle)
      ++n_muscle;
    // Every box lies inside the image's physical extent (voxel centres, 3 mm voxels).
    EXPECT_TRUE((l.bbox_min_m.array() <= l.bbox_max_m.array()).all());
  }
  EXPECT_EQ(n_muscle, 4); // autochthon and iliopsoas, left and right
  const auto histogram = myotwin::anatomy::label_histogram(s.volume);
  EXPECT_EQ(total, s.volume.n_voxels() - histogram.at(0));
  const auto* liver = s.tissues.find("liver");
  ASSERT_NE(liver, nullptr);
  EXPECT_EQ(liver->label, 5);
}
