#include "myotwin/anatomy/label_schemes.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <set>
#include <sstream>

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/text.hpp"

namespace myotwin::anatomy {

namespace fs = std::filesystem;

namespace {

// Sources of the conductivities. The project's own values for muscle, fat, skin and bone
// (tissue_table.hpp, default_conductivity()) are kept.
constexpr const char* farina_2004 =
    "Farina, Mesin, Martina 2004, Med Biol Eng Comput 42:467-476 (myotwin default)";
constexpr const char* gabriel_1996 =
    "Gabriel 1996, report AL/OE-TR-1996-0037, Table 1: conductivity below 100 Hz";
constexpr const char* geddes_baker_1967 =
    "Geddes, Baker 1967, Med Biol Eng 5:271-293 (blood 0.67 S/m); Gabriel 1996 Table 1 (0.7)";
constexpr const char* baumann_1997 =
    "Baumann et al. 1997, IEEE Trans Biomed Eng 44:220-223 (CSF 1.79 S/m at body temperature)";

const std::vector<TissueCategory>& categories() {
  static const std::vector<TissueCategory> list = [] {
    const auto muscle = default_conductivity(TissueClass::muscle).value();
    const auto fat = default_conductivity(TissueClass::fat).value();
    const auto skin = default_conductivity(TissueClass::skin).value();
    const auto bone = default_conductivity(TissueClass::bone).value();
    const auto tendon = default_conductivity(TissueClass::tendon).value();
    const auto iso = [](const std::string& name, double sigma, const std::string& citation) {
      return TissueCategory{name, TissueClass::other, sigma, sigma, citation};
    };
    // Unlabelled tissue inside the body (unsegmented muscle, fascia, connective tissue): the
    // isotropic equivalent of muscle, sqrt(sigma_l sigma_t).
    const double soft = std::sqrt(muscle.first * muscle.second);
    return std::vector<TissueCategory>{
        {"muscle", TissueClass::muscle, muscle.first, muscle.second, farina_2004},
        {"bone", TissueClass::bone, bone.first, bone.second, farina_2004},
        {"fat", TissueClass::fat, fat.first, fat.second, farina_2004},
        {"skin", TissueClass::skin, skin.first, skin.second, farina_2004},
        {"tendon", TissueClass::tendon, tendon.first, tendon.second, gabriel_1996},
        iso("soft_tissue", soft,
            "myotwin: isotropic muscle equivalent sqrt(0.5 x 0.1) S/m after Farina, Mesin, "
            "Martina 2004, for unlabelled tissue inside the body"),
        iso("blood", 0.7, geddes_baker_1967),
        iso("lung", 0.08, std::string(gabriel_1996) + " (inflated lung)"),
        iso("airway", 0.08, std::string(gabriel_1996) + " (as inflated lung: lumen of air)"),
        iso("liver", 0.07, gabriel_1996),
        iso("spleen", 0.1, gabriel_1996),
        iso("kidney", 0.1, gabriel_1996),
        iso("gallbladder", 0.2, gabriel_1996),
        iso("gi_tract", 0.5, std::string(gabriel_1996) + " (stomach, small intestine)"),
        iso("gland", 0.35, std::string(gabriel_1996) + " (pancreas)"),
        iso("thyroid", 0.5, gabriel_1996),
        iso("bladder", 0.2, gabriel_1996),
        iso("heart", 0.1, gabriel_1996),
        iso("nerve", 0.03, gabriel_1996),
        iso("brain", 0.1, std::string(gabriel_1996) + " (grey matter)"),
        iso("cartilage", 0.18, gabriel_1996),
        iso("fluid", 1.8, baumann_1997)};
  }();
  return list;
}

const std::vector<SchemeEntry>& total_entries() {
  // TotalSegmentator v2, task "total" (map_to_binary.py, class_map["total"]).
  static const std::vector<SchemeEntry> entries = {{1, "spleen", "spleen"},
                                                   {2, "kidney_right", "kidney"},
                                                   {3, "kidney_left", "kidney"},
                                                   {4, "gallbladder", "gallbladder"},
                                                   {5, "liver", "liver"},
                                                   {6, "stomach", "gi_tract"},
                                                   {7, "pancreas", "gland"},
                                                   {8, "adrenal_gland_right", "gland"},
                                                   {9, "adrenal_gland_left", "gland"},
                                                   {10, "lung_upper_lobe_left", "lung"},
                                                   {11, "lung_lower_lobe_left", "lung"},
                                                   {12, "lung_upper_lobe_right", "lung"},
                                                   {13, "lung_middle_lobe_right", "lung"},
                                                   {14, "lung_lower_lobe_right", "lung"},
                                                   {15, "esophagus", "gi_tract"},
                                                   {16, "trachea", "airway"},
                                                   {17, "thyroid_gland", "thyroid"},
                                                   {18, "small_bowel", "gi_tract"},
                                                   {19, "duodenum", "gi_tract"},
                                                   {20, "colon", "gi_tract"},
                                                   {21, "urinary_bladder", "bladder"},
                                                   {22, "prostate", "gland"},
                                                   {23, "kidney_cyst_left", "fluid"},
                                                   {24, "kidney_cyst_right", "fluid"},
                                                   {25, "sacrum", "bone"},
                                                   {26, "vertebrae_S1", "bone"},
                                                   {27, "vertebrae_L5", "bone"},
                                                   {28, "vertebrae_L4", "bone"},
                                                   {29, "vertebrae_L3", "bone"},
                                                   {30, "vertebrae_L2", "bone"},
                                                   {31, "vertebrae_L1", "bone"},
                                                   {32, "vertebrae_T12", "bone"},
                                                   {33, "vertebrae_T11", "bone"},
                                                   {34, "vertebrae_T10", "bone"},
                                                   {35, "vertebrae_T9", "bone"},
                                                   {36, "vertebrae_T8", "bone"},
                                                   {37, "vertebrae_T7", "bone"},
                                                   {38, "vertebrae_T6", "bone"},
                                                   {39, "vertebrae_T5", "bone"},
                                                   {40, "vertebrae_T4", "bone"},
                                                   {41, "vertebrae_T3", "bone"},
                                                   {42, "vertebrae_T2", "bone"},
                                                   {43, "vertebrae_T1", "bone"},
                                                   {44, "vertebrae_C7", "bone"},
                                                   {45, "vertebrae_C6", "bone"},
                                                   {46, "vertebrae_C5", "bone"},
                                                   {47, "vertebrae_C4", "bone"},
                                                   {48, "vertebrae_C3", "bone"},
                                                   {49, "vertebrae_C2", "bone"},
                                                   {50, "vertebrae_C1", "bone"},
                                                   {51, "heart", "heart"},
                                                   {52, "aorta", "blood"},
                                                   {53, "pulmonary_vein", "blood"},
                                                   {54, "brachiocephalic_trunk", "blood"},
                                                   {55, "subclavian_artery_right", "blood"},
                                                   {56, "subclavian_artery_left", "blood"},
                                                   {57, "common_carotid_artery_right", "blood"},
                                                   {58, "common_carotid_artery_left", "blood"},
                                                   {59, "brachiocephalic_vein_left", "blood"},
                                                   {60, "brachiocephalic_vein_right", "blood"},
                                                   {61, "atrial_appendage_left", "blood"},
                                                   {62, "superior_vena_cava", "blood"},
                                                   {63, "inferior_vena_cava", "blood"},
                                                   {64, "portal_vein_and_splenic_vein", "blood"},
                                                   {65, "iliac_artery_left", "blood"},
                                                   {66, "iliac_artery_right", "blood"},
                                                   {67, "iliac_vena_left", "blood"},
                                                   {68, "iliac_vena_right", "blood"},
                                                   {69, "humerus_left", "bone"},
                                                   {70, "humerus_right", "bone"},
                                                   {71, "scapula_left", "bone"},
                                                   {72, "scapula_right", "bone"},
                                                   {73, "clavicula_left", "bone"},
                                                   {74, "clavicula_right", "bone"},
                                                   {75, "femur_left", "bone"},
                                                   {76, "femur_right", "bone"},
                                                   {77, "hip_left", "bone"},
                                                   {78, "hip_right", "bone"},
                                                   {79, "spinal_cord", "nerve"},
                                                   {80, "gluteus_maximus_left", "muscle"},
                                                   {81, "gluteus_maximus_right", "muscle"},
                                                   {82, "gluteus_medius_left", "muscle"},
                                                   {83, "gluteus_medius_right", "muscle"},
                                                   {84, "gluteus_minimus_left", "muscle"},
                                                   {85, "gluteus_minimus_right", "muscle"},
                                                   {86, "autochthon_left", "muscle"},
                                                   {87, "autochthon_right", "muscle"},
                                                   {88, "iliopsoas_left", "muscle"},
                                                   {89, "iliopsoas_right", "muscle"},
                                                   {90, "brain", "brain"},
                                                   {91, "skull", "bone"},
                                                   {92, "rib_left_1", "bone"},
                                                   {93, "rib_left_2", "bone"},
                                                   {94, "rib_left_3", "bone"},
                                                   {95, "rib_left_4", "bone"},
                                                   {96, "rib_left_5", "bone"},
                                                   {97, "rib_left_6", "bone"},
                                                   {98, "rib_left_7", "bone"},
                                                   {99, "rib_left_8", "bone"},
                                                   {100, "rib_left_9", "bone"},
                                                   {101, "rib_left_10", "bone"},
                                                   {102, "rib_left_11", "bone"},
                                                   {103, "rib_left_12", "bone"},
                                                   {104, "rib_right_1", "bone"},
                                                   {105, "rib_right_2", "bone"},
                                                   {106, "rib_right_3", "bone"},
                                                   {107, "rib_right_4", "bone"},
                                                   {108, "rib_right_5", "bone"},
                                                   {109, "rib_right_6", "bone"},
                                                   {110, "rib_right_7", "bone"},
                                                   {111, "rib_right_8", "bone"},
                                                   {112, "rib_right_9", "bone"},
                                                   {113, "rib_right_10", "bone"},
                                                   {114, "rib_right_11", "bone"},
                                                   {115, "rib_right_12", "bone"},
                                                   {116, "sternum", "bone"},
                                                   {117, "costal_cartilages", "cartilage"}};
  return entries;
}

const std::vector<SchemeEntry>& total_mr_entries() {
  // TotalSegmentator v2, task "total_mr" (map_to_binary.py, class_map["total_mr"]).
  static const std::vector<SchemeEntry> entries = {{1, "spleen", "spleen"},
                                                   {2, "kidney_right", "kidney"},
                                                   {3, "kidney_left", "kidney"},
                                                   {4, "gallbladder", "gallbladder"},
                                                   {5, "liver", "liver"},
                                                   {6, "stomach", "gi_tract"},
                                                   {7, "pancreas", "gland"},
                                                   {8, "adrenal_gland_right", "gland"},
                                                   {9, "adrenal_gland_left", "gland"},
                                                   {10, "lung_left", "lung"},
                                                   {11, "lung_right", "lung"},
                                                   {12, "esophagus", "gi_tract"},
                                                   {13, "small_bowel", "gi_tract"},
                                                   {14, "duodenum", "gi_tract"},
                                                   {15, "colon", "gi_tract"},
                                                   {16, "urinary_bladder", "bladder"},
                                                   {17, "prostate", "gland"},
                                                   {18, "sacrum", "bone"},
                                                   {19, "vertebrae", "bone"},
                                                   {20, "intervertebral_discs", "cartilage"},
                                                   {21, "spinal_cord", "nerve"},
                                                   {22, "heart", "heart"},
                                                   {23, "aorta", "blood"},
                                                   {24, "inferior_vena_cava", "blood"},
                                                   {25, "portal_vein_and_splenic_vein", "blood"},
                                                   {26, "iliac_artery_left", "blood"},
                                                   {27, "iliac_artery_right", "blood"},
                                                   {28, "iliac_vena_left", "blood"},
                                                   {29, "iliac_vena_right", "blood"},
                                                   {30, "humerus_left", "bone"},
                                                   {31, "humerus_right", "bone"},
                                                   {32, "scapula_left", "bone"},
                                                   {33, "scapula_right", "bone"},
                                                   {34, "clavicula_left", "bone"},
                                                   {35, "clavicula_right", "bone"},
                                                   {36, "femur_left", "bone"},
                                                   {37, "femur_right", "bone"},
                                                   {38, "hip_left", "bone"},
                                                   {39, "hip_right", "bone"},
                                                   {40, "gluteus_maximus_left", "muscle"},
                                                   {41, "gluteus_maximus_right", "muscle"},
                                                   {42, "gluteus_medius_left", "muscle"},
                                                   {43, "gluteus_medius_right", "muscle"},
                                                   {44, "gluteus_minimus_left", "muscle"},
                                                   {45, "gluteus_minimus_right", "muscle"},
                                                   {46, "autochthon_left", "muscle"},
                                                   {47, "autochthon_right", "muscle"},
                                                   {48, "iliopsoas_left", "muscle"},
                                                   {49, "iliopsoas_right", "muscle"},
                                                   {50, "brain", "brain"}};
  return entries;
}

const std::vector<SchemeEntry>& musclemap_entries() {
  // MuscleMap whole-body scheme: region digit, muscle, side (1 left, 2 right); leg ids as in
  // MuscleMap's test segmentation (commit f5d4562), pelvis 6181..6222 from its later
  // documentation (docs/muscle-anatomy.md).
  static const std::vector<SchemeEntry> entries = {
      {1101, "levator_scapulae_left", "muscle"},
      {1102, "levator_scapulae_right", "muscle"},
      {1111, "semispinalis_cervicis_and_multifidus_left", "muscle"},
      {1112, "semispinalis_cervicis_and_multifidus_right", "muscle"},
      {1121, "semispinalis_capitis_left", "muscle"},
      {1122, "semispinalis_capitis_right", "muscle"},
      {1131, "splenius_capitis_left", "muscle"},
      {1132, "splenius_capitis_right", "muscle"},
      {1141, "sternocleidomastoid_left", "muscle"},
      {1142, "sternocleidomastoid_right", "muscle"},
      {1151, "longus_colli_left", "muscle"},
      {1152, "longus_colli_right", "muscle"},
      {1161, "trapezius_left", "muscle"},
      {1162, "trapezius_right", "muscle"},
      {2101, "supraspinatus_left", "muscle"},
      {2102, "supraspinatus_right", "muscle"},
      {2111, "subscapularis_left", "muscle"},
      {2112, "subscapularis_right", "muscle"},
      {2121, "infraspinatus_left", "muscle"},
      {2122, "infraspinatus_right", "muscle"},
      {2141, "deltoid_left", "muscle"},
      {2142, "deltoid_right", "muscle"},
      {4101, "rhomboid_left", "muscle"},
      {4102, "rhomboid_right", "muscle"},
      {5101, "thoracolumbar_multifidus_left", "muscle"},
      {5102, "thoracolumbar_multifidus_right", "muscle"},
      {5111, "erector_spinae_left", "muscle"},
      {5112, "erector_spinae_right", "muscle"},
      {5121, "psoas_major_left", "muscle"},
      {5122, "psoas_major_right", "muscle"},
      {5131, "quadratus_lumborum_left", "muscle"},
      {5132, "quadratus_lumborum_right", "muscle"},
      {5141, "latissimus_dorsi_left", "muscle"},
      {5142, "latissimus_dorsi_right", "muscle"},
      {6101, "gluteus_minimus_left", "muscle"},
      {6102, "gluteus_minimus_right", "muscle"},
      {6111, "gluteus_medius_left", "muscle"},
      {6112, "gluteus_medius_right", "muscle"},
      {6121, "gluteus_maximus_left", "muscle"},
      {6122, "gluteus_maximus_right", "muscle"},
      {6131, "tensor_fasciae_latae_left", "muscle"},
      {6132, "tensor_fasciae_latae_right", "muscle"},
      {6141, "iliacus_left", "muscle"},
      {6142, "iliacus_right", "muscle"},
      {6151, "ilium_left", "bone"},
      {6152, "ilium_right", "bone"},
      {6160, "sacrum", "bone"},
      {6171, "femur_left", "bone"},
      {6172, "femur_right", "bone"},
      {6181, "piriformis_left", "muscle"},
      {6182, "piriformis_right", "muscle"},
      {6191, "pectineus_left", "muscle"},
      {6192, "pectineus_right", "muscle"},
      {6201, "obturator_internus_left", "muscle"},
      {6202, "obturator_internus_right", "muscle"},
      {6211, "obturator_externus_left", "muscle"},
      {6212, "obturator_externus_right", "muscle"},
      {6221, "gemelli_and_quadratus_femoris_left", "muscle"},
      {6222, "gemelli_and_quadratus_femoris_right", "muscle"},
      {7101, "vastus_lateralis_left", "muscle"},
      {7102, "vastus_lateralis_right", "muscle"},
      {7111, "vastus_intermedius_left", "muscle"},
      {7112, "vastus_intermedius_right", "muscle"},
      {7121, "vastus_medialis_left", "muscle"},
      {7122, "vastus_medialis_right", "muscle"},
      {7131, "rectus_femoris_left", "muscle"},
      {7132, "rectus_femoris_right", "muscle"},
      {7141, "sartorius_left", "muscle"},
      {7142, "sartorius_right", "muscle"},
      {7151, "gracilis_left", "muscle"},
      {7152, "gracilis_right", "muscle"},
      {7161, "semimembranosus_left", "muscle"},
      {7162, "semimembranosus_right", "muscle"},
      {7171, "semitendinosus_left", "muscle"},
      {7172, "semitendinosus_right", "muscle"},
      {7181, "biceps_femoris_long_head_left", "muscle"},
      {7182, "biceps_femoris_long_head_right", "muscle"},
      {7191, "biceps_femoris_short_head_left", "muscle"},
      {7192, "biceps_femoris_short_head_right", "muscle"},
      {7201, "adductor_magnus_left", "muscle"},
      {7202, "adductor_magnus_right", "muscle"},
      {7211, "adductor_longus_left", "muscle"},
      {7212, "adductor_longus_right", "muscle"},
      {7221, "adductor_brevis_left", "muscle"},
      {7222, "adductor_brevis_right", "muscle"},
      {8101, "tibialis_anterior_left", "muscle"},
      {8102, "tibialis_anterior_right", "muscle"},
      {8111, "tibialis_posterior_left", "muscle"},
      {8112, "tibialis_posterior_right", "muscle"},
      {8121, "peroneus_longus_left", "muscle"},
      {8122, "peroneus_longus_right", "muscle"},
      {8131, "soleus_left", "muscle"},
      {8132, "soleus_right", "muscle"},
      {8141, "medial_gastrocnemius_left", "muscle"},
      {8142, "medial_gastrocnemius_right", "muscle"},
      {8151, "lateral_gastrocnemius_left", "muscle"},
      {8152, "lateral_gastrocnemius_right", "muscle"},
      {8161, "tibia_left", "bone"},
      {8162, "tibia_right", "bone"}};
  return entries;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, '\t'))
    out.push_back(trim(cell));
  if (!line.empty() && line.back() == '\t')
    out.emplace_back();
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items)
    out += (out.empty() ? "" : ", ") + s;
  return out;
}

