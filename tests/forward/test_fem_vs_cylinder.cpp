// The FEM volume conductor on a CGAL mesh of a cylindrical label phantom (bone, anisotropic
// muscle, fat, skin) against the analytical layered cylinder (cylinder_conductor.hpp, Farina,
// Mesin, Martina and Merletti 2004): the MUAP of a straight fibre parallel to the axis, seen by
// point electrodes on the skin, through FEM lead fields (reciprocity) and through the cylinder's
// transfer function.
//
// What is comparable. The FEM lead fields are referenced to the grounded node and the cylinder's
// potential to z = +-inf, so monopolar signals differ by a constant per instant (the potential
// of the reference point). Both models are therefore referenced to the same electrode on the far
// side of the limb (theta = 180 deg), and single-differential signals (no reference at all) are
// compared too. The FEM cylinder is finite with insulated ends; the zero net current of the
// fibre removes the axial linear term of the infinite cylinder, and the cut ends are far enough
// away that their effect at the mid electrodes is small (measured below).

#include <array>
#include <cmath>
#include <iostream>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <gtest/gtest.h>

#include "myotwin/anatomy/fibres.hpp"
#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/motor_units.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/conductor/cylinder_conductor.hpp"
#include "myotwin/forward/conductor/lead_field.hpp"
#include "myotwin/forward/source/muap.hpp"
#include "myotwin/meshing/image_mesher.hpp"
#include "straight_fibre.hpp"

namespace ma = myotwin::anatomy;
namespace mf = myotwin::forward;
namespace mm = myotwin::meshing;
using ma::TissueClass;

