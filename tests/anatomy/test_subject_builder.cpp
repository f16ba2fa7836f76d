// The subject builder (`myotwin subject init`): label schemes, region of interest, body outline,
// skin and fat layers, one connected conductor, and its errors.

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>

#include <Eigen/Geometry>
#include <gtest/gtest.h>

#include "myotwin/anatomy/label_schemes.hpp"
#include "myotwin/anatomy/muscle_geometry.hpp"
#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/anatomy/subject_builder.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using myotwin::BadInput;
using myotwin::anatomy::build_subject;
using myotwin::anatomy::BuiltSubject;
using myotwin::anatomy::canonical_tissue_name;
using myotwin::anatomy::IntensityVolume;
using myotwin::anatomy::LabelVolume;
using myotwin::anatomy::SubjectBuildInputs;
using myotwin::anatomy::SubjectBuildParams;
using myotwin::anatomy::TissueClass;
using myotwin::testing::expect_error;
using myotwin::testing::TempDir;

namespace {

// MuscleMap ids used by the synthetic volumes.
constexpr std::int32_t vl_left = 7101;  // vastus_lateralis_left, muscle
constexpr std::int32_t vl_right = 7102; // vastus_lateralis_right, muscle
constexpr std::int32_t femur = 6171;    // femur_left, bone

/// A volume of `n` voxels of `h` metres, labels from f(x, y, z) with (x, y, z) the voxel centre
/// relative to the volume's centre [m]. Direction: identity; origin such that the centre is 0.
LabelVolume make_volume(std::array<std::int64_t, 3> n, double h,
                        const std::function<std::int32_t(double, double, double)>& f) {
  LabelVolume v;
  v.size = n;
  v.spacing_m = Eigen::Vector3d::Constant(h);
  v.origin_m = -0.5 * h *
               Eigen::Vector3d(static_cast<double>(n[0] - 1), static_cast<double>(n[1] - 1),
                               static_cast<double>(n[2] - 1));
  v.labels.resize(static_cast<std::size_t>(v.n_voxels()));
  for (std::int64_t k = 0; k < n[2]; ++k)
    for (std::int64_t j = 0; j < n[1]; ++j)
      for (std::int64_t i = 0; i < n[0]; ++i) {
        const Eigen::Vector3d x = v.physical_point(static_cast<double>(i), static_cast<double>(j),
                                                   static_cast<double>(k));
        v.labels[static_cast<std::size_t>(v.index(i, j, k))] = f(x[0], x[1], x[2]);
      }
  return v;
}

/// A cylinder along z (through the whole volume) of muscle of radius `r_muscle` around a bone of
/// radius `r_bone`, centred at (cx, 0).
std::int32_t cylinder(double x, double y, double cx, double r_muscle, double r_bone,
                      std::int32_t muscle) {
  const double r = std::hypot(x - cx, y);
  return r <= r_bone ? femur : r <= r_muscle ? muscle : 0;
}

/// Number of 6-connected components of the non-zero voxels, by breadth-first search.
int count_components(const LabelVolume& v) {
  std::vector<char> seen(v.labels.size(), 0);
  int count = 0;
  for (std::int64_t start = 0; start < v.n_voxels(); ++start) {
    if (v.labels[static_cast<std::size_t>(start)] == 0 || seen[static_cast<std::size_t>(start)])
      continue;
    ++count;
    std::deque<std::int64_t> queue{start};
    seen[static_cast<std::size_t>(start)] = 1;
    while (!queue.empty()) {
      const std::int64_t q = queue.front();
      queue.pop_front();
      const std::int64_t i = q % v.size[0];
      const std::int64_t j = (q / v.size[0]) % v.size[1];
      const std::int64_t k = q / (v.size[0] * v.size[1]);
      const std::int64_t nb[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k},
                                     {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
      for (const auto& p : nb) {
        if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[0] >= v.size[0] || p[1] >= v.size[1] ||
            p[2] >= v.size[2])
          continue;
        const auto r = static_cast<std::size_t>(v.index(p[0], p[1], p[2]));
        if (v.labels[r] != 0 && !seen[r]) {
          seen[r] = 1;
          queue.push_back(static_cast<std::int64_t>(r));
        }
      }
    }
  }
  return count;
}

std::int32_t label_of(const BuiltSubject& s, const std::string& name) {
  const auto* t = s.tissues.find(name);
  return t == nullptr ? -1 : t->label;
}

SubjectBuildInputs inputs_of(LabelVolume v) {
  SubjectBuildInputs in;
  in.segmentation = std::move(v);
  in.segmentation_name = "seg.nii.gz";
  return in;
}

SubjectBuildParams musclemap_params() {
  SubjectBuildParams p;
  p.scheme = "musclemap";
  return p;
}

} // namespace

