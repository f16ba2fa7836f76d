// Electrodes on a CGAL-meshed cylinder (muscle core, fat, skin; radius 20 mm, 60 mm long, 1 mm
// voxels, 3 mm cells), and the lead-field cache.

#include <cmath>
#include <iostream>
#include <numbers>

#include <gtest/gtest.h>
#include <omp.h>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/forward/conductor/conductivity.hpp"
#include "myotwin/forward/conductor/fem.hpp"
#include "myotwin/forward/conductor/lead_field.hpp"
#include "myotwin/forward/conductor/lead_field_cache.hpp"
#include "myotwin/forward/electrodes/electrodes.hpp"
#include "myotwin/forward/subject_model.hpp"
#include "myotwin/meshing/image_mesher.hpp"
#include "test_support.hpp"

using namespace myotwin;
using namespace myotwin::forward;
using anatomy::TissueClass;
using myotwin::testing::expect_error;

namespace {

constexpr double radius_m = 20e-3;

anatomy::TissueTable cylinder_tissues() {
  anatomy::TissueTable t;
  t.tissues.push_back({1, "skin", TissueClass::skin, 1.0, 1.0, "", 0});
  t.tissues.push_back({2, "fat", TissueClass::fat, 0.04, 0.04, "", 0});
  t.tissues.push_back({3, "muscle", TissueClass::muscle, 0.5, 0.1, "", 0});
  return t;
}

/// Cylinder along z: muscle r < 14 mm, fat to 17.5 mm, skin to 20 mm; 60 mm long.
const meshing::TetMesh& cylinder() {
  static const meshing::TetMesh mesh = [] {
    anatomy::LabelVolume v;
    const std::int64_t n = 46, nz = 60;
    v.size = {n, n, nz};
    v.spacing_m = Eigen::Vector3d::Constant(1e-3);
    const double c = 0.5 * static_cast<double>(n - 1);
    v.origin_m = Eigen::Vector3d(-c * 1e-3, -c * 1e-3, 0.0);
    v.labels.assign(static_cast<std::size_t>(v.n_voxels()), 0);
    for (std::int64_t k = 0; k < nz; ++k)
      for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t i = 0; i < n; ++i) {
          const double r = std::hypot(static_cast<double>(i) - c, static_cast<double>(j) - c);
          std::int32_t label = 0;
          if (r <= 14.0)
            label = 3;
          else if (r <= 17.5)
            label = 2;
          else if (r <= 20.0)
            label = 1;
          v.labels[static_cast<std::size_t>(v.index(i, j, k))] = label;
        }
    meshing::MeshParams p;
    for (auto& [cls, size] : p.class_cell_size_mm)
      size = 3.0;
    auto m = meshing::mesh_label_volume(v, cylinder_tissues(), p, 11).mesh;
    m.fibre_direction.setZero();
    for (std::int64_t t = 0; t < m.n_tets(); ++t)
      if (m.labels[static_cast<std::size_t>(t)] == 3)
        m.fibre_direction.row(t) << 0.0, 0.0, 1.0;
    return m;
  }();
  return mesh;
}

ElectrodeConfig config_from(const std::string& text) {
  ConfigReader r(nlohmann::json::parse(text), "test.json");
  auto section = r.section("electrodes");
  ElectrodeConfig c = read_electrode_config(section);
  r.finish();
  return c;
}

double radial_m(const Eigen::Vector3d& p) {
  return std::hypot(p.x(), p.y());
}

} // namespace

