// The anatomy stage as a whole: every muscle of a subject built, written and read back.

#include <cmath>
#include <omp.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/anatomy/phantom.hpp"
#include "myotwin/anatomy/polydata_io.hpp"
#include "myotwin/anatomy/surface_import.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "test_support.hpp"

using namespace myotwin;
using namespace myotwin::anatomy;

namespace {

/// The default phantom, generated once.
const Phantom& phantom() {
  static const Phantom p = generate_forearm_phantom(PhantomParams{});
  return p;
}

/// Two small muscles of the phantom, with the default parameters.
AnatomyParams two_muscles() {
  AnatomyParams p;
  p.muscles = {"FCR", "PL"};
  return p;
}

bool same_fibres(const SubjectAnatomy& a, const SubjectAnatomy& b) {
  if (a.muscles.size() != b.muscles.size())
    return false;
  for (std::size_t m = 0; m < a.muscles.size(); ++m) {
    const auto& fa = a.muscles[m].fibres.fibres;
    const auto& fb = b.muscles[m].fibres.fibres;
    if (fa.size() != fb.size())
      return false;
    for (std::size_t i = 0; i < fa.size(); ++i) {
      if (fa[i].points_m != fb[i].points_m || fa[i].end_plate_m != fb[i].end_plate_m)
        return false;
    }
    if (a.muscles[m].pool.fibre_unit != b.muscles[m].pool.fibre_unit)
      return false;
    if (a.muscles[m].pool.fibre_cv_m_per_s != b.muscles[m].pool.fibre_cv_m_per_s)
      return false;
  }
  return true;
}

} // namespace

TEST(SubjectAnatomy, BuildsTheNamedMusclesWithTheirTableUnitCounts) {
  const auto built =
      build_subject_anatomy(phantom().volume, phantom().tissues, two_muscles(), 1993);
  ASSERT_EQ(built.muscles.size(), 2u);
  EXPECT_EQ(built.muscles[0].geometry.name, "FCR");
  EXPECT_EQ(built.muscles[1].geometry.name, "PL");
  // The phantom's table gives PL the published 164 units; FCR has the config default (100).
  EXPECT_EQ(built.muscles[0].pool.units.size(), 100u);
  EXPECT_EQ(built.muscles[1].pool.units.size(), 164u);
  for (const auto& m : built.muscles) {
    // At least min_fibres_per_unit model fibres per unit, each fibre in one unit.
    EXPECT_GE(m.fibres.fibres.size(), 5u * m.pool.units.size()) << m.geometry.name;
    EXPECT_EQ(m.pool.fibre_unit.size(), static_cast<Eigen::Index>(m.fibres.fibres.size()));
    // Both ends come from the phantom's tendons, and fibres run roughly along the muscle.
    EXPECT_EQ(m.geometry.origin_source, EndSource::tendon);
    EXPECT_EQ(m.geometry.insertion_source, EndSource::tendon);
    EXPECT_LT(m.statistics.mean_angle_to_axis_deg, 15.0) << m.geometry.name;
    EXPECT_GT(m.statistics.mean_length_m, 0.5 * m.geometry.length_m) << m.geometry.name;
    EXPECT_LE(m.statistics.max_length_m, 1.2 * m.geometry.length_m) << m.geometry.name;
    // The represented real fibres add up to real density times the seed section.
    double real = 0.0;
    for (const auto& f : m.fibres.fibres)
      real += f.weight;
    EXPECT_NEAR(real, 350e6 * m.fibres.section_area_m2, 1e-6 * real);
  }
}

