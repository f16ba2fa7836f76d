#include "myotwin/anatomy/subject_builder.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "image_ops.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::anatomy {

namespace fs = std::filesystem;
using image_ops::Grid;
using image_ops::Mask;

namespace {

std::string mm(double m) {
  return format_number(units::m_to_mm(m));
}

std::string size_string(const std::array<std::int64_t, 3>& s) {
  return std::to_string(s[0]) + " x " + std::to_string(s[1]) + " x " + std::to_string(s[2]);
}

std::string vector_mm(const Eigen::Vector3d& v) {
  return "(" + mm(v[0]) + ", " + mm(v[1]) + ", " + mm(v[2]) + ") mm";
}

void check_params(const SubjectBuildParams& p) {
  // The reader's declarations are the one statement of every range.
  ConfigReader reader(to_json(p), "subject");
  (void)read_subject_build_params(reader);
  reader.finish();
}

/// Checks that an image given beside the segmentation lies on its grid.
template <class Volume>
void check_same_grid(const LabelVolume& seg, const std::string& seg_name, const Volume& other,
                     const std::string& other_name, const std::string& option) {
  const auto fail = [&](const std::string& what, const std::string& found,
                        const std::string& expected) {
    throw BadInput(other_name + " (" + option + "): " + what + " " + found + " differs from the " +
                   "segmentation's " + expected + " (" + seg_name +
                   "); expected the same grid (size, spacing, origin, direction)");
  };
  if (other.size != seg.size)
    fail("size", size_string(other.size), size_string(seg.size));
  const double h = seg.spacing_m.minCoeff();
  if ((other.spacing_m - seg.spacing_m).cwiseAbs().maxCoeff() > 1e-4 * h)
    fail("spacing", vector_mm(other.spacing_m), vector_mm(seg.spacing_m));
  if ((other.origin_m - seg.origin_m).cwiseAbs().maxCoeff() > 1e-3 * h)
    fail("origin", vector_mm(other.origin_m), vector_mm(seg.origin_m));
  if ((other.direction - seg.direction).cwiseAbs().maxCoeff() > 1e-4)
    fail("direction", "matrix", "matrix");
}

/// A box of voxels [first, first + size) of a grid, possibly reaching beyond it.
struct Box {
  std::array<std::int64_t, 3> first{0, 0, 0};
  std::array<std::int64_t, 3> size{0, 0, 0};
};

template <class T>
std::vector<T> crop_data(const std::array<std::int64_t, 3>& in_size, const std::vector<T>& in,
                         const Box& box, T outside) {
  std::vector<T> out(static_cast<std::size_t>(box.size[0] * box.size[1] * box.size[2]), outside);
  std::size_t q = 0;
  for (std::int64_t k = 0; k < box.size[2]; ++k) {
    const std::int64_t kk = box.first[2] + k;
    for (std::int64_t j = 0; j < box.size[1]; ++j) {
      const std::int64_t jj = box.first[1] + j;
      for (std::int64_t i = 0; i < box.size[0]; ++i, ++q) {
        const std::int64_t ii = box.first[0] + i;
        if (ii < 0 || jj < 0 || kk < 0 || ii >= in_size[0] || jj >= in_size[1] || kk >= in_size[2])
          continue;
        out[q] = in[static_cast<std::size_t>(ii + in_size[0] * (jj + in_size[1] * kk))];
      }
    }
  }
  return out;
}

template <class Volume, class T>
Volume crop(const Volume& v, const std::vector<T>& data, const Box& box, T outside,
            std::vector<T> Volume::*member) {
  Volume out;
  out.size = box.size;
  out.spacing_m = v.spacing_m;
  out.direction = v.direction;
  out.origin_m = v.origin_m + v.direction * v.spacing_m.cwiseProduct(
                                                Eigen::Vector3d(static_cast<double>(box.first[0]),
                                                                static_cast<double>(box.first[1]),
                                                                static_cast<double>(box.first[2])));
  out.*member = crop_data(v.size, data, box, outside);
  return out;
}

/// The six neighbours of voxel q of `grid` inside the grid, by calling f(neighbour index).
template <class F>
void for_each_neighbour(const Grid& g, std::int64_t q, std::int64_t i, std::int64_t j,
                        std::int64_t k, F&& f) {
  const std::int64_t sx = 1;
  const std::int64_t sy = g.size[0];
  const std::int64_t sz = g.size[0] * g.size[1];
  if (i > 0)
    f(q - sx);
  if (i + 1 < g.size[0])
    f(q + sx);
  if (j > 0)
    f(q - sy);
  if (j + 1 < g.size[1])
    f(q + sy);
  if (k > 0)
    f(q - sz);
  if (k + 1 < g.size[2])
    f(q + sz);
}

/// Calls f(q, i, j, k) for every voxel in grid order.
template <class F> void for_each_voxel(const Grid& g, F&& f) {
  std::int64_t q = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i, ++q)
        f(q, i, j, k);
}

LayerThickness statistics(std::vector<double> samples) {
  LayerThickness t;
  t.n_samples = static_cast<std::int64_t>(samples.size());
  if (samples.empty())
    return t;
  std::sort(samples.begin(), samples.end());
  double sum = 0.0;
  for (const double s : samples)
    sum += s;
  const auto at = [&](double f) {
    const auto idx =
        static_cast<std::size_t>(std::floor(f * static_cast<double>(samples.size() - 1)));
    return samples[idx];
  };
  t.mean_m = sum / static_cast<double>(samples.size());
  t.p5_m = at(0.05);
  t.p95_m = at(0.95);
  t.min_m = samples.front();
  t.max_m = samples.back();
  return t;
}

nlohmann::json to_json(const LayerThickness& t) {
  return {{"n_samples", t.n_samples},          {"mean_mm", units::m_to_mm(t.mean_m)},
          {"p5_mm", units::m_to_mm(t.p5_m)},   {"p95_mm", units::m_to_mm(t.p95_m)},
          {"min_mm", units::m_to_mm(t.min_m)}, {"max_mm", units::m_to_mm(t.max_m)}};
}

