#pragma once
// One function per subcommand: each adds its CLI11 subcommand to `app` and, when chosen, sets
// `run` to the work to do (returning the exit code).

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace myotwin::app {

/// Runs the command line `args` (argv[1..]: the subcommand, its arguments and options) in this
/// process: parses it, runs the subcommand and maps its errors to exit codes (messages on
/// standard error): 0 ok, 1 runtime failure, 2 bad input or usage. main() and the commands that
/// run other commands (`pipeline`, `bench bmiss`) call it.
int run_command(const std::vector<std::string>& args);

/// Runs the command line `args` as run_command() does, but throws the command's errors (Error
/// and its kinds; a usage error as BadInput with CLI11's message) instead of printing them and
/// returning an exit code (run_embedded_command()).
void run_command_throwing(const std::vector<std::string>& args);

/// `myotwin config defaults`.
void add_config_command(CLI::App& app, std::function<int()>& run);
/// `myotwin phantom -o DIR`.
void add_phantom_command(CLI::App& app, std::function<int()>& run);
/// `myotwin subject init SEGMENTATION -o DIR`.
void add_subject_command(CLI::App& app, std::function<int()>& run);
/// `myotwin anatomy info SUBJECT.json`.
void add_anatomy_command(CLI::App& app, std::function<int()>& run);
/// `myotwin mesh SUBJECT.json -o OUT`.
void add_mesh_command(CLI::App& app, std::function<int()>& run);
/// `myotwin leadfield SUBJECT.json -o OUT`.
void add_leadfield_command(CLI::App& app, std::function<int()>& run);

/// `myotwin simulate SUBJECT.json -o OUT`.
void add_simulate_command(CLI::App& app, std::function<int()>& run);
/// `myotwin iemg [CONFIG] -o OUT`.
void add_iemg_command(CLI::App& app, std::function<int()>& run);
/// `myotwin noise calibrate RECORDING -o noise.json`, `myotwin noise generate -o noise.h5`.
void add_noise_command(CLI::App& app, std::function<int()>& run);
/// `myotwin noise calibrate RECORDING -o noise.json`, a subcommand of `noise`.
void add_noise_calibrate_command(CLI::App& noise, std::function<int()>& run);

/// `myotwin decompose EMG -o OUT`.
void add_decompose_command(CLI::App& app, std::function<int()>& run);
/// `myotwin score DECOMP TRUTH`.
void add_score_command(CLI::App& app, std::function<int()>& run);

/// `myotwin pipeline SUBJECT.json -o OUT`: every stage, reusing unchanged ones.
void add_pipeline_command(CLI::App& app, std::function<int()>& run);
/// `myotwin sweep SWEEP.json -o OUT`: many pipelines, shared stages once, serial or under MPI.
void add_sweep_command(CLI::App& app, std::function<int()>& run);
/// `myotwin report OUT`: one self-contained HTML page of the results in OUT.
void add_report_command(CLI::App& app, std::function<int()>& run);
/// `myotwin invert EMG --subject SUBJECT.json -o OUT`: model-informed separation.
void add_invert_command(CLI::App& app, std::function<int()>& run);

/// `myotwin bench bmiss`: the model-informed separation benchmark.
void add_bench_command(CLI::App& app, std::function<int()>& run);
} // namespace myotwin::app
