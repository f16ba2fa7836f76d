// The procedural forearm: determinism, its grid, its muscles and tendons, and tissue volumes
// against the analytic geometry (ellipse areas, bands below the surface) integrated over the
// length.

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <numeric>
#include <set>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <omp.h>

#include "myotwin/anatomy/phantom.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "test_support.hpp"

namespace {

using namespace myotwin::anatomy;
using myotwin::BadInput;
using myotwin::ConfigReader;
using myotwin::testing::expect_error;

/// The issue asks for tissue volumes within 10 % of the analytic ones; the voxelisation of these
/// smooth shapes on a 0.5 mm grid does much better, so a tighter bound is checked as well.
constexpr double issue_tolerance = 0.10;
constexpr double voxel_tolerance = 0.01;

const Phantom& default_phantom() {
  static const Phantom phantom = generate_forearm_phantom(PhantomParams{});
  return phantom;
}

const ForearmPhantomGeometry& default_geometry() {
  static const ForearmPhantomGeometry geometry{PhantomParams{}};
  return geometry;
}

/// Distance from the elbow of the centre of slice k [m].
double slice_s(const LabelVolume& volume, const PhantomParams& params, std::int64_t k) {
  return 0.5 * params.length_m - volume.physical_point(0, 0, static_cast<double>(k)).z();
}

/// Indices of the slices that belong to the limb.
std::vector<std::int64_t> limb_slices(const LabelVolume& volume, const PhantomParams& params) {
  std::vector<std::int64_t> slices;
  for (std::int64_t k = 0; k < volume.size[2]; ++k) {
    const double s = slice_s(volume, params, k);
    if (s >= 0.0 && s <= params.length_m)
      slices.push_back(k);
  }
  return slices;
}

std::map<std::int32_t, std::int64_t> count_labels(const LabelVolume& volume) {
  std::map<std::int32_t, std::int64_t> counts;
  for (const auto label : volume.labels)
    ++counts[label];
  return counts;
}

double relative_error(double measured, double expected) {
  return std::abs(measured / expected - 1.0);
}

/// Area [m^2] of the band between depths t_in(angle) and t_out(angle) below the surface of the
/// ellipse with semi-axes a, b, depth measured along rays from the centre: the integral over the
/// angle of (R t_out - t_out^2 / 2) - (R t_in - t_in^2 / 2), R the ray's length to the surface.
template <class Inner, class Outer> double band_area(double a, double b, Inner t_in, Outer t_out) {
  constexpr int n = 4096;
  const double step = 2.0 * std::numbers::pi / n;
  double area = 0.0;
  for (int i = 0; i < n; ++i) {
    const double angle = (i + 0.5) * step;
    const double c = std::cos(angle);
    const double s = std::sin(angle);
    const double r = 1.0 / std::sqrt(c * c / (a * a) + s * s / (b * b));
    const double to = t_out(angle);
    const double ti = t_in(angle);
    area += ((r * to - 0.5 * to * to) - (r * ti - 0.5 * ti * ti)) * step;
  }
  return area;
}

/// Number of 6-connected components of each label but the background.
std::map<std::int32_t, int> count_components(const LabelVolume& volume) {
  const auto [nx, ny, nz] = volume.size;
  std::vector<char> seen(volume.labels.size(), 0);
  std::map<std::int32_t, int> components;
  std::vector<std::int64_t> stack;
  for (std::int64_t start = 0; start < volume.n_voxels(); ++start) {
    const std::int32_t label = volume.labels[start];
    if (seen[start] || label == 0)
      continue;
    ++components[label];
    stack.assign(1, start);
    seen[start] = 1;
    while (!stack.empty()) {
      const std::int64_t v = stack.back();
      stack.pop_back();
      const std::int64_t i = v % nx;
      const std::int64_t j = (v / nx) % ny;
      const std::int64_t k = v / (nx * ny);
      const std::int64_t neighbours[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k},
                                             {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
      for (const auto& n : neighbours) {
        if (n[0] < 0 || n[1] < 0 || n[2] < 0 || n[0] >= nx || n[1] >= ny || n[2] >= nz)
          continue;
        const std::int64_t w = volume.index(n[0], n[1], n[2]);
        if (volume.labels[w] == label && !seen[w]) {
          seen[w] = 1;
          stack.push_back(w);
        }
      }
    }
  }
  return components;
}

/// True if a voxel with label `a` has a face neighbour with label `b`.
bool labels_touch(const LabelVolume& volume, std::int32_t a, std::int32_t b) {
  const auto [nx, ny, nz] = volume.size;
  for (std::int64_t k = 1; k + 1 < nz; ++k) {
    for (std::int64_t j = 1; j + 1 < ny; ++j) {
      for (std::int64_t i = 1; i + 1 < nx; ++i) {
        if (volume.at(i, j, k) != a)
          continue;
        if (volume.at(i - 1, j, k) == b || volume.at(i + 1, j, k) == b ||
            volume.at(i, j - 1, k) == b || volume.at(i, j + 1, k) == b ||
            volume.at(i, j, k - 1) == b || volume.at(i, j, k + 1) == b)
          return true;
      }
    }
  }
  return false;
}

/// Mean physical z of the voxels of each label [m].
std::map<std::int32_t, double> mean_z(const LabelVolume& volume) {
  const std::int32_t max_label = *std::max_element(volume.labels.begin(), volume.labels.end());
  std::vector<double> sum(static_cast<std::size_t>(max_label) + 1, 0.0);
  std::vector<std::int64_t> n(sum.size(), 0);
  for (std::int64_t k = 0; k < volume.size[2]; ++k) {
    const double z = volume.physical_point(0, 0, static_cast<double>(k)).z();
    for (std::int64_t j = 0; j < volume.size[1]; ++j) {
      for (std::int64_t i = 0; i < volume.size[0]; ++i) {
        const auto label = static_cast<std::size_t>(volume.at(i, j, k));
        sum[label] += z;
        ++n[label];
      }
    }
  }
  std::map<std::int32_t, double> means;
  for (std::size_t label = 0; label < sum.size(); ++label) {
    if (n[label] > 0)
      means[static_cast<std::int32_t>(label)] = sum[label] / static_cast<double>(n[label]);
  }
  return means;
}

/// Reads the `phantom` section of `config` as the application does.
PhantomParams read_params(const nlohmann::json& config, std::uint64_t seed = 1993) {
  ConfigReader reader(config, "run.json");
  auto section = reader.section("phantom");
  const PhantomParams params = read_phantom_params(section, seed);
  reader.finish();
  return params;
}

} // namespace

TEST(Phantom, IsIdenticalForTheSameSeed) {
  const Phantom again = generate_forearm_phantom(PhantomParams{});
  const Phantom& first = default_phantom();
  EXPECT_EQ(again.volume.size, first.volume.size);
  EXPECT_EQ(again.volume.spacing_m, first.volume.spacing_m);
  EXPECT_EQ(again.volume.origin_m, first.volume.origin_m);
  EXPECT_TRUE(again.volume.labels == first.volume.labels);
  EXPECT_EQ(to_json(again.tissues), to_json(first.tissues));
}

TEST(Phantom, IsIdenticalForAnyNumberOfThreads) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Phantom serial = generate_forearm_phantom(PhantomParams{});
  omp_set_num_threads(std::max(threads, 3));
  const Phantom parallel = generate_forearm_phantom(PhantomParams{});
  omp_set_num_threads(threads);
  EXPECT_TRUE(serial.volume.labels == default_phantom().volume.labels);
  EXPECT_TRUE(parallel.volume.labels == default_phantom().volume.labels);
}