namespace {

constexpr std::int32_t bone_label = 1, muscle_label = 2, near_label = 3, fat_label = 4,
                       skin_label = 5;

/// The phantom's geometry and mesh sizes.
struct PhantomSetup {
  mf::CylinderLayers layers;   // radii and conductivities shared by both models
  double half_length_m = 0.08; // the FEM cylinder spans |z| <= half_length
  double voxel_xy_m = 0.25e-3; // in-plane voxel size
  double voxel_z_m = 1.0e-3;   // axial voxel size
  double fibre_r_m = 18e-3;    // fibre radius (2 mm into the muscle, 6 mm under the skin)
  double fibre_half_length_m = 0.03;
  double near_radius_m = 5e-3; // muscle within this distance of the fibre: finer cells
  double cell_skin_mm = 1.0, cell_fat_mm = 1.5, cell_near_mm = 0.6, cell_muscle_mm = 3.0,
         cell_bone_mm = 4.0;
  double facet_distance_mm = 0.15; // surface approximation, every class (mesher default 0.4)
};

ma::TissueTable phantom_tissues(const mf::CylinderLayers& L) {
  ma::TissueTable t;
  t.tissues.push_back(
      {bone_label, "bone", TissueClass::bone, L.sigma_bone_S_per_m, L.sigma_bone_S_per_m, "", 0});
  t.tissues.push_back({muscle_label, "muscle", TissueClass::muscle, L.sigma_muscle_z_S_per_m,
                       L.sigma_muscle_rho_S_per_m, "", 0});
  t.tissues.push_back({near_label, "muscle_near_fibre", TissueClass::muscle,
                       L.sigma_muscle_z_S_per_m, L.sigma_muscle_rho_S_per_m, "", 0});
  t.tissues.push_back(
      {fat_label, "fat", TissueClass::fat, L.sigma_fat_S_per_m, L.sigma_fat_S_per_m, "", 0});
  t.tissues.push_back(
      {skin_label, "skin", TissueClass::skin, L.sigma_skin_S_per_m, L.sigma_skin_S_per_m, "", 0});
  return t;
}

/// Concentric cylinders along z, labelled by the radius of each voxel centre, with one voxel of
/// background around (in-plane) and one slice at each end.
ma::LabelVolume phantom_volume(const PhantomSetup& s) {
  const auto& L = s.layers;
  ma::LabelVolume v;
  const double h = s.voxel_xy_m, hz = s.voxel_z_m;
  const auto n_xy = static_cast<std::int64_t>(std::ceil(2.0 * L.skin_radius_m / h)) + 3;
  const auto n_z = static_cast<std::int64_t>(std::round(2.0 * s.half_length_m / hz)) + 3;
  v.size = {n_xy, n_xy, n_z};
  v.spacing_m = Eigen::Vector3d(h, h, hz);
  const double c = 0.5 * static_cast<double>(n_xy - 1), cz = 0.5 * static_cast<double>(n_z - 1);
  v.origin_m = Eigen::Vector3d(-c * h, -c * h, -cz * hz);
  v.labels.assign(static_cast<std::size_t>(v.n_voxels()), 0);
  for (std::int64_t k = 1; k + 1 < n_z; ++k) {
    const double z = (static_cast<double>(k) - cz) * hz;
    for (std::int64_t j = 0; j < n_xy; ++j) {
      for (std::int64_t i = 0; i < n_xy; ++i) {
        const double x = (static_cast<double>(i) - c) * h, y = (static_cast<double>(j) - c) * h;
        const double r = std::hypot(x, y);
        std::int32_t label = 0;
        if (r <= L.bone_radius_m) {
          label = bone_label;
        } else if (r <= L.muscle_radius_m) {
          const bool near = std::hypot(x - s.fibre_r_m, y) <= s.near_radius_m &&
                            std::abs(z) <= s.fibre_half_length_m + s.near_radius_m;
          label = near ? near_label : muscle_label;
        } else if (r <= L.fat_radius_m) {
          label = fat_label;
        } else if (r <= L.skin_radius_m) {
          label = skin_label;
        }
        v.labels[static_cast<std::size_t>(v.index(i, j, k))] = label;
      }
    }
  }
  return v;
}

using myotwin::testing::StraightFibre;

/// A fibre along z from -half to +half with its end-plate at z = end_plate_z [m].
StraightFibre straight_fibre(double x_m, double y_m, double half_m, double end_plate_z_m) {
  return myotwin::testing::straight_fibre(x_m, y_m, -half_m, 2.0 * half_m, end_plate_z_m + half_m);
}

/// Radius [m] at which the ray from the axis point (0, 0, z) in direction theta leaves the mesh
/// (the outermost crossing of a boundary triangle; Moller-Trumbore), or NaN.
double surface_radius_m(const mm::TetMesh& mesh, const mm::TriArray& faces, double theta,
                        double z) {
  const Eigen::Vector3d o(0.0, 0.0, z), d(std::cos(theta), std::sin(theta), 0.0);
  double best = std::numeric_limits<double>::quiet_NaN();
  for (Eigen::Index f = 0; f < faces.rows(); ++f) {
    const Eigen::Vector3d a = mesh.nodes_m.row(faces(f, 0)).transpose();
    const Eigen::Vector3d e1 = mesh.nodes_m.row(faces(f, 1)).transpose() - a;
    const Eigen::Vector3d e2 = mesh.nodes_m.row(faces(f, 2)).transpose() - a;
    const Eigen::Vector3d pv = d.cross(e2);
    const double det = e1.dot(pv);
    if (std::abs(det) < 1e-18) {
      continue;
    }
    const Eigen::Vector3d tv = o - a;
    const double u = tv.dot(pv) / det;
    if (u < 0.0 || u > 1.0) {
      continue;
    }
    const Eigen::Vector3d qv = tv.cross(e1);
    const double v = d.dot(qv) / det;
    if (v < 0.0 || u + v > 1.0) {
      continue;
    }
    const double t = e2.dot(qv) / det;
    if (t > 0.0 && !(t <= best)) {
      best = t;
    }
  }
  return best;
}

double pearson(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  const Eigen::VectorXd x = a.array() - a.mean(), y = b.array() - b.mean();
  return x.dot(y) / (x.norm() * y.norm());
}

/// Normalised mean square error of `a` against the reference `b`.
double nmse(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  return (a - b).squaredNorm() / b.squaredNorm();
}

double peak_to_peak(const Eigen::VectorXd& v) {
  return v.maxCoeff() - v.minCoeff();
}

struct Comparison {
  std::vector<std::string> names;
  std::vector<double> corr, nmse, pp_fem_uV, pp_cyl_uV;
  std::vector<double> effective_radius_mm; // of the bone, muscle, fat and skin in the mesh
  std::vector<double> surface_offset_mm;   // FEM electrode radius - R per electrode
  std::int64_t n_tets = 0, n_nodes = 0;
  double mesh_s = 0.0, solve_s = 0.0, total_s = 0.0;
};

/// Meshes the phantom, computes both MUAPs and compares the referenced monopolar and the
/// single-differential channels.
Comparison compare(const PhantomSetup& s) {
  myotwin::Stopwatch total;
  const auto& L = s.layers;
  const double R = L.skin_radius_m;
  const ma::TissueTable tissues = phantom_tissues(L);
  const ma::LabelVolume volume = phantom_volume(s);

  mm::MeshParams p;
  p.class_cell_size_mm[TissueClass::skin] = s.cell_skin_mm;
  p.class_cell_size_mm[TissueClass::fat] = s.cell_fat_mm;
  p.class_cell_size_mm[TissueClass::muscle] = s.cell_muscle_mm;
  p.class_cell_size_mm[TissueClass::bone] = s.cell_bone_mm;
  p.tissue_cell_size_mm["muscle_near_fibre"] = s.cell_near_mm;
  for (auto& [cls, d] : p.class_facet_distance_mm) {
    d = s.facet_distance_mm;
  }
  myotwin::Stopwatch watch;
  mm::TetMesh mesh = mm::mesh_label_volume(volume, tissues, p, 7).mesh;
  Comparison out;
  out.mesh_s = watch.elapsed_s();
  out.n_tets = mesh.n_tets();
  out.n_nodes = mesh.n_nodes();
  // Effective layer radii: sqrt(volume inside the interface / (pi length)).
  std::array<double, 6> label_volume_m3{};
  for (Eigen::Index t = 0; t < mesh.n_tets(); ++t) {
    label_volume_m3[static_cast<std::size_t>(mesh.labels[static_cast<std::size_t>(t)])] +=
        mm::tet_volume_m3(mesh, t);
  }
  const double length_m = mesh.nodes_m.col(2).maxCoeff() - mesh.nodes_m.col(2).minCoeff();
  double inside_m3 = 0.0;
  for (const auto label : {bone_label, muscle_label, fat_label, skin_label}) {
    inside_m3 += label_volume_m3[static_cast<std::size_t>(label)];
    if (label == muscle_label) {
      inside_m3 += label_volume_m3[static_cast<std::size_t>(near_label)];
    }
    out.effective_radius_mm.push_back(1e3 * std::sqrt(inside_m3 / (std::numbers::pi * length_m)));
  }
  for (Eigen::Index t = 0; t < mesh.n_tets(); ++t) {
    const auto label = mesh.labels[static_cast<std::size_t>(t)];
    if (label == muscle_label || label == near_label) {
      mesh.fibre_direction.row(t) << 0.0, 0.0, 1.0;
    }
  }

  // Electrodes: theta = 0 at z = -10, 0, 10, 20 mm, theta = 45 deg at z = 10 mm, and the
  // reference at theta = 180 deg, z = 0. The FEM electrodes sit on the faceted mesh surface
  // (where the radial ray leaves the mesh, 1 um inside), the cylinder's at r = R.
  const double deg = std::numbers::pi / 180.0;
  const std::vector<std::pair<double, double>> theta_z{
      {0.0, -10e-3}, {0.0, 0.0}, {0.0, 10e-3}, {0.0, 20e-3}, {45 * deg, 10e-3}, {180 * deg, 0.0}};
  const auto n_e = static_cast<Eigen::Index>(theta_z.size());
  Eigen::MatrixX3d on_skin(n_e, 3);
  std::vector<mf::Electrode> electrodes(theta_z.size());
  const mm::TriArray faces = mm::boundary_faces(mesh);
  for (Eigen::Index e = 0; e < n_e; ++e) {
    const auto [th, z] = theta_z[static_cast<std::size_t>(e)];
    on_skin.row(e) << R * std::cos(th), R * std::sin(th), z;
    const double r_fem = surface_radius_m(mesh, faces, th, z) - 1e-6;
    out.surface_offset_mm.push_back(1e3 * (r_fem - R));
    electrodes[static_cast<std::size_t>(e)].position_m =
        Eigen::Vector3d(r_fem * std::cos(th), r_fem * std::sin(th), z);
  }

  watch = myotwin::Stopwatch();
  mf::VolumeConductor conductor(mesh, tissues);
  const Eigen::MatrixXd lead = conductor.lead_fields(electrodes);
  out.solve_s = watch.elapsed_s();

  const StraightFibre fibre = straight_fibre(s.fibre_r_m, 0.0, s.fibre_half_length_m, 0.0);
  mf::MuapParams params;
  params.fs_Hz = 4096.0;
  const Eigen::MatrixXd fem =
      mf::unit_muap(fibre.fibres, fibre.pool, 0, n_e,
                    mf::lead_field_transfer_function(conductor.locator(), lead), params);
  const Eigen::MatrixXd cyl = mf::unit_muap(fibre.fibres, fibre.pool, 0, n_e,
                                            mf::cylinder_transfer_function(L, on_skin), params);

  auto add = [&](const std::string& name, const Eigen::VectorXd& f, const Eigen::VectorXd& c) {
    out.names.push_back(name);
    out.corr.push_back(pearson(f, c));
    out.nmse.push_back(nmse(f, c));
    out.pp_fem_uV.push_back(1e6 * peak_to_peak(f));
    out.pp_cyl_uV.push_back(1e6 * peak_to_peak(c));
  };
  const Eigen::Index ref = n_e - 1;
  const std::vector<std::string> names{"z-10", "z0", "z10", "z20", "45deg,z10"};
  for (Eigen::Index e = 0; e < ref; ++e) {
    add("mono " + names[static_cast<std::size_t>(e)], fem.col(e) - fem.col(ref),
        cyl.col(e) - cyl.col(ref));
  }
  for (Eigen::Index e = 0; e + 1 < 4; ++e) {
    add("sd " + names[static_cast<std::size_t>(e + 1)] + "-" + names[static_cast<std::size_t>(e)],
        fem.col(e + 1) - fem.col(e), cyl.col(e + 1) - cyl.col(e));
  }
  out.total_s = total.elapsed_s();
  std::cout << "[ fem vs cylinder ] " << out.n_tets << " tets, " << out.n_nodes << " nodes; length "
            << 2e3 * s.half_length_m << " mm; mesh " << out.mesh_s << " s, conductor + lead fields "
            << out.solve_s << " s, total " << out.total_s << " s; effective radii [mm]:";
  for (const double r : out.effective_radius_mm) {
    std::cout << " " << r;
  }
  std::cout << "; electrode radius - R [mm]:";
  for (const double o : out.surface_offset_mm) {
    std::cout << " " << o;
  }
  std::cout << "\n";
  for (std::size_t i = 0; i < out.names.size(); ++i) {
    std::cout << "  " << out.names[i] << ": correlation " << out.corr[i] << ", NMSE "
              << 100.0 * out.nmse[i] << " %, p-p FEM " << out.pp_fem_uV[i] << " uV, cylinder "
              << out.pp_cyl_uV[i] << " uV\n";
  }
  return out;
}

} // namespace

