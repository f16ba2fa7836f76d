// `myotwin sweep SWEEP.json -o OUT`: many runs of the chain (subjects x config overrides), each a
// `myotwin pipeline` in OUT/runs/NAME with its stage keys and manifest, so that an interrupted
// sweep resumes where it stopped. The stages that runs of one subject share when their settings
// agree (anatomy, mesh, lead fields) run once in OUT/shared/NAME, and each run's folder links to
// their files (its manifest takes their records, so its pipeline reuses them). Serial by default;
// under mpirun or srun, rank 0 hands out the tasks one at a time (shared stages first, a run
// once its shared stages are done) to every rank including itself, and collects one summary row
// per run; OUT/sweep_summary.csv and .json at the end (docs/scaling.md).

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
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

namespace myotwin::app {

namespace {

namespace fs = std::filesystem;

/// Up to this many runs, every run's whole configuration is read before the sweep starts (about
/// 2.5 ms each); above, each distinct setting once over the base config (a combination that
/// only fails together fails when its run starts, as a failed row).
constexpr std::size_t max_runs_checked_each = 1000;

/// The options of `myotwin sweep`.
struct SweepOptions {
  fs::path file;
  fs::path output;
  int threads = 0;
  bool quiet = false;
  bool verbose = false;
  bool dry_run = false;
  bool report = false;
  bool dataset = false;
  double chunk_MiB = 256.0;
};

/// The shared stages: the chain up to and including `leadfield`.
std::vector<std::string> shared_stage_names() {
  std::vector<std::string> names;
  for (const auto& stage : chain()) {
    names.push_back(stage.name);
    if (stage.name == "leadfield")
      break;
  }
  return names;
}

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

/// The pipeline's command line of a task in `dir`.
std::vector<std::string> pipeline_arguments(const SweepPlan& plan, const SweepRun& run,
                                            const fs::path& dir, bool shared, const SweepOptions& o,
                                            int threads) {
  std::vector<std::string> args = {"pipeline", plan.subjects[run.subject].file.string(), "-o",
                                   dir.string()};
  if (shared)
    args.insert(args.end(), {"--until", "leadfield"});
  if (shared || !o.report)
    args.emplace_back("--no-report");
  if (!plan.base_config.empty())
    args.insert(args.end(), {"--config", plan.base_config.string()});
  const auto settings = setting_arguments(run, shared);
  args.insert(args.end(), settings.begin(), settings.end());
  if (threads > 0)
    args.insert(args.end(), {"--threads", std::to_string(threads)});
  args.emplace_back(o.verbose ? "--verbose" : "--quiet");
  return args;
}

/// Links the outputs of the shared stages in `shared_dir` into the run folder `run_dir` and
/// gives the run's manifest their records, so that the run's pipeline reuses them (it still
/// checks their keys and contents, through the links). \throws Error when the shared stages
/// left no record.
void link_shared_stages(const fs::path& shared_dir, const std::string& shared_name,
                        const fs::path& run_dir) {
  const nlohmann::json shared = read_manifest(shared_dir / relative_path(Output::manifest));
  const fs::path run_manifest = run_dir / relative_path(Output::manifest);
  nlohmann::json manifest = read_manifest(run_manifest);
  for (const auto& stage : shared_stage_names()) {
    if (!shared["stages"].contains(stage))
      throw Error("sweep: " + shared_dir.string() + ": the shared stage `" + stage +
                  "` has no record in its manifest");
    const auto& record = shared["stages"][stage];
    for (const auto& [relative, hash] : record.at("outputs").items()) {
      const fs::path link = run_dir / relative;
      // From OUT/runs/NAME/<relative's folder> up to OUT, then down into the shared folder.
      std::string target;
      for (std::size_t k = 0;
           k < static_cast<std::size_t>(std::distance(fs::path(relative).parent_path().begin(),
                                                      fs::path(relative).parent_path().end())) +
                   2;
           ++k)
        target += "../";
      target += "shared/" + shared_name + "/" + relative;
      std::error_code ec;
      if (fs::is_symlink(link, ec) && fs::read_symlink(link, ec) == fs::path(target))
        continue;
      fs::create_directories(link.parent_path());
      fs::remove(link, ec);
      fs::create_symlink(target, link);
    }
    manifest["stages"][stage] = record;
  }
  ensure_output_dir(run_manifest.parent_path());
  write_text_file(run_manifest, manifest.dump(2) + "\n");
}

/// The stages of `after` whose records are not those of `before` (they ran).
std::string stages_that_ran(const nlohmann::json& before, const nlohmann::json& after) {
  std::string ran;
  for (const auto& stage : chain())
    if (after["stages"].contains(stage.name) &&
        (!before["stages"].contains(stage.name) ||
         before["stages"][stage.name] != after["stages"][stage.name]))
      ran += (ran.empty() ? "" : " ") + stage.name;
  return ran;
}

/// What a rank does with a task: runs it and returns its summary row (a JSON object).
nlohmann::json run_task(const SweepPlan& plan, std::int64_t task, const SweepOptions& o,
                        int threads, int rank) {
  Stopwatch watch;
  const auto t = static_cast<std::size_t>(task);
  const fs::path out = o.output;
  if (t < plan.shared.size()) {
    const SharedStages& sh = plan.shared[t];
    const fs::path dir = out / "shared" / sh.name;
    const int code =
        run_command(pipeline_arguments(plan, plan.runs[sh.first_run], dir, true, o, threads));
    return {
        {"shared", sh.name}, {"exit_code", code}, {"time_s", watch.elapsed_s()}, {"rank", rank}};
  }
  const std::size_t r = t - plan.shared.size();
  const SweepRun& run = plan.runs[r];
  const fs::path dir = out / "runs" / run.name;
  nlohmann::json row = {{"run", run.name},
                        {"index", r},
                        {"subject", plan.subjects[run.subject].name},
                        {"shared", plan.shared[run.shared].name}};
  nlohmann::json settings = nlohmann::json::object();
  for (const auto& [key, value] : run.settings)
    settings[key] = value;
  row["settings"] = settings;
  int code = 0;
  try {
    ensure_output_dir(dir);
    link_shared_stages(out / "shared" / plan.shared[run.shared].name, plan.shared[run.shared].name,
                       dir);
    const fs::path manifest = dir / relative_path(Output::manifest);
    const nlohmann::json before = read_manifest(manifest);
    code = run_command(pipeline_arguments(plan, run, dir, false, o, threads));
    row["stages_run"] = stages_that_ran(before, read_manifest(manifest));
    if (code == 0) {
      const auto s = read_json(dir / relative_path(Output::pipeline_summary));
      for (const char* k :
           {"units_simulated", "units_recruited", "units_identified", "units_matched", "mean_roa"})
        row[k] = s.at(k);
    }
  } catch (const std::exception& e) {
    row["error"] = e.what();
    code = code == 0 ? static_cast<int>(ExitCode::runtime) : code;
  }
  row["status"] = code == 0 ? "ok" : "failed";
  row["exit_code"] = code;
  row["time_s"] = watch.elapsed_s();
  row["rank"] = rank;
  return row;
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos)
    return text;
  std::string quoted = "\"";
  for (const char c : text)
    quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

/// The text of a row's value in the CSV: strings bare, numbers as JSON writes them, absent
/// empty.
std::string csv_value(const nlohmann::json& row, const std::string& key) {
  if (!row.contains(key) || row[key].is_null())
    return "";
  return csv_field(row[key].is_string() ? row[key].get<std::string>() : row[key].dump());
}

/// Writes OUT/sweep_summary.json and .csv from the rows (compact JSON text, one per run).
void write_summary(const SweepPlan& plan, const std::vector<std::string>& rows,
                   const fs::path& out) {
  static const std::vector<std::string> columns = {
      "status",        "exit_code", "units_simulated", "units_recruited", "units_identified",
      "units_matched", "mean_roa",  "stages_run",      "time_s",          "rank"};
  std::ostringstream csv;
  csv << "run,subject";
  for (const auto& key : plan.keys)
    csv << "," << csv_field(key);
  for (const auto& c : columns)
    csv << "," << c;
  csv << "\n";
  std::ostringstream json;
  json << "{\"format\": \"myotwin sweep summary 1\", \"sweep\": "
       << nlohmann::json(plan.file.string()).dump() << ", \"runs\": [\n";
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const nlohmann::json row = nlohmann::json::parse(rows[r]);
    csv << csv_value(row, "run") << "," << csv_value(row, "subject");
    for (const auto& key : plan.keys)
      csv << "," << (row["settings"].contains(key) ? csv_field(row["settings"][key].dump()) : "");
    for (const auto& c : columns)
      csv << "," << csv_value(row, c);
    csv << "\n";
    json << "  " << rows[r] << (r + 1 < rows.size() ? ",\n" : "\n");
  }
  json << "]}\n";
  write_text_file(out / "sweep_summary.csv", csv.str());
  write_text_file(out / "sweep_summary.json", json.str());
}

/// The row of a run that did not run (its shared stages failed, or a dry run).
std::string row_not_run(const SweepPlan& plan, std::size_t r, const std::string& status) {
  nlohmann::json settings = nlohmann::json::object();
  for (const auto& [key, value] : plan.runs[r].settings)
    settings[key] = value;
  return nlohmann::json{{"run", plan.runs[r].name},
                        {"index", r},
                        {"subject", plan.subjects[plan.runs[r].subject].name},
                        {"shared", plan.shared[plan.runs[r].shared].name},
                        {"settings", settings},
                        {"status", status}}
      .dump();
}

/// Rank 0's bookkeeping of finished tasks: rows kept, one line printed per task.
struct Progress {
  const SweepPlan& plan;
  bool quiet;
  std::vector<std::string> rows;
  std::size_t n_done = 0;
  std::size_t n_failed = 0;

