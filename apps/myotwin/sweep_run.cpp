// How `myotwin sweep` runs its tasks: the pipeline of each task, the links from a run's folder to
// its shared stages, the handing out of tasks among MPI ranks and the summary files.

#include "sweep_run.hpp"

#include <chrono>
#include <condition_variable>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/timer.hpp"
#include "pipeline_manifest.hpp"

namespace myotwin::app {

namespace fs = std::filesystem;

namespace {

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

constexpr int tag_request = 1; ///< worker -> rank 0: the finished task's row, a new one wanted
constexpr int tag_task = 2;    ///< rank 0 -> worker: the task number

} // namespace

/// What a rank does with a task: runs it and returns its summary row (a JSON object).
nlohmann::json run_sweep_task(const SweepPlan& plan, std::int64_t task, const SweepOptions& o,
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
/// Writes OUT/sweep_summary.json and .csv from the rows (compact JSON text, one per run).
void write_sweep_summary(const SweepPlan& plan, const std::vector<std::string>& rows,
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
std::string sweep_row_not_run(const SweepPlan& plan, std::size_t r, const std::string& status) {
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

void SweepProgress::record(std::int64_t task, const nlohmann::json& row, Scheduler& scheduler) {
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
      rows[r] = sweep_row_not_run(
          plan, r, "failed: shared stages failed (shared/" + plan.shared[t].name + ")");
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

/// Rank 0 under MPI: hands out tasks to every rank (its own share through a second thread, which
/// makes no MPI call) until none is left.
void serve_sweep_tasks(const mpi::World& world, const SweepPlan& plan, const SweepOptions& o,
                       int threads, Scheduler& scheduler, SweepProgress& progress) {
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
        row = run_sweep_task(plan, task, o, threads, 0);
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
    message = {{"task", task}, {"row", run_sweep_task(plan, task, o, threads, world.rank())}};
  }
}

} // namespace myotwin::app