TEST(Phantom, DiffersSlightlyForAnotherSeed) {
  PhantomParams params;
  params.seed = 7;
  const Phantom other = generate_forearm_phantom(params);
  const auto& labels = default_phantom().volume.labels;
  ASSERT_EQ(other.volume.labels.size(), labels.size());
  std::int64_t n_different = 0;
  std::int64_t n_limb = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    n_different += other.volume.labels[i] != labels[i] ? 1 : 0;
    n_limb += labels[i] != 0 ? 1 : 0;
  }
  EXPECT_GT(n_different, 0);
  // The jitter is slight: the outline is the same and most voxels keep their tissue.
  EXPECT_LT(static_cast<double>(n_different), 0.25 * static_cast<double>(n_limb));
  EXPECT_EQ(to_json(other.tissues), to_json(default_phantom().tissues));
}

TEST(Phantom, HasAnAnisotropicGridCentredOnTheLimb) {
  const PhantomParams params;
  const LabelVolume& volume = default_phantom().volume;
  // 0.5 mm across the limb (the 1.2 mm skin is 2-3 voxels thick), 1 mm along it.
  EXPECT_DOUBLE_EQ(volume.spacing_m.x(), 0.0005);
  EXPECT_DOUBLE_EQ(volume.spacing_m.y(), 0.0005);
  EXPECT_DOUBLE_EQ(volume.spacing_m.z(), 0.001);
  EXPECT_TRUE(volume.direction.isIdentity());
  // 80 x 70 mm at the elbow plus 4 mm of margin each side; 240 mm plus the margins.
  EXPECT_EQ(volume.size, (std::array<std::int64_t, 3>{176, 156, 248}));
  const Eigen::Vector3d centre = volume.physical_point(
      0.5 * static_cast<double>(volume.size[0] - 1), 0.5 * static_cast<double>(volume.size[1] - 1),
      0.5 * static_cast<double>(volume.size[2] - 1));
  EXPECT_LT(centre.norm(), 1e-12);
  const auto slices = limb_slices(volume, params);
  EXPECT_EQ(slices.size(), 240u);
  // Outside the limb's slices only background; the limb's slices touch no image border.
  const auto counts = count_labels(volume);
  std::int64_t n_limb_slices_voxels = 0;
  for (const auto k : slices) {
    for (std::int64_t j = 0; j < volume.size[1]; ++j) {
      for (std::int64_t i = 0; i < volume.size[0]; ++i) {
        const bool border = i == 0 || j == 0 || i + 1 == volume.size[0] || j + 1 == volume.size[1];
        if (border) {
          EXPECT_EQ(volume.at(i, j, k), 0);
        }
        n_limb_slices_voxels += volume.at(i, j, k) != 0 ? 1 : 0;
      }
    }
  }
  EXPECT_EQ(n_limb_slices_voxels, volume.n_voxels() - counts.at(0));
}

