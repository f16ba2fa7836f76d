#pragma once
// Cross-sections for the report: the label volume's voxel planes as Vega-Lite heatmaps coloured
// by tissue, the tet mesh cut by the same planes (the edges of the cut polygons as a rule layer
// over the heatmap), and the colours of the tissues, the same in every section.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "myotwin/anatomy/subject.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin::app::report {

/// The colour of each tissue label: skin, fat, bone and tendon by class, muscles from a palette
/// of distinct colours in the table's order.
std::map<std::int32_t, std::string> tissue_colours(const anatomy::TissueTable& table);

/// A voxel plane of the label volume: `at` across axis `axis` (0: sagittal i, 2: axial k).
struct VolumePlane {
  int axis = 2;
  std::int64_t at = 0;
  std::string title; ///< e.g. "axial section k = 40 (20 % of the volume)"
};

/// The planes the report draws: axial at 20, 40, 60, 80 % of k and the middle sagittal one.
std::vector<VolumePlane> report_planes(const anatomy::LabelVolume& volume);

/// A plane in space with the chart's in-plane axes: a point p is drawn at
/// u = (p - origin_m).e_u, w = (p - origin_m).e_w [mm].
struct ChartPlane {
  Eigen::Vector3d origin_m = Eigen::Vector3d::Zero();
  Eigen::Vector3d normal = Eigen::Vector3d::UnitZ();
  Eigen::Vector3d e_u = Eigen::Vector3d::UnitX();
  Eigen::Vector3d e_w = Eigen::Vector3d::UnitY();
};

/// `plane` as JSON {origin_m, normal, e_u, e_w} (the charts' `usermeta`, for the tests).
nlohmann::json to_json(const ChartPlane& plane);

/// The plane of `plane` in space, with the axes and origin cross_section_chart() draws in (mm
/// from the corner of the first voxel, along the volume's in-plane axes).
ChartPlane chart_plane(const anatomy::LabelVolume& volume, const VolumePlane& plane);

/// The heatmap of the labels in `plane` (every n-th voxel, at most 120 cells a side), coloured
/// by tissue with a legend; axes in mm (the scale). A top-level Vega-Lite spec with `title`,
/// `width`, `height` and one layer, to which tet_edges_layer() can be added.
nlohmann::json cross_section_chart(const anatomy::Subject& subject, const VolumePlane& plane);

/// The cut of `mesh` by `plane`: the edges of the polygons (triangles and quadrilaterals) where
/// the plane crosses the tets, each shared edge once, as a Vega-Lite rule layer whose data are
/// one row of parallel arrays u, w, u2, w2 [mm, rounded to 0.1 mm] that the layer flattens.
/// `n_segments` receives the number of edges.
nlohmann::json tet_edges_layer(const meshing::TetMesh& mesh, const ChartPlane& plane,
                               std::size_t& n_segments);

} // namespace myotwin::app::report
