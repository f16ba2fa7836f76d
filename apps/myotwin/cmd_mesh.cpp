// `myotwin mesh SUBJECT.json -o OUT`: the tetrahedral mesh of every tissue of a subject
// (OUT/mesh/mesh.vtu, skin.vtp, mesh_quality.json), with fibre directions from OUT/anatomy when
// the anatomy was built there (or --anatomy DIR).
//
// Steps: 1. configuration, subject and output folder; 2. mesh the label volume (CGAL);
// 3. fibre directions; 4. quality; 5. write; 6. report.

#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/meshing/fibre_directions.hpp"
#include "myotwin/meshing/mesh_io.hpp"
#include "myotwin/meshing/mesh_quality.hpp"

namespace myotwin::app {

void add_mesh_command(CLI::App& app, std::function<int()>& run) {
  auto options = std::make_shared<SharedOptions>();
  auto subject = std::make_shared<std::filesystem::path>();
  auto anatomy_dir = std::make_shared<std::filesystem::path>();
  auto no_skin = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "mesh", "tetrahedral mesh of all tissues (CGAL Mesh_3): writes OUT/mesh/mesh.vtu (nodes in "
              "m; cell data tissue_label, tissue_class, fibre_direction), skin.vtp and "
              "mesh_quality.json; criteria in the config's `mesh` section (sizes in mm, angles "
              "in degrees)");
  cmd->add_option("SUBJECT", *subject, "subject file (subject.json)")->required();
  cmd->add_option("--anatomy", *anatomy_dir,
                  "folder with the anatomy's fibers.vtp for the fibre directions (default: "
                  "OUT/anatomy when it has one; otherwise each muscle's principal axis)");
  cmd->add_flag("--no-skin", *no_skin, "do not write skin.vtp");
  add_shared_options(*cmd, *options, true);
  cmd->callback([&run, options, subject, anatomy_dir, no_skin] {
    run = [options, subject, anatomy_dir, no_skin] {
      // 1. Configuration, subject, output folder; the anatomy's fibres when present.
      Stopwatch watch;
      const RunConfig config = begin_run(*options);
      const anatomy::Subject s = anatomy::load_subject(*subject);
      std::filesystem::path fibre_file;
      if (!anatomy_dir->empty()) {
        fibre_file = *anatomy_dir / "fibers.vtp";
        if (!std::filesystem::exists(fibre_file))
          throw IoError(fibre_file.string() + ": file not found (--anatomy " +
                        anatomy_dir->string() + ": expected the folder `myotwin anatomy` wrote)");
      } else if (std::filesystem::exists(options->output / "anatomy" / "fibers.vtp")) {
        fibre_file = options->output / "anatomy" / "fibers.vtp";
      }
      std::optional<anatomy::Polylines> fibres;
      if (!fibre_file.empty())
        fibres = anatomy::read_polylines_vtp(fibre_file);
      const auto dir = options->output / "mesh";
      ensure_output_dir(dir);

      // 2. Mesh.
      log_info("meshing ", s.files.name, " (", s.volume.size[0], " x ", s.volume.size[1], " x ",
               s.volume.size[2], " voxels, seed ", config.seed, ")");
      auto result = meshing::mesh_label_volume(s.volume, s.tissues, config.mesh, config.seed,
                                               progress_display(*options));

      // 3. Fibre directions.
      const auto directions =
          meshing::assign_fibre_directions(result.mesh, s.tissues, fibres ? &*fibres : nullptr);
      log_info("fibre directions: ",
               fibres ? "from " + fibre_file.string() : std::string("principal axes (no anatomy)"));

      // 4. Quality.
      const auto quality = meshing::mesh_quality(result.mesh, &s.volume, &s.tissues);

      // 5. Write.
      meshing::write_mesh_vtu(dir / "mesh.vtu", result.mesh, s.tissues);
      if (!*no_skin)
        meshing::write_boundary_vtp(dir / "skin.vtp", result.mesh);
      nlohmann::json report = meshing::to_json(quality);
      nlohmann::json islands = nlohmann::json::array();
      for (const auto& r : result.islands)
        islands.push_back(
            {{"label", r.label}, {"n_islands", r.n_islands}, {"n_voxels", r.n_voxels}});
      report["islands_removed"] = islands;
      report["upsampling"] = result.upsampling;
      report["fibre_directions"] = {
          {"source", fibres ? fibre_file.string() : std::string("principal_axis")},
          {"muscles", meshing::to_json(directions)}};
      report["time_s"] = {{"refine", result.refine_time_s},
                          {"optimise", result.optimise_time_s},
                          {"mesh_total", result.total_time_s},
                          {"command", watch.elapsed_s()}};
      write_text_file(dir / "mesh_quality.json", report.dump(2) + "\n");
      write_resolved_config(options->output, config);

      // 6. Report.
      if (!options->quiet)
        meshing::print_quality_table(std::cout, quality);
      log_info("mesh written in ", watch.elapsed_s(), " s (refine ", result.refine_time_s,
               " s, optimise ", result.optimise_time_s, " s): ", (dir / "mesh.vtu").string());
      return 0;
    };
  });
}

} // namespace myotwin::app