TEST(Phantom, EveryLabelIsInItsTissueTable) {
  const Phantom& phantom = default_phantom();
  EXPECT_NO_THROW(check_labels_in_table(phantom.volume, phantom.tissues, "phantom"));
  std::set<std::int32_t> labels;
  std::set<std::string> names;
  for (const auto& t : phantom.tissues.tissues) {
    EXPECT_TRUE(labels.insert(t.label).second) << t.label;
    EXPECT_TRUE(names.insert(t.name).second) << t.name;
    EXPECT_GT(t.sigma_l_S_per_m, 0.0);
    EXPECT_GT(t.sigma_t_S_per_m, 0.0);
  }
  EXPECT_EQ(phantom.tissues.find(phantom_label::skin)->tissue_class, TissueClass::skin);
  EXPECT_EQ(phantom.tissues.find(phantom_label::subcutaneous_fat)->tissue_class, TissueClass::fat);
  EXPECT_EQ(phantom.tissues.find("radius")->tissue_class, TissueClass::bone);
  EXPECT_EQ(phantom.tissues.find("ulna")->tissue_class, TissueClass::bone);
  // Every label of the table is present in the volume.
  const auto counts = count_labels(phantom.volume);
  for (const auto& t : phantom.tissues.tissues) {
    EXPECT_GT(counts.count(t.label), 0u) << t.name;
  }
}