/// Morphological closing of `mask` by a ball of radius `r` (dilation, then erosion, by exact
/// Euclidean distances). Faces of the grid that the mask does not touch are padded by r first,
/// so that the erosion also works from beyond them; faces the mask touches (cut faces) are not
/// boundaries.
Mask closing(const Grid& grid, const Mask& mask, double r) {
  std::array<std::array<std::int64_t, 2>, 3> pad{};
  for_each_voxel(grid, [&](std::int64_t q, std::int64_t i, std::int64_t j, std::int64_t k) {
    if (mask[static_cast<std::size_t>(q)] == 0)
      return;
    const std::array<std::int64_t, 3> ijk{i, j, k};
    for (int d = 0; d < 3; ++d) {
      if (ijk[d] == 0)
        pad[d][0] = -1;
      if (ijk[d] == grid.size[d] - 1)
        pad[d][1] = -1;
    }
  });
  Grid padded = grid;
  for (int d = 0; d < 3; ++d) {
    for (int s = 0; s < 2; ++s)
      pad[d][s] =
          pad[d][s] < 0 ? 0 : static_cast<std::int64_t>(std::ceil(r / grid.spacing_m[d])) + 1;
    padded.size[d] = grid.size[d] + pad[d][0] + pad[d][1];
  }
  Box inner;
  inner.first = {-pad[0][0], -pad[1][0], -pad[2][0]};
  inner.size = padded.size;
  Mask m = crop_data(grid.size, mask, inner, std::uint8_t{0});
  const auto np = static_cast<std::size_t>(padded.n_voxels());
  const auto to_mask = image_ops::distance_to_set_m(padded, m);
  Mask outside(np, 0);
  for (std::size_t q = 0; q < np; ++q)
    outside[q] = to_mask[q] > r;
  const auto to_outside = image_ops::distance_to_set_m(padded, outside);
  for (std::size_t q = 0; q < np; ++q)
    m[q] = m[q] != 0 || to_outside[q] > r;
  Box back;
  back.first = {pad[0][0], pad[1][0], pad[2][0]};
  back.size = grid.size;
  return crop_data(padded.size, m, back, std::uint8_t{0});
}

/// The muscles named by the user, as labels of `table` present in the segmentation.
std::vector<std::int32_t> named_muscles(const std::vector<std::string>& names,
                                        const TissueTable& table, const std::string& seg_name) {
  std::vector<std::int32_t> out;
  for (const auto& name : names) {
    const Tissue* found = nullptr;
    const bool numeric =
        !name.empty() &&
        std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
    for (const auto& t : table.tissues) {
      if (numeric ? std::to_string(t.label) == name
                  : canonical_tissue_name(t.name) == canonical_tissue_name(name))
        found = &t;
    }
    if (found == nullptr || found->tissue_class != TissueClass::muscle) {
      std::string list;
      for (const auto& t : table.tissues) {
        if (t.tissue_class == TissueClass::muscle)
          list += (list.empty() ? "" : ", ") + t.name + " (" + std::to_string(t.label) + ")";
      }
      throw BadInput("--muscles: \"" + name + "\" is " +
                     (found == nullptr ? std::string("not present in ")
                                       : "of class " + to_string(found->tissue_class) + " in ") +
                     seg_name + "; expected one of its muscles: " + list);
    }
    if (std::find(out.begin(), out.end(), found->label) == out.end())
      out.push_back(found->label);
  }
  return out;
}

/// The segmentation's labels resolved: the tissue table, the largest id that the scheme or table
/// knows (the added tissues are numbered above it) and the muscles the user named.
struct ResolvedLabels {
  SchemeResolution resolved;
  std::int32_t max_known_label = 0;
  std::vector<std::int32_t> muscles;
};

/// Step 1: names, classes and conductivities of the labels of `seg` (by the user's table or the
/// built-in scheme), and the muscles named; fills the report's label fields.
/// \throws BadInput for a segmentation without muscles or a named muscle it does not hold.
ResolvedLabels resolve_labels(const LabelVolume& seg, const std::string& seg_name,
                              const SubjectBuildParams& params, SubjectBuildReport& report) {
  ResolvedLabels out;
  const auto histogram = label_histogram(seg);
  if (!params.label_table.empty()) {
    const LabelTable user = read_user_label_table(params.label_table);
    out.resolved = resolve_tissue_table(histogram, user, params.unknown_as, seg_name);
    report.labels_source = "table " + params.label_table.filename().string();
    for (const auto& t : user.table.tissues)
      out.max_known_label = std::max(out.max_known_label, t.label);
  } else {
    const LabelScheme scheme = builtin_scheme(params.scheme);
    out.resolved = resolve_tissue_table(histogram, scheme, params.unknown_as, seg_name);
    report.labels_source = "scheme " + params.scheme;
    for (const auto& e : scheme.entries)
      out.max_known_label = std::max(out.max_known_label, e.label);
  }
  report.unknown_labels = out.resolved.unknown;
  for (const auto& t : out.resolved.table.tissues)
    out.max_known_label = std::max(out.max_known_label, t.label);
  if (std::none_of(out.resolved.table.tissues.begin(), out.resolved.table.tissues.end(),
                   [](const Tissue& t) { return t.tissue_class == TissueClass::muscle; })) {
    throw BadInput(seg_name + ": no muscle label (" + report.labels_source +
                   "); expected a segmentation with at least one muscle");
  }
  out.muscles = named_muscles(params.muscles, out.resolved.table, seg_name);
  for (const auto l : out.muscles)
    report.muscles.push_back(out.resolved.table.find(l)->name);
  return out;
}