TEST(LabelSchemes, CanonicalNamesMatchAcrossSpellings) {
  EXPECT_EQ(canonical_tissue_name("Left Vastus Lateralis"), "vastus_lateralis_left");
  EXPECT_EQ(canonical_tissue_name("vastus_lateralis_left"), "vastus_lateralis_left");
  EXPECT_EQ(canonical_tissue_name(" Right  Biceps Femoris (Long Head) "),
            "biceps_femoris_long_head_right");
}

TEST(LabelSchemes, BuiltInSchemesHaveTheirPublishedSizesAndCitedConductivities) {
  using myotwin::anatomy::builtin_scheme;
  using myotwin::anatomy::tissue_category;
  EXPECT_EQ(builtin_scheme("total").entries.size(), 117u);
  EXPECT_EQ(builtin_scheme("total_mr").entries.size(), 50u);
  EXPECT_EQ(builtin_scheme("musclemap").entries.size(), 99u);
  const auto total = builtin_scheme("total");
  ASSERT_NE(total.find(88), nullptr);
  EXPECT_EQ(total.find(88)->name, "iliopsoas_left");
  EXPECT_EQ(total.find(88)->category, "muscle");
  EXPECT_EQ(total.find(52)->category, "blood");
  EXPECT_EQ(total.find(12), total.find(12)); // present
  EXPECT_EQ(total.find(118), nullptr);
  for (const auto& name : myotwin::anatomy::category_names()) {
    const auto& c = tissue_category(name);
    EXPECT_GT(c.sigma_l_S_per_m, 0.0) << name;
    EXPECT_GE(c.sigma_l_S_per_m, c.sigma_t_S_per_m) << name;
    EXPECT_FALSE(c.citation.empty()) << name;
  }
  // The project's values for muscle, fat, skin and bone are kept.
  EXPECT_EQ(tissue_category("muscle").sigma_l_S_per_m, 0.5);
  EXPECT_EQ(tissue_category("muscle").sigma_t_S_per_m, 0.1);
  EXPECT_EQ(tissue_category("fat").sigma_l_S_per_m, 0.04);
  EXPECT_EQ(tissue_category("skin").sigma_l_S_per_m, 1.0);
  EXPECT_EQ(tissue_category("bone").sigma_l_S_per_m, 0.02);
  expect_error<BadInput>([] { (void)builtin_scheme("totl"); },
                         {"scheme \"totl\"", "total, total_mr, musclemap"});
}

TEST(LabelSchemes, TotalSchemeNamesTheRealCtLabelsAsTheSampleTableDoes) {
  const fs::path table =
      fs::path(MYOTWIN_SOURCE_DIR) / "sample_data" / "totalsegmentator_ct" / "tissues.json";
  const auto sample = myotwin::anatomy::read_tissue_table(table);
  const auto total = myotwin::anatomy::builtin_scheme("total");
  for (const auto& t : sample.tissues) {
    const auto* e = total.find(t.label);
    ASSERT_NE(e, nullptr) << t.label;
    EXPECT_EQ(e->name, t.name);
    EXPECT_EQ(myotwin::anatomy::tissue_category(e->category).tissue_class == TissueClass::muscle,
              t.tissue_class == TissueClass::muscle)
        << t.name;
  }
}

TEST(LabelSchemes, MuscleMapSchemeNamesEveryIdOfTheThighLabelsFile) {
  const fs::path tsv = myotwin::testing::shared_data("real/musclemap_thigh/labels.tsv");
  if (tsv.empty())
    GTEST_SKIP() << "real data absent: " MYOTWIN_SHARED_DATA "/real/musclemap_thigh";
  const auto user = myotwin::anatomy::read_user_label_table(tsv).table;
  EXPECT_EQ(user.tissues.size(), 57u);
  const auto mm = myotwin::anatomy::builtin_scheme("musclemap");
  int n_bone = 0;
  for (const auto& t : user.tissues) {
    const auto* e = mm.find(t.label);
    ASSERT_NE(e, nullptr) << t.label;
    EXPECT_EQ(e->name, canonical_tissue_name(t.name));
    // The table's class, taken from the name, agrees with the scheme's.
    EXPECT_EQ(t.tissue_class == TissueClass::bone, e->category == "bone") << t.name;
    n_bone += t.tissue_class == TissueClass::bone;
  }
  EXPECT_EQ(n_bone, 7); // femur, ilium, tibia (both sides), sacrum
}

