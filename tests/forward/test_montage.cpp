#include <cmath>

#include <gtest/gtest.h>

#include "myotwin/core/error.hpp"
#include "myotwin/forward/emg/montage.hpp"
#include "test_support.hpp"

using namespace myotwin;
using namespace myotwin::forward;
using myotwin::testing::expect_error;

namespace {

/// A rows x columns grid, channel index = r * columns + c.
MatrixXi64 grid(std::int64_t rows, std::int64_t columns) {
  MatrixXi64 rc(rows * columns, 2);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < columns; ++c) {
      rc(r * columns + c, 0) = r;
      rc(r * columns + c, 1) = c;
    }
  return rc;
}

} // namespace

TEST(Montage, SingleDifferentialOfATravellingWaveIsTheWaveMinusItsDelayedCopy) {
  // V(r, c)(t) = f(t - r d / v): the row SD is f(t - (r + 1) d / v) - f(t - r d / v).
  const std::int64_t rows = 5, columns = 3;
  const double d = 0.008, v = 4.0, fs = 10000.0;
  const Eigen::Index n = 400;
  auto f = [](double t) { return std::exp(-std::pow((t - 0.015) / 0.002, 2)); };
  Eigen::MatrixXd emg(rows * columns, n);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < columns; ++c)
      for (Eigen::Index k = 0; k < n; ++k)
        emg(r * columns + c, k) = f(static_cast<double>(k) / fs - static_cast<double>(r) * d / v);
  const auto m = montage_weights(grid(rows, columns), Montage::sd_rows);
  ASSERT_EQ(m.weights.rows(), (rows - 1) * columns);
  const Eigen::MatrixXd sd = m.weights * emg;
  for (Eigen::Index i = 0; i < sd.rows(); ++i) {
    const double r = static_cast<double>(m.anchor_row_col(i, 0));
    for (Eigen::Index k = 0; k < n; k += 7) {
      const double t = static_cast<double>(k) / fs;
      EXPECT_NEAR(sd(i, k), f(t - (r + 1) * d / v) - f(t - r * d / v), 1e-12);
    }
  }
}

TEST(Montage, DoubleDifferentialAndLaplacianVanishOnFieldsTheyShouldNotSee) {
  const std::int64_t rows = 6, columns = 7;
  const MatrixXi64 rc = grid(rows, columns);
  // Linear along rows and columns: every DD is 0. Harmonic x^2 - y^2: the Laplacian is 0.
  Eigen::MatrixXd linear(rows * columns, 1), harmonic(rows * columns, 1);
  for (Eigen::Index ch = 0; ch < rc.rows(); ++ch) {
    const double r = static_cast<double>(rc(ch, 0)), c = static_cast<double>(rc(ch, 1));
    linear(ch, 0) = 3.0 * r - 2.0 * c + 1.0;
    harmonic(ch, 0) = r * r - c * c + 0.5 * r * c;
  }
  for (const Montage m : {Montage::dd_rows, Montage::dd_columns, Montage::laplacian})
    EXPECT_LT((montage_weights(rc, m).weights * linear).cwiseAbs().maxCoeff(), 1e-12)
        << to_string(m);
  const auto lap = montage_weights(rc, Montage::laplacian);
  EXPECT_EQ(lap.weights.rows(), (rows - 2) * (columns - 2));
  EXPECT_LT((lap.weights * harmonic).cwiseAbs().maxCoeff(), 1e-12);
  // Each row of every montage but monopolar sums to zero (a common signal cancels).
  for (const Montage m : {Montage::sd_rows, Montage::sd_columns, Montage::dd_rows,
                          Montage::dd_columns, Montage::laplacian}) {
    const Eigen::VectorXd ones = Eigen::VectorXd::Ones(rc.rows());
    EXPECT_LT((montage_weights(rc, m).weights * ones).cwiseAbs().maxCoeff(), 1e-15);
  }
}

TEST(Montage, WrappedColumnsCloseTheRingAndMissingElectrodesDropTheirChannels) {
  MatrixXi64 rc = grid(2, 4);
  EXPECT_EQ(montage_weights(rc, Montage::sd_columns).weights.rows(), 2 * 3);
  EXPECT_EQ(montage_weights(rc, Montage::sd_columns, true).weights.rows(), 2 * 4);
  // A needle (no grid position) and a missing electrode (1, 2).
  rc(6, 0) = -1;
  rc(6, 1) = -1;
  const auto sd = montage_weights(rc, Montage::sd_rows);
  EXPECT_EQ(sd.weights.rows(), 3);
  for (Eigen::Index i = 0; i < sd.weights.rows(); ++i)
    EXPECT_NE(sd.anchor_row_col(i, 1), 2);
  EXPECT_EQ(sd.weights.cols(), 8);
}

TEST(Montage, BadInputNamesTheProblem) {
  expect_error<BadInput>([] { montage_from_string("bipolar"); },
                         {"bipolar", "sd_rows", "laplacian"});
  expect_error<BadInput>([] { montage_weights(grid(1, 5), Montage::sd_rows); },
                         {"sd_rows", "5 electrodes", "no position"});
  MatrixXi64 rc = grid(2, 2);
  rc(3, 0) = 0;
  rc(3, 1) = 0;
  expect_error<BadInput>([&] { montage_weights(rc, Montage::monopolar); },
                         {"share grid position (0, 0)"});
}
