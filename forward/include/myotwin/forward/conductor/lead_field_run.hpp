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
};

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