TEST(LabelSchemes, UserTsvTableIsStrictAboutItsColumnsAndValues) {
  TempDir dir;
  myotwin::write_text_file(dir / "ok.tsv", "label\tname\tclass\tsigma_S_per_m\n"
                                           "3\tmy bone\tbone\t0.01\n"
                                           "4\tbiceps\t\t\n"
                                           "5\tliver piece\tliver\t\n");
  const auto t = myotwin::anatomy::read_user_label_table(dir / "ok.tsv").table;
  ASSERT_EQ(t.tissues.size(), 3u);
  EXPECT_EQ(t.tissues[0].sigma_l_S_per_m, 0.01);
  EXPECT_EQ(t.tissues[1].tissue_class, TissueClass::muscle);
  EXPECT_EQ(t.tissues[2].sigma_l_S_per_m, 0.07);
  myotwin::write_text_file(dir / "bad.tsv", "label\tname\n3\tx\n3\ty\n");
  expect_error<BadInput>([&] { (void)myotwin::anatomy::read_user_label_table(dir / "bad.tsv"); },
                         {"bad.tsv: line 3", "id 3 is also on line 2"});
  myotwin::write_text_file(dir / "bad2.tsv", "label\tname\tsigma\n3\tx\t1\n");
  expect_error<BadInput>([&] { (void)myotwin::anatomy::read_user_label_table(dir / "bad2.tsv"); },
                         {"column \"sigma\" is unknown"});
  myotwin::write_text_file(dir / "bad3.tsv", "label\tname\tclass\n3\tx\tgranite\n");
  expect_error<BadInput>([&] { (void)myotwin::anatomy::read_user_label_table(dir / "bad3.tsv"); },
                         {"line 2, column \"class\"", "\"granite\"", "soft_tissue"});
}

TEST(SubjectBuilder, CylinderOfMuscleAroundBoneGetsSkinAndFatOfTheRequestedThickness) {
  // 0.5 mm voxels; muscle radius 15 mm around a 5 mm bone; the cylinder runs through the whole
  // volume along z, so its two ends are cut faces and get no skin.
  const double h = 0.0005;
  const auto v = make_volume({96, 96, 20}, h, [](double x, double y, double) {
    return cylinder(x, y, 0.0, 0.015, 0.005, vl_left);
  });
  SubjectBuildParams p = musclemap_params();
  p.skin_thickness_m = 0.0015;
  p.fat_thickness_m = 0.004;
  const auto s = build_subject(inputs_of(v), p);
  const auto& r = s.report;
  EXPECT_EQ(r.n_components, 1);
  EXPECT_EQ(count_components(s.volume), 1);
  EXPECT_EQ(r.cut_faces, (std::vector<std::string>{"k-", "k+"}));
  EXPECT_EQ(r.fat_source, "layer");
  EXPECT_EQ(r.n_skin_over_labels, 0);
  // Thicknesses reported over the surface: within one voxel of the request.
  EXPECT_NEAR(r.skin.mean_m, 0.0015, h);
  EXPECT_NEAR(r.skin.p5_m, 0.0015, h);
  EXPECT_NEAR(r.skin.p95_m, 0.0015, h);
  EXPECT_NEAR(r.fat.mean_m, 0.004, h);
  EXPECT_NEAR(r.fat.p5_m, 0.004, h);
  EXPECT_NEAR(r.fat.p95_m, 0.004, h);
  // Counted directly on rays from the axis in the middle slice, in 8 directions.
  const std::int32_t skin = label_of(s, "skin");
  const std::int32_t fat = label_of(s, "subcutaneous_fat");
  ASSERT_GT(skin, 0);
  ASSERT_GT(fat, 0);
  const auto& out = s.volume;
  const std::int64_t k = out.size[2] / 2;
  // Voxel nearest to the axis.
  const Eigen::Vector3d rel = -out.origin_m;
  const auto ci = static_cast<std::int64_t>(std::llround(rel[0] / h));
  const auto cj = static_cast<std::int64_t>(std::llround(rel[1] / h));
  for (int a = 0; a < 8; ++a) {
    const double angle = a * std::acos(-1.0) / 4.0;
    int n_skin = 0;
    int n_fat = 0;
    double skin_outer_m = 0.0;
    for (double t = 0.0; t < 0.030; t += h / 4) {
      const auto i = ci + static_cast<std::int64_t>(std::llround(t * std::cos(angle) / h));
      const auto j = cj + static_cast<std::int64_t>(std::llround(t * std::sin(angle) / h));
      if (i < 0 || j < 0 || i >= out.size[0] || j >= out.size[1])
        break;
      if (out.at(i, j, k) == skin)
        skin_outer_m = t;
    }
    // Along the axes the voxels are counted exactly.
    if (a % 2 == 0) {
      for (std::int64_t step = 0;; ++step) {
        const std::int64_t i = ci + (a == 0 ? step : a == 4 ? -step : 0);
        const std::int64_t j = cj + (a == 2 ? step : a == 6 ? -step : 0);
        if (i < 0 || j < 0 || i >= out.size[0] || j >= out.size[1])
          break;
        n_skin += out.at(i, j, k) == skin;
        n_fat += out.at(i, j, k) == fat;
      }
      EXPECT_NEAR(n_skin * h, 0.0015, h) << "direction " << a;
      EXPECT_NEAR(n_fat * h, 0.004, h) << "direction " << a;
    }
    // The outer surface at radius 15 + 4 + 1.5 mm.
    EXPECT_NEAR(skin_outer_m, 0.0205, 1.5 * h) << "direction " << a;
  }
  // The cut faces keep their tissue: the first slice's centre is still bone, its muscle ring
  // still muscle.
  EXPECT_EQ(out.at(ci, cj, 0), femur);
  EXPECT_EQ(out.at(ci + 20, cj, 0), vl_left);
  // Tissue table: the segmentation's labels with cited conductivities, then the added layers.
  ASSERT_EQ(s.citations.size(), s.tissues.tissues.size());
  for (std::size_t t = 0; t < s.citations.size(); ++t)
    EXPECT_FALSE(s.citations[t].empty()) << s.tissues.tissues[t].name;
  EXPECT_NE(s.tissues.find("vastus_lateralis_left"), nullptr);
  EXPECT_EQ(s.tissues.find("skin")->tissue_class, TissueClass::skin);
  EXPECT_EQ(s.tissues.find("subcutaneous_fat")->tissue_class, TissueClass::fat);
  EXPECT_EQ(skin, 8163); // above every MuscleMap id
}

