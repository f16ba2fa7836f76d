#pragma once
/// \file fibre_directions.hpp
/// Fibre direction per muscle tet. From the anatomy's fibres (traced along each muscle's
/// Laplace fibre field, `OUT/anatomy/fibers.vtp`): the tangents of the nearest fibre points of
/// the same muscle, averaged with weights 1 / distance (sign-aligned); without fibres, or for
/// a tet farther than `max_distance_m` from every fibre point of its muscle: the muscle's
/// principal axis (PCA of its tets). Only the axis matters (the conductivity uses f f^T).

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "myotwin/anatomy/polydata_io.hpp"
#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin::meshing {

/// How the directions of one muscle were found.
struct MuscleFibreDirections {
  std::int32_t label = 0;
  std::string name;
  std::int64_t n_tets = 0;
  std::int64_t n_from_fibres = 0; ///< tets given the local fibre tangent
  std::int64_t n_from_axis = 0;   ///< tets given the principal axis
  double mean_angle_to_axis_deg = 0.0;
};

/// Sets `mesh.fibre_direction` (unit vectors in muscle tets, zero elsewhere).
/// \param fibres the anatomy's fibres with the line array `muscle_label`, or null.
/// \param k nearest fibre points averaged per tet; \param max_distance_m search radius [m].
/// \throws BadInput when `fibres` lacks `muscle_label`.
std::vector<MuscleFibreDirections> assign_fibre_directions(TetMesh& mesh,
                                                           const anatomy::TissueTable& tissues,
                                                           const anatomy::Polylines* fibres,
                                                           int k = 8, double max_distance_m = 5e-3);

/// The report as JSON.
nlohmann::json to_json(const std::vector<MuscleFibreDirections>& report);

} // namespace myotwin::meshing