TEST(Phantom, HasAtLeastEightNamedMusclesWithTendonsAtBothEnds) {
  const Phantom& phantom = default_phantom();
  const LabelVolume& volume = phantom.volume;
  const auto counts = count_labels(volume);
  const auto z = mean_z(volume);
  ASSERT_GE(phantom.muscles.size(), 8u);
  for (const char* name : {"FCR", "FCU", "PL", "FDS", "FDP", "BR", "ECRL", "ECU", "ED"}) {
    const Tissue* muscle = phantom.tissues.find(std::string(name));
    ASSERT_NE(muscle, nullptr) << name;
    EXPECT_EQ(muscle->tissue_class, TissueClass::muscle);
    EXPECT_DOUBLE_EQ(muscle->sigma_l_S_per_m, 0.5);
    EXPECT_DOUBLE_EQ(muscle->sigma_t_S_per_m, 0.1);
  }
  for (const auto& m : phantom.muscles) {
    SCOPED_TRACE(m.name);
    const Tissue* proximal = phantom.tissues.find(m.proximal_tendon_label);
    const Tissue* distal = phantom.tissues.find(m.distal_tendon_label);
    ASSERT_NE(proximal, nullptr);
    ASSERT_NE(distal, nullptr);
    EXPECT_EQ(proximal->name, m.name + "_tendon_proximal");
    EXPECT_EQ(distal->name, m.name + "_tendon_distal");
    EXPECT_EQ(proximal->tissue_class, TissueClass::tendon);
    EXPECT_EQ(proximal->muscle, m.name);
    EXPECT_EQ(distal->muscle, m.name);
    EXPECT_GT(counts.count(m.label), 0u);
    EXPECT_GT(counts.count(m.proximal_tendon_label), 0u);
    EXPECT_GT(counts.count(m.distal_tendon_label), 0u);
    // Proximal tendon nearer the elbow (+z) than the belly, the belly nearer than the distal
    // tendon; both tendons touch the muscle.
    EXPECT_GT(z.at(m.proximal_tendon_label), z.at(m.label));
    EXPECT_GT(z.at(m.label), z.at(m.distal_tendon_label));
    EXPECT_TRUE(labels_touch(volume, m.proximal_tendon_label, m.label));
    EXPECT_TRUE(labels_touch(volume, m.distal_tendon_label, m.label));
    EXPECT_LT(m.proximal_tendon_start_m, m.belly_start_m);
    EXPECT_LT(m.belly_start_m, m.belly_end_m);
    EXPECT_LT(m.belly_end_m, m.distal_tendon_end_m);
  }
}

TEST(Phantom, MusclesAndTendonsAreSinglePiecesOfPlausibleVolume) {
  const LabelVolume& volume = default_phantom().volume;
  const auto counts = count_labels(volume);
  const auto components = count_components(volume);
  // Skin and subcutaneous fat are closed tubes; the bones are continuous.
  for (const auto label : {phantom_label::skin, phantom_label::subcutaneous_fat,
                           phantom_label::radius, phantom_label::ulna}) {
    EXPECT_EQ(components.at(label), 1) << "label " << label;
  }
  for (const auto& m : default_phantom().muscles) {
    SCOPED_TRACE(m.name);
    EXPECT_EQ(components.at(m.label), 1);
    EXPECT_EQ(components.at(m.proximal_tendon_label), 1);
    EXPECT_EQ(components.at(m.distal_tendon_label), 1);
    // Forearm muscles of a smallish arm: a few to some tens of cm^3.
    const double volume_cm3 =
        static_cast<double>(counts.at(m.label)) * volume.voxel_volume_m3() * 1e6;
    EXPECT_GT(volume_cm3, 2.0);
    EXPECT_LT(volume_cm3, 80.0);
  }
}

