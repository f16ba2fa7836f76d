// `myotwin invert EMG --subject SUBJECT.json -o OUT`: model-informed separation of a recording
// through the subject's own forward model (OUT holds the subject's anatomy, mesh and lead
// fields for the config's electrodes, as `myotwin pipeline` or the single stages leave them).
// Writes OUT/inversion/decomposition.h5, summary.json, decomposition.mat and properties.json /
// properties.h5 (fitted motor-unit properties in physical units, with fit quality).

#include <iomanip>
#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/subject_model.hpp"
#include "myotwin/inversion/bmiss.hpp"
#include "myotwin/inversion/decomposition_io.hpp"
#include "myotwin/inversion/emg_input.hpp"

namespace myotwin::app {

void add_invert_command(CLI::App& app, std::function<int()>& run) {
  auto options = std::make_shared<SharedOptions>();
  auto emg = std::make_shared<std::filesystem::path>();
  auto subject = std::make_shared<std::filesystem::path>();
  auto muscle = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "invert",
      "model-informed separation: motor units of EMG found and characterised through the "
      "subject's forward model (OUT/anatomy, mesh, forward/leadfields.h5 of the config's "
      "electrodes); writes OUT/inversion/decomposition.h5, summary.json, decomposition.mat, "
      "properties.json and properties.h5; config sections `invert`, `muap_model`, `decompose`");
  cmd->add_option("EMG", *emg, "EMG recorded at the config's electrodes (.h5, .mat, .csv)")
      ->required();
  cmd->add_option("--subject", *subject, "subject file (subject.json)")->required();
  cmd->add_option("--muscle", *muscle,
                  "muscle whose units are searched (default: the only one of simulate.muscles)");
  add_shared_options(*cmd, *options, true);
  cmd->callback([&run, options, emg, subject, muscle] {
    run = [options, emg, subject, muscle] {
      Stopwatch watch;
      const RunConfig config = begin_run(*options);
      // The files first: a missing one is the problem to report, not a missing --muscle.
      for (const auto& [what, path] :
           {std::pair<std::string, std::filesystem::path>{"EMG", *emg}, {"--subject", *subject}})
        if (!std::filesystem::is_regular_file(path))
          throw IoError(path.string() + ": no such file (the " + what + " of `myotwin invert`)");
      std::string name = *muscle;
      if (name.empty()) {
        if (config.simulate.muscles.size() != 1)
          throw BadInput("invert: give --muscle (simulate.muscles names " +
                         std::to_string(config.simulate.muscles.size()) +
                         " muscles; expected exactly one to default to)");
        name = config.simulate.muscles.front();
      }
      const auto model = load_subject_model(Layout(options->output), *subject, config);
      const anatomy::MuscleModel* m = nullptr;
      std::string names;
      for (const auto& candidate : model->anatomy.muscles) {
        names += (names.empty() ? "" : ", ") + candidate.geometry.name;
        if (candidate.geometry.name == name)
          m = &candidate;
      }
      if (m == nullptr)
        throw BadInput("invert: muscle \"" + name + "\" is not in the anatomy (" + names + ")");
      const inversion::EmgRecording recording = inversion::read_emg(*emg);
      const auto n_ch = model->lead_fields.lead_fields_V_per_A.cols();
      if (recording.emg.rows() != n_ch)
        throw BadInput(emg->string() + ": " + std::to_string(recording.emg.rows()) +
                       " channels, but the config places " + std::to_string(n_ch) +
                       " electrodes: record (or simulate) with the same `electrodes` section");
      if (recording.grid_row_col.rows() == n_ch) {
        // The file's layout (row, column of each channel) must be the config's, in order.
        const MatrixXi64 placed = forward::channel_layout(model->layout).grid_row_col;
        for (Eigen::Index c = 0; c < n_ch; ++c)
          if (recording.grid_row_col.row(c) != placed.row(c))
            throw BadInput(emg->string() + ": channel " + std::to_string(c) + " is at grid (row " +
                           std::to_string(recording.grid_row_col(c, 0)) + ", column " +
                           std::to_string(recording.grid_row_col(c, 1)) +
                           "), but the config's electrode " + std::to_string(c) + " (" +
                           model->layout.electrodes[static_cast<std::size_t>(c)].name +
                           ") is at (row " + std::to_string(placed(c, 0)) + ", column " +
                           std::to_string(placed(c, 1)) +
                           "): the EMG's layout must be the config's `electrodes`, in order");
      }
      forward::MuapModelParams model_params = config.muap_model;
      model_params.fs_Hz = recording.fs_Hz;
      log_info("invert: MUAP model of ", name, " (", m->fibres.fibres.size(), " model fibres, ",
               n_ch, " channels)");
      const forward::MuapModel muap_model(m->fibres, m->pool, model->transfer, n_ch, model_params,
                                          progress_display(*options));
      const inversion::BmissResult result =
          inversion::invert(recording, muap_model, *m, model->skin_points_m, config.invert,
                            progress_display(*options));

      // Write.
      const auto dir = Layout(options->output)[Output::inversion_dir];
      ensure_output_dir(dir);
      inversion::write_decomposition_h5(dir / "decomposition.h5", result.decomposition, recording);
      inversion::write_decomposition_mat(dir / "decomposition.mat", result.decomposition,
                                         recording);
      nlohmann::json summary =
          inversion::summary_json(result.decomposition, recording, config.invert.separation);
      nlohmann::json iterations = nlohmann::json::array();
      for (const auto& it : result.iterations)
        iterations.push_back({{"probed", it.n_probed},
                              {"refined", it.n_refined},
                              {"accepted", it.n_accepted},
                              {"units_total", it.n_units_total},
                              {"best_kurtosis", it.best_score},
                              {"time_s", it.time_s}});
      summary["iterations"] = iterations;
      summary["muscle"] = name;
      summary["time_s"]["total"] = watch.elapsed_s();
      write_text_file(dir / "summary.json", summary.dump(2) + "\n");
      nlohmann::json props = nlohmann::json::array();
      const auto n_u = static_cast<Eigen::Index>(result.properties.size());
      Eigen::MatrixXd table(n_u, 8);
      for (Eigen::Index u = 0; u < n_u; ++u) {
        const auto& p = result.properties[static_cast<std::size_t>(u)];
        props.push_back(
            {{"unit", u},
             {"territory_centre_mm", {1e3 * p.theta.centre_m.x(), 1e3 * p.theta.centre_m.y()}},
             {"territory_centre_sd_mm", {1e3 * p.spread.centre_m.x(), 1e3 * p.spread.centre_m.y()}},
             {"territory_radius_mm", 1e3 * p.theta.radius_m},
             {"depth_mm", 1e3 * p.depth_m},
             {"n_fibres", p.theta.n_fibres},
             {"n_fibres_sd", p.spread.n_fibres},
             {"end_plate_shift_mm", 1e3 * p.theta.end_plate_shift_m},
             {"end_plate_shift_sd_mm", 1e3 * p.spread.end_plate_shift_m},
             {"cv_m_per_s", p.theta.cv_m_per_s},
             {"cv_sd_m_per_s", p.spread.cv_m_per_s},
             {"amplitude_scale", p.amplitude_scale},
             {"relative_residual", p.relative_residual}});
        table.row(u) << p.theta.centre_m.x(), p.theta.centre_m.y(), p.depth_m, p.theta.n_fibres,
            p.theta.end_plate_shift_m, p.theta.cv_m_per_s, p.amplitude_scale, p.relative_residual;
      }
      write_text_file(dir / "properties.json",
                      nlohmann::json{{"muscle", name},
                                     {"frame", "territory centres in the muscle's seed plane (e1, "
                                               "e2) from its centre; depth below the skin"},
                                     {"units", props}}
                              .dump(2) +
                          "\n");
      H5Writer w(dir / "properties.h5");
      w.write("properties", table,
              {{"columns", std::string("centre_x_m, centre_y_m, depth_m, n_fibres, "
                                       "end_plate_shift_m, cv_m_per_s, amplitude_scale, "
                                       "relative_residual")},
               {"muscle", name}});
      w.commit();
      write_resolved_config(dir, config);

      if (!options->quiet) {
        std::cout << "iteration  units  new  best_kurtosis  time_s\n";
        for (std::size_t k = 0; k < result.iterations.size(); ++k) {
          const auto& it = result.iterations[k];
          std::cout << std::setw(9) << k + 1 << std::setw(7) << it.n_units_total << std::setw(5)
                    << it.n_accepted << std::fixed << std::setprecision(2) << std::setw(15)
                    << it.best_score << std::setw(8) << it.time_s << "\n";
          std::cout.unsetf(std::ios::fixed);
        }
        std::cout << "unit  discharges   SIL  depth_mm  fibres  CV_m_per_s  residual\n";
        for (Eigen::Index u = 0; u < n_u; ++u) {
          const auto& unit = result.decomposition.units[static_cast<std::size_t>(u)];
          const auto& p = result.properties[static_cast<std::size_t>(u)];
          std::cout << std::setw(4) << u << std::setw(12) << unit.discharges.size() << std::fixed
                    << std::setprecision(3) << std::setw(6) << unit.sil << std::setprecision(1)
                    << std::setw(10) << 1e3 * p.depth_m << std::setprecision(0) << std::setw(8)
                    << p.theta.n_fibres << std::setprecision(2) << std::setw(12)
                    << p.theta.cv_m_per_s << std::setw(10) << p.relative_residual << "\n";
          std::cout.unsetf(std::ios::fixed);
        }
        std::cout << n_u << " units in " << std::setprecision(3) << watch.elapsed_s()
                  << " s; results in " << dir.string() << "\n";
      }
      return 0;
    };
  });
}

} // namespace myotwin::app