/// Checks that the image and the fat mask, when given, lie on the segmentation's grid.
void check_inputs_on_grid(const SubjectBuildInputs& inputs) {
  const LabelVolume& seg = inputs.segmentation;
  const std::string& seg_name = inputs.segmentation_name;
  if (inputs.image)
    check_same_grid(seg, seg_name, *inputs.image, inputs.image_name, "--image");
  if (inputs.fat_mask)
    check_same_grid(seg, seg_name, *inputs.fat_mask, inputs.fat_mask_name, "--fat-mask");
}

/// An inclusive range [lo, hi] of voxel indices per axis.
struct VoxelRange {
  std::array<std::int64_t, 3> lo{};
  std::array<std::int64_t, 3> hi{};
};

/// The voxels of the named muscles (of every label when none is named), `margin` wider on
/// each side, clipped to the segmentation.
VoxelRange labelled_range(const LabelVolume& seg, const std::vector<std::int32_t>& muscles,
                          const SubjectBuildParams& params) {
  const Grid in_grid = image_ops::grid_of(seg);
  VoxelRange r;
  r.lo = {std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::max(),
          std::numeric_limits<std::int64_t>::max()};
  r.hi = {-1, -1, -1};
  {
    std::set<std::int32_t> of_interest(muscles.begin(), muscles.end());
    for_each_voxel(in_grid, [&](std::int64_t q, std::int64_t i, std::int64_t j, std::int64_t k) {
      const std::int32_t l = seg.labels[static_cast<std::size_t>(q)];
      if (l == 0 || (!of_interest.empty() && of_interest.count(l) == 0))
        return;
      const std::array<std::int64_t, 3> ijk{i, j, k};
      for (int d = 0; d < 3; ++d) {
        r.lo[d] = std::min(r.lo[d], ijk[d]);
        r.hi[d] = std::max(r.hi[d], ijk[d]);
      }
    });
  }
  for (int d = 0; d < 3; ++d) {
    const auto margin = static_cast<std::int64_t>(std::ceil(params.margin_m / seg.spacing_m[d]));
    r.lo[d] = std::max<std::int64_t>(0, r.lo[d] - margin);
    r.hi[d] = std::min<std::int64_t>(seg.size[d] - 1, r.hi[d] + margin);
  }
  return r;
}

/// The muscles with at least 4 voxels on a face of the built volume (labels increasing, faces
/// in the order i-, i+, j-, j+, k-, k+); `named` are the muscles of interest.
std::vector<CutMuscle> cut_muscles(const LabelVolume& vol, const TissueTable& tissues,
                                   const std::vector<std::string>& named) {
  constexpr std::int64_t min_voxels = 4;
  const char* face_names[6] = {"i-", "i+", "j-", "j+", "k-", "k+"};
  std::map<std::int32_t, std::array<std::int64_t, 6>> counts;
  for (std::int64_t k = 0; k < vol.size[2]; ++k)
    for (std::int64_t j = 0; j < vol.size[1]; ++j)
      for (std::int64_t i = 0; i < vol.size[0]; ++i) {
        const std::array<std::int64_t, 3> c{i, j, k};
        bool on_face = false;
        for (int d = 0; d < 3; ++d)
          on_face = on_face || c[d] == 0 || c[d] == vol.size[d] - 1;
        if (!on_face)
          continue;
        const std::int32_t l = vol.at(i, j, k);
        const Tissue* t = l == 0 ? nullptr : tissues.find(l);
        if (t == nullptr || t->tissue_class != TissueClass::muscle)
          continue;
        auto& n = counts.try_emplace(l, std::array<std::int64_t, 6>{}).first->second;
        for (int d = 0; d < 3; ++d) {
          if (c[d] == 0)
            ++n[static_cast<std::size_t>(2 * d)];
          if (c[d] == vol.size[d] - 1)
            ++n[static_cast<std::size_t>(2 * d + 1)];
        }
      }
  std::vector<CutMuscle> out;
  for (const auto& [label, n] : counts) {
    CutMuscle m;
    m.label = label;
    m.name = tissues.find(label)->name;
    for (std::size_t f = 0; f < 6; ++f)
      if (n[f] >= min_voxels) {
        m.faces.emplace_back(face_names[f]);
        m.voxels.push_back(n[f]);
      }
    if (m.faces.empty())
      continue;
    m.of_interest = std::find(named.begin(), named.end(), m.name) != named.end();
    out.push_back(std::move(m));
  }
  return out;
}

/// Step 2: the region of interest, `range` with room for the surface layers beyond the faces
/// that no labelled voxel touches (when they grow from the labels); reports the cut faces.
Box region_of_interest(const LabelVolume& seg, const VoxelRange& range, bool grow_from_labels,
                       const SubjectBuildParams& params, SubjectBuildReport& report) {
  const Grid in_grid = image_ops::grid_of(seg);
  const auto& lo = range.lo;
  const auto& hi = range.hi;
  Box box;
  // Cut faces: faces of the box that labelled voxels touch.
  const char* face_names[3][2] = {{"i-", "i+"}, {"j-", "j+"}, {"k-", "k+"}};
  std::array<std::array<bool, 2>, 3> cut{};
  for_each_voxel(in_grid, [&](std::int64_t q, std::int64_t i, std::int64_t j, std::int64_t k) {
    if (seg.labels[static_cast<std::size_t>(q)] == 0)
      return;
    const std::array<std::int64_t, 3> ijk{i, j, k};
    for (int d = 0; d < 3; ++d) {
      if (ijk[(d + 1) % 3] < lo[(d + 1) % 3] || ijk[(d + 1) % 3] > hi[(d + 1) % 3] ||
          ijk[(d + 2) % 3] < lo[(d + 2) % 3] || ijk[(d + 2) % 3] > hi[(d + 2) % 3])
        continue;
      if (ijk[d] == lo[d])
        cut[d][0] = true;
      if (ijk[d] == hi[d])
        cut[d][1] = true;
    }
  });
  for (int d = 0; d < 3; ++d) {
    // Room for the surface layers beyond faces that no tissue touches.
    const auto layer =
        grow_from_labels
            ? static_cast<std::int64_t>(std::ceil(
                  (params.skin_thickness_m + params.fat_thickness_m) / seg.spacing_m[d])) +
                  2
            : 0;
    const std::int64_t first = cut[d][0] ? lo[d] : lo[d] - layer;
    const std::int64_t last = cut[d][1] ? hi[d] : hi[d] + layer;
    box.first[d] = first;
    box.size[d] = last - first + 1;
    for (int s = 0; s < 2; ++s) {
      if (cut[d][s])
        report.cut_faces.emplace_back(face_names[d][s]);
    }
  }
  report.roi_first = box.first;
  report.roi_size = box.size;
  return box;
}

