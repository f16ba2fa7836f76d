// Motor-unit pool: sizes, territories, intermingling, thresholds, CV and diameter, determinism
// and bad input, on a disc and an ellipse of about 20000 model fibres spread like Poisson-disk
// seeds (a jittered grid) over a 3 cm^2 cross-section, 350 real fibres per mm^2.

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include <Eigen/LU>
#include <gtest/gtest.h>

#include "myotwin/anatomy/motor_units.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/random.hpp"
#include "test_support.hpp"

using myotwin::BadInput;
using myotwin::ConfigReader;
using myotwin::Rng;
using myotwin::anatomy::build_motor_unit_pool;
using myotwin::anatomy::MotorUnitParams;
using myotwin::anatomy::MotorUnitPool;
using myotwin::anatomy::read_motor_unit_params;
using myotwin::testing::expect_error;

namespace {

constexpr double area_m2 = 3e-4;              // 3 cm^2
constexpr double real_density_per_m2 = 350e6; // 350 fibres per mm^2
constexpr double model_n_fibres = 20000.0;

/// Model fibres of an elliptic cross-section (semi-axes a, b = area / (pi a)) of area area_m2:
/// a square grid of ~model_n_fibres points, each jittered within +-0.4 spacing, kept inside.
/// Weights scatter +-20 % around the mean that gives real_density_per_m2.
struct Section {
  Eigen::MatrixX2d positions_m;
  Eigen::VectorXd weights;
};

Section make_section(double aspect) {
  const double a = std::sqrt(area_m2 * aspect / std::numbers::pi);
  const double b = area_m2 / (std::numbers::pi * a);
  const double h = std::sqrt(area_m2 / model_n_fibres);
  Rng rng(7);
  std::vector<Eigen::Vector2d> pts;
  for (double y = -b; y <= b; y += h)
    for (double x = -a; x <= a; x += h) {
      const Eigen::Vector2d p(x + rng.uniform(-0.4, 0.4) * h, y + rng.uniform(-0.4, 0.4) * h);
      if ((p.x() / a) * (p.x() / a) + (p.y() / b) * (p.y() / b) <= 1.0)
        pts.push_back(p);
    }
  Section s;
  s.positions_m.resize(static_cast<Eigen::Index>(pts.size()), 2);
  s.weights.resize(s.positions_m.rows());
  const double mean_weight = real_density_per_m2 * area_m2 / static_cast<double>(pts.size());
  for (Eigen::Index f = 0; f < s.positions_m.rows(); ++f) {
    s.positions_m.row(f) = pts[f].transpose();
    s.weights(f) = mean_weight * rng.uniform(0.8, 1.2);
  }
  return s;
}

const Section& disc() {
  static const Section s = make_section(1.0);
  return s;
}

const MotorUnitPool& disc_pool() {
  static const MotorUnitPool pool =
      build_motor_unit_pool(disc().positions_m, disc().weights, area_m2, MotorUnitParams{}, 1993);
  return pool;
}

/// Territory area of a unit from its fibres [m^2]: 4 pi sqrt(det C) with C the weighted
/// covariance of their positions, which is exactly pi r^2 for a uniform disc of radius r (and
/// for a Gaussian of sd r/2).
double territory_area(const Section& s, const std::vector<std::int64_t>& fibres) {
  double w_sum = 0.0;
  Eigen::Vector2d mean = Eigen::Vector2d::Zero();
  for (const auto f : fibres) {
    w_sum += s.weights(f);
    mean += s.weights(f) * s.positions_m.row(f).transpose();
  }
  mean /= w_sum;
  Eigen::Matrix2d c = Eigen::Matrix2d::Zero();
  for (const auto f : fibres) {
    const Eigen::Vector2d d = s.positions_m.row(f).transpose() - mean;
    c += s.weights(f) * d * d.transpose();
  }
  c /= w_sum;
  return 4.0 * std::numbers::pi * std::sqrt(c.determinant());
}

/// The k nearest other fibres of every fibre, with a bucket grid (independent of the library's).
std::vector<std::vector<int>> nearest(const Eigen::MatrixX2d& x, int k) {
  const double cell = std::sqrt(area_m2 / static_cast<double>(x.rows())) * 2.0;
  const double x0 = x.col(0).minCoeff(), y0 = x.col(1).minCoeff();
  const int nx = static_cast<int>((x.col(0).maxCoeff() - x0) / cell) + 1;
  const int ny = static_cast<int>((x.col(1).maxCoeff() - y0) / cell) + 1;
  std::vector<std::vector<int>> bucket(static_cast<std::size_t>(nx * ny));
  auto bx = [&](Eigen::Index f) { return static_cast<int>((x(f, 0) - x0) / cell); };
  auto by = [&](Eigen::Index f) { return static_cast<int>((x(f, 1) - y0) / cell); };
  for (Eigen::Index f = 0; f < x.rows(); ++f)
    bucket[by(f) * nx + bx(f)].push_back(static_cast<int>(f));
  std::vector<std::vector<int>> out(static_cast<std::size_t>(x.rows()));
  for (Eigen::Index f = 0; f < x.rows(); ++f) {
    std::vector<std::pair<double, int>> cand;
    // 5 x 5 cells hold ~100 fibres; the 4 nearest lie well within 2 cells of any fibre here.
    for (int iy = std::max(0, by(f) - 2); iy <= std::min(ny - 1, by(f) + 2); ++iy)
      for (int ix = std::max(0, bx(f) - 2); ix <= std::min(nx - 1, bx(f) + 2); ++ix)
        for (const int o : bucket[iy * nx + ix])
          if (o != f)
            cand.emplace_back((x.row(o) - x.row(f)).squaredNorm(), o);
    std::partial_sort(cand.begin(), cand.begin() + k, cand.end());
    for (int j = 0; j < k; ++j)
      out[f].push_back(cand[j].second);
  }
  return out;
}

} // namespace