TEST(SubjectBuilder, ThicknessesFollowTheRequestOnAnisotropicVoxels) {
  // 0.5 x 0.5 x 2 mm voxels, the cylinder along z: the in-plane layers keep their thickness.
  LabelVolume v = make_volume({100, 100, 8}, 0.0005, [](double x, double y, double) {
    return cylinder(x, y, 0.0, 0.012, 0.004, vl_left);
  });
  v.spacing_m[2] = 0.002;
  SubjectBuildParams p = musclemap_params();
  p.skin_thickness_m = 0.001;
  p.fat_thickness_m = 0.006;
  const auto s = build_subject(inputs_of(v), p);
  EXPECT_NEAR(s.report.skin.mean_m, 0.001, 0.0005);
  EXPECT_NEAR(s.report.fat.mean_m, 0.006, 0.0005);
  EXPECT_EQ(count_components(s.volume), 1);
}

TEST(SubjectBuilder, TwoPartBodyKeepsThePartOfTheNamedMuscleAndRefusesMusclesInBoth) {
  // Two cylinders 14 mm apart: after 5.5 mm of layers each they stay separate.
  const auto v = make_volume({160, 64, 10}, 0.0005, [](double x, double y, double) {
    const auto a = cylinder(x, y, -0.0195, 0.012, 0.003, vl_left);
    return a != 0 ? a : cylinder(x, y, 0.0195, 0.012, 0.003, vl_right);
  });
  SubjectBuildParams p = musclemap_params();
  p.margin_m = 0.05; // the whole volume
  p.muscles = {"Left Vastus Lateralis"};
  const auto s = build_subject(inputs_of(v), p);
  EXPECT_EQ(s.report.n_parts, 2);
  EXPECT_EQ(s.report.dropped_labels,
            (std::vector<std::string>{"femur_left", "vastus_lateralis_right"}));
  EXPECT_EQ(s.tissues.find("vastus_lateralis_right"), nullptr);
  EXPECT_EQ(count_components(s.volume), 1);
  EXPECT_EQ(s.report.warnings.size(), 1u);

  p.muscles = {"vastus_lateralis_left", "7102"};
  expect_error<BadInput>(
      [&] { (void)build_subject(inputs_of(v), p); },
      {"--muscles", "2 separate parts", "vastus_lateralis_left", "vastus_lateralis_right"});
  // Close enough for the closing to bridge them: one body.
  const auto near = make_volume({120, 64, 10}, 0.0005, [](double x, double y, double) {
    const auto a = cylinder(x, y, -0.0135, 0.012, 0.003, vl_left);
    return a != 0 ? a : cylinder(x, y, 0.0135, 0.012, 0.003, vl_right);
  });
  const auto joined = build_subject(inputs_of(near), p);
  EXPECT_EQ(joined.report.n_parts, 1);
  EXPECT_EQ(count_components(joined.volume), 1);
  EXPECT_NE(joined.tissues.find("vastus_lateralis_right"), nullptr);
}