TEST(Phantom, MuscleCrossSectionsSwellBetweenTheirTendons) {
  const PhantomParams params;
  const LabelVolume& volume = default_phantom().volume;
  for (const auto& m : default_phantom().muscles) {
    SCOPED_TRACE(m.name);
    std::vector<double> s;
    std::vector<std::int64_t> area;
    for (const auto k : limb_slices(volume, params)) {
      std::int64_t n = 0;
      for (std::int64_t j = 0; j < volume.size[1]; ++j) {
        for (std::int64_t i = 0; i < volume.size[0]; ++i)
          n += volume.at(i, j, k) == m.label ? 1 : 0;
      }
      if (n > 0) {
        s.push_back(slice_s(volume, params, k));
        area.push_back(n);
      }
    }
    ASSERT_FALSE(area.empty());
    const auto largest = std::max_element(area.begin(), area.end());
    const double s_largest = s[static_cast<std::size_t>(largest - area.begin())];
    const double belly = m.belly_end_m - m.belly_start_m;
    // Largest well inside the belly, and at least three times the section at either end.
    EXPECT_GT(s_largest, m.belly_start_m + 0.1 * belly);
    EXPECT_LT(s_largest, m.belly_end_m - 0.1 * belly);
    EXPECT_GE(*largest, 3 * area.front());
    EXPECT_GE(*largest, 3 * area.back());
  }
}

TEST(Phantom, LimbVolumeMatchesTheTaperedEllipse) {
  const PhantomParams p;
  const LabelVolume& volume = default_phantom().volume;
  const auto counts = count_labels(volume);
  const double measured =
      static_cast<double>(volume.n_voxels() - counts.at(0)) * volume.voxel_volume_m3();
  // Integral of pi a(s) b(s) ds for linear a and b, in closed form.
  const double ae = 0.5 * p.elbow_width_m;
  const double be = 0.5 * p.elbow_depth_m;
  const double aw = 0.5 * p.wrist_width_m;
  const double bw = 0.5 * p.wrist_depth_m;
  const double expected =
      std::numbers::pi * p.length_m * (ae * be + 0.5 * (ae * bw + aw * be) + aw * bw) / 3.0;
  EXPECT_NEAR(measured / expected, 1.0, issue_tolerance);
  EXPECT_NEAR(measured / expected, 1.0, voxel_tolerance);
  // The taper the header exposes is the same.
  const auto [a0, b0] = phantom_outer_semi_axes(p, 0.0);
  const auto [a1, b1] = phantom_outer_semi_axes(p, p.length_m);
  EXPECT_DOUBLE_EQ(a0, ae);
  EXPECT_DOUBLE_EQ(b0, be);
  EXPECT_DOUBLE_EQ(a1, aw);
  EXPECT_DOUBLE_EQ(b1, bw);
}

TEST(Phantom, SkinAndFatVolumesMatchTheirAnalyticBands) {
  const PhantomParams p;
  const ForearmPhantomGeometry& geometry = default_geometry();
  const LabelVolume& volume = default_phantom().volume;
  double skin_expected = 0.0;
  double fat_expected = 0.0;
  for (const auto k : limb_slices(volume, p)) {
    const double s = slice_s(volume, p, k);
    const auto [a, b] = phantom_outer_semi_axes(p, s);
    const auto skin = [&](double) { return p.skin_thickness_m; };
    const auto none = [](double) { return 0.0; };
    const auto below_fat = [&](double angle) {
      return p.skin_thickness_m + geometry.fat_thickness_m(s, angle);
    };
    skin_expected += band_area(a, b, none, skin) * volume.spacing_m.z();
    fat_expected += band_area(a, b, skin, below_fat) * volume.spacing_m.z();
  }
  const auto counts = count_labels(volume);
  const double skin_measured =
      static_cast<double>(counts.at(phantom_label::skin)) * volume.voxel_volume_m3();
  const double fat_measured =
      static_cast<double>(counts.at(phantom_label::subcutaneous_fat)) * volume.voxel_volume_m3();
  EXPECT_LT(relative_error(skin_measured, skin_expected), issue_tolerance);
  EXPECT_LT(relative_error(fat_measured, fat_expected), issue_tolerance);
  EXPECT_LT(relative_error(skin_measured, skin_expected), voxel_tolerance);
  EXPECT_LT(relative_error(fat_measured, fat_expected), voxel_tolerance);
}

