// The FEM volume conductor on a CGAL mesh of three concentric spheres against the closed form:
// the potential on the outer surface of a current dipole at the centre (two point currents
// +-I a few mm apart on the z axis), as the Legendre series
//
//   phi(r, theta) = sum_l (A_l r^l + B_l r^-(l+1)) P_l(cos theta)   in each shell,
//
// whose coefficients follow from the primary source term I z0^l / (4 pi sigma_1 r^(l+1)) in the
// inner sphere, continuity of phi and of sigma dphi/dr at the two interfaces, and no current
// through the outer surface (a 5 x 5 system per degree l).

#include <cmath>
#include <numbers>

#include <Eigen/Dense>
#include <gtest/gtest.h>

#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/conductor/lead_field.hpp"
#include "myotwin/meshing/image_mesher.hpp"

using namespace myotwin;
using namespace myotwin::forward;
using anatomy::TissueClass;

namespace {

constexpr double r1_m = 16e-3, r2_m = 19e-3, r3_m = 24e-3;
constexpr double sigma1 = 0.5, sigma2 = 0.1, sigma3 = 0.5; // S/m

anatomy::TissueTable sphere_tissues() {
  anatomy::TissueTable t;
  t.tissues.push_back({1, "core", TissueClass::other, sigma1, sigma1, "", 0});
  t.tissues.push_back({2, "shell", TissueClass::bone, sigma2, sigma2, "", 0});
  t.tissues.push_back({3, "outer", TissueClass::skin, sigma3, sigma3, "", 0});
  return t;
}

/// Legendre polynomial P_l(x).
double legendre(int l, double x) {
  double p0 = 1.0, p1 = x;
  if (l == 0)
    return p0;
  for (int k = 2; k <= l; ++k) {
    const double p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
    p0 = p1;
    p1 = p2;
  }
  return p1;
}

/// Potential [V] at radius r [m] (outer shell) and polar angle cos_theta of point currents
/// `current_A` at z = `z_m` on the axis (in the inner sphere), summing degrees 1..60 (the l = 0
/// terms cancel for currents summing to zero).
double analytic_outer(double r_m, double cos_theta, const std::vector<double>& z_m,
                      const std::vector<double>& current_A) {
  const double R = r3_m; // lengths in units of the outer radius
  const double a = r1_m / R, b = r2_m / R, x = r_m / R;
  double phi = 0.0;
  for (int l = 1; l <= 60; ++l) {
    double s = 0.0; // primary coefficient (units of R)
    for (std::size_t k = 0; k < z_m.size(); ++k)
      s += current_A[k] * std::pow(z_m[k] / R, l) / (4.0 * std::numbers::pi * sigma1 * R);
    const double L = l;
    // Unknowns: A1, A2, B2, A3, B3.
    Eigen::Matrix<double, 5, 5> M = Eigen::Matrix<double, 5, 5>::Zero();
    Eigen::Matrix<double, 5, 1> rhs = Eigen::Matrix<double, 5, 1>::Zero();
    const auto pw = [](double v, double e) { return std::pow(v, e); };
    // r = a: continuity and flux.
    M(0, 0) = pw(a, L);
    M(0, 1) = -pw(a, L);
    M(0, 2) = -pw(a, -L - 1);
    rhs(0) = -s * pw(a, -L - 1);
    M(1, 0) = sigma1 * L * pw(a, L - 1);
    M(1, 1) = -sigma2 * L * pw(a, L - 1);
    M(1, 2) = sigma2 * (L + 1) * pw(a, -L - 2);
    rhs(1) = sigma1 * (L + 1) * s * pw(a, -L - 2);
    // r = b.
    M(2, 1) = pw(b, L);
    M(2, 2) = pw(b, -L - 1);
    M(2, 3) = -pw(b, L);
    M(2, 4) = -pw(b, -L - 1);
    M(3, 1) = sigma2 * L * pw(b, L - 1);
    M(3, 2) = -sigma2 * (L + 1) * pw(b, -L - 2);
    M(3, 3) = -sigma3 * L * pw(b, L - 1);
    M(3, 4) = sigma3 * (L + 1) * pw(b, -L - 2);
    // r = 1: no normal current.
    M(4, 3) = L;
    M(4, 4) = -(L + 1);
    const Eigen::Matrix<double, 5, 1> c = M.fullPivLu().solve(rhs);
    phi += (c(3) * pw(x, L) + c(4) * pw(x, -L - 1)) * legendre(l, cos_theta);
  }
  return phi;
}

/// Relative L2 error of the FEM potential on the outer surface nodes for a dipole of +-1 A at
/// z = +-2 mm, on a mesh with cells of `cell_mm`.
double sphere_error(double cell_mm, std::int64_t* n_tets) {
  anatomy::LabelVolume v;
  const double h = 0.5e-3;
  const std::int64_t n = 104;
  v.size = {n, n, n};
  v.spacing_m = Eigen::Vector3d::Constant(h);
  const double c = 0.5 * static_cast<double>(n - 1);
  v.origin_m = Eigen::Vector3d::Constant(-c * h);
  v.labels.assign(static_cast<std::size_t>(v.n_voxels()), 0);
  for (std::int64_t k = 0; k < n; ++k)
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < n; ++i) {
        const double r = h * Eigen::Vector3d(static_cast<double>(i) - c, static_cast<double>(j) - c,
                                             static_cast<double>(k) - c)
                                 .norm();
        v.labels[static_cast<std::size_t>(v.index(i, j, k))] = r <= r1_m   ? 1
                                                               : r <= r2_m ? 2
                                                               : r <= r3_m ? 3
                                                                           : 0;
      }
  meshing::MeshParams p;
  for (auto& [cls, size] : p.class_cell_size_mm)
    size = cell_mm;
  for (auto& [cls, size] : p.class_facet_distance_mm)
    size = std::min(size, 0.25 * cell_mm);
  const meshing::TetMesh mesh = meshing::mesh_label_volume(v, sphere_tissues(), p, 5).mesh;
  *n_tets = mesh.n_tets();

