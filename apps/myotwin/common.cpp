#include "common.hpp"

#include <algorithm>
#include <iostream>

#include <omp.h>

#include "commands.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/resources.hpp"

namespace myotwin::app {

const char* version() {
  return MYOTWIN_VERSION;
}

CLI::Validator bounded(double lo, double hi, const std::string& unit) {
  const std::string range =
      format_number(lo) + " to " + format_number(hi) + (unit.empty() ? std::string() : " " + unit);
  return CLI::Validator(
      [lo, hi, range](std::string& input) {
        double v = 0.0;
        std::size_t used = 0;
        try {
          v = std::stod(input, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == input.size() && used > 0 && v >= lo && v <= hi)
          return std::string();
        return input + ": expected a number from " + range;
      },
      range);
}

CLI::Validator thread_count() {
  return CLI::Range(0, max_threads, "0 to " + std::to_string(max_threads));
}

CLI::Validator seed_value() {
  return CLI::Validator(
      [](std::string& input) {
        const bool digits = !input.empty() && input.size() <= 20 &&
                            input.find_first_not_of("0123456789") == std::string::npos;
        if (digits && (input.size() < 20 || input <= "18446744073709551615"))
          return std::string();
        return "seed \"" + input +
               "\": expected an integer from 0 to 18446744073709551615 (2^64 - 1)";
      },
      "0 to 2^64-1");
}

void add_shared_options(CLI::App& command, SharedOptions& options, bool output_required) {
  command.add_option("--config", options.config,
                     "run configuration (JSON; `myotwin config defaults` prints every key)");
  auto* out = command.add_option("-o,--output", options.output, "output folder");
  if (output_required)
    out->required();
  command
      .add_option_function<std::vector<std::string>>(
          "--set",
          [&options](const std::vector<std::string>& items) {
            for (const auto& item : items) {
              try {
                const auto [key, value] = parse_setting(item);
                options.overrides[pointer_of(key)] = value;
              } catch (const BadInput& e) {
                throw CLI::ValidationError(e.what());
              }
              options.settings.push_back(item);
            }
          },
          "a config key's value over the config file: KEY=VALUE with a dotted key, e.g. "
          "simulate.emg.snr_dB=10 (VALUE is JSON when it parses, else a string); repeatable")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  command.add_option("--threads", options.threads, "threads to use (0: all cores)")
      ->check(thread_count());
  command
      .add_option("--seed", options.seed,
                  "random seed (default: the config's seed, else " + std::to_string(default_seed) +
                      ")")
      ->check(seed_value());
  command
      .add_option_function<double>(
          "--max-memory-GiB", [](const double& v) { set_memory_limit_bytes(v * 1073741824.0); },
          "memory a run may use [GiB] (default: what the machine has available); runs whose "
          "estimate exceeds it are refused before they allocate")
      ->check(bounded(0.001, 1e6, "GiB"));
  command.add_flag("--quiet", options.quiet, "print warnings and errors only");
  command.add_flag("--verbose", options.verbose, "print debug messages and timings");
}

nlohmann::json::json_pointer pointer_of(const std::string& key) {
  std::string p = "/" + key;
  std::replace(p.begin(), p.end(), '.', '/');
  return nlohmann::json::json_pointer(p);
}

void check_settable_key(const std::string& key, const std::string& context) {
  std::size_t begin = 0;
  while (true) {
    const auto end = std::min(key.find('.', begin), key.size());
    const std::string part = key.substr(begin, end - begin);
    if (part.empty())
      throw BadInput(context + ": key \"" + key + "\" has an empty part (expected a dotted key " +
                     "such as simulate.emg.snr_dB)");
    if (part.find_first_not_of("0123456789") == std::string::npos)
      throw BadInput(context + ": key \"" + key + "\" names an array element (" + part +
                     "); set the whole array instead");
    if (part.find_first_of("/~") != std::string::npos)
      throw BadInput(context + ": key \"" + key + "\": a config key has no '/' or '~'");
    if (end == key.size())
      return;
    begin = end + 1;
  }
}

std::pair<std::string, nlohmann::json> parse_setting(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw BadInput("--set \"" + text + "\": expected KEY=VALUE with a dotted config key, e.g. " +
                   "simulate.emg.snr_dB=10");
  const std::string key = text.substr(0, eq);
  check_settable_key(key, "--set \"" + text + "\"");
  const std::string raw = text.substr(eq + 1);
  try {
    return {key, nlohmann::json::parse(raw)};
  } catch (const nlohmann::json::exception&) { // not JSON: the text itself
    return {key, nlohmann::json(raw)};
  }
}

void add_key_option(CLI::App& command, SharedOptions& options, const std::string& flag,
                    const std::string& key, const std::string& help) {
  command
      .add_option_function<std::string>(
          flag,
          [&options, key](const std::string& text) {
            nlohmann::json value = text;
            try {
              const auto parsed = nlohmann::json::parse(text);
              if (parsed.is_number() || parsed.is_boolean())
                value = parsed;
            } catch (const nlohmann::json::exception&) { // not a number: the text itself
            }
            options.overrides[pointer_of(key)] = value;
          },
          help + " (config key " + key + ")")
      ->type_name("VALUE");
}

void add_key_flag(CLI::App& command, SharedOptions& options, const std::string& flag,
                  const std::string& key, bool value, const std::string& help) {
  command.add_flag_callback(
      flag, [&options, key, value] { options.overrides[pointer_of(key)] = value; },
      help + " (config key " + key + " = " + (value ? "true" : "false") + ")");
}

RunConfig read_run_config(ConfigReader& reader, std::optional<std::uint64_t> seed_override) {
  RunConfig run;
  reader.optional<std::string>(
      "myotwin_version", version(), {},
      "version of myotwin that wrote the configuration; a record only, any string is accepted");
  const auto config_seed = reader.optional<std::uint64_t>(
      "seed", default_seed, {}, "seed of every random stream of the run; --seed wins");
  run.seed = seed_override.value_or(config_seed);
  run.threads = static_cast<int>(reader.optional<std::int64_t>(
      "threads", 0, int_in_range(0, max_threads),
      "threads of the parallel stages; 0: all cores; --threads wins"));
  auto phantom = reader.section("phantom");
  run.phantom = anatomy::read_phantom_params(phantom, run.seed);
  auto surface_import = reader.section("surface_import");
  run.surface_import = anatomy::read_surface_import_params(surface_import);
  auto subject_section = reader.section("subject");
  run.subject = anatomy::read_subject_build_params(subject_section);
  auto anatomy_section = reader.section("anatomy");
  run.anatomy = anatomy::read_anatomy_params(anatomy_section);
  auto mesh_section = reader.section("mesh");
  run.mesh = meshing::read_mesh_params(mesh_section);
  auto electrodes_section = reader.section("electrodes");
  run.electrodes = forward::read_electrode_config(electrodes_section);
  auto vc = reader.section("volume_conductor");
  auto& solver = run.volume_conductor.solver;
  const auto method = vc.optional<std::string>("method", "auto",
                                               one_of({"auto", "automatic", "direct", "iterative"}),
                                               "lead-field solver: direct (Cholesky), iterative "
                                               "(CG); auto: direct unless over memory_budget_GiB");
  solver.method = forward::solver_method_from_string(method == "auto" ? "automatic" : method);
  solver.memory_budget_bytes = vc.optional<double>("memory_budget_GiB", 8.0, positive(),
                                                   "memory the Cholesky factor may take; with "
                                                   "method auto, a larger factor uses CG instead") *
                               1024.0 * 1024.0 * 1024.0;
  solver.cg_relative_tolerance =
      vc.optional<double>("cg_relative_tolerance", 1e-10, in_range(1e-16, 1e-2),
                          "CG stops when ||b - K x|| <= this times ||b||");
  solver.preconditioner = forward::preconditioner_from_string(vc.optional<std::string>(
      "preconditioner", "incomplete_cholesky", one_of({"incomplete_cholesky", "jacobi"}),
      "preconditioner of the CG solver"));
  solver.cg_max_iterations =
      vc.optional<std::int64_t>("cg_max_iterations", 10000, int_in_range(1, 100000000),
                                "CG iteration limit per right-hand side");
  solver.block_columns =
      vc.optional<std::int64_t>("block_columns", 32, int_in_range(1, 100000),
                                "right-hand sides (electrodes) per CHOLMOD solve call");
  run.max_sampled_GiB = vc.optional<double>(
      "max_sampled_GiB", 2.0, non_negative(),
      "lead fields sampled at the fibre points are cached up to this size; else sampled on demand");
  auto simulate_section = reader.section("simulate");
  run.simulate = forward::read_simulation_params(simulate_section);
  auto decompose_section = reader.section("decompose");
  run.decompose = inversion::read_decompose_params(decompose_section);
  auto score_section = reader.section("score");
  run.score = inversion::read_score_params(score_section);
  auto invert_section = reader.section("invert");
  run.invert = inversion::read_bmiss_params(invert_section, run.decompose);
  auto muap_model_section = reader.section("muap_model");
  run.muap_model = forward::read_muap_model_params(muap_model_section);
  auto iemg_section = reader.section("iemg");
  run.iemg = forward::read_iemg_config(iemg_section);
  auto noise_section = reader.section("noise");
  run.noise = forward::read_noise_params(noise_section);
  run.iemg.noise = run.noise;
  reader.finish();
  run.resolved = reader.resolved();
  run.resolved["electrodes"] = forward::to_json(run.electrodes); // the default grid spelled out
  run.resolved["seed"] = run.seed;
  run.resolved["myotwin_version"] = version();
  return run;
}

namespace {

/// The embedded run of this thread (run_embedded_command()).
thread_local const EmbeddedRun* embedded_run = nullptr;

} // namespace

const EmbeddedRun* current_embedded_run() {
  return embedded_run;
}

void run_embedded_command(const std::vector<std::string>& args, const EmbeddedRun& embedded) {
  struct Restore {
    const EmbeddedRun* previous;
    ~Restore() { embedded_run = previous; }
  } restore{embedded_run};
  embedded_run = &embedded;
  run_command_throwing(args);
}

RunConfig begin_run(const SharedOptions& options) {
  const EmbeddedRun* embedded = current_embedded_run();
  if (embedded == nullptr)
    set_log_level(options.quiet     ? LogLevel::warning
                  : options.verbose ? LogLevel::debug
                                    : LogLevel::info);
  nlohmann::json document = nlohmann::json::object();
  std::string source = "default configuration";
  std::filesystem::path base = ".";
  if (embedded != nullptr) {
    document = embedded->config;
    source = embedded->source;
    base = embedded->base;
  } else if (!options.config.empty()) {
    document = parse_json(read_text_file(options.config), options.config.string());
    source = options.config.string();
    if (options.config.has_parent_path())
      base = options.config.parent_path();
  }
  if (!options.overrides.empty()) {
    if (document.is_object())
      document.merge_patch(options.overrides);
    source += " with the command-line options";
  }
  ConfigReader reader(std::move(document), source, base);
  RunConfig run = read_run_config(reader, options.seed);
  if (options.threads > 0)
    run.threads = options.threads;
  if (run.threads > 0)
    omp_set_num_threads(run.threads);
  run.resolved["threads"] = run.threads;
  if (!options.output.empty())
    ensure_output_dir(options.output);
  return run;
}

void write_resolved_config(const std::filesystem::path& dir, const RunConfig& run) {
  write_text_file(dir / "resolved_config.json", run.resolved.dump(2) + "\n");
}

ProgressCallback progress_display(const SharedOptions& options) {
  if (const EmbeddedRun* embedded = current_embedded_run())
    return embedded->progress;
  if (options.quiet)
    return {};
  return make_console_progress(std::cerr, stderr_is_interactive());
}

nlohmann::json read_json(const std::filesystem::path& path) {
  return parse_json(read_text_file(path), path.string());
}

} // namespace myotwin::app