/// The class of a tissue named `name` when a table gives none: a bone when a word of the name
/// is a bone's ("Left Femur"; not "Tibialis Anterior"), fat, skin or tendon likewise, else muscle.
std::string category_from_name(const std::string& name) {
  static const std::set<std::string> bones = {
      "femur",   "tibia",   "fibula", "ilium",  "sacrum",  "vertebra",  "vertebrae",
      "rib",     "humerus", "radius", "ulna",   "scapula", "clavicula", "clavicle",
      "sternum", "patella", "skull",  "pelvis", "bone",    "coccyx",    "hip"};
  std::istringstream words(canonical_tissue_name(name));
  std::string word;
  std::string found = "muscle";
  while (std::getline(words, word, '_')) {
    if (bones.count(word) > 0)
      return "bone";
    if (word == "fat" || word == "skin" || word == "tendon")
      found = word;
  }
  return found;
}

/// Throws the error for ids that no table knows.
[[noreturn]] void fail_unknown(const std::map<std::int32_t, std::int64_t>& histogram,
                               const std::vector<std::pair<std::int32_t, std::int64_t>>& unknown,
                               const std::string& scheme_name, const std::string& source) {
  std::size_t n_present = 0;
  for (const auto& [label, count] : histogram)
    n_present += label != 0 && count > 0;
  std::string message = source + ": " + std::to_string(unknown.size()) + " of " +
                        std::to_string(n_present) + " label ids are not in " + scheme_name + ": " +
                        format_label_counts(unknown);
  if (unknown.size() * 2 > n_present)
    message += "; the scheme does not match this segmentation";
  // Name a built-in scheme that knows every id.
  for (const auto& other : builtin_scheme_names()) {
    const LabelScheme s = builtin_scheme(other);
    bool all = true;
    for (const auto& [label, count] : histogram)
      all = all && (label == 0 || s.find(label) != nullptr);
    if (all && "scheme \"" + other + "\"" != scheme_name) {
      message += "; every id is in the built-in scheme \"" + other + "\" (--scheme " + other + ")";
      break;
    }
  }
  message +=
      "; give a label table (--labels) or --unknown-as CLASS (" + join(category_names()) + ")";
  throw BadInput(message);
}

