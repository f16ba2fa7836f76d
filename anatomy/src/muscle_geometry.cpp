#include "myotwin/anatomy/muscle_geometry.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>

#include <Eigen/Eigenvalues>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::anatomy {

namespace {

std::string muscle_id(const std::string& name, std::int32_t label) {
  return "muscle " + name + " (label " + std::to_string(label) + ")";
}

/// A box of voxels [lo, hi] (inclusive) with a local mask.
struct LocalBox {
  std::array<std::int64_t, 3> lo{0, 0, 0};
  std::array<std::int64_t, 3> n{0, 0, 0};
  [[nodiscard]] std::int64_t local(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return (i - lo[0]) + n[0] * ((j - lo[1]) + n[1] * (k - lo[2]));
  }
  [[nodiscard]] std::int64_t size() const { return n[0] * n[1] * n[2]; }
};

std::array<std::int64_t, 3> ijk_of(const LabelVolume& v, std::int64_t idx) {
  const std::int64_t i = idx % v.size[0];
  const std::int64_t j = (idx / v.size[0]) % v.size[1];
  const std::int64_t k = idx / (v.size[0] * v.size[1]);
  return {i, j, k};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

/// The voxels of a label (flat indices, increasing) and their bounding box [lo, hi] (inclusive).
struct LabelVoxels {
  std::vector<std::int64_t> all;
  std::array<std::int64_t, 3> lo{std::numeric_limits<std::int64_t>::max(),
                                 std::numeric_limits<std::int64_t>::max(),
                                 std::numeric_limits<std::int64_t>::max()};
  std::array<std::int64_t, 3> hi{-1, -1, -1};
};

/// Voxels of the label and their bounding box.
LabelVoxels label_voxels(const LabelVolume& volume, std::int32_t label) {
  LabelVoxels out;
  for (std::int64_t k = 0; k < volume.size[2]; ++k)
    for (std::int64_t j = 0; j < volume.size[1]; ++j)
      for (std::int64_t i = 0; i < volume.size[0]; ++i) {
        const std::int64_t idx = volume.index(i, j, k);
        if (volume.labels[static_cast<std::size_t>(idx)] != label)
          continue;
        out.all.push_back(idx);
        const std::array<std::int64_t, 3> c{i, j, k};
        for (int a = 0; a < 3; ++a) {
          out.lo[a] = std::min(out.lo[a], c[a]);
          out.hi[a] = std::max(out.hi[a], c[a]);
        }
      }
  return out;
}

/// 6-connected components of the label's voxels (breadth-first, in increasing voxel order:
/// deterministic): the component of every box voxel (-2: not muscle) and the component sizes.
std::pair<std::vector<std::int32_t>, std::vector<std::int64_t>>
label_components(const LabelVolume& volume, const LabelVoxels& voxels, const LocalBox& box) {
  const auto& lo = voxels.lo;
  const auto& hi = voxels.hi;
  std::vector<std::int32_t> comp(static_cast<std::size_t>(box.size()), -1); // -2: not muscle
  std::fill(comp.begin(), comp.end(), -2);
  for (const auto idx : voxels.all) {
    const auto c = ijk_of(volume, idx);
    comp[static_cast<std::size_t>(box.local(c[0], c[1], c[2]))] = -1;
  }
  std::vector<std::int64_t> sizes;
  std::deque<std::array<std::int64_t, 3>> queue;
  for (const auto idx : voxels.all) {
    const auto c0 = ijk_of(volume, idx);
    auto& start = comp[static_cast<std::size_t>(box.local(c0[0], c0[1], c0[2]))];
    if (start != -1)
      continue;
    const auto id_comp = static_cast<std::int32_t>(sizes.size());
    start = id_comp;
    std::int64_t n = 0;
    queue.push_back(c0);
    while (!queue.empty()) {
      const auto c = queue.front();
      queue.pop_front();
      ++n;
      for (int a = 0; a < 3; ++a)
        for (int s = -1; s <= 1; s += 2) {
          auto q = c;
          q[static_cast<std::size_t>(a)] += s;
          if (q[a] < lo[a] || q[a] > hi[a])
            continue;
          auto& cq = comp[static_cast<std::size_t>(box.local(q[0], q[1], q[2]))];
          if (cq == -1) {
            cq = id_comp;
            queue.push_back(q);
          }
        }
    }
    sizes.push_back(n);
  }
  return {std::move(comp), std::move(sizes)};
}

/// Keeps the components the policy asks for: sets g.component_sizes (largest first) and
/// g.voxels; returns the mask of kept voxels over `box`.
std::vector<std::uint8_t> keep_components(const LabelVolume& volume, const LabelVoxels& voxels,
                                          const LocalBox& box, ComponentPolicy policy,
                                          MuscleGeometry& g) {
  const auto [comp, sizes] = label_components(volume, voxels, box);
  std::vector<std::size_t> order(sizes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return sizes[a] > sizes[b]; });
  for (const auto o : order)
    g.component_sizes.push_back(sizes[o]);
  const auto largest = static_cast<std::int32_t>(order.front());
  std::vector<std::uint8_t> kept(static_cast<std::size_t>(box.size()), 0);
  for (const auto idx : voxels.all) {
    const auto c = ijk_of(volume, idx);
    const auto l = static_cast<std::size_t>(box.local(c[0], c[1], c[2]));
    if (policy == ComponentPolicy::keep_all || comp[l] == largest) {
      g.voxels.push_back(idx);
      kept[l] = 1;
    }
  }
  return kept;
}

/// Whether the kept voxels hold at least one 2x2x2 block of muscle voxels.
bool has_block(const LabelVoxels& voxels, const LocalBox& box,
               const std::vector<std::uint8_t>& kept) {
  const auto& lo = voxels.lo;
  const auto& hi = voxels.hi;
  bool found = false;
  for (std::int64_t k = lo[2]; k < hi[2] && !found; ++k)
    for (std::int64_t j = lo[1]; j < hi[1] && !found; ++j)
      for (std::int64_t i = lo[0]; i < hi[0] && !found; ++i) {
        bool all_in = true;
        for (int d = 0; d < 8 && all_in; ++d)
          all_in = kept[static_cast<std::size_t>(
                       box.local(i + (d & 1), j + ((d >> 1) & 1), k + ((d >> 2) & 1)))] != 0;
        found = all_in;
      }
  return found;
}

/// Volume [m^3], centroid [m] and principal variances [m^2] of the kept voxels into `g`;
/// returns their centres [m] (in g.voxels order) and the principal axis, its largest component
/// positive.
std::pair<std::vector<Eigen::Vector3d>, Eigen::Vector3d> principal_axis(const LabelVolume& volume,
                                                                        MuscleGeometry& g) {
  const auto n_kept = static_cast<double>(g.voxels.size());
  g.volume_m3 = n_kept * volume.voxel_volume_m3();
  std::vector<Eigen::Vector3d> points;
  points.reserve(g.voxels.size());
  Eigen::Vector3d sum = Eigen::Vector3d::Zero();
  for (const auto idx : g.voxels) {
    const auto c = ijk_of(volume, idx);
    points.push_back(volume.physical_point(static_cast<double>(c[0]), static_cast<double>(c[1]),
                                           static_cast<double>(c[2])));
    sum += points.back();
  }
  g.centroid_m = sum / n_kept;
  Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
  for (const auto& p : points) {
    const Eigen::Vector3d d = p - g.centroid_m;
    cov += d * d.transpose();
  }
  cov /= n_kept;
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> eig(cov);
  g.principal_variances_m2 = eig.eigenvalues().reverse();
  Eigen::Vector3d axis = eig.eigenvectors().col(2).normalized();
  {
    Eigen::Index imax = 0;
    axis.cwiseAbs().maxCoeff(&imax);
    if (axis[imax] < 0.0)
      axis = -axis;
  }
  return {std::move(points), axis};
}

/// The muscle voxels touching one of its tendons, and their mean axial position [m].
struct Contact {
  std::string name;
  int side = 0; ///< -1 origin, +1 insertion, 0 by position
  std::vector<std::int64_t> voxels;
  double mean_s = 0.0;
};

/// Tendon contacts (26-neighbourhood), per tendon of this muscle that it touches; the side from
/// the tendon's name (proximal / origin, distal / insertion), else 0.
std::vector<Contact> tendon_contacts(const LabelVolume& volume, const TissueTable& table,
                                     const std::string& muscle, const MuscleGeometry& g,
                                     const std::vector<Eigen::Vector3d>& points,
                                     const Eigen::Vector3d& axis) {
  std::vector<Contact> contacts;
  for (const auto& t : table.tissues) {
    if (t.tissue_class != TissueClass::tendon || t.muscle != muscle)
      continue;
    Contact c;
    c.name = t.name;
    if (contains(t.name, "proximal") || contains(t.name, "origin"))
      c.side = -1;
    else if (contains(t.name, "distal") || contains(t.name, "insertion"))
      c.side = 1;
    for (std::size_t v = 0; v < g.voxels.size(); ++v) {
      const auto p = ijk_of(volume, g.voxels[v]);
      bool touches = false;
      for (int dk = -1; dk <= 1 && !touches; ++dk)
        for (int dj = -1; dj <= 1 && !touches; ++dj)
          for (int di = -1; di <= 1 && !touches; ++di) {
            const std::int64_t i = p[0] + di, j = p[1] + dj, k = p[2] + dk;
            if (i < 0 || j < 0 || k < 0 || i >= volume.size[0] || j >= volume.size[1] ||
                k >= volume.size[2])
              continue;
            touches = volume.at(i, j, k) == t.label;
          }
      if (touches) {
        c.voxels.push_back(g.voxels[v]);
        c.mean_s += (points[v] - g.centroid_m).dot(axis);
      }
    }
    if (c.voxels.empty())
      continue;
    c.mean_s /= static_cast<double>(c.voxels.size());
    contacts.push_back(std::move(c));
  }
  return contacts;
}

/// Orients the axis by the named tendons (origin below the centroid / insertion above), then
/// gives each unnamed contact the side of its position.
void orient_by_tendons(std::vector<Contact>& contacts, Eigen::Vector3d& axis) {
  {
    double so = 0.0, si = 0.0;
    int no = 0, ni = 0;
    for (const auto& c : contacts) {
      if (c.side < 0) {
        so += c.mean_s;
        ++no;
      } else if (c.side > 0) {
        si += c.mean_s;
        ++ni;
      }
    }
    bool flip = false;
    if (no > 0 && ni > 0)
      flip = so / no > si / ni;
    else if (no > 0)
      flip = so / no > 0.0;
    else if (ni > 0)
      flip = si / ni < 0.0;
    if (flip) {
      axis = -axis;
      for (auto& c : contacts)
        c.mean_s = -c.mean_s;
    }
  }
  for (auto& c : contacts)
    if (c.side == 0)
      c.side = c.mean_s < 0.0 ? -1 : 1;
}

/// Faces of the volume that cut the muscle (at most two, most voxels first, at least 4 voxels
/// each): their voxels are ends. A voxel on an edge of the volume belongs to the first face only.
std::vector<std::vector<std::int64_t>> cut_faces_of(const LabelVolume& volume,
                                                    const std::vector<std::int64_t>& voxels) {
  std::vector<std::vector<std::int64_t>> cut_faces;
  constexpr std::size_t min_cut_voxels = 4;
  std::array<std::vector<std::int64_t>, 6> on_face;
  for (const auto idx : voxels) {
    const auto c = ijk_of(volume, idx);
    for (int a = 0; a < 3; ++a) {
      if (c[a] == 0)
        on_face[static_cast<std::size_t>(2 * a)].push_back(idx);
      if (c[a] == volume.size[a] - 1)
        on_face[static_cast<std::size_t>(2 * a + 1)].push_back(idx);
    }
  }
  std::array<std::size_t, 6> face_order{0, 1, 2, 3, 4, 5};
  std::stable_sort(face_order.begin(), face_order.end(), [&](std::size_t a, std::size_t b) {
    return on_face[a].size() > on_face[b].size();
  });
  for (const auto f : face_order) {
    if (on_face[f].size() >= min_cut_voxels && cut_faces.size() < 2)
      cut_faces.push_back(on_face[f]);
  }
  if (cut_faces.size() == 2) {
    std::vector<std::int64_t> second;
    std::set_difference(cut_faces[1].begin(), cut_faces[1].end(), cut_faces[0].begin(),
                        cut_faces[0].end(), std::back_inserter(second));
    cut_faces[1] = std::move(second);
    if (cut_faces[1].size() < min_cut_voxels)
      cut_faces.pop_back();
  }
  return cut_faces;
}

/// Centroid of voxels [m].
Eigen::Vector3d centroid_of(const LabelVolume& volume, const std::vector<std::int64_t>& voxels) {
  Eigen::Vector3d c = Eigen::Vector3d::Zero();
  for (const auto idx : voxels) {
    const auto p = ijk_of(volume, idx);
    c += volume.physical_point(static_cast<double>(p[0]), static_cast<double>(p[1]),
                               static_cast<double>(p[2]));
  }
  return Eigen::Vector3d(c / static_cast<double>(voxels.size()));
}

/// Orients the axis by the cut faces: with two, the axis from one cut to the other, largest
/// component positive, the origin (cut_faces[0]) at its start; with one, that cut is the origin,
/// at the lower end.
void orient_by_cut_faces(const LabelVolume& volume, const Eigen::Vector3d& centroid_m,
                         std::vector<std::vector<std::int64_t>>& cut_faces, Eigen::Vector3d& axis) {
  if (cut_faces.size() == 2) {
    Eigen::Vector3d from_to = centroid_of(volume, cut_faces[1]) - centroid_of(volume, cut_faces[0]);
    if (from_to.norm() > 0.0) {
      Eigen::Index imax = 0;
      from_to.cwiseAbs().maxCoeff(&imax);
      if (from_to[imax] < 0.0) {
        std::swap(cut_faces[0], cut_faces[1]);
        from_to = -from_to;
      }
      axis = from_to.normalized();
    }
  } else if (cut_faces.size() == 1 &&
             (centroid_of(volume, cut_faces[0]) - centroid_m).dot(axis) > 0.0) {
    axis = -axis; // the one cut is the origin, at the lower end
  }
}

/// The cross-sectional area profile [m^2] at profile_step_m [m] along the axis, centred on the
/// span of the axial positions `s` [m] (of voxels `voxel_extent` [m] long along the axis): each
/// voxel counts with the part of its projected extent that falls in the slab.
void area_profile(const LabelVolume& volume, const std::vector<double>& s, double voxel_extent,
                  double profile_step_m, MuscleGeometry& g) {
  std::vector<double> sorted = s;
  std::sort(sorted.begin(), sorted.end());
  const double width = std::max(profile_step_m, voxel_extent);
  const double span = g.axis_max_m - g.axis_min_m;
  const auto n_profile = static_cast<Eigen::Index>(std::floor(span / profile_step_m)) + 1;
  const double start =
      g.axis_min_m + 0.5 * (span - profile_step_m * static_cast<double>(n_profile - 1));
  g.profile_s_m.resize(n_profile);
  g.profile_area_m2.resize(n_profile);
  for (Eigen::Index p = 0; p < n_profile; ++p) {
    const double sp = start + profile_step_m * static_cast<double>(p);
    const double a = sp - 0.5 * width, b = sp + 0.5 * width;
    double overlap = 0.0;
    for (auto it = std::lower_bound(sorted.begin(), sorted.end(), a - 0.5 * voxel_extent);
         it != sorted.end() && *it < b + 0.5 * voxel_extent; ++it)
      overlap += std::max(0.0, std::min(b, *it + 0.5 * voxel_extent) -
                                   std::max(a, *it - 0.5 * voxel_extent));
    g.profile_s_m[p] = sp;
    g.profile_area_m2[p] = overlap / voxel_extent * volume.voxel_volume_m3() / width;
  }
}

/// A bone attachment of one end: the bone's name and the muscle voxels touching it.
struct BoneAttachment {
  std::string bone;
  std::vector<std::int64_t> voxels;
};

/// The bone attachments of the origin ([0]) and insertion ([1]) ends: per end, the muscle voxels
/// of that end's half along the axis (origin: s below the middle of the axial extent, insertion:
/// from it) touching (26-neighbourhood) a bone voxel, per bone; of the bones with at least
/// `min_voxels` such voxels, the one reaching furthest towards the end (ties: more voxels).
/// Empty where no bone qualifies.
std::array<BoneAttachment, 2> bone_attachments(const LabelVolume& volume, const TissueTable& table,
                                               const MuscleGeometry& g,
                                               const std::vector<double>& s, std::size_t min_voxels,
                                               double gap) {
  std::vector<std::pair<std::int32_t, std::string>> bones; // sorted by label
  for (const auto& t : table.tissues)
    if (t.tissue_class == TissueClass::bone)
      bones.emplace_back(t.label, t.name);
  std::sort(bones.begin(), bones.end());
  std::array<BoneAttachment, 2> out;
  if (bones.empty())
    return out;
  const double s_mid = 0.5 * (g.axis_min_m + g.axis_max_m);
  // Per end and bone (index into `bones`): the contact voxels and the extreme axial position.
  std::array<std::vector<std::vector<std::int64_t>>, 2> contact;
  std::array<std::vector<double>, 2> reach;
  for (int e = 0; e < 2; ++e) {
    contact[e].resize(bones.size());
    reach[e].assign(bones.size(), e == 0 ? std::numeric_limits<double>::max()
                                         : std::numeric_limits<double>::lowest());
  }
  // Neighbour offsets: the 26-neighbourhood, and every voxel whose centre lies within `gap` [m].
  std::vector<std::array<std::int64_t, 3>> offsets;
  {
    std::array<std::int64_t, 3> r{1, 1, 1};
    for (int a = 0; a < 3; ++a)
      r[a] = std::max<std::int64_t>(
          1, static_cast<std::int64_t>(std::floor(gap / volume.spacing_m[a])));
    for (std::int64_t dk = -r[2]; dk <= r[2]; ++dk)
      for (std::int64_t dj = -r[1]; dj <= r[1]; ++dj)
        for (std::int64_t di = -r[0]; di <= r[0]; ++di) {
          const Eigen::Vector3d d(static_cast<double>(di) * volume.spacing_m[0],
                                  static_cast<double>(dj) * volume.spacing_m[1],
                                  static_cast<double>(dk) * volume.spacing_m[2]);
          const bool neighbour = std::abs(di) <= 1 && std::abs(dj) <= 1 && std::abs(dk) <= 1;
          if ((di != 0 || dj != 0 || dk != 0) && (neighbour || d.norm() <= gap))
            offsets.push_back({di, dj, dk});
        }
  }
  std::vector<std::uint8_t> touched(bones.size());
  for (std::size_t v = 0; v < g.voxels.size(); ++v) {
    const auto p = ijk_of(volume, g.voxels[v]);
    std::fill(touched.begin(), touched.end(), 0);
    bool any = false;
    for (const auto& d : offsets) {
      const std::int64_t i = p[0] + d[0], j = p[1] + d[1], k = p[2] + d[2];
      if (i < 0 || j < 0 || k < 0 || i >= volume.size[0] || j >= volume.size[1] ||
          k >= volume.size[2])
        continue;
      const std::int32_t l = volume.at(i, j, k);
      const auto it = std::lower_bound(bones.begin(), bones.end(), l,
                                       [](const std::pair<std::int32_t, std::string>& b,
                                          std::int32_t x) { return b.first < x; });
      if (it != bones.end() && it->first == l) {
        touched[static_cast<std::size_t>(it - bones.begin())] = 1;
        any = true;
      }
    }
    if (!any)
      continue;
    const int e = s[v] < s_mid ? 0 : 1;
    for (std::size_t b = 0; b < bones.size(); ++b) {
      if (touched[b] == 0)
        continue;
      contact[e][b].push_back(g.voxels[v]);
      reach[e][b] = e == 0 ? std::min(reach[e][b], s[v]) : std::max(reach[e][b], s[v]);
    }
  }
  for (int e = 0; e < 2; ++e) {
    std::optional<std::size_t> best;
    for (std::size_t b = 0; b < bones.size(); ++b) {
      if (contact[e][b].size() < min_voxels)
        continue;
      if (!best) {
        best = b;
        continue;
      }
      const double d_b = e == 0 ? reach[e][b] : -reach[e][b];
      const double d_best = e == 0 ? reach[e][*best] : -reach[e][*best];
      if (d_b < d_best || (d_b == d_best && contact[e][b].size() > contact[e][*best].size()))
        best = b;
    }
    if (best) {
      out[static_cast<std::size_t>(e)].bone = bones[*best].second;
      out[static_cast<std::size_t>(e)].voxels = std::move(contact[e][*best]);
    }
  }
  return out;
}

/// Origin and insertion voxels of `g` and their sources: the tendon contacts, else the cut
/// faces, else end caps (the voxels within `cap` [m] of the muscle's end along the axis, at axial
/// positions `s` [m]). Throws BadInput when either is empty or they overlap.
void end_regions(const std::vector<Contact>& contacts,
                 const std::vector<std::vector<std::int64_t>>& cut_faces,
                 std::array<BoneAttachment, 2> attachments, const std::vector<double>& s,
                 double voxel_extent, double cap, const std::string& id, MuscleGeometry& g) {
  std::vector<std::int64_t> origin, insertion;
  for (const auto& c : contacts) {
    auto& target = c.side < 0 ? origin : insertion;
    target.insert(target.end(), c.voxels.begin(), c.voxels.end());
    (c.side < 0 ? g.origin_tendons : g.insertion_tendons).push_back(c.name);
  }
  if (!cut_faces.empty()) {
    origin = cut_faces[0];
    g.origin_source = EndSource::cut_face;
    if (cut_faces.size() == 2) {
      insertion = cut_faces[1];
      g.insertion_source = EndSource::cut_face;
    }
  }
  if (g.origin_source == EndSource::cut_face) {
    // Set above.
  } else if (origin.empty() && !attachments[0].voxels.empty()) {
    g.origin_source = EndSource::bone;
    g.origin_bone = attachments[0].bone;
    origin = std::move(attachments[0].voxels);
  } else if (origin.empty()) {
    g.origin_source = EndSource::end_cap;
    const double limit = g.axis_min_m - 0.5 * voxel_extent + cap;
    for (std::size_t v = 0; v < s.size(); ++v)
      if (s[v] <= limit)
        origin.push_back(g.voxels[v]);
  } else {
    g.origin_source = EndSource::tendon;
  }
  if (g.insertion_source == EndSource::cut_face) {
    // Set above.
  } else if (insertion.empty() && !attachments[1].voxels.empty()) {
    g.insertion_source = EndSource::bone;
    g.insertion_bone = attachments[1].bone;
    insertion = std::move(attachments[1].voxels);
  } else if (insertion.empty()) {
    g.insertion_source = EndSource::end_cap;
    const double limit = g.axis_max_m + 0.5 * voxel_extent - cap;
    for (std::size_t v = 0; v < s.size(); ++v)
      if (s[v] >= limit)
        insertion.push_back(g.voxels[v]);
  } else {
    g.insertion_source = EndSource::tendon;
  }
  for (auto* r : {&origin, &insertion}) {
    std::sort(r->begin(), r->end());
    r->erase(std::unique(r->begin(), r->end()), r->end());
  }
  if (origin.empty() || insertion.empty())
    throw BadInput(id + ": " + std::string(origin.empty() ? "origin" : "insertion") +
                   " region has 0 voxels: expected a non-empty origin and insertion");
  std::vector<std::int64_t> shared;
  std::set_intersection(origin.begin(), origin.end(), insertion.begin(), insertion.end(),
                        std::back_inserter(shared));
  if (!shared.empty())
    throw BadInput(id + ": origin (" + to_string(g.origin_source) + ", " +
                   std::to_string(origin.size()) + " voxels) and insertion (" +
                   to_string(g.insertion_source) + ", " + std::to_string(insertion.size()) +
                   " voxels) share " + std::to_string(shared.size()) +
                   " voxels: expected disjoint origin and insertion (cap thickness " +
                   format_number(units::m_to_mm(cap)) + " mm, muscle length " +
                   format_number(units::m_to_mm(g.length_m)) + " mm)");
  g.origin_voxels = std::move(origin);
  g.insertion_voxels = std::move(insertion);
}

/// Mean face area of a voxel [m^2].
double mean_face_area_m2(const LabelVolume& volume) {
  const auto& h = volume.spacing_m;
  return (h[0] * h[1] + h[1] * h[2] + h[0] * h[2]) / 3.0;
}

} // namespace

