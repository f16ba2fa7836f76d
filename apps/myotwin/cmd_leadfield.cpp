// `myotwin leadfield SUBJECT.json -o OUT`: the electrodes placed on the subject's mesh and their
// lead fields by reciprocity (one solve per electrode, the stiffness matrix factorised once),
// sampled at the anatomy's fibre points when OUT/anatomy has them. Writes OUT/forward/
// electrodes.json, electrodes.vtp, leadfields.h5 (a cache reused when its key matches) and
// leadfield_report.json.
//
// Steps: 1. configuration, subject, mesh; 2. electrodes; 3. fibre points; 4. the cache key and
// a cache hit, or 5. factorise and solve; 6. sampling; 7. write; 8. report.

#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/conductor/conductivity.hpp"
#include "myotwin/forward/conductor/fem.hpp"
#include "myotwin/forward/conductor/lead_field.hpp"
#include "myotwin/forward/conductor/lead_field_cache.hpp"
#include "myotwin/forward/electrodes/electrodes.hpp"
#include "myotwin/meshing/mesh_io.hpp"

namespace myotwin::app {

namespace {

/// Resident and peak resident memory of this process [bytes] (Linux /proc/self/status).
std::pair<double, double> memory_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  double rss = 0.0, peak = 0.0;
  while (std::getline(in, line)) {
    std::istringstream s(line.substr(line.find(':') + 1));
    double kb = 0.0;
    s >> kb;
    if (line.rfind("VmRSS:", 0) == 0)
      rss = kb * 1024.0;
    else if (line.rfind("VmHWM:", 0) == 0)
      peak = kb * 1024.0;
  }
  return {rss, peak};
}

std::string gib(double bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << bytes / (1024.0 * 1024.0 * 1024.0) << " GiB";
  return s.str();
}

} // namespace

