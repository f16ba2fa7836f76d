// `myotwin config defaults`: prints the complete default run configuration, produced by the
// same readers that read a user's configuration, so it cannot drift from them.

#include <iostream>

#include "commands.hpp"
#include "common.hpp"

namespace myotwin::app {

void add_config_command(CLI::App& app, std::function<int()>& run) {
  auto* config = app.add_subcommand("config", "run configurations");
  config->require_subcommand(1);
  auto* defaults = config->add_subcommand(
      "defaults", "print the complete default configuration (JSON; lengths in mm, as keyed)");
  auto seed = std::make_shared<std::optional<std::uint64_t>>();
  defaults->add_option("--seed", *seed, "seed to put in the printed configuration");
  defaults->callback([&run, seed] {
    run = [seed] {
      ConfigReader reader(nlohmann::json::object(), "default configuration");
      const RunConfig run_config = read_run_config(reader, *seed);
      std::cout << run_config.resolved.dump(2) << "\n";
      return 0;
    };
  });
}

} // namespace myotwin::app