TEST(SubjectAnatomy, IsIdenticalAtOneAndTwoThreadsAndPerMuscleIndependentOfTheOthers) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = build_subject_anatomy(phantom().volume, phantom().tissues, two_muscles(), 7);
  omp_set_num_threads(2);
  const auto two = build_subject_anatomy(phantom().volume, phantom().tissues, two_muscles(), 7);
  omp_set_num_threads(threads);
  EXPECT_TRUE(same_fibres(one, two));
  // PL alone is the same PL.
  AnatomyParams only_pl;
  only_pl.muscles = {"PL"};
  const auto pl = build_subject_anatomy(phantom().volume, phantom().tissues, only_pl, 7);
  SubjectAnatomy pl_of_two;
  pl_of_two.muscles.push_back(two.muscles[1]);
  EXPECT_TRUE(same_fibres(pl, pl_of_two));
  // Another seed gives other fibres.
  const auto other = build_subject_anatomy(phantom().volume, phantom().tissues, two_muscles(), 8);
  EXPECT_FALSE(same_fibres(one, other));
}

TEST(SubjectAnatomy, WritesFilesThatReadBackToTheSameFibresAndUnits) {
  myotwin::testing::TempDir dir;
  const auto built =
      build_subject_anatomy(phantom().volume, phantom().tissues, two_muscles(), 1993);
  write_subject_anatomy(dir.path(), built);
  // fibers.vtp: one polyline per fibre with its unit and muscle.
  const Polylines lines = read_polylines_vtp(dir / "fibers.vtp");
  const auto n_fibres =
      built.muscles[0].fibres.fibres.size() + built.muscles[1].fibres.fibres.size();
  ASSERT_EQ(lines.n_lines(), static_cast<std::int64_t>(n_fibres));
  const auto& first = built.muscles[0].fibres.fibres[0];
  EXPECT_EQ(lines.points_m.topRows(first.points_m.rows()), Eigen::MatrixX3d(first.points_m));
  EXPECT_EQ(lines.cell_data_int.at("muscle_label").front(), built.muscles[0].geometry.label);
  EXPECT_EQ(lines.cell_data_int.at("motor_unit").back(),
            built.muscles[1].pool.fibre_unit.tail(1)[0]);
  // motor_units.h5: units and fibres per muscle.
  const H5Reader h5(dir / "motor_units.h5");
  const auto& pl = built.muscles[1];
  const auto offsets = h5.read_int64("muscles/PL/units/fibre_offsets");
  EXPECT_EQ(offsets.size(), static_cast<Eigen::Index>(pl.pool.units.size() + 1));
  EXPECT_EQ(offsets(offsets.size() - 1, 0), static_cast<std::int64_t>(pl.fibres.fibres.size()));
  const auto thresholds = h5.read_double("muscles/PL/units/recruitment_threshold");
  EXPECT_NEAR(thresholds(thresholds.size() - 1, 0) / thresholds(0, 0), 30.0, 1e-9);
  const auto points = h5.read_double("muscles/PL/fibres/points_m");
  const auto fibre_offsets = h5.read_int64("muscles/PL/fibres/offsets");
  EXPECT_EQ(fibre_offsets(fibre_offsets.size() - 1, 0), points.rows());
  // anatomy.json: the per-muscle summary.
  const auto summary = nlohmann::json::parse(read_text_file(dir / "anatomy.json"));
  EXPECT_EQ(summary["muscles"][1]["name"], "PL");
  EXPECT_EQ(summary["muscles"][1]["n_motor_units"], 164);
}

