#include "myotwin/anatomy/subject.hpp"

#include <algorithm>
#include <limits>
#include <map>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::anatomy {

namespace fs = std::filesystem;

namespace {

fs::path absolute_normal(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  return (ec ? p : a).lexically_normal();
}

/// Per-label accumulator: voxel count and index bounding box.
struct LabelBox {
  std::int64_t n = 0;
  std::array<std::int64_t, 3> lo{std::numeric_limits<std::int64_t>::max(),
                                 std::numeric_limits<std::int64_t>::max(),
                                 std::numeric_limits<std::int64_t>::max()};
  std::array<std::int64_t, 3> hi{-1, -1, -1};
  void add(std::int64_t i, std::int64_t j, std::int64_t k) {
    ++n;
    lo = {std::min(lo[0], i), std::min(lo[1], j), std::min(lo[2], k)};
    hi = {std::max(hi[0], i), std::max(hi[1], j), std::max(hi[2], k)};
  }
};

nlohmann::json vec_mm(const Eigen::Vector3d& v_m) {
  return nlohmann::json::array(
      {units::m_to_mm(v_m[0]), units::m_to_mm(v_m[1]), units::m_to_mm(v_m[2])});
}

} // namespace

SubjectFiles read_subject_file(const fs::path& path) {
  ConfigReader reader = ConfigReader::from_file(path);
  SubjectFiles files;
  files.subject_file = absolute_normal(path);
  files.name = reader.required<std::string>(
      "name",
      Check<std::string>(
          [](const std::string& s) {
            return s.empty() ? std::optional<std::string>("must not be empty") : std::nullopt;
          },
          "not empty"),
      "name of the subject, shown in logs and summaries");
  files.labels = absolute_normal(reader.required_path(
      "labels",
      "label volume (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd), relative to subject.json"));
  if (!is_label_volume_path(files.labels)) {
    reader.fail("labels", "expected a label volume (.nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd)");
  }
  files.tissues = absolute_normal(reader.required_path(
      "tissues",
      "tissue table (JSON) naming and classifying every label, relative to subject.json"));
  reader.finish();
  return files;
}

Subject load_subject(const fs::path& path) {
  Subject s;
  s.files = read_subject_file(path);
  std::error_code ec;
  for (const auto& [key, file] :
       {std::pair{"labels", s.files.labels}, std::pair{"tissues", s.files.tissues}}) {
    if (!fs::exists(file, ec)) {
      throw IoError(path.string() + ": " + key + " names " + file.string() +
                    ", which does not exist (paths are relative to the subject file)");
    }
  }
  s.volume = read_label_volume(s.files.labels);
  s.tissues = read_tissue_table(s.files.tissues);
  check_labels_in_table(s.volume, s.tissues, s.files.labels.string());
  return s;
}

void write_subject_file(const fs::path& path, const std::string& name, const fs::path& labels,
                        const fs::path& tissues) {
  nlohmann::json j;
  j["name"] = name;
  j["labels"] = labels.generic_string();
  j["tissues"] = tissues.generic_string();
  write_text_file(path, j.dump(2) + "\n");
}

std::vector<LabelSummary> summarise_labels(const LabelVolume& volume, const TissueTable& table) {
  // Dense accumulators indexed by label (labels of a segmentation are small); a map for the rest.
  const auto histogram = label_histogram(volume);
  std::map<std::int32_t, LabelBox> boxes;
  std::vector<LabelBox*> dense;
  std::int32_t dense_max = -1;
  if (!histogram.empty() && histogram.begin()->first >= 0 &&
      histogram.rbegin()->first < (1 << 20)) {
    dense_max = histogram.rbegin()->first;
    dense.assign(static_cast<std::size_t>(dense_max) + 1, nullptr);
    for (const auto& [label, count] : histogram)
      dense[static_cast<std::size_t>(label)] = &boxes[label];
  }
  std::int64_t q = 0;
  for (std::int64_t k = 0; k < volume.size[2]; ++k) {
    for (std::int64_t j = 0; j < volume.size[1]; ++j) {
      for (std::int64_t i = 0; i < volume.size[0]; ++i, ++q) {
        const std::int32_t label = volume.labels[static_cast<std::size_t>(q)];
        if (label == 0)
          continue;
        LabelBox* box = (label >= 0 && label <= dense_max) ? dense[static_cast<std::size_t>(label)]
                                                           : &boxes[label];
        box->add(i, j, k);
      }
    }
  }

  std::vector<LabelSummary> out;
  for (const auto& [label, box] : boxes) {
    if (label == 0 || box.n == 0)
      continue;
    LabelSummary s;
    s.label = label;
    if (const Tissue* t = table.find(label)) {
      s.name = t->name;
      s.tissue_class = t->tissue_class;
    }
    s.n_voxels = box.n;
    s.volume_m3 = static_cast<double>(box.n) * volume.voxel_volume_m3();
    // The 8 corners of the index box mapped to physical space: with a rotated direction the
    // extremes can lie at any corner.
    s.bbox_min_m = Eigen::Vector3d::Constant(std::numeric_limits<double>::infinity());
    s.bbox_max_m = Eigen::Vector3d::Constant(-std::numeric_limits<double>::infinity());
    for (int corner = 0; corner < 8; ++corner) {
      const double i = static_cast<double>((corner & 1) != 0 ? box.hi[0] : box.lo[0]);
      const double j = static_cast<double>((corner & 2) != 0 ? box.hi[1] : box.lo[1]);
      const double k = static_cast<double>((corner & 4) != 0 ? box.hi[2] : box.lo[2]);
      const Eigen::Vector3d x = volume.physical_point(i, j, k);
      s.bbox_min_m = s.bbox_min_m.cwiseMin(x);
      s.bbox_max_m = s.bbox_max_m.cwiseMax(x);
    }
    out.push_back(std::move(s));
  }
  return out;
}

nlohmann::json to_json(const LabelVolume& volume, const std::vector<LabelSummary>& summary) {
  nlohmann::json image;
  image["size"] = {volume.size[0], volume.size[1], volume.size[2]};
  image["n_voxels"] = volume.n_voxels();
  image["spacing_mm"] = vec_mm(volume.spacing_m);
  image["origin_mm"] = vec_mm(volume.origin_m);
  nlohmann::json rows = nlohmann::json::array();
  for (int r = 0; r < 3; ++r)
    rows.push_back({volume.direction(r, 0), volume.direction(r, 1), volume.direction(r, 2)});
  image["direction"] = rows;
  image["frame"] = "LPS; direction rows as stored, columns are the i, j, k axes";
  image["voxel_volume_mm3"] = volume.voxel_volume_m3() * 1e9;

  nlohmann::json labels = nlohmann::json::array();
  for (const auto& s : summary) {
    nlohmann::json l;
    l["label"] = s.label;
    l["name"] = s.name;
    l["class"] = to_string(s.tissue_class);
    l["voxels"] = s.n_voxels;
    l["volume_cm3"] = units::m3_to_cm3(s.volume_m3);
    l["bbox_min_mm"] = vec_mm(s.bbox_min_m);
    l["bbox_max_mm"] = vec_mm(s.bbox_max_m);
    labels.push_back(std::move(l));
  }
  return nlohmann::json{{"image", std::move(image)}, {"labels", std::move(labels)}};
}

} // namespace myotwin::anatomy
