#include "myotwin/forward/conductor/conductivity.hpp"

#include <cmath>
#include <map>
#include <string>

#include "myotwin/core/error.hpp"

namespace myotwin::forward {

Eigen::Matrix3d tensor_at(const TensorArray& tensors, Eigen::Index t) {
  Eigen::Matrix3d s;
  s << tensors(t, 0), tensors(t, 3), tensors(t, 5), //
      tensors(t, 3), tensors(t, 1), tensors(t, 4),  //
      tensors(t, 5), tensors(t, 4), tensors(t, 2);
  return s;
}

TensorArray isotropic_tensors(Eigen::Index n_tets, double sigma_S_per_m) {
  if (!(sigma_S_per_m > 0.0) || !std::isfinite(sigma_S_per_m))
    throw BadInput("isotropic_tensors: sigma_S_per_m = " + format_number(sigma_S_per_m) +
                   ": must be > 0 and finite");
  TensorArray out = TensorArray::Zero(n_tets, 6);
  out.leftCols<3>().setConstant(sigma_S_per_m);
  return out;
}

TensorArray conductivity_tensors(const meshing::TetMesh& mesh, const anatomy::TissueTable& table) {
  const Eigen::Index n = mesh.n_tets();
  if (static_cast<Eigen::Index>(mesh.labels.size()) != n)
    throw BadInput("conductivity_tensors: mesh has " + std::to_string(n) + " tets but " +
                   std::to_string(mesh.labels.size()) + " labels: expected one label per tet");
  // Labels not in the table, with their tet counts, in label order.
  std::map<std::int32_t, std::int64_t> missing;
  std::map<std::int32_t, const anatomy::Tissue*> tissue_of;
  for (Eigen::Index t = 0; t < n; ++t) {
    const std::int32_t label = mesh.labels[static_cast<std::size_t>(t)];
    if (tissue_of.count(label) != 0)
      continue;
    const anatomy::Tissue* tissue = table.find(label);
    if (tissue == nullptr)
      ++missing[label];
    else
      tissue_of[label] = tissue;
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& [label, count] : missing)
      list += (list.empty() ? "" : ", ") + std::to_string(label) + " (" + std::to_string(count) +
              " tets)";
    throw BadInput("conductivity_tensors: mesh label(s) " + list +
                   " not in the tissue table: every tet label needs a tissue");
  }
  for (const auto& [label, tissue] : tissue_of) {
    for (const double s : {tissue->sigma_l_S_per_m, tissue->sigma_t_S_per_m})
      if (!(s > 0.0) || !std::isfinite(s))
        throw BadInput("conductivity_tensors: tissue " + tissue->name + " (label " +
                       std::to_string(label) + "): conductivity " + format_number(s) +
                       " S/m: must be > 0 and finite");
  }
  const bool has_fibres = mesh.fibre_direction.rows() == n;
  TensorArray out(n, 6);
  std::map<std::int32_t, std::int64_t> bad_fibre;
  for (Eigen::Index t = 0; t < n; ++t) {
    const std::int32_t label = mesh.labels[static_cast<std::size_t>(t)];
    const anatomy::Tissue& tissue = *tissue_of.at(label);
    Eigen::Matrix3d s;
    if (tissue.tissue_class == anatomy::TissueClass::muscle) {
      const Eigen::Vector3d f0 =
          has_fibres ? Eigen::Vector3d(mesh.fibre_direction.row(t)) : Eigen::Vector3d::Zero();
      const double norm = f0.norm();
      if (!(norm > 0.0) || !std::isfinite(norm)) {
        ++bad_fibre[label];
        continue;
      }
      const Eigen::Vector3d f = f0 / norm;
      s = tissue.sigma_t_S_per_m * Eigen::Matrix3d::Identity() +
          (tissue.sigma_l_S_per_m - tissue.sigma_t_S_per_m) * f * f.transpose();
    } else {
      s = tissue.sigma_l_S_per_m * Eigen::Matrix3d::Identity();
    }
    out.row(t) << s(0, 0), s(1, 1), s(2, 2), s(0, 1), s(1, 2), s(0, 2);
  }
  if (!bad_fibre.empty()) {
    std::string list;
    for (const auto& [label, count] : bad_fibre)
      list += (list.empty() ? "" : ", ") + std::string("label ") + std::to_string(label) + " (" +
              tissue_of.at(label)->name + "): " + std::to_string(count) + " tets";
    throw BadInput("conductivity_tensors: muscle tets with a zero or non-finite fibre "
                   "direction: " +
                   list + ": every muscle tet needs a unit fibre direction");
  }
  return out;
}

} // namespace myotwin::forward
