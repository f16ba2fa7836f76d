#include "myotwin/meshing/image_mesher.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <unordered_map>

#include "cgal_mesher.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::meshing {

using anatomy::LabelVolume;
using anatomy::TissueClass;

double MeshParams::cell_size_mm(const anatomy::Tissue& tissue) const {
  if (const auto it = tissue_cell_size_mm.find(tissue.name); it != tissue_cell_size_mm.end())
    return it->second;
  return class_cell_size_mm.at(tissue.tissue_class);
}

MeshParams read_mesh_params(ConfigReader& section) {
  MeshParams p;
  const MeshParams d;
  p.facet_angle_deg = section.optional<double>(
      "facet_angle_deg", d.facet_angle_deg, in_range(1e-3, 30.0),
      "lower bound of the angles of surface triangles (CGAL Mesh_3 facet_angle)");
  p.cell_radius_edge_ratio = section.optional<double>(
      "cell_radius_edge_ratio", d.cell_radius_edge_ratio, in_range(2.0, 1e6),
      "upper bound of circumradius / shortest edge of the tets (CGAL Mesh_3)");
  auto sizes = section.section("cell_size_mm");
  for (auto& [cls, size] : p.class_cell_size_mm) {
    const std::string name = anatomy::to_string(cls);
    size = sizes.optional<double>(name, size, in_range(0.05, 1000.0),
                                  "largest tet circumradius (mm) in tissues of class " + name);
  }
  auto distances = section.section("facet_distance_mm");
  for (auto& [cls, distance] : p.class_facet_distance_mm) {
    const std::string name = anatomy::to_string(cls);
    distance = distances.optional<double>(
        name, distance, positive(),
        "largest distance (mm) of surface triangles from the boundary of class " + name +
            " tissues (smaller of two sides)");
  }
  if (section.has("tissue_cell_sizes")) {
    for (auto& entry : section.required_array("tissue_cell_sizes")) {
      const auto name = entry.required<std::string>(
          "tissue", {}, "name of the tissue-table tissue whose cell size is overridden");
      const double size =
          entry.required<double>("cell_size_mm", in_range(0.05, 1000.0),
                                 "cell size of that tissue, overriding its class's cell_size_mm");
      if (!p.tissue_cell_size_mm.emplace(name, size).second)
        entry.fail("tissue", "tissue \"" + name + "\" is given twice");
    }
  }
  p.facet_size_factor = section.optional<double>(
      "facet_size_factor", d.facet_size_factor, positive(),
      "surface triangles are at most this times the smaller cell size of the two sides");
  p.min_island_voxels = section.optional<std::int64_t>(
      "min_island_voxels", d.min_island_voxels, int_in_range(0, 1000000000),
      "6-connected label pieces with fewer voxels merge into their most common neighbour; 0: none");
  p.max_voxel_size_mm =
      section.optional<double>("max_voxel_size_mm", d.max_voxel_size_mm, non_negative(),
                               "image axes with a coarser spacing are upsampled by an integer "
                               "factor before meshing; 0: never");
  p.lloyd =
      section.optional<bool>("lloyd", d.lloyd, {}, "Lloyd smoothing of the mesh (CGAL Mesh_3)");
  p.odt = section.optional<bool>("odt", d.odt, {}, "ODT smoothing of the mesh (CGAL Mesh_3)");
  p.perturb = section.optional<bool>("perturb", d.perturb, {},
                                     "sliver perturbation of the mesh (CGAL Mesh_3)");
  p.exude =
      section.optional<bool>("exude", d.exude, {}, "sliver exudation of the mesh (CGAL Mesh_3)");
  p.perturb_sliver_bound_deg = section.optional<double>(
      "perturb_sliver_bound_deg", d.perturb_sliver_bound_deg, in_range(0.0, 60.0),
      "perturbation works on tets whose smallest dihedral angle is below this; 0: CGAL's default");
  p.exude_sliver_bound_deg = section.optional<double>(
      "exude_sliver_bound_deg", d.exude_sliver_bound_deg, in_range(0.0, 60.0),
      "exudation works on tets whose smallest dihedral angle is below this; 0: CGAL's default "
      "(slow)");
  return p;
}

