#include "myotwin/anatomy/tissue_table.hpp"

#include <limits>
#include <map>
#include <string_view>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"

namespace myotwin::anatomy {

namespace {

const std::vector<std::pair<TissueClass, std::string>>& class_names() {
  static const std::vector<std::pair<TissueClass, std::string>> names = {
      {TissueClass::muscle, "muscle"}, {TissueClass::fat, "fat"},
      {TissueClass::skin, "skin"},     {TissueClass::bone, "bone"},
      {TissueClass::tendon, "tendon"}, {TissueClass::other, "other"}};
  return names;
}

std::vector<std::string> class_name_list() {
  std::vector<std::string> out;
  for (const auto& [c, name] : class_names())
    out.push_back(name);
  return out;
}

std::string in_quotes(const std::string& s) {
  return "\"" + s + "\"";
}

} // namespace

std::string to_string(TissueClass c) {
  for (const auto& [value, name] : class_names()) {
    if (value == c)
      return name;
  }
  return "other";
}

TissueClass tissue_class_from_string(const std::string& name) {
  for (const auto& [value, text] : class_names()) {
    if (text == name)
      return value;
  }
  std::string list;
  for (const auto& n : class_name_list())
    list += (list.empty() ? "" : ", ") + in_quotes(n);
  throw BadInput("tissue class " + in_quotes(name) + ": expected one of " + list);
}

std::optional<std::pair<double, double>> default_conductivity(TissueClass c) {
  switch (c) {
  case TissueClass::muscle:
    return std::pair{0.5, 0.1}; // Farina, Mesin, Martina 2004
  case TissueClass::fat:
    return std::pair{0.04, 0.04}; // Farina, Mesin, Martina 2004
  case TissueClass::skin:
    return std::pair{1.0, 1.0}; // Farina, Mesin, Martina 2004
  case TissueClass::bone:
    return std::pair{0.02, 0.02}; // Farina, Mesin, Martina 2004
  case TissueClass::tendon:
    return std::pair{0.3, 0.3}; // Gabriel, Lau, Gabriel 1996 (below 100 Hz)
  case TissueClass::other:
    return std::nullopt;
  }
  return std::nullopt;
}

const Tissue* TissueTable::find(std::int32_t label) const {
  for (const auto& t : tissues) {
    if (t.label == label)
      return &t;
  }
  return nullptr;
}

const Tissue* TissueTable::find(const std::string& name) const {
  for (const auto& t : tissues) {
    if (t.name == name)
      return &t;
  }
  return nullptr;
}

TissueTable read_tissue_table(ConfigReader& reader) {
  // Keys read in several branches below, documented once.
  constexpr std::string_view sigma_doc = "conductivity of an isotropic (non-muscle) tissue; "
                                         "defaults by class, required for class other";
  constexpr std::string_view muscle_doc =
      "for a tendon: the name of the muscle it belongs to; empty: none";
  constexpr std::string_view citation_doc =
      "source of the tissue's conductivities (documentation only, not kept)";
  TissueTable table;
  std::vector<ConfigReader> entries = reader.required_array("tissues");
  if (entries.empty())
    reader.fail("tissues", "expected at least one tissue");

  std::map<std::int32_t, std::size_t> by_label;
  std::map<std::string, std::size_t> by_name;
  const auto entry_name = [&](std::size_t i) {
    return reader.key_path("tissues") + "[" + std::to_string(i) + "] (" +
           in_quotes(table.tissues[i].name) + ")";
  };

  for (std::size_t i = 0; i < entries.size(); ++i) {
    ConfigReader& e = entries[i];
    Tissue t;
    t.label = static_cast<std::int32_t>(e.required<std::int64_t>(
        "label",
        Check<std::int64_t>(
            [](const std::int64_t& v) -> std::optional<std::string> {
              if (v <= 0)
                return std::string("must be > 0 (label 0 is the background and is never listed)");
              if (v > std::numeric_limits<std::int32_t>::max())
                return std::string("must be <= 2147483647");
              return std::nullopt;
            },
            "[1, 2147483647]"),
        "label value of the tissue in the label volume (0, the background, is never listed)"));
    t.name = e.required<std::string>(
        "name",
        Check<std::string>(
            [](const std::string& s) {
              return s.empty() ? std::optional<std::string>("must not be empty") : std::nullopt;
            },
            "not empty"),
        "unique name of the tissue; the run configuration names muscles by it");
    t.tissue_class = tissue_class_from_string(e.required<std::string>(
        "class", one_of(class_name_list()),
        "tissue class: sets the default conductivity and how the tissue is modelled"));

    if (const auto it = by_label.find(t.label); it != by_label.end()) {
      e.fail("label", "label " + std::to_string(t.label) + " is also " + entry_name(it->second) +
                          "; each label may appear once");
    }
    if (const auto it = by_name.find(t.name); it != by_name.end()) {
      e.fail("name", "name " + in_quotes(t.name) + " is also " + entry_name(it->second) +
                         " (label " + std::to_string(table.tissues[it->second].label) +
                         "); each name may appear once");
    }

    const std::string class_name = to_string(t.tissue_class);
    const auto defaults = default_conductivity(t.tissue_class);
    if (t.tissue_class == TissueClass::muscle) {
      if (e.has("sigma_S_per_m")) {
        e.fail("sigma_S_per_m", "muscle is anisotropic: give sigma_l_S_per_m (along the fibres) "
                                "and sigma_t_S_per_m (across) instead");
      }
      t.sigma_l_S_per_m =
          e.optional<double>("sigma_l_S_per_m", defaults->first, positive(),
                             "muscle conductivity along the fibres (default: Farina 2004)");
      t.sigma_t_S_per_m =
          e.optional<double>("sigma_t_S_per_m", defaults->second, positive(),
                             "muscle conductivity across the fibres (default: Farina 2004)");
      if (e.has("n_motor_units")) {
        t.n_motor_units = e.required<std::int64_t>(
            "n_motor_units", int_in_range(1, 100000),
            "motor units of this muscle; absent: anatomy.motor_units.n_units");
      }
    } else {
      if (e.has("n_motor_units")) {
        e.fail("n_motor_units", "motor-unit counts are for class muscle, not " + class_name);
      }
      for (const char* key : {"sigma_l_S_per_m", "sigma_t_S_per_m"}) {
        if (e.has(key)) {
          e.fail(key, "class " + class_name +
                          " is isotropic: give sigma_S_per_m (anisotropic conductivities are for "
                          "muscle only)");
        }
      }
      if (defaults) {
        t.sigma_l_S_per_m =
            e.optional<double>("sigma_S_per_m", defaults->first, positive(), sigma_doc);
      } else if (e.has("sigma_S_per_m")) {
        t.sigma_l_S_per_m = e.required<double>("sigma_S_per_m", positive(), sigma_doc);
      } else {
        // Report a misspelt key before saying that the conductivity is missing.
        (void)e.optional<double>("sigma_S_per_m", 0.0, {}, sigma_doc);
        if (t.tissue_class == TissueClass::tendon)
          (void)e.optional<std::string>("muscle", "", {}, muscle_doc);
        (void)e.optional<std::string>("citation", "", {}, citation_doc);
        e.finish();
        e.fail("sigma_S_per_m", "a conductivity [S/m] is required for " + in_quotes(t.name) +
                                    ": class " + class_name + " has no default");
      }
      t.sigma_t_S_per_m = t.sigma_l_S_per_m;
    }
    if (t.tissue_class == TissueClass::tendon)
      t.muscle = e.optional<std::string>("muscle", "", {}, muscle_doc);
    (void)e.optional<std::string>("citation", "", {}, citation_doc);

    by_label[t.label] = i;
    by_name[t.name] = i;
    table.tissues.push_back(std::move(t));
  }
  reader.finish();

  // A tendon names a muscle of the same table.
  for (std::size_t i = 0; i < table.tissues.size(); ++i) {
    const Tissue& t = table.tissues[i];
    if (t.tissue_class != TissueClass::tendon || t.muscle.empty())
      continue;
    const Tissue* m = table.find(t.muscle);
    if (m == nullptr)
      entries[i].fail("muscle", "no tissue called " + in_quotes(t.muscle) + " in the table");
    if (m->tissue_class != TissueClass::muscle) {
      entries[i].fail("muscle", in_quotes(t.muscle) + " is of class " + to_string(m->tissue_class) +
                                    "; expected a muscle");
    }
  }
  return table;
}

TissueTable read_tissue_table(const std::filesystem::path& path) {
  ConfigReader reader = ConfigReader::from_file(path);
  return read_tissue_table(reader);
}

nlohmann::json to_json(const TissueTable& table) {
  nlohmann::json tissues = nlohmann::json::array();
  for (const auto& t : table.tissues) {
    nlohmann::json j;
    j["label"] = t.label;
    j["name"] = t.name;
    j["class"] = to_string(t.tissue_class);
    if (t.tissue_class == TissueClass::muscle) {
      j["sigma_l_S_per_m"] = t.sigma_l_S_per_m;
      j["sigma_t_S_per_m"] = t.sigma_t_S_per_m;
      if (t.n_motor_units > 0)
        j["n_motor_units"] = t.n_motor_units;
    } else {
      j["sigma_S_per_m"] = t.sigma_l_S_per_m;
    }
    if (t.tissue_class == TissueClass::tendon && !t.muscle.empty())
      j["muscle"] = t.muscle;
    tissues.push_back(std::move(j));
  }
  return nlohmann::json{{"tissues", std::move(tissues)}};
}

void write_tissue_table(const std::filesystem::path& path, const TissueTable& table) {
  write_text_file(path, to_json(table).dump(2) + "\n");
}

std::string format_label_counts(const std::vector<std::pair<std::int32_t, std::int64_t>>& labels) {
  constexpr std::size_t max_listed = 20;
  std::string list;
  for (std::size_t i = 0; i < labels.size() && i < max_listed; ++i) {
    list += (i == 0 ? "" : ", ") + std::to_string(labels[i].first) + " (" +
            std::to_string(labels[i].second) + (labels[i].second == 1 ? " voxel)" : " voxels)");
  }
  if (labels.size() > max_listed)
    list += ", ... and " + std::to_string(labels.size() - max_listed) + " more";
  return list;
}

void check_labels_in_table(const LabelVolume& volume, const TissueTable& table,
                           const std::string& volume_name) {
  std::vector<std::pair<std::int32_t, std::int64_t>> missing;
  for (const auto& [label, count] : label_histogram(volume)) {
    if (label != 0 && table.find(label) == nullptr)
      missing.emplace_back(label, count);
  }
  if (missing.empty())
    return;
  throw BadInput(volume_name + ": " + std::to_string(missing.size()) +
                 (missing.size() == 1 ? " label is" : " labels are") +
                 " not in the tissue table: " + format_label_counts(missing) +
                 "; add them to the tissue table (label 0 is the background)");
}

} // namespace myotwin::anatomy
