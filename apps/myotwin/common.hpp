#pragma once
// Shared pieces of the myotwin subcommands: the shared options, the run configuration (one
// strict JSON document with a section per stage), progress display and the resolved config.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/anatomy/phantom.hpp"
#include "myotwin/anatomy/subject_builder.hpp"
#include "myotwin/anatomy/surface_import.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/progress.hpp"
#include "myotwin/forward/conductor/lead_field.hpp"
#include "myotwin/forward/electrodes/electrodes.hpp"
#include "myotwin/forward/needle/iemg_run.hpp"
#include "myotwin/forward/noise/noise.hpp"
#include "myotwin/forward/simulation.hpp"
#include "myotwin/inversion/bmiss.hpp"
#include "myotwin/inversion/decompose.hpp"
#include "myotwin/inversion/score.hpp"
#include "myotwin/meshing/image_mesher.hpp"

namespace myotwin::app {

/// The options every subcommand accepts.
struct SharedOptions {
  std::filesystem::path config;      ///< --config FILE (empty: defaults)
  std::filesystem::path output;      ///< -o/--output DIR
  int threads = 0;                   ///< --threads N (0: all cores)
  std::optional<std::uint64_t> seed; ///< --seed N
  bool quiet = false;                ///< --quiet
  bool verbose = false;              ///< --verbose (debug messages and timings)
  /// Config values given as command-line options (add_key_option(), --set), merged over the
  /// config.
  nlohmann::json overrides = nlohmann::json::object();
  /// The --set KEY=VALUE arguments as given (what `pipeline` passes on to its stages).
  std::vector<std::string> settings;
};

/// Parses `--set` text `KEY=VALUE`: the dotted key (no array index) and the value (JSON when it
/// parses, e.g. 10, true, [1, 2] or {"a": 1}, else the text as a string).
/// \throws BadInput naming the text when there is no `=`, the key is empty or names an array
/// element.
std::pair<std::string, nlohmann::json> parse_setting(const std::string& text);

/// Checks a dotted config key that a value is set for (--set, a sweep's overrides): parts not
/// empty, no array index. \throws BadInput starting with `context` when it is not.
void check_settable_key(const std::string& key, const std::string& context);

/// The JSON pointer of a dotted config key ("simulate.emg.snr_dB" -> /simulate/emg/snr_dB).
nlohmann::json::json_pointer pointer_of(const std::string& key);

/// The largest thread count --threads and the config's `threads` accept.
inline constexpr int max_threads = 4096;

/// CLI check of a number: lo <= value <= hi; the message names the range and `unit`.
CLI::Validator bounded(double lo, double hi, const std::string& unit);

/// CLI check of a thread count: 0 to max_threads.
CLI::Validator thread_count();

/// CLI check of a seed: a decimal integer from 0 to 2^64 - 1 (no sign: `-1` does not wrap).
CLI::Validator seed_value();

/// Adds --config, --set, --threads, --seed, --max-memory-GiB, --quiet, and -o/--output (required
/// when `output_required`) to `command`.
void add_shared_options(CLI::App& command, SharedOptions& options, bool output_required);

/// Adds `flag VALUE` to `command`: the value of the config key `key` (dotted path), read and
/// checked by the same reader as the config file's (so the same range and message), winning
/// over the file. The value is JSON when it parses as a number or boolean, else a string.
void add_key_option(CLI::App& command, SharedOptions& options, const std::string& flag,
                    const std::string& key, const std::string& help);

/// Adds the flag `flag` to `command`: it sets the config key `key` to `value`.
void add_key_flag(CLI::App& command, SharedOptions& options, const std::string& flag,
                  const std::string& key, bool value, const std::string& help);

/// The run configuration: every section of every stage, with defaults.
struct RunConfig {
  std::uint64_t seed = 0;
  int threads = 0;
  anatomy::PhantomParams phantom;
  anatomy::SurfaceImportParams surface_import;
  anatomy::AnatomyParams anatomy;
  anatomy::SubjectBuildParams subject; ///< section `subject` (`subject init`)
  meshing::MeshParams mesh;
  forward::ElectrodeConfig electrodes;             ///< section `electrodes`
  forward::VolumeConductorParams volume_conductor; ///< section `volume_conductor`
  /// `volume_conductor.max_sampled_GiB`: the lead fields sampled at the fibre points are stored
  /// only up to this size [GiB] (the point locations always are).
  double max_sampled_GiB = 2.0;
  forward::SimulationParams simulate;   ///< section `simulate` (with `muap`, `drive`, `emg`)
  inversion::DecomposeParams decompose; ///< section `decompose`
  inversion::ScoreParams score;         ///< section `score`
  inversion::BmissParams invert;        ///< section `invert` (its separation from `decompose`)
  forward::MuapModelParams muap_model;  ///< section `muap_model`
  forward::IemgConfig iemg;             ///< section `iemg` (its `noise` is the top-level `noise`)
  forward::NoiseParams noise;           ///< section `noise` (`noise generate`, `iemg`)
  nlohmann::json resolved;              ///< the whole configuration with defaults, seed and version
};

/// Reads the whole run configuration strictly from `reader` (unknown keys anywhere are
/// errors). `seed_override` (from --seed) wins over the config's `seed`.
RunConfig read_run_config(ConfigReader& reader, std::optional<std::uint64_t> seed_override);

/// Sets up a run from the shared options: log level, the configuration (from --config or
/// defaults), the thread count, and the output folder (created and checked when given).
RunConfig begin_run(const SharedOptions& options);

/// Writes `resolved_config.json` into `dir`.
void write_resolved_config(const std::filesystem::path& dir, const RunConfig& run);

/// The progress display for this process: a bar on a terminal, sparse lines otherwise, nothing
/// with --quiet.
ProgressCallback progress_display(const SharedOptions& options);

/// A command run from another program in this process (the Python module, docs/python.md):
/// the configuration document in place of --config's file, a progress sink in place of the
/// console display, and the command's errors thrown to the caller in place of exit codes.
struct EmbeddedRun {
  nlohmann::json config = nlohmann::json::object(); ///< the run configuration document
  std::string source = "config";                    ///< its name in messages
  std::filesystem::path base = ".";                 ///< relative paths in it start here
  ProgressCallback progress;                        ///< receives the stage's progress (or empty)
};

/// Runs the command line `args` (as run_command()) with `embedded`'s configuration (a --config
/// in `args` is not read) and progress, on the calling thread. \throws the command's errors
/// (Error and its kinds; a usage error as BadInput with CLI11's message).
void run_embedded_command(const std::vector<std::string>& args, const EmbeddedRun& embedded);

/// The embedded run of the calling thread (run_embedded_command()), or nullptr.
const EmbeddedRun* current_embedded_run();

/// The version string, e.g. "0.1.0".
const char* version();

/// Parses the JSON file `path` strictly (parse_json()). \throws IoError naming the file when it
/// cannot be read, BadInput when it is not valid JSON, too deep or has a key twice.
nlohmann::json read_json(const std::filesystem::path& path);

} // namespace myotwin::app

