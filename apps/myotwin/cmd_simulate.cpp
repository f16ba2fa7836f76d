// `myotwin simulate SUBJECT.json -o OUT`: the EMG that the electrodes of `myotwin leadfield`
// record from the subject's motor units: MUAPs through the FEM lead fields (reciprocity), the
// motor-neuron drive (or real discharge times), EMG with noise, and the ground truth. Reads
// OUT/anatomy, OUT/mesh, OUT/forward/leadfields.h5; writes OUT/forward/muaps.h5, emg.h5,
// emg.mat and simulate_report.json.
//
// Steps: 1. configuration, subject, the three earlier stages' files; 2. the lead fields (cache,
// same key as `myotwin leadfield`); 3. MUAPs, drive, EMG; 4. write; 5. report.

#include <iomanip>
#include <iostream>
#include <map>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/electrodes/electrodes.hpp"
#include "myotwin/forward/subject_model.hpp"

namespace myotwin::app {

void add_simulate_command(CLI::App& app, std::function<int()>& run) {
  auto options = std::make_shared<SharedOptions>();
  auto subject = std::make_shared<std::filesystem::path>();
  auto no_mat = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "simulate",
      "EMG of the subject's motor units at the electrodes of `myotwin leadfield`: MUAPs "
      "through the FEM lead fields, motor-neuron drive or real discharge times, noise at an "
      "SNR in dB; reads OUT/anatomy, OUT/mesh, OUT/forward/leadfields.h5, writes "
      "OUT/forward/muaps.h5, emg.h5, emg.mat; config section `simulate` (muscles, "
      "max_units_per_muscle, discharges, muap {fs_Hz, duration_ms}, drive {duration_s, rates in "
      "pps, profile}, emg {fs_Hz, snr_dB}, force {contraction times}, jitter_us)");
  cmd->add_option("SUBJECT", *subject, "subject file (subject.json)")->required();
  cmd->add_flag("--no-mat", *no_mat, "do not write emg.mat (MATLAB v5, DEMUSE layout)");
  add_shared_options(*cmd, *options, true);
  cmd->callback([&run, options, subject, no_mat] {
    run = [options, subject, no_mat] {
      // 1. Configuration, subject, and the earlier stages' files.
      Stopwatch watch;
      const RunConfig config = begin_run(*options);
      const auto dir = options->output / "forward";
      const auto model = forward::load_subject_forward_model(
          *subject, options->output, config.electrodes, config.volume_conductor.reference_node);
      const forward::ElectrodeLayout& layout = model->layout;

      // 2. The memory the EMG needs (noisy and clean EMG, noise, montages and the file
      // writers' copies: about six channels x samples arrays), checked before allocating.
      const double n_samples = config.simulate.drive.duration_s * config.simulate.emg.fs_Hz;
      check_memory_estimate(
          6.0 * 8.0 * static_cast<double>(layout.electrodes.size()) * n_samples, "simulate",
          "simulate.drive.duration_s = " + format_number(config.simulate.drive.duration_s) +
              " s x simulate.emg.fs_Hz = " + format_number(config.simulate.emg.fs_Hz) + " Hz x " +
              std::to_string(layout.electrodes.size()) + " channels");

      // 3. MUAPs, drive, EMG.
      ensure_output_dir(dir);
      const forward::EmgSimulation sim = forward::simulate_emg(
          model->anatomy, model->transfer, model->lead_fields.lead_fields_V_per_A.cols(),
          model->skin_points_m, config.simulate, config.seed, progress_display(*options));

      // 4. Write.
      const forward::ChannelLayout channels = forward::channel_layout(layout);
      const auto n_ch = static_cast<Eigen::Index>(layout.electrodes.size());
      // The excitation is the reference signal when it is sampled like the EMG.
      Eigen::VectorXd reference;
      if (!sim.excitation.empty() && sim.excitation_fs_Hz == sim.emg.fs_Hz &&
          static_cast<Eigen::Index>(sim.excitation.size()) == sim.emg.emg.cols())
        reference = Eigen::Map<const Eigen::VectorXd>(
            sim.excitation.data(), static_cast<Eigen::Index>(sim.excitation.size()));
      forward::write_muaps_h5(dir / "muaps.h5", sim);
      const forward::MuscleForce force{sim.force, sim.force_muscles};
      forward::write_emg_h5(dir / "emg.h5", sim.emg, sim.properties, channels, reference, force);
      bool grid_only = true;
      for (const auto& e : layout.electrodes)
        grid_only = grid_only && e.row >= 0;
      if (!*no_mat) {
        forward::ChannelLayout mat_channels = channels;
        if (!grid_only)
          mat_channels.grid_row_col.resize(0, 2); // needles: one SIG cell per channel
        forward::write_emg_mat(dir / "emg.mat", sim.emg, sim.properties, mat_channels, reference,
                               force);
      }
      // Montages of the first grid (its channels only; a wrapped grid with evenly spread
      // columns closes the ring).
      if (!config.simulate.montages.empty()) {
        MatrixXi64 grid_rc = channels.grid_row_col;
        const std::string group = layout.electrodes.empty() ? "" : layout.electrodes.front().group;
        for (Eigen::Index c = 0; c < n_ch; ++c)
          if (layout.electrodes[static_cast<std::size_t>(c)].group != group)
            grid_rc.row(c).setConstant(-1);
        const bool ring = !config.electrodes.grids.empty() &&
                          config.electrodes.grids.front().wrap &&
                          config.electrodes.grids.front().even_columns;
        H5Writer w(dir / "montages.h5");
        w.set_attributes("/", {{"fs_Hz", sim.emg.fs_Hz}, {"grid", group}});
        for (const auto m : config.simulate.montages) {
          const auto mw = forward::montage_weights(grid_rc, m, ring);
          const std::string name = forward::to_string(m);
          w.write(name + "/emg", mw.weights * sim.emg.emg, {{"unit", std::string("V")}});
          w.write(name + "/emg_clean", mw.weights * sim.emg.emg_clean,
                  {{"unit", std::string("V")}});
          w.write(name + "/anchor_row_col", mw.anchor_row_col);
        }
        w.commit();
      }
      std::map<std::string, int> per_muscle;
      for (const auto& m : sim.properties.muscle)
        ++per_muscle[m];
      // Per unit: the channel with the largest peak-to-peak, and its duration (the span where
      // |v| exceeds 5 % of its largest value).
      double p2p_lo = 1e300, p2p_hi = 0.0;
      nlohmann::json units = nlohmann::json::array();
      for (std::size_t u = 0; u < sim.muaps.size(); ++u) {
        const Eigen::MatrixXd& m = sim.muaps[u];
        Eigen::Index best = 0;
        const double p2p = (m.colwise().maxCoeff() - m.colwise().minCoeff()).maxCoeff(&best);
        p2p_lo = std::min(p2p_lo, p2p);
        p2p_hi = std::max(p2p_hi, p2p);
        const Eigen::VectorXd v = m.col(best);
        const double threshold = 0.05 * v.cwiseAbs().maxCoeff();
        Eigen::Index first = -1, last = -1;
        for (Eigen::Index n = 0; n < v.size(); ++n)
          if (std::abs(v[n]) > threshold) {
            first = first < 0 ? n : first;
            last = n;
          }
        units.push_back({{"unit_id", sim.properties.unit_id[u]},
                         {"muscle", sim.properties.muscle[u]},
                         {"n_fibres", sim.properties.n_fibres[static_cast<Eigen::Index>(u)]},
                         {"depth_mm", 1e3 * sim.properties.depth_m[static_cast<Eigen::Index>(u)]},
                         {"peak_to_peak_uV", 1e6 * p2p},
                         {"channel", best},
                         {"duration_ms", 1e3 * static_cast<double>(last - first) / sim.muap_fs_Hz},
                         {"n_discharges", sim.discharge_times_s[u].size()}});
        if (sim.contraction_time_s.size() > 0) {
          units.back()["twitch_peak_force"] = sim.twitch_peak_force[static_cast<Eigen::Index>(u)];
          units.back()["contraction_time_ms"] =
              1e3 * sim.contraction_time_s[static_cast<Eigen::Index>(u)];
        }
      }
      nlohmann::json summary = {{"n_units", sim.units.size()},
                                {"n_channels", n_ch},
                                {"units_per_muscle", per_muscle},
                                {"muap_fs_Hz", sim.muap_fs_Hz},
                                {"muap_tail_samples_dropped", sim.muap_samples_dropped},
                                {"emg_fs_Hz", sim.emg.fs_Hz},
                                {"duration_s", config.simulate.drive.duration_s},
                                {"muap_peak_to_peak_V", {p2p_lo, p2p_hi}},
                                {"discharges", config.simulate.discharges
                                                   ? config.simulate.discharges->string()
                                                   : std::string("drive")},
                                {"time_s",
                                 {{"muaps", sim.muap_time_s},
                                  {"drive", sim.drive_time_s},
                                  {"emg", sim.emg_time_s},
                                  {"total", watch.elapsed_s()}}}};
      // Force: per muscle, the mean over the second half of the run and the peak.
      nlohmann::json forces = nlohmann::json::object();
      for (Eigen::Index k = 0; k < sim.force.rows(); ++k) {
        const Eigen::VectorXd f = sim.force.row(k).transpose();
        const Eigen::Index half = f.size() / 2;
        forces[sim.force_muscles[static_cast<std::size_t>(k)]] = {
            {"mean_second_half_fraction_of_max", f.tail(f.size() - half).mean()},
            {"peak_fraction_of_max", f.maxCoeff()}};
      }
      summary["force"] = forces;
      summary["units"] = units;
      write_text_file(dir / "simulate_report.json", summary.dump(2) + "\n");
      write_resolved_config(options->output, config);

      // 5. Report.
      if (!options->quiet) {
        std::cout << "simulated " << sim.units.size() << " units x " << n_ch << " channels, "
                  << config.simulate.drive.duration_s << " s at " << sim.emg.fs_Hz << " Hz\n";
        for (const auto& [name, count] : per_muscle)
          std::cout << "  " << name << ": " << count << " units\n";
        std::cout << std::setprecision(3) << "MUAP peak-to-peak (largest channel): " << p2p_lo * 1e6
                  << " to " << p2p_hi * 1e6 << " uV\n"
                  << "time: MUAPs " << sim.muap_time_s << " s, drive " << sim.drive_time_s
                  << " s, EMG " << sim.emg_time_s << " s, total " << watch.elapsed_s() << " s\n";
        for (const auto& [name, f] : forces.items())
          std::cout << "force " << name << ": "
                    << 100.0 * f["mean_second_half_fraction_of_max"].get<double>()
                    << " % of maximum (mean of the second half), peak "
                    << 100.0 * f["peak_fraction_of_max"].get<double>() << " %\n";
      }
      log_info("written: ", (dir / "emg.h5").string(), ", muaps.h5", *no_mat ? "" : ", emg.mat");
      return 0;
    };
  });
}

} // namespace myotwin::app
