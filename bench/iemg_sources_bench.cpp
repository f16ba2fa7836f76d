/// Where the power of a needle recording comes from (issue 26, item 3): for a run config of
/// `myotwin iemg` (the biceps samples of sample_data/iemg), the same muscle, drive and clinical
/// insertion as the command, then the clean channel split into its sources:
///   - the accepted units (the insertion rule's) and the background of all other active units;
///   - the recording contact alone (the reference at infinity) and the reference alone;
///   - the MUAPs' spikes (+-5 ms about each unit's main peak) and their tails (the rest: the
///     receding waves and the terminal waves at the tendon ends).
/// For each: its RMS, its share of the channel's power in 10-100 Hz and above 10 Hz, and the
/// 10-100 Hz fraction of its own spectrum; and the accepted MUAPs' durations.
/// Usage: bench_iemg_sources CONFIG.json [CONFIG.json ...]

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "myotwin/core/config.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/signal.hpp"
#include "myotwin/forward/needle/clinical.hpp"
#include "myotwin/forward/needle/iemg_run.hpp"

using namespace myotwin;
using namespace myotwin::forward;

namespace {

/// Power of x [V^2] in [lo, hi) Hz (Welch, 4096-sample Hann segments).
double band_power(const Eigen::VectorXd& x, double fs, double lo, double hi) {
  const Eigen::Index seg = 4096;
  const Eigen::MatrixXd psd = signal::welch_psd(x.transpose(), fs, seg);
  const double df = fs / static_cast<double>(seg);
  double p = 0.0;
  for (Eigen::Index k = 0; k < psd.cols(); ++k) {
    const double f = static_cast<double>(k) * df;
    if (f >= lo && f < hi)
      p += psd(0, k) * df;
  }
  return p;
}

/// The EMG of `muaps` (columns of phi: contacts) placed at the discharges, channel weights w:
/// the clean channel 0, without jitter (the sources' split is of the mean shapes).
Eigen::VectorXd channel(const std::vector<UnitMuap>& muaps,
                        const std::vector<std::vector<double>>& times, double duration, double fs,
                        const Eigen::RowVectorXd& w) {
  const IemgEmg emg = synthesize_iemg(muaps, times, duration, fs, 0.0, Rng(1));
  return (w * emg.clean_V).transpose();
}

void row(const char* name, const Eigen::VectorXd& x, const Eigen::VectorXd& total, double fs) {
  const double p_lo = band_power(x, fs, 10.0, 100.0);
  const double p_all = band_power(x, fs, 10.0, 0.5 * fs);
  const double t_lo = band_power(total, fs, 10.0, 100.0);
  const double t_all = band_power(total, fs, 10.0, 0.5 * fs);
  const double rms = std::sqrt((x.array() - x.mean()).square().mean());
  std::printf("| %s | %.1f uV | %.1f %% | %.1f %% | %.2f %% |\n", name, 1e6 * rms,
              100.0 * p_lo / t_lo, 100.0 * p_all / t_all, 100.0 * p_lo / p_all);
}

void run(const std::string& path) {
  const auto t0 = std::chrono::steady_clock::now();
  const nlohmann::json j = nlohmann::json::parse(read_text_file(path));
  ConfigReader r(j.at("iemg"), path);
  const IemgConfig c = read_iemg_config(r);
  const Rng rng(j.value("seed", std::uint64_t{1993}));
  // 1. As run_iemg: the muscle, its real fibres, the drive, the clinical insertion.
  IemgMuscle muscle = cylinder_muscle(c.cylinder, c.params.end_plate_percent / 100.0, rng.split(1));
  spread_sub_fibres(muscle, c.params, c.branching, rng.split(2));
  std::vector<double> thresholds;
  for (const auto& u : muscle.pool.units)
    thresholds.push_back(u.recruitment_threshold);
  const DriveResult drv = simulate_drive(c.drive, thresholds, rng.split(3));
  std::vector<std::int64_t> active;
  std::vector<std::vector<double>> times;
  for (std::size_t u = 0; u < muscle.pool.units.size(); ++u)
    if (!drv.discharge_times_s[u].empty()) {
      active.push_back(static_cast<std::int64_t>(u));
      times.push_back(drv.discharge_times_s[u]);
    }
  IemgElectrodes needle = c.needle;
  const InsertionResult ins = clinical_insertion(muscle, active, c.needle, c.params, c.insertion);
  needle.position_m = ins.tries[ins.chosen].position_m;
  needle.n_positions = 1;
  const std::vector<std::int64_t>& accepted = ins.tries[ins.chosen].accepted;
  // 2. The muscle as the needle finds it, the MUAPs of every active unit.
  const NeedleBody body = iemg_needle_body(needle, muscle.centre_m, 0);
  const auto tb = std::chrono::steady_clock::now();
  const std::int64_t n_body = apply_needle_body(muscle, body, needle.body_mode);
  const double body_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - tb).count();
  const auto tm = std::chrono::steady_clock::now();
  const auto surfaces = iemg_contact_surfaces(needle, muscle.centre_m, 0);
  IemgParams p = c.params;
  p.jitter_s = 0.0;
  const auto muaps = iemg_muaps(muscle, active, surfaces, p);
  std::printf("the needle's body: %.3f s; the MUAPs of the %zu active units: %.2f s\n", body_s,
              active.size(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - tm).count());
  const Eigen::MatrixXd w = iemg_channel_weights(needle);
  const double fs = p.fs_Hz;
  const double dur = c.drive.duration_s;
  // 3. The sources.
  std::vector<UnitMuap> near, far, spikes, tails;
  std::vector<std::vector<double>> t_near, t_far;
  std::vector<double> durations;
  for (std::size_t i = 0; i < muaps.size(); ++i) {
    const bool is_near =
        std::find(accepted.begin(), accepted.end(), muaps[i].unit) != accepted.end();
    (is_near ? near : far).push_back(muaps[i]);
    (is_near ? t_near : t_far).push_back(times[i]);
    const Eigen::VectorXd ch = muaps[i].phi_V * w.row(0).transpose();
    if (is_near)
      durations.push_back(muap_features(ch, fs).duration_s);
    Eigen::Index peak = 0;
    ch.cwiseAbs().maxCoeff(&peak);
    const auto half = static_cast<Eigen::Index>(std::round(5e-3 * fs));
    UnitMuap s = muaps[i];
    UnitMuap t = muaps[i];
    for (Eigen::Index n = 0; n < s.phi_V.rows(); ++n) {
      const bool in = std::abs(n - peak) <= half;
      (in ? t : s).phi_V.row(n).setZero();
      (in ? t : s).dphi_V_per_s.row(n).setZero();
      (in ? t : s).d2phi_V_per_s2.row(n).setZero();
    }
    spikes.push_back(s);
    tails.push_back(t);
  }
  const Eigen::VectorXd total = channel(muaps, times, dur, fs, w.row(0));
  std::printf("\n%s: %s needle at [%.1f, %.1f, %.1f] mm (step %ld), %zu active units, %zu "
              "accepted, %ld fibres %s by the needle's body\n",
              path.c_str(), to_string(needle.kind).c_str(), 1e3 * needle.position_m.x(),
              1e3 * needle.position_m.y(), 1e3 * needle.position_m.z(),
              static_cast<long>(ins.tries[ins.chosen].step), active.size(), accepted.size(),
              static_cast<long>(n_body),
              needle.body_mode == NeedleBodyMode::exclude ? "cut" : "displaced");
  std::printf("| source | RMS | share of the channel's 10-100 Hz power | share of its power > 10 "
              "Hz | its own 10-100 Hz fraction |\n|---|---|---|---|---|\n");
  row("channel (all active units)", total, total, fs);
  if (!near.empty())
    row("accepted units", channel(near, t_near, dur, fs, w.row(0)), total, fs);
  if (!far.empty())
    row("background: the other active units", channel(far, t_far, dur, fs, w.row(0)), total, fs);
  Eigen::RowVectorXd rec = Eigen::RowVectorXd::Zero(w.cols());
  rec[0] = 1.0;
  Eigen::RowVectorXd ref = Eigen::RowVectorXd::Zero(w.cols());
  ref[w.cols() - 1] = 1.0;
  row("recording contact alone", channel(muaps, times, dur, fs, rec), total, fs);
  row("reference alone", channel(muaps, times, dur, fs, ref), total, fs);
  row("spikes (+-5 ms of each main peak)", channel(spikes, times, dur, fs, w.row(0)), total, fs);
  row("tails (the rest of each MUAP)", channel(tails, times, dur, fs, w.row(0)), total, fs);
  // The MUAPs as a clinician reads them: every active unit's channel MUAP.
  int n500 = 0;
  int n5 = 0;
  double max_p2p = 0.0;
  for (const auto& mu : muaps) {
    const MuapFeatures f = muap_features(mu.phi_V * w.row(0).transpose(), fs);
    n500 += f.peak_to_peak_V >= 500e-6 ? 1 : 0;
    n5 += f.peak_to_peak_V > 5e-3 ? 1 : 0;
    max_p2p = std::max(max_p2p, f.peak_to_peak_V);
    if (std::find(accepted.begin(), accepted.end(), mu.unit) != accepted.end())
      std::printf("accepted unit %ld: p2p %.0f uV, rise %.2f ms, half-width %.2f ms, peak interval "
                  "%.2f ms, duration %.1f ms, phases %ld, turns %ld\n",
                  static_cast<long>(mu.unit), 1e6 * f.peak_to_peak_V, 1e3 * f.rise_time_s,
                  1e3 * f.half_width_s, 1e3 * f.peak_interval_s, 1e3 * f.duration_s,
                  static_cast<long>(f.n_phases), static_cast<long>(f.n_turns));
  }
  std::printf("active units >= 500 uV: %d, above 5 mV: %d, largest %.2f mV\n", n500, n5,
              1e3 * max_p2p);
  std::sort(durations.begin(), durations.end());
  if (!durations.empty())
    std::printf("accepted MUAPs' durations (2.5 %% of p2p): median %.1f ms (%.1f-%.1f); %.0f s\n",
                1e3 * durations[durations.size() / 2], 1e3 * durations.front(),
                1e3 * durations.back(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_iemg_sources CONFIG.json [CONFIG.json ...]\n");
    return 2;
  }
  try {
    for (int i = 1; i < argc; ++i)
      run(argv[i]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
