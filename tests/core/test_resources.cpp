#include <cmath>

#include <gtest/gtest.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/resources.hpp"
#include "test_support.hpp"

using myotwin::testing::expect_error;

TEST(Resources, RefusesAnEstimateAboveTheLimitNamingTheEstimateTheDriversAndTheLimit) {
  EXPECT_GT(myotwin::memory_limit_bytes(), 0.0); // the memory available
  myotwin::set_memory_limit_bytes(2.0 * 1073741824.0);
  EXPECT_DOUBLE_EQ(myotwin::memory_limit_bytes(), 2.0 * 1073741824.0);
  EXPECT_NO_THROW(myotwin::check_memory_estimate(1.5 * 1073741824.0, "x", "k = 1"));
  expect_error<myotwin::BadInput>(
      [] {
        myotwin::check_memory_estimate(3.0 * 1073741824.0, "simulate",
                                       "simulate.drive.duration_s = 1e+12");
      },
      {"simulate needs about 3 GiB", "simulate.drive.duration_s = 1e+12", "limit of 2 GiB",
       "--max-memory-GiB"});
  // NaN estimates (from NaN inputs) are refused too.
  EXPECT_THROW(myotwin::check_memory_estimate(std::nan(""), "x", "k"), myotwin::BadInput);
  myotwin::set_memory_limit_bytes(0.0); // back to the memory available
  EXPECT_NE(myotwin::memory_limit_bytes(), 2.0 * 1073741824.0);
}
