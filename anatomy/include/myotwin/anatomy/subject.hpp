#pragma once
/// \file subject.hpp
/// A subject: the file `subject.json` that names a label volume and a tissue table by paths
/// relative to itself.
/// \code
/// { "name": "forearm_phantom", "labels": "labels.nii.gz", "tissues": "tissues.json" }
/// \endcode

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/tissue_table.hpp"

namespace myotwin::anatomy {

/// The paths a subject file names, resolved to absolute paths.
struct SubjectFiles {
  std::filesystem::path subject_file;
  std::string name;
  std::filesystem::path labels;
  std::filesystem::path tissues;
};

/// A subject with its data loaded and checked against each other.
struct Subject {
  SubjectFiles files;
  LabelVolume volume;
  TissueTable tissues;
};

/// Reads `subject.json` (strict). \throws IoError, BadInput.
SubjectFiles read_subject_file(const std::filesystem::path& path);
/// Reads the subject file, its label volume and tissue table, and checks that every label is
/// in the table. \throws IoError, BadInput.
Subject load_subject(const std::filesystem::path& path);
/// Writes a subject file atomically; `labels` and `tissues` are written as given (relative).
void write_subject_file(const std::filesystem::path& path, const std::string& name,
                        const std::filesystem::path& labels, const std::filesystem::path& tissues);

/// Per-label summary of a subject for `myotwin anatomy info`.
struct LabelSummary {
  std::int32_t label = 0;
  std::string name;
  TissueClass tissue_class = TissueClass::other;
  std::int64_t n_voxels = 0;
  double volume_m3 = 0.0;
  Eigen::Vector3d bbox_min_m = Eigen::Vector3d::Zero(); ///< physical bounding box of the voxel
  Eigen::Vector3d bbox_max_m = Eigen::Vector3d::Zero(); ///< centres (LPS) [m]
};

/// One summary per label present in the volume (label order), background excluded.
std::vector<LabelSummary> summarise_labels(const LabelVolume& volume, const TissueTable& table);

/// The summary and the image's geometry as JSON (mm and cm^3, for people).
nlohmann::json to_json(const LabelVolume& volume, const std::vector<LabelSummary>& summary);

} // namespace myotwin::anatomy