TEST(SubjectBuilder, RegionOfInterestCropsToTheNamedMuscleAndKeepsThePhysicalFrame) {
  // Muscle A at x < 0, muscle B at x > 0, touching: naming A crops to A plus the margin.
  const double h = 0.0005;
  LabelVolume v = make_volume({160, 60, 10}, h, [](double x, double y, double) {
    if (std::abs(y) > 0.01)
      return std::int32_t{0};
    return x < -0.03 || x > 0.03 ? std::int32_t{0} : x < 0 ? vl_left : vl_right;
  });
  v.direction = Eigen::AngleAxisd(0.3, Eigen::Vector3d::UnitZ()).toRotationMatrix();
  SubjectBuildParams p = musclemap_params();
  p.muscles = {"vastus_lateralis_left"};
  p.margin_m = 0.002;
  const auto s = build_subject(inputs_of(v), p);
  // The voxel at the ROI's first index keeps its physical position.
  const auto& r = s.report;
  const Eigen::Vector3d expected =
      v.physical_point(static_cast<double>(r.roi_first[0]), static_cast<double>(r.roi_first[1]),
                       static_cast<double>(r.roi_first[2]));
  EXPECT_LT((s.volume.origin_m - expected).norm(), 1e-12);
  EXPECT_LT((s.volume.direction - v.direction).norm(), 1e-12);
  // The crop ends 2 mm beyond muscle A on +x, where B continues: a cut face.
  EXPECT_NE(std::find(r.cut_faces.begin(), r.cut_faces.end(), "i+"), r.cut_faces.end());
  EXPECT_EQ(std::find(r.cut_faces.begin(), r.cut_faces.end(), "i-"), r.cut_faces.end());
  EXPECT_LT(s.volume.size[0], 80 + 20);
  EXPECT_EQ(count_components(s.volume), 1);
}

TEST(SubjectBuilder, ResamplingKeepsThePhysicalExtent) {
  const auto v = make_volume({60, 60, 10}, 0.001, [](double x, double y, double) {
    return cylinder(x, y, 0.0, 0.015, 0.005, vl_left);
  });
  SubjectBuildParams p = musclemap_params();
  p.voxel_m = 0.0005;
  const auto s = build_subject(inputs_of(v), p);
  EXPECT_DOUBLE_EQ(s.volume.spacing_m[0], 0.0005);
  // Cut faces along z: 10 mm of slab stays 10 mm (20 voxels of 0.5 mm).
  EXPECT_EQ(s.volume.size[2], 20);
  EXPECT_NEAR(s.report.skin.mean_m, 0.0015, 0.0005);
}

TEST(SubjectBuilder, FatMaskAndCtImageGiveTheFatLayer) {
  // A CT-like image: air -1000 HU outside a 20 mm body, fat -100 HU from 15 to 20 mm, muscle
  // +40 HU inside (labelled 12 mm of muscle, 3 mm of unlabelled muscle-like tissue).
  const double h = 0.0005;
  const auto seg = make_volume({100, 100, 6}, h, [](double x, double y, double) {
    return cylinder(x, y, 0.0, 0.012, 0.004, vl_left);
  });
  IntensityVolume ct;
  ct.size = seg.size;
  ct.spacing_m = seg.spacing_m;
  ct.origin_m = seg.origin_m;
  ct.direction = seg.direction;
  LabelVolume mask = seg;
  for (std::int64_t k = 0; k < seg.size[2]; ++k)
    for (std::int64_t j = 0; j < seg.size[1]; ++j)
      for (std::int64_t i = 0; i < seg.size[0]; ++i) {
        const Eigen::Vector3d x = seg.physical_point(static_cast<double>(i), static_cast<double>(j),
                                                     static_cast<double>(k));
        const double r = std::hypot(x[0], x[1]);
        ct.values.push_back(r > 0.020 ? -1000.0f : r > 0.015 ? -100.0f : 40.0f);
        mask.labels[static_cast<std::size_t>(seg.index(i, j, k))] = r > 0.015 && r <= 0.020;
      }
  SubjectBuildInputs in = inputs_of(seg);
  in.image = ct;
  in.image_name = "ct.nii.gz";
  SubjectBuildParams p = musclemap_params();
  p.skin_thickness_m = 0.001;
  const auto s = build_subject(in, p);
  EXPECT_EQ(s.report.modality, "ct");
  EXPECT_EQ(s.report.fat_source, "ct_hu_range");
  // Fat from 15 mm to the skin (19 mm): 4 mm.
  EXPECT_NEAR(s.report.fat.mean_m, 0.004, h);
  EXPECT_NEAR(s.report.skin.mean_m, 0.001, h);
  EXPECT_NE(s.tissues.find("soft_tissue"), nullptr); // the unlabelled 12..15 mm ring
  EXPECT_EQ(count_components(s.volume), 1);

  // An MR-like image (no HU): the body by Otsu's threshold, the fat as a layer of --fat-mm.
  IntensityVolume mr = ct;
  for (auto& value : mr.values)
    value = value < -500.0f ? 5.0f : value < 0.0f ? 400.0f : 120.0f;
  in.image = mr;
  p.fat_thickness_m = 0.003;
  const auto m_r = build_subject(in, p);
  EXPECT_EQ(m_r.report.modality, "mr");
  EXPECT_EQ(m_r.report.body_source, "mr_otsu");
  EXPECT_GT(m_r.report.body_threshold, 5.0);
  EXPECT_LT(m_r.report.body_threshold, 400.0);
  EXPECT_EQ(m_r.report.fat_source, "layer");
  EXPECT_NEAR(m_r.report.fat.mean_m, 0.003, h);
  EXPECT_EQ(count_components(m_r.volume), 1);

  in.image.reset();
  in.fat_mask = mask;
  in.fat_mask_name = "fat.nii.gz";
  const auto m = build_subject(in, p);
  EXPECT_EQ(m.report.fat_source, "mask");
  // Without the image the body is the labels and the mask (15 to 20 mm) wrapped in 1 mm of skin.
  EXPECT_NEAR(m.report.fat.mean_m, 0.005, h);
  EXPECT_NEAR(m.report.skin.mean_m, 0.001, h);
  EXPECT_EQ(count_components(m.volume), 1);
}

