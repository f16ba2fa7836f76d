#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"
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

TEST(Resources, ARunEstimateIsCheckedAndThenPrintedWithItsTimeAndDrivers) {
  std::ostringstream log;
  myotwin::set_log_stream(log);
  myotwin::set_memory_limit_bytes(2.0 * 1073741824.0);
  myotwin::RunEstimate e;
  e.bytes = 0.5 * 1073741824.0;
  e.seconds = 754.0;
  e.time_parts = "factorisation 4 s, solves 750 s";
  e.drivers = "89116 mesh nodes x 320 electrodes";
  myotwin::check_run_estimate(e, "leadfield");
  EXPECT_NE(log.str().find("leadfield: estimated 0.5 GiB of memory (limit 2 GiB) and about 13 min "
                           "(factorisation 4 s, solves 750 s; 89116 mesh nodes x 320 electrodes)"),
            std::string::npos)
      << log.str();
  e.bytes = 3.0 * 1073741824.0;
  expect_error<myotwin::BadInput>([&] { myotwin::check_run_estimate(e, "leadfield"); },
                                  {"leadfield needs about 3 GiB", "89116 mesh nodes"});
  myotwin::set_memory_limit_bytes(0.0);
  myotwin::set_log_stream(std::cerr);
  EXPECT_EQ(myotwin::format_duration(0.42), "0.4 s");
  EXPECT_EQ(myotwin::format_duration(25.4), "25 s");
  EXPECT_EQ(myotwin::format_duration(725.0), "12 min");
  EXPECT_EQ(myotwin::format_duration(3.2 * 3600.0), "3.2 h");
}

TEST(Resources, ProcessMemorySeesAnAllocationAndItsPeakResetsToTheResidentSize) {
  const auto before = myotwin::process_memory();
  if (before.resident_bytes == 0.0)
    GTEST_SKIP() << "/proc/self/status is not readable here";
  constexpr std::size_t n = 256u * 1024u * 1024u; // 256 MiB, every page touched
  {
    std::vector<unsigned char> block(n, 1);
    const auto during = myotwin::process_memory();
    EXPECT_GE(during.resident_bytes, before.resident_bytes + 0.9 * n);
    EXPECT_GE(during.peak_bytes, during.resident_bytes);
    EXPECT_EQ(block[n / 2], 1);
  }
  const auto after = myotwin::process_memory();
  EXPECT_GE(after.peak_bytes, before.resident_bytes + 0.9 * n); // the peak remembers the block
  myotwin::reset_peak_memory();
  const auto reset = myotwin::process_memory();
  // The peak is now the resident size (which an allocator that keeps freed memory, as ASan's
  // quarantine does, leaves high), not the block's peak above it.
  EXPECT_LT(reset.peak_bytes, std::max(reset.resident_bytes, before.resident_bytes) + 0.25 * n)
      << "the peak did not reset";
  EXPECT_EQ(myotwin::format_gib(1.5 * 1073741824.0), "1.50 GiB");
  EXPECT_EQ(myotwin::format_gib(0.0), "0.00 GiB");
}