std::string to_string(ComponentPolicy policy) {
  return policy == ComponentPolicy::keep_largest ? "keep_largest" : "keep_all";
}

std::string to_string(EndSource source) {
  switch (source) {
  case EndSource::tendon:
    return "tendon";
  case EndSource::cut_face:
    return "cut_face";
  case EndSource::bone:
    return "bone";
  case EndSource::end_cap:
    break;
  }
  return "end_cap";
}

double default_attachment_min_m2() {
  return 50.0e-6;
}

double default_attachment_gap_m() {
  return 0.0;
}

std::string to_string(AttachmentRule rule) {
  return rule == AttachmentRule::bone ? "bone" : "end_cap";
}

MuscleGeometryParams read_muscle_geometry_params(ConfigReader& section) {
  MuscleGeometryParams p;
  p.profile_step_m = units::mm_to_m(section.optional<double>(
      "profile_step_mm", units::m_to_mm(p.profile_step_m), positive(),
      "step of the cross-sectional area profile along the muscle's principal axis"));
  const auto policy = section.optional<std::string>(
      "components", to_string(p.components), one_of({"keep_largest", "keep_all"}),
      "pieces kept of a muscle label split into several 6-connected components");
  p.components =
      policy == "keep_largest" ? ComponentPolicy::keep_largest : ComponentPolicy::keep_all;
  p.cap_fraction = section.optional<double>("cap_fraction", p.cap_fraction, in_range(0.0, 0.5),
                                            "end-cap thickness at an end without a tendon, as a "
                                            "fraction of muscle length; must be in (0, 0.5)");
  if (p.cap_fraction <= 0.0 || p.cap_fraction >= 0.5)
    section.fail("cap_fraction", "must be > 0 and < 0.5");
  p.cap_min_m = units::mm_to_m(section.optional<double>("cap_min_mm", units::m_to_mm(p.cap_min_m),
                                                        non_negative(),
                                                        "lower bound of the end-cap thickness"));
  const auto rule = section.optional<std::string>(
      "attachment", to_string(p.attachment), one_of({"bone", "end_cap"}),
      "origin/insertion of a muscle end without a tendon or cut face: 'bone' (where the muscle "
      "meets the bone nearest to that end, else the end cap) or 'end_cap'");
  p.attachment = rule == "bone" ? AttachmentRule::bone : AttachmentRule::end_cap;
  p.attachment_min_m2 = units::mm2_to_m2(section.optional<double>(
      "attachment_min_mm2", units::m2_to_mm2(p.attachment_min_m2), in_range(0.0, 1.0e5),
      "smallest muscle-bone contact (voxels times mean face area) taken as an attachment"));
  p.attachment_gap_m = units::mm_to_m(section.optional<double>(
      "attachment_gap_mm", units::m_to_mm(p.attachment_gap_m), in_range(0.0, 50.0),
      "muscle voxels within this distance of a bone voxel (centre to centre) meet it; 0: the "
      "26 neighbours only"));
  return p;
}

