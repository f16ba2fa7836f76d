#pragma once

/// \file subject_model.hpp
/// A subject's forward model as the earlier stages left it in an output folder: the anatomy
/// (OUT/anatomy), the mesh (OUT/mesh/mesh.vtu), the electrodes placed again from the config,
/// and their lead fields (OUT/forward/leadfields.h5, read only when its key matches this mesh,
/// these conductivities and electrodes), with the transfer function MUAP computation uses.
/// Shared by `myotwin simulate`, the model-informed inversion and the benchmarks.

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

  SubjectForwardModel() = default;
  SubjectForwardModel(const SubjectForwardModel&) = delete;
  SubjectForwardModel& operator=(const SubjectForwardModel&) = delete;
};

/// Loads the forward model of the subject `subject_file` from `out_dir`, with the electrodes of
/// `electrodes` and the grounded node `reference_node` (-1: default) of the config.
/// \throws IoError naming the missing file and the command that makes it (`myotwin anatomy
/// SUBJECT -o OUT`, ...); BadInput when the lead fields were computed for another mesh,
/// conductivities or electrodes (saying to rerun `myotwin leadfield` with the same config).
std::unique_ptr<SubjectForwardModel>
load_subject_forward_model(const std::filesystem::path& subject_file,
                           const std::filesystem::path& out_dir, const ElectrodeConfig& electrodes,
                           std::int64_t reference_node);

} // namespace myotwin::forward
