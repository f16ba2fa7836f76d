// Tests of the finite-element volume conductor: conductivity tensors, P1 assembly, current
// injection, point location, the sparse solvers and lead fields. Numerical checks are against
// closed forms (a point source in an isotropic and in an anisotropic medium, the local stiffness
// of the unit right tet) and invariants (reciprocity, thread independence, reference
// cancellation).
//
// Point-source tests. The FEM solves an insulated box, not an infinite medium. To compare with
// I / (4 pi sqrt(det S) r') (r'^2 = x^T S^-1 x), the right-hand side is made compatible: +I at
// the centre node and -I spread over the whole volume in proportion to the lumped nodal volumes.
// Grounding one node then solves the pure Neumann problem exactly (the grounded row's equation
// follows from the others). Its continuous solution is, in coordinates x'_i = x_i / sqrt(s_i),
// where the box is a cube when its sides are proportional to sqrt(s_i),
//   phi = I / (4 pi sqrt(det S) r') + I r'^2 / (6 V) + h(x') + const,
// the second term being the uniform sink's particular solution (V the box volume) and h a
// harmonic function with the cube's full symmetry, whose lowest term is of degree 4 and is small
// near the centre. The constant is removed by matching at one reference point (r_ref = 9 mesh
// sizes along an axis); errors are then quoted relative to the point-source term at each
// distance r >= 3 mesh sizes.

#include <cmath>
#include <cstring>
#include <iostream>
#include <numbers>

#include <omp.h>

#include <Eigen/Dense>
#include <gtest/gtest.h>

#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/forward/conductor/conductivity.hpp"
#include "myotwin/forward/conductor/fem.hpp"
#include "myotwin/forward/conductor/lead_field.hpp"
#include "myotwin/forward/conductor/point_locator.hpp"
#include "myotwin/forward/conductor/sparse_solver.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace ma = myotwin::anatomy;
namespace mf = myotwin::forward;
namespace mm = myotwin::meshing;
using Points = Eigen::Matrix<double, Eigen::Dynamic, 3>;

namespace {

constexpr double pi = std::numbers::pi;

ma::Tissue tissue(std::int32_t label, const std::string& name, ma::TissueClass c, double sigma_l,
                  double sigma_t) {
  ma::Tissue t;
  t.label = label;
  t.name = name;
  t.tissue_class = c;
  t.sigma_l_S_per_m = sigma_l;
  t.sigma_t_S_per_m = sigma_t;
  return t;
}

/// Expects `f` to throw E whose message contains every string of `parts`.
template <class E, class F> void expect_throw_with(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL() << "no exception";
  } catch (const E& e) {
    const std::string what = e.what();
    for (const auto& p : parts)
      EXPECT_NE(what.find(p), std::string::npos) << "message: " << what << "\nmissing: " << p;
  }
}

/// Index of the node of a structured box mesh at integer grid position (i, j, k).
std::int64_t grid_node(const std::array<std::int64_t, 3>& n, std::int64_t i, std::int64_t j,
                       std::int64_t k) {
  return i + (n[0] + 1) * (j + (n[1] + 1) * k);
}

