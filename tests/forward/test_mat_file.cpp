// The shared matio helpers: numeric values of every numeric class, non-numeric variables
// refused, and a failed write naming the file and variable.

#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "myotwin/core/error.hpp"
#include "myotwin/forward/io/mat_file.hpp"
#include "test_support.hpp"

namespace mm = myotwin::forward::mat;

TEST(MatFile, NumericValuesOfIntegersAndDoublesAndNothingElse) {
  std::int32_t ints[6] = {1, -2, 3, 4, 5, -6};
  std::size_t dims[2] = {2, 3};
  const mm::VarPtr i32(
      Mat_VarCreate("a", MAT_C_INT32, MAT_T_INT32, 2, dims, ints, MAT_F_DONT_COPY_DATA));
  std::vector<double> out;
  ASSERT_TRUE(mm::numeric_values(i32.get(), out));
  EXPECT_EQ(out, (std::vector<double>{1, -2, 3, 4, 5, -6}));
  EXPECT_EQ(mm::n_elements(i32.get()), 6U);
  double d[2] = {0.5, 2.5};
  const mm::VarPtr dv(mm::double_var("d", 1, 2, d));
  ASSERT_TRUE(mm::numeric_values(dv.get(), out));
  EXPECT_EQ(out, (std::vector<double>{0.5, 2.5}));
  char text[3] = {'a', 'b', 'c'};
  std::size_t tdims[2] = {1, 3};
  const mm::VarPtr chars(
      Mat_VarCreate("t", MAT_C_CHAR, MAT_T_UINT8, 2, tdims, text, MAT_F_DONT_COPY_DATA));
  EXPECT_FALSE(mm::numeric_values(chars.get(), out));
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(mm::numeric_values(nullptr, out));
}

TEST(MatFile, AFailedWriteNamesTheFileAndTheVariable) {
  myotwin::testing::expect_error<myotwin::IoError>(
      [] { mm::write_var(nullptr, nullptr, "out/x.mat", "SIG"); },
      {"out/x.mat: cannot write MATLAB variable SIG"});
}
