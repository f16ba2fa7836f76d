#pragma once
/// \file tissue_table.hpp
/// The tissue table of a subject: which tissue each label is, and its conductivity. A JSON file:
/// \code
/// { "tissues": [
///     { "label": 1,  "name": "skin", "class": "skin" },
///     { "label": 2,  "name": "subcutaneous_fat", "class": "fat", "sigma_S_per_m": 0.04 },
///     { "label": 20, "name": "FCR", "class": "muscle",
///       "sigma_l_S_per_m": 0.5, "sigma_t_S_per_m": 0.1, "n_motor_units": 120 },
///     { "label": 60, "name": "FCR_tendon_distal", "class": "tendon", "muscle": "FCR" } ] }
/// \endcode
/// Label 0 is background (outside the body) and is never listed. Conductivities default per
/// class (default_conductivity()); muscle is anisotropic (along / across the fibres), the
/// other classes isotropic. A tendon may name the muscle it belongs to. A muscle may give its
/// motor-unit count (`n_motor_units`); otherwise the run config's `anatomy.motor_units.n_units`.
/// Any tissue may name the source of its conductivities in a `citation` string (documentation
/// only: read and checked for type, not kept).

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "myotwin/anatomy/label_volume.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::anatomy {

enum class TissueClass { muscle, fat, skin, bone, tendon, other };

/// "muscle", "fat", ...
std::string to_string(TissueClass c);
/// Parses a class name. \throws BadInput naming the value and the allowed names.
TissueClass tissue_class_from_string(const std::string& name);

/// Literature conductivities of a class [S/m]: {along fibres, across fibres}; equal for
/// isotropic classes. Muscle 0.5 / 0.1, fat 0.04, skin 1.0, bone 0.02 (Farina, Mesin, Martina
/// 2004); tendon 0.3 (Gabriel, Lau, Gabriel 1996, low-frequency tendon). `other` has no default:
/// returns std::nullopt and the table must give a value.
std::optional<std::pair<double, double>> default_conductivity(TissueClass c);

/// One labelled tissue.
struct Tissue {
  std::int32_t label = 0;
  std::string name;
  TissueClass tissue_class = TissueClass::other;
  double sigma_l_S_per_m = 0.0;   ///< along fibres (muscle) or isotropic value
  double sigma_t_S_per_m = 0.0;   ///< across fibres (muscle) or isotropic value
  std::string muscle;             ///< for a tendon: the name of its muscle, or empty
  std::int64_t n_motor_units = 0; ///< for a muscle: its motor-unit count (0: the config's default)
};

/// All tissues of a subject, in the order of the file.
struct TissueTable {
  std::vector<Tissue> tissues;
  /// The tissue with `label`, or nullptr.
  [[nodiscard]] const Tissue* find(std::int32_t label) const;
  /// The tissue called `name`, or nullptr.
  [[nodiscard]] const Tissue* find(const std::string& name) const;
};

/// Reads a tissue table from a reader positioned on its object (strict: unknown keys, duplicate
/// labels or names, labels <= 0, unknown classes, conductivities <= 0, a tendon naming a muscle
/// that is not in the table, anisotropic keys on an isotropic class are BadInput).
TissueTable read_tissue_table(ConfigReader& reader);
/// Reads a tissue table file. \throws IoError, BadInput (see above; messages name the file).
TissueTable read_tissue_table(const std::filesystem::path& path);
/// The table as JSON in the file format (all conductivities written out).
nlohmann::json to_json(const TissueTable& table);
/// Writes the table atomically. \throws IoError.
void write_tissue_table(const std::filesystem::path& path, const TissueTable& table);

/// Labels with their voxel counts as messages list them: "7 (12 voxels), 9 (1 voxel)", at most
/// 20, then "... and N more".
std::string format_label_counts(const std::vector<std::pair<std::int32_t, std::int64_t>>& labels);

/// Checks that every non-zero label of `volume` is in `table`.
/// \throws BadInput listing the missing labels with their voxel counts, naming `volume_name`.
void check_labels_in_table(const LabelVolume& volume, const TissueTable& table,
                           const std::string& volume_name);

} // namespace myotwin::anatomy
