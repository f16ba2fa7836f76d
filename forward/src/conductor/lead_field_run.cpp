#include "myotwin/forward/conductor/lead_field_run.hpp"

#include <cmath>

#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/conductor/point_locator.hpp"

namespace myotwin::forward {

Eigen::MatrixX3d fibre_points(const anatomy::SubjectAnatomy& anatomy) {
  Eigen::Index n = 0;
  for (const auto& m : anatomy.muscles)
    for (const auto& f : m.fibres.fibres)
      n += f.points_m.rows();
  Eigen::MatrixX3d points(n, 3);
  Eigen::Index row = 0;
  for (const auto& m : anatomy.muscles)
    for (const auto& f : m.fibres.fibres) {
      points.middleRows(row, f.points_m.rows()) = f.points_m;
      row += f.points_m.rows();
    }
  return points;
}

LeadFieldEstimate estimate_lead_field_run(double n_nodes, double n_electrodes, double n_points,
                                          const LeadFieldRunOptions& options) {
  constexpr double gib = 1024.0 * 1024.0 * 1024.0;
  const double fill = std::pow(n_nodes, 4.0 / 3.0);
  const SolverParams& solver = options.conductor.solver;
  double factor = 45.0 * fill;
  const bool cg = solver.method == SolverMethod::iterative ||
                  (solver.method == SolverMethod::automatic && factor > solver.memory_budget_bytes);
  if (cg)
    factor = 0.0;
  const double lead_fields = 8.0 * n_nodes * n_electrodes;
  const double sampled = 8.0 * n_points * n_electrodes;
  const bool cached_sampled = sampled <= options.max_sampled_bytes;
  LeadFieldEstimate e;
  e.factor_bytes = factor;
  e.run.bytes = 4.0 * lead_fields + (cached_sampled ? 2.0 * sampled : 0.0) + 64.0 * n_points +
                (cg ? 900.0 : 600.0) * n_nodes + factor;
  const double factor_s = cg ? 0.0 : 2.8e-10 * n_nodes * n_nodes;
  const double solve_s = (cg ? 3.2e-7 : 1.6e-9) * fill * n_electrodes;
  const double locate_s = 1e-5 * n_points;
  const double write_s = 5e-9 * (lead_fields + (cached_sampled ? sampled : 0.0) + 40.0 * n_points);
  e.run.seconds = factor_s + solve_s + locate_s + write_s;
  e.run.time_parts = "unless cached: " +
                     (cg ? std::string("conjugate gradients ")
                         : "factorisation " + format_duration(factor_s) + ", solves ") +
                     format_duration(solve_s) + ", locating the fibre points " +
                     format_duration(locate_s) + ", writing " + format_duration(write_s);
  e.run.drivers =
      format_number(n_nodes) + " mesh nodes (mesh.cell_size_mm.*) x " +
      format_number(n_electrodes) + " electrodes (electrodes.grids), " + format_number(n_points) +
      " fibre points (volume_conductor.max_sampled_GiB = " +
      format_number(options.max_sampled_bytes / gib) + "), " +
      (cg ? "conjugate gradients (volume_conductor.method = " + to_string(solver.method) + ")"
          : "Cholesky factor ~" + format_number(std::round(factor / gib * 1e3) / 1e3) +
                " GiB by a fill estimate");
  return e;
}

namespace {

/// Factorise once, solve per electrode, reference the lead fields.
LeadFieldCache solve_lead_fields(const meshing::TetMesh& mesh, const anatomy::TissueTable& tissues,
                                 const ElectrodeLayout& layout, const LeadFieldIdentity& identity,
                                 const LeadFieldRunOptions& options,
                                 const ProgressCallback& progress, LeadFieldRun& run) {
  VolumeConductorParams vp = options.conductor;
  vp.reference_node = identity.reference_node;
  // The factor's exact size is known after CHOLMOD's analysis: checked before it is allocated.
  vp.solver.before_factorising = [&options](const SolverReport& r) {
    constexpr double gib = 1024.0 * 1024.0 * 1024.0;
    check_memory_estimate(
        options.memory_beside_factor_bytes + r.estimated_factor_bytes,
        "leadfield (with its Cholesky factor)",
        format_number(static_cast<double>(r.n_rows)) +
            " unknowns (mesh.cell_size_mm.*): a factor of " +
            format_number(std::round(r.estimated_factor_bytes / gib * 1e3) / 1e3) +
            " GiB by CHOLMOD's analysis (" + r.ordering + " ordering) beside " +
            format_number(std::round(options.memory_beside_factor_bytes / gib * 1e3) / 1e3) +
            " GiB for the lead fields; volume_conductor.method = iterative needs no factor");
  };
  VolumeConductor conductor(mesh, tissues, vp);
  run.solver = conductor.solver().report();
  const Eigen::MatrixXd rhs =
      layout_currents(mesh, conductor.locator(), layout, identity.reference_node);
  Stopwatch watch;
  Eigen::MatrixXd raw;
  if (options.share.active()) {
    const auto [first, count] = options.share.range(rhs.cols(), vp.solver.block_columns);
    raw = options.share.gather(
        conductor.solver().solve(rhs.middleCols(first, count), progress, "lead fields"),
        rhs.cols());
  } else {
    raw = conductor.solver().solve(rhs, progress, "lead fields");
  }
  run.solve_s = watch.elapsed_s();
  LeadFieldCache cache;
  if (raw.cols() == 0 && rhs.cols() > 0) { // another process gathered them
    run.written = false;
    return cache;
  }
  cache.key = run.key;
  cache.reference = layout.reference;
  cache.reference_node = identity.reference_node;
  cache.method = to_string(run.solver.method);
  cache.lead_fields_V_per_A = apply_reference(raw, layout);
  return cache;
}

/// Locates `points` in the mesh and samples the lead fields there when they fit the budget.
void sample_at_points(const meshing::TetMesh& mesh, const Eigen::MatrixX3d& points,
                      const std::string& sampling_key, double max_sampled_bytes,
                      LeadFieldCache& cache) {
  const PointLocator locator(mesh);
  cache.points_m = points;
  cache.locations = locator.locate(points);
  cache.sampling_key = sampling_key;
  const auto n_el = cache.lead_fields_V_per_A.cols();
  const double bytes = 8.0 * static_cast<double>(points.rows()) * static_cast<double>(n_el);
  if (bytes <= max_sampled_bytes)
    cache.sampled_V_per_A = sample_or_nan(cache.locations, cache.lead_fields_V_per_A);
  else
    log_warning("sampled lead fields at ", points.rows(), " fibre points x ", n_el,
                " electrodes would take ", bytes / (1024.0 * 1024.0 * 1024.0),
                " GiB (> volume_conductor.max_sampled_GiB = ",
                max_sampled_bytes / (1024.0 * 1024.0 * 1024.0),
                "): only the point locations are cached");
  if (cache.locations.n_outside() > 0)
    log_warning(cache.locations.n_outside(), " of ", points.rows(),
                " fibre points lie outside the mesh (sampled as NaN)");
}

} // namespace

LeadFieldRun lead_fields_with_cache(const meshing::TetMesh& mesh,
                                    const anatomy::TissueTable& tissues,
                                    const ElectrodeLayout& layout, const Eigen::MatrixX3d& points,
                                    const std::filesystem::path& cache_file,
                                    const LeadFieldRunOptions& options,
                                    const ProgressCallback& progress) {
  LeadFieldRun run;
  const LeadFieldIdentity identity =
      lead_field_identity(mesh, tissues, options.conductor.reference_node, layout);
  run.key = key_hex(identity.key);
  const std::string skey =
      points.rows() > 0 ? key_hex(sampling_key(identity.key, points)) : std::string();
  std::optional<LeadFieldCache> cached;
  if (options.reuse_cache)
    cached = read_lead_field_cache(cache_file, run.key, skey);
  run.cache_hit = cached.has_value();
  bool rewrite = !run.cache_hit;
  if (run.cache_hit) {
    log_info("cache hit: ", cache_file.string(), " (key ", run.key, ")");
    run.cache = std::move(*cached);
  } else {
    log_info("cache miss: computing the lead fields (key ", run.key, ")");
    run.cache = solve_lead_fields(mesh, tissues, layout, identity, options, progress, run);
    if (!run.written)
      return run;
  }
  if (points.rows() > 0 && run.cache.sampling_key.empty()) {
    sample_at_points(mesh, points, skey, options.max_sampled_bytes, run.cache);
    rewrite = true;
  }
  if (rewrite && options.writes_cache)
    write_lead_field_cache(cache_file, run.cache);
  return run;
}

} // namespace myotwin::forward
