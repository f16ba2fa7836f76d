#pragma once
// The stages of `myotwin pipeline` and their bookkeeping (docs/reliability.md, "Stage keys"):
// the chain, content hashes of files, snapshots of an output folder, the key of a stage (a hash
// of everything it reads), and the manifest of the stages that ran, with the test of whether a
// stage's record can be reused.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace myotwin::app {

/// One stage of the chain: the subcommand, the config sections it reads, the file whose
/// presence says it completed, and which outputs of the earlier stages it reads (paths relative
/// to OUT that start with one of these; reports such as simulate_report.json, which carry
/// timings, are read by no stage).
struct Stage {
  std::string name;
  std::vector<std::string> sections;
  std::filesystem::path product; ///< relative to OUT
  std::vector<std::string> reads;
};

/// The chain, in order.
std::vector<Stage> chain();

/// How many stages of `stages` run: all, or up to and including `until`.
/// \throws BadInput naming `until` and the stages when it is not one.
std::size_t stages_until(const std::vector<Stage>& stages, const std::string& until);

/// `value` as 16 hex digits.
std::string hex(std::uint64_t value);

/// The build of the running program (16 hex digits): the hash of its executable's bytes
/// (/proc/self/exe) and of the GNU build id of every shared library it has loaded (ITK, VTK,
/// CGAL's dependencies, HDF5, CHOLMOD, OpenBLAS, ...; path, size and time for a library without
/// one), computed once per process. Part of every stage key, so a rebuilt `myotwin`, or one
/// running on upgraded libraries, reruns the stages even when its version string is the same;
/// written only into the manifest, never into a stage's outputs. When the executable cannot be
/// read, the version string (and a warning that rebuilds are not detected).
const std::string& program_build_id();

/// A file's size and modification time: what tells a stage's outputs from the files it left.
struct FileStamp {
  std::uintmax_t size = 0;
  std::filesystem::file_time_type time;
  bool operator==(const FileStamp&) const = default;
};

/// Content hashes of files, each computed once per run (keyed by path, size and time).
class FileHashes {
public:
  /// The hex hash of the contents of `path`. \throws IoError when it cannot be read.
  std::string of(const std::filesystem::path& path);

private:
  std::map<std::string, std::pair<FileStamp, std::string>> cache_;
};

/// The stamp of every file below `out` (relative paths) that is a stage's output: not a
/// temporary, a write probe, the pipeline's own folder or a resolved_config.json.
std::map<std::string, FileStamp> snapshot(const std::filesystem::path& out);

/// Adds to `hash` the contents of every file that a string in `value` names (relative paths
/// resolve against `base`), e.g. `simulate.discharges` or `simulate.drive.profile.path`.
std::uint64_t hash_named_files(const nlohmann::json& value, const std::filesystem::path& base,
                               FileHashes& hashes, std::uint64_t hash);

/// Why a stage cannot be reused, or empty when it can: its manifest entry must have `key` and
/// every output it lists must exist in `out` with the same contents.
std::string why_not_reusable(const nlohmann::json& entry, const std::string& key,
                             const std::filesystem::path& out, FileHashes& hashes);

/// The key of `stage` (16 hex digits): a hash of `common` (version, seed, subject files), the
/// contents of the `earlier_outputs` it reads, its config sections in `resolved` and the
/// contents of the files they name (relative to `config_dir`).
std::string stage_key(const Stage& stage, std::uint64_t common,
                      const std::map<std::string, std::string>& earlier_outputs,
                      const nlohmann::json& resolved, const std::filesystem::path& config_dir,
                      FileHashes& hashes);

/// The hash of what every stage reads: the program (its version and build), the seed and the
/// contents of the subject's files.
std::uint64_t common_inputs_key(std::uint64_t seed, const std::vector<std::filesystem::path>& files,
                                FileHashes& hashes);

/// The manifest of the stages run before (`file`), or a new one when there is none or it cannot
/// be read (then every stage reruns).
nlohmann::json read_manifest(const std::filesystem::path& file);

} // namespace myotwin::app