TEST(FemVsCylinder, MuapOnALabelledCylinderMatchesTheAnalyticalCylinder) {
  // Default layers (bone 7, muscle 20, fat 23, skin 24 mm), 0.25 mm voxels in-plane, 1 mm along
  // z, 160 mm long; one fibre 60 mm long (end-plate at z = 0) 6 mm under the skin; cells: skin
  // 1, fat 1.5, muscle within 5 mm of the fibre 0.6, other muscle 3, bone 4 mm; facets within
  // 0.15 mm. Measured (400k tets, 77k nodes; 18-20 s in Release on 2 cores, 16 s of it meshing):
  //   monopolar vs the theta = 180 deg electrode: correlation 0.9985-0.9999, NMSE 0.08-0.32 %;
  //   single differential: correlation 0.9987-0.9992, NMSE 0.45-0.56 %.
  // What mattered (docs/forward.md): 1 mm cells around the fibre gave differential NMSE 2-3.7 %;
  // 0.5 mm voxels with 0.4 mm facets (staircase interfaces) about 1-1.6 %; a 100 mm cylinder (caps
  // 20 mm beyond the fibre ends) put the 45-deg referenced channel 19 % low (NMSE 4.4 %).
  // Not explained yet: the FEM's single differentials stay 5-8 % larger peak-to-peak with the
  // same shape; refining skin, fat, deep muscle, voxels (0.125 mm) or facets did not remove it,
  // a homogeneous cylinder (all 0.1 S/m) agrees within 2 %, and each conductivity contrast
  // (fat, skin, anisotropy) adds a few per cent.
  const Comparison c = compare(PhantomSetup{});
  ASSERT_EQ(c.names.size(), 8U);
  for (std::size_t i = 0; i < c.names.size(); ++i) {
    EXPECT_GE(c.corr[i], 0.99) << c.names[i];
    EXPECT_LE(c.nmse[i], 0.05) << c.names[i];
  }
}

TEST(FemVsCylinder, SlowDifferenceFallsWhenTheMeshIsRefined) {
  // Coarser: 0.5 mm voxels, facets within 0.4 mm (the mesher's default), 1 mm cells around the
  // fibre; against the default setup.
  PhantomSetup coarse;
  coarse.voxel_xy_m = 0.5e-3;
  coarse.facet_distance_mm = 0.4;
  coarse.cell_near_mm = 1.0;
  const Comparison a = compare(coarse);
  const Comparison b = compare(PhantomSetup{});
  double worst_a = 0.0, worst_b = 0.0;
  for (std::size_t i = 0; i < a.names.size(); ++i) {
    worst_a = std::max(worst_a, a.nmse[i]);
    worst_b = std::max(worst_b, b.nmse[i]);
  }
  std::cout << "[ fem vs cylinder ] worst NMSE " << 100.0 * worst_a << " % (" << a.n_tets
            << " tets) -> " << 100.0 * worst_b << " % (" << b.n_tets << " tets)\n";
  EXPECT_LT(worst_b, worst_a);
}