MuscleGeometry compute_muscle_geometry(const LabelVolume& volume, const TissueTable& table,
                                       std::int32_t label, const MuscleGeometryParams& params) {
  const Tissue* tissue = table.find(label);
  if (tissue == nullptr)
    throw BadInput("label " + std::to_string(label) +
                   ": not in the tissue table: expected a muscle label");
  const std::string id = muscle_id(tissue->name, label);
  if (tissue->tissue_class != TissueClass::muscle)
    throw BadInput(id + ": class = " + to_string(tissue->tissue_class) + ": expected class muscle");
  if (!(params.profile_step_m > 0.0))
    throw BadInput(id + ": profile_step = " + format_number(params.profile_step_m) +
                   " m: must be > 0");

  MuscleGeometry g;
  g.label = label;
  g.name = tissue->name;

  // 1. Voxels of the label and their bounding box.
  const LabelVoxels voxels = label_voxels(volume, label);
  g.n_voxels_label = static_cast<std::int64_t>(voxels.all.size());
  if (voxels.all.empty())
    throw BadInput(id + ": number of voxels = 0: expected at least one voxel with label " +
                   std::to_string(label));

  // 2. 6-connected components, kept by the policy.
  LocalBox box;
  box.lo = voxels.lo;
  for (int a = 0; a < 3; ++a)
    box.n[a] = voxels.hi[a] - voxels.lo[a] + 1;
  const std::vector<std::uint8_t> kept = keep_components(volume, voxels, box, params.components, g);

  // 3. Thickness: at least one 2x2x2 block of muscle voxels.
  if (!has_block(voxels, box, kept))
    throw BadInput(id + ": no block of 2x2x2 voxels in " + std::to_string(g.voxels.size()) +
                   " voxels: muscle is thinner than two voxels everywhere; expected a muscle at "
                   "least two voxels thick (finer voxels needed)");

  // 4. Volume, centroid, principal axis.
  auto [points, axis] = principal_axis(volume, g);

  // 5. Tendon contacts, per tendon of this muscle, and the axis oriented by them; without
  // tendons, by the faces of the volume that cut the muscle.
  std::vector<Contact> contacts = tendon_contacts(volume, table, tissue->name, g, points, axis);
  orient_by_tendons(contacts, axis);
  std::vector<std::vector<std::int64_t>> cut_faces;
  if (contacts.empty())
    cut_faces = cut_faces_of(volume, g.voxels);
  orient_by_cut_faces(volume, g.centroid_m, cut_faces, axis);
  g.axis = axis;

  // 6. Projections, length, area profile.
  std::vector<double> s(points.size());
  for (std::size_t v = 0; v < points.size(); ++v)
    s[v] = (points[v] - g.centroid_m).dot(axis);
  g.axis_min_m = *std::min_element(s.begin(), s.end());
  g.axis_max_m = *std::max_element(s.begin(), s.end());
  double voxel_extent = 0.0;
  for (int a = 0; a < 3; ++a)
    voxel_extent += std::abs(axis.dot(volume.direction.col(a))) * volume.spacing_m[a];
  g.length_m = g.axis_max_m - g.axis_min_m + voxel_extent;
  area_profile(volume, s, voxel_extent, params.profile_step_m, g);

  // 7. Origin and insertion.
  const double cap = std::max({params.cap_fraction * g.length_m, params.cap_min_m, voxel_extent});
  const double face_m2 = mean_face_area_m2(volume);
  std::array<BoneAttachment, 2> attachments;
  if (params.attachment == AttachmentRule::bone)
    attachments = bone_attachments(
        volume, table, g, s,
        std::max<std::size_t>(
            1, static_cast<std::size_t>(std::ceil(params.attachment_min_m2 / face_m2 - 1e-9))),
        params.attachment_gap_m);
  end_regions(contacts, cut_faces, std::move(attachments), s, voxel_extent, cap, id, g);
  g.origin_area_m2 = static_cast<double>(g.origin_voxels.size()) * face_m2;
  g.insertion_area_m2 = static_cast<double>(g.insertion_voxels.size()) * face_m2;
  return g;
}

} // namespace myotwin::anatomy
