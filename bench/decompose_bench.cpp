// Accuracy and speed of the motor-unit decomposition (not run by ctest).
//
// Usage:
//   bench_decompose [--config RUN.json] OUT1/forward/emg.h5 [OUT2/forward/emg.h5 ...]
//       decomposes each simulated recording (myotwin simulate) and scores it against its truth
//       (tolerance 0.5 ms, lags up to 50 ms): one table row per file (SNR, units recruited,
//       accepted, identified at RoA >= 0.9, mean RoA of the matches, accepted units below 0.9
//       RoA, false units (best RoA < 0.3), units flagged for review, time, peak memory of the
//       process so far). --config takes the `decompose` section of a run config (defaults
//       otherwise), e.g. to set the acceptance of an earlier version beside today's.
//   bench_decompose --speed
//       times synthetic recordings of 64 channels x 20 s and 320 channels x 10 s at 2048 Hz.
// docs/benchmarks.md says how the simulated forearm recordings are made.

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <omp.h>
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include "myotwin/core/config.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/drive/drive.hpp"
#include "myotwin/forward/emg/emg.hpp"
#include "myotwin/forward/io/emg_file.hpp"
#include "myotwin/inversion/decompose.hpp"
#include "myotwin/inversion/score.hpp"

namespace mi = myotwin::inversion;