TEST(SubjectAnatomy, ReadsBackWhatItWroteExactly) {
  myotwin::testing::TempDir dir;
  const auto built =
      build_subject_anatomy(phantom().volume, phantom().tissues, two_muscles(), 1993);
  write_subject_anatomy(dir.path(), built);
  const auto read = read_subject_anatomy(dir.path());
  ASSERT_EQ(read.muscles.size(), built.muscles.size());
  for (std::size_t m = 0; m < built.muscles.size(); ++m) {
    const auto& a = built.muscles[m];
    const auto& b = read.muscles[m];
    EXPECT_EQ(b.geometry.name, a.geometry.name);
    EXPECT_EQ(b.geometry.label, a.geometry.label);
    EXPECT_EQ(b.geometry.volume_m3, a.geometry.volume_m3);
    EXPECT_EQ(b.geometry.length_m, a.geometry.length_m);
    EXPECT_EQ(b.fibres.section_area_m2, a.fibres.section_area_m2);
    EXPECT_EQ(b.fibres.plane_centre_m, a.fibres.plane_centre_m);
    EXPECT_EQ(b.fibres.plane_e1, a.fibres.plane_e1);
    EXPECT_EQ(b.fibres.plane_e2, a.fibres.plane_e2);
    EXPECT_EQ(b.fibres.plane_normal, a.fibres.plane_normal);
    ASSERT_EQ(b.fibres.fibres.size(), a.fibres.fibres.size()) << a.geometry.name;
    for (std::size_t i = 0; i < a.fibres.fibres.size(); ++i) {
      const auto& fa = a.fibres.fibres[i];
      const auto& fb = b.fibres.fibres[i];
      ASSERT_EQ(fb.points_m.rows(), fa.points_m.rows()) << a.geometry.name << " fibre " << i;
      EXPECT_EQ(fb.points_m, fa.points_m) << a.geometry.name << " fibre " << i;
      EXPECT_EQ(fb.length_m, fa.length_m);
      EXPECT_EQ(fb.end_plate_m, fa.end_plate_m);
      EXPECT_EQ(fb.weight, fa.weight);
    }
    ASSERT_EQ(b.pool.units.size(), a.pool.units.size()) << a.geometry.name;
    for (std::size_t u = 0; u < a.pool.units.size(); ++u) {
      const auto& ua = a.pool.units[u];
      const auto& ub = b.pool.units[u];
      EXPECT_EQ(ub.index, ua.index);
      EXPECT_EQ(ub.fibres, ua.fibres) << a.geometry.name << " unit " << u;
      EXPECT_EQ(ub.target_n_fibres, ua.target_n_fibres);
      EXPECT_EQ(ub.n_fibres, ua.n_fibres);
      EXPECT_EQ(ub.recruitment_threshold, ua.recruitment_threshold);
      EXPECT_EQ(ub.territory_centre_m, ua.territory_centre_m);
      EXPECT_EQ(ub.territory_radius_m, ua.territory_radius_m);
      EXPECT_EQ(ub.cv_m_per_s, ua.cv_m_per_s);
      EXPECT_EQ(ub.fibre_diameter_m, ua.fibre_diameter_m);
    }
    EXPECT_EQ(b.pool.fibre_unit, a.pool.fibre_unit);
    EXPECT_EQ(b.pool.fibre_cv_m_per_s, a.pool.fibre_cv_m_per_s);
    EXPECT_EQ(b.pool.fibre_diameter_m, a.pool.fibre_diameter_m);
  }
  EXPECT_TRUE(same_fibres(built, read));
}

