#include "myotwin/core/stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace myotwin {

double median(std::vector<double> v) {
  if (v.empty())
    return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double excess_kurtosis(const double* x, std::size_t n) {
  if (n < 2)
    return std::numeric_limits<double>::quiet_NaN();
  double mean = 0.0;
  for (std::size_t i = 0; i < n; ++i)
    mean += x[i];
  mean /= static_cast<double>(n);
  double m2 = 0.0;
  double m4 = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = x[i] - mean;
    const double d2 = d * d;
    m2 += d2;
    m4 += d2 * d2;
  }
  m2 /= static_cast<double>(n);
  m4 /= static_cast<double>(n);
  if (m2 <= 0.0)
    return std::numeric_limits<double>::quiet_NaN();
  return m4 / (m2 * m2) - 3.0;
}

double mean_abs(const std::vector<double>& v) {
  if (v.empty())
    return std::numeric_limits<double>::quiet_NaN();
  double s = 0.0;
  for (const double x : v)
    s += std::abs(x);
  return s / static_cast<double>(v.size());
}

} // namespace myotwin
