// `myotwin mesh SUBJECT.json -o OUT`: the tetrahedral mesh of every tissue of a subject
// (OUT/mesh/mesh.vtu, skin.vtp, mesh_quality.json), with fibre directions from OUT/anatomy when
// the anatomy was built there (or --anatomy DIR).
//

#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/meshing/fibre_directions.hpp"
#include "myotwin/meshing/mesh_io.hpp"
#include "myotwin/meshing/mesh_quality.hpp"

namespace myotwin::app {

namespace {

struct MeshOptions {
  SharedOptions shared;
  std::filesystem::path subject, anatomy_dir;
  bool no_skin = false;
};

/// The anatomy's fibres (--anatomy DIR, or OUT/anatomy when it has them), and their file.
std::optional<anatomy::Polylines> anatomy_fibres(const MeshOptions& o, const Layout& out,
                                                 std::filesystem::path& file) {
  if (!o.anatomy_dir.empty()) {
    file = o.anatomy_dir / relative_path(Output::fibres).filename();
    if (!std::filesystem::exists(file))
      throw IoError(file.string() + ": file not found (--anatomy " + o.anatomy_dir.string() +
                    ": expected the folder `myotwin anatomy` wrote)");
  } else if (std::filesystem::exists(out[Output::fibres])) {
    file = out[Output::fibres];
  }
  if (file.empty())
    return std::nullopt;
  return anatomy::read_polylines_vtp(file);
}

int run_mesh(const MeshOptions& o) {
  // 1. Configuration, subject, output folder; the anatomy's fibres when present.
  Stopwatch watch;
  const RunConfig config = begin_run(o.shared);
  const Layout out(o.shared.output);
  const anatomy::Subject s = anatomy::load_subject(o.subject);
  std::filesystem::path fibre_file;
  const std::optional<anatomy::Polylines> fibres = anatomy_fibres(o, out, fibre_file);
  ensure_output_dir(out[Output::mesh_dir]);

  // 2. Mesh.
  log_info("meshing ", s.files.name, " (", s.volume.size[0], " x ", s.volume.size[1], " x ",
           s.volume.size[2], " voxels, seed ", config.seed, ")");
  auto result = meshing::mesh_label_volume(s.volume, s.tissues, config.mesh, config.seed,
                                           progress_display(o.shared));

  // 3. Fibre directions; 4. quality.
  const auto directions =
      meshing::assign_fibre_directions(result.mesh, s.tissues, fibres ? &*fibres : nullptr);
  log_info("fibre directions: ",
           fibres ? "from " + fibre_file.string() : std::string("principal axes (no anatomy)"));
  const auto quality = meshing::mesh_quality(result.mesh, &s.volume, &s.tissues);

  // 5. Write.
  meshing::write_mesh_vtu(out[Output::mesh], result.mesh, s.tissues);
  if (!o.no_skin)
    meshing::write_boundary_vtp(out[Output::skin], result.mesh);
  nlohmann::json report = meshing::to_json(quality);
  nlohmann::json islands = nlohmann::json::array();
  for (const auto& r : result.islands)
    islands.push_back({{"label", r.label}, {"n_islands", r.n_islands}, {"n_voxels", r.n_voxels}});
  report["islands_removed"] = islands;
  report["upsampling"] = result.upsampling;
  report["fibre_directions"] = {
      {"source", fibres ? fibre_file.string() : std::string("principal_axis")},
      {"muscles", meshing::to_json(directions)}};
  report["time_s"] = {{"refine", result.refine_time_s},
                      {"optimise", result.optimise_time_s},
                      {"mesh_total", result.total_time_s},
                      {"command", watch.elapsed_s()}};
  write_text_file(out[Output::mesh_quality], report.dump(2) + "\n");
  write_resolved_config(o.shared.output, config);

  // 6. Report.
  if (!o.shared.quiet)
    meshing::print_quality_table(std::cout, quality);
  log_info("mesh written in ", watch.elapsed_s(), " s (refine ", result.refine_time_s,
           " s, optimise ", result.optimise_time_s, " s): ", out[Output::mesh].string());
  return 0;
}

} // namespace

void add_mesh_command(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<MeshOptions>();
  auto* cmd = app.add_subcommand(
      "mesh", "tetrahedral mesh of all tissues (CGAL Mesh_3): writes OUT/mesh/mesh.vtu (nodes in "
              "m; cell data tissue_label, tissue_class, fibre_direction), skin.vtp and "
              "mesh_quality.json; criteria in the config's `mesh` section (sizes in mm, angles "
              "in degrees)");
  cmd->add_option("SUBJECT", o->subject, "subject file (subject.json)")->required();
  cmd->add_option("--anatomy", o->anatomy_dir,
                  "folder with the anatomy's fibers.vtp for the fibre directions (default: "
                  "OUT/anatomy when it has one; otherwise each muscle's principal axis)");
  cmd->add_flag("--no-skin", o->no_skin, "do not write skin.vtp");
  add_shared_options(*cmd, o->shared, true);
  cmd->callback([&run, o] { run = [o] { return run_mesh(*o); }; });
}

} // namespace myotwin::app
