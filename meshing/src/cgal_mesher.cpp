// The only translation unit that includes CGAL (Mesh_3 is GPL-3.0-or-later; compiling it costs
// about 45 s). Everything here works in millimetres in the scaled index frame.

#include "cgal_mesher.hpp"

#include <algorithm>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>

#include <CGAL/Exact_predicates_inexact_constructions_kernel.h>
#include <CGAL/Image_3.h>
#include <CGAL/Labeled_mesh_domain_3.h>
#include <CGAL/Mesh_3/initialize_triangulation_from_labeled_image.h>
#include <CGAL/Mesh_complex_3_in_triangulation_3.h>
#include <CGAL/Mesh_criteria_3.h>
#include <CGAL/Mesh_triangulation_3.h>
#include <CGAL/Random.h>
#include <CGAL/make_mesh_3.h>
#include <CGAL/refine_mesh_3.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/timer.hpp"

namespace myotwin::meshing::detail {

namespace {

using Kernel = CGAL::Exact_predicates_inexact_constructions_kernel;
using Domain = CGAL::Labeled_mesh_domain_3<Kernel>;
using Tr = CGAL::Mesh_triangulation_3<Domain, CGAL::Default, CGAL::Sequential_tag>::type;
using C3t3 = CGAL::Mesh_complex_3_in_triangulation_3<Tr>;
using Criteria = CGAL::Mesh_criteria_3<Tr>;
using Point = Domain::Point_3;
using Index = Domain::Index;

/// Cell size per subdomain (compact label).
struct CellSize {
  const Domain* domain;
  const std::vector<double>* size_mm;
  double fallback_mm;
  Kernel::FT operator()(const Point&, const int dim, const Index& index) const {
    if (dim == 3) {
      const int s = domain->subdomain_index(index);
      if (s > 0 && s < static_cast<int>(size_mm->size()))
        return (*size_mm)[static_cast<std::size_t>(s)];
    }
    return fallback_mm;
  }
};

/// A facet criterion per surface patch (size or distance): the smaller of its two sides.
struct PatchField {
  const Domain* domain;
  const std::vector<double>* size_mm;
  double fallback_mm;
  Kernel::FT operator()(const Point&, const int dim, const Index& index) const {
    if (dim == 2) {
      const auto patch = domain->surface_patch_index(index);
      double s = fallback_mm;
      for (const int side : {patch.first, patch.second}) {
        if (side > 0 && side < static_cast<int>(size_mm->size()))
          s = std::min(s, (*size_mm)[static_cast<std::size_t>(side)]);
      }
      return s;
    }
    return fallback_mm;
  }
};

template <class Word> CGAL::Image_3 make_image(const CgalInput& in) {
  _image* im =
      _createImage(static_cast<std::size_t>(in.size[0]), static_cast<std::size_t>(in.size[1]),
                   static_cast<std::size_t>(in.size[2]), 1, in.spacing_mm[0], in.spacing_mm[1],
                   in.spacing_mm[2], sizeof(Word), WK_FIXED, SGN_UNSIGNED);
  if (im == nullptr)
    throw Error("meshing: could not allocate the CGAL image");
  auto* data = static_cast<Word*>(im->data);
  for (std::size_t v = 0; v < in.labels.size(); ++v)
    data[v] = static_cast<Word>(in.labels[v]);
  im->tx = im->ty = im->tz = 0.0f;
  return CGAL::Image_3(im);
}

} // namespace

CgalOutput cgal_mesh(const CgalInput& in, const std::function<void(const std::string&)>& stage) {
  namespace params = CGAL::parameters;
  // Same seed, same mesh: the domain's initial points and the optimisers draw from these.
  CGAL::Random rng(static_cast<unsigned int>(in.seed ^ (in.seed >> 32)));
  CGAL::get_default_random() = CGAL::Random(static_cast<unsigned int>(in.seed ^ (in.seed >> 32)));

  const CGAL::Image_3 image =
      in.n_labels <= 255 ? make_image<unsigned char>(in) : make_image<unsigned short>(in);
  const Domain domain = Domain::create_labeled_image_mesh_domain(
      image, params::relative_error_bound = in.relative_error_bound, params::p_rng = &rng);

  double max_facet = 0.0, max_cell = 0.0;
  for (std::size_t l = 1; l < in.cell_size_mm.size(); ++l) {
    max_facet = std::max(max_facet, in.facet_size_mm[l]);
    max_cell = std::max(max_cell, in.cell_size_mm[l]);
  }
  const CellSize cell_size{&domain, &in.cell_size_mm, max_cell};
  double max_distance = 0.0;
  for (std::size_t l = 1; l < in.facet_distance_mm.size(); ++l)
    max_distance = std::max(max_distance, in.facet_distance_mm[l]);
  const PatchField facet_size{&domain, &in.facet_size_mm, max_facet};
  const PatchField facet_distance{&domain, &in.facet_distance_mm, max_distance};
  const Criteria criteria(params::facet_angle = in.facet_angle_deg, params::facet_size = facet_size,
                          params::facet_distance = facet_distance,
                          params::cell_radius_edge_ratio = in.cell_radius_edge_ratio,
                          params::cell_size = cell_size);

  CgalOutput out;
  Stopwatch watch;
  if (stage)
    stage("refine");
  // Initial points on every connected component of every label (CGAL's default initial
  // points come from random rays and miss small components, e.g. a one-voxel label). The
  // initialisation prints to std::cout: keep it quiet.
  C3t3 c3t3;
  {
    std::ostringstream sink;
    std::streambuf* saved = std::cout.rdbuf(sink.rdbuf());
    try {
      if (in.n_labels <= 255)
        initialize_triangulation_from_labeled_image(c3t3, domain, image, criteria,
                                                    static_cast<unsigned char>(0));
      else
        initialize_triangulation_from_labeled_image(c3t3, domain, image, criteria,
                                                    static_cast<unsigned short>(0));
    } catch (...) {
      std::cout.rdbuf(saved);
      throw;
    }
    std::cout.rdbuf(saved);
  }
  CGAL::refine_mesh_3(c3t3, domain, criteria, params::no_perturb(), params::no_exude(),
                      params::no_lloyd(), params::no_odt());
  out.refine_time_s = watch.elapsed_s();
  Stopwatch optimise;
  // No time limits anywhere: a limit would make the mesh depend on the machine's speed.
  if (in.lloyd) {
    if (stage)
      stage("lloyd");
    CGAL::lloyd_optimize_mesh_3(c3t3, domain, params::time_limit = 0);
  }
  if (in.odt) {
    if (stage)
      stage("odt");
    CGAL::odt_optimize_mesh_3(c3t3, domain, params::time_limit = 0);
  }
  if (in.perturb) {
    if (stage)
      stage("perturb");
    CGAL::perturb_mesh_3(c3t3, domain, params::time_limit = 0,
                         params::sliver_bound = in.perturb_sliver_bound_deg);
  }
  if (in.exude) {
    if (stage)
      stage("exude");
    CGAL::exude_mesh_3(c3t3, params::time_limit = 0,
                       params::sliver_bound = in.exude_sliver_bound_deg);
  }
  out.optimise_time_s = optimise.elapsed_s();

  // Vertices numbered in the order cells first use them (the caller sorts canonically).
  std::map<Tr::Vertex_handle, std::int32_t> index;
  std::vector<Eigen::Vector3d> nodes;
  const auto n_cells = static_cast<Eigen::Index>(c3t3.number_of_cells_in_complex());
  out.tets.resize(n_cells, 4);
  out.compact_labels.reserve(static_cast<std::size_t>(n_cells));
  Eigen::Index t = 0;
  for (auto c = c3t3.cells_in_complex_begin(); c != c3t3.cells_in_complex_end(); ++c, ++t) {
    for (int v = 0; v < 4; ++v) {
      const auto vh = c->vertex(v);
      auto [it, inserted] = index.try_emplace(vh, static_cast<std::int32_t>(nodes.size()));
      if (inserted) {
        const auto& p = vh->point();
        nodes.emplace_back(CGAL::to_double(p.x()), CGAL::to_double(p.y()), CGAL::to_double(p.z()));
      }
      out.tets(t, v) = it->second;
    }
    out.compact_labels.push_back(static_cast<std::int32_t>(c3t3.subdomain_index(c)));
  }
  out.nodes_mm.resize(static_cast<Eigen::Index>(nodes.size()), 3);
  for (std::size_t i = 0; i < nodes.size(); ++i)
    out.nodes_mm.row(static_cast<Eigen::Index>(i)) = nodes[i].transpose();
  return out;
}

} // namespace myotwin::meshing::detail