/// A tissue with its category and citation.
struct Resolved {
  Tissue tissue;
  std::string category;
  std::string citation;
};

SchemeResolution resolve(const std::map<std::int32_t, std::int64_t>& histogram,
                         const std::function<std::optional<Resolved>(std::int32_t)>& lookup,
                         const std::optional<std::string>& unknown_as,
                         const std::string& scheme_name, const std::string& source) {
  SchemeResolution r;
  for (const auto& [label, count] : histogram) {
    if (label == 0 || count == 0)
      continue;
    if (auto found = lookup(label)) {
      r.table.tissues.push_back(std::move(found->tissue));
      r.categories.push_back(std::move(found->category));
      r.citations.push_back(std::move(found->citation));
    } else {
      r.unknown.emplace_back(label, count);
    }
  }
  if (!r.unknown.empty()) {
    if (!unknown_as)
      fail_unknown(histogram, r.unknown, scheme_name, source);
    const TissueCategory& c = tissue_category(*unknown_as);
    for (const auto& [label, count] : r.unknown) {
      r.table.tissues.push_back(make_tissue(label, "label_" + std::to_string(label), c));
      r.categories.push_back(c.name);
      r.citations.push_back(c.citation);
    }
    // Keep id order.
    std::vector<std::size_t> order(r.table.tissues.size());
    for (std::size_t i = 0; i < order.size(); ++i)
      order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return r.table.tissues[a].label < r.table.tissues[b].label;
    });
    SchemeResolution sorted;
    sorted.unknown = r.unknown;
    for (const auto i : order) {
      sorted.table.tissues.push_back(r.table.tissues[i]);
      sorted.categories.push_back(r.categories[i]);
      sorted.citations.push_back(r.citations[i]);
    }
    r = std::move(sorted);
  }
  return r;
}

} // namespace

