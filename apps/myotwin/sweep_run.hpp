#pragma once
// How `myotwin sweep` runs its tasks (docs/scaling.md): the shared stages of each subject and
// settings group first, then each run once its shared stages are done, serially or handed out
// by MPI rank 0; one summary row per run, written to OUT/sweep_summary.csv and .json.

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mpi_world.hpp"
#include "sweep_plan.hpp"

namespace myotwin::app {

/// The options of `myotwin sweep`.
struct SweepOptions {
  std::filesystem::path file;
  std::filesystem::path output;
  int threads = 0;
  bool quiet = false;
  bool verbose = false;
  bool dry_run = false;
  bool report = false;
  bool dataset = false;
  double chunk_MiB = 256.0;
};

/// Tasks are numbered: the shared stages 0 .. n_shared - 1, then the runs.
constexpr std::int64_t task_wait = -2; ///< nothing ready yet: ask again later
constexpr std::int64_t task_done = -1; ///< nothing left

/// Which task runs next: the shared stages first (in the order of the runs that use them), then
/// each run once its shared stages are done, in the order of the plan.
class Scheduler {
public:
  explicit Scheduler(const SweepPlan& plan)
      : plan_(plan), shared_state_(plan.shared.size(), pending), runs_of_(plan.shared.size()) {
    for (std::size_t r = 0; r < plan.runs.size(); ++r)
      runs_of_[plan.runs[r].shared].push_back(r);
  }
  /// The next task, task_wait or task_done.
  std::int64_t next() {
    if (next_shared_ < plan_.shared.size()) {
      shared_state_[next_shared_] = running;
      ++n_running_;
      return static_cast<std::int64_t>(next_shared_++);
    }
    if (!ready_.empty()) {
      const std::size_t r = *ready_.begin();
      ready_.erase(ready_.begin());
      ++n_running_;
      return static_cast<std::int64_t>(plan_.shared.size() + r);
    }
    return n_running_ > 0 || n_finished_runs_ < plan_.runs.size() ? task_wait : task_done;
  }
  /// Task `task` has finished. When shared stages failed, the runs that use them are returned
  /// (they fail without running).
  std::vector<std::size_t> finish(std::int64_t task, bool ok) {
    --n_running_;
    const auto t = static_cast<std::size_t>(task);
    if (t >= plan_.shared.size()) {
      ++n_finished_runs_;
      return {};
    }
    shared_state_[t] = ok ? done : failed;
    if (ok) {
      ready_.insert(runs_of_[t].begin(), runs_of_[t].end());
      return {};
    }
    n_finished_runs_ += runs_of_[t].size();
    return runs_of_[t];
  }

private:
  enum State { pending, running, done, failed };
  const SweepPlan& plan_;
  std::vector<State> shared_state_;
  std::vector<std::vector<std::size_t>> runs_of_;
  std::set<std::size_t> ready_;
  std::size_t next_shared_ = 0;
  std::size_t n_running_ = 0;
  std::size_t n_finished_runs_ = 0;
};

/// Rank 0's bookkeeping of finished tasks: rows kept, one line printed per task.
struct SweepProgress {
  const SweepPlan& plan;
  bool quiet;
  std::vector<std::string> rows;
  std::size_t n_done = 0;
  std::size_t n_failed = 0;

  /// Records the finished task `task` with its summary row and tells the scheduler.
  void record(std::int64_t task, const nlohmann::json& row, Scheduler& scheduler);
};

/// Runs task `task` of `plan` (shared stages or a run, in OUT = `o.output`) with `threads`
/// threads on rank `rank` and returns its summary row (a JSON object; a failure is a row with
/// status "failed", never an exception).
nlohmann::json run_sweep_task(const SweepPlan& plan, std::int64_t task, const SweepOptions& o,
                              int threads, int rank);

/// Rank 0 under MPI: hands out tasks to every rank (its own share through a second thread, which
/// makes no MPI call) until none is left.
void serve_sweep_tasks(const mpi::World& world, const SweepPlan& plan, const SweepOptions& o,
                       int threads, Scheduler& scheduler, SweepProgress& progress);

/// A rank other than 0: asks rank 0 for tasks and runs them until there are none.
void work_for_rank0(const mpi::World& world, const SweepPlan& plan, const SweepOptions& o,
                    int threads);

/// Writes OUT/sweep_summary.json and .csv from the rows (compact JSON text, one per run).
void write_sweep_summary(const SweepPlan& plan, const std::vector<std::string>& rows,
                         const std::filesystem::path& out);

/// The summary row of run `r` that did not run (its shared stages failed, or a dry run).
std::string sweep_row_not_run(const SweepPlan& plan, std::size_t r, const std::string& status);

} // namespace myotwin::app
