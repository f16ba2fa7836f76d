// `myotwin invert EMG --subject SUBJECT.json -o OUT`: model-informed separation of a recording
// through the subject's own forward model (OUT holds the subject's anatomy, mesh and lead
// fields for the config's electrodes, as `myotwin pipeline` or the single stages leave them).
// Writes OUT/inversion/decomposition.h5, summary.json, decomposition.mat and properties.json /
// properties.h5 (fitted motor-unit properties in physical units, with fit quality).

#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>

#include <omp.h>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/io/emg_file.hpp"
#include "myotwin/inversion/bmiss.hpp"
#include "myotwin/inversion/decomposition_io.hpp"

namespace myotwin::app {

namespace {

struct InvertOptions {
  SharedOptions shared;
  std::filesystem::path emg, subject;
  /// The muscles searched; empty: invert.muscles, else simulate.muscles, else every muscle.
  std::vector<std::string> muscles;
};

/// The muscle `name` of the model. \throws BadInput listing the muscles there are.
const anatomy::MuscleModel& find_muscle(const forward::SubjectForwardModel& model,
                                        const std::string& name) {
  std::string names;
  for (const auto& candidate : model.anatomy.muscles) {
    if (candidate.geometry.name == name)
      return candidate;
    names += (names.empty() ? "" : ", ") + candidate.geometry.name;
  }
  throw BadInput("invert: muscle \"" + name + "\" is not in the anatomy (" + names + ")");
}

/// The recording must be of the config's electrodes: their count and, when the file has a grid
/// layout, each channel's (row, column), in order. \throws BadInput naming the first mismatch.
void check_channels(const forward::EmgRecording& recording,
                    const forward::ElectrodeLayout& layout) {
  const auto n_ch = static_cast<Eigen::Index>(layout.electrodes.size());
  const std::string file = recording.source.string();
  if (recording.emg.rows() != n_ch)
    throw BadInput(file + ": " + std::to_string(recording.emg.rows()) +
                   " channels, but the config places " + std::to_string(n_ch) +
                   " electrodes: record (or simulate) with the same `electrodes` section");
  if (recording.grid_row_col.rows() != n_ch)
    return;
  const MatrixXi64 placed = forward::channel_layout(layout).grid_row_col;
  for (Eigen::Index c = 0; c < n_ch; ++c)
    if (recording.grid_row_col.row(c) != placed.row(c))
      throw BadInput(file + ": channel " + std::to_string(c) + " is at grid (row " +
                     std::to_string(recording.grid_row_col(c, 0)) + ", column " +
                     std::to_string(recording.grid_row_col(c, 1)) +
                     "), but the config's electrode " + std::to_string(c) + " (" +
                     layout.electrodes[static_cast<std::size_t>(c)].name + ") is at (row " +
                     std::to_string(placed(c, 0)) + ", column " + std::to_string(placed(c, 1)) +
                     "): the EMG's layout must be the config's `electrodes`, in order");
}

/// The muscles to search: --muscle, else invert.muscles, else simulate.muscles, else every
/// muscle of the anatomy; of these, those whose fibres come within invert.max_muscle_distance_mm
/// of an electrode (the others are left out with a warning). \throws BadInput for a muscle the
/// anatomy lacks, or when no muscle is that close.
std::vector<const anatomy::MuscleModel*>
muscles_to_search(const InvertOptions& o, const RunConfig& config,
                  const forward::SubjectForwardModel& model) {
  std::vector<std::string> names = o.muscles;
  if (names.empty())
    names = config.invert.muscles;
  if (names.empty())
    names = config.simulate.muscles;
  if (names.empty())
    for (const auto& m : model.anatomy.muscles)
      names.push_back(m.geometry.name);
  Eigen::MatrixX3d electrodes(static_cast<Eigen::Index>(model.layout.electrodes.size()), 3);
  for (std::size_t e = 0; e < model.layout.electrodes.size(); ++e)
    electrodes.row(static_cast<Eigen::Index>(e)) =
        model.layout.electrodes[e].position_m.transpose();
  const double reach = config.invert.max_muscle_distance_m;
  std::vector<const anatomy::MuscleModel*> out;
  std::string far;
  for (const auto& name : names) {
    const anatomy::MuscleModel& m = find_muscle(model, name);
    const double d = inversion::distance_to_electrodes(m.fibres, electrodes);
    if (d <= reach) {
      out.push_back(&m);
      continue;
    }
    far += (far.empty() ? "" : ", ") + name + " (" + format_number(std::round(d * 1e4) / 10.0) +
           " mm)";
    log_warning("invert: muscle ", name, " is left out: its fibres lie ",
                format_number(std::round(d * 1e4) / 10.0),
                " mm from the nearest electrode (invert.max_muscle_distance_mm = ",
                format_number(reach * 1e3), ")");
  }
  if (out.empty())
    throw BadInput("invert: the electrodes cover none of the muscles to search: " + far +
                   " from the nearest electrode, farther than invert.max_muscle_distance_mm = " +
                   format_number(reach * 1e3) +
                   " (place the grid over them, or name other muscles with --muscle)");
  return out;
}

void print_result(const inversion::BmissResult& result, double time_s,
                  const std::filesystem::path& dir, const std::vector<std::string>& names) {
  std::cout << "iteration  units  new  best_kurtosis  time_s\n";
  for (std::size_t k = 0; k < result.iterations.size(); ++k) {
    const auto& it = result.iterations[k];
    std::cout << std::setw(9) << k + 1 << std::setw(7) << it.n_units_total << std::setw(5)
              << it.n_accepted << std::fixed << std::setprecision(2) << std::setw(15)
              << it.best_score << std::setw(8) << it.time_s << "\n";
    std::cout.unsetf(std::ios::fixed);
  }
  const bool several = names.size() > 1;
  std::cout << "unit  discharges   SIL  depth_mm  fibres  CV_m_per_s  residual"
            << (several ? "  muscle" : "") << "\n";
  for (std::size_t u = 0; u < result.properties.size(); ++u) {
    const auto& unit = result.decomposition.units[u];
    const auto& p = result.properties[u];
    std::cout << std::setw(4) << u << std::setw(12) << unit.discharges.size() << std::fixed
              << std::setprecision(3) << std::setw(6) << unit.sil << std::setprecision(1)
              << std::setw(10) << 1e3 * p.depth_m << std::setprecision(0) << std::setw(8)
              << p.theta.n_fibres << std::setprecision(2) << std::setw(12) << p.theta.cv_m_per_s
              << std::setw(10) << p.relative_residual;
    if (several)
      std::cout << "  " << names.at(p.muscle);
    std::cout << "\n";
    std::cout.unsetf(std::ios::fixed);
  }
  std::cout << result.properties.size() << " units in " << std::setprecision(3) << time_s
            << " s; results in " << dir.string() << "\n";
}

int run_invert(const InvertOptions& o) {
  // 1. Configuration, the files (a missing one is the problem to report, not --muscle), model.
  Stopwatch watch;
  const RunConfig config = begin_run(o.shared);
  for (const auto& [what, path] :
       {std::pair<std::string, std::filesystem::path>{"EMG", o.emg}, {"--subject", o.subject}})
    if (!std::filesystem::is_regular_file(path))
      throw IoError(path.string() + ": no such file (the " + what + " of `myotwin invert`)");
  const Layout out(o.shared.output);
  const auto model = load_subject_model(out, o.subject, config);
  const forward::EmgRecording recording = forward::read_emg(o.emg);
  check_channels(recording, model->layout);
  const std::vector<const anatomy::MuscleModel*> muscles = muscles_to_search(o, config, *model);
  std::vector<std::string> names;
  std::string name;
  for (const auto* m : muscles) {
    names.push_back(m->geometry.name);
    name += (name.empty() ? "" : ", ") + m->geometry.name;
  }

  // 2. The MUAP model of each muscle at the recording's rate, and the separation; their memory
  // checked before either allocates.
  const auto n_ch = model->lead_fields.lead_fields_V_per_A.cols();
  forward::MuapModelParams model_params = config.muap_model;
  model_params.fs_Hz = recording.fs_Hz;
  check_run_estimate(inversion::estimate_invert(static_cast<double>(recording.emg.rows()),
                                                static_cast<double>(recording.emg.cols()), muscles,
                                                n_ch, model_params, config.invert,
                                                omp_get_max_threads()),
                     "invert");
  std::vector<std::unique_ptr<forward::MuapModel>> muap_models;
  std::vector<inversion::SearchMuscle> search;
  for (const auto* m : muscles) {
    log_info("invert: MUAP model of ", m->geometry.name, " (", m->fibres.fibres.size(),
             " model fibres, ", n_ch, " channels)");
    muap_models.push_back(std::make_unique<forward::MuapModel>(
        m->fibres, m->pool, model->transfer, n_ch, model_params, progress_display(o.shared)));
    search.push_back({muap_models.back().get(), m});
  }
  const inversion::BmissResult result = inversion::invert(
      recording, search, model->skin_points_m, config.invert, progress_display(o.shared));

  // 3. Write: the decomposition, its summary, the properties, the resolved configuration.
  const auto dir = out[Output::inversion_dir];
  ensure_output_dir(dir);
  inversion::write_decomposition_h5(dir / "decomposition.h5", result.decomposition, recording);
  inversion::write_decomposition_mat(dir / "decomposition.mat", result.decomposition, recording);
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
  if (names.size() > 1)
    summary["muscles"] = names;
  summary["time_s"]["total"] = watch.elapsed_s();
  write_text_file(dir / "summary.json", summary.dump(2) + "\n");
  inversion::write_fitted_properties(dir / "properties.json", dir / "properties.h5",
                                     result.properties, names);
  write_resolved_config(dir, config);
  if (!o.shared.quiet)
    print_result(result, watch.elapsed_s(), dir, names);
  return 0;
}

} // namespace

void add_invert_command(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<InvertOptions>();
  auto* cmd = app.add_subcommand(
      "invert",
      "model-informed separation: motor units of EMG found and characterised through the "
      "subject's forward model (OUT/anatomy, mesh, forward/leadfields.h5 of the config's "
      "electrodes); writes OUT/inversion/decomposition.h5, summary.json, decomposition.mat, "
      "properties.json and properties.h5; config sections `invert`, `muap_model`, `decompose`");
  cmd->add_option("EMG", o->emg, "EMG recorded at the config's electrodes (.h5, .mat, .csv)")
      ->required();
  cmd->add_option("--subject", o->subject, "subject file (subject.json)")->required();
  cmd->add_option("--muscle", o->muscles,
                  "muscles whose units are searched, comma-separated (default: invert.muscles, "
                  "else simulate.muscles, else every muscle under the electrodes)")
      ->delimiter(',');
  add_shared_options(*cmd, o->shared, true);
  cmd->callback([&run, o] { run = [o] { return run_invert(*o); }; });
}

} // namespace myotwin::app
