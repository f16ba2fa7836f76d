#pragma once
/// \file lead_field_run.hpp
/// The lead fields of placed electrodes as `myotwin leadfield` makes them: reused from the cache
/// file when its key matches (lead_field_cache.hpp), else solved (the stiffness matrix factorised
/// once, one solve per electrode, lead_field.hpp), sampled at the anatomy's fibre points (located
/// once), and the cache file written when anything was computed.

#include <filesystem>
#include <string>

#include <Eigen/Core>

#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/core/progress.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/forward/conductor/lead_field.hpp"
#include "myotwin/forward/conductor/lead_field_cache.hpp"
#include "myotwin/forward/electrodes/electrodes.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin::forward {

/// Options of lead_fields_with_cache().
struct LeadFieldRunOptions {
  VolumeConductorParams conductor;
  /// The sampled lead fields are stored only up to this size [bytes] (the point locations
  /// always are).
  double max_sampled_bytes = 2.0 * 1024.0 * 1024.0 * 1024.0;
  bool reuse_cache = true; ///< false: recompute even when the cache's key matches
  /// The run's memory beside the Cholesky factor [bytes] (LeadFieldEstimate): after CHOLMOD's
  /// analysis, this plus the factor's exact size is checked against memory_limit_bytes()
  /// before the factorisation allocates it (BadInput naming both, exit 2).
  double memory_beside_factor_bytes = 0.0;
};

/// What lead_fields_with_cache() needs when it solves, estimated before it starts
/// (docs/reliability.md, "Bounded resources").
struct LeadFieldEstimate {
  RunEstimate run;           ///< memory with the factor's fill estimate, time, drivers
  double factor_bytes = 0.0; ///< the Cholesky factor's part of run.bytes (0 with CG)
};

/// The estimate for `n_nodes` mesh nodes, `n_electrodes` and `n_points` fibre points.
/// Memory: #nodes x #electrodes doubles four times (right-hand sides, solutions, referenced lead
/// fields, the cache writer's copy), the values sampled at the fibre points twice when they are
/// cached (#points x #electrodes, up to max_sampled_bytes; the values and the writer's copy), the
/// points and their locations (64 bytes each), the mesh, the stiffness matrix and CHOLMOD's copy
/// (~600 bytes per node), and the Cholesky factor by a fill estimate, 45 bytes x #nodes^(4/3)
/// (nested-dissection fill of a 3-D mesh; CHOLMOD's factors measured 38 and 41 bytes on the
/// sample forearm and the thigh), unless method `automatic` would use CG for it (factor above
/// the memory budget; CG then needs ~900 bytes per node in all). Time on 2 idle cores:
/// factorisation 2.8e-10 s x #nodes^2, solves per electrode 1.6e-9 s x #nodes^(4/3) (CG: 3.2e-7 s),
/// locating the fibre points 1e-5 s each, writing the cache 5 ns per byte
/// (docs/reliability.md says where each constant comes from and how close it came).
LeadFieldEstimate estimate_lead_field_run(double n_nodes, double n_electrodes, double n_points,
                                          const LeadFieldRunOptions& options);

/// What lead_fields_with_cache() did.
struct LeadFieldRun {
  LeadFieldCache cache;
  std::string key;        ///< the cache key of mesh, conductivities, reference and electrodes
  bool cache_hit = false; ///< the lead fields came from the file
  SolverReport solver;    ///< when solved
  double solve_s = 0.0;   ///< time of the solves (0 on a hit)
};

/// Every fibre point of `anatomy`, #points x 3 [m], muscle by muscle, fibre by fibre.
Eigen::MatrixX3d fibre_points(const anatomy::SubjectAnatomy& anatomy);

/// The lead fields of `layout` on `mesh` (see the file comment), sampled at `points` when it has
/// rows. \throws as VolumeConductor and the cache do; IoError when `cache_file` cannot be
/// written.
LeadFieldRun lead_fields_with_cache(const meshing::TetMesh& mesh,
                                    const anatomy::TissueTable& tissues,
                                    const ElectrodeLayout& layout, const Eigen::MatrixX3d& points,
                                    const std::filesystem::path& cache_file,
                                    const LeadFieldRunOptions& options,
                                    const ProgressCallback& progress = {});

} // namespace myotwin::forward
