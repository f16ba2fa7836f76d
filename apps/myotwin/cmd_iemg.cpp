// `myotwin iemg [CONFIG] -o OUT`: intramuscular EMG (needle arrays, needle trajectories, fine
// wires) of one muscle, after Akhmadeev et al. 2020 (forward/needle/iemg_run.hpp): the muscle of
// an `myotwin anatomy` output (or a cylinder), every real fibre's potential in an infinite
// anisotropic medium, two-layer nerve branching, Fuglevand drive, neuromuscular jitter, noise.
// The configuration is the run config (sections `iemg` and `noise`, docs/iemg.md), given as
// CONFIG or --config. Writes OUT/iemg/muaps.h5, emg.h5, emg.mat (one more pair per extra
// trajectory position), truth.h5, iemg_report.json and OUT/resolved_config.json.

#include <iomanip>
#include <iostream>

#include <omp.h>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/needle/iemg_run.hpp"

namespace myotwin::app {

namespace {

struct IemgOptions {
  SharedOptions shared;
  std::filesystem::path config; ///< the positional CONFIG (same as --config)
  bool no_mat = false;
};

int run_iemg(IemgOptions o) {
  Stopwatch watch;
  if (!o.config.empty()) {
    if (!o.shared.config.empty() && o.shared.config != o.config)
      throw BadInput("iemg: CONFIG " + o.config.string() + " and --config " +
                     o.shared.config.string() + ": give the run configuration once");
    o.shared.config = o.config;
  }
  const RunConfig config = begin_run(o.shared);
  const forward::IemgRunReport r =
      forward::run_iemg(config.iemg, Rng(config.seed), o.shared.output / "iemg", !o.no_mat,
                        progress_display(o.shared));
  write_resolved_config(o.shared.output, config);
  if (!o.shared.quiet)
    std::cout << std::setprecision(4) << "iemg: " << r.muscle << ", " << r.n_units << " units ("
              << r.n_real_fibres << " real fibres), " << r.n_positions << " position(s) x "
              << r.n_channels << " channels, " << config.iemg.drive.duration_s << " s at "
              << config.iemg.params.fs_Hz << " Hz on " << omp_get_max_threads() << " threads\n"
              << "MUAP peak-to-peak (largest channel): " << r.min_peak_to_peak_uV << " to "
              << r.max_peak_to_peak_uV << " uV\n"
              << "time: MUAPs " << r.muap_time_s << " s, drive " << r.drive_time_s << " s, EMG "
              << r.emg_time_s << " s, total " << watch.elapsed_s() << " s\n";
  return 0;
}

} // namespace

void add_iemg_command(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<IemgOptions>();
  auto* cmd = app.add_subcommand(
      "iemg",
      "intramuscular EMG of one muscle (needle array, trajectory or fine wires) from the run "
      "config's sections `iemg` (fs_Hz, jitter_us, units, `anatomy` {dir, muscle} or `cylinder`, "
      "`needle`, `nerve_branching`, `drive`) and `noise`; `myotwin config defaults --docs` lists "
      "every key; writes OUT/iemg/muaps.h5, emg.h5, emg.mat, truth.h5, iemg_report.json");
  cmd->add_option("CONFIG", o->config, "run configuration (JSON; same as --config)");
  cmd->add_flag("--no-mat", o->no_mat, "do not write emg.mat (MATLAB v5, DEMUSE layout)");
  add_shared_options(*cmd, o->shared, true);
  cmd->callback([&run, o] { run = [o] { return run_iemg(*o); }; });
}

} // namespace myotwin::app
