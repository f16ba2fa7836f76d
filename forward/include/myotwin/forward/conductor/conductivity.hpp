#pragma once
/// \file conductivity.hpp
/// Per-tet conductivity tensors of the volume conductor [S/m]. Each tet's label is looked up in
/// the tissue table; muscle is transversely anisotropic,
///
///   sigma = sigma_t I + (sigma_l - sigma_t) f f^T,   f = the tet's unit fibre direction,
///
/// every other class is isotropic (sigma_l_S_per_m I; the table stores sigma_l = sigma_t for
/// isotropic classes). Tensors are stored as #tets x 6 rows (xx, yy, zz, xy, yz, xz).

#include <Eigen/Core>

#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin::forward {

/// #tets x 6 symmetric conductivity tensors [S/m], columns (xx, yy, zz, xy, yz, xz).
using TensorArray = Eigen::Matrix<double, Eigen::Dynamic, 6, Eigen::RowMajor>;

/// The symmetric 3 x 3 tensor [S/m] stored in row `t` of `tensors`.
Eigen::Matrix3d tensor_at(const TensorArray& tensors, Eigen::Index t);

/// Conductivity tensors of every tet of `mesh` [S/m] from its labels and `table`. Muscle tets
/// use their fibre direction (normalised here); other classes ignore it.
/// \throws BadInput naming the label (and its tet count) for a label not in the table, naming the
/// muscle label and the number of its tets whose fibre direction is zero or not finite, and for
/// a table conductivity that is not > 0.
TensorArray conductivity_tensors(const meshing::TetMesh& mesh, const anatomy::TissueTable& table);

/// #tets x 6 tensors of one isotropic conductivity `sigma_S_per_m` [S/m] for `n_tets` tets.
/// \throws BadInput if sigma is not > 0.
TensorArray isotropic_tensors(Eigen::Index n_tets, double sigma_S_per_m);

} // namespace myotwin::forward