TEST(MotorUnits, RepresentedFibreCountsMatchTheExponentialTargetSizes) {
  const auto& pool = disc_pool();
  ASSERT_EQ(pool.units.size(), 100U);
  const double total = disc().weights.sum();
  double target_sum = 0.0, worst = 0.0;
  for (const auto& u : pool.units) {
    target_sum += u.target_n_fibres;
    EXPECT_GE(u.fibres.size(), 1U);
    const double model_fibres = u.target_n_fibres / disc().weights.mean();
    if (model_fibres >= 20.0)
      worst = std::max(worst, std::abs(u.n_fibres / u.target_n_fibres - 1.0));
  }
  EXPECT_NEAR(target_sum, total, 1e-6 * total);
  EXPECT_NEAR(pool.units.back().target_n_fibres / pool.units.front().target_n_fibres, 100.0, 1e-6);
  for (std::size_t i = 1; i < pool.units.size(); ++i)
    EXPECT_GT(pool.units[i].target_n_fibres, pool.units[i - 1].target_n_fibres);
  EXPECT_LT(worst, 0.10);
  RecordProperty("worst_count_error", std::to_string(worst));
  std::printf("worst represented-count error (units >= 20 model fibres): %.4f\n", worst);
}

TEST(MotorUnits, EveryFibreBelongsToExactlyOneUnitAndTheListsAgree) {
  const auto& pool = disc_pool();
  const Eigen::Index n = disc().positions_m.rows();
  ASSERT_EQ(pool.fibre_unit.size(), n);
  std::vector<int> seen(static_cast<std::size_t>(n), 0);
  for (std::size_t i = 0; i < pool.units.size(); ++i) {
    const auto& u = pool.units[i];
    EXPECT_EQ(u.index, static_cast<std::int64_t>(i));
    EXPECT_TRUE(std::is_sorted(u.fibres.begin(), u.fibres.end()));
    double w = 0.0;
    for (const auto f : u.fibres) {
      ++seen[f];
      EXPECT_EQ(pool.fibre_unit(f), static_cast<int>(i));
      w += disc().weights(f);
    }
    EXPECT_NEAR(u.n_fibres, w, 1e-9 * w);
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
}

// The area estimate of a unit of n fibres scatters by itself by about 1/sqrt(n) (20 % at 25
// fibres): the check is per unit from 200 fibres (sd about 5 %), and on the mean error (no bias)
// and mean absolute error from 20 fibres.
TEST(MotorUnits, TerritoryAreasMatchTheirTargetsAndTheLargestIsAQuarterOfTheSection) {
  const auto& pool = disc_pool();
  const double largest_target =
      std::numbers::pi * std::pow(pool.units.back().territory_radius_m, 2);
  EXPECT_NEAR(largest_target / area_m2, 0.25, 1e-9);
  double worst_200 = 0.0, sum = 0.0, sum_abs = 0.0;
  int n_checked = 0;
  for (const auto& u : pool.units) {
    if (u.fibres.size() < 20)
      continue;
    const double target = std::numbers::pi * u.territory_radius_m * u.territory_radius_m;
    const double err = territory_area(disc(), u.fibres) / target - 1.0;
    sum += err;
    sum_abs += std::abs(err);
    ++n_checked;
    if (u.fibres.size() >= 200) {
      worst_200 = std::max(worst_200, std::abs(err));
      EXPECT_LT(std::abs(err), 0.20)
          << "unit " << u.index << " with " << u.fibres.size() << " model fibres";
    }
  }
  EXPECT_LT(std::abs(sum / n_checked), 0.05);
  EXPECT_LT(sum_abs / n_checked, 0.10);
  std::printf("territory area error: units >= 200 model fibres worst %.3f; units >= 20 (n = %d) "
              "mean %+.3f, mean |e| %.3f\n",
              worst_200, n_checked, sum / n_checked, sum_abs / n_checked);
}

TEST(MotorUnits, TerritoriesLieInsideTheSectionAndAreSpread) {
  const auto& pool = disc_pool();
  const double radius = std::sqrt(area_m2 / std::numbers::pi);
  Eigen::Vector2d mean = Eigen::Vector2d::Zero();
  for (const auto& u : pool.units) {
    // centres at least a territory radius from the boundary (within the fibres' jitter)
    EXPECT_LE(u.territory_centre_m.norm() + u.territory_radius_m, radius * 1.03);
    mean += u.territory_centre_m / static_cast<double>(pool.units.size());
  }
  EXPECT_LT(mean.norm(), 0.15 * radius);
}

TEST(MotorUnits, NeighbouringFibresMostlyBelongToOtherUnits) {
  const auto& pool = disc_pool();
  const auto nn = nearest(disc().positions_m, 4);
  std::vector<int> same(nn.size());
  double mean = 0.0;
  for (std::size_t f = 0; f < nn.size(); ++f) {
    for (const int o : nn[f])
      same[f] += pool.fibre_unit(o) == pool.fibre_unit(static_cast<Eigen::Index>(f)) ? 1 : 0;
    mean += same[f] / 4.0 / static_cast<double>(nn.size());
  }
  std::nth_element(same.begin(), same.begin() + static_cast<long>(same.size() / 2), same.end());
  EXPECT_LT(same[same.size() / 2], 2);
  std::printf("median own-unit neighbours %d of 4; mean fraction %.4f\n", same[same.size() / 2],
              mean);
}

TEST(MotorUnits, ThresholdsRiseExponentiallyWithSizeOverARangeOf30) {
  const auto& pool = disc_pool();
  const MotorUnitParams p;
  for (std::size_t i = 1; i < pool.units.size(); ++i)
    EXPECT_GT(pool.units[i].recruitment_threshold, pool.units[i - 1].recruitment_threshold);
  EXPECT_NEAR(pool.units.back().recruitment_threshold / pool.units.front().recruitment_threshold,
              30.0, 1e-9);
  EXPECT_NEAR(pool.units.back().recruitment_threshold, p.max_recruitment_threshold, 1e-12);
  // constant ratio between successive thresholds
  const double ratio = pool.units[1].recruitment_threshold / pool.units[0].recruitment_threshold;
  EXPECT_NEAR(ratio, std::pow(30.0, 1.0 / 99.0), 1e-12);
}

TEST(MotorUnits, ConductionVelocityGrowsWithSizeAroundFourMetresPerSecond) {
  const auto& pool = disc_pool();
  double mean = 0.0;
  for (std::size_t i = 0; i < pool.units.size(); ++i) {
    const auto& u = pool.units[i];
    mean += u.cv_m_per_s / static_cast<double>(pool.units.size());
    if (i > 0) {
      EXPECT_GT(u.cv_m_per_s, pool.units[i - 1].cv_m_per_s);
    }
  }
  EXPECT_NEAR(mean, 4.0, 1e-6);
  EXPECT_NEAR(pool.units.front().cv_m_per_s, 3.0, 1e-12);
  EXPECT_NEAR(pool.units.back().cv_m_per_s, 5.5, 1e-12);
  EXPECT_GE(pool.fibre_cv_m_per_s.minCoeff(), 3.0);
  EXPECT_LE(pool.fibre_cv_m_per_s.maxCoeff(), 5.5);
  // per-unit mean fibre CV close to the unit's value, increasing from the small to the large
  // units (compare thirds of the pool)
  std::vector<double> unit_mean(pool.units.size(), 0.0);
  for (std::size_t i = 0; i < pool.units.size(); ++i) {
    for (const auto f : pool.units[i].fibres)
      unit_mean[i] += pool.fibre_cv_m_per_s(f);
    unit_mean[i] /= static_cast<double>(pool.units[i].fibres.size());
  }
  const double first = (unit_mean[0] + unit_mean[1] + unit_mean[2]) / 3.0;
  const double last = (unit_mean[97] + unit_mean[98] + unit_mean[99]) / 3.0;
  EXPECT_GT(last - first, 1.5);
  const double fibre_weighted = pool.fibre_cv_m_per_s.dot(disc().weights) / disc().weights.sum();
  std::printf("unit-mean CV %.3f m/s; fibre-weighted mean CV %.3f m/s; fibre range [%.3f, %.3f]\n",
              mean, fibre_weighted, pool.fibre_cv_m_per_s.minCoeff(),
              pool.fibre_cv_m_per_s.maxCoeff());
}

TEST(MotorUnits, FibreDiametersAreAboutFiftyMicronsAndGrowWithUnitSize) {
  const auto& pool = disc_pool();
  const Eigen::VectorXd& d = pool.fibre_diameter_m;
  EXPECT_GT(d.minCoeff(), 20e-6);
  EXPECT_LT(d.maxCoeff(), 90e-6);
  double unit_mean = 0.0;
  for (const auto& u : pool.units)
    unit_mean += u.fibre_diameter_m / static_cast<double>(pool.units.size());
  EXPECT_NEAR(unit_mean, 50e-6, 1e-9);
  EXPECT_LT(pool.units.front().fibre_diameter_m, pool.units.back().fibre_diameter_m);
  // fibre CV is proportional to fibre diameter within a unit
  for (Eigen::Index f = 0; f < d.size(); f += 997) {
    const auto& u = pool.units[pool.fibre_unit(f)];
    EXPECT_NEAR(pool.fibre_cv_m_per_s(f) / d(f), u.cv_m_per_s / u.fibre_diameter_m,
                1e-9 * u.cv_m_per_s / u.fibre_diameter_m);
  }
}

TEST(MotorUnits, TheSameSeedGivesTheSamePoolAndAnotherSeedAnother) {
  const auto& a = disc_pool();
  const auto b =
      build_motor_unit_pool(disc().positions_m, disc().weights, area_m2, MotorUnitParams{}, 1993);
  EXPECT_EQ(a.fibre_unit, b.fibre_unit);
  EXPECT_EQ(a.fibre_cv_m_per_s, b.fibre_cv_m_per_s);
  EXPECT_EQ(a.fibre_diameter_m, b.fibre_diameter_m);
  for (std::size_t i = 0; i < a.units.size(); ++i) {
    EXPECT_EQ(a.units[i].territory_centre_m, b.units[i].territory_centre_m);
    EXPECT_EQ(a.units[i].fibres, b.units[i].fibres);
  }
  const auto c =
      build_motor_unit_pool(disc().positions_m, disc().weights, area_m2, MotorUnitParams{}, 1994);
  EXPECT_NE(a.fibre_unit, c.fibre_unit);
}

TEST(MotorUnits, AnEllipticSectionAlsoMeetsCountAndAreaTargets) {
  const Section s = make_section(2.5);
  MotorUnitParams p;
  p.n_units = 150;
  const auto pool = build_motor_unit_pool(s.positions_m, s.weights, area_m2, p, 5);
  double worst_count = 0.0, worst_area = 0.0, sum_abs = 0.0;
  int n_checked = 0;
  for (const auto& u : pool.units) {
    if (u.target_n_fibres / s.weights.mean() >= 20.0)
      worst_count = std::max(worst_count, std::abs(u.n_fibres / u.target_n_fibres - 1.0));
    if (u.fibres.size() >= 20) {
      const double target = std::numbers::pi * u.territory_radius_m * u.territory_radius_m;
      const double err = std::abs(territory_area(s, u.fibres) / target - 1.0);
      sum_abs += err;
      ++n_checked;
      if (u.fibres.size() >= 200)
        worst_area = std::max(worst_area, err);
    }
  }
  EXPECT_LT(worst_count, 0.10);
  EXPECT_LT(worst_area, 0.20);
  EXPECT_LT(sum_abs / n_checked, 0.12); // more small units than on the disc
  std::printf("ellipse 2.5:1, 150 units: worst count error %.4f; area error worst %.3f (units >= "
              "200 fibres), mean |e| %.3f (>= 20)\n",
              worst_count, worst_area, sum_abs / n_checked);
}

TEST(MotorUnits, ASingleUnitTakesEveryFibre) {
  const Section& s = disc();
  MotorUnitParams p;
  p.n_units = 1;
  const auto pool = build_motor_unit_pool(s.positions_m.topRows(500), s.weights.head(500),
                                          area_m2 * 500.0 / s.positions_m.rows(), p, 1);
  ASSERT_EQ(pool.units.size(), 1U);
  EXPECT_EQ(pool.units[0].fibres.size(), 500U);
  EXPECT_NEAR(pool.units[0].cv_m_per_s, 4.0, 1e-12);
}

TEST(MotorUnits, ReadsParametersWithUnitSuffixesAndRejectsBadValues) {
  ConfigReader cfg(nlohmann::json::parse(R"({"n_units": 186, "fibre_diameter_mean_um": 55,
                                             "cv_mean_m_per_s": 4.2})"),
                   "subject.json");
  const MotorUnitParams p = read_motor_unit_params(cfg);
  cfg.finish();
  EXPECT_EQ(p.n_units, 186);
  EXPECT_NEAR(p.fibre_diameter_mean_m, 55e-6, 1e-15);
  EXPECT_NEAR(p.fibre_diameter_sd_m, 5e-6, 1e-15);
  EXPECT_DOUBLE_EQ(p.cv_mean_m_per_s, 4.2);
  EXPECT_DOUBLE_EQ(p.size_range, 100.0);
  EXPECT_EQ(cfg.resolved()["fibre_diameter_sd_um"].get<double>(), 5.0);

  ConfigReader bad_cv(nlohmann::json::parse(R"({"cv_mean_m_per_s": 6})"), "subject.json");
  expect_error<BadInput>([&] { read_motor_unit_params(bad_cv); },
                         {"subject.json", "cv_mean_m_per_s", "6", "cv_max_m_per_s = 5.5"});
  ConfigReader bad_n(nlohmann::json::parse(R"({"n_units": 0})"), "subject.json");
  expect_error<BadInput>([&] { read_motor_unit_params(bad_n); }, {"n_units", "0"});
  ConfigReader unknown(nlohmann::json::parse(R"({"fibre_diameter_mean_m": 5e-5})"), "s.json");
  read_motor_unit_params(unknown);
  expect_error<BadInput>([&] { unknown.finish(); }, {"fibre_diameter_mean_m", "unknown key"});
}

