/// Timing of forward::synthesize_emg (issue 6): 10 s at 2048 Hz from MUAPs of 25 ms at 10240 Hz,
/// noisy, for a small (20 units x 64 channels) and the target (100 units x 320 channels) case.
/// Prints a table of wall-clock seconds (best of `reps`) at the current OpenMP thread count.
/// Usage: bench_emg [reps = 3]

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include <omp.h>

#include <Eigen/Core>

#include "myotwin/core/random.hpp"
#include "myotwin/forward/emg/emg.hpp"

using namespace myotwin;

namespace {

std::vector<Eigen::MatrixXd> make_muaps(int n_units, Eigen::Index n_channels) {
  const Eigen::Index n = 256; // 25 ms at 10240 Hz
  std::vector<Eigen::MatrixXd> muaps;
  for (int u = 0; u < n_units; ++u) {
    Eigen::MatrixXd m(n, n_channels);
    for (Eigen::Index j = 0; j < n; ++j)
      for (Eigen::Index c = 0; c < n_channels; ++c) {
        const double x = (static_cast<double>(j) / 10240.0 - 0.010 - 0.00005 * c) / 0.0015;
        m(j, c) = 1e-6 * (1.0 + u) * -x * std::exp(0.5 - 0.5 * x * x);
      }
    muaps.push_back(m);
  }
  return muaps;
}

/// Regular trains at 8 .. 25 Hz with a jitter so discharges fall between samples.
std::vector<std::vector<double>> make_trains(int n_units, double duration_s) {
  std::vector<std::vector<double>> trains(static_cast<std::size_t>(n_units));
  for (int u = 0; u < n_units; ++u) {
    const double rate = 8.0 + 17.0 * u / std::max(1, n_units - 1);
    for (double t = 0.0123 + 0.0017 * u; t < duration_s; t += 1.0 / rate)
      trains[static_cast<std::size_t>(u)].push_back(t);
  }
  return trains;
}

} // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  const double duration_s = 10.0;
  struct Case {
    int units;
    Eigen::Index channels;
  };
  const Case cases[] = {{20, 64}, {100, 320}};
  std::printf("synthesize_emg, %.0f s at 2048 Hz, MUAP 256 samples at 10240 Hz, %d thread(s)\n",
              duration_s, omp_get_max_threads());
  std::printf("%8s %10s %12s %12s\n", "units", "channels", "discharges", "best [s]");
  for (const auto& cs : cases) {
    const auto muaps = make_muaps(cs.units, cs.channels);
    const auto trains = make_trains(cs.units, duration_s);
    std::size_t n_disc = 0;
    for (const auto& t : trains)
      n_disc += t.size();
    double best = std::numeric_limits<double>::infinity();
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto res =
          forward::synthesize_emg(muaps, 10240.0, trains, duration_s, forward::EmgParams{}, Rng(1));
      const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
      best = std::min(best, dt.count());
      if (res.emg.cols() == 0)
        return 1;
    }
    std::printf("%8d %10lld %12zu %12.3f\n", cs.units, static_cast<long long>(cs.channels), n_disc,
                best);
  }
  return 0;
}
