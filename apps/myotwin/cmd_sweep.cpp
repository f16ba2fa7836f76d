// `myotwin sweep SWEEP.json -o OUT`: many runs of the chain (subjects x config overrides), each a
// `myotwin pipeline` in OUT/runs/NAME with its stage keys and manifest, so that an interrupted
// sweep resumes where it stopped. The stages that runs of one subject share when their settings
// agree (anatomy, mesh, lead fields) run once in OUT/shared/NAME, and each run's folder links to
// their files (its manifest takes their records, so its pipeline reuses them). Serial by default;
// under mpirun or srun, rank 0 hands out the tasks one at a time (shared stages first, a run
// once its shared stages are done) to every rank including itself, and collects one summary row
// per run; OUT/sweep_summary.csv and .json at the end (docs/scaling.md).

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <thread>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "mpi_world.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "pipeline_manifest.hpp"
#include "sweep_dataset.hpp"
#include "sweep_plan.hpp"
#include "sweep_run.hpp"

namespace myotwin::app {

namespace {

namespace fs = std::filesystem;

/// Up to this many runs, every run's whole configuration is read before the sweep starts (about
/// 2.5 ms each); above, each distinct setting once over the base config (a combination that
/// only fails together fails when its run starts, as a failed row).
constexpr std::size_t max_runs_checked_each = 1000;

int run_sweep(const SweepOptions& o) {
  Stopwatch watch;
  set_log_level(o.quiet ? LogLevel::warning : o.verbose ? LogLevel::debug : LogLevel::info);
  mpi::World& world = mpi::World::get();
  world.set_collective(false); // each rank runs its own tasks' stages alone
  const bool root = world.rank() == 0;

  // 1. The plan: every rank reads and checks the same file (only rank 0 reports its errors).
  SweepPlan plan;
  try {
    plan = read_sweep_plan(o.file, max_runs_checked_each);
  } catch (const Error&) {
    if (!root)
      return static_cast<int>(ExitCode::bad_input);
    throw;
  }
  const std::size_t n_tasks = plan.shared.size() + plan.runs.size();
  if (root && !o.quiet)
    std::cout << "sweep: " << plan.runs.size() << " runs of " << plan.subjects.size()
              << " subject(s), " << plan.shared.size() << " set(s) of shared stages, "
              << world.size() << " rank(s); " << o.output.string() << "\n";
  if (root && static_cast<std::size_t>(world.size()) > plan.runs.size())
    log_warning("sweep: ", world.size(), " ranks for ", plan.runs.size(),
                " runs: ", world.size() - static_cast<int>(plan.runs.size()),
                " rank(s) will have no run of their own to do");

  // 2. Threads per rank: by default the node's cores shared among its ranks.
  int threads = o.threads;
  if (threads == 0 && world.size() > 1)
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) /
                              mpi::launcher_local_size());

  // 3. The tasks: shared stages, then runs, handed out in that order.
  ensure_output_dir(o.output);
  Scheduler scheduler(plan);
  SweepProgress progress{plan, o.quiet, std::vector<std::string>(plan.runs.size())};
  if (o.dry_run) {
    if (root) {
      for (std::size_t r = 0; r < plan.runs.size(); ++r)
        progress.rows[r] = sweep_row_not_run(plan, r, "planned");
      write_sweep_summary(plan, progress.rows, o.output);
      if (!o.quiet)
        std::cout << "sweep: dry run: " << n_tasks << " tasks planned; "
                  << (o.output / "sweep_summary.csv").string() << "\n";
    }
    return 0;
  }
  if (world.size() == 1) {
    for (std::int64_t task = scheduler.next(); task >= 0; task = scheduler.next())
      progress.record(task, run_sweep_task(plan, task, o, threads, 0), scheduler);
  } else {
    try {
      if (root)
        serve_sweep_tasks(world, plan, o, threads, scheduler, progress);
      else
        work_for_rank0(world, plan, o, threads);
    } catch (const std::exception& e) {
      std::cerr << "error: sweep: rank " << world.rank() << ": " << e.what()
                << "; stopping every rank\n";
      world.abort(static_cast<int>(ExitCode::runtime));
    }
  }

  // 4. The summary (rank 0).
  if (!root)
    return 0;
  write_sweep_summary(plan, progress.rows, o.output);
  if (o.dataset) {
    const std::size_t n_units =
        write_sweep_dataset(plan, progress.rows, o.output, o.chunk_MiB * 1024.0 * 1024.0);
    if (!o.quiet)
      std::cout << "sweep: dataset of " << n_units << " units' MUAPs and parameters in "
                << (o.output / "dataset").string() << " (index.json)\n";
  }
  if (!o.quiet)
    std::cout << "sweep: " << plan.runs.size() - progress.n_failed << " of " << plan.runs.size()
              << " runs ok in " << std::fixed << std::setprecision(1) << watch.elapsed_s() << " s; "
              << (o.output / "sweep_summary.csv").string() << "\n";
  if (progress.n_failed > 0)
    throw Error("sweep: " + std::to_string(progress.n_failed) + " of " +
                std::to_string(plan.runs.size()) + " runs failed (their rows in " +
                (o.output / "sweep_summary.csv").string() +
                " say why; run the sweep again to retry them)");
  return 0;
}

} // namespace

void add_sweep_command(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<SweepOptions>();
  auto* cmd = app.add_subcommand(
      "sweep",
      "many runs of the chain (subjects x config overrides, docs/scaling.md), each a pipeline in "
      "OUT/runs/NAME; anatomy, mesh and lead fields that runs share are computed once in "
      "OUT/shared/NAME; a second sweep resumes where one stopped; under mpirun or srun the ranks "
      "share the runs; writes OUT/sweep_summary.csv and .json");
  cmd->add_option("SWEEP", o->file, "sweep file (JSON: subjects, config, product or runs)")
      ->required();
  cmd->add_option("-o,--output", o->output, "output folder")->required();
  cmd->add_option("--threads", o->threads,
                  "threads of each run (0: all cores, or under MPI the node's cores divided "
                  "among its ranks)")
      ->check(thread_count());
  cmd->add_flag("--dry-run", o->dry_run,
                "check the sweep file and write the summary of the planned runs without running");
  cmd->add_flag("--report", o->report, "write each run's report.html");
  cmd->add_flag("--dataset", o->dataset,
                "at the end, write every run's MUAPs and unit parameters into OUT/dataset in "
                "chunks with an index (index.json), for training pipelines to stream");
  cmd->add_option("--chunk-MiB", o->chunk_MiB, "largest chunk of the dataset's MUAPs [MiB]")
      ->check(bounded(0.001, 1e6, "MiB"));
  cmd->add_flag("--quiet", o->quiet, "print warnings and errors only");
  cmd->add_flag("--verbose", o->verbose, "print every stage's messages");
  cmd->callback([&run, o] { run = [o] { return run_sweep(*o); }; });
}

} // namespace myotwin::app
