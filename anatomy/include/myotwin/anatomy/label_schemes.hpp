#pragma once
/// \file label_schemes.hpp
/// Label schemes: what the integer ids of a segmentation mean. A scheme maps each id to a
/// name, a tissue class (TissueClass, what the later stages use) and a finer *category*
/// (muscle, bone, fat, skin, tendon, soft_tissue, organ, blood, lung, nerve, cartilage, fluid,
/// brain) that carries the conductivity at EMG frequencies (below 1 kHz) and its citation.
///
/// Built-in schemes:
/// - `total`: TotalSegmentator v2, CT task "total" (117 classes; `map_to_binary.py`,
///   `class_map["total"]`).
/// - `total_mr`: TotalSegmentator v2, MR task "total_mr" (50 classes).
/// - `musclemap`: MuscleMap's whole-body scheme (ids 1101..8162: four digits, region, muscle,
///   side 1 = left, 2 = right). The leg ids follow the scheme of MuscleMap's test segmentation
///   (commit f5d4562: 8141/8151 medial/lateral gastrocnemius, 8161 tibia); later MuscleMap
///   documentation renumbers the leg (8141 gastrocnemius, 8151 tibia, 8161 fibula).
///
/// A user table (TSV or JSON) can replace the scheme: see read_user_label_table().

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "myotwin/anatomy/tissue_table.hpp"

namespace myotwin::anatomy {

/// A kind of tissue with its conductivity at EMG frequencies and where the value comes from.
struct TissueCategory {
  std::string name; ///< "muscle", "organ_liver", ...
  TissueClass tissue_class = TissueClass::other;
  double sigma_l_S_per_m = 0.0; ///< along fibres (muscle) or isotropic [S/m]
  double sigma_t_S_per_m = 0.0; ///< across fibres (muscle) or isotropic [S/m]
  std::string citation;         ///< source of the value
};

/// The tissue category called `name` (see category_names()). \throws BadInput naming the value
/// and the known names.
const TissueCategory& tissue_category(const std::string& name);

/// A tissue of category `c` (its class and conductivities) with `label` and `name`.
Tissue make_tissue(std::int32_t label, const std::string& name, const TissueCategory& c);

/// Every category name, in a fixed order.
std::vector<std::string> category_names();

/// One id of a scheme.
struct SchemeEntry {
  std::int32_t label = 0;
  std::string name;     ///< e.g. "vastus_lateralis_left"
  std::string category; ///< a tissue_category() name
};

/// A label scheme: ids to names and categories.
struct LabelScheme {
  std::string name; ///< "total", "total_mr", "musclemap" or the user table's file name
  std::vector<SchemeEntry> entries;
  /// The entry with `label`, or nullptr.
  [[nodiscard]] const SchemeEntry* find(std::int32_t label) const;
};

/// The names of the built-in schemes: "total", "total_mr", "musclemap".
std::vector<std::string> builtin_scheme_names();

/// A built-in scheme. \throws BadInput naming the value and the known schemes.
LabelScheme builtin_scheme(const std::string& name);

/// A user label table.
/// - TSV (`.tsv`, `.txt`): a header line naming the columns, then one line per id; columns
///   `label` (or `id`, `value`), `name` (or `anatomy`), optional `class` (a TissueClass name or a
///   category name), `sigma_S_per_m`, `sigma_l_S_per_m`, `sigma_t_S_per_m`, `citation`. Without a
///   `class` column the class is taken from the name: names of bones (femur, tibia, fibula,
///   ilium, sacrum, vertebra, rib, ...) are bone, names with "fat", "skin" or "tendon" those
///   classes, all others muscle (MuscleMap's labels.tsv reads as it is).
/// - JSON (`.json`): a tissue table (tissue_table.hpp format).
/// The result holds a TissueTable with conductivities (user values, else the category's).
/// \throws IoError for a missing file; BadInput naming the file, line and column for a bad
/// value, a duplicate id or name, or an unknown class.
struct LabelTable {
  TissueTable table;
  std::vector<std::string> categories; ///< category (or class) of each tissue, same order
  std::vector<std::string> citations;  ///< source of each tissue's conductivities, same order
};
LabelTable read_user_label_table(const std::filesystem::path& path);

/// What resolve_tissue_table() did with the ids of a segmentation.
struct SchemeResolution {
  TissueTable table;                   ///< one tissue per non-zero id present, in id order
  std::vector<std::string> categories; ///< category of each tissue of `table` (same order)
  std::vector<std::string> citations;  ///< source of each tissue's conductivities (same order)
  /// Ids not in the scheme, with their voxel counts, and how they were taken (--unknown-as).
  std::vector<std::pair<std::int32_t, std::int64_t>> unknown;
};

/// The tissue table of the ids present in `histogram` (id -> voxel count, id 0 ignored) under
/// `scheme`. Ids not in the scheme are an error unless `unknown_as` names a category, in which
/// case they become "label_<id>" of that category. `source` names the segmentation in messages.
/// \throws BadInput listing the unknown ids with their voxel counts (and, when another built-in
/// scheme knows every id, naming it).
SchemeResolution resolve_tissue_table(const std::map<std::int32_t, std::int64_t>& histogram,
                                      const LabelScheme& scheme,
                                      const std::optional<std::string>& unknown_as,
                                      const std::string& source);

/// The same for a user table: ids present but not in `table` are an error unless `unknown_as`
/// names a category. \throws BadInput as above.
SchemeResolution resolve_tissue_table(const std::map<std::int32_t, std::int64_t>& histogram,
                                      const LabelTable& table,
                                      const std::optional<std::string>& unknown_as,
                                      const std::string& source);

/// A name in canonical form for matching user input: lower case, runs of other characters
/// than letters and digits become one '_', and a leading "left_" / "right_" moves to the end
/// ("Left Vastus Lateralis" -> "vastus_lateralis_left").
std::string canonical_tissue_name(const std::string& name);

} // namespace myotwin::anatomy