TEST(Electrodes, WrappedGridLiesOnTheSkinWithIedSpacingAlongTheCircumference) {
  const auto& mesh = cylinder();
  const auto layout = place_electrodes(mesh, cylinder_tissues(), config_from(R"({"electrodes": {
      "grids": [{"name": "g", "rows": 3, "columns": 12, "ied_mm": 8, "wrap": true,
                 "shape": "circle", "radius_mm": 4, "axial_fraction": 0.5}]}})"));
  ASSERT_EQ(layout.electrodes.size(), 36U);
  EXPECT_NEAR(layout.axis.axis.z(), 1.0, 1e-3); // PCA of irregular nodes: within ~1 deg
  EXPECT_NEAR(layout.grid_circumference_m[0], 2.0 * std::numbers::pi * radius_m, 0.03 * 0.126);
  double worst_radius = 0.0, worst_spacing = 0.0, worst_row = 0.0, worst_area = 0.0;
  double sum_arc = 0.0;
  int n_arc = 0;
  for (const auto& e : layout.electrodes) {
    worst_radius = std::max(worst_radius, std::abs(radial_m(e.position_m) - radius_m));
    worst_area = std::max(worst_area, std::abs(e.area_m2 / e.nominal_area_m2 - 1.0));
    EXPECT_GE(e.pad_faces.rows(), 1);
  }
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t j = 0; j + 1 < 12; ++j) {
      const auto& a = layout.electrodes[static_cast<std::size_t>(12 * i + j)];
      const auto& b = layout.electrodes[static_cast<std::size_t>(12 * i + j + 1)];
      double dth = (b.angle_deg - a.angle_deg) * std::numbers::pi / 180.0;
      dth -= 2.0 * std::numbers::pi * std::floor(dth / (2.0 * std::numbers::pi) + 0.5);
      const double arc = std::abs(dth) * 0.5 * (radial_m(a.position_m) + radial_m(b.position_m));
      worst_spacing = std::max(worst_spacing, std::abs(arc / 8e-3 - 1.0));
      sum_arc += arc;
      ++n_arc;
      if (i + 1 < 3) {
        const auto& c = layout.electrodes[static_cast<std::size_t>(12 * (i + 1) + j)];
        worst_row = std::max(worst_row, std::abs((c.axial_m - a.axial_m) / 8e-3 - 1.0));
      }
    }
  std::cout << "cylinder: " << mesh.n_nodes() << " nodes, " << mesh.n_tets()
            << " tets; circumference " << layout.grid_circumference_m[0] * 1e3
            << " mm; worst |r - R| " << worst_radius * 1e3 << " mm, arc spacing error "
            << 100 * worst_spacing << " % (mean spacing " << 1e3 * sum_arc / n_arc
            << " mm), row spacing error " << 100 * worst_row << " %, pad area error "
            << 100 * worst_area << " %\n";
  EXPECT_LT(worst_radius, 0.8e-3);
  // Each step is ied / local radius; measured from the z axis with the end points' radii, a pair
  // differs by the facets' +-0.4 mm radial roughness, the mean not.
  EXPECT_LT(worst_spacing, 0.05);
  EXPECT_NEAR(sum_arc / n_arc, 8e-3, 0.01 * 8e-3);
  EXPECT_LT(worst_row, 1e-9);
  EXPECT_LT(worst_area, 0.25);
}

TEST(Electrodes, PlanarGridAndNeedlesArePlacedAndReferenced) {
  const auto& mesh = cylinder();
  const auto layout = place_electrodes(mesh, cylinder_tissues(), config_from(R"({"electrodes": {
      "grids": [{"name": "p", "rows": 2, "columns": 3, "ied_mm": 5, "shape": "square",
                 "side_mm": 6, "axial_position_mm": 25, "angle_deg": 90, "rotation_deg": 10},
                {"name": "ref", "rows": 1, "columns": 1, "centre_mm": [0, -30, 50]}],
      "needles": [{"name": "n", "position_mm": [2, 1, 30]},
                  {"name": "w", "start_mm": [0, 0, 20], "end_mm": [5, 0, 30], "n_points": 4}],
      "reference": "ref"}})"));
  ASSERT_EQ(layout.electrodes.size(), 9U);
  EXPECT_EQ(layout.electrodes[0].name, "p[0,0]");
  EXPECT_EQ(layout.electrodes[6].name, "ref");
  EXPECT_EQ(layout.reference_index, 6);
  for (int k = 0; k < 7; ++k) {
    const auto& e = layout.electrodes[static_cast<std::size_t>(k)];
    EXPECT_NEAR(radial_m(e.position_m), radius_m, 0.8e-3) << e.name;
  }
  EXPECT_NEAR(layout.electrodes[0].angle_deg, 90.0, 15.0);
  // Planar layout projected radially on the cylinder: neighbours ~5 mm apart (the projection
  // shortens a 5 mm tangent offset by ~2 % at R = 20 mm).
  for (int k : {0, 1, 3, 4}) {
    const auto& a = layout.electrodes[static_cast<std::size_t>(k)];
    const auto& b = layout.electrodes[static_cast<std::size_t>(k + 1)];
    EXPECT_NEAR((a.position_m - b.position_m).norm(), 5e-3, 0.05 * 5e-3) << a.name;
  }
  EXPECT_NEAR((layout.electrodes[0].position_m - layout.electrodes[3].position_m).norm(), 5e-3,
              0.05 * 5e-3);
  EXPECT_LT(layout.electrodes[6].position_m.y(), -19e-3); // the point's side of the limb
  EXPECT_EQ(layout.electrodes[8].kind, ElectrodeKind::line);
  EXPECT_EQ(layout.electrodes[8].contact_points_m.rows(), 4);
  const auto json = to_json(layout);
  EXPECT_EQ(json["reference"], "ref");
  EXPECT_EQ(json["electrodes"][1]["column"], 1);

  // Lead fields of the layout: against the reference electrode its column is zero, and the
  // average reference sums to zero across electrodes.
  VolumeConductor conductor(mesh, cylinder_tissues());
  const Eigen::MatrixXd b =
      layout_currents(mesh, conductor.locator(), layout, conductor.reference_node());
  EXPECT_NEAR(b.col(8).sum(), 1.0, 1e-12);
  const Eigen::MatrixXd raw = conductor.solver().solve(b);
  const Eigen::MatrixXd ref = apply_reference(raw, layout);
  EXPECT_EQ(ref.col(6).cwiseAbs().maxCoeff(), 0.0);
  auto average_layout = layout;
  average_layout.reference_index = -1;
  const Eigen::MatrixXd avg = apply_reference(raw, average_layout);
  EXPECT_LT(avg.rowwise().sum().cwiseAbs().maxCoeff(), 1e-9 * avg.cwiseAbs().maxCoeff());
}

