#pragma once
/// \file subject_builder.hpp
/// From a segmentation of a real scan to a subject every later stage accepts
/// (`myotwin subject init`): a label volume with a closed body, skin, subcutaneous fat and
/// soft tissue around the segmented muscles and bones, in one connected piece, and its tissue
/// table with cited conductivities.
///
/// Steps (build_subject()):
/// 1. **Labels**: every id of the segmentation is named and classed by a label scheme or a user
///    table (label_schemes.hpp); unknown ids are an error unless `unknown_as` names a category.
///    The segmentation must hold a muscle; the muscles named in `muscles` must be present.
/// 2. **Region of interest**: the bounding box of the named muscles (all labels if none is
///    named) plus `margin`, plus room for the surface layers on faces that no tissue touches;
///    a face that tissue touches is a *cut face* (the field of view cuts the body there) and is
///    not grown. Optionally resampled to isotropic `voxel` (labels by nearest neighbour, the
///    image linearly). Origin, spacing and direction follow the crop, so the physical frame is
///    kept.
/// 3. **Body outline**: from the image when given: CT (auto-detected when the image holds values
///    below -500) voxels above `body_threshold_HU`, MR voxels above Otsu's threshold; joined
///    with the labelled voxels. Without an image: the labelled tissues closed by `closing` (to
///    bridge the gaps between muscles) and grown by `fat + skin`. Holes are filled in 3-D and
///    slice by slice (k = const).
/// 4. **Parts**: the body's 6-connected parts; the part holding the named muscles (or the
///    largest) is kept and the others dropped (reported). Named muscles in different parts are
///    refused.
/// 5. **Skin**: body voxels whose centre lies within `skin` of the body's surface (the surface
///    half a voxel beyond the outermost voxel centres; cut faces are not surface). Skin wins
///    over labels (the overwritten voxels are reported), so the shell is closed.
/// 6. **Subcutaneous fat**, in this order of preference: the fat mask (its voxels inside the
///    body that are neither skin nor labelled; without an image the body is then the labels and
///    the mask wrapped in skin); a CT: voxels in [`fat_min_HU`, `fat_max_HU`] that are neither
///    skin nor labelled and lie outside the *inner compartment* (the largest connected piece of
///    labelled or denser-than-fat tissue under the skin, closed by `wall_closing` to bridge gaps
///    in the muscle wall, holes filled); fat-range voxels inside it (visceral, intermuscular)
///    become "other_fat", class fat; else the unlabelled voxels within `skin + fat` of the
///    surface.
/// 7. **Soft tissue**: the remaining unlabelled body voxels (category soft_tissue).
/// 8. **Check**: the labelled voxels form one 6-connected component, else Error.
/// Thicknesses are measured on the result: at each voxel of the inner face of the skin (fat),
/// the distance from its centre to the nearest voxel outside the body (for fat, less the mean
/// skin thickness); mean, 5th and 95th percentiles, min and max.

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "myotwin/anatomy/label_schemes.hpp"
#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/tissue_table.hpp"

