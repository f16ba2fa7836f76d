#include "myotwin/meshing/tet_mesh.hpp"

#include <algorithm>
#include <numeric>
#include <string>

#include "myotwin/core/disjoint_sets.hpp"
#include "myotwin/core/error.hpp"

namespace myotwin::meshing {

namespace {

/// Face `f` of a tet: the three nodes other than node f.
constexpr int face_nodes[4][3] = {{1, 2, 3}, {0, 2, 3}, {0, 1, 3}, {0, 1, 2}};

struct FaceRecord {
  std::array<std::int32_t, 3> key; // sorted node indices
  std::int64_t tet;
  int local;
};

/// Every face of every tet, sorted by key (then tet), so equal faces are adjacent.
std::vector<FaceRecord> sorted_faces(const TetMesh& mesh) {
  std::vector<FaceRecord> faces;
  faces.reserve(static_cast<std::size_t>(4 * mesh.n_tets()));
  for (std::int64_t t = 0; t < mesh.n_tets(); ++t) {
    for (int f = 0; f < 4; ++f) {
      std::array<std::int32_t, 3> k{mesh.tets(t, face_nodes[f][0]), mesh.tets(t, face_nodes[f][1]),
                                    mesh.tets(t, face_nodes[f][2])};
      std::sort(k.begin(), k.end());
      faces.push_back({k, t, f});
    }
  }
  std::sort(faces.begin(), faces.end(), [](const FaceRecord& a, const FaceRecord& b) {
    return a.key != b.key ? a.key < b.key : a.tet < b.tet;
  });
  return faces;
}

/// Face `local` of tet `t`, ordered so that its normal points away from the fourth node.
std::array<std::int32_t, 3> outward_face(const TetMesh& mesh, std::int64_t t, int local) {
  std::array<std::int32_t, 3> n{mesh.tets(t, face_nodes[local][0]),
                                mesh.tets(t, face_nodes[local][1]),
                                mesh.tets(t, face_nodes[local][2])};
  const Eigen::Vector3d a = mesh.nodes_m.row(n[0]);
  const Eigen::Vector3d b = mesh.nodes_m.row(n[1]);
  const Eigen::Vector3d c = mesh.nodes_m.row(n[2]);
  const Eigen::Vector3d d = mesh.nodes_m.row(mesh.tets(t, local));
  if ((b - a).cross(c - a).dot(d - a) > 0.0)
    std::swap(n[1], n[2]);
  return n;
}

TriArray to_array(const std::vector<std::array<std::int32_t, 3>>& tris) {
  TriArray out(static_cast<Eigen::Index>(tris.size()), 3);
  for (std::size_t i = 0; i < tris.size(); ++i)
    for (int c = 0; c < 3; ++c)
      out(static_cast<Eigen::Index>(i), c) = tris[i][static_cast<std::size_t>(c)];
  return out;
}

} // namespace

double tet_volume_m3(const TetMesh& mesh, std::int64_t t) {
  const Eigen::Vector3d a = mesh.nodes_m.row(mesh.tets(t, 0));
  const Eigen::Vector3d b = mesh.nodes_m.row(mesh.tets(t, 1));
  const Eigen::Vector3d c = mesh.nodes_m.row(mesh.tets(t, 2));
  const Eigen::Vector3d d = mesh.nodes_m.row(mesh.tets(t, 3));
  return (b - a).cross(c - a).dot(d - a) / 6.0;
}

TriArray boundary_faces(const TetMesh& mesh, std::vector<std::int64_t>* face_tet) {
  const auto faces = sorted_faces(mesh);
  std::vector<std::array<std::int32_t, 3>> tris;
  if (face_tet != nullptr)
    face_tet->clear();
  for (std::size_t i = 0; i < faces.size();) {
    std::size_t j = i + 1;
    while (j < faces.size() && faces[j].key == faces[i].key)
      ++j;
    if (j - i == 1) {
      tris.push_back(outward_face(mesh, faces[i].tet, faces[i].local));
      if (face_tet != nullptr)
        face_tet->push_back(faces[i].tet);
    }
    i = j;
  }
  return to_array(tris);
}

TriArray label_surface(const TetMesh& mesh, std::int32_t label) {
  const auto faces = sorted_faces(mesh);
  std::vector<std::array<std::int32_t, 3>> tris;
  for (std::size_t i = 0; i < faces.size();) {
    std::size_t j = i + 1;
    while (j < faces.size() && faces[j].key == faces[i].key)
      ++j;
    int n_in = 0;
    std::size_t in = i;
    for (std::size_t k = i; k < j; ++k) {
      if (mesh.labels[static_cast<std::size_t>(faces[k].tet)] == label) {
        ++n_in;
        in = k;
      }
    }
    if (n_in == 1 && (j - i == 1 || j - i == 2))
      tris.push_back(outward_face(mesh, faces[in].tet, faces[in].local));
    i = j;
  }
  return to_array(tris);
}

std::vector<std::int32_t> tet_components(const TetMesh& mesh,
                                         const std::vector<std::int32_t>& select, bool same_label) {
  const auto n = static_cast<std::size_t>(mesh.n_tets());
  std::vector<char> selected(n, 1);
  if (!select.empty()) {
    for (std::size_t t = 0; t < n; ++t)
      selected[t] = std::find(select.begin(), select.end(), mesh.labels[t]) != select.end();
  }
  DisjointSets sets(n); // face neighbours
  const auto faces = sorted_faces(mesh);
  for (std::size_t i = 0; i + 1 < faces.size(); ++i) {
    if (faces[i].key != faces[i + 1].key)
      continue;
    const auto a = faces[i].tet;
    const auto b = faces[i + 1].tet;
    if (!selected[static_cast<std::size_t>(a)] || !selected[static_cast<std::size_t>(b)])
      continue;
    if (same_label &&
        mesh.labels[static_cast<std::size_t>(a)] != mesh.labels[static_cast<std::size_t>(b)])
      continue;
    sets.unite(static_cast<std::size_t>(a), static_cast<std::size_t>(b));
  }
  return sets.component_ids(selected);
}

TetMesh structured_box_mesh(const Eigen::Vector3d& lo_m, const Eigen::Vector3d& hi_m,
                            const std::array<std::int64_t, 3>& n, std::int32_t label) {
  for (int a = 0; a < 3; ++a) {
    if (n[static_cast<std::size_t>(a)] < 1)
      throw BadInput("structured_box_mesh: cubes along axis " + std::to_string(a) + " = " +
                     std::to_string(n[static_cast<std::size_t>(a)]) + ": must be >= 1");
    if (!(hi_m[a] > lo_m[a]))
      throw BadInput("structured_box_mesh: box extent along axis " + std::to_string(a) + " = " +
                     format_number(hi_m[a] - lo_m[a]) + " m: must be > 0");
  }
  const std::int64_t nx = n[0] + 1, ny = n[1] + 1, nz = n[2] + 1;
  TetMesh mesh;
  mesh.nodes_m.resize(nx * ny * nz, 3);
  auto node = [&](std::int64_t i, std::int64_t j, std::int64_t k) {
    return static_cast<std::int32_t>(i + nx * (j + ny * k));
  };
  for (std::int64_t k = 0; k < nz; ++k)
    for (std::int64_t j = 0; j < ny; ++j)
      for (std::int64_t i = 0; i < nx; ++i) {
        const Eigen::Vector3d f(static_cast<double>(i) / static_cast<double>(n[0]),
                                static_cast<double>(j) / static_cast<double>(n[1]),
                                static_cast<double>(k) / static_cast<double>(n[2]));
        mesh.nodes_m.row(node(i, j, k)) = lo_m + (hi_m - lo_m).cwiseProduct(f);
      }
  // The six paths from corner 0 to corner 7 of a cube, one axis at a time.
  constexpr int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  const std::int64_t n_tets = 6 * n[0] * n[1] * n[2];
  mesh.tets.resize(n_tets, 4);
  std::int64_t t = 0;
  for (std::int64_t k = 0; k < n[2]; ++k)
    for (std::int64_t j = 0; j < n[1]; ++j)
      for (std::int64_t i = 0; i < n[0]; ++i)
        for (const auto& p : perms) {
          std::array<std::int64_t, 3> c{i, j, k};
          mesh.tets(t, 0) = node(c[0], c[1], c[2]);
          for (int s = 0; s < 3; ++s) {
            ++c[static_cast<std::size_t>(p[s])];
            mesh.tets(t, s + 1) = node(c[0], c[1], c[2]);
          }
          ++t;
        }
  mesh.labels.assign(static_cast<std::size_t>(n_tets), label);
  mesh.fibre_direction = Eigen::MatrixX3d::Zero(n_tets, 3);
  for (t = 0; t < n_tets; ++t)
    if (tet_volume_m3(mesh, t) < 0.0)
      std::swap(mesh.tets(t, 2), mesh.tets(t, 3));
  return mesh;
}

} // namespace myotwin::meshing
