#pragma once
// Delay between two signals by cross-correlation, for conduction-velocity checks.

#include <Eigen/Core>

namespace myotwin::testing {

/// Delay [s] of b relative to a by the cross-correlation peak, refined by a parabola.
inline double xcorr_delay_s(const Eigen::VectorXd& a, const Eigen::VectorXd& b, double fs_Hz,
                            int max_lag) {
  auto xc = [&](int lag) {
    double s = 0.0;
    for (Eigen::Index n = 0; n < a.size(); ++n) {
      const Eigen::Index m = n + lag;
      if (m >= 0 && m < b.size()) {
        s += a[n] * b[m];
      }
    }
    return s;
  };
  int best = 0;
  double best_v = -1e300;
  for (int lag = -max_lag; lag <= max_lag; ++lag) {
    const double v = xc(lag);
    if (v > best_v) {
      best_v = v;
      best = lag;
    }
  }
  const double ym = xc(best - 1), y0 = best_v, yp = xc(best + 1);
  const double shift = 0.5 * (ym - yp) / (ym - 2.0 * y0 + yp);
  return (best + shift) / fs_Hz;
}

} // namespace myotwin::testing