TEST(SubjectAnatomy, ReadingRejectsAMissingFileAndCorruptOffsets) {
  myotwin::testing::TempDir dir;
  myotwin::testing::expect_error<IoError>([&] { read_subject_anatomy(dir.path()); },
                                          {"motor_units.h5"});
  // One muscle of two fibres whose point offsets run past the points.
  {
    H5Writer w(dir / "motor_units.h5");
    w.set_attributes("/",
                     {{"format", std::string("myotwin anatomy")}, {"n_muscles", std::int64_t{1}}});
    const std::string g = "muscles/M";
    w.set_attributes(g, {{"label", std::int64_t{3}},
                         {"volume_m3", 1e-6},
                         {"length_m", 0.1},
                         {"section_area_m2", 1e-4}});
    const Eigen::Vector3d e(0.0, 0.0, 1.0);
    w.write_vector(g + "/plane/centre_m", Eigen::VectorXd(Eigen::Vector3d::Zero()));
    w.write_vector(g + "/plane/e1", Eigen::VectorXd(Eigen::Vector3d::UnitX()));
    w.write_vector(g + "/plane/e2", Eigen::VectorXd(Eigen::Vector3d::UnitY()));
    w.write_vector(g + "/plane/normal", Eigen::VectorXd(e));
    w.write(g + "/fibres/points_m", Eigen::MatrixXd(Eigen::MatrixXd::Zero(4, 3)));
    w.write_vector(g + "/fibres/offsets", VectorXi64((VectorXi64(3) << 0, 2, 5).finished()));
    const Eigen::VectorXd two = Eigen::VectorXd::Ones(2);
    w.write_vector(g + "/fibres/length_m", two);
    w.write_vector(g + "/fibres/end_plate_m", two);
    w.write_vector(g + "/fibres/weight", two);
    w.write_vector(g + "/fibres/motor_unit", VectorXi64(VectorXi64::Zero(2)));
    w.write_vector(g + "/fibres/cv_m_per_s", two);
    w.write_vector(g + "/fibres/diameter_m", two);
    const Eigen::VectorXd one = Eigen::VectorXd::Ones(1);
    for (const char* name : {"target_n_fibres", "n_fibres", "recruitment_threshold",
                             "territory_radius_m", "cv_m_per_s", "fibre_diameter_m"})
      w.write_vector(g + "/units/" + name, one);
    w.write(g + "/units/territory_centre_2d_m", Eigen::MatrixXd(Eigen::MatrixXd::Zero(1, 2)));
    w.write_vector(g + "/units/fibre_offsets", VectorXi64((VectorXi64(2) << 0, 2).finished()));
    w.write_vector(g + "/units/fibres", VectorXi64((VectorXi64(2) << 0, 1).finished()));
    w.commit();
  }
  myotwin::testing::expect_error<BadInput>([&] { read_subject_anatomy(dir.path()); },
                                           {"motor_units.h5", "muscles/M/fibres/offsets"});
}

TEST(SubjectAnatomy, RejectsNamesThatAreNotMusclesAndTooFewFibres) {
  AnatomyParams p;
  p.muscles = {"radius"};
  myotwin::testing::expect_error<BadInput>(
      [&] { build_subject_anatomy(phantom().volume, phantom().tissues, p, 1); },
      {"anatomy.muscles", "\"radius\" is not a muscle", "FCR"});
  AnatomyParams q = two_muscles();
  q.min_fibres_per_unit = 1.0;
  q.fibres.model_density_per_m2 = 0.05e6; // 0.05 per mm^2: far too few for 100 units
  // The density is raised automatically to reach min_fibres_per_unit.
  const auto built = build_subject_anatomy(phantom().volume, phantom().tissues, q, 1);
  EXPECT_TRUE(built.muscles[0].model_density_raised);
  EXPECT_GE(built.muscles[0].fibres.fibres.size(), 100u);
}

TEST(SubjectAnatomy, ReadsItsConfigSectionStrictly) {
  ConfigReader cfg(
      nlohmann::json::parse(
          R"({"muscles": ["FCR"], "fibres": {"model_density_per_mm2": 4}, "typo": 1})"),
      "run.json");
  const auto p = read_anatomy_params(cfg);
  EXPECT_EQ(p.muscles, std::vector<std::string>{"FCR"});
  EXPECT_DOUBLE_EQ(p.fibres.model_density_per_m2, 4e6);
  myotwin::testing::expect_error<BadInput>([&] { cfg.finish(); }, {"run.json: typo: unknown key"});
}

TEST(SubjectAnatomy, RealBicepsSurfaceGetsFibresAlongTheMuscle) {
  const auto stl = myotwin::testing::shared_data("real/opendihu_biceps/biceps_full.stl");
  if (stl.empty())
    GTEST_SKIP() << "../shared/data/real/opendihu_biceps is absent";
  SurfaceImportParams import;
  import.voxel_size_m = 1e-3; // 1 mm keeps the field solve to a few seconds
  import.muscle_name = "biceps";
  const auto subject = import_surface(stl, import);
  const auto built = build_subject_anatomy(subject.volume, subject.tissues, AnatomyParams{}, 1993);
  ASSERT_EQ(built.muscles.size(), 1u);
  const auto& m = built.muscles[0];
  EXPECT_GE(m.fibres.fibres.size(), 500u);
  EXPECT_LT(m.statistics.mean_angle_to_axis_deg, 20.0);
  // Issue 3: lengths within 20 % of the muscle length, tendon to tendon (measured: mean 0.97
  // of the muscle length, 98 % of the fibres reach both ends).
  EXPECT_GT(m.statistics.mean_length_m, 0.8 * m.geometry.length_m);
  EXPECT_GT(m.statistics.fraction_tendon_to_tendon, 0.95);
  EXPECT_LT(m.statistics.max_length_m, 1.2 * m.geometry.length_m);
}

