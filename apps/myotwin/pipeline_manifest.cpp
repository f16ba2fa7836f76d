#include "pipeline_manifest.hpp"

#include <link.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

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

/// The GNU build id (NT_GNU_BUILD_ID note) of one loaded object as hex, or "" when it has none.
std::string gnu_build_id(const dl_phdr_info& info) {
  for (ElfW(Half) i = 0; i < info.dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info.dlpi_phdr[i];
    if (ph.p_type != PT_NOTE)
      continue;
    const auto* p = reinterpret_cast<const unsigned char*>(info.dlpi_addr + ph.p_vaddr);
    const unsigned char* const end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      ElfW(Nhdr) note;
      std::memcpy(&note, p, sizeof note);
      const unsigned char* name = p + sizeof note;
      const unsigned char* desc = name + ((note.n_namesz + 3u) & ~3u);
      const unsigned char* next = desc + ((note.n_descsz + 3u) & ~3u);
      if (next > end)
        break;
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 &&
          std::memcmp(name, "GNU", 4) == 0) {
        std::string id;
        for (ElfW(Word) k = 0; k < note.n_descsz; ++k) {
          char byte[3];
          std::snprintf(byte, sizeof byte, "%02x", desc[k]);
          id += byte;
        }
        return id;
      }
      p = next;
    }
  }
  return {};
}

/// One line per shared library loaded now: "path=build id", or "path=size,mtime" for a library
/// built without a build id; sorted, so the load order does not matter.
std::vector<std::string> loaded_libraries() {
  std::vector<std::string> libraries;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0')
          return 0; // the executable itself (hashed whole) or the vDSO
        const std::string path = info->dlpi_name;
        std::string id = gnu_build_id(*info);
        if (id.empty()) {
          std::error_code ec;
          const auto size = fs::file_size(path, ec);
          const auto time = fs::last_write_time(path, ec).time_since_epoch().count();
          id = ec ? "unreadable" : std::to_string(size) + "," + std::to_string(time);
        }
        static_cast<std::vector<std::string>*>(data)->push_back(path + "=" + id);
        return 0;
      },
      &libraries);
  std::sort(libraries.begin(), libraries.end());
  return libraries;
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
      std::uint64_t h = hash_file("/proc/self/exe");
      for (const auto& library : loaded_libraries())
        h = hash_text(library, h);
      return hex(h);
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
    return "the program or a library it loads changed (build " + program_build_id() + ", was " +
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