TEST(Electrodes, RejectsAWrappedGridLargerThanTheCircumference) {
  expect_error<BadInput>(
      [] {
        place_electrodes(cylinder(), cylinder_tissues(), config_from(R"({"electrodes": {
          "grids": [{"name": "big", "rows": 2, "columns": 20, "ied_mm": 8, "wrap": true}]}})"));
      },
      {"'big'", "20 columns x 8 mm = 160 mm exceeds the limb circumference", "mm at axial"});
}

TEST(Electrodes, RejectsNeedlesOutsideMuscleNamingTheTissue) {
  expect_error<BadInput>(
      [] {
        place_electrodes(cylinder(), cylinder_tissues(), config_from(R"({"electrodes": {
          "needles": [{"name": "deep", "position_mm": [0, 0, 30]},
                      {"name": "shallow", "position_mm": [16, 0, 30]}]}})"));
      },
      {"'shallow'", "(16, 0, 30) mm", "lies in tissue 'fat'", "expected a muscle"});
  expect_error<BadInput>(
      [] {
        place_electrodes(cylinder(), cylinder_tissues(), config_from(R"({"electrodes": {
          "needles": [{"name": "out", "start_mm": [0, 0, 30], "end_mm": [0, 0, 90],
                       "n_points": 2}]}})"));
      },
      {"'out'", "contact point 1", "outside the mesh"});
}

TEST(Electrodes, RejectsElectrodesOffTheSkinOrOffTheMeshEnd) {
  expect_error<BadInput>(
      [] {
        place_electrodes(cylinder(), cylinder_tissues(), config_from(R"({"electrodes": {
          "grids": [{"name": "far", "rows": 1, "columns": 1, "axial_position_mm": 80}]}})"));
      },
      {"'far'", "axial position 80 mm", "falls off the mesh end"});
  expect_error<BadInput>(
      [] {
        place_electrodes(cylinder(), cylinder_tissues(), config_from(R"({"electrodes": {
          "grids": [{"name": "edge", "rows": 1, "columns": 1, "radius_mm": 4,
                     "axial_position_mm": 1}]}})"));
      },
      {"'edge'", "the pad", "falls off the mesh end"});
  expect_error<BadInput>(
      [] {
        place_electrodes(cylinder(), cylinder_tissues(), config_from(R"({"electrodes": {
          "grids": [{"name": "long", "rows": 9, "columns": 1, "ied_mm": 8}]}})"));
      },
      {"'long'", "falls off the mesh end"});
}

