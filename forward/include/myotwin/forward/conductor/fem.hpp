#pragma once
/// \file fem.hpp
/// P1 (linear tetrahedral) finite elements for the volume conductor
///
///   -div(sigma grad phi) = s   in the mesh,   n . sigma grad phi = 0   on its boundary,
///
/// with sigma a per-tet conductivity tensor [S/m], phi the potential [V] and s the current
/// sources [A/m^3]. The stiffness matrix K [S] maps nodal potentials [V] to nodal currents [A].
///
/// Gauge. With insulated boundaries K is singular: phi is defined up to a constant (K 1 = 0).
/// The gauge is fixed by grounding one node, the reference node g: its row and column are
/// replaced by the diagonal entry alone (ground_stiffness()) and its right-hand side entry is
/// set to zero, so phi_g = 0. For a right-hand side whose entries sum to zero this gives exactly
/// the Neumann solution with phi_g = 0; otherwise the surplus current leaves through g, which is
/// then the sink (reciprocity uses this: +1 A at an electrode, -1 A at g). The default reference
/// node is the lowest node index of the mesh (default_reference_node()).
///
/// A mesh of several disconnected parts leaves each part floating (singular); it is rejected.

#include <cstdint>
#include <vector>

#include <Eigen/Core>
#include <Eigen/SparseCore>

#include "myotwin/forward/conductor/conductivity.hpp"
#include "myotwin/forward/conductor/point_locator.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin::forward {

/// Column-major sparse matrix used for K.
using SparseMatrixd = Eigen::SparseMatrix<double, Eigen::ColMajor>;

/// Local stiffness matrix of one linear tet [S]: K_ij = V grad(l_i)^T sigma grad(l_j), with l_i
/// the barycentric coordinates. `vertices_m`: 4 x 3 vertex positions [m] (rows = local nodes);
/// `sigma_S_per_m`: 3 x 3 symmetric conductivity [S/m]. Returns 4 x 4, symmetric, rows summing
/// to zero. \throws BadInput if the tet's signed volume is not > 0.
Eigen::Matrix4d local_stiffness(const Eigen::Matrix<double, 4, 3>& vertices_m,
                                const Eigen::Matrix3d& sigma_S_per_m);

/// The global stiffness matrix K [S], #nodes x #nodes, symmetric, both triangles stored.
/// `nodes_m`: #nodes x 3 [m]; `tets`: #tets x 4 node indices (positive volume); `tensors`:
/// #tets x 6 conductivities [S/m] (conductivity_tensors()). Local matrices are computed in
/// parallel (OpenMP) and summed in tet order, so K is bit-identical at any thread count.
/// \throws BadInput for mismatched sizes, a node index out of range, or a tet of zero or
/// negative volume (naming the first such tet and its volume).
SparseMatrixd assemble_stiffness(const Eigen::Ref<const Eigen::MatrixX3d>& nodes_m,
                                 const meshing::TetArray& tets, const TensorArray& tensors);

/// Connected components of the nodes through the tets: #nodes component ids (-1 for nodes in
/// no tet), numbered 0.. in order of each component's lowest node index.
std::vector<std::int32_t> node_components(std::int64_t n_nodes, const meshing::TetArray& tets);

/// Checks that the tets form one connected conductor.
/// \throws BadInput naming the number of components and their tet counts ("the system is
/// singular in each").
void check_connected(const meshing::TetMesh& mesh);

/// The default reference (grounded) node: the lowest node index that belongs to a tet of the
/// largest connected component. \throws BadInput for a mesh without tets.
std::int64_t default_reference_node(const meshing::TetMesh& mesh);

/// K with node `reference_node` grounded: its row and column are cleared except the diagonal,
/// which keeps its value. Nodes in no tet (empty columns) get the mean diagonal of K, so they are
/// decoupled with potential zero. The result is symmetric positive definite for a connected mesh.
/// \throws BadInput if reference_node is out of range or in no tet.
SparseMatrixd ground_stiffness(const SparseMatrixd& stiffness, std::int64_t reference_node);

/// Lumped (row-sum) nodal volumes [m^3]: each tet gives a quarter of its volume to each of its
/// nodes. #nodes values, summing to the mesh volume.
Eigen::VectorXd lumped_node_volumes_m3(const Eigen::Ref<const Eigen::MatrixX3d>& nodes_m,
                                       const meshing::TetArray& tets);

/// Right-hand side [A] of a point current `current_A` [A] at located point `point` of
/// `locations`: current_A * weight_k to each of the 4 nodes of its tet (the P1 load of a Dirac
/// source). #nodes entries summing to current_A (the rounding residual is put on the node of
/// largest weight). \throws BadInput if the point is outside the mesh or out of range.
Eigen::VectorXd point_current_rhs(std::int64_t n_nodes, const PointLocations& locations,
                                  Eigen::Index point, double current_A);

/// Right-hand side [A] of a current `current_A` [A] spread uniformly (constant current density)
/// over the triangles `faces` (normally boundary faces: an electrode pad): each triangle gives
/// current_A * area / (3 * total area) to each of its nodes. #nodes entries summing to
/// current_A (rounding residual on the last node of the last face).
/// \throws BadInput for no faces, a node index out of range or a triangle of zero area.
Eigen::VectorXd pad_current_rhs(const Eigen::Ref<const Eigen::MatrixX3d>& nodes_m,
                                const meshing::TriArray& faces, double current_A);

} // namespace myotwin::forward
