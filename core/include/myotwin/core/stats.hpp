#pragma once
/// \file stats.hpp
/// Descriptive statistics shared by the stages.

#include <cstddef>
#include <vector>

namespace myotwin {

/// The median of `v` (the mean of the two middle values for an even count); NaN when empty.
double median(std::vector<double> v);

/// The excess kurtosis m4 / m2^2 - 3 of x[0..n) about its mean (central moments, divided by n);
/// NaN when n < 2 or the variance is 0. A Gaussian gives 0, a Laplacian 3.
double excess_kurtosis(const double* x, std::size_t n);

/// The sample mean of |v|; NaN when empty.
double mean_abs(const std::vector<double>& v);

} // namespace myotwin