TEST(MotorUnits, RejectsInputsFromWhichNoPoolCanBeBuilt) {
  const Section& s = disc();
  const MotorUnitParams p;
  const Eigen::MatrixX2d few = s.positions_m.topRows(50);
  const Eigen::VectorXd few_w = s.weights.head(50);
  expect_error<BadInput>([&] { build_motor_unit_pool(few, few_w, area_m2, p, 1); },
                         {"50 model fibres for 100 motor units", "at least one model fibre"});
  expect_error<BadInput>([&] { build_motor_unit_pool(s.positions_m, s.weights, 0.0, p, 1); },
                         {"cross_section_area_m2 = 0", "must be > 0"});
  expect_error<BadInput>(
      [&] { build_motor_unit_pool(s.positions_m, s.weights, area_m2 * 1e6, p, 1); },
      {"cross_section_area_m2 = 300", "cover about", "m^2"});
  Eigen::VectorXd w = s.weights;
  w(17) = -1.0;
  expect_error<BadInput>([&] { build_motor_unit_pool(s.positions_m, w, area_m2, p, 1); },
                         {"weight of fibre 17 = -1", "must be > 0"});
  expect_error<BadInput>(
      [&] { build_motor_unit_pool(s.positions_m, s.weights.head(10), area_m2, p, 1); },
      {"one weight per fibre"});
  MotorUnitParams bad = p;
  bad.size_range = 0.5;
  expect_error<BadInput>([&] { build_motor_unit_pool(s.positions_m, s.weights, area_m2, bad, 1); },
                         {"size_range = 0.5", "must be >= 1"});
}