TEST(Electrodes, ConfigIsStrictAndDefaultsToTheWrappedGrid) {
  const auto d = config_from(R"({"electrodes": {}})");
  ASSERT_EQ(d.grids.size(), 1U);
  EXPECT_EQ(d.grids[0].rows * d.grids[0].columns, 320);
  EXPECT_TRUE(d.grids[0].wrap);
  EXPECT_EQ(d.reference, "average");
  // The JSON form reads back to the same config.
  const auto again = config_from(nlohmann::json{{"electrodes", to_json(d)}}.dump());
  EXPECT_EQ(to_json(again), to_json(d));
  expect_error<BadInput>([] { config_from(R"({"electrodes": {"grids": [{"shape": "hex"}]}})"); },
                         {"electrodes.grids[0].shape", "hex"});
  expect_error<BadInput>([] { config_from(R"({"electrodes": {"grids": [{"ied_mm": -8}]}})"); },
                         {"electrodes.grids[0].ied_mm", "must be > 0"});
  expect_error<BadInput>(
      [] { config_from(R"({"electrodes": {"grids": [{"radius_mm": 2, "side_mm": 3}]}})"); },
      {"side_mm", "unknown key"});
  expect_error<BadInput>(
      [] {
        place_electrodes(cylinder(), cylinder_tissues(),
                         config_from(R"({"electrodes": {"grids": [{"rows": 1, "columns": 1}],
                                         "reference": "nowhere"}})"));
      },
      {"electrodes.reference", "nowhere", "names no electrode"});
}

TEST(LeadFieldCache, KeyChangesWithConductivityAndTheFileRoundTrips) {
  const auto& mesh = cylinder();
  const auto tissues = cylinder_tissues();
  const auto layout = place_electrodes(
      mesh, tissues,
      config_from(R"({"electrodes": {"grids": [{"rows": 1, "columns": 2, "ied_mm": 10}]}})"));
  const auto tensors = conductivity_tensors(mesh, tissues);
  const auto key = lead_field_key(mesh, tensors, 0, layout);
  EXPECT_EQ(key, lead_field_key(mesh, tensors, 0, layout));
  auto changed = tissues;
  changed.tissues[1].sigma_l_S_per_m = changed.tissues[1].sigma_t_S_per_m = 0.05;
  EXPECT_NE(key, lead_field_key(mesh, conductivity_tensors(mesh, changed), 0, layout));
  EXPECT_NE(key, lead_field_key(mesh, tensors, 1, layout));
  auto moved = layout;
  moved.electrodes[0].pad_faces(0, 0) += 1;
  EXPECT_NE(key, lead_field_key(mesh, tensors, 0, moved));
  // The identity the commands use: the config's grounded node, or the default one.
  const auto given = lead_field_identity(mesh, tissues, 0, layout);
  EXPECT_EQ(given.key, key);
  EXPECT_EQ(given.reference_node, 0);
  const auto by_default = lead_field_identity(mesh, tissues, -1, layout);
  EXPECT_EQ(by_default.reference_node, default_reference_node(mesh));
  EXPECT_EQ(by_default.key, lead_field_key(mesh, tensors, default_reference_node(mesh), layout));
  auto missing = tissues;
  missing.tissues.pop_back();
  EXPECT_THROW(lead_field_identity(mesh, missing, -1, layout), myotwin::BadInput);

  myotwin::testing::TempDir dir;
  LeadFieldCache c;
  c.key = key_hex(key);
  c.reference = "average";
  c.method = "direct";
  c.lead_fields_V_per_A = Eigen::MatrixXd::Random(mesh.n_nodes(), 2);
  c.points_m = Eigen::MatrixX3d::Zero(2, 3);
  c.points_m(1, 2) = 30e-3;
  c.points_m(0, 2) = -5.0; // outside: sampled as NaN
  c.locations = PointLocator(mesh).locate(c.points_m);
  c.sampling_key = key_hex(sampling_key(key, c.points_m));
  c.sampled_V_per_A = sample_or_nan(c.locations, c.lead_fields_V_per_A);
  EXPECT_TRUE(std::isnan(c.sampled_V_per_A(0, 0)));
  EXPECT_FALSE(std::isnan(c.sampled_V_per_A(1, 1)));
  write_lead_field_cache(dir / "leadfields.h5", c);
  EXPECT_EQ(read_cache_key(dir / "leadfields.h5"), c.key);
  EXPECT_FALSE(read_lead_field_cache(dir / "leadfields.h5", key_hex(key + 1), "").has_value());
  const auto back = read_lead_field_cache(dir / "leadfields.h5", c.key, c.sampling_key);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->lead_fields_V_per_A, c.lead_fields_V_per_A);
  EXPECT_EQ(back->locations.tet, c.locations.tet);
  EXPECT_EQ(back->locations.weights, c.locations.weights);
  EXPECT_EQ(back->sampled_V_per_A(1, 1), c.sampled_V_per_A(1, 1));
  const auto no_sampling = read_lead_field_cache(dir / "leadfields.h5", c.key, "other");
  ASSERT_TRUE(no_sampling.has_value());
  EXPECT_TRUE(no_sampling->sampling_key.empty());
}

