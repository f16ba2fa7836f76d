// `myotwin score DECOMP TRUTH`: agreement of a decomposition with the ground truth: rate of
// agreement (RoA) after the best lag, sensitivity and precision per matched unit (one-to-one,
// greedy on RoA). DECOMP and TRUTH are decomposition.h5, emg.h5 (truth/spikes) or a .mat with
// MUPulses and fsamp. Prints a table; writes score.json into -o DIR (default: beside DECOMP).
//
// Sample run:
//   myotwin score out/demo/decomposition/decomposition.h5 out/demo/forward/emg.h5

#include <iomanip>
#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/inversion/score.hpp"

namespace myotwin::app {

namespace {

struct ScoreOptions {
  SharedOptions shared;
  std::filesystem::path decomposition, truth;
};

int run_score(const ScoreOptions& o) {
  // 1. Configuration: the `score` section of the run configuration with the options.
  const RunConfig config = begin_run(o.shared);
  const inversion::ScoreParams& params = config.score;

  // 2. Read and score.
  const auto d = inversion::read_spike_trains(o.decomposition);
  const auto t = inversion::read_spike_trains(o.truth);
  const auto result = inversion::score(d, t, params);

  // 3. Write and print.
  const auto dir = o.shared.output.empty() ? o.decomposition.parent_path() : o.shared.output;
  if (!dir.empty())
    ensure_output_dir(dir);
  const auto json_path = dir / relative_path(Output::score).filename();
  auto json = inversion::to_json(result, d, t);
  json["parameters"] = {{"tolerance_ms", params.tolerance_ms},
                        {"max_lag_ms", params.max_lag_ms},
                        {"min_roa", params.min_roa}};
  write_text_file(json_path, json.dump(2) + "\n");
  if (o.shared.quiet)
    return 0;
  std::cout << "decomposed unit  true unit    RoA  sensitivity  precision  lag_ms\n";
  for (const auto& m : result.matches)
    std::cout << std::setw(15) << d.unit_id[static_cast<std::size_t>(m.decomposed)] << std::setw(11)
              << t.unit_id[static_cast<std::size_t>(m.truth)] << std::fixed << std::setprecision(3)
              << std::setw(7) << m.agreement.roa << std::setw(13) << m.sensitivity << std::setw(11)
              << m.precision << std::setprecision(2) << std::setw(8)
              << 1e3 * static_cast<double>(m.agreement.lag_samples) / result.fs_Hz << "\n";
  std::cout << result.matches.size() << " of " << result.n_decomposed
            << " decomposed units match one of " << result.n_truth << " true units; mean RoA "
            << std::setprecision(3) << result.mean_roa << " (tolerance "
            << format_number(params.tolerance_ms) << " ms); " << json_path.string() << "\n";
  return 0;
}

} // namespace

void add_score_command(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<ScoreOptions>();
  auto* cmd = app.add_subcommand(
      "score",
      "rate of agreement (RoA = common / (common + only decomposed + only true)) of a "
      "decomposition with the ground truth after the best lag, sensitivity, precision, "
      "one-to-one matching; DECOMP and TRUTH: decomposition.h5, emg.h5 or .mat (MUPulses, "
      "fsamp); writes score.json; config section `score` (tolerance_ms, max_lag_ms, min_roa)");
  cmd->add_option("DECOMP", o->decomposition, "decomposition (decomposition.h5 or .mat)")
      ->required();
  cmd->add_option("TRUTH", o->truth, "ground truth (emg.h5 or .mat)")->required();
  add_key_option(*cmd, o->shared, "--tolerance-ms", "score.tolerance_ms",
                 "tolerance on a discharge [ms] (0.5)");
  add_key_option(*cmd, o->shared, "--max-lag-ms", "score.max_lag_ms",
                 "largest lag searched [ms] (50)");
  add_shared_options(*cmd, o->shared, false);
  cmd->callback([&run, o] { run = [o] { return run_score(*o); }; });
}

} // namespace myotwin::app