namespace myotwin::anatomy {
struct LabelVolume;
struct LabelSummary;
} // namespace myotwin::anatomy

namespace myotwin::forward {
struct LeadFieldRun;
} // namespace myotwin::forward

namespace myotwin::app {

/// Prints one line per built muscle (volume, length, fibres, units, fibre length and angle).
void print_muscle_table(std::ostream& out, const anatomy::SubjectAnatomy& built);

/// Prints the image geometry and the per-label table of `myotwin anatomy info`.
void print_anatomy_table(std::ostream& out, const anatomy::LabelVolume& volume,
                         const std::vector<anatomy::LabelSummary>& summary);

/// The report of a subject built from a scan (`subject init`): labels, region of interest, body
/// outline, layers and warnings; `unknown_as` is the category given to unknown ids.
void print_subject_report(std::ostream& out, const anatomy::BuiltSubject& built,
                          const std::string& unknown_as);

/// Prints the limb axis the grids were laid out on and where each grid and needle placed by
/// muscle went (LPS mm, rotation from the limb axis).
void print_electrode_placement(std::ostream& out, const forward::ElectrodeLayout& layout);

/// Prints the summary of `myotwin leadfield`: the mesh, the electrodes, the pads' area ratio,
/// the cache hit or the solver's factor and solve times, and the memory used; `s` is
/// leadfield_report.json's content.
void print_leadfield_summary(std::ostream& out, const nlohmann::json& s,
                             const forward::ElectrodeLayout& layout,
                             const forward::LeadFieldRun& run,
                             const std::filesystem::path& cache_file);

class Layout;

/// Writes OUT/pipeline/summary.json of a whole chain (units simulated, recruited, identified,
/// matched, RoA per unit, `time_s`) from the stages' reports, and prints it unless `quiet`.
void write_pipeline_summary(const Layout& layout, double time_s, bool quiet);

} // namespace myotwin::app