TEST(Electrodes, PlacementAndLeadFieldsAreIdenticalAtOneAndTwoThreads) {
  const auto& mesh = cylinder();
  const auto config = config_from(R"({"electrodes": {"grids": [{"rows": 2, "columns": 6,
      "ied_mm": 8, "wrap": true}], "needles": [{"name": "n", "position_mm": [3, 0, 30]}]}})");
  const auto compute = [&](int threads) {
    omp_set_num_threads(threads);
    const auto layout = place_electrodes(mesh, cylinder_tissues(), config);
    VolumeConductor conductor(mesh, cylinder_tissues());
    const Eigen::MatrixXd b =
        layout_currents(mesh, conductor.locator(), layout, conductor.reference_node());
    return std::pair{to_json(layout).dump(), apply_reference(conductor.solver().solve(b), layout)};
  };
  const int before = omp_get_max_threads();
  const auto one = compute(1);
  const auto two = compute(2);
  omp_set_num_threads(before);
  EXPECT_EQ(one.first, two.first);
  EXPECT_EQ(one.second, two.second);
}

// ---------------------------------------------------------------------------------------------
// Grids on a staircase skin and electrodes placed by muscle.

namespace {

constexpr double shell_radius_mm = 40.0;
constexpr double muscle_angle_deg = 35.0;
constexpr double fibre_tilt_deg = 20.0;

anatomy::TissueTable shell_tissues() {
  anatomy::TissueTable t = cylinder_tissues();
  t.tissues[2].name = "Left Vastus Lateralis";
  return t;
}

/// A voxel shell along z (1 mm cubes, Kuhn split; voxel centres at radius 35 to 40 mm, 60 mm
/// long): every boundary face is axis-aligned, so the skin is a staircase. Skin: the outer 1 mm;
/// muscle: a sector of +-30 deg around 35 deg under it, fibres tilted 20 deg from z in the
/// tangent plane; fat elsewhere.
const meshing::TetMesh& staircase_shell() {
  static const meshing::TetMesh mesh = [] {
    const std::int64_t n = 82, nz = 60;
    const auto box = meshing::structured_box_mesh(Eigen::Vector3d(-41e-3, -41e-3, 0.0),
                                                  Eigen::Vector3d(41e-3, 41e-3, 60e-3), {n, n, nz});
    std::vector<std::int64_t> keep;
    std::vector<std::int32_t> labels;
    std::vector<Eigen::Vector3d> fibres;
    for (std::int64_t t = 0; t < box.n_tets(); ++t) {
      Eigen::Vector3d c = Eigen::Vector3d::Zero();
      for (int k = 0; k < 4; ++k)
        c += 0.25 * box.nodes_m.row(box.tets(t, k)).transpose();
      // The cube's centre (the tet's centroid lies inside its cube).
      const double x = (std::floor(c.x() * 1e3) + 0.5), y = (std::floor(c.y() * 1e3) + 0.5);
      const double r = std::hypot(x, y);
      if (r < shell_radius_mm - 5.0 || r > shell_radius_mm)
        continue;
      const double phi = std::atan2(y, x) * 180.0 / std::numbers::pi;
      std::int32_t label = 2;
      if (r > shell_radius_mm - 1.0)
        label = 1;
      else if (std::abs(phi - muscle_angle_deg) < 30.0)
        label = 3;
      keep.push_back(t);
      labels.push_back(label);
      const double p = std::atan2(y, x), tilt = fibre_tilt_deg * std::numbers::pi / 180.0;
      fibres.push_back(label == 3 ? Eigen::Vector3d(-std::sin(p) * std::sin(tilt),
                                                    std::cos(p) * std::sin(tilt), std::cos(tilt))
                                  : Eigen::Vector3d::Zero());
    }
    // Compact the nodes.
    std::vector<std::int32_t> map(static_cast<std::size_t>(box.n_nodes()), -1);
    meshing::TetMesh m;
    m.tets.resize(static_cast<Eigen::Index>(keep.size()), 4);
    std::vector<Eigen::Vector3d> nodes;
    for (std::size_t i = 0; i < keep.size(); ++i)
      for (int k = 0; k < 4; ++k) {
        auto& id = map[static_cast<std::size_t>(box.tets(keep[i], k))];
        if (id < 0) {
          id = static_cast<std::int32_t>(nodes.size());
          nodes.emplace_back(box.nodes_m.row(box.tets(keep[i], k)).transpose());
        }
        m.tets(static_cast<Eigen::Index>(i), k) = id;
      }
    m.nodes_m.resize(static_cast<Eigen::Index>(nodes.size()), 3);
    for (std::size_t i = 0; i < nodes.size(); ++i)
      m.nodes_m.row(static_cast<Eigen::Index>(i)) = nodes[i].transpose();
    m.labels = labels;
    m.fibre_direction.resize(static_cast<Eigen::Index>(keep.size()), 3);
    for (std::size_t i = 0; i < keep.size(); ++i)
      m.fibre_direction.row(static_cast<Eigen::Index>(i)) = fibres[i].transpose();
    return m;
  }();
  return mesh;
}

/// Largest relative deviation of neighbour distances (rows and columns) from ied in a grid.
double worst_spacing_error(const ElectrodeLayout& layout, std::int64_t rows, std::int64_t columns,
                           double ied_m) {
  double worst = 0.0;
  const auto at = [&](std::int64_t i, std::int64_t j) {
    return layout.electrodes[static_cast<std::size_t>(i * columns + j)].position_m;
  };
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < columns; ++j) {
      if (j + 1 < columns)
        worst = std::max(worst, std::abs((at(i, j + 1) - at(i, j)).norm() / ied_m - 1.0));
      if (i + 1 < rows)
        worst = std::max(worst, std::abs((at(i + 1, j) - at(i, j)).norm() / ied_m - 1.0));
    }
  return worst;
}

} // namespace

