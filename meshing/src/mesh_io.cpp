#include "myotwin/meshing/mesh_io.hpp"

#include <string>

#include "myotwin/anatomy/polydata_io.hpp"
#include "myotwin/core/error.hpp"

namespace myotwin::meshing {

void write_mesh_vtu(const std::filesystem::path& path, const TetMesh& mesh,
                    const anatomy::TissueTable& tissues) {
  anatomy::TetGrid grid;
  grid.points_m = mesh.nodes_m;
  grid.tets = mesh.tets;
  std::vector<std::int32_t> cls(mesh.labels.size());
  for (std::size_t t = 0; t < mesh.labels.size(); ++t) {
    const auto* tissue = tissues.find(mesh.labels[t]);
    if (tissue == nullptr)
      throw BadInput(path.string() + ": tet " + std::to_string(t) + " has label " +
                     std::to_string(mesh.labels[t]) + ", which is not in the tissue table");
    cls[t] = static_cast<std::int32_t>(tissue->tissue_class);
  }
  grid.cell_data_int["tissue_label"] = mesh.labels;
  grid.cell_data_int["tissue_class"] = std::move(cls);
  grid.cell_vectors["fibre_direction"] =
      mesh.fibre_direction.rows() == mesh.n_tets()
          ? mesh.fibre_direction
          : Eigen::MatrixX3d(Eigen::MatrixX3d::Zero(mesh.n_tets(), 3));
  anatomy::write_tets_vtu(path, grid);
}

TetMesh read_mesh_vtu(const std::filesystem::path& path, const anatomy::TissueTable* tissues) {
  anatomy::TetGrid grid = anatomy::read_tets_vtu(path);
  const auto labels = grid.cell_data_int.find("tissue_label");
  if (labels == grid.cell_data_int.end())
    throw BadInput(path.string() +
                   ": no integer cell array \"tissue_label\"; expected the tissue label per tet");
  TetMesh mesh;
  mesh.nodes_m = std::move(grid.points_m);
  mesh.tets = std::move(grid.tets);
  mesh.labels = labels->second;
  const auto fibres = grid.cell_vectors.find("fibre_direction");
  mesh.fibre_direction = fibres != grid.cell_vectors.end()
                             ? fibres->second
                             : Eigen::MatrixX3d(Eigen::MatrixX3d::Zero(mesh.n_tets(), 3));
  for (std::int64_t t = 0; t < mesh.n_tets(); ++t) {
    const double v = tet_volume_m3(mesh, t);
    if (v == 0.0)
      throw BadInput(path.string() + ": tet " + std::to_string(t) +
                     " has zero volume; expected a mesh without degenerate tets");
    if (v < 0.0)
      std::swap(mesh.tets(t, 2), mesh.tets(t, 3));
  }
  if (tissues != nullptr) {
    for (std::size_t t = 0; t < mesh.labels.size(); ++t)
      if (tissues->find(mesh.labels[t]) == nullptr)
        throw BadInput(path.string() + ": tet " + std::to_string(t) + " has tissue_label " +
                       std::to_string(mesh.labels[t]) + ", which is not in the tissue table");
  }
  return mesh;
}

void write_boundary_vtp(const std::filesystem::path& path, const TetMesh& mesh) {
  std::vector<std::int64_t> face_tet;
  const TriArray faces = boundary_faces(mesh, &face_tet);
  // Only the nodes the surface uses, in increasing order.
  std::vector<std::int32_t> new_index(static_cast<std::size_t>(mesh.n_nodes()), -1);
  for (Eigen::Index f = 0; f < faces.rows(); ++f)
    for (int c = 0; c < 3; ++c)
      new_index[static_cast<std::size_t>(faces(f, c))] = 0;
  Eigen::Index n = 0;
  for (auto& i : new_index)
    if (i == 0)
      i = static_cast<std::int32_t>(n++);
  Eigen::MatrixX3d vertices(n, 3);
  for (std::size_t i = 0; i < new_index.size(); ++i)
    if (new_index[i] >= 0)
      vertices.row(new_index[i]) = mesh.nodes_m.row(static_cast<Eigen::Index>(i));
  Eigen::MatrixX3i tris(faces.rows(), 3);
  Eigen::VectorXd label(faces.rows());
  for (Eigen::Index f = 0; f < faces.rows(); ++f) {
    for (int c = 0; c < 3; ++c)
      tris(f, c) = new_index[static_cast<std::size_t>(faces(f, c))];
    label[f] = mesh.labels[static_cast<std::size_t>(face_tet[static_cast<std::size_t>(f)])];
  }
  anatomy::write_surface_vtp(path, vertices, tris, {{"tissue_label", label}});
}

} // namespace myotwin::meshing