/// The inputs cropped to the region of interest (and resampled): the labels, the image with
/// its smallest value (the value outside it), the fat mask.
struct Cropped {
  LabelVolume vol;
  std::optional<IntensityVolume> image;
  float image_min = 0.0f;
  std::optional<LabelVolume> fat_mask;
};

/// Crops the segmentation, image and fat mask to `box` and resamples them to `--voxel-mm`.
/// \throws BadInput when the result has more than 2^30 voxels.
Cropped crop_inputs(const SubjectBuildInputs& inputs, const Box& box,
                    const SubjectBuildParams& params) {
  const LabelVolume& seg = inputs.segmentation;
  Cropped c;
  c.vol = crop(seg, seg.labels, box, std::int32_t{0}, &LabelVolume::labels);
  if (inputs.image) {
    c.image_min = *std::min_element(inputs.image->values.begin(), inputs.image->values.end());
    c.image = crop(*inputs.image, inputs.image->values, box, c.image_min, &IntensityVolume::values);
  }
  if (inputs.fat_mask) {
    c.fat_mask =
        crop(*inputs.fat_mask, inputs.fat_mask->labels, box, std::int32_t{0}, &LabelVolume::labels);
  }
  if (params.voxel_m > 0.0) {
    c.vol = image_ops::resample_labels(c.vol, params.voxel_m);
    const Grid g = image_ops::grid_of(c.vol);
    if (c.image)
      c.image = image_ops::resample_intensity(*c.image, g, c.image_min);
    if (c.fat_mask)
      c.fat_mask = image_ops::resample_labels(*c.fat_mask, params.voxel_m);
  }
  const Grid grid = image_ops::grid_of(c.vol);
  if (grid.n_voxels() > (std::int64_t{1} << 30)) {
    throw BadInput(inputs.segmentation_name + ": the region of interest has " +
                   size_string(grid.size) +
                   " voxels; expected at most 2^30 (name muscles with --muscles or choose a "
                   "larger --voxel-mm)");
  }
  return c;
}

/// Step 3: the body outline: the image above its threshold (CT: a HU value; MR: Otsu's), or
/// the labelled tissues closed and grown by the surface layers; sets the report's modality.
Mask body_outline(const Grid& grid, const Cropped& c, const SubjectBuildParams& params,
                  SubjectBuildReport& report) {
  const auto n = static_cast<std::size_t>(grid.n_voxels());
  const double h = grid.spacing_m.minCoeff();
  Mask labelled(n, 0);
  for (std::size_t q = 0; q < n; ++q)
    labelled[q] = c.vol.labels[q] != 0;
  Mask body(n, 0);
  if (c.image) {
    const bool ct = params.modality == "ct" || (params.modality == "auto" && c.image_min < -500.0f);
    report.modality = ct ? "ct" : "mr";
    report.body_source = ct ? "ct_threshold" : "mr_otsu";
    report.body_threshold =
        ct ? params.body_threshold_HU : image_ops::otsu_threshold(grid, c.image->values);
    for (std::size_t q = 0; q < n; ++q)
      body[q] = labelled[q] != 0 || c.image->values[q] > report.body_threshold;
    body = image_ops::fill_holes(grid, body);
  } else {
    report.modality = "none";
    report.body_source = "label_envelope";
    // Close the labelled tissues (and the fat mask's voxels), dilating then eroding by
    // `closing`, fill the holes, grow by the surface layers (the skin alone over a fat mask).
    if (c.fat_mask) {
      for (std::size_t q = 0; q < n; ++q)
        labelled[q] = labelled[q] != 0 || c.fat_mask->labels[q] != 0;
    }
    Mask envelope = params.closing_m > 0.0 ? closing(grid, labelled, params.closing_m) : labelled;
    envelope = image_ops::fill_holes(grid, envelope);
    const auto to_envelope = image_ops::distance_to_set_m(grid, envelope);
    const double grow =
        params.skin_thickness_m + (c.fat_mask ? 0.0 : params.fat_thickness_m) + 0.5 * h;
    for (std::size_t q = 0; q < n; ++q)
      body[q] = to_envelope[q] <= grow;
  }
  return body;
}

/// The part of the body (an id of `parts`) that holds most voxels of each named muscle; 1
/// when none is named. \throws BadInput when the named muscles lie in different parts.
std::uint32_t part_of_named_muscles(const image_ops::Components& parts,
                                    const ResolvedLabels& labels, const LabelVolume& vol) {
  const auto n = vol.labels.size();
  std::uint32_t keep = 1;
  std::map<std::uint32_t, std::vector<std::string>> muscle_parts;
  for (const auto l : labels.muscles) {
    std::map<std::uint32_t, std::int64_t> votes;
    for (std::size_t q = 0; q < n; ++q) {
      if (vol.labels[q] == l)
        ++votes[parts.id[q]];
    }
    std::uint32_t best = 0;
    std::int64_t best_n = -1;
    for (const auto& [part, count] : votes) {
      if (count > best_n) {
        best = part;
        best_n = count;
      }
    }
    muscle_parts[best].push_back(labels.resolved.table.find(l)->name);
  }
  if (muscle_parts.size() > 1) {
    std::string list;
    for (const auto& [part, names] : muscle_parts) {
      std::string joined;
      for (const auto& s : names)
        joined += (joined.empty() ? "" : ", ") + s;
      list += (list.empty() ? "" : "; ") + std::string("part ") + std::to_string(part) + " (" +
              std::to_string(parts.sizes[part]) + " voxels): " + joined;
    }
    throw BadInput("--muscles: the named muscles lie in " + std::to_string(muscle_parts.size()) +
                   " separate parts of the body, which cannot form one volume conductor: " + list +
                   "; name muscles of one part (or join the parts in the segmentation)");
  }
  if (!muscle_parts.empty())
    keep = muscle_parts.begin()->first;
  return keep;
}

