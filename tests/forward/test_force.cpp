// The twitch model of Fuglevand, Winter and Patla 1993 against its closed forms: twitch peak,
// time to peak and area; contraction times over the pool; the gain curve; the mean force of a
// periodic train.

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/forward/drive/force.hpp"
#include "test_support.hpp"

using myotwin::forward::maximum_force;
using myotwin::forward::twitch_gain;
using myotwin::forward::twitch_properties;
using myotwin::forward::TwitchParams;
using myotwin::forward::unit_forces;
using myotwin::testing::expect_error;

TEST(Force, SingleTwitchPeaksAtTheContractionTimeWithAreaPTe) {
  myotwin::forward::TwitchProperties t;
  t.peak_force = Eigen::VectorXd::Constant(1, 7.0);
  t.contraction_time_s = Eigen::VectorXd::Constant(1, 0.05);
  const double fs = 100000.0;
  const Eigen::MatrixXd f = unit_forces({{0.1}}, t, fs, static_cast<std::int64_t>(fs), {});
  Eigen::Index peak = 0;
  const double peak_value = f.row(0).maxCoeff(&peak);
  EXPECT_NEAR(peak_value, 7.0, 1e-9);
  EXPECT_NEAR(static_cast<double>(peak) / fs, 0.15, 1.0 / fs);
  EXPECT_EQ(f(0, static_cast<Eigen::Index>(0.1 * fs) - 1), 0.0); // nothing before the discharge
  // Area P T e (the tail below 1e-6 of the peak is dropped: relative error ~ 2e-5).
  EXPECT_NEAR(f.row(0).sum() / fs, 7.0 * 0.05 * std::exp(1.0), 1e-4 * 7.0 * 0.05 * std::exp(1.0));
}

TEST(Force, PoolSpansTheForceRangeAndContractionTimes90To30Ms) {
  const int n = 120;
  Eigen::VectorXd sizes(n);
  for (int i = 0; i < n; ++i)
    sizes[i] = 25.0 * std::pow(100.0, static_cast<double>(i) / (n - 1)); // 25 .. 2500 fibres
  const auto t = twitch_properties(sizes, {});
  EXPECT_NEAR(t.peak_force[0], 1.0, 1e-12);
  EXPECT_NEAR(t.peak_force[n - 1], 100.0, 1e-9);
  EXPECT_NEAR(t.contraction_time_s[0], 0.090, 1e-12);
  EXPECT_NEAR(t.contraction_time_s[n - 1], 0.030, 1e-12);
  for (int i = 1; i < n; ++i)
    EXPECT_LT(t.contraction_time_s[i], t.contraction_time_s[i - 1]);
  // Fuglevand eq. 14 in the middle: T = T_L (1 / P)^(ln 3 / ln 100) with P = 10.
  Eigen::VectorXd three(3);
  three << 1.0, 10.0, 100.0;
  EXPECT_NEAR(twitch_properties(three, {}).contraction_time_s[1],
              0.090 * std::pow(0.1, std::log(3.0) / std::log(100.0)), 1e-15);
  expect_error<myotwin::BadInput>([] { (void)twitch_properties(Eigen::VectorXd(), {}); },
                                  {"pool is empty"});
  expect_error<myotwin::BadInput>([&] { (void)twitch_properties(Eigen::VectorXd::Zero(2), {}); },
                                  {"unit 0 has size 0 fibres (expected > 0)"});
}