void add_leadfield_command(CLI::App& app, std::function<int()>& run) {
  auto options = std::make_shared<SharedOptions>();
  auto subject = std::make_shared<std::filesystem::path>();
  auto no_cache = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "leadfield",
      "electrodes on the skin and their lead fields by reciprocity (P1 FEM, CHOLMOD or CG): "
      "reads OUT/mesh/mesh.vtu (and OUT/anatomy for the fibre points); writes "
      "OUT/forward/electrodes.json, electrodes.vtp, leadfields.h5 (V/A, cached by a key of mesh, "
      "conductivities and electrodes); config sections `electrodes` (lengths in mm, angles in "
      "degrees) and `volume_conductor` (method, memory_budget_GiB, cg_relative_tolerance)");
  cmd->add_option("SUBJECT", *subject, "subject file (subject.json)")->required();
  cmd->add_flag("--no-cache", *no_cache, "recompute even when leadfields.h5 has the same key");
  add_shared_options(*cmd, *options, true);
  cmd->callback([&run, options, subject, no_cache] {
    run = [options, subject, no_cache] {
      // 1. Configuration, subject, mesh.
      Stopwatch watch;
      const RunConfig config = begin_run(*options);
      const anatomy::SubjectFiles files = anatomy::read_subject_file(*subject);
      const anatomy::TissueTable tissues = anatomy::read_tissue_table(files.tissues);
      const auto mesh_file = options->output / "mesh" / "mesh.vtu";
      if (!std::filesystem::exists(mesh_file))
        throw IoError(mesh_file.string() + ": not found: run `myotwin mesh " + subject->string() +
                      " -o " + options->output.string() + "` first");
      const meshing::TetMesh mesh = meshing::read_mesh_vtu(mesh_file, &tissues);
      forward::check_connected(mesh);
      log_info("mesh: ", mesh.n_nodes(), " nodes, ", mesh.n_tets(), " tets (", mesh_file.string(),
               ")");
      const auto dir = options->output / "forward";
      ensure_output_dir(dir);

      // 2. Electrodes.
      const forward::ElectrodeLayout layout =
          forward::place_electrodes(mesh, tissues, config.electrodes);
      write_text_file(dir / "electrodes.json", forward::to_json(layout).dump(2) + "\n");
      forward::write_electrodes_vtp(dir / "electrodes.vtp", mesh, layout);
      const auto n_el = static_cast<Eigen::Index>(layout.electrodes.size());
      log_info("electrodes: ", n_el, " placed, reference ", layout.reference);

      // 3. Fibre points from the anatomy, when there.
      Eigen::MatrixX3d points;
      const auto anatomy_dir = options->output / "anatomy";
      if (std::filesystem::exists(anatomy_dir / "motor_units.h5")) {
        const anatomy::SubjectAnatomy a = anatomy::read_subject_anatomy(anatomy_dir);
        Eigen::Index n = 0;
        for (const auto& m : a.muscles)
          for (const auto& f : m.fibres.fibres)
            n += f.points_m.rows();
        points.resize(n, 3);
        Eigen::Index row = 0;
        for (const auto& m : a.muscles)
          for (const auto& f : m.fibres.fibres) {
            points.middleRows(row, f.points_m.rows()) = f.points_m;
            row += f.points_m.rows();
          }
        log_info("fibre points: ", n, " from ", anatomy_dir.string());
      }

      // 4. The cache.
      const forward::LeadFieldIdentity identity = forward::lead_field_identity(
          mesh, tissues, config.volume_conductor.reference_node, layout);
      const std::int64_t ground = identity.reference_node;
      const auto key = forward::key_hex(identity.key);
      const auto skey = points.rows() > 0
                            ? forward::key_hex(forward::sampling_key(identity.key, points))
                            : std::string();
      const auto cache_file = dir / "leadfields.h5";
      std::optional<forward::LeadFieldCache> cache;
      if (!*no_cache)
        cache = forward::read_lead_field_cache(cache_file, key, skey);
      const bool hit = cache.has_value();
      bool rewrite = !hit;
      forward::SolverReport report;
      double solve_s = 0.0;
      if (hit) {
        log_info("cache hit: ", cache_file.string(), " (key ", key, ")");
      } else {
        log_info("cache miss: computing the lead fields (key ", key, ")");
        // 5. Factorise once, solve per electrode.
        forward::VolumeConductorParams vp = config.volume_conductor;
        vp.reference_node = ground;
        forward::VolumeConductor conductor(mesh, tissues, vp);
        report = conductor.solver().report();
        const Eigen::MatrixXd rhs =
            forward::layout_currents(mesh, conductor.locator(), layout, ground);
        const ProgressCallback display = progress_display(*options);
        const ProgressCallback progress = [display](const ProgressEvent& e) {
          if (!display)
            return;
          ProgressEvent x = e;
          x.task = "lead fields (electrodes; " + gib(memory_bytes().first) + " used)";
          display(x);
        };
        Stopwatch solve_watch;
        const Eigen::MatrixXd raw = conductor.solver().solve(rhs, progress, "lead fields");
        solve_s = solve_watch.elapsed_s();
        cache.emplace();
        cache->key = key;
        cache->reference = layout.reference;
        cache->reference_node = ground;
        cache->method = forward::to_string(report.method);
        cache->lead_fields_V_per_A = forward::apply_reference(raw, layout);
      }

      // 6. Sampling at the fibre points (located once, cached).
      if (points.rows() > 0 && cache->sampling_key.empty()) {
        const forward::PointLocator locator(mesh);
        cache->points_m = points;
        cache->locations = locator.locate(points);
        cache->sampling_key = skey;
        const double bytes = 8.0 * static_cast<double>(points.rows()) * static_cast<double>(n_el);
        if (bytes <= config.max_sampled_GiB * 1024.0 * 1024.0 * 1024.0)
          cache->sampled_V_per_A =
              forward::sample_or_nan(cache->locations, cache->lead_fields_V_per_A);
        else
          log_warning("sampled lead fields at ", points.rows(), " fibre points x ", n_el,
                      " electrodes would take ", gib(bytes),
                      " (> volume_conductor."
                      "max_sampled_GiB = ",
                      config.max_sampled_GiB, "): only the point locations are cached");
        if (cache->locations.n_outside() > 0)
          log_warning(cache->locations.n_outside(), " of ", points.rows(),
                      " fibre points lie outside the mesh (sampled as NaN)");
        rewrite = true;
      }

      // 7. Write.
      if (rewrite)
        forward::write_lead_field_cache(cache_file, *cache);
      const auto [rss, peak] = memory_bytes();
      nlohmann::json summary = {
          {"n_nodes", mesh.n_nodes()},
          {"n_tets", mesh.n_tets()},
          {"n_electrodes", n_el},
          {"reference", layout.reference},
          {"cache_key", key},
          {"cache_hit", hit},
          {"method", hit ? cache->method : forward::to_string(report.method)},
          {"factor_s", report.analyse_s + report.factor_s},
          {"solve_s", solve_s},
          {"solve_per_electrode_s", n_el > 0 ? solve_s / static_cast<double>(n_el) : 0.0},
          {"factor_bytes", report.factor_bytes},
          {"peak_memory_bytes", peak},
          {"n_fibre_points", points.rows()},
          {"fibre_points_outside", points.rows() > 0 ? cache->locations.n_outside() : 0},
          {"time_s", watch.elapsed_s()}};
      write_text_file(dir / "leadfield_report.json", summary.dump(2) + "\n");
      write_resolved_config(options->output, config);

      // 8. Report.
      if (!options->quiet) {
        double ratio_lo = 0.0, ratio_hi = 0.0;
        bool any = false;
        for (const auto& e : layout.electrodes)
          if (e.kind == forward::ElectrodeKind::pad) {
            const double r = e.area_m2 / e.nominal_area_m2;
            ratio_lo = any ? std::min(ratio_lo, r) : r;
            ratio_hi = any ? std::max(ratio_hi, r) : r;
            any = true;
          }
        std::cout << "lead fields: " << mesh.n_nodes() << " nodes, " << mesh.n_tets() << " tets, "
                  << n_el << " electrodes, reference " << layout.reference << "\n";
        if (any)
          std::cout << "pads: area / nominal area " << std::setprecision(3) << ratio_lo << " to "
                    << ratio_hi << "\n";
        if (hit) {
          std::cout << "cache hit (" << cache_file.string() << ", key " << key << ")\n";
        } else {
          std::cout << "method " << forward::to_string(report.method) << " (" << report.ordering
                    << "), factor " << std::setprecision(3) << report.analyse_s + report.factor_s
                    << " s, " << gib(report.factor_bytes) << "; solve " << solve_s << " s, "
                    << 1e3 * solve_s / static_cast<double>(std::max<Eigen::Index>(1, n_el))
                    << " ms per electrode\n";
        }
        std::cout << "memory: " << gib(rss) << " resident, " << gib(peak) << " peak; total "
                  << std::setprecision(3) << watch.elapsed_s() << " s\n";
      }
      return 0;
    };
  });
}

} // namespace myotwin::app
