// `myotwin pipeline SUBJECT.json -o OUT`: the whole chain with each stage's defaults (or the
// config's sections): anatomy, mesh, lead fields, simulation, decomposition and scoring, each
// run in this process as the command line `myotwin STAGE ...` would (run_command()).
//
// A stage is reused only when its key (a hash of everything it reads) is unchanged and its
// outputs on disk are what it wrote (OUT/pipeline/manifest.json; pipeline_manifest.hpp and
// docs/reliability.md). A stage's entry is removed from the manifest before it runs and written
// after it succeeds, so an interrupted or failed stage reruns. Ends with a summary table: units
// simulated, recruited, identified, and RoA per unit. `--until STAGE` stops after that stage.
// Then writes OUT/report.html (`myotwin report`) unless `--no-report`.

#include <iomanip>
#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hash.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "pipeline_manifest.hpp"

namespace myotwin::app {

namespace {

namespace fs = std::filesystem;

/// The options of `myotwin pipeline`.
struct PipelineOptions {
  SharedOptions shared;
  fs::path subject;
  bool force = false;
  std::string until;
  bool no_report = false;
};

/// Adds --config and every --set of the pipeline's command line to a stage's `args`.
void add_config_arguments(const PipelineOptions& o, std::vector<std::string>& args) {
  if (!o.shared.config.empty())
    args.insert(args.end(), {"--config", o.shared.config.string()});
  for (const auto& setting : o.shared.settings)
    args.insert(args.end(), {"--set", setting});
}

/// The command line of `stage` in `layout`.
std::vector<std::string> stage_arguments(const Stage& stage, const PipelineOptions& o,
                                         const Layout& layout) {
  std::vector<std::string> args = {stage.name};
  if (stage.name == "score") {
    args.insert(args.end(), {layout[Output::decomposition].string(), layout[Output::emg].string(),
                             "-o", layout[Output::decomposition_dir].string()});
    add_config_arguments(o, args);
    if (o.shared.quiet)
      args.emplace_back("--quiet");
    return args;
  }
  args.push_back(stage.name == "decompose" ? layout[Output::emg].string() : o.subject.string());
  args.insert(args.end(), {"-o", layout.out().string()});
  add_config_arguments(o, args);
  if (o.shared.seed)
    args.insert(args.end(), {"--seed", std::to_string(*o.shared.seed)});
  if (o.shared.threads > 0)
    args.insert(args.end(), {"--threads", std::to_string(o.shared.threads)});
  if (o.shared.quiet)
    args.emplace_back("--quiet");
  return args;
}

/// Runs `stage` in this process; returns the files it created or changed (and its product) with
/// their hashes. \throws BadInput or Error when the stage fails or writes no product.
nlohmann::json run_stage(const Stage& stage, const PipelineOptions& o, const Layout& layout,
                         FileHashes& hashes) {
  if (!o.shared.quiet)
    std::cout << "== pipeline: " << stage.name << "\n";
  const auto before = snapshot(layout.out());
  const int code = run_command(stage_arguments(stage, o, layout));
  if (code != 0) {
    const std::string message = "pipeline: stage `" + stage.name + "` failed (exit code " +
                                std::to_string(code) + "); the stages before it are kept";
    if (code == static_cast<int>(ExitCode::bad_input))
      throw BadInput(message);
    throw Error(message);
  }
  nlohmann::json outputs = nlohmann::json::object();
  for (const auto& [relative, stamp] : snapshot(layout.out())) {
    const auto it = before.find(relative);
    if (it == before.end() || !(it->second == stamp) || fs::path(relative) == stage.product)
      outputs[relative] = hashes.of(layout.out() / relative);
  }
  if (!outputs.contains(stage.product.generic_string()))
    throw Error("pipeline: stage `" + stage.name + "` succeeded but wrote no " +
                (layout.out() / stage.product).string());
  return outputs;
}

int run_pipeline(const PipelineOptions& o) {
  Stopwatch watch;
  // 1. The configuration is checked once here (every stage reads the same file strictly).
  const RunConfig config = begin_run(o.shared);
  const anatomy::SubjectFiles files = anatomy::read_subject_file(o.subject);
  const Layout layout(o.shared.output);
  ensure_output_dir(layout[Output::pipeline_dir]);
  const std::vector<Stage> stages = chain();
  const std::size_t n_stages = stages_until(stages, o.until);

  FileHashes hashes;
  const std::uint64_t common =
      common_inputs_key(config.seed, {files.subject_file, files.labels, files.tissues}, hashes);
  const fs::path config_dir =
      o.shared.config.has_parent_path() ? o.shared.config.parent_path() : fs::path(".");

  // 2. The stages, in order: reused when the key and the outputs on disk say so, else run.
  const fs::path manifest_file = layout[Output::manifest];
  nlohmann::json manifest = read_manifest(manifest_file);
  auto& records = manifest["stages"];
  std::map<std::string, std::string> earlier_outputs; // path relative to OUT -> hash
  for (std::size_t k = 0; k < n_stages; ++k) {
    const Stage& stage = stages[k];
    const std::string key =
        stage_key(stage, common, earlier_outputs, config.resolved, config_dir, hashes);
    const nlohmann::json entry =
        records.contains(stage.name) ? records[stage.name] : nlohmann::json();
    const std::string reason =
        o.force ? "--force" : why_not_reusable(entry, key, layout.out(), hashes);
    if (reason.empty()) {
      log_info("pipeline: ", stage.name, ": unchanged, reused (key ", key, ")");
      for (const auto& [relative, hash] : entry.at("outputs").items())
        earlier_outputs[relative] = hash.get<std::string>();
      continue;
    }
    log_info("pipeline: ", stage.name, ": runs: ", reason);
    records.erase(stage.name);
    write_text_file(manifest_file, manifest.dump(2) + "\n");
    const nlohmann::json outputs = run_stage(stage, o, layout, hashes);
    for (const auto& [relative, hash] : outputs.items())
      earlier_outputs[relative] = hash.get<std::string>();
    records[stage.name] = {{"key", key}, {"build", program_build_id()}, {"outputs", outputs}};
    write_text_file(manifest_file, manifest.dump(2) + "\n");
  }

  // 3. Summary.
  if (n_stages == stages.size())
    write_pipeline_summary(layout, watch.elapsed_s(), o.shared.quiet);
  else if (!o.shared.quiet)
    std::cout << "pipeline: stopped after `" << o.until << "` in " << std::setprecision(3)
              << watch.elapsed_s() << " s; results in " << layout.out().string() << "\n";

  // 4. The report of what is in OUT (docs/report.md).
  if (!o.no_report) {
    std::vector<std::string> args = {"report", layout.out().string(), "--subject",
                                     o.subject.string()};
    if (o.shared.quiet)
      args.emplace_back("--quiet");
    // The stages' outputs are complete either way: a report that cannot be written (e.g. its
    // JavaScript bundles are not installed) is a warning, not a failed pipeline.
    if (const int code = run_command(args); code != 0)
      log_warning("pipeline: the report was not written (`myotwin report` exit ", code,
                  "; the message above says why); the stages' outputs are complete");
  }
  return 0;
}

} // namespace

void add_pipeline_command(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<PipelineOptions>();
  auto* cmd = app.add_subcommand(
      "pipeline",
      "the whole chain in OUT: anatomy, mesh, leadfield, simulate, decompose (the simulated "
      "EMG) and score (against its truth); a stage is reused when nothing it reads changed and "
      "its outputs are as it wrote them (OUT/pipeline/manifest.json); "
      "prints units simulated, recruited, identified and the RoA of each");
  cmd->add_option("SUBJECT", o->subject, "subject file (subject.json)")->required();
  cmd->add_flag("--force", o->force, "rerun every stage even when its key has not changed");
  cmd->add_option("--until", o->until,
                  "stop after this stage (anatomy, mesh, leadfield, simulate, decompose; default: "
                  "score, the whole chain)");
  cmd->add_flag("--no-report", o->no_report, "do not write OUT/report.html at the end");
  add_shared_options(*cmd, o->shared, true);
  cmd->callback([&run, o] { run = [o] { return run_pipeline(*o); }; });
}

} // namespace myotwin::app