/// Step 4: keeps the part of the body with the named muscles (or the largest), clearing the
/// body and the labels of the others; reports the parts and the labels dropped.
void keep_one_part(const Grid& grid, const ResolvedLabels& labels, Mask& body, LabelVolume& vol,
                   SubjectBuildReport& report) {
  const auto n = static_cast<std::size_t>(grid.n_voxels());
  const auto parts = image_ops::connected_components(grid, body);
  report.n_parts = static_cast<std::int64_t>(parts.count());
  if (parts.count() <= 1)
    return;
  const std::uint32_t keep = part_of_named_muscles(parts, labels, vol);
  std::set<std::int32_t> dropped;
  for (std::size_t q = 0; q < n; ++q) {
    if (body[q] != 0 && parts.id[q] != keep) {
      body[q] = 0;
      if (vol.labels[q] != 0) {
        ++report.n_dropped_voxels;
        dropped.insert(vol.labels[q]);
        vol.labels[q] = 0;
      }
    }
  }
  for (const auto l : dropped)
    report.dropped_labels.push_back(labels.resolved.table.find(l)->name);
  const std::string message =
      "the body has " + std::to_string(parts.count()) + " separate parts; kept part " +
      std::to_string(keep) + " (" + std::to_string(parts.sizes[keep]) + " voxels), dropped " +
      std::to_string(report.n_dropped_voxels) + " labelled voxels of the others";
  if (report.n_dropped_voxels > 0)
    report.warnings.push_back(message);
  else
    log_info("subject: ", message, " (unlabelled: the scanner table, noise)");
}

/// The distance [m] of each voxel to the nearest voxel outside the body.
std::vector<float> depth_below_surface(const Grid& grid, const Mask& body) {
  const auto n = static_cast<std::size_t>(grid.n_voxels());
  Mask outside(n, 0);
  for (std::size_t q = 0; q < n; ++q)
    outside[q] = body[q] == 0;
  return image_ops::distance_to_set_m(grid, outside);
}

/// Step 5: the skin: body voxels within `skin` of the surface, and every body voxel with a face
/// on the outside.
Mask skin_layer(const Grid& grid, const Mask& body, const std::vector<float>& depth,
                const SubjectBuildParams& params) {
  const auto n = static_cast<std::size_t>(grid.n_voxels());
  const double h = grid.spacing_m.minCoeff();
  Mask skin(n, 0);
  for_each_voxel(grid, [&](std::int64_t q, std::int64_t i, std::int64_t j, std::int64_t k) {
    const auto u = static_cast<std::size_t>(q);
    if (body[u] == 0)
      return;
    bool on_surface = depth[u] <= params.skin_thickness_m + 0.5 * h;
    for_each_neighbour(grid, q, i, j, k, [&](std::int64_t p) {
      on_surface = on_surface || body[static_cast<std::size_t>(p)] == 0;
    });
    skin[u] = on_surface;
  });
  return skin;
}

/// Labels of the added tissues: above every id of the scheme or table.
struct AddedLabels {
  std::int32_t skin = 0;
  std::int32_t fat = 0;
  std::int32_t other_fat = 0;
  std::int32_t soft = 0;
};

/// The labels of the added tissues, numbered from `max_known_label` + 1.
AddedLabels added_labels(std::int32_t max_known_label) {
  AddedLabels a;
  a.skin = max_known_label + 1;
  a.fat = max_known_label + 2;
  a.other_fat = max_known_label + 3;
  a.soft = max_known_label + 4;
  return a;
}

/// The fat of the body: subcutaneous, and other (visceral, intermuscular; CT only).
struct FatLayers {
  Mask fat;
  Mask other_fat;
};

/// Splits the CT's fat-range voxels under the skin into subcutaneous and other fat: the inner
/// compartment is the non-fat tissue under the skin (labels, or above the fat range), its
/// largest part closed by `wall_closing` (bridging gaps in the muscle wall) and filled; fat
/// outside it is subcutaneous, fat inside it (visceral, intermuscular) other fat.
void split_ct_fat(const Grid& grid, const Mask& body, const Mask& skin, const Cropped& c,
                  const SubjectBuildParams& params, FatLayers& layers) {
  const auto n = static_cast<std::size_t>(grid.n_voxels());
  const auto& vol = c.vol;
  const auto& image = c.image;
  const auto unlabelled = [&](std::size_t q) {
    return body[q] != 0 && skin[q] == 0 && vol.labels[q] == 0;
  };
  Mask fat_range(n, 0);
  for (std::size_t q = 0; q < n; ++q) {
    fat_range[q] = unlabelled(q) && image->values[q] >= params.fat_min_HU &&
                   image->values[q] <= params.fat_max_HU;
  }
  Mask core(n, 0);
  for (std::size_t q = 0; q < n; ++q) {
    core[q] = body[q] != 0 && skin[q] == 0 &&
              (vol.labels[q] != 0 || image->values[q] > params.fat_max_HU);
  }
  const auto core_parts = image_ops::connected_components(grid, core);
  for (std::size_t q = 0; q < n; ++q)
    core[q] = core_parts.id[q] == 1;
  Mask compartment = closing(grid, core, params.wall_closing_m);
  compartment = image_ops::fill_holes(grid, compartment);
  for (std::size_t q = 0; q < n; ++q) {
    if (fat_range[q] != 0)
      (compartment[q] != 0 ? layers.other_fat : layers.fat)[q] = 1;
  }
}

