// `myotwin simulate SUBJECT.json -o OUT`: the EMG that the electrodes of `myotwin leadfield`
// record from the subject's motor units: MUAPs through the FEM lead fields (reciprocity), the
// motor-neuron drive (or real discharge times), EMG with noise, and the ground truth. Reads
// OUT/anatomy, OUT/mesh, OUT/forward/leadfields.h5; writes OUT/forward/muaps.h5, emg.h5,
// emg.mat, montages.h5 (with simulate.montages) and simulate_report.json (layout.hpp).

#include <iomanip>
#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/io/simulation_io.hpp"

namespace myotwin::app {

namespace {

struct SimulateOptions {
  SharedOptions shared;
  std::filesystem::path subject;
  bool no_mat = false;
};

void print_summary(const nlohmann::json& s, const RunConfig& config) {
  std::cout << "simulated " << s["n_units"].get<std::size_t>() << " units x "
            << s["n_channels"].get<std::size_t>() << " channels, "
            << config.simulate.drive.duration_s << " s at " << s["emg_fs_Hz"].get<double>()
            << " Hz\n";
  for (const auto& [name, count] : s["units_per_muscle"].items())
    std::cout << "  " << name << ": " << count.get<int>() << " units\n";
  const auto& t = s["time_s"];
  std::cout << std::setprecision(3) << "MUAP peak-to-peak (largest channel): "
            << s["muap_peak_to_peak_V"][0].get<double>() * 1e6 << " to "
            << s["muap_peak_to_peak_V"][1].get<double>() * 1e6 << " uV\n"
            << "time: MUAPs " << t["muaps"].get<double>() << " s, drive "
            << t["drive"].get<double>() << " s, EMG " << t["emg"].get<double>() << " s, total "
            << t["total"].get<double>() << " s\n";
  for (const auto& [name, f] : s["force"].items())
    std::cout << "force " << name << ": "
              << 100.0 * f["mean_second_half_fraction_of_max"].get<double>()
              << " % of maximum (mean of the second half), peak "
              << 100.0 * f["peak_fraction_of_max"].get<double>() << " %\n";
}

int run_simulate(const SimulateOptions& o) {
  // 1. Configuration, subject, and the earlier stages' files.
  Stopwatch watch;
  RunConfig config = begin_run(o.shared);
  const Layout out(o.shared.output);
  const auto model = load_subject_model(out, o.subject, config);
  // Grids and needles placed by muscle: where they went, as leadfield wrote it.
  if (!model->layout.placements.empty())
    config.resolved["electrodes"]["placed"] = forward::placements_json(model->layout);

  // 2. The memory the EMG needs and the time of the MUAPs and the EMG, estimated before
  // allocating (forward::estimate_simulation()).
  const auto& sim_params = config.simulate;
  check_run_estimate(
      forward::estimate_simulation(
          model->anatomy, static_cast<Eigen::Index>(model->layout.electrodes.size()), sim_params),
      "simulate");

  // 3. MUAPs, drive, EMG.
  ensure_output_dir(out[Output::forward_dir]);
  const forward::EmgSimulation sim = forward::simulate_emg(
      model->anatomy, model->transfer, model->lead_fields.lead_fields_V_per_A.cols(),
      model->skin_points_m, sim_params, config.seed, progress_display(o.shared));

  // 4. Write: the files, the report and the resolved configuration.
  const auto& grids = config.electrodes.grids;
  const bool ring = !grids.empty() && grids.front().wrap && grids.front().even_columns;
  forward::write_simulation({out[Output::muaps], out[Output::emg],
                             o.no_mat ? std::filesystem::path() : out[Output::emg_mat],
                             out[Output::montages]},
                            sim, model->layout, sim_params.montages, ring);
  nlohmann::json summary = forward::simulation_summary(sim);
  summary["n_channels"] = model->layout.electrodes.size();
  summary["fibre_points_moved_to_muscle"] = model->fibre_points_moved;
  summary["fibre_points_moved_max_mm"] = model->fibre_points_moved_max_m * 1e3;
  summary["duration_s"] = sim_params.drive.duration_s;
  summary["discharges"] =
      sim_params.discharges ? sim_params.discharges->string() : std::string("drive");
  summary["time_s"] = {{"muaps", sim.muap_time_s},
                       {"drive", sim.drive_time_s},
                       {"emg", sim.emg_time_s},
                       {"total", watch.elapsed_s()}};
  write_text_file(out[Output::simulate_report], summary.dump(2) + "\n");
  write_resolved_config(o.shared.output, config);

  // 5. Report.
  if (!o.shared.quiet)
    print_summary(summary, config);
  log_info("written: ", out[Output::emg].string(), ", muaps.h5", o.no_mat ? "" : ", emg.mat");
  return 0;
}

} // namespace

void add_simulate_command(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<SimulateOptions>();
  auto* cmd = app.add_subcommand(
      "simulate",
      "EMG of the subject's motor units at the electrodes of `myotwin leadfield`: MUAPs "
      "through the FEM lead fields, motor-neuron drive or real discharge times, noise at an "
      "SNR in dB; reads OUT/anatomy, OUT/mesh, OUT/forward/leadfields.h5, writes "
      "OUT/forward/muaps.h5, emg.h5, emg.mat; config section `simulate` (muscles, "
      "max_units_per_muscle, discharges, muap {fs_Hz, duration_ms}, drive {duration_s, rates in "
      "pps, profile}, emg {fs_Hz, snr_dB}, force {contraction times}, jitter_us)");
  cmd->add_option("SUBJECT", o->subject, "subject file (subject.json)")->required();
  cmd->add_flag("--no-mat", o->no_mat, "do not write emg.mat (MATLAB v5, DEMUSE layout)");
  add_shared_options(*cmd, o->shared, true);
  cmd->callback([&run, o] { run = [o] { return run_simulate(*o); }; });
}

} // namespace myotwin::app