TEST(SubjectBuilder, BadInputIsRefusedWithMessagesNamingTheProblem) {
  const auto v = make_volume({40, 40, 4}, 0.001, [](double x, double y, double) {
    return cylinder(x, y, 0.0, 0.012, 0.004, vl_left);
  });
  SubjectBuildParams p = musclemap_params();
  // No muscle.
  const auto bone_only = make_volume({20, 20, 4}, 0.001, [](double x, double y, double) {
    return cylinder(x, y, 0.0, 0.0, 0.004, vl_left);
  });
  expect_error<BadInput>([&] { (void)build_subject(inputs_of(bone_only), p); },
                         {"seg.nii.gz", "no muscle label", "scheme musclemap"});
  // A scheme that does not match the ids, naming the one that does.
  SubjectBuildParams total = p;
  total.scheme = "total";
  expect_error<BadInput>([&] { (void)build_subject(inputs_of(v), total); },
                         {"2 of 2 label ids are not in scheme \"total\"", "6171 (", "7101 (",
                          "does not match", "--scheme musclemap", "--unknown-as"});
  // ... or takes them as a class when asked.
  total.unknown_as = "muscle";
  const auto as_muscle = build_subject(inputs_of(v), total);
  EXPECT_NE(as_muscle.tissues.find("label_7101"), nullptr);
  EXPECT_EQ(as_muscle.report.unknown_labels.size(), 2u);
  // A named muscle that is absent: the present ones are listed.
  SubjectBuildParams named = p;
  named.muscles = {"rectus femoris left"};
  expect_error<BadInput>([&] { (void)build_subject(inputs_of(v), named); },
                         {"--muscles", "\"rectus femoris left\"", "not present in seg.nii.gz",
                          "vastus_lateralis_left (7101)"});
  named.muscles = {"femur_left"};
  expect_error<BadInput>([&] { (void)build_subject(inputs_of(v), named); },
                         {"\"femur_left\" is of class bone"});
  // An image on another grid.
  SubjectBuildInputs in = inputs_of(v);
  IntensityVolume img;
  img.size = {40, 40, 5};
  img.spacing_m = v.spacing_m;
  img.origin_m = v.origin_m;
  img.values.assign(40 * 40 * 5, 0.0f);
  in.image = img;
  in.image_name = "ct.nii.gz";
  expect_error<BadInput>([&] { (void)build_subject(in, p); },
                         {"ct.nii.gz (--image): size 40 x 40 x 5 differs from the segmentation's "
                          "40 x 40 x 4 (seg.nii.gz)"});
  in.image->size = v.size;
  in.image->values.resize(40 * 40 * 4);
  in.image->origin_m[0] += 0.0005;
  expect_error<BadInput>([&] { (void)build_subject(in, p); }, {"origin", "differs"});
  // Parameters.
  SubjectBuildParams thin = p;
  thin.skin_thickness_m = 0.0;
  expect_error<BadInput>([&] { (void)build_subject(inputs_of(v), thin); },
                         {"subject: skin_mm = 0", "must be in [0.05, 20]"});
}