/// Step 6: the fat among the unlabelled body voxels under the skin, from the fat mask, the CT's
/// HU range or a layer of `fat` thickness (or none); reports its source.
FatLayers fat_layers(const Grid& grid, const Mask& body, const Mask& skin,
                     const std::vector<float>& depth, const Cropped& c,
                     const SubjectBuildParams& params, SubjectBuildReport& report) {
  const auto n = static_cast<std::size_t>(grid.n_voxels());
  const double h = grid.spacing_m.minCoeff();
  FatLayers layers{Mask(n, 0), Mask(n, 0)};
  const auto unlabelled = [&](std::size_t q) {
    return body[q] != 0 && skin[q] == 0 && c.vol.labels[q] == 0;
  };
  if (c.fat_mask) {
    report.fat_source = "mask";
    for (std::size_t q = 0; q < n; ++q)
      layers.fat[q] = unlabelled(q) && c.fat_mask->labels[q] != 0;
  } else if (c.image && report.modality == "ct") {
    report.fat_source = "ct_hu_range";
    split_ct_fat(grid, body, skin, c, params, layers);
  } else if (params.fat_thickness_m > 0.0) {
    report.fat_source = "layer";
    const double limit = params.skin_thickness_m + params.fat_thickness_m + 0.5 * h;
    for (std::size_t q = 0; q < n; ++q)
      layers.fat[q] = unlabelled(q) && depth[q] <= limit;
  } else {
    report.fat_source = "none";
  }
  return layers;
}

/// Step 7: labels the layers: nothing outside the body, skin (over any label), fat, other fat,
/// and soft tissue in the body's unlabelled rest.
void label_layers(const Mask& body, const Mask& skin, const FatLayers& layers,
                  const AddedLabels& added, LabelVolume& vol, SubjectBuildReport& report) {
  for (std::size_t q = 0; q < body.size(); ++q) {
    if (body[q] == 0) {
      vol.labels[q] = 0;
      continue;
    }
    if (skin[q] != 0) {
      report.n_skin_over_labels += vol.labels[q] != 0;
      vol.labels[q] = added.skin;
    } else if (layers.fat[q] != 0) {
      vol.labels[q] = added.fat;
    } else if (layers.other_fat[q] != 0) {
      vol.labels[q] = added.other_fat;
    } else if (vol.labels[q] == 0) {
      vol.labels[q] = added.soft;
    }
  }
}

/// The tissue table of `built`: the labels of `vol` still present, then the added tissues
/// (renamed `NAME_added` when the segmentation has a tissue of that name).
void make_tissue_table(const ResolvedLabels& labels, const AddedLabels& added,
                       const LabelVolume& vol, BuiltSubject& built) {
  const auto final_histogram = label_histogram(vol);
  const SchemeResolution& resolved = labels.resolved;
  for (std::size_t t = 0; t < resolved.table.tissues.size(); ++t) {
    const Tissue& tissue = resolved.table.tissues[t];
    if (final_histogram.count(tissue.label) == 0)
      continue;
    built.tissues.tissues.push_back(tissue);
    built.categories.push_back(resolved.categories[t]);
    built.citations.push_back(resolved.citations[t]);
  }
  const auto add = [&](std::int32_t label, const std::string& name, const std::string& category) {
    if (final_histogram.count(label) == 0)
      return;
    const TissueCategory& c = tissue_category(category);
    Tissue t = make_tissue(label, name, c);
    for (const auto& other : built.tissues.tissues) {
      if (other.name == name)
        t.name = name + "_added";
    }
    built.tissues.tissues.push_back(t);
    built.categories.push_back(category);
    built.citations.push_back(c.citation);
  };
  add(added.skin, "skin", "skin");
  add(added.fat, "subcutaneous_fat", "fat");
  add(added.other_fat, "other_fat", "fat");
  add(added.soft, "soft_tissue", "soft_tissue");
}

/// Step 8: checks that the tissue forms one 6-connected conductor.
/// \throws Error otherwise (a bug of the builder).
void check_one_conductor(const Grid& grid, const LabelVolume& vol, SubjectBuildReport& report) {
  const auto n = static_cast<std::size_t>(grid.n_voxels());
  Mask tissue(n, 0);
  for (std::size_t q = 0; q < n; ++q)
    tissue[q] = vol.labels[q] != 0;
  const auto parts = image_ops::connected_components(grid, tissue);
  report.n_components = static_cast<std::int64_t>(parts.count());
  if (parts.count() != 1) {
    throw Error("subject builder: the result has " + std::to_string(parts.count()) +
                " 6-connected components (largest " +
                std::to_string(parts.sizes.size() > 1 ? parts.sizes[1] : 0) +
                " voxels); expected one (this is a bug)");
  }
}