namespace {

/// Synthetic recording: n_units units with Gaussian-derivative MUAPs under a rows x cols grid.
myotwin::forward::EmgRecording synthetic(int rows, int cols, double duration_s, int n_units) {
  const double muap_fs = 10240.0, ied = 8e-3;
  const int n_ch = rows * cols, n_muap = static_cast<int>(0.025 * muap_fs);
  myotwin::Rng rng(77);
  std::vector<Eigen::MatrixXd> muaps;
  std::vector<double> thresholds;
  for (int u = 0; u < n_units; ++u) {
    auto r = rng.split(static_cast<std::uint64_t>(u));
    const double ux = r.uniform(0.0, (cols - 1) * ied), uy = r.uniform(0.0, (rows - 1) * ied);
    const double depth = r.uniform(5e-3, 15e-3), sigma = r.uniform(0.5e-3, 1.3e-3);
    Eigen::MatrixXd m(n_muap, n_ch);
    for (int c = 0; c < n_ch; ++c) {
      const double dx = (c % cols) * ied - ux, dy = (c / cols) * ied - uy;
      const double a = 1e-4 / std::pow(1.0 + (dx * dx + dy * dy) / (depth * depth), 1.5);
      for (int k = 0; k < n_muap; ++k) {
        const double t = k / muap_fs - 0.008 - std::abs(dy) / 4.0;
        m(k, c) = -a * t / sigma * std::exp(-0.5 * t * t / (sigma * sigma));
      }
    }
    muaps.push_back(m);
    thresholds.push_back(0.01 * (u + 1));
  }
  myotwin::forward::DriveParams drive;
  drive.duration_s = duration_s;
  drive.profile.type = myotwin::forward::ProfileType::constant;
  drive.profile.level = 0.15;
  const auto d = myotwin::forward::simulate_drive(drive, thresholds, rng.split(999));
  myotwin::forward::EmgParams p;
  p.snr_dB = 20.0;
  const auto emg =
      myotwin::forward::synthesize_emg(muaps, muap_fs, d.discharge_times_s, duration_s, p, rng);
  myotwin::forward::EmgRecording rec;
  rec.source = "synthetic " + std::to_string(n_ch) + " ch";
  rec.fs_Hz = emg.fs_Hz;
  rec.emg = emg.emg;
  return rec;
}

int speed() {
  std::printf("| recording | threads | extension | whitened dims | whiten [s] | iterations [s] | "
              "total [s] | units |\n|---|---|---|---|---|---|---|---|\n");
  for (const auto& [rows, cols, duration] :
       {std::tuple<int, int, double>{13, 5, 20.0}, {10, 32, 10.0}}) {
    const auto rec = synthetic(rows, cols, duration, 20);
    myotwin::Stopwatch watch;
    const auto d = mi::decompose(rec, {});
    std::printf("| %d ch x %.0f s | %d | %lld | %lld | %.1f | %.1f | %.1f | %zu |\n", rows * cols,
                duration, omp_get_max_threads(), static_cast<long long>(d.extension_factor),
                static_cast<long long>(d.stats.n_whitened), d.stats.time_whiten_s,
                d.stats.time_iterations_s, watch.elapsed_s(), d.units.size());
    std::fflush(stdout);
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  myotwin::set_log_level(myotwin::LogLevel::warning);
  if (argc == 2 && std::string(argv[1]) == "--speed")
    return speed();
  int first = 1;
  mi::DecomposeParams params;
  if (argc > 2 && std::string(argv[1]) == "--config") {
    const std::filesystem::path path = argv[2];
    auto json = nlohmann::json::parse(myotwin::read_text_file(path));
    myotwin::ConfigReader root(json, path.string(), path.parent_path());
    auto section = root.section("decompose");
    params = mi::read_decompose_params(section);
    first = 3;
  }
  if (argc <= first) {
    std::fprintf(stderr, "usage: bench_decompose [--config RUN.json] EMG.h5... | --speed\n");
    return 2;
  }
  std::printf("| file | SNR [dB] | recruited | accepted | identified (RoA >= 0.9) | mean RoA of "
              "matches | accepted with RoA < 0.9 | false (RoA < 0.3) | flagged for review | "
              "time [s] | peak MiB |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int i = first; i < argc; ++i) {
    const std::string path = argv[i];
    const auto rec = myotwin::forward::read_emg(path);
    const myotwin::H5Reader h5(path);
    const double snr = h5.contains("snr_dB") ? h5.read_double("snr_dB").mean() : NAN;
    const auto truth = mi::read_spike_trains(path);
    std::size_t recruited = 0;
    for (const auto& t : truth.samples)
      recruited += t.size() >= 10 ? 1 : 0; // at least the minimum of an accepted unit
    myotwin::Stopwatch watch;
    const auto d = mi::decompose(rec, params);
    const double seconds = watch.elapsed_s();
    mi::SpikeTrains dec{"decomposition", d.fs_Hz, {}, {}};
    for (std::size_t u = 0; u < d.units.size(); ++u) {
      dec.unit_id.push_back(static_cast<std::int64_t>(u));
      dec.samples.push_back(d.units[u].discharges);
    }
    const auto s = mi::score(dec, truth);
    if (!d.discharges_before_refinement.empty()) { // the search's units, before refinement
      mi::SpikeTrains pre{"before refinement", d.fs_Hz, {}, d.discharges_before_refinement};
      for (std::size_t u = 0; u < pre.samples.size(); ++u)
        pre.unit_id.push_back(static_cast<std::int64_t>(u));
      const auto s0 = mi::score(pre, truth);
      std::size_t good0 = 0, false0 = 0;
      for (const auto& m : s0.matches)
        good0 += m.agreement.roa >= 0.9 ? 1 : 0;
      for (Eigen::Index u = 0; u < s0.roa.rows(); ++u)
        false0 += s0.roa.row(u).maxCoeff() < 0.3 ? 1 : 0;
      std::fprintf(stderr,
                   "%s: before refinement %zu accepted, %zu identified (RoA >= 0.9), %zu false; "
                   "refinement %.1f s\n",
                   path.c_str(), pre.samples.size(), good0, false0, d.stats.time_refine_s);
    }
    std::size_t identified = 0;
    double roa_sum = 0.0;
    for (const auto& m : s.matches) {
      identified += m.agreement.roa >= 0.9 ? 1 : 0;
      roa_sum += m.agreement.roa;
    }
    const std::size_t bad = d.units.size() - identified;
    // The accepted units below 0.9 RoA, on stderr: what their statistics look like.
    std::vector<double> best(d.units.size(), 0.0);
    for (std::size_t u = 0; u < d.units.size(); ++u)
      for (Eigen::Index t = 0; t < s.roa.cols(); ++t)
        best[u] = std::max(best[u], s.roa(static_cast<Eigen::Index>(u), t));
    std::size_t n_false = 0, n_flagged = 0;
    for (std::size_t u = 0; u < d.units.size(); ++u) {
      n_false += best[u] < 0.3 ? 1 : 0;
      n_flagged += d.units[u].review.empty() ? 0 : 1;
      std::string flags;
      for (const auto& f : d.units[u].review)
        flags += (flags.empty() ? "" : ",") + f;
      std::fprintf(stderr,
                   "%s unit %zu: best RoA %.3f, SIL %.3f, PNR %.1f dB, CoV %.3f, local CoV %.3f, "
                   "%zu discharges, %lld doublets, %lld pauses, review [%s], found at %lld\n",
                   path.c_str(), u, best[u], d.units[u].sil, d.units[u].pnr_dB, d.units[u].cov_isi,
                   d.units[u].cov_isi_local, d.units[u].discharges.size(),
                   static_cast<long long>(d.units[u].n_doublets),
                   static_cast<long long>(d.units[u].n_pauses), flags.c_str(),
                   static_cast<long long>(d.units[u].found_at));
    }
    std::fprintf(
        stderr,
        "%s: %lld candidates (%lld fixed-point iterations, %lld converged), %lld low SIL, %lld "
        "few discharges, %lld irregular, %lld duplicates; whiten %.1f s, iterations %.1f s\n",
        path.c_str(), static_cast<long long>(d.stats.n_candidates),
        static_cast<long long>(d.stats.n_fixed_point_iterations),
        static_cast<long long>(d.stats.n_converged), static_cast<long long>(d.stats.n_low_sil),
        static_cast<long long>(d.stats.n_few_spikes), static_cast<long long>(d.stats.n_irregular),
        static_cast<long long>(d.stats.n_duplicates), d.stats.time_whiten_s,
        d.stats.time_iterations_s);
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("| %s | %.1f | %zu | %zu | %zu | %.3f | %zu | %zu | %zu | %.1f | %.0f |\n",
                path.c_str(), snr, recruited, d.units.size(), identified,
                s.matches.empty() ? 0.0 : roa_sum / static_cast<double>(s.matches.size()), bad,
                n_false, n_flagged, seconds, static_cast<double>(usage.ru_maxrss) / 1024.0);
    std::fflush(stdout);
  }
  return 0;
}