TEST(Phantom, FatIsThickerOnTheFlexorSide) {
  const PhantomParams p;
  const ForearmPhantomGeometry& geometry = default_geometry();
  const LabelVolume& volume = default_phantom().volume;
  // Along the y axis through the middle slice: fat voxels on the anterior (-y) and posterior
  // (+y) sides. The grid has an even number of columns, so take the one just left of x = 0.
  const std::int64_t k = volume.size[2] / 2;
  const std::int64_t i = volume.size[0] / 2 - 1;
  std::int64_t anterior = 0;
  std::int64_t posterior = 0;
  for (std::int64_t j = 0; j < volume.size[1]; ++j) {
    if (volume.at(i, j, k) == phantom_label::subcutaneous_fat)
      (j < volume.size[1] / 2 ? anterior : posterior) += 1;
  }
  const double s = slice_s(volume, p, k);
  const double dy = volume.spacing_m.y();
  const double anterior_m = geometry.fat_thickness_m(s, -0.5 * std::numbers::pi);
  const double posterior_m = geometry.fat_thickness_m(s, 0.5 * std::numbers::pi);
  EXPECT_NEAR(static_cast<double>(anterior) * dy, anterior_m, 1.01 * dy);
  EXPECT_NEAR(static_cast<double>(posterior) * dy, posterior_m, 1.01 * dy);
  EXPECT_GT(anterior, 2 * posterior);
  // The thicknesses are the parameters within the variability.
  EXPECT_NEAR(anterior_m, p.fat_flexor_m, p.variability * p.fat_flexor_m);
  EXPECT_NEAR(posterior_m, p.fat_extensor_m, p.variability * p.fat_extensor_m);
}

TEST(Phantom, BoneVolumesMatchTheirEllipses) {
  const PhantomParams p;
  const ForearmPhantomGeometry& geometry = default_geometry();
  const LabelVolume& volume = default_phantom().volume;
  double radius_expected = 0.0;
  double ulna_expected = 0.0;
  for (const auto k : limb_slices(volume, p)) {
    const double s = slice_s(volume, p, k);
    radius_expected += geometry.radius_section(s).area_m2() * volume.spacing_m.z();
    ulna_expected += geometry.ulna_section(s).area_m2() * volume.spacing_m.z();
  }
  const auto counts = count_labels(volume);
  const double radius_measured =
      static_cast<double>(counts.at(phantom_label::radius)) * volume.voxel_volume_m3();
  const double ulna_measured =
      static_cast<double>(counts.at(phantom_label::ulna)) * volume.voxel_volume_m3();
  EXPECT_LT(relative_error(radius_measured, radius_expected), issue_tolerance);
  EXPECT_LT(relative_error(ulna_measured, ulna_expected), issue_tolerance);
  EXPECT_LT(relative_error(radius_measured, radius_expected), voxel_tolerance);
  EXPECT_LT(relative_error(ulna_measured, ulna_expected), voxel_tolerance);
  // The radius is lateral (-x) and widens towards the wrist; the ulna is medial and widens
  // towards the elbow.
  const auto radius_elbow = geometry.radius_section(0.0);
  const auto radius_wrist = geometry.radius_section(p.length_m);
  const auto ulna_elbow = geometry.ulna_section(0.0);
  const auto ulna_wrist = geometry.ulna_section(p.length_m);
  EXPECT_LT(radius_elbow.centre_x_m, 0.0);
  EXPECT_LT(radius_wrist.centre_x_m, 0.0);
  EXPECT_GT(ulna_elbow.centre_x_m, 0.0);
  EXPECT_GT(ulna_wrist.centre_x_m, 0.0);
  EXPECT_GT(radius_wrist.area_m2(), 1.5 * radius_elbow.area_m2());
  EXPECT_GT(ulna_elbow.area_m2(), 1.2 * ulna_wrist.area_m2());
}