  void record(std::int64_t task, const nlohmann::json& row, Scheduler& scheduler) {
    const auto t = static_cast<std::size_t>(task);
    const bool ok = row.value("exit_code", 1) == 0;
    const auto skipped = scheduler.finish(task, ok);
    const std::size_t total = plan.shared.size() + plan.runs.size();
    ++n_done;
    if (t < plan.shared.size()) {
      if (!quiet || !ok)
        std::cout << "sweep: [" << n_done << "/" << total << "] shared stages "
                  << row.value("shared", "") << ": " << (ok ? "ok" : "FAILED") << ", " << std::fixed
                  << std::setprecision(1) << row.value("time_s", 0.0) << " s on rank "
                  << row.value("rank", 0) << std::endl;
      for (const std::size_t r : skipped) {
        rows[r] = row_not_run(plan, r,
                              "failed: shared stages failed (shared/" + plan.shared[t].name + ")");
        ++n_done;
        ++n_failed;
      }
      return;
    }
    const std::size_t r = t - plan.shared.size();
    rows[r] = row.dump();
    n_failed += ok ? 0 : 1;
    if (!quiet || !ok)
      std::cout << "sweep: [" << n_done << "/" << total << "] run " << row.value("run", "") << ": "
                << (ok ? "ok" : "FAILED") << ", " << std::fixed << std::setprecision(1)
                << row.value("time_s", 0.0) << " s on rank " << row.value("rank", 0) << " (ran: "
                << (row.value("stages_run", "").empty() ? "nothing, all reused"
                                                        : row.value("stages_run", ""))
                << ")" << std::endl;
  }
};

constexpr int tag_request = 1; ///< worker -> rank 0: the finished task's row, a new one wanted
constexpr int tag_task = 2;    ///< rank 0 -> worker: the task number

/// Rank 0 under MPI: hands out tasks to every rank (its own share through a second thread, which
/// makes no MPI call) until none is left.
void serve_tasks(const mpi::World& world, const SweepPlan& plan, const SweepOptions& o, int threads,
                 Scheduler& scheduler, Progress& progress) {
  // The local worker: it takes a task from `assigned`, runs it and leaves its row in `result`.
  std::mutex m;
  std::condition_variable cv;
  std::optional<std::int64_t> assigned;
  std::optional<nlohmann::json> result;
  bool local_wants = true;
  std::thread local([&] {
    while (true) {
      std::int64_t task = 0;
      {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return assigned.has_value(); });
        task = *assigned;
        assigned.reset();
      }
      if (task == task_done)
        return;
      nlohmann::json row;
      if (task != task_wait)
        row = run_task(plan, task, o, threads, 0);
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::lock_guard lock(m);
      result = row.is_null() ? nlohmann::json{{"task", task}}
                             : nlohmann::json{{"task", task}, {"row", row}};
      local_wants = true;
    }
  });
  const auto handle = [&](const nlohmann::json& message) {
    const std::int64_t task = message.value("task", task_wait);
    if (task >= 0 && message.contains("row"))
      progress.record(task, message["row"], scheduler);
  };
  int n_remote_running = world.size() - 1;
  bool local_running = true;
  while (n_remote_running > 0 || local_running) {
    bool busy = false;
    if (const auto source = world.probe(tag_request)) {
      int from = 0;
      handle(nlohmann::json::parse(world.receive(*source, tag_request, &from)));
      const std::int64_t next = scheduler.next();
      world.send(from, tag_task, std::to_string(next));
      n_remote_running -= next == task_done ? 1 : 0;
      busy = true;
    }
    if (local_running) {
      std::lock_guard lock(m);
      if (local_wants) {
        if (result)
          handle(*result);
        result.reset();
        local_wants = false;
        assigned = scheduler.next();
        local_running = *assigned != task_done;
        cv.notify_one();
        busy = true;
      }
    }
    if (!busy)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  local.join();
}

