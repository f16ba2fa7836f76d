// `myotwin leadfield SUBJECT.json -o OUT`: the electrodes placed on the subject's mesh and their
// lead fields by reciprocity (one solve per electrode, the stiffness matrix factorised once),
// sampled at the anatomy's fibre points when OUT/anatomy has them. Writes OUT/forward/
// electrodes.json, electrodes.vtp, leadfields.h5 (a cache reused when its key matches) and
// leadfield_report.json.
//
// The work is forward::lead_fields_with_cache() (forward/conductor/lead_field_run.hpp).

#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "mpi_world.hpp"
#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/conductor/fem.hpp"
#include "myotwin/forward/conductor/lead_field_run.hpp"
#include "myotwin/forward/electrodes/electrodes.hpp"
#include "myotwin/meshing/mesh_io.hpp"

namespace myotwin::app {

namespace {

/// The memory and time of the lead fields, estimated before the solver allocates
/// (forward::estimate_lead_field_run(), docs/reliability.md, "Bounded resources"), printed; the
/// memory beside the factor goes into `lo` for the check of the factor's exact size after
/// CHOLMOD's analysis. Measured on the sample forearm (89k nodes): 320 electrodes, no fibre
/// points: 1.07 GiB estimated, 1.05 GiB peak; 65 electrodes, 590,631 fibre points: 1.00 and
/// 1.02 GiB.
/// \throws BadInput (check_memory_estimate()) when it exceeds the limit.
void check_leadfield_memory(const meshing::TetMesh& mesh, Eigen::Index n_electrodes,
                            Eigen::Index n_points, forward::LeadFieldRunOptions& lo) {
  const forward::LeadFieldEstimate e = forward::estimate_lead_field_run(
      static_cast<double>(mesh.n_nodes()), static_cast<double>(n_electrodes),
      static_cast<double>(n_points), lo);
  lo.memory_beside_factor_bytes = e.run.bytes - e.factor_bytes;
  check_run_estimate(e.run, "leadfield");
}

struct LeadfieldOptions {
  SharedOptions shared;
  std::filesystem::path subject;
  bool no_cache = false;
};

int run_leadfield(const LeadfieldOptions& o) {
  // 1. Configuration, subject, mesh. Under mpirun, rank 0 writes every file; the ranks share the
  // solves.
  Stopwatch watch;
  const mpi::World& world = mpi::World::get();
  const bool root = world.rank() == 0;
  SharedOptions shared = o.shared;
  shared.quiet = o.shared.quiet || !root;
  RunConfig config = begin_run(shared);
  const Layout out(o.shared.output);
  const anatomy::SubjectFiles files = anatomy::read_subject_file(o.subject);
  const anatomy::TissueTable tissues = anatomy::read_tissue_table(files.tissues);
  const auto mesh_file = out.require(Output::mesh, o.subject);
  const meshing::TetMesh mesh = meshing::read_mesh_vtu(mesh_file, &tissues);
  forward::check_connected(mesh);
  log_info("mesh: ", mesh.n_nodes(), " nodes, ", mesh.n_tets(), " tets (", mesh_file.string(), ")");
  ensure_output_dir(out[Output::forward_dir]);

  // 2. Electrodes.
  const forward::ElectrodeLayout layout =
      forward::place_electrodes(mesh, tissues, config.electrodes);
  const auto n_el = static_cast<Eigen::Index>(layout.electrodes.size());
  log_info("electrodes: ", n_el, " placed, reference ", layout.reference);
  if (!shared.quiet)
    print_electrode_placement(std::cout, layout);
  // Grids and needles placed by muscle: where they went, in LPS mm, into the resolved config.
  if (!layout.placements.empty())
    config.resolved["electrodes"]["placed"] = forward::placements_json(layout);

  // 3. Fibre points from the anatomy, when there.
  Eigen::MatrixX3d points;
  if (std::filesystem::exists(out[Output::motor_units])) {
    points = forward::fibre_points(anatomy::read_subject_anatomy(out[Output::anatomy_dir]));
    log_info("fibre points: ", points.rows(), " from ", out[Output::anatomy_dir].string());
  }

  // 4. The lead fields: the cache, or solved; sampled at the fibre points.
  forward::LeadFieldRunOptions lo;
  lo.conductor = config.volume_conductor;
  lo.max_sampled_bytes = config.max_sampled_GiB * 1024.0 * 1024.0 * 1024.0;
  check_leadfield_memory(mesh, n_el, points.rows(), lo);
  if (root) {
    write_text_file(out[Output::electrodes_json], forward::to_json(layout).dump(2) + "\n");
    forward::write_electrodes_vtp(out[Output::electrodes_vtp], mesh, layout);
  }
  lo.reuse_cache = !o.no_cache;
  if (world.collective()) {
    mpi::share_lead_field_solves(world, mesh.n_nodes(), lo);
    log_info("leadfield: ", world.size(), " ranks share the solves of ", n_el, " electrodes");
  }
  const ProgressCallback display = progress_display(shared);
  const ProgressCallback progress = [display](const ProgressEvent& e) {
    if (!display)
      return;
    ProgressEvent x = e;
    x.task = "lead fields (electrodes; " + format_gib(process_memory().resident_bytes) + " used)";
    display(x);
  };
  const forward::LeadFieldRun run = forward::lead_fields_with_cache(
      mesh, tissues, layout, points, out[Output::lead_fields], lo, progress);
  if (!root)
    return 0;

  // 5. Report.
  const auto peak = process_memory().peak_bytes;
  const auto& r = run.solver;
  nlohmann::json summary = {
      {"n_nodes", mesh.n_nodes()},
      {"n_tets", mesh.n_tets()},
      {"n_electrodes", n_el},
      {"reference", layout.reference},
      {"cache_key", run.key},
      {"cache_hit", run.cache_hit},
      {"method", run.cache_hit ? run.cache.method : forward::to_string(r.method)},
      {"factor_s", r.analyse_s + r.factor_s},
      {"solve_s", run.solve_s},
      {"solve_per_electrode_s", n_el > 0 ? run.solve_s / static_cast<double>(n_el) : 0.0},
      {"factor_bytes", r.factor_bytes},
      {"peak_memory_bytes", peak},
      {"n_fibre_points", points.rows()},
      {"fibre_points_outside", points.rows() > 0 ? run.cache.locations.n_outside() : 0},
      {"ranks", world.collective() ? world.size() : 1},
      {"time_s", watch.elapsed_s()}};
  write_text_file(out[Output::leadfield_report], summary.dump(2) + "\n");
  write_resolved_config(o.shared.output, config);
  if (!o.shared.quiet)
    print_leadfield_summary(std::cout, summary, layout, run, out[Output::lead_fields]);
  return 0;
}

} // namespace

void add_leadfield_command(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<LeadfieldOptions>();
  auto* cmd = app.add_subcommand(
      "leadfield",
      "electrodes on the skin and their lead fields by reciprocity (P1 FEM, CHOLMOD or CG): "
      "reads OUT/mesh/mesh.vtu (and OUT/anatomy for the fibre points); writes "
      "OUT/forward/electrodes.json, electrodes.vtp, leadfields.h5 (V/A, cached by a key of mesh, "
      "conductivities and electrodes); config sections `electrodes` (lengths in mm, angles in "
      "degrees) and `volume_conductor` (method, memory_budget_GiB, cg_relative_tolerance)");
  cmd->add_option("SUBJECT", o->subject, "subject file (subject.json)")->required();
  cmd->add_flag("--no-cache", o->no_cache, "recompute even when leadfields.h5 has the same key");
  add_shared_options(*cmd, o->shared, true);
  cmd->callback([&run, o] { run = [o] { return run_leadfield(*o); }; });
}

} // namespace myotwin::app
