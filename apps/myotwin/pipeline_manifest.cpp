#include "pipeline_manifest.hpp"

#include <cstdio>

#include "common.hpp"
#include "layout.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/hash.hpp"
#include "myotwin/core/log.hpp"

namespace myotwin::app {

namespace fs = std::filesystem;

namespace {

/// True for files that are no stage's output: temporaries, write probes, the pipeline's own
/// folder, and resolved_config.json (a record of the run that no stage reads).
bool is_bookkeeping(const fs::path& relative) {
  const std::string name = relative.filename().string();
  return relative.begin()->string() == "pipeline" || name.rfind(".tmp-", 0) == 0 ||
         name.rfind(".myotwin-write-test-", 0) == 0 ||
         name == relative_path(Output::resolved_config).filename().string();
}

} // namespace

std::string hex(std::uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

const std::string& program_build_id() {
  static const std::string id = [] {
    try {
      return hex(hash_file("/proc/self/exe"));
    } catch (const Error& e) {
      log_warning("pipeline: the program's executable cannot be read (", e.what(),
                  "): stage keys hold its version only, a rebuilt myotwin is not noticed");
      return std::string("unknown build");
    }
  }();
  return id;
}

std::string FileHashes::of(const fs::path& path) {
  std::error_code ec;
  const FileStamp stamp{fs::file_size(path, ec), fs::last_write_time(path, ec)};
  if (ec)
    throw IoError(path.string() + ": cannot be read: " + ec.message());
  const auto it = cache_.find(path.string());
  if (it != cache_.end() && it->second.first == stamp)
    return it->second.second;
  const std::string h = hex(hash_file(path));
  cache_[path.string()] = {stamp, h};
  return h;
}
std::map<std::string, FileStamp> snapshot(const fs::path& out) {
  std::map<std::string, FileStamp> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(out, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file(ec))
      continue;
    const fs::path relative = it->path().lexically_relative(out);
    if (is_bookkeeping(relative))
      continue;
    files[relative.generic_string()] = {it->file_size(ec), it->last_write_time(ec)};
  }
  return files;
}

std::uint64_t hash_named_files(const nlohmann::json& value, const fs::path& base,
                               FileHashes& hashes, std::uint64_t hash) {
  if (value.is_string()) {
    const fs::path p(value.get<std::string>());
    const fs::path resolved = p.is_absolute() ? p : (base / p).lexically_normal();
    std::error_code ec;
    if (!p.empty() && fs::is_regular_file(resolved, ec))
      hash = hash_text(resolved.string() + "=" + hashes.of(resolved), hash);
  } else if (value.is_structured()) {
    for (const auto& item : value)
      hash = hash_named_files(item, base, hashes, hash);
  }
  return hash;
}

std::string why_not_reusable(const nlohmann::json& entry, const std::string& key,
                             const fs::path& out, FileHashes& hashes) {
  if (entry.is_null())
    return "no record of a completed run";
  if (!entry.is_object() || !entry.contains("outputs") || !entry["outputs"].is_object())
    return "its record in the manifest is incomplete";
  if (entry.value("key", "") != key && entry.contains("build") &&
      entry.value("build", "") != program_build_id())
    return "the program was rebuilt (build " + program_build_id() + ", was " +
           entry.value("build", "") + ")";
  if (entry.value("key", "") != key)
    return "its inputs changed (key " + key + ", was " + entry.value("key", "") + ")";
  for (const auto& [relative, hash] : entry.at("outputs").items()) {
    std::error_code ec;
    if (!fs::is_regular_file(out / relative, ec))
      return relative + " is missing";
    if (hashes.of(out / relative) != hash.get<std::string>())
      return relative + " changed on disk since the stage wrote it";
  }
  return {};
}

std::uint64_t common_inputs_key(std::uint64_t seed, const std::vector<fs::path>& files,
                                FileHashes& hashes) {
  std::uint64_t common = hash_text(version());
  common = hash_text(program_build_id(), common);
  common = hash_text(std::to_string(seed), common);
  for (const auto& f : files)
    common = hash_text(hashes.of(f), common);
  return common;
}

nlohmann::json read_manifest(const fs::path& file) {
  nlohmann::json manifest = {{"format", "myotwin pipeline manifest 1"},
                             {"stages", nlohmann::json::object()}};
  if (!fs::exists(file))
    return manifest;
  try {
    const auto m = read_json(file);
    if (m.value("format", "") == manifest["format"] && m.at("stages").is_object())
      return m;
  } catch (const std::exception& e) {
    log_warning("pipeline: ", file.string(), " is unreadable (", e.what(), "); every stage reruns");
  }
  return manifest;
}

std::vector<Stage> chain() {
  const auto emg = relative_path(Output::emg).string();
  const auto decomposition = relative_path(Output::decomposition).string();
  return {{"anatomy", {"anatomy"}, relative_path(Output::motor_units), {}},
          {"mesh", {"mesh"}, relative_path(Output::mesh), {"anatomy/"}},
          {"leadfield",
           {"electrodes", "volume_conductor"},
           relative_path(Output::lead_fields),
           {"anatomy/", "mesh/"}},
          {"simulate", {"simulate"}, relative_path(Output::emg), {"anatomy/", "mesh/", "forward/"}},
          {"decompose", {"decompose"}, relative_path(Output::decomposition), {emg}},
          {"score", {"score"}, relative_path(Output::score), {decomposition, emg}}};
}

std::size_t stages_until(const std::vector<Stage>& stages, const std::string& until) {
  if (until.empty())
    return stages.size();
  std::string names;
  for (std::size_t k = 0; k < stages.size(); ++k) {
    names += (k > 0 ? ", " : "") + stages[k].name;
    if (stages[k].name == until)
      return k + 1;
  }
  throw BadInput("pipeline: --until \"" + until + "\" is not a stage (expected one of " + names +
                 ")");
}

std::string stage_key(const Stage& stage, std::uint64_t common,
                      const std::map<std::string, std::string>& earlier_outputs,
                      const nlohmann::json& resolved, const fs::path& config_dir,
                      FileHashes& hashes) {
  std::uint64_t key = hash_text(stage.name, common);
  for (const auto& [relative, hash] : earlier_outputs)
    for (const auto& prefix : stage.reads)
      if (relative.rfind(prefix, 0) == 0) {
        key = hash_text(relative + "=" + hash, key);
        break;
      }
  for (const auto& section : stage.sections) {
    const nlohmann::json value =
        resolved.contains(section) ? resolved[section] : nlohmann::json::object();
    key = hash_text(section + "=" + value.dump(), key);
    key = hash_named_files(value, config_dir, hashes, key);
  }
  return hex(key);
}

} // namespace myotwin::app