Tissue make_tissue(std::int32_t label, const std::string& name, const TissueCategory& c) {
  Tissue t;
  t.label = label;
  t.name = name;
  t.tissue_class = c.tissue_class;
  t.sigma_l_S_per_m = c.sigma_l_S_per_m;
  t.sigma_t_S_per_m = c.sigma_t_S_per_m;
  return t;
}

const TissueCategory& tissue_category(const std::string& name) {
  for (const auto& c : categories()) {
    if (c.name == name)
      return c;
  }
  throw BadInput("tissue class \"" + name + "\": expected one of " + join(category_names()));
}

std::vector<std::string> category_names() {
  std::vector<std::string> out;
  for (const auto& c : categories())
    out.push_back(c.name);
  return out;
}

const SchemeEntry* LabelScheme::find(std::int32_t label) const {
  const auto it =
      std::lower_bound(entries.begin(), entries.end(), label,
                       [](const SchemeEntry& e, std::int32_t l) { return e.label < l; });
  return it != entries.end() && it->label == label ? &*it : nullptr;
}

std::vector<std::string> builtin_scheme_names() {
  return {"total", "total_mr", "musclemap"};
}

LabelScheme builtin_scheme(const std::string& name) {
  LabelScheme s;
  s.name = name;
  if (name == "total")
    s.entries = total_entries();
  else if (name == "total_mr")
    s.entries = total_mr_entries();
  else if (name == "musclemap")
    s.entries = musclemap_entries();
  else
    throw BadInput("scheme \"" + name + "\": expected one of " + join(builtin_scheme_names()));
  std::sort(s.entries.begin(), s.entries.end(),
            [](const SchemeEntry& a, const SchemeEntry& b) { return a.label < b.label; });
  return s;
}

