#pragma once
/// \file lead_field.hpp
/// Lead fields of electrodes by reciprocity. The lead field of electrode e is the potential
/// field phi_e [V/A] (one value per mesh node) when a unit current enters the conductor at e
/// and leaves it at the reference node g (the grounded node of the stiffness matrix, phi_e(g) =
/// 0): phi_e = K_g^-1 (b_e with its entry at g set to zero), with b_e the unit-current
/// right-hand side of the electrode. By reciprocity, a current source density s (whose currents
/// sum to zero, as all bioelectric sources do) makes electrode e read V_e - V_g = sum over nodes
/// of phi_e * s.
///
/// Electrodes are either points (the current enters at the point: barycentric weights onto
/// the 4 nodes of the containing tet; reciprocally, the electrode reads the P1-interpolated
/// potential there) or pads (a set of boundary triangles; the current enters with uniform
/// density, area / 3 per triangle to each of its nodes; the pad reads the area-weighted mean
/// potential over its surface, i.e. a pad that does not short-circuit the skin beneath it).
///
/// References: the lead fields are referenced to node g. Monopolar recordings against another
/// electrode r are L_e - L_r (rereference_to_electrode()); against the mean of all electrodes
/// L_e - mean_k L_k (average_reference()). The choice of g then cancels exactly, so the default
/// g (the lowest node index) only fixes the gauge.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <Eigen/Core>

#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/core/progress.hpp"
#include "myotwin/forward/conductor/fem.hpp"
#include "myotwin/forward/conductor/point_locator.hpp"
#include "myotwin/forward/conductor/sparse_solver.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin::forward {

/// An electrode of the volume conductor: a point, or a pad of boundary triangles.
struct Electrode {
  /// Position of a point electrode [m] (ignored for a pad).
  Eigen::Vector3d position_m = Eigen::Vector3d::Zero();
  /// #faces x 3 node indices of a pad's triangles (normally boundary faces); empty: a point
  /// electrode.
  meshing::TriArray pad_faces;
};

/// Unit-current right-hand sides [A] of `electrodes`: #nodes x #electrodes, column e for +1 A
/// at electrode e, with row `reference_node` set to zero (the grounded node is the sink).
/// `locator` must be built over `mesh`.
/// \throws BadInput naming the electrode and its position for a point electrode outside the
/// mesh, or naming the electrode for a bad pad (see pad_current_rhs()) or a reference node out
/// of range.
Eigen::MatrixXd electrode_currents(const meshing::TetMesh& mesh, const PointLocator& locator,
                                   const std::vector<Electrode>& electrodes,
                                   std::int64_t reference_node);

/// Lead fields [V/A]: #nodes x #electrodes, column e the potential for +1 A at electrode e and
/// -1 A at `reference_node`, which must be the node grounded in `solver`'s matrix
/// (ground_stiffness()). `progress` gets electrodes done of #electrodes (task "lead fields").
/// \throws BadInput (see electrode_currents()) or a solver size other than #nodes;
/// NumericalError naming the electrode when the iterative solver does not converge.
Eigen::MatrixXd lead_fields(const meshing::TetMesh& mesh, const PointLocator& locator,
                            SpdSolver& solver, std::int64_t reference_node,
                            const std::vector<Electrode>& electrodes,
                            const ProgressCallback& progress = {});

/// Lead fields referenced to electrode `reference` (column index): L.col(e) - L.col(reference)
/// for every column (the reference column becomes zero). \throws BadInput for a bad index.
Eigen::MatrixXd
rereference_to_electrode(const Eigen::Ref<const Eigen::MatrixXd>& lead_fields_V_per_A,
                         Eigen::Index reference);

/// Lead fields referenced to the mean of all electrodes: L.col(e) - (1/#electrodes) sum_k
/// L.col(k), the sum taken in column order. \throws BadInput for no columns.
Eigen::MatrixXd average_reference(const Eigen::Ref<const Eigen::MatrixXd>& lead_fields_V_per_A);

/// Options of VolumeConductor.
struct VolumeConductorParams {
  /// Linear solver options (method, memory budget, CG tolerance).
  SolverParams solver;
  /// Grounded node; -1 (default): default_reference_node().
  std::int64_t reference_node = -1;
  /// Point-location tolerance [m] (default 1 nm; see PointLocator).
  double locator_tolerance_m = 1e-9;
};

/// The finite-element volume conductor of one mesh, kept for all its electrodes: conductivity
/// tensors, the grounded stiffness matrix factorised once, and the point locator.
class VolumeConductor {
public:
  /// Builds tensors from `tissues`, checks connectivity, assembles, grounds and factorises.
  /// Keeps a copy of `mesh`. \throws BadInput (conductivity_tensors(), check_connected(),
  /// assemble_stiffness(), PointLocator), NumericalError (SpdSolver).
  VolumeConductor(const meshing::TetMesh& mesh, const anatomy::TissueTable& tissues,
                  const VolumeConductorParams& params = {});

  /// Lead fields of `electrodes` [V/A], #nodes x #electrodes (see lead_fields()).
  Eigen::MatrixXd lead_fields(const std::vector<Electrode>& electrodes,
                              const ProgressCallback& progress = {});

  /// The mesh.
  [[nodiscard]] const meshing::TetMesh& mesh() const { return mesh_; }
  /// The per-tet conductivities [S/m].
  [[nodiscard]] const TensorArray& tensors() const { return tensors_; }
  /// The point locator over the mesh.
  [[nodiscard]] const PointLocator& locator() const { return *locator_; }
  /// The solver of the grounded stiffness matrix.
  [[nodiscard]] SpdSolver& solver() { return *solver_; }
  /// The grounded node.
  [[nodiscard]] std::int64_t reference_node() const { return reference_node_; }

private:
  meshing::TetMesh mesh_;
  TensorArray tensors_;
  std::int64_t reference_node_ = 0;
  std::unique_ptr<PointLocator> locator_;
  std::unique_ptr<SpdSolver> solver_;
};

} // namespace myotwin::forward
