// Two-layer terminal nerve branching: closed-form delays on a tiny unit, spread with unit size,
// determinism and bad inputs.

#include <cmath>
#include <cstdio>

#include <gtest/gtest.h>

#include "myotwin/anatomy/motor_units.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/forward/needle/nerve_branching.hpp"

namespace {

using namespace myotwin;

anatomy::Fibre straight(double x, double y, double end_plate_m) {
  anatomy::Fibre f;
  f.points_m.resize(2, 3);
  f.points_m << x, y, 0.0, x, y, 0.1;
  f.length_m = 0.1;
  f.end_plate_m = end_plate_m;
  return f;
}

TEST(NerveBranching, GivesTheClosedFormDelaysOfTwoClusters) {
  anatomy::MuscleFibres fibres;
  // Two pairs 10 mm apart; the end-plates of a pair 0.2 mm apart across and 1 mm along.
  fibres.fibres = {straight(0.0, 0.0, 0.050), straight(0.2e-3, 0.0, 0.051),
                   straight(10e-3, 0.0, 0.050), straight(10.2e-3, 0.0, 0.051)};
  anatomy::MotorUnitPool pool;
  anatomy::MotorUnit u;
  u.fibres = {0, 1, 2, 3};
  pool.units.push_back(u);
  forward::NerveBranchingParams p; // sqrt(4) = 2 branches
  const auto b = forward::nerve_branching(fibres, pool, 0, p, Rng(3));
  ASSERT_EQ(b.branch_points_m.rows(), 2);
  EXPECT_EQ(b.branch[0], b.branch[1]);
  EXPECT_EQ(b.branch[2], b.branch[3]);
  EXPECT_NE(b.branch[0], b.branch[2]);
  const Eigen::Vector3d entry(5.1e-3, 0.0, 0.0505);
  EXPECT_LT((b.entry_m - entry).norm(), 1e-12);
  Eigen::Vector4d expected;
  for (int i = 0; i < 4; ++i) {
    const Eigen::Vector3d ep = b.end_plates_m.row(i).transpose();
    const Eigen::Vector3d centre =
        i < 2 ? Eigen::Vector3d(0.1e-3, 0.0, 0.0505) : Eigen::Vector3d(10.1e-3, 0.0, 0.0505);
    expected[i] = (centre - entry).norm() / 5.0 + (ep - centre).norm() / 2.0;
  }
  expected.array() -= expected.minCoeff();
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(b.delays_s[i], expected[i], 1e-15) << i;
  }
  // All four fibres are equally far from their branch point: every delay is 0.
  EXPECT_NEAR(b.delays_s.maxCoeff(), 0.0, 1e-15);

  // Proximal entry shift of 5 mm: the first layer grows equally for both clusters.
  p.entry_offset_m = 5e-3;
  const auto shifted = forward::nerve_branching(fibres, pool, 0, p, Rng(3));
  EXPECT_LT((shifted.entry_m - Eigen::Vector3d(5.1e-3, 0.0, 0.0455)).norm(), 1e-12);

  // One branch point (factor 0.5 -> round(1) = 1): delays differ only by the terminal layer.
  p.entry_offset_m = 0.0;
  p.branches_per_sqrt_fibre = 0.5;
  const auto one = forward::nerve_branching(fibres, pool, 0, p, Rng(3));
  ASSERT_EQ(one.branch_points_m.rows(), 1);
  Eigen::Vector4d d1;
  for (int i = 0; i < 4; ++i) {
    d1[i] = (one.end_plates_m.row(i).transpose() - entry).norm() / 2.0;
  }
  d1.array() -= d1.minCoeff();
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(one.delays_s[i], d1[i], 1e-15) << i;
  }
}