TEST(SubjectBuilder, WritesASubjectThatLoadsAndIsDeterministic) {
  const auto v = make_volume({60, 60, 6}, 0.001, [](double x, double y, double) {
    return cylinder(x, y, 0.0, 0.015, 0.005, vl_left);
  });
  const auto a = build_subject(inputs_of(v), musclemap_params());
  const auto b = build_subject(inputs_of(v), musclemap_params());
  EXPECT_EQ(a.volume.labels, b.volume.labels);
  TempDir dir;
  myotwin::anatomy::write_built_subject(dir / "s", "cyl", a);
  const auto loaded = myotwin::anatomy::load_subject(dir / "s" / "subject.json");
  EXPECT_EQ(loaded.files.name, "cyl");
  EXPECT_EQ(loaded.volume.labels, a.volume.labels);
  EXPECT_EQ(loaded.tissues.tissues.size(), a.tissues.tissues.size());
  const auto tissues = nlohmann::json::parse(myotwin::read_text_file(dir / "s" / "tissues.json"));
  for (const auto& t : tissues["tissues"])
    EXPECT_FALSE(t["citation"].get<std::string>().empty()) << t;
  const auto report =
      nlohmann::json::parse(myotwin::read_text_file(dir / "s" / "subject_report.json"));
  EXPECT_EQ(report["body"]["n_components"], 1);
  EXPECT_GT(report["skin_thickness"]["mean_mm"].get<double>(), 0.9);
}

TEST(SubjectBuilder, RealCtFatLayerAgreesWithTheSubcutaneousFatMask) {
  const fs::path dir = myotwin::testing::shared_data("real/totalsegmentator_ct");
  if (dir.empty())
    GTEST_SKIP() << "real data absent: " MYOTWIN_SHARED_DATA "/real/totalsegmentator_ct";
  SubjectBuildInputs in;
  in.segmentation = myotwin::anatomy::read_label_volume(dir / "organs_seg.nii.gz");
  in.segmentation_name = "organs_seg.nii.gz";
  in.image = myotwin::anatomy::read_intensity_volume(dir / "ct.nii.gz");
  in.image_name = "ct.nii.gz";
  const auto reference = myotwin::anatomy::read_label_volume(dir / "subcutaneous_fat.nii.gz");
  SubjectBuildParams p; // scheme total
  const auto s = build_subject(in, p);
  EXPECT_EQ(s.report.modality, "ct");
  EXPECT_EQ(s.report.fat_source, "ct_hu_range");
  EXPECT_EQ(count_components(s.volume), 1);
  // Dice of the subcutaneous fat with the reference mask inside the region of interest.
  const std::int32_t fat = label_of(s, "subcutaneous_fat");
  ASSERT_GT(fat, 0);
  const auto& r = s.report;
  std::int64_t both = 0, ours = 0, theirs = 0;
  for (std::int64_t k = 0; k < s.volume.size[2]; ++k)
    for (std::int64_t j = 0; j < s.volume.size[1]; ++j)
      for (std::int64_t i = 0; i < s.volume.size[0]; ++i) {
        const std::int64_t ii = i + r.roi_first[0], jj = j + r.roi_first[1],
                           kk = k + r.roi_first[2];
        const bool a = s.volume.at(i, j, k) == fat;
        const bool b = ii >= 0 && jj >= 0 && kk >= 0 && ii < reference.size[0] &&
                       jj < reference.size[1] && kk < reference.size[2] &&
                       reference.at(ii, jj, kk) != 0;
        both += a && b;
        ours += a;
        theirs += b;
      }
  const double dice = 2.0 * static_cast<double>(both) / static_cast<double>(ours + theirs);
  std::cout << "subcutaneous fat: " << ours << " voxels built, " << theirs
            << " in the reference mask, Dice " << dice << "; skin " << 1e3 * r.skin.mean_m
            << " mm, fat " << 1e3 * r.fat.mean_m << " mm (5-95 % " << 1e3 * r.fat.p5_m << " .. "
            << 1e3 * r.fat.p95_m << ")\n";
  // Measured: 0.93 with the default 10 mm wall closing (0.83 without closing, 0.89 at 5 mm,
  // 0.93 at 15 and 20 mm; 0.62 taking the fat connected to the skin instead of the fat outside
  // the compartment, when visceral fat leaks to the skin through gaps in the wall).
  EXPECT_GE(dice, 0.8);
}

TEST(SubjectBuilder, IntensityReaderReadsAnIntegerImageAsFloatsInItsFrame) {
  TempDir dir;
  LabelVolume v = make_volume({5, 4, 3}, 0.0015, [](double x, double y, double z) {
    return static_cast<std::int32_t>(1000.0 * (x + 2 * y + 3 * z) + 100.0);
  });
  v.direction = Eigen::AngleAxisd(0.5, Eigen::Vector3d::UnitX()).toRotationMatrix();
  myotwin::anatomy::write_label_volume(dir / "v.nii.gz", v);
  const auto img = myotwin::anatomy::read_intensity_volume(dir / "v.nii.gz");
  EXPECT_EQ(img.size, v.size);
  EXPECT_LT((img.origin_m - v.origin_m).norm(), 1e-9);
  EXPECT_LT((img.spacing_m - v.spacing_m).norm(), 1e-9);
  EXPECT_LT((img.direction - v.direction).norm(), 1e-6);
  ASSERT_EQ(img.values.size(), v.labels.size());
  for (std::size_t q = 0; q < v.labels.size(); ++q)
    EXPECT_EQ(img.values[q], static_cast<float>(v.labels[q]));
  expect_error<myotwin::IoError>(
      [&] { (void)myotwin::anatomy::read_intensity_volume(dir / "none.nii.gz"); },
      {"none.nii.gz", "no such file"});
}

