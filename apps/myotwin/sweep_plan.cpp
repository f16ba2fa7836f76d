#include "sweep_plan.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "common.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hash.hpp"
#include "pipeline_manifest.hpp"

namespace myotwin::app {

namespace fs = std::filesystem;

namespace {

/// `path` as written in the sweep file, relative to the sweep file's folder.
fs::path resolve(const fs::path& sweep_file, const std::string& path) {
  const fs::path p(path);
  if (p.is_absolute() || !sweep_file.has_parent_path())
    return p;
  return (sweep_file.parent_path() / p).lexically_normal();
}

/// Throws BadInput when `object` has a key other than `allowed`.
void check_keys(const nlohmann::json& object, const std::vector<std::string>& allowed,
                const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end())
      continue;
    std::string names;
    for (const auto& a : allowed)
      names += (names.empty() ? "" : ", ") + a;
    throw BadInput(where + ": unknown key \"" + key + "\" (expected " + names + ")");
  }
}

/// The subjects: an array of subject.json paths (named by their folders) or an object of name
/// -> path. Each must be a readable subject file.
std::vector<SweepSubject> read_subjects(const fs::path& file, const nlohmann::json& value) {
  const std::string where = file.string() + ": subjects";
  std::vector<SweepSubject> subjects;
  if (value.is_array()) {
    for (const auto& item : value) {
      if (!item.is_string())
        throw BadInput(where + ": " + item.dump() + ": expected the path of a subject.json");
      const fs::path p = resolve(file, item.get<std::string>());
      subjects.push_back({p.parent_path().filename().string(), p});
    }
  } else if (value.is_object()) {
    for (const auto& [name, item] : value.items()) {
      if (!item.is_string())
        throw BadInput(where + "." + name + " = " + item.dump() +
                       ": expected the path of a subject.json");
      subjects.push_back({name, resolve(file, item.get<std::string>())});
    }
  } else {
    throw BadInput(where + " = " + value.dump() +
                   ": expected an array of subject.json paths or an object of name -> path");
  }
  if (subjects.empty())
    throw BadInput(where + " is empty: expected at least one subject");
  std::set<std::string> names;
  for (const auto& s : subjects) {
    if (s.name.empty() || s.name.find_first_of("/\\") != std::string::npos)
      throw BadInput(where + ": subject name \"" + s.name + "\" (of " + s.file.string() +
                     ") cannot name a folder; give subjects as an object of name -> path");
    if (!names.insert(s.name).second)
      throw BadInput(where + ": two subjects are called \"" + s.name +
                     "\"; give subjects as an object of name -> path");
    std::error_code ec;
    if (!fs::is_regular_file(s.file, ec))
      throw BadInput(where + ": subject \"" + s.name + "\": " + s.file.string() +
                     " does not exist (paths are relative to the sweep file)");
    (void)anatomy::read_subject_file(s.file); // its labels and tissues must exist too
  }
  return subjects;
}

/// Checks the settings of one run: keys settable, none containing another.
void check_settings(const std::vector<std::pair<std::string, nlohmann::json>>& settings,
                    const std::string& where) {
  for (const auto& [key, value] : settings)
    check_settable_key(key, where);
  for (std::size_t a = 0; a < settings.size(); ++a)
    for (std::size_t b = 0; b < settings.size(); ++b) {
      const std::string& ka = settings[a].first;
      const std::string& kb = settings[b].first;
      if (a != b && (ka == kb || (kb.size() > ka.size() && kb.rfind(ka + ".", 0) == 0)))
        throw BadInput(where + ": the overrides \"" + ka + "\" and \"" + kb +
                       "\" conflict: one sets what the other sets (give only one of them)");
    }
}

/// `base` with `settings` over it.
nlohmann::json with_settings(const nlohmann::json& base,
                             const std::vector<std::pair<std::string, nlohmann::json>>& settings) {
  nlohmann::json patch = nlohmann::json::object();
  for (const auto& [key, value] : settings)
    patch[pointer_of(key)] = value;
  nlohmann::json document = base;
  document.merge_patch(patch);
  return document;
}

/// "subject, key=value, ..." of a run, for messages.
std::string describe(const SweepPlan& plan, const SweepRun& run) {
  std::string text = plan.subjects[run.subject].name;
  for (const auto& [key, value] : run.settings)
    text += ", " + key + "=" + value.dump();
  return text;
}

} // namespace

