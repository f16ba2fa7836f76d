#include "myotwin/forward/conductor/lead_field.hpp"

#include <string>

#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"

namespace myotwin::forward {

namespace {

std::string point_str(const Eigen::Vector3d& p) {
  return "(" + format_number(p.x()) + ", " + format_number(p.y()) + ", " + format_number(p.z()) +
         ") m";
}

} // namespace

Eigen::MatrixXd electrode_currents(const meshing::TetMesh& mesh, const PointLocator& locator,
                                   const std::vector<Electrode>& electrodes,
                                   std::int64_t reference_node) {
  const std::int64_t n_nodes = mesh.n_nodes();
  if (reference_node < 0 || reference_node >= n_nodes)
    throw BadInput("electrode_currents: reference node " + std::to_string(reference_node) +
                   ": expected 0 <= node < " + std::to_string(n_nodes));
  const auto n_el = static_cast<Eigen::Index>(electrodes.size());
  // Locate all point electrodes at once.
  Eigen::Matrix<double, Eigen::Dynamic, 3> points(n_el, 3);
  for (Eigen::Index e = 0; e < n_el; ++e)
    points.row(e) = electrodes[static_cast<std::size_t>(e)].position_m.transpose();
  const PointLocations located = locator.locate(points);
  Eigen::MatrixXd b(n_nodes, n_el);
  for (Eigen::Index e = 0; e < n_el; ++e) {
    const Electrode& el = electrodes[static_cast<std::size_t>(e)];
    if (el.pad_faces.rows() == 0) {
      if (located.tet[static_cast<std::size_t>(e)] < 0)
        throw BadInput("electrode " + std::to_string(e) + " at " + point_str(el.position_m) +
                       " is outside the mesh (tolerance " + format_number(locator.tolerance_m()) +
                       " m): expected a point electrode inside the conductor");
      b.col(e) = point_current_rhs(n_nodes, located, e, 1.0);
    } else {
      try {
        b.col(e) = pad_current_rhs(mesh.nodes_m, el.pad_faces, 1.0);
      } catch (const BadInput& err) {
        throw BadInput("electrode " + std::to_string(e) + " (pad): " + err.what());
      }
    }
  }
  b.row(reference_node).setZero();
  return b;
}

Eigen::MatrixXd lead_fields(const meshing::TetMesh& mesh, const PointLocator& locator,
                            SpdSolver& solver, std::int64_t reference_node,
                            const std::vector<Electrode>& electrodes,
                            const ProgressCallback& progress) {
  if (solver.size() != mesh.n_nodes())
    throw BadInput("lead_fields: solver of size " + std::to_string(solver.size()) +
                   " for a mesh of " + std::to_string(mesh.n_nodes()) +
                   " nodes: expected the mesh's grounded stiffness");
  const Eigen::MatrixXd b = electrode_currents(mesh, locator, electrodes, reference_node);
  try {
    return solver.solve(b, progress, "lead fields");
  } catch (const NumericalError& err) {
    throw NumericalError(std::string("lead fields (right-hand side i = electrode i): ") +
                         err.what());
  }
}

Eigen::MatrixXd
rereference_to_electrode(const Eigen::Ref<const Eigen::MatrixXd>& lead_fields_V_per_A,
                         Eigen::Index reference) {
  if (reference < 0 || reference >= lead_fields_V_per_A.cols())
    throw BadInput("rereference_to_electrode: reference electrode " + std::to_string(reference) +
                   ": expected 0 <= electrode < " + std::to_string(lead_fields_V_per_A.cols()));
  const Eigen::VectorXd ref = lead_fields_V_per_A.col(reference);
  return lead_fields_V_per_A.colwise() - ref;
}

Eigen::MatrixXd average_reference(const Eigen::Ref<const Eigen::MatrixXd>& lead_fields_V_per_A) {
  const Eigen::Index n_el = lead_fields_V_per_A.cols();
  if (n_el == 0)
    throw BadInput("average_reference: no electrodes: expected at least one column");
  Eigen::VectorXd mean = lead_fields_V_per_A.col(0);
  for (Eigen::Index e = 1; e < n_el; ++e)
    mean += lead_fields_V_per_A.col(e);
  mean /= static_cast<double>(n_el);
  return lead_fields_V_per_A.colwise() - mean;
}

VolumeConductor::VolumeConductor(const meshing::TetMesh& mesh, const anatomy::TissueTable& tissues,
                                 const VolumeConductorParams& params)
    : mesh_(mesh) {
  tensors_ = conductivity_tensors(mesh_, tissues);
  check_connected(mesh_);
  reference_node_ =
      params.reference_node < 0 ? default_reference_node(mesh_) : params.reference_node;
  locator_ = std::make_unique<PointLocator>(mesh_, params.locator_tolerance_m);
  const SparseMatrixd k = assemble_stiffness(mesh_.nodes_m, mesh_.tets, tensors_);
  solver_ = std::make_unique<SpdSolver>(ground_stiffness(k, reference_node_), params.solver);
  const SolverReport& r = solver_->report();
  log_debug("volume conductor: ", mesh_.n_nodes(), " nodes, ", mesh_.n_tets(), " tets, ",
            to_string(r.method), " solver, factor ", format_number(r.factor_bytes / 1e6),
            " MB, analysis ", format_number(r.analyse_s), " s, factorisation ",
            format_number(r.factor_s), " s");
}

Eigen::MatrixXd VolumeConductor::lead_fields(const std::vector<Electrode>& electrodes,
                                             const ProgressCallback& progress) {
  return forward::lead_fields(mesh_, *locator_, *solver_, reference_node_, electrodes, progress);
}

} // namespace myotwin::forward