std::string canonical_tissue_name(const std::string& name) {
  std::string out;
  for (const char ch : lower(name)) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0)
      out += static_cast<char>(c);
    else if (!out.empty() && out.back() != '_')
      out += '_';
  }
  while (!out.empty() && out.back() == '_')
    out.pop_back();
  for (const std::string side : {"left", "right"}) {
    if (out.rfind(side + "_", 0) == 0)
      return out.substr(side.size() + 1) + "_" + side;
  }
  return out;
}

LabelTable read_user_label_table(const fs::path& path) {
  const std::string ext = lower(path.extension().string());
  LabelTable out;
  if (ext == ".json") {
    out.table = read_tissue_table(path);
    for (const auto& t : out.table.tissues) {
      out.categories.push_back(to_string(t.tissue_class));
      out.citations.push_back("tissue table " + path.filename().string());
    }
    return out;
  }
  if (ext != ".tsv" && ext != ".txt") {
    throw BadInput(path.string() + ": unsupported label table \"" + path.extension().string() +
                   "\"; expected .tsv, .txt (tab-separated) or .json (a tissue table)");
  }
  const std::string text = read_text_file(path);
  std::istringstream in(text);
  std::string line;
  std::size_t line_no = 0;
  std::vector<std::string> header;
  std::map<std::string, std::size_t> column;
  TissueTable& table = out.table;
  std::map<std::int32_t, std::size_t> seen_label;
  std::map<std::string, std::size_t> seen_name;
  const auto where = [&](const std::string& col) {
    return path.string() + ": line " + std::to_string(line_no) + ", column \"" + col + "\"";
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty() || trim(line)[0] == '#')
      continue;
    const auto cells = split_tabs(line);
    if (header.empty()) {
      header = cells;
      for (std::size_t c = 0; c < header.size(); ++c) {
        std::string key = lower(header[c]);
        if (key == "id" || key == "value")
          key = "label";
        if (key == "anatomy")
          key = "name";
        column[key] = c;
      }
      if (column.count("label") == 0 || column.count("name") == 0) {
        throw BadInput(path.string() + ": line " + std::to_string(line_no) + ": header \"" +
                       trim(line) +
                       "\": expected tab-separated columns with \"label\" and \"name\" "
                       "(optional: class, sigma_S_per_m, sigma_l_S_per_m, sigma_t_S_per_m, "
                       "citation)");
      }
      for (const auto& [key, c] : column) {
        static const std::vector<std::string> allowed = {
            "label",           "name",    "class", "sigma_S_per_m", "sigma_l_S_per_m",
            "sigma_t_S_per_m", "citation"};
        bool ok = false;
        for (const auto& a : allowed)
          ok = ok || lower(a) == key;
        if (!ok) {
          throw BadInput(path.string() + ": line " + std::to_string(line_no) + ": column \"" +
                         header[c] + "\" is unknown; expected " + join(allowed));
        }
      }
      continue;
    }
    const auto cell = [&](const std::string& key) -> std::string {
      const auto it = column.find(lower(key));
      if (it == column.end() || it->second >= cells.size())
        return {};
      return cells[it->second];
    };
    const auto number = [&](const std::string& key) -> std::optional<double> {
      const std::string v = cell(key);
      if (v.empty())
        return std::nullopt;
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(x > 0.0) || !std::isfinite(x))
        throw BadInput(where(key) + ": \"" + v + "\": expected a conductivity > 0 [S/m]");
      return x;
    };
    const std::string label_text = cell("label");
    char* end = nullptr;
    const long long value = std::strtoll(label_text.c_str(), &end, 10);
    if (label_text.empty() || *end != '\0' || value <= 0 || value > 2147483647) {
      throw BadInput(where("label") + ": \"" + label_text +
                     "\": expected an integer id > 0 (0 is the background)");
    }
    const auto label = static_cast<std::int32_t>(value);
    const std::string name = cell("name");
    if (name.empty())
      throw BadInput(where("name") + ": empty; expected a tissue name");
    if (const auto it = seen_label.find(label); it != seen_label.end()) {
      throw BadInput(where("label") + ": id " + std::to_string(label) + " is also on line " +
                     std::to_string(it->second) + "; each id may appear once");
    }
    if (const auto it = seen_name.find(name); it != seen_name.end()) {
      throw BadInput(where("name") + ": \"" + name + "\" is also on line " +
                     std::to_string(it->second) + "; each name may appear once");
    }
    seen_label[label] = line_no;
    seen_name[name] = line_no;

    std::string class_name = lower(cell("class"));
    if (class_name.empty())
      class_name = category_from_name(name);
    if (class_name == "other")
      class_name = "soft_tissue";
    const TissueCategory* category = nullptr;
    try {
      category = &tissue_category(class_name);
    } catch (const BadInput&) {
      throw BadInput(where("class") + ": \"" + class_name + "\": expected one of " +
                     join(category_names()));
    }
    Tissue t = make_tissue(label, name, *category);
    const auto sigma = number("sigma_S_per_m");
    const auto sigma_l = number("sigma_l_S_per_m");
    const auto sigma_t = number("sigma_t_S_per_m");
    if (t.tissue_class == TissueClass::muscle) {
      if (sigma)
        throw BadInput(where("sigma_S_per_m") + ": muscle is anisotropic: give sigma_l_S_per_m "
                                                "and sigma_t_S_per_m instead");
      t.sigma_l_S_per_m = sigma_l.value_or(t.sigma_l_S_per_m);
      t.sigma_t_S_per_m = sigma_t.value_or(t.sigma_t_S_per_m);
    } else {
      if (sigma_l || sigma_t)
        throw BadInput(where(sigma_l ? "sigma_l_S_per_m" : "sigma_t_S_per_m") + ": class " +
                       class_name + " is isotropic: give sigma_S_per_m");
      t.sigma_l_S_per_m = t.sigma_t_S_per_m = sigma.value_or(t.sigma_l_S_per_m);
    }
    std::string citation = category->citation;
    if (sigma || sigma_l || sigma_t)
      citation =
          cell("citation").empty() ? "label table " + path.filename().string() : cell("citation");
    table.tissues.push_back(std::move(t));
    out.categories.push_back(category->name);
    out.citations.push_back(citation);
  }
  if (table.tissues.empty())
    throw BadInput(path.string() + ": no label lines; expected a header and one line per id");
  return out;
}