TEST(SubjectBuilder, MuscleCutByTheFieldOfViewTakesItsEndsAndAxisFromTheCut) {
  // A slab 10 mm thick cuts a muscle 50 mm wide: the PCA of the piece runs across the slab (x);
  // the cut faces (k = 0 and k = 9) give the ends and the axis (z).
  const auto v = make_volume({60, 20, 10}, 0.001, [](double x, double y, double) {
    return std::abs(x) < 0.025 && std::abs(y) < 0.005 ? vl_left : 0;
  });
  myotwin::anatomy::TissueTable table;
  table.tissues.push_back(myotwin::anatomy::make_tissue(
      vl_left, "vastus_lateralis_left", myotwin::anatomy::tissue_category("muscle")));
  const auto g = myotwin::anatomy::compute_muscle_geometry(v, table, vl_left, {});
  EXPECT_EQ(g.origin_source, myotwin::anatomy::EndSource::cut_face);
  EXPECT_EQ(g.insertion_source, myotwin::anatomy::EndSource::cut_face);
  EXPECT_NEAR(g.axis.z(), 1.0, 1e-12);
  EXPECT_EQ(g.origin_voxels.size(), 500u);
  EXPECT_EQ(g.insertion_voxels.size(), 500u);
  for (const auto idx : g.origin_voxels)
    EXPECT_EQ(idx / (v.size[0] * v.size[1]), 0);
  for (const auto idx : g.insertion_voxels)
    EXPECT_EQ(idx / (v.size[0] * v.size[1]), 9);
  EXPECT_NEAR(g.length_m, 0.010, 1e-9);
  // Cut at one end only: that face is the origin, an end cap the insertion.
  const auto one = make_volume({60, 20, 40}, 0.001, [](double x, double y, double z) {
    return std::abs(x) < 0.005 && std::abs(y) < 0.005 && z < 0.010 ? vl_left : 0;
  });
  const auto h = myotwin::anatomy::compute_muscle_geometry(one, table, vl_left, {});
  EXPECT_EQ(h.origin_source, myotwin::anatomy::EndSource::cut_face);
  EXPECT_EQ(h.insertion_source, myotwin::anatomy::EndSource::end_cap);
  EXPECT_NEAR(h.axis.z(), 1.0, 1e-9);
  for (const auto idx : h.origin_voxels)
    EXPECT_EQ(idx / (one.size[0] * one.size[1]), 0);
}

TEST(SubjectBuilder, AMuscleThatCannotBeModelledIsSkippedUnlessNamed) {
  // A cylinder muscle (7101) and a plate one voxel thick (7121): the plate cannot be modelled.
  const auto v = make_volume({24, 24, 30}, 0.001, [](double x, double y, double) {
    if (std::hypot(x, y) < 0.006)
      return vl_left;
    return std::abs(y - 0.0095) < 0.0004 && std::abs(x) < 0.006 ? std::int32_t{7121} : 0;
  });
  myotwin::anatomy::TissueTable table;
  const auto& muscle = myotwin::anatomy::tissue_category("muscle");
  table.tissues.push_back(myotwin::anatomy::make_tissue(vl_left, "vastus_lateralis_left", muscle));
  table.tissues.push_back(myotwin::anatomy::make_tissue(7121, "vastus_medialis_left", muscle));
  myotwin::anatomy::AnatomyParams params;
  params.motor_units.n_units = 5;
  const auto built = myotwin::anatomy::build_subject_anatomy(v, table, params, 1);
  ASSERT_EQ(built.muscles.size(), 1u);
  EXPECT_EQ(built.muscles[0].geometry.name, "vastus_lateralis_left");
  ASSERT_EQ(built.skipped.size(), 1u);
  EXPECT_EQ(built.skipped[0].first, "vastus_medialis_left");
  EXPECT_NE(built.skipped[0].second.find("thinner than two voxels"), std::string::npos);
  EXPECT_EQ(myotwin::anatomy::to_json(built)["skipped"][0]["name"], "vastus_medialis_left");
  params.muscles = {"vastus_lateralis_left", "vastus_medialis_left"};
  expect_error<BadInput>(
      [&] { (void)myotwin::anatomy::build_subject_anatomy(v, table, params, 1); },
      {"vastus_medialis_left", "thinner than two voxels"});
}
