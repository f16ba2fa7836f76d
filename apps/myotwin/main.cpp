// myotwin: from a segmented limb to personalised EMG and back.
//
// Sample runs:
//   myotwin phantom -o subject/            generate the sample forearm
//   myotwin subject init seg.nii.gz --scheme musclemap -o subject/   a subject from a scan
//   myotwin anatomy info subject/subject.json
//   myotwin config defaults > run.json     every configuration key with its default
//
// main() parses the command line, runs one subcommand and maps errors to exit codes:
// 0 ok, 1 runtime or numerical failure, 2 bad input or usage, 130 / 143 interrupted by SIGINT /
// SIGTERM (unfinished temporary files removed; see docs/reliability.md).

#include <iostream>
#include <new>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/process.hpp"

int main(int argc, char** argv) {
  // 0. Interrupts stop the work and remove unfinished temporary files (before threads start).
  myotwin::install_interrupt_handling();

  // 1. The command line: one executable, a subcommand per task.
  CLI::App app{"myotwin: personalised EMG models of the limb, from MRI labels to motor units"};
  app.set_version_flag("--version", std::string("myotwin ") + myotwin::app::version());
  app.require_subcommand(1);
  app.fallthrough(false);
  std::function<int()> run;
  myotwin::app::add_config_command(app, run);
  myotwin::app::add_phantom_command(app, run);
  myotwin::app::add_subject_command(app, run);
  myotwin::app::add_anatomy_command(app, run);
  myotwin::app::add_mesh_command(app, run);
  myotwin::app::add_leadfield_command(app, run);
  myotwin::app::add_simulate_command(app, run);
  myotwin::app::add_iemg_command(app, run);
  myotwin::app::add_noise_command(app, run);
  myotwin::app::add_decompose_command(app, run);
  myotwin::app::add_score_command(app, run);
  myotwin::app::add_invert_command(app, run);
  myotwin::app::add_pipeline_command(app, run);
  myotwin::app::add_bench_command(app, run);

  // 2. Parse: help and version exit 0, usage errors exit 2.
  if (argc > 1 && argv[1][0] != '-') {
    std::string names;
    bool known = false;
    for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      names += (names.empty() ? "" : ", ") + sub->get_name();
      known = known || sub->get_name() == argv[1];
    }
    if (!known) {
      std::cerr << "error: unknown command \"" << argv[1] << "\"; expected one of: " << names
                << "\n(run with --help for usage)\n";
      return static_cast<int>(myotwin::ExitCode::bad_input);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\n(run with --help for usage)\n";
    return static_cast<int>(myotwin::ExitCode::bad_input);
  }

  // 3. Run, mapping errors to exit codes.
  try {
    return run ? run() : 0;
  } catch (const myotwin::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return static_cast<int>(e.exit_code());
  } catch (const std::bad_alloc&) {
    std::string command;
    for (const auto* sub : app.get_subcommands())
      command += " " + sub->get_name();
    std::cerr << "error: out of memory in `myotwin" << command
              << "`: the inputs or the configuration ask for more memory than this machine "
                 "has; reduce the sizes they set (durations, sampling rates, counts)\n";
    return static_cast<int>(myotwin::ExitCode::runtime);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return static_cast<int>(myotwin::ExitCode::runtime);
  }
}
