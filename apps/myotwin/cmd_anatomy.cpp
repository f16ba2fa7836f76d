// `myotwin anatomy SUBJECT.json -o OUT`: the muscles of a subject (geometry, fibre field, fibres,
// motor units); `anatomy info SUBJECT.json`: the image geometry and, per label, name, class,
// voxel count, volume and bounding box; `anatomy import SURFACE.stl -o DIR`: a subject around
// one closed muscle surface. The tables are printed by reports.cpp.

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>

#include <omp.h>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/anatomy/surface_import.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::app {

namespace {

struct AnatomyOptions {
  SharedOptions shared;
  std::filesystem::path input; ///< SUBJECT.json, or the surface of `import`
};

/// `myotwin anatomy SUBJECT.json -o OUT`: builds the muscles (the stage's main job).
int run_anatomy(const AnatomyOptions& o) {
  // 1. Configuration, subject and output folder.
  const RunConfig config = begin_run(o.shared);
  const anatomy::Subject s = anatomy::load_subject(o.input);
  // 2. Refused before anything is written when it would not fit.
  check_run_estimate(
      anatomy::estimate_subject_anatomy(s.volume, s.tissues, config.anatomy, omp_get_max_threads()),
      "anatomy");
  const auto dir = Layout(o.shared.output)[Output::anatomy_dir];
  ensure_output_dir(dir);
  // 3. Build every muscle.
  Stopwatch watch;
  log_info("building the anatomy of ", s.files.name, " (seed ", config.seed, ")");
  const auto built = anatomy::build_subject_anatomy(s.volume, s.tissues, config.anatomy,
                                                    config.seed, progress_display(o.shared));
  // 4. Write; 5. report.
  anatomy::write_subject_anatomy(dir, built);
  write_resolved_config(o.shared.output, config);
  if (!o.shared.quiet)
    print_muscle_table(std::cout, built);
  log_info("anatomy built in ", watch.elapsed_s(), " s: ", dir.string());
  return 0;
}

/// `myotwin anatomy info SUBJECT.json [-o OUT]`.
int run_anatomy_info(const AnatomyOptions& o) {
  const RunConfig config = begin_run(o.shared);
  // Read without the table check, so that the labels are listed (those missing from the table
  // marked) before an incomplete table is refused.
  anatomy::Subject s;
  s.files = anatomy::read_subject_file(o.input);
  s.volume = anatomy::read_label_volume(s.files.labels);
  s.tissues = anatomy::read_tissue_table(s.files.tissues);
  const auto summary = anatomy::summarise_labels(s.volume, s.tissues);
  std::cout << "subject: " << s.files.name << " (" << o.input.string() << ")\n";
  print_anatomy_table(std::cout, s.volume, summary);
  anatomy::check_labels_in_table(s.volume, s.tissues, s.files.labels.string());
  if (!o.shared.output.empty()) {
    write_text_file(o.shared.output / "anatomy_info.json",
                    anatomy::to_json(s.volume, summary).dump(2) + "\n");
    write_resolved_config(o.shared.output, config);
  }
  return 0;
}

/// `myotwin anatomy import SURFACE.stl -o DIR`: a subject around one real muscle shape.
int run_anatomy_import(const AnatomyOptions& o) {
  const RunConfig config = begin_run(o.shared);
  const auto& dir = o.shared.output;
  const auto imported = anatomy::import_surface(o.input, config.surface_import);
  anatomy::write_label_volume(dir / "labels.nii.gz", imported.volume);
  anatomy::write_tissue_table(dir / "tissues.json", imported.tissues);
  anatomy::write_subject_file(dir / "subject.json", o.input.stem().string(), "labels.nii.gz",
                              "tissues.json");
  write_resolved_config(dir, config);
  if (!o.shared.quiet)
    print_anatomy_table(std::cout, imported.volume,
                        anatomy::summarise_labels(imported.volume, imported.tissues));
  if (imported.tendon_start_m > 0.0 || imported.tendon_end_m > 0.0) {
    const auto& a = imported.axis;
    log_info("tendons: ", std::lround(units::m_to_mm(imported.tendon_start_m)),
             " mm at the start, ", std::lround(units::m_to_mm(imported.tendon_end_m)),
             " mm at the end of the ", std::lround(units::m_to_mm(imported.length_m)),
             " mm principal axis (", a[0], ", ", a[1], ", ", a[2], "); muscle between them ",
             std::lround(units::m_to_mm(imported.length_m - imported.tendon_start_m -
                                        imported.tendon_end_m)),
             " mm");
  }
  log_info("subject written: ", (dir / "subject.json").string());
  return 0;
}

} // namespace

void add_anatomy_command(CLI::App& app, std::function<int()>& run) {
  auto* anatomy_cmd = app.add_subcommand(
      "anatomy", "build the muscles of a subject: geometry, fibre field, fibres, motor units "
                 "(writes OUT/anatomy/fibers.vtp, motor_units.h5, anatomy.json); settings in the "
                 "config's `anatomy` section (densities per mm^2, lengths in mm)");
  anatomy_cmd->require_subcommand(0, 1);
  auto build = std::make_shared<AnatomyOptions>();
  anatomy_cmd->add_option("SUBJECT", build->input, "subject file (subject.json)");
  add_shared_options(*anatomy_cmd, build->shared, false);
  anatomy_cmd->callback([anatomy_cmd, &run, build] {
    if (!anatomy_cmd->get_subcommands().empty())
      return;
    if (build->input.empty() || build->shared.output.empty())
      throw CLI::ValidationError("anatomy", "expected SUBJECT.json and -o OUT, or a "
                                            "subcommand (info, import)");
    run = [build] { return run_anatomy(*build); };
  });

  auto info = std::make_shared<AnatomyOptions>();
  auto* info_cmd = anatomy_cmd->add_subcommand(
      "info", "per label: name, class, voxel count, volume [cm^3], bounding box [mm]; image "
              "size, spacing [mm] and orientation");
  info_cmd->add_option("SUBJECT", info->input, "subject file (subject.json)")->required();
  add_shared_options(*info_cmd, info->shared, false);
  info_cmd->callback([&run, info] { run = [info] { return run_anatomy_info(*info); }; });

  auto import = std::make_shared<AnatomyOptions>();
  auto* import_cmd = anatomy_cmd->add_subcommand(
      "import", "make a subject from a closed muscle surface (STL in mm): the muscle label with "
                "fat and skin shells (config section `surface_import`: voxel_size_mm, "
                "fat_thickness_mm, skin_thickness_mm, margin_mm, muscle_name)");
  import_cmd->add_option("SURFACE", import->input, "closed triangulated surface (.stl, mm)")
      ->required();
  add_shared_options(*import_cmd, import->shared, true);
  import_cmd->callback([&run, import] { run = [import] { return run_anatomy_import(*import); }; });
}

} // namespace myotwin::app