SchemeResolution resolve_tissue_table(const std::map<std::int32_t, std::int64_t>& histogram,
                                      const LabelScheme& scheme,
                                      const std::optional<std::string>& unknown_as,
                                      const std::string& source) {
  return resolve(
      histogram,
      [&](std::int32_t label) -> std::optional<Resolved> {
        const SchemeEntry* e = scheme.find(label);
        if (e == nullptr)
          return std::nullopt;
        const TissueCategory& c = tissue_category(e->category);
        return Resolved{make_tissue(label, e->name, c), e->category, c.citation};
      },
      unknown_as, "scheme \"" + scheme.name + "\"", source);
}

SchemeResolution resolve_tissue_table(const std::map<std::int32_t, std::int64_t>& histogram,
                                      const LabelTable& table,
                                      const std::optional<std::string>& unknown_as,
                                      const std::string& source) {
  return resolve(
      histogram,
      [&](std::int32_t label) -> std::optional<Resolved> {
        for (std::size_t i = 0; i < table.table.tissues.size(); ++i) {
          if (table.table.tissues[i].label == label)
            return Resolved{table.table.tissues[i], table.categories[i], table.citations[i]};
        }
        return std::nullopt;
      },
      unknown_as, "the label table", source);
}

} // namespace myotwin::anatomy