TEST(NerveBranching, SpreadIsTenthsOfAMillisecondAndGrowsWithUnitSize) {
  // A 20 mm diameter cylinder, 1 model fibre per mm^2, end-plates uniform in 50 +/- 5 % of 100 mm.
  Rng rng(11);
  std::vector<Eigen::Vector2d> pos;
  while (pos.size() < 200) {
    const Eigen::Vector2d p(rng.uniform(-10e-3, 10e-3), rng.uniform(-10e-3, 10e-3));
    if (p.norm() < 10e-3) {
      pos.push_back(p);
    }
  }
  Eigen::MatrixX2d xy(static_cast<Eigen::Index>(pos.size()), 2);
  anatomy::MuscleFibres fibres;
  for (std::size_t i = 0; i < pos.size(); ++i) {
    xy.row(static_cast<Eigen::Index>(i)) = pos[i].transpose();
    fibres.fibres.push_back(straight(pos[i].x(), pos[i].y(), 0.05 + rng.uniform(-0.005, 0.005)));
    fibres.fibres.back().weight = 550.0;
  }
  anatomy::MotorUnitParams mp;
  mp.n_units = 6;
  const auto pool = anatomy::build_motor_unit_pool(xy, Eigen::VectorXd::Constant(xy.rows(), 550.0),
                                                   M_PI * 1e-4, mp, 5);
  forward::NerveBranchingParams p;
  // The smallest unit with at least 4 model fibres, and the largest.
  std::size_t first = 0;
  while (pool.units[first].fibres.size() < 4) {
    ++first;
  }
  const auto small = forward::nerve_branch_delays_s(fibres, pool, first, p, Rng(1));
  const auto large = forward::nerve_branch_delays_s(fibres, pool, 5, p, Rng(1));
  const auto sd = [](const Eigen::VectorXd& d) {
    return std::sqrt((d.array() - d.mean()).square().sum() / static_cast<double>(d.size()));
  };
  std::printf("unit %zu (%zu model fibres): range %.3f ms, sd %.3f ms; unit 5 (%zu): range %.3f "
              "ms, sd %.3f ms\n",
              first, pool.units[first].fibres.size(), small.maxCoeff() * 1e3, sd(small) * 1e3,
              pool.units[5].fibres.size(), large.maxCoeff() * 1e3, sd(large) * 1e3);
  EXPECT_EQ(small.size(), static_cast<Eigen::Index>(pool.units[first].fibres.size()));
  EXPECT_NEAR(small.minCoeff(), 0.0, 0.0);
  EXPECT_NEAR(large.minCoeff(), 0.0, 0.0);
  // Spread (sd): tenths of a ms for a small unit, about 1 ms for the largest; the range of the
  // largest (the fibres at the ends of its +/- 5 mm end-plate band) a few ms.
  EXPECT_GT(sd(small), 0.05e-3);
  EXPECT_LT(sd(small), 0.6e-3);
  EXPECT_GT(sd(large), 0.3e-3);
  EXPECT_LT(sd(large), 2.0e-3);
  EXPECT_GT(sd(large), sd(small));
  EXPECT_LT(large.maxCoeff(), 5.0e-3);
  // Same seed, same bits; another seed, other clusters.
  const auto again = forward::nerve_branch_delays_s(fibres, pool, 5, p, Rng(1));
  EXPECT_EQ(again, large);
  p.enabled = false;
  EXPECT_EQ(forward::nerve_branch_delays_s(fibres, pool, 5, p, Rng(1)),
            Eigen::VectorXd::Zero(large.size()));
}

TEST(NerveBranching, RejectsBadInputsWithTheirNames) {
  anatomy::MuscleFibres fibres;
  fibres.fibres = {straight(0.0, 0.0, 0.05)};
  anatomy::MotorUnitPool pool;
  pool.units.resize(2);
  pool.units[0].fibres = {0};
  forward::NerveBranchingParams p;
  try {
    forward::nerve_branch_delays_s(fibres, pool, 2, p, Rng(1));
    FAIL();
  } catch (const BadInput& e) {
    EXPECT_NE(std::string(e.what()).find("unit 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(forward::nerve_branch_delays_s(fibres, pool, 1, p, Rng(1)), BadInput);
  pool.units[1].fibres = {7};
  EXPECT_THROW(forward::nerve_branch_delays_s(fibres, pool, 1, p, Rng(1)), BadInput);
  p.terminal_cv_m_per_s = -2.0;
  try {
    forward::nerve_branch_delays_s(fibres, pool, 0, p, Rng(1));
    FAIL();
  } catch (const BadInput& e) {
    EXPECT_NE(std::string(e.what()).find("terminal_cv_m_per_s = -2"), std::string::npos)
        << e.what();
  }
  ConfigReader cfg(nlohmann::json{{"axon_cv_m_per_s", 0.0}}, "c.json");
  try {
    forward::read_nerve_branching_params(cfg);
    FAIL();
  } catch (const BadInput& e) {
    EXPECT_NE(std::string(e.what()).find("axon_cv_m_per_s"), std::string::npos) << e.what();
  }
  ConfigReader ok(nlohmann::json{{"terminal_cv_m_per_s", 1.5}, {"entry_offset_mm", 2.0}}, "c.json");
  const auto r = forward::read_nerve_branching_params(ok);
  EXPECT_DOUBLE_EQ(r.terminal_cv_m_per_s, 1.5);
  EXPECT_DOUBLE_EQ(r.entry_offset_m, 2e-3);
}

} // namespace