  VolumeConductor conductor(mesh, sphere_tissues());
  const std::vector<double> z{2e-3, -2e-3}, current{1.0, -1.0};
  Eigen::Matrix<double, 2, 3> points = Eigen::Matrix<double, 2, 3>::Zero();
  points(0, 2) = z[0];
  points(1, 2) = z[1];
  const PointLocations loc = conductor.locator().locate(points);
  Eigen::VectorXd b = point_current_rhs(mesh.n_nodes(), loc, 0, current[0]) +
                      point_current_rhs(mesh.n_nodes(), loc, 1, current[1]);
  b[conductor.reference_node()] = 0.0;
  const Eigen::VectorXd phi = conductor.solver().solve(b);

  const meshing::TriArray faces = meshing::boundary_faces(mesh);
  std::vector<char> on_surface(static_cast<std::size_t>(mesh.n_nodes()), 0);
  for (Eigen::Index f = 0; f < faces.rows(); ++f)
    for (int k = 0; k < 3; ++k)
      on_surface[static_cast<std::size_t>(faces(f, k))] = 1;
  std::vector<double> fem, exact;
  for (Eigen::Index i = 0; i < mesh.n_nodes(); ++i)
    if (on_surface[static_cast<std::size_t>(i)]) {
      const Eigen::Vector3d x = mesh.nodes_m.row(i).transpose();
      fem.push_back(phi[i]);
      exact.push_back(analytic_outer(x.norm(), x.z() / x.norm(), z, current));
    }
  const auto m = static_cast<Eigen::Index>(fem.size());
  Eigen::VectorXd f = Eigen::Map<Eigen::VectorXd>(fem.data(), m);
  Eigen::VectorXd e = Eigen::Map<Eigen::VectorXd>(exact.data(), m);
  f.array() -= f.mean();
  e.array() -= e.mean();
  return (f - e).norm() / e.norm();
}

} // namespace

TEST(Spheres, LegendreSeriesOfACentredDipoleIsTheOneTermClosedForm) {
  // Far from the source pair (d = 4 mm << radii) the l = 1 term dominates: phi ~ cos(theta).
  const std::vector<double> z{2e-3, -2e-3}, current{1.0, -1.0};
  const double top = analytic_outer(r3_m, 1.0, z, current);
  EXPECT_GT(top, 0.0);
  EXPECT_NEAR(analytic_outer(r3_m, -1.0, z, current), -top, 1e-12 * top);
  EXPECT_NEAR(analytic_outer(r3_m, 0.5, z, current) / top, 0.5, 0.02);
}

TEST(Spheres, DipolePotentialOnTheOuterSurfaceMatchesTheSeriesWithinTwoPercent) {
  Stopwatch watch;
  std::int64_t n_tets = 0;
  const double err = sphere_error(2.0, &n_tets);
  std::cout << "3-shell sphere, 2 mm cells: " << n_tets << " tets, relative L2 error "
            << 100.0 * err << " % (" << watch.elapsed_s() << " s)\n";
  EXPECT_LT(err, 0.02);
}

TEST(Spheres, SlowErrorFallsWhenTheMeshIsRefined) {
  std::int64_t coarse_tets = 0, fine_tets = 0;
  const double coarse = sphere_error(3.0, &coarse_tets);
  const double fine = sphere_error(1.25, &fine_tets);
  std::cout << "3-shell sphere: 3 mm cells " << coarse_tets << " tets, error " << 100 * coarse
            << " %; 1.25 mm cells " << fine_tets << " tets, error " << 100 * fine << " %\n";
  EXPECT_LT(fine, coarse);
}