namespace {

/// 6-connected components of the voxels with label `l`; calls `f(voxels)` for each.
template <class F> void for_each_component(const LabelVolume& v, std::int32_t l, F&& f) {
  const auto n = static_cast<std::size_t>(v.n_voxels());
  std::vector<char> seen(n, 0);
  std::vector<std::int64_t> stack, comp;
  const std::int64_t nx = v.size[0], ny = v.size[1], nz = v.size[2];
  for (std::int64_t start = 0; start < v.n_voxels(); ++start) {
    if (seen[static_cast<std::size_t>(start)] || v.labels[static_cast<std::size_t>(start)] != l)
      continue;
    comp.clear();
    stack.assign(1, start);
    seen[static_cast<std::size_t>(start)] = 1;
    while (!stack.empty()) {
      const std::int64_t idx = stack.back();
      stack.pop_back();
      comp.push_back(idx);
      const std::int64_t i = idx % nx, j = (idx / nx) % ny, k = idx / (nx * ny);
      const std::int64_t nb[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k},
                                     {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
      for (const auto& q : nb) {
        if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[0] >= nx || q[1] >= ny || q[2] >= nz)
          continue;
        const std::int64_t w = v.index(q[0], q[1], q[2]);
        if (!seen[static_cast<std::size_t>(w)] && v.labels[static_cast<std::size_t>(w)] == l) {
          seen[static_cast<std::size_t>(w)] = 1;
          stack.push_back(w);
        }
      }
    }
    f(comp);
  }
}

/// Checks that every label of `input` is in `tissues` and every tissue named in
/// mesh.tissue_cell_sizes exists. \throws BadInput otherwise.
void check_tissues(const LabelVolume& input, const anatomy::TissueTable& tissues,
                   const MeshParams& params) {
  anatomy::check_labels_in_table(input, tissues, "label volume");
  for (const auto& [name, size] : params.tissue_cell_size_mm) {
    if (tissues.find(name) == nullptr)
      throw BadInput("mesh.tissue_cell_sizes: tissue \"" + name +
                     "\": no tissue of that name in the tissue table");
  }
}

/// The labels present in `volume` but 0, ascending (compact label c + 1 is present[c]).
/// \throws BadInput when there are none or more than 65535.
std::vector<std::int32_t> present_labels(const LabelVolume& volume) {
  std::vector<std::int32_t> present;
  {
    std::set<std::int32_t> s(volume.labels.begin(), volume.labels.end());
    s.erase(0);
    present.assign(s.begin(), s.end());
  }
  if (present.empty())
    throw BadInput("label volume: no foreground voxels (every label is 0): nothing to mesh");
  if (present.size() > 65535)
    throw BadInput("label volume: " + std::to_string(present.size()) +
                   " labels present: at most 65535 can be meshed");
  return present;
}

/// Step 2: sets the per-compact-label cell size, facet size and facet distance of `in` from the
/// tissues of `present`; returns the compact label of each present label.
std::map<std::int32_t, std::uint16_t> compact_sizes(const std::vector<std::int32_t>& present,
                                                    const anatomy::TissueTable& tissues,
                                                    const MeshParams& params,
                                                    detail::CgalInput& in) {
  std::map<std::int32_t, std::uint16_t> compact;
  in.n_labels = static_cast<int>(present.size());
  in.cell_size_mm.assign(present.size() + 1, 0.0);
  in.facet_size_mm.assign(present.size() + 1, 0.0);
  in.facet_distance_mm.assign(present.size() + 1, 0.0);
  for (std::size_t c = 0; c < present.size(); ++c) {
    compact[present[c]] = static_cast<std::uint16_t>(c + 1);
    const anatomy::Tissue* t = tissues.find(present[c]);
    in.cell_size_mm[c + 1] = params.cell_size_mm(*t);
    in.facet_size_mm[c + 1] = params.facet_size_factor * params.cell_size_mm(*t);
    in.facet_distance_mm[c + 1] = params.class_facet_distance_mm.at(t->tissue_class);
  }
  return compact;
}

/// Estimate before meshing: each label's volume over the volume of a regular tet of its cell
/// size (a^3 / (6 sqrt 2)), at about 1 KB per tet while CGAL refines (cells, vertices, queues),
/// and the time at `seconds_per_tet` (refinement, exudation and the quality report, measured on
/// the sample forearm: docs/reliability.md, "Time estimates").
/// \throws (as check_memory_estimate()) when that would not fit.
void check_meshing_estimate(const LabelVolume& volume, const std::vector<std::int32_t>& present,
                            const detail::CgalInput& in) {
  constexpr double seconds_per_tet = 5.0e-5;
  std::unordered_map<std::int32_t, double> n_voxels;
  for (const auto l : volume.labels)
    if (l != 0)
      n_voxels[l] += 1.0;
  const double voxel_mm3 = units::m_to_mm(volume.spacing_m[0]) *
                           units::m_to_mm(volume.spacing_m[1]) *
                           units::m_to_mm(volume.spacing_m[2]);
  double n_tets = 0.0, smallest = 1e300;
  for (std::size_t c = 0; c < present.size(); ++c) {
    const double a = in.cell_size_mm[c + 1];
    smallest = std::min(smallest, a);
    n_tets += n_voxels[present[c]] * voxel_mm3 / (a * a * a / (6.0 * std::sqrt(2.0)));
  }
  RunEstimate e;
  e.bytes = 1024.0 * n_tets;
  e.seconds = seconds_per_tet * n_tets;
  e.drivers = "about " + format_number(std::round(n_tets)) +
              " tets from the tissues' volumes and mesh.cell_size_mm: smallest " +
              format_number(smallest) + " mm";
  check_run_estimate(e, "meshing");
}

/// Step 3: the integer upsampling of each image axis coarser than max_voxel_size.
std::array<int, 3> upsampling_factors(const LabelVolume& volume, const MeshParams& params) {
  std::array<int, 3> up{1, 1, 1};
  for (int a = 0; a < 3; ++a) {
    const double h_mm = units::m_to_mm(volume.spacing_m[a]);
    int f = 1;
    if (params.max_voxel_size_mm > 0.0)
      f = std::max(1, static_cast<int>(std::ceil(h_mm / params.max_voxel_size_mm - 1e-9)));
    up[static_cast<std::size_t>(a)] = f;
  }
  return up;
}

/// Sets the size, spacing and compact labels of `in`: `volume` upsampled by `up`, with one
/// voxel of background around it (CGAL's labelled domain puts a boundary that meets the image
/// border at the outer voxel centres, half a voxel inside the voxels' extent).
void upsampled_labels(const LabelVolume& volume, const std::array<int, 3>& up,
                      const std::map<std::int32_t, std::uint16_t>& compact, detail::CgalInput& in) {
  for (int a = 0; a < 3; ++a) {
    in.size[static_cast<std::size_t>(a)] =
        volume.size[static_cast<std::size_t>(a)] * up[static_cast<std::size_t>(a)];
    in.spacing_mm[static_cast<std::size_t>(a)] =
        units::m_to_mm(volume.spacing_m[a]) / up[static_cast<std::size_t>(a)];
  }
  for (auto& n : in.size)
    n += 2;
  in.labels.assign(static_cast<std::size_t>(in.size[0] * in.size[1] * in.size[2]), 0);
  for (std::int64_t k = 0; k + 2 < in.size[2]; ++k)
    for (std::int64_t j = 0; j + 2 < in.size[1]; ++j)
      for (std::int64_t i = 0; i + 2 < in.size[0]; ++i) {
        const std::int32_t l = volume.at(i / up[0], j / up[1], k / up[2]);
        in.labels[static_cast<std::size_t>(
            (i + 1) + in.size[0] * ((j + 1) + in.size[1] * (k + 1)))] = l == 0 ? 0 : compact.at(l);
      }
}

/// Copies the meshing criteria and optimisation switches of `params`, and the seed, into `in`.
void set_criteria(const MeshParams& params, std::uint64_t seed, detail::CgalInput& in) {
  in.facet_angle_deg = params.facet_angle_deg;
  in.cell_radius_edge_ratio = params.cell_radius_edge_ratio;
  in.lloyd = params.lloyd;
  in.odt = params.odt;
  in.perturb = params.perturb;
  in.exude = params.exude;
  in.perturb_sliver_bound_deg = params.perturb_sliver_bound_deg;
  in.exude_sliver_bound_deg = params.exude_sliver_bound_deg;
  in.seed = seed;
}

/// Step 5: CGAL's nodes in the physical frame [m]. CGAL's point p [mm] lies at continuous index
/// p / h of the padded, upsampled grid (sub-voxel size h = spacing / f); sub-voxel s of the
/// unpadded grid has its centre at original index s / f - (f - 1) / (2 f). Hence, in
/// millimetres along the original axes, the point is p - (f + 1) / 2 * h from the centre of
/// voxel 0.
Eigen::MatrixX3d physical_nodes(const detail::CgalOutput& out, const LabelVolume& volume,
                                const std::array<int, 3>& up,
                                const std::array<double, 3>& spacing_mm) {
  Eigen::Vector3d shift_mm;
  for (int a = 0; a < 3; ++a) {
    const auto f = static_cast<std::size_t>(a);
    shift_mm[a] = -0.5 * (up[f] + 1) * spacing_mm[f];
  }
  const auto n_nodes = out.nodes_mm.rows();
  Eigen::MatrixX3d phys(n_nodes, 3);
  for (Eigen::Index i = 0; i < n_nodes; ++i) {
    const Eigen::Vector3d p_m = units::mm_to_m(1.0) * (out.nodes_mm.row(i).transpose() + shift_mm);
    phys.row(i) = (volume.origin_m + volume.direction * p_m).transpose();
  }
  return phys;
}

/// Canonical numbering: sets the nodes of `mesh` to `phys` sorted by position; returns the new
/// index of each old node.
std::vector<std::int32_t> sort_nodes(const Eigen::MatrixX3d& phys, TetMesh& mesh) {
  const auto n_nodes = phys.rows();
  std::vector<std::int32_t> order(static_cast<std::size_t>(n_nodes));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
    for (int c = 0; c < 3; ++c) {
      if (phys(a, c) != phys(b, c))
        return phys(a, c) < phys(b, c);
    }
    return a < b;
  });
  std::vector<std::int32_t> new_index(static_cast<std::size_t>(n_nodes));
  mesh.nodes_m.resize(n_nodes, 3);
  for (std::size_t i = 0; i < order.size(); ++i) {
    new_index[static_cast<std::size_t>(order[i])] = static_cast<std::int32_t>(i);
    mesh.nodes_m.row(static_cast<Eigen::Index>(i)) = phys.row(order[i]);
  }
  return new_index;
}