/// The thicknesses of the skin and of the subcutaneous fat, sampled at their inner faces;
/// warns when the mean skin thickness is more than a voxel off the requested one.
void measure_thicknesses(const Grid& grid, const LabelVolume& vol, const std::vector<float>& depth,
                         const AddedLabels& added, const SubjectBuildParams& params,
                         SubjectBuildReport& report) {
  const std::int32_t skin_label = added.skin;
  const std::int32_t fat_label = added.fat;
  std::vector<double> skin_samples;
  std::vector<double> fat_samples;
  for_each_voxel(grid, [&](std::int64_t q, std::int64_t i, std::int64_t j, std::int64_t k) {
    const std::int32_t l = vol.labels[static_cast<std::size_t>(q)];
    if (l != skin_label && l != fat_label)
      return;
    bool inner = false;
    for_each_neighbour(grid, q, i, j, k, [&](std::int64_t p) {
      const std::int32_t m = vol.labels[static_cast<std::size_t>(p)];
      inner = inner || (m != 0 && m != skin_label && (l == skin_label || m != fat_label));
    });
    if (inner)
      (l == skin_label ? skin_samples : fat_samples).push_back(depth[static_cast<std::size_t>(q)]);
  });
  report.skin = statistics(skin_samples);
  for (auto& s : fat_samples)
    s -= report.skin.mean_m;
  report.fat = statistics(fat_samples);
  if (report.skin.n_samples > 0 &&
      std::abs(report.skin.mean_m - params.skin_thickness_m) > grid.spacing_m.maxCoeff()) {
    report.warnings.push_back("mean skin thickness " + mm(report.skin.mean_m) +
                              " mm differs from the requested " + mm(params.skin_thickness_m) +
                              " mm by more than a voxel");
  }
}

} // namespace

SubjectBuildParams read_subject_build_params(ConfigReader& section) {
  using units::mm_to_m;
  SubjectBuildParams p;
  const auto labels = section.optional_path(
      "labels", "label table instead of a scheme: TSV (label, name, optional class, "
                "sigma_S_per_m, ...) or a JSON tissue table; relative to the config's folder");
  p.scheme = section.optional<std::string>(
      "scheme", p.scheme, one_of({"total", "total_mr", "musclemap"}),
      "built-in label scheme of the segmentation: total (TotalSegmentator CT), total_mr, "
      "musclemap; not with labels");
  if (labels) {
    if (section.has("scheme"))
      section.fail("labels", "give either scheme or labels, not both");
    p.label_table = *labels;
  }
  p.muscles = section.optional<std::vector<std::string>>(
      "muscles", {}, {},
      "muscles of interest (names or ids): the region of interest; empty: every muscle");
  std::vector<std::string> categories = category_names();
  categories.insert(categories.begin(), "");
  const auto unknown = section.optional<std::string>(
      "unknown_as", "", one_of(categories),
      "tissue category for ids the scheme does not know; empty: an error listing them");
  if (!unknown.empty())
    p.unknown_as = unknown;
  p.margin_m = mm_to_m(section.optional<double>("margin_mm", units::m_to_mm(p.margin_m),
                                                in_range(0.0, 1000.0),
                                                "margin around the muscles of interest"));
  p.voxel_m = mm_to_m(section.optional<double>(
      "voxel_mm", 0.0, in_range(0.0, 50.0),
      "resample to isotropic voxels of this size; 0: keep the segmentation's voxels"));
  p.skin_thickness_m = mm_to_m(section.optional<double>(
      "skin_mm", units::m_to_mm(p.skin_thickness_m), in_range(0.05, 20.0), "skin thickness"));
  p.fat_thickness_m = mm_to_m(section.optional<double>(
      "fat_mm", units::m_to_mm(p.fat_thickness_m), in_range(0.0, 200.0),
      "subcutaneous fat thickness when neither a fat mask nor a CT gives it"));
  p.closing_m = mm_to_m(section.optional<double>(
      "closing_mm", units::m_to_mm(p.closing_m), in_range(0.0, 100.0),
      "without an image: closing radius that bridges gaps between tissues"));
  p.modality = section.optional<std::string>("modality", p.modality, one_of({"auto", "ct", "mr"}),
                                             "modality of the image given with --image");
  p.body_threshold_HU = section.optional<double>(
      "body_HU", p.body_threshold_HU, in_range(-1100.0, 3000.0), "CT: body outline threshold [HU]");
  p.fat_min_HU = section.optional<double>("fat_min_HU", p.fat_min_HU, in_range(-1100.0, 3000.0),
                                          "CT: fat range minimum [HU]; < fat_max_HU");
  p.fat_max_HU = section.optional<double>("fat_max_HU", p.fat_max_HU, in_range(-1100.0, 3000.0),
                                          "CT: fat range maximum [HU]");
  if (!(p.fat_min_HU < p.fat_max_HU))
    section.fail("fat_min_HU", "must be below fat_max_HU = " + format_number(p.fat_max_HU));
  p.wall_closing_m = mm_to_m(section.optional<double>(
      "wall_closing_mm", units::m_to_mm(p.wall_closing_m), in_range(0.0, 100.0),
      "CT: closing radius of the muscle wall that separates subcutaneous from visceral fat"));
  return p;
}

nlohmann::json to_json(const SubjectBuildParams& p) {
  using units::m_to_mm;
  nlohmann::json j = {{"muscles", p.muscles},
                      {"unknown_as", p.unknown_as.value_or("")},
                      {"margin_mm", m_to_mm(p.margin_m)},
                      {"voxel_mm", m_to_mm(p.voxel_m)},
                      {"skin_mm", m_to_mm(p.skin_thickness_m)},
                      {"fat_mm", m_to_mm(p.fat_thickness_m)},
                      {"closing_mm", m_to_mm(p.closing_m)},
                      {"modality", p.modality},
                      {"body_HU", p.body_threshold_HU},
                      {"fat_min_HU", p.fat_min_HU},
                      {"fat_max_HU", p.fat_max_HU},
                      {"wall_closing_mm", m_to_mm(p.wall_closing_m)}};
  if (p.label_table.empty())
    j["scheme"] = p.scheme;
  else
    j["labels"] = p.label_table.string();
  return j;
}