TEST(RealisedCv, IsTheMeanOfTheUnitsFibreCvsWeightedByRealFibresTimesCrossSection) {
  MuscleFibres fibres;
  fibres.fibres.resize(3);
  fibres.fibres[0].weight = 1.0;
  fibres.fibres[1].weight = 3.0;
  fibres.fibres[2].weight = 10.0;
  MotorUnitPool pool;
  pool.units.resize(2);
  pool.units[0].cv_m_per_s = 5.4; // nominal: not what its fibres realise
  pool.units[0].fibres = {0, 1};
  pool.units[1].fibres = {};
  pool.fibre_cv_m_per_s = Eigen::Vector3d(4.0, 5.0, 3.0);
  pool.fibre_diameter_m = Eigen::Vector3d(40e-6, 50e-6, 30e-6);
  // Weights: real fibres x cross-section, 1 x 16 and 3 x 25 (x 1e-10 m^2).
  EXPECT_NEAR(realised_cv_m_per_s(fibres, pool, 0), (16.0 * 4.0 + 75.0 * 5.0) / (16.0 + 75.0),
              1e-12);
  EXPECT_TRUE(std::isnan(realised_cv_m_per_s(fibres, pool, 1)));
  myotwin::testing::expect_error<BadInput>([&] { (void)realised_cv_m_per_s(fibres, pool, 2); },
                                           {"unit 2 of a pool of 2"});
  pool.units[1].fibres = {7};
  myotwin::testing::expect_error<BadInput>([&] { (void)realised_cv_m_per_s(fibres, pool, 1); },
                                           {"has fibre 7", "3 fibres"});
}

TEST(SubjectAnatomy, EstimateCountsTheMusclesVoxelsAndScalesWithThreadsAndUpsampling) {
  const auto& volume = phantom().volume;
  const auto& tissues = phantom().tissues;
  // The closed form of the counts: the named muscles' voxels, upsampling^3 unknowns each.
  double n_voxels = 0.0;
  for (const auto l : volume.labels)
    n_voxels += (l == tissues.find("FCR")->label || l == tissues.find("PL")->label) ? 1.0 : 0.0;
  AnatomyParams p = two_muscles();
  const RunEstimate one = estimate_subject_anatomy(volume, tissues, p, 1);
  EXPECT_NE(one.drivers.find("2 muscles, " + format_number(n_voxels) + " muscle voxels, " +
                             format_number(n_voxels) + " fibre-field unknowns"),
            std::string::npos)
      << one.drivers;
  // Two threads: two fibre fields at once (more memory), the muscles in parallel (less time).
  const RunEstimate two = estimate_subject_anatomy(volume, tissues, p, 2);
  EXPECT_GT(two.bytes, one.bytes);
  EXPECT_LT(two.seconds, one.seconds);
  // Upsampling by 2: 8 times the unknowns; the memory and time grow, the voxels do not.
  p.fibre_field.upsampling = 2;
  const RunEstimate up = estimate_subject_anatomy(volume, tissues, p, 1);
  EXPECT_NE(up.drivers.find(format_number(8.0 * n_voxels) + " fibre-field unknowns"),
            std::string::npos)
      << up.drivers;
  EXPECT_GT(up.bytes, one.bytes);
  EXPECT_GT(up.seconds, one.seconds);
  // A named muscle that is not one is refused as by the build.
  p.muscles = {"radius"};
  EXPECT_THROW(estimate_subject_anatomy(volume, tissues, p, 1), BadInput);
}
