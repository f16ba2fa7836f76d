// `myotwin pipeline SUBJECT.json -o OUT`: the whole chain with each stage's defaults (or the
// config's sections): anatomy, mesh, lead fields, simulation, decomposition and scoring, each
// run in this process as the command line `myotwin STAGE ...` would (run_command()).
//
// A stage is reused only when both hold:
// - its key is unchanged: a hash of everything the stage reads: the program version, the seed,
//   the subject's files (contents), the config sections it reads, the contents of every file a
//   string of those sections names (e.g. `simulate.discharges`), and the contents of the outputs
//   of the stages before it;
// - its outputs on disk are what it wrote: OUT/pipeline/manifest.json lists, per stage, the files
//   the stage created or changed (relative to OUT) with the hash of their contents, and every one
//   must still exist with that hash.
// A stage's entry is removed from the manifest before it runs and written after it succeeds, so
// an interrupted or failed stage reruns. Ends with a summary table: units simulated, recruited,
// identified, and RoA per unit. `--until STAGE` stops after that stage (e.g. `--until leadfield`
// for a subject's forward model, as `myotwin bench bmiss` uses it).

#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hash.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"

namespace myotwin::app {

namespace {

namespace fs = std::filesystem;

/// One stage of the chain: the subcommand, the config sections it reads, the file whose
/// presence says it completed, and which outputs of the earlier stages it reads (paths relative
/// to OUT that start with one of these; reports such as simulate_report.json, which carry
/// timings, are read by no stage).
struct Stage {
  std::string name;
  std::vector<std::string> sections;
  fs::path product; ///< relative to OUT
  std::vector<std::string> reads;
};

std::string hex(std::uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

/// A file's size and modification time: what tells a stage's outputs from the files it left.
struct FileStamp {
  std::uintmax_t size = 0;
  fs::file_time_type time;
  bool operator==(const FileStamp&) const = default;
};

/// Content hashes of files, each computed once per run (keyed by path, size and time).
class FileHashes {
public:
  /// The hex hash of the contents of `path`. \throws IoError when it cannot be read.
  std::string of(const fs::path& path) {
    std::error_code ec;
    const FileStamp stamp{fs::file_size(path, ec), fs::last_write_time(path, ec)};
    if (ec)
      throw IoError(path.string() + ": cannot be read: " + ec.message());
    const auto it = cache_.find(path.string());
    if (it != cache_.end() && it->second.first == stamp)
      return it->second.second;
    const std::string h = hex(hash_file(path));
    cache_[path.string()] = {stamp, h};
    return h;
  }

private:
  std::map<std::string, std::pair<FileStamp, std::string>> cache_;
};

/// True for files that are no stage's output: temporaries, write probes, the pipeline's own
/// folder, and resolved_config.json (a record of the run that no stage reads).
bool is_bookkeeping(const fs::path& relative) {
  const std::string name = relative.filename().string();
  return relative.begin()->string() == "pipeline" || name.rfind(".tmp-", 0) == 0 ||
         name.rfind(".myotwin-write-test-", 0) == 0 ||
         name == relative_path(Output::resolved_config).filename().string();
}

/// Size and time of every file below `out` that may be a stage's output, by path relative to it.
std::map<std::string, FileStamp> snapshot(const fs::path& out) {
  std::map<std::string, FileStamp> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(out, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file(ec))
      continue;
    const fs::path relative = it->path().lexically_relative(out);
    if (is_bookkeeping(relative))
      continue;
    files[relative.generic_string()] = {it->file_size(ec), it->last_write_time(ec)};
  }
  return files;
}

/// Adds to `hash` the contents of every file that a string in `value` names (relative paths
/// resolve against `base`), e.g. `simulate.discharges` or `simulate.drive.profile.path`.
std::uint64_t hash_named_files(const nlohmann::json& value, const fs::path& base,
                               FileHashes& hashes, std::uint64_t hash) {
  if (value.is_string()) {
    const fs::path p(value.get<std::string>());
    const fs::path resolved = p.is_absolute() ? p : (base / p).lexically_normal();
    std::error_code ec;
    if (!p.empty() && fs::is_regular_file(resolved, ec))
      hash = hash_text(resolved.string() + "=" + hashes.of(resolved), hash);
  } else if (value.is_structured()) {
    for (const auto& item : value)
      hash = hash_named_files(item, base, hashes, hash);
  }
  return hash;
}

/// Why a stage cannot be reused, or empty when it can: its manifest entry must have `key` and
/// every output it lists must exist in `out` with the same contents.
std::string why_not_reusable(const nlohmann::json& entry, const std::string& key,
                             const fs::path& out, FileHashes& hashes) {
  if (entry.is_null())
    return "no record of a completed run";
  if (!entry.is_object() || !entry.contains("outputs") || !entry["outputs"].is_object())
    return "its record in the manifest is incomplete";
  if (entry.value("key", "") != key)
    return "its inputs changed (key " + key + ", was " + entry.value("key", "") + ")";
  for (const auto& [relative, hash] : entry.at("outputs").items()) {
    std::error_code ec;
    if (!fs::is_regular_file(out / relative, ec))
      return relative + " is missing";
    if (hashes.of(out / relative) != hash.get<std::string>())
      return relative + " changed on disk since the stage wrote it";
  }
  return {};
}

} // namespace

void add_pipeline_command(CLI::App& app, std::function<int()>& run) {
  auto options = std::make_shared<SharedOptions>();
  auto subject = std::make_shared<std::filesystem::path>();
  auto force = std::make_shared<bool>(false);
  auto until = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "pipeline",
      "the whole chain in OUT: anatomy, mesh, leadfield, simulate, decompose (the simulated "
      "EMG) and score (against its truth); a stage is reused when nothing it reads changed and "
      "its outputs are as it wrote them (OUT/pipeline/manifest.json); "
      "prints units simulated, recruited, identified and the RoA of each");
  cmd->add_option("SUBJECT", *subject, "subject file (subject.json)")->required();
  cmd->add_flag("--force", *force, "rerun every stage even when its key has not changed");
  cmd->add_option("--until", *until,
                  "stop after this stage (anatomy, mesh, leadfield, simulate, decompose; default: "
                  "score, the whole chain)");
  add_shared_options(*cmd, *options, true);
  cmd->callback([&run, options, subject, force, until] {
    run = [options, subject, force, until] {
      Stopwatch watch;
      // 1. The configuration is checked once here (every stage reads the same file strictly).
      const RunConfig config = begin_run(*options);
      const anatomy::SubjectFiles files = anatomy::read_subject_file(*subject);
      const auto out = options->output;
      const Layout layout(out);
      const auto keys = layout[Output::pipeline_dir];
      ensure_output_dir(keys);

      // Inputs every stage reads: the version, the seed, the subject's files.
      FileHashes hashes;
      std::uint64_t common = hash_text(version());
      common = hash_text(std::to_string(config.seed), common);
      for (const auto& f : {files.subject_file, files.labels, files.tissues})
        common = hash_text(hashes.of(f), common);

      const std::vector<Stage> stages = {
          {"anatomy", {"anatomy"}, relative_path(Output::motor_units), {}},
          {"mesh", {"mesh"}, relative_path(Output::mesh), {"anatomy/"}},
          {"leadfield",
           {"electrodes", "volume_conductor"},
           relative_path(Output::lead_fields),
           {"anatomy/", "mesh/"}},
          {"simulate", {"simulate"}, relative_path(Output::emg), {"anatomy/", "mesh/", "forward/"}},
          {"decompose",
           {"decompose"},
           relative_path(Output::decomposition),
           {relative_path(Output::emg).string()}},
          {"score",
           {"score"},
           relative_path(Output::score),
           {relative_path(Output::decomposition).string(), relative_path(Output::emg).string()}}};
      std::size_t n_stages = stages.size();
      if (!until->empty()) {
        std::string names;
        n_stages = 0;
        for (std::size_t k = 0; k < stages.size(); ++k) {
          names += (k > 0 ? ", " : "") + stages[k].name;
          if (stages[k].name == *until)
            n_stages = k + 1;
        }
        if (n_stages == 0)
          throw BadInput("pipeline: --until \"" + *until + "\" is not a stage (expected one of " +
                         names + ")");
      }
      std::vector<std::string> shared;
      if (!options->config.empty())
        shared.insert(shared.end(), {"--config", options->config.string()});
      if (options->seed)
        shared.insert(shared.end(), {"--seed", std::to_string(*options->seed)});
      if (options->threads > 0)
        shared.insert(shared.end(), {"--threads", std::to_string(options->threads)});
      if (options->quiet)
        shared.emplace_back("--quiet");

      // 2. The stages, in order. A stage's key covers the contents of the earlier stages'
      // outputs, so a stage whose outputs change makes the later ones rerun.
      const auto resolved = config.resolved;
      const fs::path config_dir = options->config.empty() ? fs::path(".")
                                  : options->config.has_parent_path()
                                      ? options->config.parent_path()
                                      : fs::path(".");
      const fs::path manifest_file = layout[Output::manifest];
      nlohmann::json manifest = {{"format", "myotwin pipeline manifest 1"},
                                 {"stages", nlohmann::json::object()}};
      if (fs::exists(manifest_file)) {
        try {
          const auto m = read_json(manifest_file);
          if (m.value("format", "") == manifest["format"] && m.at("stages").is_object())
            manifest = m;
        } catch (const std::exception& e) { // unreadable: every stage reruns
          log_warning("pipeline: ", manifest_file.string(), " is unreadable (", e.what(),
                      "); every stage reruns");
        }
      }
      std::map<std::string, std::string> earlier_outputs; // path relative to OUT -> hash
      for (std::size_t k = 0; k < n_stages; ++k) {
        const Stage& stage = stages[k];
        std::uint64_t key = hash_text(stage.name, common);
        for (const auto& [relative, hash] : earlier_outputs)
          for (const auto& prefix : stage.reads)
            if (relative.rfind(prefix, 0) == 0) {
              key = hash_text(relative + "=" + hash, key);
              break;
            }
        for (const auto& section : stage.sections) {
          const nlohmann::json value =
              resolved.contains(section) ? resolved[section] : nlohmann::json::object();
          key = hash_text(section + "=" + value.dump(), key);
          key = hash_named_files(value, config_dir, hashes, key);
        }
        const std::string wanted = hex(key);
        auto& stages_json = manifest["stages"];
        const nlohmann::json entry =
            stages_json.contains(stage.name) ? stages_json[stage.name] : nlohmann::json();
        const std::string reason =
            *force ? "--force" : why_not_reusable(entry, wanted, out, hashes);
        if (reason.empty()) {
          log_info("pipeline: ", stage.name, ": unchanged, reused (key ", wanted, ")");
          for (const auto& [relative, hash] : entry.at("outputs").items())
            earlier_outputs[relative] = hash.get<std::string>();
          continue;
        }
        log_info("pipeline: ", stage.name, ": runs: ", reason);
        stages_json.erase(stage.name);
        write_text_file(manifest_file, manifest.dump(2) + "\n");
        std::vector<std::string> args = {stage.name};
        if (stage.name == "decompose")
          args.push_back(layout[Output::emg].string());
        else if (stage.name == "score")
          args.insert(args.end(),
                      {layout[Output::decomposition].string(), layout[Output::emg].string()});
        else
          args.push_back(subject->string());
        if (stage.name != "score") {
          args.insert(args.end(), {"-o", out.string()});
          args.insert(args.end(), shared.begin(), shared.end());
        } else {
          args.insert(args.end(), {"-o", layout[Output::decomposition_dir].string()});
          if (!options->config.empty())
            args.insert(args.end(), {"--config", options->config.string()});
        }
        if (!options->quiet)
          std::cout << "== pipeline: " << stage.name << "\n";
        const auto before = snapshot(out);
        const int code = run_command(args);
        if (code != 0) {
          const std::string message = "pipeline: stage `" + stage.name + "` failed (exit code " +
                                      std::to_string(code) + "); the stages before it are kept";
          if (code == static_cast<int>(ExitCode::bad_input))
            throw BadInput(message);
          throw Error(message);
        }
        // The stage's outputs: the files it created or changed, and its product.
        nlohmann::json outputs = nlohmann::json::object();
        for (const auto& [relative, stamp] : snapshot(out)) {
          const auto it = before.find(relative);
          if (it == before.end() || !(it->second == stamp) || fs::path(relative) == stage.product)
            outputs[relative] = hashes.of(out / relative);
        }
        if (!outputs.contains(stage.product.generic_string()))
          throw Error("pipeline: stage `" + stage.name + "` succeeded but wrote no " +
                      (out / stage.product).string());
        for (const auto& [relative, hash] : outputs.items())
          earlier_outputs[relative] = hash.get<std::string>();
        stages_json[stage.name] = {{"key", wanted}, {"outputs", outputs}};
        write_text_file(manifest_file, manifest.dump(2) + "\n");
      }

      if (n_stages < stages.size()) {
        if (!options->quiet)
          std::cout << "pipeline: stopped after `" << *until << "` in " << std::setprecision(3)
                    << watch.elapsed_s() << " s; results in " << out.string() << "\n";
        return 0;
      }

      // 3. Summary.
      const auto sim = read_json(layout[Output::simulate_report]);
      const auto dec = read_json(layout[Output::decomposition_summary]);
      const auto score = read_json(layout[Output::score]);
      int recruited = 0;
      for (const auto& u : sim.at("units"))
        recruited += u.at("n_discharges").get<int>() > 0;
      nlohmann::json summary = {{"units_simulated", sim.at("n_units")},
                                {"units_recruited", recruited},
                                {"units_identified", dec.at("n_units")},
                                {"units_matched", score.at("n_matched")},
                                {"mean_roa", score.at("mean_roa")},
                                {"matches", score.at("matches")},
                                {"time_s", watch.elapsed_s()}};
      write_text_file(layout[Output::pipeline_summary], summary.dump(2) + "\n");
      if (!options->quiet) {
        std::cout << "\nunits simulated " << summary["units_simulated"] << ", recruited "
                  << recruited << ", identified " << summary["units_identified"] << ", matched "
                  << summary["units_matched"] << "\n";
        std::cout << "  true unit  decomposed    RoA  sensitivity  precision\n";
        for (const auto& m : score.at("matches"))
          std::cout << std::setw(11) << m.at("true_unit").get<std::int64_t>() << std::setw(12)
                    << m.at("decomposed_unit").get<std::int64_t>() << std::fixed
                    << std::setprecision(3) << std::setw(7) << m.at("roa").get<double>()
                    << std::setw(13) << m.at("sensitivity").get<double>() << std::setw(11)
                    << m.at("precision").get<double>() << "\n";
        std::cout << "mean RoA " << std::setprecision(3) << score.at("mean_roa").get<double>()
                  << "; total " << std::setprecision(1) << watch.elapsed_s() << " s; "
                  << layout[Output::pipeline_summary].string() << "\n";
      }
      return 0;
    };
  });
}

} // namespace myotwin::app
