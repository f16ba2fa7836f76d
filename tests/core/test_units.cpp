#include <gtest/gtest.h>

#include "myotwin/core/units.hpp"

namespace u = myotwin::units;

TEST(Units, ConvertToSiAndBack) {
  EXPECT_DOUBLE_EQ(u::mm_to_m(1.2), 0.0012);
  EXPECT_DOUBLE_EQ(u::m_to_mm(u::mm_to_m(37.5)), 37.5);
  EXPECT_DOUBLE_EQ(u::ms_to_s(20.0), 0.02);
  EXPECT_DOUBLE_EQ(u::s_to_ms(u::ms_to_s(3.25)), 3.25);
  EXPECT_DOUBLE_EQ(u::uV_to_V(24.0), 24e-6);
  EXPECT_DOUBLE_EQ(u::V_to_uV(u::uV_to_V(661.0)), 661.0);
  EXPECT_DOUBLE_EQ(u::us_to_s(35.0), 35e-6);
  EXPECT_DOUBLE_EQ(u::um_to_m(55.0), 55e-6);
  EXPECT_DOUBLE_EQ(u::mV_to_V(-90.0), -0.09);
  // 1 cm^3 is 1e-6 m^3; a 10 mm cube is 1 cm^3.
  EXPECT_DOUBLE_EQ(u::m3_to_cm3(u::mm_to_m(10) * u::mm_to_m(10) * u::mm_to_m(10)), 1.0);
  EXPECT_DOUBLE_EQ(u::mm2_to_m2(u::m2_to_mm2(0.5)), 0.5);
}

static_assert(myotwin::units::mm_to_m(1000.0) == 1.0, "conversions are usable at compile time");
