// `myotwin iemg CONFIG -o OUT`: intramuscular EMG (needle arrays, needle trajectories, fine
// wires) of one muscle, after Akhmadeev et al. 2020: the muscle of an `myotwin anatomy` output
// (or a cylinder given in the config), every real fibre's potential in an infinite anisotropic
// medium, two-layer nerve branching, Fuglevand drive, neuromuscular jitter, noise. Writes
// OUT/iemg/muaps.h5, emg.h5, emg.mat (one more pair per extra trajectory position), truth.h5,
// iemg_report.json and OUT/resolved_config.json.
//
// Steps: 1. configuration; 2. the muscle and its real fibres; 3. the drive; 4. per needle
// position: contacts, MUAPs, EMG, channels, noise; 5. write; 6. report.

#include <iomanip>
#include <iostream>
#include <numeric>

#include <omp.h>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/drive.hpp"
#include "myotwin/forward/emg_io.hpp"
#include "myotwin/forward/iemg.hpp"
#include "myotwin/forward/noise.hpp"

namespace myotwin::app {

namespace {

/// Peak-to-peak of the largest channel, that channel, and its duration (the span where it
/// departs from its first value by more than 2.5 % of its peak-to-peak) [V, -, s].
std::tuple<double, Eigen::Index, double> muap_summary(const Eigen::MatrixXd& channels_V,
                                                      double fs_Hz) {
  const Eigen::RowVectorXd p2p = channels_V.colwise().maxCoeff() - channels_V.colwise().minCoeff();
  Eigen::Index best = 0;
  const double peak = p2p.maxCoeff(&best);
  Eigen::Index first = -1;
  Eigen::Index last = -1;
  for (Eigen::Index n = 0; n < channels_V.rows(); ++n) {
    if (std::abs(channels_V(n, best) - channels_V(0, best)) > 0.025 * peak) {
      first = first < 0 ? n : first;
      last = n;
    }
  }
  return {peak, best, first < 0 ? 0.0 : static_cast<double>(last - first) / fs_Hz};
}

} // namespace

void add_iemg_command(CLI::App& app, std::function<int()>& run) {
  auto options = std::make_shared<SharedOptions>();
  auto config_path = std::make_shared<std::filesystem::path>();
  auto no_mat = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "iemg",
      "intramuscular EMG of one muscle (needle array, trajectory or fine wires): sections `iemg` "
      "(fs_Hz, spatial_resolution_mm, end_plate_percent, jitter_us, units, and `anatomy` {dir, "
      "muscle} or `cylinder` {radius_mm, length_mm, ...}), `nerve_branching` (axon_cv_m_per_s, "
      "terminal_cv_m_per_s), `electrodes` (n_contacts, spacing_mm, position_mm, angles_deg, "
      "differentiation, trajectory), `drive` (duration_s, profile), `noise` (type, snr_dB); "
      "writes OUT/iemg/muaps.h5, emg.h5, emg.mat, truth.h5, iemg_report.json");
  cmd->add_option("CONFIG", *config_path, "configuration (JSON)")->required();
  cmd->add_flag("--no-mat", *no_mat, "do not write emg.mat (MATLAB v5, DEMUSE layout)");
  add_shared_options(*cmd, *options, true);
  cmd->callback([&run, options, config_path, no_mat] {
    run = [options, config_path, no_mat] {
      // 1. Configuration (strict: unknown keys are errors).
      Stopwatch watch;
      set_log_level(options->quiet     ? LogLevel::warning
                    : options->verbose ? LogLevel::debug
                                       : LogLevel::info);
      ConfigReader reader = ConfigReader::from_file(*config_path);
      std::uint64_t seed = reader.optional<std::uint64_t>("seed", default_seed);
      if (options->seed) {
        seed = *options->seed;
      }
      int threads =
          static_cast<int>(reader.optional<std::int64_t>("threads", 0, int_in_range(0, 4096)));
      if (options->threads > 0) {
        threads = options->threads;
      }
      if (threads == 0) {
        threads = std::max(1, omp_get_num_procs() - 1); // all cores but one
      }
      omp_set_num_threads(threads);
      const bool show_progress = reader.optional<bool>("progress", true) && !options->quiet;
      ConfigReader iemg_section = reader.section("iemg");
      forward::IemgParams params = forward::read_iemg_params(iemg_section);
      const bool from_anatomy = iemg_section.has("anatomy");
      if (from_anatomy == iemg_section.has("cylinder")) {
        iemg_section.fail("anatomy", "give exactly one muscle source: `anatomy` {dir, muscle} "
                                     "or `cylinder` {radius_mm, length_mm, ...}");
      }
      std::filesystem::path anatomy_dir;
      std::string muscle_name;
      forward::CylinderMuscleParams cylinder;
      if (from_anatomy) {
        ConfigReader a = iemg_section.section("anatomy");
        anatomy_dir = a.required_path("dir");
        muscle_name = a.required<std::string>("muscle");
      } else {
        ConfigReader c = iemg_section.section("cylinder");
        cylinder = forward::read_cylinder_params(c);
      }
      ConfigReader nb = reader.section("nerve_branching");
      const forward::NerveBranchingParams branching = forward::read_nerve_branching_params(nb);
      ConfigReader el = reader.section("electrodes");
      const forward::IemgElectrodes electrodes = forward::read_iemg_electrodes(el);
      ConfigReader dr = reader.section("drive");
      const forward::DriveParams drive = forward::read_drive_params(dr);
      ConfigReader no = reader.section("noise");
      const forward::NoiseParams noise = forward::read_noise_params(no);
      reader.finish();
      nlohmann::json resolved = reader.resolved();
      resolved["seed"] = seed;
      resolved["threads"] = threads;
      resolved["version"] = version();
      const Rng rng(seed);

      // 2. The muscle and its real fibres.
      forward::IemgMuscle muscle;
      if (from_anatomy) {
        const anatomy::SubjectAnatomy anatomy = anatomy::read_subject_anatomy(anatomy_dir);
        std::string names;
        for (const auto& m : anatomy.muscles) {
          if (m.fibres.name == muscle_name) {
            muscle.name = muscle_name;
            muscle.model_fibres = m.fibres;
            muscle.pool = m.pool;
            muscle.centre_m = m.fibres.plane_centre_m;
          }
          names += (names.empty() ? "" : ", ") + m.fibres.name;
        }
        if (muscle.name.empty()) {
          throw BadInput(config_path->string() + ": iemg.anatomy.muscle = \"" + muscle_name +
                         "\": not a muscle of " + anatomy_dir.string() + " (muscles: " + names +
                         ")");
        }
      } else {
        muscle = forward::cylinder_muscle(cylinder, params.end_plate_percent / 100.0, rng.split(1));
      }
      forward::spread_sub_fibres(muscle, params, branching, rng.split(2));
      log_info("muscle ", muscle.name, ": ", muscle.pool.units.size(), " units, ",
               muscle.model_fibres.fibres.size(), " model fibres, ", muscle.fibres.size(),
               " real fibres");

      // 3. The drive of the whole pool; the listed units' discharges.
      std::vector<double> thresholds;
      for (const auto& u : muscle.pool.units) {
        thresholds.push_back(u.recruitment_threshold);
      }
      const double t_drive = watch.elapsed_s();
      const forward::DriveResult drv = forward::simulate_drive(drive, thresholds, rng.split(3));
      std::vector<std::int64_t> units = params.units;
      if (units.empty()) {
        units.resize(muscle.pool.units.size());
        std::iota(units.begin(), units.end(), 0);
      }
      std::vector<std::vector<double>> times;
      for (const auto u : units) {
        if (u >= static_cast<std::int64_t>(muscle.pool.units.size())) {
          throw BadInput(config_path->string() + ": iemg.units contains " + std::to_string(u) +
                         ": the muscle has " + std::to_string(muscle.pool.units.size()) +
                         " units (0-based, recruitment order)");
        }
        times.push_back(drv.discharge_times_s[static_cast<std::size_t>(u)]);
      }
      const double drive_time_s = watch.elapsed_s() - t_drive;

      // 4. Per needle position: contacts, MUAPs, EMG, channels, noise.
      const auto dir = options->output / "iemg";
      ensure_output_dir(dir);
      const Eigen::MatrixXd weights = forward::iemg_channel_weights(electrodes);
      const std::int64_t n_positions =
          electrodes.kind == forward::IemgElectrodeKind::array ? electrodes.n_positions : 1;
      const ProgressCallback progress =
          show_progress ? progress_display(*options) : ProgressCallback{};
      H5Writer muap_file(dir / "muaps.h5");
      muap_file.set_attributes(
          "/", {{"fs_Hz", params.fs_Hz},
                {"muscle", muscle.name},
                {"n_positions", n_positions},
                {"differentiation", forward::to_string(electrodes.differentiation)}});
      H5Writer truth(dir / "truth.h5");
      nlohmann::json report_units = nlohmann::json::array();
      double muap_time_s = 0.0;
      double emg_time_s = 0.0;
      for (std::int64_t p = 0; p < n_positions; ++p) {
        const Eigen::MatrixX3d contacts = forward::iemg_contacts(electrodes, muscle.centre_m, p);
        const double t0 = watch.elapsed_s();
        const auto muaps = forward::iemg_muaps(muscle, units, contacts, params, progress);
        const double t1 = watch.elapsed_s();
        const forward::IemgEmg emg = forward::synthesize_iemg(
            muaps, times, drive.duration_s, params.fs_Hz, params.jitter_s, rng.split(4));
        forward::EmgResult result;
        result.fs_Hz = params.fs_Hz;
        result.emg_clean = weights * emg.clean_V;
        const forward::NoiseResult nr =
            forward::make_noise(result.emg_clean, params.fs_Hz, noise,
                                rng.split(5).split(static_cast<std::uint64_t>(p)));
        result.emg = result.emg_clean + nr.noise_V;
        result.snr_dB = nr.snr_dB;
        result.noise_rms_V = nr.noise_rms_V;
        const auto n_out = result.emg.cols();
        for (const auto& t : times) {
          std::vector<std::int64_t> s;
          for (const double x : t) {
            s.push_back(std::min<std::int64_t>(std::llround(x * params.fs_Hz), n_out - 1));
          }
          result.spike_samples.push_back(s);
        }
        muap_time_s += t1 - t0;
        emg_time_s += watch.elapsed_s() - t1;

        // 5. Write this position.
        const std::string group = "position_" + std::to_string(p) + "/";
        const auto n_u = static_cast<unsigned long long>(muaps.size());
        std::size_t max_rows = 0;
        for (const auto& m : muaps) {
          max_rows = std::max(max_rows, static_cast<std::size_t>(m.phi_V.rows()));
        }
        const auto n_c = static_cast<unsigned long long>(contacts.rows());
        const auto n_ch = static_cast<unsigned long long>(weights.rows());
        std::vector<double> mono(n_u * n_c * max_rows, 0.0);
        std::vector<double> chan(n_u * n_ch * max_rows, 0.0);
        forward::UnitProperties props;
        props.n_fibres.resize(static_cast<Eigen::Index>(muaps.size()));
        props.cv_m_per_s.resize(static_cast<Eigen::Index>(muaps.size()));
        for (std::size_t u = 0; u < muaps.size(); ++u) {
          const auto& m = muaps[u];
          const Eigen::MatrixXd ch = m.phi_V * weights.transpose();
          for (Eigen::Index c = 0; c < m.phi_V.cols(); ++c) {
            for (Eigen::Index n = 0; n < m.phi_V.rows(); ++n) {
              mono[(u * n_c + static_cast<std::size_t>(c)) * max_rows +
                   static_cast<std::size_t>(n)] = m.phi_V(n, c);
            }
          }
          for (Eigen::Index c = 0; c < ch.cols(); ++c) {
            for (Eigen::Index n = 0; n < ch.rows(); ++n) {
              chan[(u * n_ch + static_cast<std::size_t>(c)) * max_rows +
                   static_cast<std::size_t>(n)] = ch(n, c);
            }
          }
          props.unit_id.push_back(m.unit);
          props.n_fibres[static_cast<Eigen::Index>(u)] = m.n_fibres;
          props.cv_m_per_s[static_cast<Eigen::Index>(u)] =
              muscle.pool.units[static_cast<std::size_t>(m.unit)].cv_m_per_s;
          const auto [p2p, best, duration] = muap_summary(ch, params.fs_Hz);
          report_units.push_back({{"position", p},
                                  {"unit", m.unit},
                                  {"n_fibres", m.n_fibres},
                                  {"n_discharges", times[u].size()},
                                  {"peak_to_peak_uV", 1e6 * p2p},
                                  {"channel", best},
                                  {"duration_ms", 1e3 * duration},
                                  {"n_jittered_fibres", m.jitter_fibres.size()},
                                  {"jitter_energy_captured", m.jitter_energy_captured}});
          const std::string id = std::to_string(m.unit);
          VectorXi64 jf(static_cast<Eigen::Index>(m.jitter_fibres.size()));
          for (std::size_t q = 0; q < m.jitter_fibres.size(); ++q) {
            jf[static_cast<Eigen::Index>(q)] = m.jitter_fibres[q];
          }
          truth.write(group + "jitter_s/" + id, emg.jitter_s[u], {{"unit", std::string("s")}});
          truth.write_vector(group + "jitter_fibres/" + id, jf);
        }
        const Eigen::MatrixXd contacts_out = contacts;
        muap_file.write_3d(group + "muaps", mono, {n_u, n_c, max_rows},
                           {{"unit", std::string("V")}});
        muap_file.write_3d(group + "muaps_channels", chan, {n_u, n_ch, max_rows},
                           {{"unit", std::string("V")}});
        muap_file.write(group + "contacts_m", contacts_out);
        forward::ChannelLayout layout;
        layout.position_m = weights.cwiseAbs() * contacts_out /
                            std::max(1.0, weights.cwiseAbs().rowwise().sum().maxCoeff());
        layout.grid_name =
            electrodes.kind == forward::IemgElectrodeKind::array ? "needle_array" : "fine_wire";
        const std::string stem = p == 0 ? "emg" : "emg_position_" + std::to_string(p);
        forward::write_emg_h5(dir / (stem + ".h5"), result, props, layout);
        if (!*no_mat) {
          forward::write_emg_mat(dir / (stem + ".mat"), result, props, layout);
        }
      }
      VectorXi64 unit_ids(static_cast<Eigen::Index>(units.size()));
      for (std::size_t u = 0; u < units.size(); ++u) {
        unit_ids[static_cast<Eigen::Index>(u)] = units[u];
        const Eigen::Map<const Eigen::VectorXd> t(times[u].data(),
                                                  static_cast<Eigen::Index>(times[u].size()));
        truth.write_vector("discharge_times_s/" + std::to_string(units[u]), t,
                           {{"unit", std::string("s")}});
        const auto& ids = muscle.unit_fibres[static_cast<std::size_t>(units[u])];
        Eigen::VectorXd delays(static_cast<Eigen::Index>(ids.size()));
        for (std::size_t k = 0; k < ids.size(); ++k) {
          delays[static_cast<Eigen::Index>(k)] =
              muscle.fibres[static_cast<std::size_t>(ids[k])].delay_s;
        }
        truth.write_vector("branch_delays_s/" + std::to_string(units[u]), delays,
                           {{"unit", std::string("s")}});
      }
      truth.write_vector("unit_id", unit_ids);
      truth.set_attributes("/", {{"fs_Hz", params.fs_Hz}, {"jitter_s", params.jitter_s}});
      muap_file.write_vector("unit_id", unit_ids);
      muap_file.commit();
      truth.commit();
      const nlohmann::json report = {
          {"muscle", muscle.name},
          {"n_units_simulated", units.size()},
          {"n_real_fibres", muscle.fibres.size()},
          {"n_model_fibres", muscle.model_fibres.fibres.size()},
          {"n_positions", n_positions},
          {"n_contacts", forward::iemg_contacts(electrodes, muscle.centre_m, 0).rows()},
          {"n_channels", weights.rows()},
          {"fs_Hz", params.fs_Hz},
          {"duration_s", drive.duration_s},
          {"threads", threads},
          {"time_s",
           {{"muaps", muap_time_s},
            {"drive", drive_time_s},
            {"emg", emg_time_s},
            {"total", watch.elapsed_s()}}},
          {"units", report_units}};
      write_text_file(dir / "iemg_report.json", report.dump(2) + "\n");
      write_text_file(options->output / "resolved_config.json", resolved.dump(2) + "\n");

      // 6. Report.
      if (!options->quiet) {
        double lo = 1e300;
        double hi = 0.0;
        for (const auto& u : report_units) {
          lo = std::min(lo, u["peak_to_peak_uV"].get<double>());
          hi = std::max(hi, u["peak_to_peak_uV"].get<double>());
        }
        std::cout << std::setprecision(4) << "iemg: " << muscle.name << ", " << units.size()
                  << " units (" << muscle.fibres.size() << " real fibres), " << n_positions
                  << " position(s) x " << weights.rows() << " channels, " << drive.duration_s
                  << " s at " << params.fs_Hz << " Hz\n"
                  << "MUAP peak-to-peak (largest channel): " << lo << " to " << hi << " uV\n"
                  << "time: MUAPs " << muap_time_s << " s, drive " << drive_time_s << " s, EMG "
                  << emg_time_s << " s, total " << watch.elapsed_s() << " s\n";
      }
      return 0;
    };
  });
}

} // namespace myotwin::app