TEST(Force, GainIsOneBelowPointFourAndFollowsFuglevandsSigmoidAbove) {
  EXPECT_EQ(twitch_gain(0.05, 0.2), 1.0); // r = 0.25
  EXPECT_EQ(twitch_gain(0.04, 0.1), 1.0); // r = 0.4 exactly
  const double s04 = (1.0 - std::exp(-2.0 * 0.064)) / 0.4;
  EXPECT_NEAR(twitch_gain(0.05, 0.05), (1.0 - std::exp(-2.0)) / s04, 1e-14); // r = 1
  // Above 0.4 the mean force, proportional to gain x r, follows Fuglevand's sigmoid
  // S(r) = 1 - exp(-2 r^3) scaled to join the linear part at 0.4: it rises steeper than linear
  // (gain > 1) up to r ~ 1 and saturates at 0.4 / S(0.4) = 3.33 times... of r = 1 x gain 1.
  double previous = 0.0;
  for (double r = 0.05; r <= 20.0; r += 0.05) {
    const double force = twitch_gain(1.0, 1.0 / r) * r;
    EXPECT_GE(force, previous - 1e-12) << r;
    EXPECT_NEAR(force,
                r <= 0.4 ? r : 0.4 * (1.0 - std::exp(-2.0 * r * r * r)) / (1.0 - std::exp(-0.128)),
                1e-12)
        << r;
    previous = force;
  }
  EXPECT_NEAR(twitch_gain(1.0, 1.0 / 20.0) * 20.0, 0.4 / (1.0 - std::exp(-0.128)), 1e-9);
}

TEST(Force, MeanForceOfAPeriodicTrainIsGainTimesPTeTimesRate) {
  myotwin::forward::TwitchProperties t;
  t.peak_force = Eigen::VectorXd::Constant(1, 3.0);
  t.contraction_time_s = Eigen::VectorXd::Constant(1, 0.06);
  const double fs = 4096.0, duration = 6.0;
  for (const double rate : {5.0, 25.0}) { // gain 1 (r = 0.3), and 0.46 (r = 1.5)
    std::vector<double> times;
    for (double tk = 0.0; tk < duration; tk += 1.0 / rate)
      times.push_back(tk);
    const auto n = static_cast<std::int64_t>(duration * fs);
    const Eigen::MatrixXd f = unit_forces({times}, t, fs, n, {});
    // Mean over whole periods after a settling second.
    const auto begin = static_cast<Eigen::Index>(fs * 2.0);
    const auto count = static_cast<Eigen::Index>(fs * 3.0);
    const double mean = f.row(0).segment(begin, count).mean();
    const double expected = twitch_gain(0.06, 1.0 / rate) * 3.0 * 0.06 * std::exp(1.0) * rate;
    EXPECT_NEAR(mean, expected, 2e-3 * expected) << rate << " pps";
    Eigen::VectorXd rates = Eigen::VectorXd::Constant(1, rate);
    EXPECT_NEAR(maximum_force(t, rates), expected, 1e-12 * expected);
  }
}

TEST(Force, BadInputGivesClearMessages) {
  myotwin::forward::TwitchProperties t;
  t.peak_force = Eigen::VectorXd::Ones(1);
  t.contraction_time_s = Eigen::VectorXd::Constant(1, 0.05);
  expect_error<myotwin::BadInput>(
      [&] {
        (void)unit_forces({{0.2, 0.1}}, t, 1000.0, 100, {});
      },
      {"discharge 1 of unit 0 at 0.1 s is not finite or earlier"});
  expect_error<myotwin::BadInput>(
      [&] {
        (void)unit_forces({{}, {}}, t, 1000.0, 100, {});
      },
      {"2 discharge trains but 1 twitches"});
  expect_error<myotwin::BadInput>([&] { (void)unit_forces({{}}, t, 0.0, 100, {}); },
                                  {"fs_Hz = 0 (expected > 0)"});
  myotwin::ConfigReader c(nlohmann::json{{"contraction_time_range", 0.5}}, "test.json");
  expect_error<myotwin::BadInput>([&] { (void)myotwin::forward::read_twitch_params(c); },
                                  {"contraction_time_range"});
  myotwin::ConfigReader ok(
      nlohmann::json{{"contraction_time_longest_ms", 100.0}, {"enabled", false}}, "test.json");
  const TwitchParams p = myotwin::forward::read_twitch_params(ok);
  EXPECT_DOUBLE_EQ(p.contraction_time_longest_s, 0.1);
  EXPECT_FALSE(p.enabled);
}