namespace myotwin::anatomy {

/// Parameters of build_subject() (command-line options in mm and HU).
struct SubjectBuildParams {
  std::string scheme = "total";          ///< built-in scheme (`--scheme`), unless `labels`
  std::filesystem::path label_table;     ///< user table (`--labels`, TSV or JSON), or empty
  std::vector<std::string> muscles;      ///< muscles of interest (names or ids), or empty
  std::optional<std::string> unknown_as; ///< category for unknown ids (`--unknown-as`)
  double margin_m = 0.010;               ///< around the muscles of interest (`--margin-mm`)
  double voxel_m = 0.0;                  ///< isotropic resampling (`--voxel-mm`), 0: keep
  double skin_thickness_m = 0.0015;      ///< skin (`--skin-mm`, > 0)
  double fat_thickness_m = 0.004;        ///< fat layer without mask or CT (`--fat-mm`, >= 0)
  double closing_m = 0.003;              ///< envelope closing without image (`--closing-mm`)
  std::string modality = "auto";         ///< image modality: auto, ct, mr (`--modality`)
  double body_threshold_HU = -300.0;     ///< CT body threshold (`--body-hu`)
  double fat_min_HU = -190.0;            ///< CT fat range (`--fat-hu-min`)
  double fat_max_HU = -30.0;             ///< CT fat range (`--fat-hu-max`)
  double wall_closing_m = 0.010;         ///< CT: closing of the muscle wall (`--wall-closing-mm`)
};

/// Reads the `subject` section of a run configuration (`subject init`; lengths in mm, CT values
/// in HU). Every key has a default, range and doc (`myotwin config defaults`).
/// \throws BadInput naming the key for a value of the wrong type or out of range.
SubjectBuildParams read_subject_build_params(ConfigReader& section);

/// The parameters as the section read_subject_build_params() reads.
nlohmann::json to_json(const SubjectBuildParams& params);

/// The inputs of build_subject(), already read; the names are used in messages.
struct SubjectBuildInputs {
  LabelVolume segmentation;
  std::string segmentation_name;
  std::optional<IntensityVolume> image;
  std::string image_name;
  std::optional<LabelVolume> fat_mask; ///< non-zero = fat
  std::string fat_mask_name;
};

/// Mean and spread of a layer's thickness over the body's surface [m].
struct LayerThickness {
  std::int64_t n_samples = 0;
  double mean_m = 0.0;
  double p5_m = 0.0;
  double p95_m = 0.0;
  double min_m = 0.0;
  double max_m = 0.0;
};

/// What build_subject() built, for the report.
/// A muscle that the region of interest or the field of view cuts: its voxels on the faces of
/// the built volume (at least 4 on a face, as `myotwin anatomy` counts a cut face).
struct CutMuscle {
  std::int32_t label = 0;
  std::string name;
  std::vector<std::string> faces;   ///< "i-", ..., "k+"
  std::vector<std::int64_t> voxels; ///< its voxels on each face (same order)
  bool of_interest = false;         ///< one of the named muscles
};

struct SubjectBuildReport {
  std::string labels_source; ///< "scheme total", "table labels.tsv"
  std::vector<std::pair<std::int32_t, std::int64_t>> unknown_labels; ///< id, voxels
  std::vector<std::string> muscles; ///< names of the muscles of interest
  std::array<std::int64_t, 3> input_size{0, 0, 0};
  std::array<std::int64_t, 3> roi_first{0, 0, 0}; ///< first ROI voxel in the input grid
  std::array<std::int64_t, 3> roi_size{0, 0, 0};  ///< ROI size in input voxels
  std::vector<std::string> cut_faces;             ///< "i-", "i+", ... faces that tissue touches
  std::vector<CutMuscle> cut_muscles;             ///< muscles on the cut faces, by label
  std::string modality;                           ///< "ct", "mr" or "none"
  std::string body_source;                        ///< "ct_threshold", "mr_otsu", "label_envelope"
  double body_threshold = 0.0;                    ///< HU or intensity, when from an image
  std::string fat_source;                         ///< "mask", "ct_hu_range", "layer", "none"
  std::int64_t n_parts = 0;                       ///< 6-connected body parts found
  std::int64_t n_dropped_voxels = 0;              ///< labelled voxels of dropped parts
  std::vector<std::string> dropped_labels;        ///< names of labels that lost voxels to the drop
  std::int64_t n_skin_over_labels = 0;            ///< labelled voxels that became skin
  std::int64_t n_components = 0;                  ///< of the result (1)
  LayerThickness skin;
  LayerThickness fat;
  std::vector<std::string> warnings;
};

/// A built subject.
struct BuiltSubject {
  LabelVolume volume;
  TissueTable tissues;
  std::vector<std::string> categories; ///< category of each tissue (same order)
  std::vector<std::string> citations;  ///< source of each tissue's conductivities (same order)
  SubjectBuildReport report;
};

/// Builds a subject (see the file comment).
/// \throws BadInput (naming the file, option and value) for: no muscle in the segmentation, a
/// named muscle that is absent (listing the present muscles), unknown ids, an image or fat mask
/// whose grid (size, spacing, origin, direction) differs from the segmentation's, named muscles
/// in separate parts of the body, bad parameters. \throws Error when the result is not one
/// connected component (a bug).
BuiltSubject build_subject(const SubjectBuildInputs& inputs, const SubjectBuildParams& params);

/// The report (and, per tissue, voxels, volume and category) as JSON; lengths in mm.
nlohmann::json to_json(const BuiltSubject& built);

/// Writes `dir`/subject.json (name `name`), labels.nii.gz, tissues.json (each tissue with its
/// `citation`) and subject_report.json, each atomically. \throws IoError.
void write_built_subject(const std::filesystem::path& dir, const std::string& name,
                         const BuiltSubject& built);

} // namespace myotwin::anatomy
