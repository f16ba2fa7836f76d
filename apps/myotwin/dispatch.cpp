// The command line of myotwin as a function: every subcommand registered on one CLI11 app, the
// arguments parsed, the command run and its errors mapped to exit codes. main() calls it with
// argv; `pipeline` and `bench` call it to run other commands in the same process (no child
// process, no /proc/self/exe).

#include <iostream>
#include <new>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/core/error.hpp"

namespace myotwin::app {

namespace {

/// Every subcommand, registered on `app`; the one parsed stores its work in `run`.
void add_commands(CLI::App& app, std::function<int()>& run) {
  app.set_version_flag("--version", std::string("myotwin ") + version());
  app.require_subcommand(1);
  app.fallthrough(false);
  add_config_command(app, run);
  add_phantom_command(app, run);
  add_subject_command(app, run);
  add_anatomy_command(app, run);
  add_mesh_command(app, run);
  add_leadfield_command(app, run);
  add_simulate_command(app, run);
  add_iemg_command(app, run);
  add_noise_command(app, run);
  add_decompose_command(app, run);
  add_score_command(app, run);
  add_invert_command(app, run);
  add_pipeline_command(app, run);
  add_sweep_command(app, run);
  add_report_command(app, run);
  add_bench_command(app, run);
}

/// Parses `args` (argv[1..]) into `app`. \throws CLI::ParseError.
void parse(CLI::App& app, const std::vector<std::string>& args) {
  std::vector<std::string> storage = {"myotwin"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : storage)
    argv.push_back(a.data());
  app.parse(static_cast<int>(argv.size()), argv.data());
}

} // namespace

void run_command_throwing(const std::vector<std::string>& args) {
  CLI::App app{"myotwin"};
  std::function<int()> run;
  add_commands(app, run);
  try {
    parse(app, args);
  } catch (const CLI::ParseError& e) {
    throw BadInput((args.empty() ? std::string("myotwin") : args.front()) + ": " + e.what());
  }
  const int code = run ? run() : 0;
  if (code != 0)
    throw Error((args.empty() ? std::string("myotwin") : args.front()) + ": exit code " +
                std::to_string(code));
}

int run_command(const std::vector<std::string>& args) {
  // 1. The command line: one executable, a subcommand per task.
  CLI::App app{"myotwin: personalised EMG models of the limb, from MRI labels to motor units"};
  std::function<int()> run;
  add_commands(app, run);

  // 2. Parse: help and version exit 0, usage errors exit 2.
  if (!args.empty() && !args.front().empty() && args.front()[0] != '-') {
    std::string names;
    bool known = false;
    for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      names += (names.empty() ? "" : ", ") + sub->get_name();
      known = known || sub->get_name() == args.front();
    }
    if (!known) {
      std::cerr << "error: unknown command \"" << args.front() << "\"; expected one of: " << names
                << "\n(run with --help for usage)\n";
      return static_cast<int>(ExitCode::bad_input);
    }
  }
  try {
    parse(app, args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\n(run with --help for usage)\n";
    return static_cast<int>(ExitCode::bad_input);
  }

  // 3. Run, mapping errors to exit codes.
  try {
    return run ? run() : 0;
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return static_cast<int>(e.exit_code());
  } catch (const std::bad_alloc&) {
    std::string command;
    for (const auto* sub : app.get_subcommands())
      command += " " + sub->get_name();
    std::cerr << "error: out of memory in `myotwin" << command
              << "`: the inputs or the configuration ask for more memory than this machine "
                 "has; reduce the sizes they set (durations, sampling rates, counts)\n";
    return static_cast<int>(ExitCode::runtime);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return static_cast<int>(ExitCode::runtime);
  }
}

} // namespace myotwin::app