TEST(Electrodes, FlatGridOnAStaircaseSkinKeepsItsSpacingAlongTheSkin) {
  const double phi = muscle_angle_deg * std::numbers::pi / 180.0;
  for (const auto& [rows, ied] : std::vector<std::pair<int, double>>{{5, 4.0}, {8, 8.0}}) {
    const std::string text =
        R"({"electrodes": {"limb_axis": [0, 0, 1], "grids": [{"name": "g", "rows": )" +
        std::to_string(rows) + R"(, "columns": )" + std::to_string(rows) + R"(, "ied_mm": )" +
        std::to_string(ied) + R"(, "centre_mm": [)" + std::to_string(40.0 * std::cos(phi)) + ", " +
        std::to_string(40.0 * std::sin(phi)) + ", 30]}]}}";
    const auto layout = place_electrodes(staircase_shell(), shell_tissues(), config_from(text));
    ASSERT_EQ(layout.electrodes.size(), static_cast<std::size_t>(rows * rows));
    EXPECT_TRUE(layout.axis.set_by_config);
    EXPECT_NEAR(layout.axis.axis.z(), 1.0, 1e-12);
    // Within 5 % of ied along the skin (chords on a radius of 40 mm are within 0.5 % of arcs).
    const double worst = worst_spacing_error(layout, rows, rows, ied * 1e-3);
    std::cout << rows << " x " << rows << " grid, " << ied
              << " mm, on a 1 mm staircase of radius 40 mm: worst neighbour distance error "
              << 100.0 * worst << " %\n";
    EXPECT_LT(worst, 0.05) << rows << " x " << ied;
    // Not sheared: rows run along the axis.
    const Eigen::Vector3d along =
        layout.electrodes[static_cast<std::size_t>(rows * (rows - 1))].position_m -
        layout.electrodes[0].position_m;
    EXPECT_LT(std::acos(std::abs(along.normalized().z())) * 180.0 / std::numbers::pi, 2.0);
  }
}