/// Canonical numbering: sets the tets of `mesh` (nodes renumbered by `new_index`, labels those
/// of the volume) sorted by their sorted node indices, each positively oriented; fibre
/// directions zero.
void sort_tets(const detail::CgalOutput& out, const std::vector<std::int32_t>& new_index,
               const std::vector<std::int32_t>& present, TetMesh& mesh) {
  const auto n_tets = out.tets.rows();
  std::vector<std::array<std::int32_t, 5>> rows(static_cast<std::size_t>(n_tets));
  for (Eigen::Index t = 0; t < n_tets; ++t) {
    std::array<std::int32_t, 4> v{};
    for (int c = 0; c < 4; ++c)
      v[static_cast<std::size_t>(c)] = new_index[static_cast<std::size_t>(out.tets(t, c))];
    std::sort(v.begin(), v.end());
    rows[static_cast<std::size_t>(t)] = {
        v[0], v[1], v[2], v[3],
        present[static_cast<std::size_t>(out.compact_labels[static_cast<std::size_t>(t)] - 1)]};
  }
  std::sort(rows.begin(), rows.end());
  mesh.tets.resize(n_tets, 4);
  mesh.labels.resize(static_cast<std::size_t>(n_tets));
  for (Eigen::Index t = 0; t < n_tets; ++t) {
    const auto& r = rows[static_cast<std::size_t>(t)];
    for (int c = 0; c < 4; ++c)
      mesh.tets(t, c) = r[static_cast<std::size_t>(c)];
    mesh.labels[static_cast<std::size_t>(t)] = r[4];
    if (tet_volume_m3(mesh, t) < 0.0)
      std::swap(mesh.tets(t, 2), mesh.tets(t, 3));
  }
  mesh.fibre_direction = Eigen::MatrixX3d::Zero(n_tets, 3);
}

} // namespace

