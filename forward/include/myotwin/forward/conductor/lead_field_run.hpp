#pragma once
/// \file lead_field_run.hpp
/// The lead fields of placed electrodes as `myotwin leadfield` makes them: reused from the cache
/// file when its key matches (lead_field_cache.hpp), else solved (the stiffness matrix factorised
/// once, one solve per electrode, lead_field.hpp), sampled at the anatomy's fibre points (located
/// once), and the cache file written when anything was computed.

#include <filesystem>
#include <functional>
#include <string>
#include <utility>

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

/// The electrodes' solves shared among processes (MPI ranks, docs/scaling.md): each process
/// factorises the matrix and solves its own columns, and one process gathers them all and writes
/// the cache. The columns go to processes in whole blocks of the solver's block_columns, so
/// every column is solved in the same CHOLMOD call as in one process: the cache has the same
/// bytes.
struct ColumnShare {
  /// This process's columns of `n_columns` in blocks of `block`: (first column, count).
  std::function<std::pair<Eigen::Index, Eigen::Index>(Eigen::Index n_columns, Eigen::Index block)>
      range;
  /// Gathers every process's solved columns (#nodes x count, this process's `mine`): all
  /// #nodes x `n_columns` on the process that writes the cache, an empty matrix on the others.
  std::function<Eigen::MatrixXd(const Eigen::MatrixXd& mine, Eigen::Index n_columns)> gather;
  [[nodiscard]] bool active() const { return range && gather; }
};

/// Options of lead_fields_with_cache().
struct LeadFieldRunOptions {
  /// When active: the solves shared among processes; lead_fields_with_cache() returns on the
  /// processes that do not write the cache with `written` false and no lead fields.
  ColumnShare share;
  /// false: this process never writes the cache file (another process with the same inputs
  /// does).
  bool writes_cache = true;
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
  bool written = true;    ///< this process has the lead fields (false: another one gathered them)
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