TEST(Phantom, SkinIsAClosedLayerInEverySlice) {
  const PhantomParams p;
  const LabelVolume& volume = default_phantom().volume;
  const std::int64_t nx = volume.size[0];
  const std::int64_t ny = volume.size[1];
  for (const auto k : limb_slices(volume, p)) {
    // Background reachable from the border through 4-connected background voxels.
    std::vector<char> outside(static_cast<std::size_t>(nx * ny), 0);
    std::vector<std::int64_t> stack;
    for (std::int64_t j = 0; j < ny; ++j) {
      for (std::int64_t i = 0; i < nx; ++i) {
        if ((i == 0 || j == 0 || i == nx - 1 || j == ny - 1) && volume.at(i, j, k) == 0) {
          outside[i + nx * j] = 1;
          stack.push_back(i + nx * j);
        }
      }
    }
    bool leak = false;
    while (!stack.empty()) {
      const std::int64_t v = stack.back();
      stack.pop_back();
      const std::int64_t i = v % nx;
      const std::int64_t j = v / nx;
      const std::int64_t neighbours[4][2] = {{i - 1, j}, {i + 1, j}, {i, j - 1}, {i, j + 1}};
      for (const auto& n : neighbours) {
        if (n[0] < 0 || n[1] < 0 || n[0] >= nx || n[1] >= ny)
          continue;
        const std::int32_t label = volume.at(n[0], n[1], k);
        if (label == 0 && !outside[n[0] + nx * n[1]]) {
          outside[n[0] + nx * n[1]] = 1;
          stack.push_back(n[0] + nx * n[1]);
        } else if (label != 0 && label != phantom_label::skin) {
          leak = true; // background touches something other than skin
        }
      }
    }
    EXPECT_FALSE(leak) << "slice " << k;
    // No background inside the limb.
    std::int64_t holes = 0;
    for (std::int64_t j = 0; j < ny; ++j) {
      for (std::int64_t i = 0; i < nx; ++i)
        holes += volume.at(i, j, k) == 0 && !outside[i + nx * j] ? 1 : 0;
    }
    EXPECT_EQ(holes, 0) << "slice " << k;
  }
}

TEST(Phantom, VoxelsHaveTheLabelOfTheGeometryAtTheirCentre) {
  const PhantomParams p;
  const ForearmPhantomGeometry& geometry = default_geometry();
  const LabelVolume& volume = default_phantom().volume;
  std::int64_t n_checked = 0;
  std::int64_t n_specks = 0;
  for (std::int64_t k = 0; k < volume.size[2]; k += 5) {
    for (std::int64_t j = 0; j < volume.size[1]; j += 3) {
      for (std::int64_t i = 0; i < volume.size[0]; i += 3) {
        const Eigen::Vector3d x = volume.physical_point(
            static_cast<double>(i), static_cast<double>(j), static_cast<double>(k));
        const double s = 0.5 * p.length_m - x.z();
        const std::int32_t expected = geometry.label_at(x.x(), x.y(), s);
        const std::int32_t found = volume.at(i, j, k);
        ++n_checked;
        if (found == expected)
          continue;
        // Only detached specks of muscle or tendon were relabelled, within the muscles.
        ++n_specks;
        EXPECT_GE(expected, phantom_label::first_muscle) << i << " " << j << " " << k;
        EXPECT_GE(found, phantom_label::intermuscular_fat) << i << " " << j << " " << k;
      }
    }
  }
  EXPECT_GT(n_checked, 100000);
  EXPECT_LT(static_cast<double>(n_specks), 1e-4 * static_cast<double>(n_checked));
}

