#include "myotwin/forward/conductor/lead_field_run.hpp"

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

namespace {

/// Factorise once, solve per electrode, reference the lead fields.
LeadFieldCache solve_lead_fields(const meshing::TetMesh& mesh, const anatomy::TissueTable& tissues,
                                 const ElectrodeLayout& layout, const LeadFieldIdentity& identity,
                                 const LeadFieldRunOptions& options,
                                 const ProgressCallback& progress, LeadFieldRun& run) {
  VolumeConductorParams vp = options.conductor;
  vp.reference_node = identity.reference_node;
  VolumeConductor conductor(mesh, tissues, vp);
  run.solver = conductor.solver().report();
  const Eigen::MatrixXd rhs =
      layout_currents(mesh, conductor.locator(), layout, identity.reference_node);
  Stopwatch watch;
  const Eigen::MatrixXd raw = conductor.solver().solve(rhs, progress, "lead fields");
  run.solve_s = watch.elapsed_s();
  LeadFieldCache cache;
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
  }
  if (points.rows() > 0 && run.cache.sampling_key.empty()) {
    sample_at_points(mesh, points, skey, options.max_sampled_bytes, run.cache);
    rewrite = true;
  }
  if (rewrite)
    write_lead_field_cache(cache_file, run.cache);
  return run;
}

} // namespace myotwin::forward