/// Solves the compatible point-source problem (+I at node `source`, -I spread over the volume)
/// on `mesh` with conductivities `tensors`; returns the nodal potentials [V].
Eigen::VectorXd compatible_point_source(const mm::TetMesh& mesh, const mf::TensorArray& tensors,
                                        std::int64_t source, double current_A,
                                        mf::SolverParams params = {}) {
  const auto k = mf::assemble_stiffness(mesh.nodes_m, mesh.tets, tensors);
  const std::int64_t g = mf::default_reference_node(mesh);
  mf::SpdSolver solver(mf::ground_stiffness(k, g), params);
  const Eigen::VectorXd vol = mf::lumped_node_volumes_m3(mesh.nodes_m, mesh.tets);
  Eigen::VectorXd b = -current_A * vol / vol.sum();
  b[source] += current_A;
  b[g] = 0.0;
  return solver.solve(b);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Local stiffness and conductivity

namespace {

/// The boundary faces of `mesh` whose centroid [m] passes `keep`.
template <class Keep> mm::TriArray boundary_faces_where(const mm::TetMesh& mesh, Keep keep) {
  const mm::TriArray all = mm::boundary_faces(mesh);
  std::vector<Eigen::Index> rows;
  for (Eigen::Index f = 0; f < all.rows(); ++f) {
    Eigen::Vector3d c = Eigen::Vector3d::Zero();
    for (int k = 0; k < 3; ++k)
      c += mesh.nodes_m.row(all(f, k)).transpose() / 3.0;
    if (keep(c))
      rows.push_back(f);
  }
  mm::TriArray out(static_cast<Eigen::Index>(rows.size()), 3);
  for (std::size_t i = 0; i < rows.size(); ++i)
    out.row(static_cast<Eigen::Index>(i)) = all.row(rows[i]);
  return out;
}

} // namespace

TEST(LocalStiffness, OfTheUnitRightTetWithUnitConductivityIsTheKnownMatrix) {
  Eigen::Matrix<double, 4, 3> x;
  x << 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1;
  Eigen::Matrix4d expected;
  expected << 3, -1, -1, -1, //
      -1, 1, 0, 0,           //
      -1, 0, 1, 0,           //
      -1, 0, 0, 1;
  expected /= 6.0;
  const Eigen::Matrix4d k = mf::local_stiffness(x, Eigen::Matrix3d::Identity());
  EXPECT_LT((k - expected).cwiseAbs().maxCoeff(), 1e-15) << k;
  // A diagonal tensor diag(a, b, c) scales each gradient component: known matrix too.
  const double a = 0.5, b = 0.2, c = 0.1;
  Eigen::Matrix4d expected_aniso;
  expected_aniso << a + b + c, -a, -b, -c, //
      -a, a, 0, 0,                         //
      -b, 0, b, 0,                         //
      -c, 0, 0, c;
  expected_aniso /= 6.0;
  const Eigen::Matrix4d ka = mf::local_stiffness(x, Eigen::Vector3d(a, b, c).asDiagonal());
  EXPECT_LT((ka - expected_aniso).cwiseAbs().maxCoeff(), 1e-15) << ka;
}

TEST(LocalStiffness, OfAnInvertedTetIsBadInput) {
  Eigen::Matrix<double, 4, 3> x;
  x << 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1; // left-handed
  expect_throw_with<myotwin::BadInput>(
      [&] { (void)mf::local_stiffness(x, Eigen::Matrix3d::Identity()); }, {"volume", "> 0"});
}

TEST(Conductivity, MuscleIsAnisotropicAlongItsFibreAndOtherTissuesIsotropic) {
  mm::TetMesh mesh = mm::structured_box_mesh({0, 0, 0}, {1, 1, 1}, {1, 1, 1}, 20);
  for (int t = 3; t < 6; ++t)
    mesh.labels[static_cast<std::size_t>(t)] = 2;
  const Eigen::Vector3d f = Eigen::Vector3d(1, 2, 2) / 3.0;
  for (int t = 0; t < 6; ++t)
    mesh.fibre_direction.row(t) =
        (t < 3 ? Eigen::Vector3d(5.0 * f) : Eigen::Vector3d::Zero()).transpose();
  ma::TissueTable table;
  table.tissues = {tissue(20, "FCR", ma::TissueClass::muscle, 0.5, 0.1),
                   tissue(2, "fat", ma::TissueClass::fat, 0.04, 0.04)};
  const mf::TensorArray s = mf::conductivity_tensors(mesh, table);
  ASSERT_EQ(s.rows(), 6);
  const Eigen::Matrix3d muscle = mf::tensor_at(s, 0);
  const Eigen::Vector3d across = Eigen::Vector3d(2, -1, 0).normalized();
  EXPECT_LT((muscle * f - 0.5 * f).norm(), 1e-15);
  EXPECT_LT((muscle * across - 0.1 * across).norm(), 1e-15);
  EXPECT_LT((muscle - muscle.transpose()).norm(), 1e-15);
  EXPECT_LT((mf::tensor_at(s, 4) - 0.04 * Eigen::Matrix3d::Identity()).norm(), 1e-16);
}

TEST(Conductivity, LabelNotInTheTissueTableIsBadInputNamingIt) {
  mm::TetMesh mesh = mm::structured_box_mesh({0, 0, 0}, {1, 1, 1}, {1, 1, 1}, 7);
  ma::TissueTable table;
  table.tissues = {tissue(2, "fat", ma::TissueClass::fat, 0.04, 0.04)};
  expect_throw_with<myotwin::BadInput>([&] { (void)mf::conductivity_tensors(mesh, table); },
                                       {"label(s) 7 (6 tets)", "not in the tissue table"});
}

TEST(Conductivity, MuscleTetsWithoutFibreDirectionAreBadInputNamingCountAndLabel) {
  mm::TetMesh mesh = mm::structured_box_mesh({0, 0, 0}, {1, 1, 1}, {1, 1, 1}, 20);
  mesh.fibre_direction.row(0) << 0, 0, 1;
  mesh.fibre_direction.row(1) << 0, 0, 1;
  ma::TissueTable table;
  table.tissues = {tissue(20, "FCR", ma::TissueClass::muscle, 0.5, 0.1)};
  expect_throw_with<myotwin::BadInput>([&] { (void)mf::conductivity_tensors(mesh, table); },
                                       {"label 20 (FCR): 4 tets", "fibre direction"});
}

// ---------------------------------------------------------------------------------------------
// Assembly

TEST(Assembly, IsSymmetricWithZeroRowSumsAndBitIdenticalAtOneAndTwoThreads) {
  const std::array<std::int64_t, 3> n{12, 10, 9};
  mm::TetMesh mesh = mm::structured_box_mesh({0, 0, 0}, {0.03, 0.025, 0.02}, n);
  // Heterogeneous anisotropic tensors, varying per tet.
  mf::TensorArray s(mesh.n_tets(), 6);
  for (Eigen::Index t = 0; t < mesh.n_tets(); ++t) {
    const double u = static_cast<double>(t % 17) / 17.0;
    Eigen::Vector3d f(std::cos(3.0 * u), std::sin(3.0 * u), 0.5);
    f.normalize();
    const Eigen::Matrix3d m = 0.1 * Eigen::Matrix3d::Identity() + (0.4 + u) * f * f.transpose();
    s.row(t) << m(0, 0), m(1, 1), m(2, 2), m(0, 1), m(1, 2), m(0, 2);
  }
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(1);
  const mf::SparseMatrixd k1 = mf::assemble_stiffness(mesh.nodes_m, mesh.tets, s);
  omp_set_num_threads(2);
  const mf::SparseMatrixd k2 = mf::assemble_stiffness(mesh.nodes_m, mesh.tets, s);
  omp_set_num_threads(threads_before);
  ASSERT_EQ(k1.nonZeros(), k2.nonZeros());
  EXPECT_EQ(std::memcmp(k1.valuePtr(), k2.valuePtr(), sizeof(double) * k1.nonZeros()), 0);
  EXPECT_EQ(std::memcmp(k1.innerIndexPtr(), k2.innerIndexPtr(), sizeof(int) * k1.nonZeros()), 0);
  const Eigen::MatrixXd dense = k1;
  EXPECT_LT((dense - dense.transpose()).cwiseAbs().maxCoeff(), 1e-18);
  EXPECT_LT((dense * Eigen::VectorXd::Ones(dense.cols())).cwiseAbs().maxCoeff(),
            1e-14 * dense.diagonal().maxCoeff());
  // Linear potentials have the exact flux: x^T K x = sigma_eff * volume * |grad|^2 for a
  // homogeneous isotropic medium.
  const mf::SparseMatrixd ki =
      mf::assemble_stiffness(mesh.nodes_m, mesh.tets, mf::isotropic_tensors(mesh.n_tets(), 0.3));
  const Eigen::VectorXd phi = mesh.nodes_m * Eigen::Vector3d(1.0, -2.0, 0.5);
  EXPECT_NEAR(phi.dot(ki * phi), 0.3 * (0.03 * 0.025 * 0.02) * 5.25, 1e-15);
}

TEST(Assembly, DisconnectedMeshIsBadInputNamingTheComponentsAndTheirTets) {
  const mm::TetMesh a = mm::structured_box_mesh({0, 0, 0}, {1, 1, 1}, {2, 1, 1});
  const mm::TetMesh b = mm::structured_box_mesh({3, 0, 0}, {4, 1, 1}, {1, 1, 1});
  mm::TetMesh both;
  both.nodes_m.resize(a.n_nodes() + b.n_nodes(), 3);
  both.nodes_m << a.nodes_m, b.nodes_m;
  both.tets.resize(a.n_tets() + b.n_tets(), 4);
  both.tets << a.tets, (b.tets.array() + static_cast<std::int32_t>(a.n_nodes())).matrix();
  both.labels.assign(static_cast<std::size_t>(both.n_tets()), 1);
  both.fibre_direction = Eigen::MatrixX3d::Zero(both.n_tets(), 3);
  expect_throw_with<myotwin::BadInput>(
      [&] { mf::check_connected(both); },
      {"2 disconnected components", "12, 6", "the system is singular in each"});
  EXPECT_NO_THROW(mf::check_connected(a));
  EXPECT_EQ(mf::default_reference_node(both), 0);
}

TEST(Assembly, GroundedStiffnessKeepsOnlyTheDiagonalOfTheReferenceNode) {
  const mm::TetMesh mesh = mm::structured_box_mesh({0, 0, 0}, {1, 1, 1}, {2, 2, 2});
  const mf::SparseMatrixd k =
      mf::assemble_stiffness(mesh.nodes_m, mesh.tets, mf::isotropic_tensors(mesh.n_tets(), 1.0));
  const mf::SparseMatrixd kg = mf::ground_stiffness(k, 13);
  const Eigen::MatrixXd d = kg;
  EXPECT_EQ(d(13, 13), k.coeff(13, 13));
  EXPECT_EQ(d.row(13).cwiseAbs().sum(), d(13, 13));
  EXPECT_EQ(d.col(13).cwiseAbs().sum(), d(13, 13));
  EXPECT_EQ(d(0, 1), k.coeff(0, 1));
  expect_throw_with<myotwin::BadInput>([&] { (void)mf::ground_stiffness(k, 27); },
                                       {"reference node 27", "0 <= node < 27"});
}

// ---------------------------------------------------------------------------------------------
// Current injection and point location

TEST(CurrentInjection, PointAndPadCurrentsSumToTheInjectedCurrent) {
  const mm::TetMesh mesh = mm::structured_box_mesh({0, 0, 0}, {0.02, 0.02, 0.01}, {8, 8, 4});
  const mf::PointLocator locator(mesh);
  Points p(1, 3);
  p << 0.00731, 0.01234, 0.00377;
  const mf::PointLocations loc = locator.locate(p);
  ASSERT_GE(loc.tet[0], 0);
  const Eigen::VectorXd b = mf::point_current_rhs(mesh.n_nodes(), loc, 0, 1.7e-3);
  EXPECT_NEAR(b.sum(), 1.7e-3, 1e-18);
  // The first moment of the load is the source position (P1 reproduces linear functions).
  const Eigen::Vector3d moment = mesh.nodes_m.transpose() * b / 1.7e-3;
  EXPECT_LT((moment - p.row(0).transpose()).norm(), 1e-15);
  // A pad: the top boundary faces (z = 0.01) inside x, y in [0.005, 0.015].
  const mm::TriArray pad = boundary_faces_where(mesh, [](const Eigen::Vector3d& c) {
    return c.z() > 0.0099 && c.x() > 0.005 && c.x() < 0.015 && c.y() > 0.005 && c.y() < 0.015;
  });
  ASSERT_EQ(pad.rows(), 32); // 4 x 4 squares of 2 triangles
  const Eigen::VectorXd bp = mf::pad_current_rhs(mesh.nodes_m, pad, -2.5e-3);
  EXPECT_NEAR(bp.sum(), -2.5e-3, 1e-18);
  // Uniform density: the pad's centroid is the load's first moment.
  const Eigen::Vector3d pm = mesh.nodes_m.transpose() * bp / -2.5e-3;
  EXPECT_LT((pm - Eigen::Vector3d(0.01, 0.01, 0.01)).norm(), 1e-15);
}

TEST(PointLocator, FindsTheContainingTetWithWeightsThatReproduceThePoint) {
  const mm::TetMesh mesh = mm::structured_box_mesh({-0.01, 0, 0}, {0.01, 0.03, 0.01}, {7, 9, 5});
  const mf::PointLocator locator(mesh);
  Points p(5, 3);
  p << 0.0, 0.015, 0.005,     //
      -0.01, 0.0, 0.0,        // a corner node
      0.01, 0.03, 0.01,       // the opposite corner
      0.0031, 0.0277, 0.0001, //
      -0.0099, 0.0001, 0.0099;
  const mf::PointLocations loc = locator.locate(p);
  EXPECT_EQ(loc.n_outside(), 0);
  for (Eigen::Index i = 0; i < p.rows(); ++i) {
    ASSERT_GE(loc.tet[static_cast<std::size_t>(i)], 0) << "point " << i;
    EXPECT_GE(loc.weights.row(i).minCoeff(), 0.0);
    EXPECT_NEAR(loc.weights.row(i).sum(), 1.0, 1e-15);
    Eigen::Vector3d x = Eigen::Vector3d::Zero();
    for (int k = 0; k < 4; ++k)
      x += loc.weights(i, k) * mesh.nodes_m.row(loc.nodes(i, k)).transpose();
    EXPECT_LT((x - p.row(i).transpose()).norm(), 1e-16) << "point " << i;
  }
  // Sampling a linear field is exact.
  const Eigen::VectorXd field = mesh.nodes_m * Eigen::Vector3d(2.0, -1.0, 3.0);
  const Eigen::MatrixXd s = mf::sample(loc, field);
  EXPECT_LT((s - p * Eigen::Vector3d(2.0, -1.0, 3.0)).cwiseAbs().maxCoeff(), 1e-16);
}

TEST(PointLocator, PointOutsideTheMeshIsMinusOneAndSamplingItIsBadInput) {
  const mm::TetMesh mesh = mm::structured_box_mesh({0, 0, 0}, {1, 1, 1}, {3, 3, 3});
  const mf::PointLocator locator(mesh, 1e-6);
  Points p(4, 3);
  p << 0.5, 0.5, 0.5,       //
      1.5, 0.5, 0.5,        // outside
      0.5, 0.5, 1.0 + 5e-7, // within tolerance
      0.5, 0.5, 1.0 + 5e-6; // beyond tolerance
  const mf::PointLocations loc = locator.locate(p);
  EXPECT_GE(loc.tet[0], 0);
  EXPECT_EQ(loc.tet[1], -1);
  EXPECT_GE(loc.tet[2], 0);
  EXPECT_EQ(loc.tet[3], -1);
  EXPECT_EQ(loc.n_outside(), 2);
  expect_throw_with<myotwin::BadInput>(
      [&] { (void)mf::sample(loc, Eigen::VectorXd::Zero(mesh.n_nodes())); },
      {"point 1 is outside the mesh"});
  std::vector<mf::Electrode> electrodes(2);
  electrodes[0].position_m << 0.5, 0.5, 0.5;
  electrodes[1].position_m << 1.5, 0.5, 0.5;
  expect_throw_with<myotwin::BadInput>(
      [&] { (void)mf::electrode_currents(mesh, locator, electrodes, 0); },
      {"electrode 1 at (1.5, 0.5, 0.5) m is outside the mesh"});
}

// ---------------------------------------------------------------------------------------------
// Point sources against closed forms

namespace {

/// The periodic Green's function of -Laplace (unit source at the origin of every cell of a cubic
/// lattice of period `side`, neutralised by a uniform background -1/side^3), by Ewald summation:
///   G(x) = sum_n erfc(a |x + n side|) / (4 pi |x + n side|)
///        + (1 / side^3) sum_{k != 0} exp(-k^2 / (4 a^2)) cos(k . x) / k^2  (+ a constant),
/// k = 2 pi m / side. This is also the Neumann Green's function of a cube with the source at its
/// centre (each insulated wall is a mirror plane of the lattice): the method of images for an
/// insulated box. Truncation error < 1e-12 relative for a = 2.5 / side, |n_i| <= 3, |m_i| <= 6.
double periodic_green(const Eigen::Vector3d& x, double side) {
  const double a = 2.5 / side;
  double real = 0.0;
  for (int i = -3; i <= 3; ++i)
    for (int j = -3; j <= 3; ++j)
      for (int k = -3; k <= 3; ++k) {
        const double r = (x + side * Eigen::Vector3d(i, j, k)).norm();
        real += std::erfc(a * r) / (4.0 * pi * r);
      }
  double recip = 0.0;
  for (int i = -6; i <= 6; ++i)
    for (int j = -6; j <= 6; ++j)
      for (int k = -6; k <= 6; ++k) {
        if (i == 0 && j == 0 && k == 0)
          continue;
        const Eigen::Vector3d kv = (2.0 * pi / side) * Eigen::Vector3d(i, j, k);
        const double k2 = kv.squaredNorm();
        recip += std::exp(-k2 / (4.0 * a * a)) * std::cos(kv.dot(x)) / k2;
      }
  return real + recip / (side * side * side);
}

struct PointSourceErrors {
  /// (distance from the source in mesh sizes, relative error against the closed form): the
  /// error |phi_fem - phi_exact| relative to the point-source term I / (4 pi sqrt(det s) r').
  /// Distances are r' / (h max_i 1 / sqrt(s_i)): in the scaled coordinates, where the medium is
  /// isotropic, in units of the coarsest scaled cube edge (r / h when isotropic).
  std::vector<std::pair<double, double>> errors;
  /// Largest error against the infinite-medium form alone (without the box's images).
  double max_relative_error_infinite = 0.0;
  /// Largest error at distances in [r0, r1) mesh sizes.
  [[nodiscard]] double max_error(double r0, double r1) const {
    double m = 0.0;
    for (const auto& [r, e] : errors)
      if (r >= r0 && r < r1)
        m = std::max(m, e);
    return m;
  }
  void print(const std::string& name) const {
    std::cout << name << ": max relative error at r in [3, 4) h: " << max_error(3, 4)
              << ", [4, 5) h: " << max_error(4, 5) << ", [5, 8) h: " << max_error(5, 8)
              << ", >= 8 h: " << max_error(8, 1e9) << " (" << errors.size()
              << " nodes; infinite-medium form alone, without the box's images: "
              << max_relative_error_infinite << ")\n";
  }
};

/// FEM potential of a compatible point source (+I at the centre node, -I over the volume) in a
/// structured box mesh of n cubes of size h whose sides are proportional to sqrt(s_i), with the
/// diagonal conductivity diag(s), against the closed form (I / sqrt(det s)) G(x') in scaled
/// coordinates x'_i = x_i / sqrt(s_i). The gauge constant is removed by matching at the grounded
/// corner node (node 0, phi = 0), the point farthest from the source. Nodes at grid offsets
/// `offsets` from the centre are compared; errors are relative to the point-source term
/// I / (4 pi sqrt(det s) r') at each.
PointSourceErrors point_source_errors(const mm::TetMesh& mesh, const std::array<std::int64_t, 3>& n,
                                      double h_m, const Eigen::Vector3d& s,
                                      const mf::TensorArray& tensors,
                                      const std::vector<Eigen::Vector3i>& offsets) {
  const double current = 1e-3;
  const std::array<std::int64_t, 3> c{n[0] / 2, n[1] / 2, n[2] / 2};
  const Eigen::VectorXd phi =
      compatible_point_source(mesh, tensors, grid_node(n, c[0], c[1], c[2]), current);
  EXPECT_EQ(mf::default_reference_node(mesh), 0);
  const Eigen::Vector3d inv_sqrt_s = s.cwiseSqrt().cwiseInverse();
  const double side_scaled = static_cast<double>(n[0]) * h_m * inv_sqrt_s[0];
  const double sqrt_det = std::sqrt(s.prod());
  auto exact = [&](const Eigen::Vector3d& x) {
    return current / sqrt_det * periodic_green(x.cwiseProduct(inv_sqrt_s), side_scaled);
  };
  auto infinite = [&](const Eigen::Vector3d& x) {
    return current / (4.0 * pi * sqrt_det * x.cwiseProduct(inv_sqrt_s).norm());
  };
  const Eigen::Vector3d corner =
      -h_m * Eigen::Vector3d(static_cast<double>(c[0]), static_cast<double>(c[1]),
                             static_cast<double>(c[2]));
  const double offset_exact = exact(corner);
  const double offset_infinite = infinite(corner);
  PointSourceErrors out;
  for (const auto& d : offsets) {
    const Eigen::Vector3d x = h_m * d.cast<double>();
    const double fem = phi[grid_node(n, c[0] + d.x(), c[1] + d.y(), c[2] + d.z())];
    const double e = std::abs(fem - (exact(x) - offset_exact)) / infinite(x);
    const double e_inf = std::abs(fem - (infinite(x) - offset_infinite)) / infinite(x);
    out.errors.emplace_back(x.cwiseProduct(inv_sqrt_s).norm() / (h_m * inv_sqrt_s.maxCoeff()), e);
    out.max_relative_error_infinite = std::max(out.max_relative_error_infinite, e_inf);
  }
  return out;
}

/// Grid offsets at 3..max steps along axes, face and body diagonals (both kinds: along and
/// across the cubes' split diagonal) and an oblique direction.
std::vector<Eigen::Vector3i> test_offsets(int max_steps) {
  const std::vector<Eigen::Vector3i> dirs = {{1, 0, 0},  {0, -1, 0}, {0, 0, 1},  {1, 1, 0},
                                             {1, -1, 0}, {1, 1, 1},  {1, -1, 1}, {2, 1, 0}};
  std::vector<Eigen::Vector3i> out;
  for (int step = 3; step <= max_steps; ++step)
    for (const auto& d : dirs)
      if (d.cwiseAbs().maxCoeff() * step <= max_steps)
        out.push_back(step * d);
  return out;
}

} // namespace

// The P1 error near a point source decays as (h / r)^2: along the axes 3.9 % at 3 h, 2.1 % at
// 4 h, 1.3 % at 5 h (32^3 cubes); beyond 5 h it is below 1 %. The 2 % bound is asserted from 5 h
// on, a 4.5 % bound between 3 h and 5 h.
TEST(LeadField, MatchesPointSourceInInfiniteIsotropicMedium) {
  const std::array<std::int64_t, 3> n{32, 32, 32};
  const double h = 0.08 / 32.0;
  const mm::TetMesh mesh = mm::structured_box_mesh({-0.04, -0.04, -0.04}, {0.04, 0.04, 0.04}, n);
  const double sigma = 0.2;
  const auto e = point_source_errors(mesh, n, h, Eigen::Vector3d::Constant(sigma),
                                     mf::isotropic_tensors(mesh.n_tets(), sigma), test_offsets(12));
  e.print("isotropic point source");
  EXPECT_LT(e.max_error(3, 5), 0.045);
  EXPECT_LT(e.max_error(5, 1e9), 0.02);
}

// Muscle with its fibres along z: sigma = diag(0.1, 0.1, 0.4) S/m. The box's sides are in the
// ratio 1 : 1 : 2 = sqrt(s_x) : sqrt(s_y) : sqrt(s_z), so that in the scaled coordinates
// x'_i = x_i / sqrt(s_i) it is a cube and the images of the source form a cubic lattice.
TEST(LeadField, MatchesPointSourceInInfiniteAnisotropicMedium) {
  const std::array<std::int64_t, 3> n{24, 24, 48};
  const double h = 0.06 / 24.0;
  mm::TetMesh mesh = mm::structured_box_mesh({-0.03, -0.03, -0.06}, {0.03, 0.03, 0.06}, n, 20);
  mesh.fibre_direction.col(2).setOnes();
  ma::TissueTable table;
  table.tissues = {tissue(20, "FCR", ma::TissueClass::muscle, 0.4, 0.1)};
  const mf::TensorArray tensors = mf::conductivity_tensors(mesh, table);
  std::vector<Eigen::Vector3i> offsets = test_offsets(10);
  for (int step = 11; step <= 20; ++step)
    offsets.emplace_back(0, 0, step); // farther along the fibres (the long axis)
  const auto e = point_source_errors(mesh, n, h, Eigen::Vector3d(0.1, 0.1, 0.4), tensors, offsets);
  e.print("anisotropic point source");
  EXPECT_LT(e.max_error(3, 5), 0.045);
  EXPECT_LT(e.max_error(5, 1e9), 0.02);
}

// ---------------------------------------------------------------------------------------------
// Reciprocity, references and solvers on a heterogeneous anisotropic conductor

namespace {

/// A 4 x 4 x 2 cm block: muscle (label 20) above z = 0.4 cm with fibres turning with x and y,
/// fat (label 2) below; 14 x 14 x 7 cubes.
mm::TetMesh two_tissue_block() {
  mm::TetMesh mesh = mm::structured_box_mesh({0, 0, 0}, {0.04, 0.04, 0.02}, {14, 14, 7}, 20);
  for (Eigen::Index t = 0; t < mesh.n_tets(); ++t) {
    Eigen::Vector3d c = Eigen::Vector3d::Zero();
    for (int k = 0; k < 4; ++k)
      c += mesh.nodes_m.row(mesh.tets(t, k)).transpose() / 4.0;
    if (c.z() < 0.004) {
      mesh.labels[static_cast<std::size_t>(t)] = 2;
    } else {
      const double a = 20.0 * c.x() + 10.0 * c.y();
      mesh.fibre_direction.row(t) << std::cos(a), std::sin(a), 0.3;
    }
  }
  return mesh;
}

ma::TissueTable two_tissue_table() {
  ma::TissueTable table;
  table.tissues = {tissue(20, "FCR", ma::TissueClass::muscle, 0.5, 0.1),
                   tissue(2, "fat", ma::TissueClass::fat, 0.04, 0.04)};
  return table;
}

/// Two point electrodes inside the muscle and the fat, and a pad on the top surface.
std::vector<mf::Electrode> three_electrodes(const mm::TetMesh& mesh) {
  std::vector<mf::Electrode> el(3);
  el[0].position_m << 0.0123, 0.0171, 0.0137;
  el[1].position_m << 0.0291, 0.0219, 0.0021;
  el[2].pad_faces = boundary_faces_where(mesh, [](const Eigen::Vector3d& c) {
    return c.z() > 0.0199 && (c.head<2>() - Eigen::Vector2d(0.02, 0.025)).norm() < 0.006;
  });
  return el;
}

} // namespace

TEST(LeadField, IsReciprocalInAHeterogeneousAnisotropicConductor) {
  const mm::TetMesh mesh = two_tissue_block();
  mf::VolumeConductor conductor(mesh, two_tissue_table());
  const auto electrodes = three_electrodes(mesh);
  ASSERT_GT(electrodes[2].pad_faces.rows(), 10);
  const Eigen::MatrixXd lf = conductor.lead_fields(electrodes);
  ASSERT_EQ(lf.rows(), mesh.n_nodes());
  ASSERT_EQ(lf.cols(), 3);
  EXPECT_EQ(lf.row(conductor.reference_node()).cwiseAbs().maxCoeff(), 0.0);
  // The reading of electrode j for 1 A at electrode i (sink at the reference node) is
  // b_j . phi_i, with b_j the unit-current load of electrode j; reciprocity: b_j . phi_i =
  // b_i . phi_j.
  const Eigen::MatrixXd b =
      mf::electrode_currents(mesh, conductor.locator(), electrodes, conductor.reference_node());
  const Eigen::MatrixXd transfer = b.transpose() * lf; // 3 x 3 [V/A]
  // All entries share the large potential of the sink at the grounded corner (in the fat), so
  // the asymmetry is also compared with the spread of the entries.
  const double asym = (transfer - transfer.transpose()).cwiseAbs().maxCoeff();
  const double spread = transfer.maxCoeff() - transfer.minCoeff();
  std::cout << "reciprocity: transfer matrix [V/A]\n"
            << transfer << "\nmax |T - T^T| / max |T| = " << asym / transfer.cwiseAbs().maxCoeff()
            << ", / (max T - min T) = " << asym / spread << "\n";
  EXPECT_LT(asym, 1e-10 * spread);
  // Sampling the lead fields at the point electrodes gives the same numbers as the loads.
  Points p(2, 3);
  p << electrodes[0].position_m.transpose(), electrodes[1].position_m.transpose();
  const Eigen::MatrixXd at = mf::sample(conductor.locator().locate(p), lf);
  EXPECT_LT((at - transfer.topRows(2)).cwiseAbs().maxCoeff(),
            1e-13 * transfer.cwiseAbs().maxCoeff());
}

TEST(LeadField, RereferencedToAnElectrodeDoesNotDependOnTheGroundedNode) {
  const mm::TetMesh mesh = two_tissue_block();
  const auto electrodes = three_electrodes(mesh);
  mf::VolumeConductor a(mesh, two_tissue_table());
  mf::VolumeConductorParams params;
  params.reference_node = mesh.n_nodes() / 2 + 7;
  mf::VolumeConductor b(mesh, two_tissue_table(), params);
  EXPECT_NE(a.reference_node(), b.reference_node());
  const Eigen::MatrixXd la = mf::rereference_to_electrode(a.lead_fields(electrodes), 2);
  const Eigen::MatrixXd lb = mf::rereference_to_electrode(b.lead_fields(electrodes), 2);
  // Lead fields are defined up to a constant per column; differences between nodes must agree.
  const Eigen::MatrixXd da = la.rowwise() - la.row(0);
  const Eigen::MatrixXd db = lb.rowwise() - lb.row(0);
  EXPECT_LT((da - db).cwiseAbs().maxCoeff(), 1e-9 * da.cwiseAbs().maxCoeff());
  EXPECT_EQ(la.col(2).cwiseAbs().maxCoeff(), 0.0);
  const Eigen::MatrixXd avg = mf::average_reference(la);
  EXPECT_LT(avg.rowwise().sum().cwiseAbs().maxCoeff(), 1e-12 * la.cwiseAbs().maxCoeff());
}

namespace {

/// The stiffness matrix of a unit cube of n^3 cells of conductivity 1, node 0 grounded.
Eigen::SparseMatrix<double> grounded_box_stiffness(int n) {
  const mm::TetMesh mesh = mm::structured_box_mesh({0, 0, 0}, {1, 1, 1}, {n, n, n});
  return mf::ground_stiffness(
      mf::assemble_stiffness(mesh.nodes_m, mesh.tets, mf::isotropic_tensors(mesh.n_tets(), 1.0)),
      0);
}

} // namespace

TEST(SpdSolver, DirectAndIterativeAgreeToOnePartPerMillion) {
  const mm::TetMesh mesh = two_tissue_block();
  const auto electrodes = three_electrodes(mesh);
  mf::VolumeConductor direct(mesh, two_tissue_table());
  mf::VolumeConductorParams params;
  params.solver.method = mf::SolverMethod::iterative;
  mf::VolumeConductor iterative(mesh, two_tissue_table(), params);
  EXPECT_EQ(direct.solver().report().method, mf::SolverMethod::direct);
  EXPECT_EQ(iterative.solver().report().method, mf::SolverMethod::iterative);
  const Eigen::MatrixXd ld = direct.lead_fields(electrodes);
  const Eigen::MatrixXd li = iterative.lead_fields(electrodes);
  const double diff = (ld - li).cwiseAbs().maxCoeff() / ld.cwiseAbs().maxCoeff();
  std::cout << "direct vs iterative (incomplete Cholesky): max |difference| / max |lead field| = "
            << diff << "\n";
  EXPECT_LT(diff, 1e-6);
  params.solver.preconditioner = mf::Preconditioner::jacobi;
  mf::VolumeConductor iterative_jacobi(mesh, two_tissue_table(), params);
  const double diff_jacobi = (ld - iterative_jacobi.lead_fields(electrodes)).cwiseAbs().maxCoeff() /
                             ld.cwiseAbs().maxCoeff();
  std::cout << "direct vs iterative (Jacobi): " << diff_jacobi << "\n";
  EXPECT_LT(diff_jacobi, 1e-6);
  // Each iterative column is computed serially: identical at 1 and 2 threads.
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(1);
  const Eigen::MatrixXd l1 = iterative.lead_fields(electrodes);
  omp_set_num_threads(2);
  const Eigen::MatrixXd l2 = iterative.lead_fields(electrodes);
  omp_set_num_threads(threads_before);
  EXPECT_EQ(std::memcmp(l1.data(), l2.data(), sizeof(double) * l1.size()), 0);
}

TEST(SpdSolver, ChoosesTheIterativeMethodWhenTheFactorExceedsTheMemoryBudget) {
  const auto k = grounded_box_stiffness(6);
  mf::SolverParams params;
  const mf::SpdSolver roomy(k, params);
  EXPECT_EQ(roomy.report().method, mf::SolverMethod::direct);
  EXPECT_GT(roomy.report().estimated_factor_bytes, 8.0 * roomy.report().n_rows);
  EXPECT_GE(roomy.report().factor_bytes, 8.0 * roomy.report().factor_nnz);
  params.memory_budget_bytes = 0.5 * roomy.report().estimated_factor_bytes;
  const mf::SpdSolver tight(k, params);
  EXPECT_EQ(tight.report().method, mf::SolverMethod::iterative);
  EXPECT_EQ(mf::solver_method_from_string("iterative"), mf::SolverMethod::iterative);
  expect_throw_with<myotwin::BadInput>([] { (void)mf::solver_method_from_string("lu"); },
                                       {"\"lu\"", "automatic, direct, iterative"});
}

TEST(SpdSolver, ShowsTheAnalysedFactorBeforeFactorisingAndStopsWhenTheCallbackRefuses) {
  const auto k = grounded_box_stiffness(6);
  mf::SolverParams params;
  int calls = 0;
  double seen_estimate = 0.0;
  params.before_factorising = [&](const mf::SolverReport& r) {
    ++calls;
    seen_estimate = r.estimated_factor_bytes;
    EXPECT_EQ(r.factor_bytes, 0.0); // not factorised yet
    EXPECT_EQ(r.factor_nnz, 0);
  };
  const mf::SpdSolver solver(k, params);
  EXPECT_EQ(calls, 1);
  EXPECT_GT(seen_estimate, 8.0 * static_cast<double>(k.rows()));
  EXPECT_DOUBLE_EQ(seen_estimate, solver.report().estimated_factor_bytes);
  // A refusal in the callback (as the lead-field run's memory check) stops before factorising.
  params.before_factorising = [](const mf::SolverReport& r) {
    myotwin::check_memory_estimate(r.estimated_factor_bytes, "factor", "test");
  };
  myotwin::set_memory_limit_bytes(0.5 * seen_estimate);
  expect_throw_with<myotwin::BadInput>([&] { const mf::SpdSolver s(k, params); },
                                       {"factor needs about", "more than the limit"});
  myotwin::set_memory_limit_bytes(0.0);
  // The iterative method has no factor: no call.
  calls = 0;
  params.before_factorising = [&](const mf::SolverReport&) { ++calls; };
  params.method = mf::SolverMethod::iterative;
  const mf::SpdSolver cg(k, params);
  EXPECT_EQ(calls, 0);
}

TEST(SpdSolver, NonConvergenceIsNumericalErrorNamingTheRightHandSideIterationsAndResidual) {
  const auto k = grounded_box_stiffness(8);
  mf::SolverParams params;
  params.method = mf::SolverMethod::iterative;
  params.cg_max_iterations = 2;
  mf::SpdSolver solver(k, params);
  Eigen::MatrixXd b = Eigen::MatrixXd::Zero(k.rows(), 3);
  b(100, 1) = 1.0;
  b(200, 1) = -1.0;
  b(300, 2) = 1.0;
  expect_throw_with<myotwin::NumericalError>(
      [&] { (void)solver.solve(b); },
      {"right-hand side 1", "after 2 iterations", "relative residual"});
}

TEST(SpdSolver, UngroundedStiffnessIsNumericalErrorAskingForAGroundedNode) {
  const mm::TetMesh mesh = mm::structured_box_mesh({0, 0, 0}, {1, 1, 1}, {5, 5, 5});
  const auto k =
      mf::assemble_stiffness(mesh.nodes_m, mesh.tets, mf::isotropic_tensors(mesh.n_tets(), 1.0));
  mf::SolverParams params;
  params.method = mf::SolverMethod::direct;
  expect_throw_with<myotwin::NumericalError>([&] { const mf::SpdSolver s(k, params); },
                                             {"one node grounded"});
  const mf::SpdSolver grounded(mf::ground_stiffness(k, 0), params);
  std::cout << "grounded 5^3 box: reciprocal condition estimate "
            << grounded.report().rcond_estimate << "\n";
  EXPECT_GT(grounded.report().rcond_estimate, 1e-6);
}

TEST(LeadField, ReportsProgressInElectrodesDone) {
  const mm::TetMesh mesh = two_tissue_block();
  mf::VolumeConductor conductor(mesh, two_tissue_table());
  std::vector<myotwin::ProgressEvent> events;
  (void)conductor.lead_fields(three_electrodes(mesh),
                              [&](const myotwin::ProgressEvent& e) { events.push_back(e); });
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().task, "lead fields");
  EXPECT_EQ(events.back().done, 3u);
  EXPECT_EQ(events.back().total, 3u);
}