TEST(Phantom, RejectsParametersThatDoNotFit) {
  PhantomParams p;
  p.fat_extensor_m = 0.015;
  expect_error<BadInput>([&] { generate_forearm_phantom(p); },
                         {"phantom.fat_extensor_mm", "15", "semi-axis"});
  p = PhantomParams{};
  p.voxel_inplane_m = 0.001;
  expect_error<BadInput>([&] { generate_forearm_phantom(p); },
                         {"phantom.voxel_inplane_mm", "skin", "closed"});
}

TEST(PhantomParams, AreReadInMillimetresWithDefaults) {
  const nlohmann::json config = {{"phantom", {{"length_mm", 200}, {"fat_flexor_mm", 5.5}}}};
  ConfigReader reader(config, "run.json");
  auto section = reader.section("phantom");
  const PhantomParams p = read_phantom_params(section, 42);
  EXPECT_NO_THROW(reader.finish());
  const PhantomParams d;
  EXPECT_DOUBLE_EQ(p.length_m, 0.2);
  EXPECT_DOUBLE_EQ(p.fat_flexor_m, 0.0055);
  EXPECT_DOUBLE_EQ(p.elbow_width_m, d.elbow_width_m);
  EXPECT_DOUBLE_EQ(p.voxel_inplane_m, d.voxel_inplane_m);
  EXPECT_DOUBLE_EQ(p.variability, d.variability);
  EXPECT_EQ(p.seed, 42u);
  // The resolved configuration lists every key with its default, in mm as typed.
  const auto resolved = reader.resolved()["phantom"];
  EXPECT_EQ(resolved["skin_thickness_mm"].get<double>(), 1.2);
  EXPECT_EQ(resolved["voxel_inplane_mm"].get<double>(), 0.5);
  EXPECT_EQ(resolved["fat_extensor_mm"].get<double>(), 2.0);
  EXPECT_EQ(resolved["length_mm"].get<double>(), 200.0);
  EXPECT_EQ(resolved.size(), 12u);
}

TEST(PhantomParams, RejectOutOfRangeValuesNamingTheKey) {
  expect_error<BadInput>(
      [] {
        read_params({{"phantom", {{"skin_thickness_mm", -1}}}});
      },
      {"run.json", "phantom.skin_thickness_mm", "-1"});
  expect_error<BadInput>(
      [] {
        read_params({{"phantom", {{"length_mm", "long"}}}});
      },
      {"phantom.length_mm", "number"});
  expect_error<BadInput>(
      [] {
        read_params({{"phantom", {{"variability", 2}}}});
      },
      {"phantom.variability", "2"});
}

TEST(PhantomParams, RejectFatThatLeavesNoRoomInsideTheLimb) {
  expect_error<BadInput>(
      [] {
        read_params({{"phantom", {{"fat_flexor_mm", 12}}}});
      },
      {"run.json", "phantom.fat_flexor_mm = 12", "semi-axis"});
  // Thinner fat fits in a thinner wrist, but not between the skin and the bones.
  expect_error<BadInput>(
      [] {
        read_params({{"phantom", {{"fat_flexor_mm", 8}, {"fat_extensor_mm", 8}}}});
      },
      {"phantom.fat_flexor_mm", "radius and ulna"});
}

TEST(PhantomParams, RejectVoxelsTooCoarseForTheSkin) {
  expect_error<BadInput>(
      [] {
        read_params({{"phantom", {{"voxel_inplane_mm", 1.0}}}});
      },
      {"phantom.voxel_inplane_mm = 1", "skin_thickness_mm / 1.5"});
}
