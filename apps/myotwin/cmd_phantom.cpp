// `myotwin phantom -o DIR`: generates the procedural forearm (labels.nii.gz, tissues.json,
// subject.json) and reports its anatomy.

#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"

namespace myotwin::app {

namespace {

int run_phantom(const SharedOptions& options) {
  // 1. Configuration and output folder.
  const RunConfig config = begin_run(options);
  const auto& dir = options.output;

  // 2. Generate.
  Stopwatch watch;
  log_info("generating the forearm phantom (seed ", config.seed, ")");
  const anatomy::Phantom phantom = anatomy::generate_forearm_phantom(config.phantom);

  // 3. Write the subject: volume, tissue table, subject file, resolved configuration.
  anatomy::write_label_volume(dir / "labels.nii.gz", phantom.volume);
  anatomy::write_tissue_table(dir / "tissues.json", phantom.tissues);
  anatomy::write_subject_file(dir / "subject.json", "forearm_phantom", "labels.nii.gz",
                              "tissues.json");
  write_resolved_config(dir, config);

  // 4. Report.
  if (!options.quiet)
    print_anatomy_table(std::cout, phantom.volume,
                        anatomy::summarise_labels(phantom.volume, phantom.tissues));
  log_info("phantom written in ", watch.elapsed_s(), " s: ", (dir / "subject.json").string());
  return 0;
}

} // namespace

void add_phantom_command(CLI::App& app, std::function<int()>& run) {
  auto options = std::make_shared<SharedOptions>();
  auto* command = app.add_subcommand(
      "phantom", "generate a procedural forearm subject (labels.nii.gz, tissues.json, "
                 "subject.json); geometry in the config's `phantom` section (lengths in mm)");
  add_shared_options(*command, *options, true);
  command->callback([&run, options] { run = [options] { return run_phantom(*options); }; });
}

} // namespace myotwin::app
