#pragma once

/// \file subject_model.hpp
/// A subject's forward model as the earlier stages left it: the anatomy (an `myotwin anatomy`
/// folder), the mesh (mesh.vtu), the electrodes placed again from the config, and their lead
/// fields (leadfields.h5, read only when its key matches this mesh, these conductivities and
/// electrodes), with the transfer function MUAP computation uses. Shared by `myotwin simulate`,
/// the model-informed inversion and the benchmarks; where the files sit in an output folder is
/// the command line's business (apps/myotwin/layout.hpp).

#include <filesystem>
#include <memory>
#include <string>

#include <Eigen/Core>

#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/forward/conductor/lead_field_cache.hpp"
#include "myotwin/forward/conductor/point_locator.hpp"
#include "myotwin/forward/electrodes/electrodes.hpp"
#include "myotwin/forward/source/muap.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin::forward {

/// See the file comment. Not copyable (the transfer function refers to the members).
struct SubjectForwardModel {
  anatomy::TissueTable tissues;
  anatomy::SubjectAnatomy anatomy;
  meshing::TetMesh mesh;
  ElectrodeLayout layout;
  LeadFieldCache lead_fields;
  std::unique_ptr<PointLocator> locator;
  /// Unit current at fibre points -> potentials at the electrodes (reciprocity through
  /// lead_fields); refers to `locator` and `lead_fields`.
  TransferFunction transfer;
  /// #skin nodes x 3 positions [m] (nodes of the mesh's boundary faces), for depths.
  Eigen::MatrixX3d skin_points_m;
  /// Fibre points of the anatomy that lie outside the mesh (just outside a meshed muscle, where
  /// the anatomy's fibres reach beyond the mesh's smoothed muscle surface): the transfer
  /// function takes each at the nearest muscle tet (the tet whose centroid is nearest, with its
  /// barycentric weights clamped to >= 0 and renormalised) instead of stopping.
  std::int64_t fibre_points_moved = 0;
  double fibre_points_moved_max_m = 0.0; ///< the farthest of them from its tet's centroid [m]

  SubjectForwardModel() = default;
  SubjectForwardModel(const SubjectForwardModel&) = delete;
  SubjectForwardModel& operator=(const SubjectForwardModel&) = delete;
};

/// Like lead_field_transfer_function(), but a point outside the mesh (a fibre point just
/// outside the meshed muscle) is taken at the muscle tet whose centroid is nearest, its
/// barycentric weights there clamped to >= 0 and renormalised, instead of stopping the run.
/// Refers to `locator` and `lead_fields_V_per_A` (keep them alive).
TransferFunction nearest_muscle_transfer_function(const meshing::TetMesh& mesh,
                                                  const anatomy::TissueTable& tissues,
                                                  const PointLocator& locator,
                                                  const Eigen::MatrixXd& lead_fields_V_per_A);

/// The files a subject's forward model is read from.
struct SubjectModelFiles {
  std::filesystem::path subject;     ///< subject.json (its tissue table)
  std::filesystem::path anatomy_dir; ///< the anatomy folder (motor_units.h5, fibres)
  std::filesystem::path mesh;        ///< mesh.vtu
  std::filesystem::path lead_fields; ///< leadfields.h5
  /// Said after the error when the lead fields are of another mesh or electrodes (e.g. which
  /// command to rerun); may be empty.
  std::string rerun_hint;
};

/// Loads the forward model from `files`, with the electrodes of `electrodes` and the grounded
/// node `reference_node` (-1: default) of the config.
/// \throws IoError naming a missing or unreadable file; BadInput when the lead fields were
/// computed for another mesh, conductivities or electrodes (then `files.rerun_hint`).
std::unique_ptr<SubjectForwardModel> load_subject_forward_model(const SubjectModelFiles& files,
                                                                const ElectrodeConfig& electrodes,
                                                                std::int64_t reference_node);

} // namespace myotwin::forward