const std::vector<std::string>& shared_sections() {
  static const std::vector<std::string> sections = [] {
    std::vector<std::string> s = {"seed"}; // part of every stage key
    for (const auto& stage : chain()) {
      for (const auto& section : stage.sections)
        s.push_back(section);
      if (stage.name == "leadfield")
        break;
    }
    return s;
  }();
  return sections;
}

bool is_shared_key(const std::string& key) {
  const std::string top = key.substr(0, key.find('.'));
  const auto& s = shared_sections();
  return std::find(s.begin(), s.end(), top) != s.end();
}

std::vector<std::string> setting_arguments(const SweepRun& run, bool shared_only) {
  std::vector<std::string> args;
  for (const auto& [key, value] : run.settings)
    if (!shared_only || is_shared_key(key))
      args.insert(args.end(), {"--set", key + "=" + value.dump()});
  return args;
}

SweepPlan read_sweep_plan(const fs::path& file, std::size_t max_checked_each) {
  SweepPlan plan;
  plan.file = file;
  const nlohmann::json sweep = read_json(file);
  const std::string where = file.string();
  if (!sweep.is_object())
    throw BadInput(where + ": expected a JSON object with subjects and product or runs");
  check_keys(sweep, {"description", "subjects", "config", "product", "runs"}, where);
  if (!sweep.contains("subjects"))
    throw BadInput(where + ": subjects is missing: expected the subject.json of each subject");
  plan.subjects = read_subjects(file, sweep["subjects"]);

  // 1. The base configuration.
  nlohmann::json base = nlohmann::json::object();
  fs::path base_dir = ".";
  if (sweep.contains("config")) {
    if (!sweep["config"].is_string())
      throw BadInput(where + ": config = " + sweep["config"].dump() +
                     ": expected the path of a run configuration (JSON)");
    plan.base_config = resolve(file, sweep["config"].get<std::string>());
    std::error_code ec;
    if (!fs::is_regular_file(plan.base_config, ec))
      throw BadInput(where + ": config: " + plan.base_config.string() +
                     " does not exist (paths are relative to the sweep file)");
    base = read_json(plan.base_config);
    if (plan.base_config.has_parent_path())
      base_dir = plan.base_config.parent_path();
  }

  // 2. The runs: subjects x the product, or the explicit list.
  if (sweep.contains("product") && sweep.contains("runs"))
    throw BadInput(where + ": give product (every combination) or runs (an explicit list), not "
                           "both");
  if (sweep.contains("runs")) {
    const auto& runs = sweep["runs"];
    if (!runs.is_array() || runs.empty())
      throw BadInput(where + ": runs = " + runs.dump().substr(0, 80) +
                     ": expected a non-empty array of {\"subject\": NAME, \"set\": {KEY: VALUE}}");
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const std::string at = where + ": runs[" + std::to_string(i) + "]";
      const auto& r = runs[i];
      if (!r.is_object())
        throw BadInput(at + " = " + r.dump() + ": expected {\"subject\": NAME, \"set\": {...}}");
      check_keys(r, {"subject", "set"}, at);
      SweepRun run;
      if (r.contains("subject")) {
        const std::string name = r["subject"].is_string() ? r["subject"].get<std::string>() : "";
        const auto it = std::find_if(plan.subjects.begin(), plan.subjects.end(),
                                     [&](const SweepSubject& s) { return s.name == name; });
        if (it == plan.subjects.end()) {
          std::string names;
          for (const auto& s : plan.subjects)
            names += (names.empty() ? "" : ", ") + s.name;
          throw BadInput(at + ".subject = " + r["subject"].dump() +
                         ": not a subject of this sweep (expected one of " + names + ")");
        }
        run.subject = static_cast<std::size_t>(it - plan.subjects.begin());
      } else if (plan.subjects.size() == 1) {
        run.subject = 0;
      } else {
        throw BadInput(at + ".subject is missing: the sweep has several subjects");
      }
      if (r.contains("set")) {
        if (!r["set"].is_object())
          throw BadInput(at + ".set = " + r["set"].dump() + ": expected an object {KEY: VALUE}");
        for (const auto& [key, value] : r["set"].items())
          run.settings.emplace_back(key, value);
      }
      check_settings(run.settings, at + ".set");
      plan.runs.push_back(std::move(run));
    }
  } else {
    std::vector<std::pair<std::string, std::vector<nlohmann::json>>> axes;
    if (sweep.contains("product")) {
      const auto& product = sweep["product"];
      if (!product.is_object())
        throw BadInput(where + ": product = " + product.dump().substr(0, 80) +
                       ": expected an object {KEY: [VALUE, ...]}");
      for (const auto& [key, values] : product.items()) {
        if (!values.is_array() || values.empty())
          throw BadInput(where + ": product." + key + " = " + values.dump().substr(0, 80) +
                         ": expected a non-empty array of values");
        axes.emplace_back(key, std::vector<nlohmann::json>(values.begin(), values.end()));
      }
      std::vector<std::pair<std::string, nlohmann::json>> keys_only;
      for (const auto& [key, values] : axes)
        keys_only.emplace_back(key, nullptr);
      check_settings(keys_only, where + ": product");
    }
    std::size_t n_combinations = 1;
    for (const auto& [key, values] : axes) {
      n_combinations *= values.size();
      if (n_combinations > 10000000)
        throw BadInput(where + ": product: more than 10,000,000 runs per subject");
    }
    for (std::size_t s = 0; s < plan.subjects.size(); ++s)
      for (std::size_t c = 0; c < n_combinations; ++c) {
        SweepRun run;
        run.subject = s;
        std::size_t rest = c; // the last key varies fastest
        std::vector<std::size_t> index(axes.size());
        for (std::size_t a = axes.size(); a-- > 0;) {
          index[a] = rest % axes[a].second.size();
          rest /= axes[a].second.size();
        }
        for (std::size_t a = 0; a < axes.size(); ++a)
          run.settings.emplace_back(axes[a].first, axes[a].second[index[a]]);
        plan.runs.push_back(std::move(run));
      }
  }

  // 3. Names, shared stages, keys; each run's configuration read as a run config is.
  const bool check_each_run = plan.runs.size() <= max_checked_each;
  std::map<std::string, std::size_t> shared_of; // subject + shared settings -> index
  std::map<std::string, std::size_t> run_of;    // name -> index
  std::set<std::string> keys;
  std::set<std::string> checked; // key=value already checked (when not every run is)
  for (std::size_t i = 0; i < plan.runs.size(); ++i) {
    SweepRun& run = plan.runs[i];
    const std::string& subject = plan.subjects[run.subject].name;
    std::string all = subject, shared = subject;
    for (const auto& [key, value] : run.settings) {
      keys.insert(key);
      all += "\n" + key + "=" + value.dump();
      if (is_shared_key(key))
        shared += "\n" + key + "=" + value.dump();
    }
    run.name = subject + "-" + hex(hash_text(all)).substr(0, 12);
    if (const auto [it, inserted] = run_of.emplace(run.name, i); !inserted)
      throw BadInput(where + ": runs " + std::to_string(it->second + 1) + " and " +
                     std::to_string(i + 1) + " are the same (" + describe(plan, run) +
                     "): give each run once");
    const auto [it, inserted] = shared_of.emplace(shared, plan.shared.size());
    if (inserted)
      plan.shared.push_back({subject + "-" + hex(hash_text(shared)).substr(0, 12), i, 0});
    run.shared = it->second;
    ++plan.shared[run.shared].n_runs;

    const std::string source =
        where + ", run " + std::to_string(i + 1) + " (" + describe(plan, run) + ")";
    if (check_each_run || i == 0) {
      ConfigReader reader(with_settings(base, run.settings), source, base_dir);
      (void)read_run_config(reader, std::nullopt);
    } else {
      for (const auto& setting : run.settings) {
        const std::string text = setting.first + "=" + setting.second.dump();
        if (!checked.insert(text).second)
          continue;
        ConfigReader reader(with_settings(base, {setting}), where + " (" + text + ")", base_dir);
        (void)read_run_config(reader, std::nullopt);
      }
    }
  }
  if (plan.runs.empty()) // subjects without product or runs: each subject once
    throw BadInput(where + ": no runs");
  plan.keys.assign(keys.begin(), keys.end());
  return plan;
}

} // namespace myotwin::app
