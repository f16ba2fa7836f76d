#pragma once
// The MPI world of this process (docs/scaling.md): the one translation unit that sees MPI
// (mpi_world.cpp, built with MPI when the CMake option MYOTWIN_MPI is on). A process started by
// mpirun or srun joins the world of its ranks; any other process is a world of one, with or
// without MPI in the build. Only small messages go through it: task numbers, summary rows, and
// the lead-field blocks that rank 0 gathers.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "myotwin/forward/conductor/lead_field_run.hpp"

namespace myotwin::app::mpi {

/// True when the program was built with MPI (CMake option MYOTWIN_MPI).
bool built_with_mpi();

/// The number of ranks the launcher (mpirun, srun) says the job has, from its environment
/// (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE... ); 1 when not started by one.
int launcher_world_size();

/// The ranks of the job started on this node (OMPI_COMM_WORLD_LOCAL_SIZE, SLURM_NTASKS_PER_NODE
/// ...); 1 when not known.
int launcher_local_size();

/// The world: MPI initialised on first use when the launcher started more than one rank, and
/// finalised when the program ends.
class World {
public:
  /// The world of this process. \throws Error when the launcher started several ranks but the
  /// program was built without MPI (each rank would do the whole work in the same folder).
  static World& get();
  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] int size() const { return size_; }
  /// True when a command may share its own work among the ranks (`leadfield` run by mpirun):
  /// more than one rank and no command above it has taken the ranks (a sweep gives each rank
  /// tasks of its own, and the stages it runs stay within their rank).
  [[nodiscard]] bool collective() const { return size_ > 1 && collective_; }
  /// Sets whether commands run from here on may share their work among the ranks.
  void set_collective(bool collective) { collective_ = collective; }
  /// Sends `bytes` to rank `to` with `tag` (blocking until the buffer can be reused).
  void send(int to, int tag, const std::string& bytes) const;
  /// Receives a message with `tag` from `from` (any rank when -1); returns its bytes and sets
  /// `source` to the sender.
  std::string receive(int from, int tag, int* source = nullptr) const;
  /// The rank of a message with `tag` waiting to be received, if any (does not block).
  [[nodiscard]] std::optional<int> probe(int tag) const;
  /// Sends doubles to rank `to` with `tag`.
  void send_doubles(int to, int tag, const std::vector<double>& values) const;
  /// Receives the doubles of a message with `tag` from `from`.
  [[nodiscard]] std::vector<double> receive_doubles(int from, int tag) const;
  /// Waits for every rank.
  void barrier() const;
  /// Stops every rank of the job with `code` (after an error that leaves the others waiting).
  [[noreturn]] void abort(int code) const;
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

private:
  World();
  int rank_ = 0;
  int size_ = 1;
  bool initialised_ = false;
  bool collective_ = true;
};

/// `leadfield` under mpirun: sets `options` so that each rank of `world` solves its share of
/// whole blocks of `block_columns` electrodes (the same CHOLMOD calls as a serial run, so the
/// same bits) and rank 0 gathers every rank's columns of `n_nodes` values into the full matrix
/// and alone writes the cache (forward::ColumnShare, LeadFieldRunOptions::writes_cache).
/// The gather throws Error when a rank sends another number of values than its block holds.
void share_lead_field_solves(const World& world, Eigen::Index n_nodes,
                             forward::LeadFieldRunOptions& options);

} // namespace myotwin::app::mpi
