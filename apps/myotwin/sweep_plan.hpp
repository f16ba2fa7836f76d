#pragma once
// The plan of `myotwin sweep` (docs/scaling.md): the runs a sweep file declares (subjects x
// config overrides, as a Cartesian product or an explicit list), each checked by the run
// config's own reader, and the shared stages (anatomy, mesh, lead fields) that runs with the same
// subject and the same settings of those stages' sections compute once.

#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace myotwin::app {

/// One run of a sweep: OUT/runs/NAME, a `myotwin pipeline` of `subject` with the base config
/// and `settings` (dotted key, value) over it.
struct SweepRun {
  std::string name;    ///< folder name under OUT/runs: subject and a hash of the settings
  std::size_t subject; ///< index into SweepPlan::subjects
  std::size_t shared;  ///< index into SweepPlan::shared
  std::vector<std::pair<std::string, nlohmann::json>> settings;
};

/// The stages anatomy, mesh and leadfield of one subject with one set of the settings they read:
/// OUT/shared/NAME, computed once, linked into the folder of each run that uses them.
struct SharedStages {
  std::string name;
  std::size_t first_run; ///< the first run that uses them (its shared settings are theirs)
  std::size_t n_runs = 0;
};

/// A subject of the sweep.
struct SweepSubject {
  std::string name;
  std::filesystem::path file; ///< subject.json
};

/// A parsed and checked sweep file.
struct SweepPlan {
  std::filesystem::path file;        ///< the sweep file
  std::filesystem::path base_config; ///< the run config every run starts from (empty: defaults)
  std::vector<SweepSubject> subjects;
  std::vector<std::string> keys; ///< every key some run sets, sorted (the summary's columns)
  std::vector<SweepRun> runs;
  std::vector<SharedStages> shared;
};

/// The config sections (and top-level keys) the shared stages read: a setting whose key starts
/// with one of these makes a run's shared stages its own.
const std::vector<std::string>& shared_sections();

/// True when the dotted `key` belongs to a shared section.
bool is_shared_key(const std::string& key);

/// The `--set KEY=VALUE` arguments of `settings` (only the shared ones when `shared_only`).
std::vector<std::string> setting_arguments(const SweepRun& run, bool shared_only);

/// Reads and checks the sweep file `file` (format in docs/scaling.md). Every run's whole
/// configuration is read by the run config's reader (unknown keys and ranges are errors, as in
/// a run config) when there are at most `max_checked_each` runs; else the first run's and each
/// distinct setting over the base config. \throws BadInput naming the file, the run or key and what
/// was expected: a subject that does not exist, an unknown key, a value out of range, two
/// settings of one run where one key contains the other, two runs with the same subject and
/// settings; IoError when a file cannot be read.
SweepPlan read_sweep_plan(const std::filesystem::path& file, std::size_t max_checked_each);

} // namespace myotwin::app