/// A rank other than 0: asks for tasks and runs them until there are none.
void work_for_rank0(const mpi::World& world, const SweepPlan& plan, const SweepOptions& o,
                    int threads) {
  nlohmann::json message = {{"task", task_wait}};
  while (true) {
    world.send(0, tag_request, message.dump());
    const std::int64_t task = std::stoll(world.receive(0, tag_task));
    if (task == task_done)
      return;
    if (task == task_wait) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      message = {{"task", task_wait}};
      continue;
    }
    message = {{"task", task}, {"row", run_task(plan, task, o, threads, world.rank())}};
  }
}

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
  Progress progress{plan, o.quiet, std::vector<std::string>(plan.runs.size())};
  if (o.dry_run) {
    if (root) {
      for (std::size_t r = 0; r < plan.runs.size(); ++r)
        progress.rows[r] = row_not_run(plan, r, "planned");
      write_summary(plan, progress.rows, o.output);
      if (!o.quiet)
        std::cout << "sweep: dry run: " << n_tasks << " tasks planned; "
                  << (o.output / "sweep_summary.csv").string() << "\n";
    }
    return 0;
  }
  if (world.size() == 1) {
    for (std::int64_t task = scheduler.next(); task >= 0; task = scheduler.next())
      progress.record(task, run_task(plan, task, o, threads, 0), scheduler);
  } else {
    try {
      if (root)
        serve_tasks(world, plan, o, threads, scheduler, progress);
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
  write_summary(plan, progress.rows, o.output);
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
