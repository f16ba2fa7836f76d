/// Timing of the intramuscular EMG (issue 7) on the case of the Python port of Akhmadeev et al.
/// 2020: MUAPs of 100 units with 58,782 real fibres (a cylinder of radius 7.31 mm at 350 fibres
/// per mm^2) for 4 needle contacts at 0.01 mm and 10240 Hz, then 10 s of EMG with 35 us jitter;
/// and the error of the lumped far field against the all-fine sum for a few coarse steps.
/// Prints tables of wall-clock seconds at 1 and 2 OpenMP threads (or those given).
/// The MUAPs are timed with point contacts and with disc contacts of 0.07 mm^2 (issue 26).
/// Usage: bench_iemg [threads...]

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include <omp.h>

#include "myotwin/core/random.hpp"
#include "myotwin/forward/drive/drive.hpp"
#include "myotwin/forward/needle/iemg.hpp"

using namespace myotwin;
using namespace myotwin::forward;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

int main(int argc, char** argv) {
  std::vector<int> threads;
  for (int i = 1; i < argc; ++i) {
    threads.push_back(std::atoi(argv[i]));
  }
  if (threads.empty()) {
    threads = {1, 2};
  }
  // 1. Accuracy of the lumped far field (coarse step) against the all-fine recursion, which
  //    equals the direct finite-volume sum to 1e-12 (tests/forward/test_iemg.cpp).
  {
    FibrePath f;
    f.polyline_m.resize(2, 3);
    f.polyline_m << 0, 0, 0, 0, 0, 0.12;
    f.geometry.end_plate_m = 0.061;
    Eigen::MatrixX3d c(4, 3);
    c << 50e-6, 0, 0.08, 0.3e-3, 0, 0.08, 2e-3, 0, 0.08, 8e-3, 0, 0.1;
    const AnisotropicMedium medium{0.33, 0.063, 27.5e-6};
    FibrePotentialParams fine;
    fine.near_radius_m = std::numeric_limits<double>::infinity();
    const auto ref = fibre_potentials(f, c, medium, fine, 10240.0, 0.0, 330, false);
    std::printf("lumped far field: max error / peak per contact (50 um, 0.3 mm, 2 mm, 8 mm)\n");
    std::printf("| coarse step | near radius | 50 um | 0.3 mm | 2 mm | 8 mm | time per fibre "
                "and contact |\n|---|---|---|---|---|---|---|\n");
    for (const double h : {0.5e-3, 1e-3, 2e-3}) {
      FibrePotentialParams p;
      p.coarse_step_m = h;
      const auto t0 = std::chrono::steady_clock::now();
      FibrePotentials r;
      for (int k = 0; k < 200; ++k) {
        r = fibre_potentials(f, c, medium, p, 10240.0, 0.0, 330, true);
      }
      const double us = seconds_since(t0) / 200.0 / 4.0 * 1e6;
      std::printf("| %.1f mm | %.1f mm |", h * 1e3, p.near_radius_m * 1e3);
      for (int j = 0; j < 4; ++j) {
        std::printf(" %.1e |", (r.phi_V.col(j) - ref.phi_V.col(j)).cwiseAbs().maxCoeff() /
                                   ref.phi_V.col(j).cwiseAbs().maxCoeff());
      }
      std::printf(" %.1f us |\n", us);
    }
  }
  // 2. The port's case.
  IemgParams params;
  CylinderMuscleParams cyl;
  cyl.radius_m = std::sqrt(58782.0 / (350e6 * M_PI));
  cyl.length_m = 0.12;
  cyl.motor_units.n_units = 100;
  auto t0 = std::chrono::steady_clock::now();
  IemgMuscle m = cylinder_muscle(cyl, 0.5, Rng(1));
  spread_sub_fibres(m, params, NerveBranchingParams{}, Rng(2));
  const double build_s = seconds_since(t0);
  IemgElectrodes e;
  e.position_m << 1e-3, 0.5e-3, 20e-3;
  // Point contacts, and the same contacts as discs of 0.3 mm (0.07 mm^2, a concentric core's
  // area) integrated over their surface.
  IemgElectrodes discs = e;
  discs.contact_diameter_m = 0.3e-3;
  const std::vector<std::pair<const char*, std::vector<ContactSurface>>> cases{
      {"points", iemg_contact_surfaces(e, m.centre_m, 0)},
      {"discs 0.3 mm", iemg_contact_surfaces(discs, m.centre_m, 0)}};
  std::vector<double> thresholds;
  for (const auto& u : m.pool.units) {
    thresholds.push_back(u.recruitment_threshold);
  }
  DriveParams drive;
  drive.duration_s = 10.0;
  drive.profile.type = ProfileType::constant;
  std::printf("\n%zu real fibres in %zu units (muscle built and fibres spread in %.2f s), 4 "
              "contacts, %.0f Hz, dz %.2f mm\n",
              m.fibres.size(), m.pool.units.size(), build_s, params.fs_Hz, params.fibre.dz_m * 1e3);
  std::printf("| contacts | threads | MUAPs (100 units) | jittered fibres | EMG 10 s at 10 %% | "
              "discharges | EMG 10 s at 30 %% | discharges |\n|---|---|---|---|---|---|---|---|\n");
  for (const auto& [name, contacts] : cases)
    for (const int n : threads) {
      omp_set_num_threads(n);
      t0 = std::chrono::steady_clock::now();
      const auto muaps = iemg_muaps(m, {}, contacts, params);
      const double muap_s = seconds_since(t0);
      std::size_t n_jit = 0;
      for (const auto& mu : muaps) {
        n_jit += mu.jitter_fibres.size();
      }
      std::printf("| %s | %d | %.2f s | %zu |", name, n, muap_s, n_jit);
      for (const double level : {0.1, 0.3}) {
        drive.profile.level = level;
        const auto d = simulate_drive(drive, thresholds, Rng(3));
        std::size_t n_dis = 0;
        for (const auto& t : d.discharge_times_s) {
          n_dis += t.size();
        }
        t0 = std::chrono::steady_clock::now();
        const auto emg = synthesize_iemg(muaps, d.discharge_times_s, drive.duration_s, params.fs_Hz,
                                         params.jitter_s, Rng(4));
        std::printf(" %.2f s | %zu |", seconds_since(t0), n_dis);
      }
      std::printf("\n");
    }
  return 0;
}