TEST(Electrodes, GridAndNeedlePlacedByMuscleFollowItsFibres) {
  const auto& mesh = staircase_shell();
  const auto layout = place_electrodes(mesh, shell_tissues(), config_from(R"({"electrodes": {
      "limb_axis": [0, 0, 1],
      "grids": [{"name": "vl", "rows": 4, "columns": 3, "ied_mm": 5,
                 "muscle": "vastus_lateralis_left"},
                {"name": "moved", "rows": 1, "columns": 1, "muscle": "3",
                 "offset_mm": [8, 0]}],
      "needles": [{"name": "n", "muscle": "left vastus lateralis", "depth_mm": 2.5}]}})"));
  ASSERT_EQ(layout.electrodes.size(), 14U);
  ASSERT_EQ(layout.placements.size(), 3U);
  const auto& p = layout.placements[0];
  EXPECT_EQ(p.tissue, "Left Vastus Lateralis");
  // Centred over the muscle's sector, rows along the fibres (20 deg from the axis).
  const Eigen::Vector3d c = p.centre_m;
  EXPECT_NEAR(std::atan2(c.y(), c.x()) * 180.0 / std::numbers::pi, muscle_angle_deg, 2.0);
  EXPECT_NEAR(std::abs(p.rotation_deg), fibre_tilt_deg, 2.0);
  const Eigen::Vector3d rows =
      (layout.electrodes[9].position_m - layout.electrodes[0].position_m).normalized();
  const double ph = std::atan2(c.y(), c.x()), tilt = fibre_tilt_deg * std::numbers::pi / 180.0;
  const Eigen::Vector3d fibre(-std::sin(ph) * std::sin(tilt), std::cos(ph) * std::sin(tilt),
                              std::cos(tilt));
  // Against the fibres at the centre (the mean over the +-30 deg sector is ~1 deg less tilted,
  // and the pads sit on a 1 mm staircase) and against the mean fibre direction used.
  EXPECT_LT(std::acos(std::min(1.0, std::abs(rows.dot(fibre)))) * 180.0 / std::numbers::pi, 5.0);
  const Eigen::Vector3d mean_fibre = p.fibre_direction;
  const Eigen::Vector3d normal = Eigen::Vector3d(c.x(), c.y(), 0.0).normalized();
  const Eigen::Vector3d in_plane = (mean_fibre - mean_fibre.dot(normal) * normal).normalized();
  // (the rows' chord leaves the tangent plane as the skin curves: compare in that plane)
  const Eigen::Vector3d rows_in_plane = (rows - rows.dot(normal) * normal).normalized();
  EXPECT_LT(std::acos(std::min(1.0, std::abs(rows_in_plane.dot(in_plane)))) * 180.0 /
                std::numbers::pi,
            2.0);
  EXPECT_LT(worst_spacing_error(layout, 4, 3, 5e-3), 0.05);
  // The offset grid: 8 mm across the rows, along the skin.
  EXPECT_NEAR((layout.placements[1].centre_m - c).norm(), 8e-3, 0.05 * 8e-3);
  // The needle: 2.5 mm under the skin, in the muscle.
  const auto& n = layout.electrodes[13];
  EXPECT_EQ(n.kind, ElectrodeKind::point);
  EXPECT_NEAR(shell_radius_mm * 1e-3 - radial_m(n.position_m), 2.5e-3, 0.6e-3);
  const auto json = placements_json(layout);
  EXPECT_EQ(json[0]["muscle"], "vastus_lateralis_left");
  EXPECT_EQ(json[0]["centre_mm"].size(), 3U);
}