BuiltSubject build_subject(const SubjectBuildInputs& inputs, const SubjectBuildParams& params) {
  check_params(params);
  const LabelVolume& seg = inputs.segmentation;
  BuiltSubject built;
  SubjectBuildReport& report = built.report;
  report.input_size = seg.size;

  // 1. Labels: names, classes, conductivities; muscles present and named.
  const ResolvedLabels labels = resolve_labels(seg, inputs.segmentation_name, params, report);
  // Image and fat mask on the segmentation's grid.
  check_inputs_on_grid(inputs);

  // 2. Region of interest, cropped and resampled.
  const VoxelRange range = labelled_range(seg, labels.muscles, params);
  const Box box = region_of_interest(seg, range, !inputs.image.has_value(), params, report);
  Cropped cropped = crop_inputs(inputs, box, params);
  LabelVolume& vol = cropped.vol;
  const Grid grid = image_ops::grid_of(vol);

  // 3. Body outline.
  Mask body = body_outline(grid, cropped, params, report);

  // 4. Parts of the body: keep the one with the named muscles (or the largest).
  keep_one_part(grid, labels, body, vol, report);

  // 5. Skin: within `skin` of the surface, and every body voxel with a face on the outside.
  const std::vector<float> depth = depth_below_surface(grid, body);
  const Mask skin = skin_layer(grid, body, depth, params);
  const AddedLabels added = added_labels(labels.max_known_label);

  // 6. Subcutaneous fat, 7. soft tissue; the tissue table.
  const FatLayers fat = fat_layers(grid, body, skin, depth, cropped, params, report);
  label_layers(body, skin, fat, added, vol, report);
  make_tissue_table(labels, added, vol, built);

  // 8. One conductor; thicknesses of the skin and the subcutaneous fat; the cut muscles.
  check_one_conductor(grid, vol, report);
  report.cut_muscles = cut_muscles(vol, built.tissues, report.muscles);
  measure_thicknesses(grid, vol, depth, added, params, report);
  built.volume = std::move(vol);
  for (const auto& w : report.warnings)
    log_warning("subject: ", w);
  return built;
}

nlohmann::json to_json(const BuiltSubject& built) {
  const SubjectBuildReport& r = built.report;
  nlohmann::json j = to_json(built.volume, summarise_labels(built.volume, built.tissues));
  for (auto& l : j["labels"]) {
    for (std::size_t t = 0; t < built.tissues.tissues.size(); ++t) {
      const Tissue& tissue = built.tissues.tissues[t];
      if (tissue.label != l["label"].get<std::int32_t>())
        continue;
      l["category"] = built.categories[t];
      if (tissue.tissue_class == TissueClass::muscle) {
        l["sigma_l_S_per_m"] = tissue.sigma_l_S_per_m;
        l["sigma_t_S_per_m"] = tissue.sigma_t_S_per_m;
      } else {
        l["sigma_S_per_m"] = tissue.sigma_l_S_per_m;
      }
      l["citation"] = built.citations[t];
    }
  }
  nlohmann::json unknown = nlohmann::json::array();
  for (const auto& [label, count] : r.unknown_labels)
    unknown.push_back({{"label", label}, {"voxels", count}});
  j["labels_source"] = r.labels_source;
  j["unknown_labels"] = unknown;
  j["muscles_of_interest"] = r.muscles;
  j["region_of_interest"] = {{"input_size", r.input_size},
                             {"first_voxel", r.roi_first},
                             {"size_in_input_voxels", r.roi_size},
                             {"cut_faces", r.cut_faces}};
  nlohmann::json cut = nlohmann::json::array();
  for (const auto& m : r.cut_muscles) {
    nlohmann::json faces = nlohmann::json::object();
    for (std::size_t f = 0; f < m.faces.size(); ++f)
      faces[m.faces[f]] = m.voxels[f];
    cut.push_back({{"label", m.label},
                   {"name", m.name},
                   {"faces_voxels", faces},
                   {"of_interest", m.of_interest}});
  }
  j["region_of_interest"]["cut_muscles"] = cut;
  j["body"] = {{"modality", r.modality},
               {"source", r.body_source},
               {"threshold", r.body_threshold},
               {"n_parts", r.n_parts},
               {"dropped_labelled_voxels", r.n_dropped_voxels},
               {"dropped_labels", r.dropped_labels},
               {"labelled_voxels_made_skin", r.n_skin_over_labels},
               {"n_components", r.n_components}};
  j["skin_thickness"] = to_json(r.skin);
  j["fat_thickness"] = to_json(r.fat);
  j["fat_thickness"]["source"] = r.fat_source;
  j["warnings"] = r.warnings;
  return j;
}

void write_built_subject(const fs::path& dir, const std::string& name, const BuiltSubject& built) {
  ensure_output_dir(dir);
  write_label_volume(dir / "labels.nii.gz", built.volume);
  nlohmann::json tissues = to_json(built.tissues);
  for (std::size_t t = 0; t < built.citations.size(); ++t)
    tissues["tissues"][t]["citation"] = built.citations[t];
  write_text_file(dir / "tissues.json", tissues.dump(2) + "\n");
  write_text_file(dir / "subject_report.json", to_json(built).dump(2) + "\n");
  write_subject_file(dir / "subject.json", name, "labels.nii.gz", "tissues.json");
  // A table template in the format --labels reads: edit names, classes or conductivities and
  // build again with `--labels labels_template.tsv`.
  std::string tsv =
      "label\tname\tclass\tsigma_S_per_m\tsigma_l_S_per_m\tsigma_t_S_per_m\tcitation\n";
  for (std::size_t t = 0; t < built.tissues.tissues.size(); ++t) {
    const Tissue& x = built.tissues.tissues[t];
    const bool anisotropic = x.tissue_class == TissueClass::muscle;
    tsv += std::to_string(x.label) + "\t" + x.name + "\t" + to_string(x.tissue_class) + "\t" +
           (anisotropic ? std::string() : format_number(x.sigma_l_S_per_m)) + "\t" +
           (anisotropic ? format_number(x.sigma_l_S_per_m) + "\t" + format_number(x.sigma_t_S_per_m)
                        : std::string("\t")) +
           "\t" + (t < built.citations.size() ? built.citations[t] : std::string()) + "\n";
  }
  write_text_file(dir / "labels_template.tsv", tsv);
}

} // namespace myotwin::anatomy
