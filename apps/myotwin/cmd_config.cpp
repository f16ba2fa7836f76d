// `myotwin config defaults`: prints the complete default run configuration, produced by the
// same readers that read a user's configuration, so it cannot drift from them. With --docs, every
// key of every command as the reader call that reads it declares it (core/config.hpp,
// KeyDeclaration): default, unit, range and one line of documentation; with --markdown, the
// same as the tables of docs/parameters.md.

#include <iostream>
#include <sstream>

#include <unistd.h>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/core/files.hpp"

namespace myotwin::app {

namespace {

/// A folder of this process under the system's temporary folder, removed when it goes.
class TempFolder {
public:
  TempFolder()
      : path_(std::filesystem::temp_directory_path() /
              ("myotwin-config-docs-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~TempFolder() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

private:
  std::filesystem::path path_;
};

/// Configurations that choose the alternatives the defaults do not (other profile types, grids
/// placed by centre, needles, a fine wire and the clinical needles of iemg, an anatomy as the iemg
/// muscle, per-tissue cell sizes), so that the keys only they read are declared too. `csv` is an
/// excitation CSV.
std::vector<nlohmann::json> alternatives(const std::string& csv) {
  return {{{"electrodes",
            {{"grids",
              {{{"name", "a"}, {"shape", "square"}, {"centre_mm", {0.0, 0.0, 0.0}}},
               {{"name", "b"}, {"axial_position_mm", 10.0}, {"wrap", true}},
               {{"name", "c"}, {"muscle", "m"}, {"offset_mm", {0.0, 0.0}}}}},
             {"needles",
              {{{"name", "n1"}, {"position_mm", {0.0, 0.0, 0.0}}},
               {{"name", "n2"}, {"start_mm", {0.0, 0.0, 0.0}}, {"end_mm", {0.0, 0.0, 1.0}}},
               {{"name", "n3"}, {"muscle", "m"}, {"depth_mm", 10.0}}}},
             {"limb_axis", {0.0, 0.0, 1.0}},
             {"placed",
              {{{"group", "c"},
                {"muscle", "m"},
                {"tissue", "m"},
                {"centre_mm", {0.0, 0.0, 0.0}},
                {"skin_point_mm", {0.0, 0.0, 0.0}},
                {"fibre_direction", {0.0, 0.0, 1.0}},
                {"rotation_deg", 0.0}}}}}},
           {"mesh", {{"tissue_cell_sizes", {{{"tissue", "x"}, {"cell_size_mm", 1.0}}}}}},
           {"simulate", {{"drive", {{"profile", {{"type", "ramp"}}}}}}},
           {"iemg",
            {{"anatomy", {{"dir", "anatomy"}, {"muscle", "m"}}},
             {"needle", {{"type", "fine_wire"}, {"pairs", {{{"b_mm", {1.0, 0.0, 0.0}}}}}}},
             {"drive", {{"profile", {{"type", "sinusoid"}}}}}}}},
          {{"simulate", {{"drive", {{"profile", {{"type", "sinusoid"}}}}}}},
           {"iemg", {{"drive", {{"profile", {{"type", "ramp"}}}}}}}},
          {{"simulate", {{"drive", {{"profile", {{"type", "csv"}, {"path", csv}}}}}}},
           {"iemg", {{"drive", {{"profile", {{"type", "constant"}}}}}}}},
          {{"iemg",
            {{"drive", {{"profile", {{"type", "csv"}, {"path", csv}}}}},
             {"needle", {{"type", "concentric"}}}}}},
          {{"iemg", {{"needle", {{"type", "monopolar"}}}}}},
          {{"iemg", {{"needle", {{"type", "single_fibre"}}}}}}};
}

/// The declarations of every key: the defaults read, the resolved configuration read back
/// (which spells out the default grid), and the alternatives(); each key once, in that order.
std::vector<KeyDeclaration> all_declarations(std::optional<std::uint64_t> seed,
                                             nlohmann::json& resolved) {
  ConfigReader defaults(nlohmann::json::object(), "default configuration");
  resolved = read_run_config(defaults, seed).resolved;
  std::vector<KeyDeclaration> list = defaults.declarations();
  const auto add = [&list](const ConfigReader& reader) {
    for (auto d : reader.declarations()) {
      const bool known = std::any_of(list.begin(), list.end(),
                                     [&](const KeyDeclaration& k) { return k.path == d.path; });
      if (!known) {
        if (d.path.find("[]") != std::string::npos)
          d.value = nullptr; // an element of a default array: its value is in the array's
        list.push_back(d);
      }
    }
  };
  ConfigReader again(resolved, "resolved default configuration");
  (void)read_run_config(again, seed);
  add(again);
  // The excitation CSV of the csv profiles, in a folder of its own, removed again.
  const TempFolder folder;
  write_text_file(folder.path() / "profile.csv", "time_s,excitation\n0,0.1\n1000,0.1\n");
  for (const auto& variant : alternatives("profile.csv")) {
    ConfigReader reader(variant, "alternatives", folder.path());
    (void)read_run_config(reader, seed);
    add(reader);
  }
  return list;
}

std::string value_text(const KeyDeclaration& d) {
  if (d.required)
    return "(required)";
  if (d.value.is_null())
    return "(none)";
  return json_excerpt(d.value);
}

std::string docs_text(const std::vector<KeyDeclaration>& keys) {
  std::ostringstream out;
  for (const auto& d : keys) {
    out << d.path << " = " << value_text(d);
    if (!d.unit.empty())
      out << " [" << d.unit << "]";
    out << "  (" << d.type << (d.range.empty() ? "" : ", " + d.range) << ")\n    "
        << (d.doc.empty() ? "(undocumented)" : d.doc) << "\n";
  }
  return out.str();
}

std::string docs_markdown(const std::vector<KeyDeclaration>& keys) {
  std::ostringstream out;
  out << "# Configuration keys\n\n"
      << "Generated by `myotwin config defaults --markdown` from the reader calls that read each "
         "key (do not edit; `tests/apps/test_config_keys.cpp` checks that it is current). Every "
         "command "
         "reads the same run configuration; `myotwin config defaults` prints it with its "
         "defaults. Units are in the key names (docs/conventions.md).\n";
  std::string section = "\x01";
  for (const auto& d : keys) {
    const auto dot = d.path.find('.');
    const std::string top = dot == std::string::npos ? "" : d.path.substr(0, dot);
    if (top != section) {
      section = top;
      out << "\n## " << (top.empty() ? std::string("Top level") : "`" + top + "`") << "\n\n"
          << "| key | default | unit | type, range | meaning |\n|---|---|---|---|---|\n";
    }
    std::string value = value_text(d);
    for (std::size_t i = 0; (i = value.find('|', i)) != std::string::npos; i += 2)
      value.replace(i, 1, "\\|");
    out << "| `" << d.path << "` | `" << value << "` | " << d.unit << " | " << d.type
        << (d.range.empty() ? "" : ", " + d.range) << " | " << d.doc << " |\n";
  }
  return out.str();
}

} // namespace

void add_config_command(CLI::App& app, std::function<int()>& run) {
  auto* config = app.add_subcommand("config", "run configurations");
  config->require_subcommand(1);
  auto* defaults = config->add_subcommand(
      "defaults", "print the complete default configuration (JSON; lengths in mm, as keyed), or "
                  "with --docs every key with its default, unit, range and meaning");
  auto seed = std::make_shared<std::optional<std::uint64_t>>();
  auto docs = std::make_shared<bool>(false);
  auto markdown = std::make_shared<bool>(false);
  defaults->add_option("--seed", *seed, "seed to put in the printed configuration");
  defaults->add_flag("--docs", *docs, "every key: default, unit, type and range, meaning");
  defaults->add_flag("--markdown", *markdown, "the same as Markdown tables (docs/parameters.md)");
  defaults->callback([&run, seed, docs, markdown] {
    run = [seed, docs, markdown] {
      if (!*markdown && !*docs) {
        ConfigReader reader(nlohmann::json::object(), "default configuration");
        std::cout << read_run_config(reader, *seed).resolved.dump(2) << "\n";
        return 0;
      }
      nlohmann::json resolved;
      const auto keys = all_declarations(*seed, resolved);
      std::cout << (*markdown ? docs_markdown(keys) : docs_text(keys));
      return 0;
    };
  });
}

} // namespace myotwin::app
