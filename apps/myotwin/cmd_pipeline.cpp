// `myotwin pipeline SUBJECT.json -o OUT`: the whole chain with each stage's defaults (or the
// config's sections): anatomy, mesh, lead fields, simulation, decomposition and scoring, each
// run as its own `myotwin` process in OUT. A stage whose inputs have not changed since it last
// succeeded is reused: its key is a hash of the subject's files, the config sections it reads,
// the seed, the version and the key of the stage before it, kept in OUT/pipeline/<stage>.key
// (removed before the stage runs, written after it succeeds, so an interrupted stage reruns).
// Ends with a summary table: units simulated, recruited, identified, and RoA per unit.
// `--until STAGE` stops after that stage (e.g. `--until leadfield` for a subject's forward model,
// as `myotwin bench bmiss` uses it).

#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"

namespace myotwin::app {

namespace {

/// One stage of the chain: the subcommand, its arguments after the subject / inputs, the config
/// sections it reads, and the file whose presence says it completed.
struct Stage {
  std::string name;
  std::vector<std::string> sections;
  std::filesystem::path product; ///< relative to OUT
};

std::uint64_t hash_text(const std::string& text, std::uint64_t hash) {
  return forward::fnv1a64(text.data(), text.size(), hash);
}

std::uint64_t hash_file(const std::filesystem::path& path, std::uint64_t hash) {
  return hash_text(read_text_file(path), hash);
}

std::string hex(std::uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(value));
  return buffer;
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
      "EMG) and score (against its truth); unchanged stages are reused (keys in OUT/pipeline/); "
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
      const auto keys = out / "pipeline";
      ensure_output_dir(keys);

      std::uint64_t key = hash_text(version(), 14695981039346656037ULL);
      key = hash_text(std::to_string(config.seed), key);
      for (const auto& f : {files.subject_file, files.labels, files.tissues})
        key = hash_file(f, key);

      const std::vector<Stage> stages = {
          {"anatomy", {"anatomy"}, "anatomy/motor_units.h5"},
          {"mesh", {"mesh"}, "mesh/mesh.vtu"},
          {"leadfield", {"electrodes", "volume_conductor"}, "forward/leadfields.h5"},
          {"simulate", {"simulate"}, "forward/emg.h5"},
          {"decompose", {"decompose"}, "decomposition/decomposition.h5"},
          {"score", {"score"}, "decomposition/score.json"}};
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

      // 2. The stages, in order; a changed stage makes every later one rerun (its key is in
      // theirs).
      const auto resolved = config.resolved;
      for (std::size_t k = 0; k < n_stages; ++k) {
        const Stage& stage = stages[k];
        for (const auto& section : stage.sections)
          key = hash_text(
              section + "=" +
                  (resolved.contains(section) ? resolved[section].dump() : std::string("{}")),
              key);
        const auto key_file = keys / (stage.name + ".key");
        const std::string wanted = hex(key);
        if (!*force && std::filesystem::exists(out / stage.product) &&
            std::filesystem::exists(key_file) && read_text_file(key_file) == wanted + "\n") {
          log_info("pipeline: ", stage.name, ": unchanged, reused (key ", wanted, ")");
          continue;
        }
        std::filesystem::remove(key_file);
        std::vector<std::string> args = {stage.name};
        if (stage.name == "decompose")
          args.push_back((out / "forward/emg.h5").string());
        else if (stage.name == "score")
          args.insert(args.end(), {(out / "decomposition/decomposition.h5").string(),
                                   (out / "forward/emg.h5").string()});
        else
          args.push_back(subject->string());
        if (stage.name != "score") {
          args.insert(args.end(), {"-o", out.string()});
          args.insert(args.end(), shared.begin(), shared.end());
        } else {
          args.insert(args.end(), {"-o", (out / "decomposition").string()});
          if (!options->config.empty())
            args.insert(args.end(), {"--config", options->config.string()});
        }
        if (!options->quiet)
          std::cout << "== pipeline: " << stage.name << "\n";
        const int code = run_self(args);
        if (code != 0) {
          const std::string message = "pipeline: stage `" + stage.name + "` failed (exit code " +
                                      std::to_string(code) + "); the stages before it are kept";
          if (code == static_cast<int>(ExitCode::bad_input))
            throw BadInput(message);
          throw Error(message);
        }
        write_text_file(key_file, wanted + "\n");
      }

      if (n_stages < stages.size()) {
        if (!options->quiet)
          std::cout << "pipeline: stopped after `" << *until << "` in " << std::setprecision(3)
                    << watch.elapsed_s() << " s; results in " << out.string() << "\n";
        return 0;
      }

      // 3. Summary.
      const auto sim = read_json(out / "forward/simulate_report.json");
      const auto dec = read_json(out / "decomposition/summary.json");
      const auto score = read_json(out / "decomposition/score.json");
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
      write_text_file(keys / "summary.json", summary.dump(2) + "\n");
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
                  << (keys / "summary.json").string() << "\n";
      }
      return 0;
    };
  });
}

} // namespace myotwin::app