std::vector<IslandReport> remove_small_islands(LabelVolume& volume, std::int64_t min_voxels) {
  std::map<std::int32_t, IslandReport> reports;
  if (min_voxels <= 0)
    return {};
  const std::int64_t nx = volume.size[0], ny = volume.size[1], nz = volume.size[2];
  for (int pass = 0; pass < 4; ++pass) {
    std::set<std::int32_t> labels(volume.labels.begin(), volume.labels.end());
    bool changed = false;
    for (const std::int32_t l : labels) {
      if (l == 0)
        continue;
      // The largest component of a label always stays, so no tissue disappears.
      std::vector<std::vector<std::int64_t>> small;
      std::size_t largest_size = 0;
      std::ptrdiff_t largest_small = -1;
      for_each_component(volume, l, [&](const std::vector<std::int64_t>& comp) {
        const bool is_small = static_cast<std::int64_t>(comp.size()) < min_voxels;
        if (comp.size() > largest_size) {
          largest_size = comp.size();
          largest_small = is_small ? static_cast<std::ptrdiff_t>(small.size()) : -1;
        }
        if (is_small)
          small.push_back(comp);
      });
      for (std::size_t c = 0; c < small.size(); ++c) {
        if (static_cast<std::ptrdiff_t>(c) == largest_small)
          continue;
        const auto& comp = small[c];
        // The most common other label among the face neighbours (ties: the smaller label).
        std::map<std::int32_t, std::int64_t> count;
        for (const std::int64_t idx : comp) {
          const std::int64_t i = idx % nx, j = (idx / nx) % ny, k = idx / (nx * ny);
          const std::int64_t nb[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k},
                                         {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
          for (const auto& q : nb) {
            std::int32_t other = 0; // outside the image is background
            if (q[0] >= 0 && q[1] >= 0 && q[2] >= 0 && q[0] < nx && q[1] < ny && q[2] < nz)
              other = volume.labels[static_cast<std::size_t>(volume.index(q[0], q[1], q[2]))];
            if (other != l)
              ++count[other];
          }
        }
        std::int32_t best = 0;
        std::int64_t best_n = -1;
        for (const auto& [other, n_other] : count) {
          if (n_other > best_n) {
            best = other;
            best_n = n_other;
          }
        }
        for (const std::int64_t idx : comp)
          volume.labels[static_cast<std::size_t>(idx)] = best;
        auto& r = reports[l];
        r.label = l;
        ++r.n_islands;
        r.n_voxels += static_cast<std::int64_t>(comp.size());
        changed = true;
      }
    }
    if (!changed)
      break;
  }
  std::vector<IslandReport> out;
  for (const auto& [l, r] : reports)
    out.push_back(r);
  return out;
}

ImageMeshResult mesh_label_volume(const LabelVolume& input, const anatomy::TissueTable& tissues,
                                  const MeshParams& params, std::uint64_t seed,
                                  const ProgressCallback& progress) {
  Stopwatch total;
  check_tissues(input, tissues, params);
  const std::vector<std::string> stages{"islands", "refine", "optimise", "frame"};
  ProgressReporter report(progress, "meshing", stages.size());

  // 1. Islands.
  ImageMeshResult result;
  LabelVolume volume = input;
  result.islands = remove_small_islands(volume, params.min_island_voxels);
  for (const auto& r : result.islands)
    log_info("meshing: label ", r.label, ": ", r.n_islands, " island(s) of ", r.n_voxels,
             " voxel(s) merged into their surroundings");
  report.advance();

  // 2. Compact labels, sizes per compact label; the memory they will need.
  const std::vector<std::int32_t> present = present_labels(volume);
  detail::CgalInput in;
  const auto compact = compact_sizes(present, tissues, params, in);
  check_meshing_estimate(volume, present, in);

  // 3. Upsampling of coarse axes.
  result.upsampling = upsampling_factors(volume, params);
  upsampled_labels(volume, result.upsampling, compact, in);
  set_criteria(params, seed, in);

  // 4. CGAL.
  const detail::CgalOutput out = detail::cgal_mesh(in, [&](const std::string& stage) {
    log_debug("meshing: CGAL ", stage);
    if (stage == "perturb" || stage == "lloyd")
      report.advance();
  });
  if (!(params.perturb || params.lloyd))
    report.advance();
  result.refine_time_s = out.refine_time_s;
  result.optimise_time_s = out.optimise_time_s;
  if (out.tets.rows() == 0)
    throw NumericalError("meshing: CGAL produced no tets (foreground too small for the criteria?)");

  // 5. Physical frame, canonical numbering: nodes by position, tets by sorted node indices.
  const Eigen::MatrixX3d phys = physical_nodes(out, volume, result.upsampling, in.spacing_mm);
  const std::vector<std::int32_t> new_index = sort_nodes(phys, result.mesh);
  sort_tets(out, new_index, present, result.mesh);
  report.advance();
  report.finish();
  result.total_time_s = total.elapsed_s();
  return result;
}

} // namespace myotwin::meshing