TEST(Electrodes, MusclePlacementRefusesAnAbsentMuscleAGridThatDoesNotFitAndABadDepth) {
  const auto& mesh = staircase_shell();
  expect_error<BadInput>(
      [&] {
        place_electrodes(mesh, shell_tissues(), config_from(R"({"electrodes": {
          "limb_axis": [0, 0, 1], "grids": [{"name": "g", "muscle": "rectus femoris"}]}})"));
      },
      {"electrodes.grids[0].muscle = \"rectus femoris\"", "expected one of Left Vastus Lateralis"});
  // 9 rows of 8 mm (64 mm) along a 60 mm long mesh.
  expect_error<BadInput>(
      [&] {
        place_electrodes(mesh, shell_tissues(), config_from(R"({"electrodes": {
          "limb_axis": [0, 0, 1],
          "grids": [{"name": "big", "rows": 9, "columns": 4, "muscle": "left vastus lateralis"}]}})"));
      },
      {"'big' (9 x 4, 8 mm) does not fit on the skin over muscle 'Left Vastus Lateralis'",
       "of 36 electrodes fit (", "whole rows, 0 whole columns", "falls off the mesh end"});
  expect_error<BadInput>(
      [&] {
        place_electrodes(mesh, shell_tissues(), config_from(R"({"electrodes": {
          "limb_axis": [0, 0, 1],
          "needles": [{"name": "deep", "muscle": "left vastus lateralis", "depth_mm": 30}]}})"));
      },
      {"'deep'", "depth_mm = 30", "expected a depth from 1"});
  expect_error<BadInput>(
      [] { config_from(R"({"electrodes": {"grids": [{"muscle": "m", "wrap": true}]}})"); },
      {"wrap", "flat"});
  expect_error<BadInput>(
      [] {
        config_from(R"({"electrodes": {"grids": [{"muscle": "m", "centre_mm": [0, 0, 0]}]}})");
      },
      {"muscle", "not both"});
}

TEST(Electrodes, FibrePointsJustOutsideTheMeshAreTakenAtTheNearestMuscleTet) {
  // A 10 mm muscle cube (2 mm tets) and a nodal field f = x: a point 0.3 mm beyond the face
  // x = 10 mm is taken at the nearest muscle tet, its weights clamped: f = 10 mm there, not a stop.
  const auto mesh = meshing::structured_box_mesh(Eigen::Vector3d::Zero(),
                                                 Eigen::Vector3d::Constant(10e-3), {5, 5, 5}, 3);
  const PointLocator locator(mesh);
  const Eigen::MatrixXd field = mesh.nodes_m.col(0);
  Eigen::MatrixX3d points(2, 3);
  points << 5e-3, 5e-3, 5e-3, 10.3e-3, 5e-3, 5e-3;
  expect_error<BadInput>([&] { (void)sample(locator.locate(points), field); },
                         {"outside the mesh"});
  const auto transfer = nearest_muscle_transfer_function(mesh, cylinder_tissues(), locator, field);
  const Eigen::MatrixXd v = transfer(points, Eigen::MatrixX3d::Zero(2, 3));
  EXPECT_NEAR(v(0, 0), 5e-3, 1e-12);
  EXPECT_NEAR(v(1, 0), 10e-3, 1e-9);
  // Points all around, up to 15 mm outside: the nearest muscle tet is the one a scan over every
  // tet's centroid gives (lowest index on ties), however the search finds it.
  Rng rng(5);
  Eigen::MatrixX3d far(400, 3);
  for (Eigen::Index k = 0; k < far.rows(); ++k)
    for (int a = 0; a < 3; ++a)
      far(k, a) = -15e-3 + 40e-3 * rng.uniform();
  far.row(0) << 5e-3, 5e-3, 25e-3; // equidistant from several centroids: ties
  const Eigen::MatrixXd got = transfer(far, Eigen::MatrixX3d::Zero(far.rows(), 3));
  const auto located = locator.locate(far);
  for (Eigen::Index k = 0; k < far.rows(); ++k) {
    if (located.tet[static_cast<std::size_t>(k)] >= 0)
      continue;
    std::int64_t best = -1;
    double best_d2 = 1e300;
    for (std::int64_t t = 0; t < mesh.n_tets(); ++t) {
      Eigen::Vector3d c = Eigen::Vector3d::Zero();
      for (int i = 0; i < 4; ++i)
        c += 0.25 * mesh.nodes_m.row(mesh.tets(t, i)).transpose();
      const double d2 = (c - far.row(k).transpose()).squaredNorm();
      if (d2 < best_d2) {
        best_d2 = d2;
        best = t;
      }
    }
    Eigen::Vector4d w = locator.barycentric(best, far.row(k).transpose()).cwiseMax(0.0);
    w /= w.sum();
    double expected = 0.0;
    for (int i = 0; i < 4; ++i)
      expected += w[i] * field(mesh.tets(best, i), 0);
    EXPECT_NEAR(got(k, 0), expected, 1e-15) << "point " << k;
  }
}
