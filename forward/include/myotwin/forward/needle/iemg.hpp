#pragma once
/// \file iemg.hpp
/// Intramuscular EMG (after Akhmadeev et al. 2020, IEEE TBME 67:2005): needle arrays and fine
/// wires in an infinite anisotropic medium, MUAPs from every real fibre of each unit with its
/// nerve-branch and end-plate delays, and EMG in which the neuromuscular-junction jitter moves
/// each fibre's potential independently at every discharge.
///
/// Fibres. The muscle's model fibres (an anatomy output, or a cylinder built here) each stand
/// for `weight` real fibres. Each model fibre is spread into real sub-fibres (their number the
/// weight, stochastically rounded), parallel offsets of its polyline placed uniformly (seeded) in
/// a disc across it of area = the unit's territory area / the unit's model-fibre count, i.e. the
/// model fibre's share of its own unit's territory, so that the unit's fibres keep their real
/// density near a needle instead of piling up on one line. Each sub-fibre's end-plate is its
/// model fibre's plus a normal offset (sub_fibre_end_plate_sd_m); its activation delay is that of
/// the two-layer nerve branching (nerve_branching.hpp) to its own end-plate point.
///
/// MUAPs. Each sub-fibre's potential at the contacts (fibre_potentials(), line_source.hpp) with
/// its delay, summed over the unit; the time derivatives are kept, so a MUAP can be evaluated at
/// any continuous time by quintic Hermite interpolation (exact for quintics; the error against
/// the direct evaluation is measured in the tests).
///
/// Jitter. At every discharge every fibre's potential is shifted by its own normal draw of sd
/// jitter_s. Fibres are ranked by the energy of their time derivative at the contacts (the
/// jitter's first-order effect is -j dphi/dt); the smallest set carrying jitter_energy_fraction
/// of the unit's total (at most max_jitter_fibres, and only fibres whose jitter moves them by at
/// least jitter_min_V) is kept with its potential, which is moved
/// exactly per discharge (Hermite), the remaining fibres are taken at their mean timing. The
/// share of the derivative energy so left out is reported per unit (jitter_energy_captured).
///
/// Threads. Fibres of a unit are computed in parallel in fixed chunks summed in chunk order;
/// the EMG is parallel over contacts; random draws are keyed by unit, discharge and fibre: the
/// same bits at any thread count.

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "myotwin/anatomy/fibres.hpp"
#include "myotwin/anatomy/motor_units.hpp"
#include "myotwin/core/progress.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/forward/conductor/infinite_medium.hpp"
#include "myotwin/forward/needle/line_source.hpp"
#include "myotwin/forward/needle/nerve_branching.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::forward {

/// A cylindrical muscle for standalone studies (config `iemg.cylinder`): straight parallel
/// fibres along +z from z = 0 to length, axis through x = y = 0.
struct CylinderMuscleParams {
  double radius_m = 8e-3;             ///< key `radius_mm` (default 8 mm)
  double length_m = 0.12;             ///< key `length_mm` (default 120 mm)
  double real_density_per_m2 = 350e6; ///< key `real_density_per_mm2` (350, REFERENCE_VALUES)
  double model_density_per_m2 = 8e6;  ///< key `model_density_per_mm2` (8 per mm^2)
  /// Half-width of the uniform end-plate band as a fraction of the length (key
  /// `end_plate_band_percent`, default 5 %: +/- 5 % of the length, REFERENCE_VALUES.md).
  double end_plate_band_fraction = 0.05;
  /// Motor units (sub-section `motor_units`, anatomy::read_motor_unit_params(); 100 units,
  /// Fuglevand sizes and thresholds).
  anatomy::MotorUnitParams motor_units;
};

/// Parameters of the intramuscular simulation (config section `iemg`).
struct IemgParams {
  /// Sampling frequency of MUAPs and EMG [Hz] (key `fs_Hz`, default 10240, Akhmadeev 2020).
  double fs_Hz = 10240.0;
  /// Fibre source and its discretisation (keys `spatial_resolution_mm` 0.01, `coarse_step_mm`
  /// 1, `near_radius_mm` 1, `sigma_i_S_per_m` 1.01).
  FibrePotentialParams fibre;
  /// Extracellular medium (keys `sigma_l_S_per_m` 0.33, `sigma_t_S_per_m` 0.063, Akhmadeev
  /// 2020); the radial distance is clamped at each fibre's radius.
  AnisotropicMedium medium{0.33, 0.063, 27.5e-6};
  /// End-plate band centre as a percentage of the fibre length from the origin end (key
  /// `end_plate_percent`, default 50; used for the cylinder; the anatomy has its own).
  double end_plate_percent = 50.0;
  /// Neuromuscular-junction jitter sd [s] (key `jitter_us`, default 35 us; 0: none).
  double jitter_s = 35e-6;
  /// Share of the derivative energy whose fibres are jittered exactly (key
  /// `jitter_energy_fraction`, default 0.99, in (0, 1]).
  double jitter_energy_fraction = 0.99;
  /// Fibres whose jitter moves their potential by less than this (jitter_s times the peak of
  /// |dphi/dt| over time and contacts) are not jittered [V] (key `jitter_min_uV`, default
  /// 0.05 uV, far below any recording's noise).
  double jitter_min_V = 0.05e-6;
  /// At most this many jittered fibres per unit (key `max_jitter_fibres`, default 200).
  std::int64_t max_jitter_fibres = 200;
  /// Sd of a sub-fibre's end-plate about its model fibre's [m] (key
  /// `sub_fibre_end_plate_sd_mm`, default 1 mm).
  double sub_fibre_end_plate_sd_m = 1e-3;
  /// MUAP length [s] (key `muap_duration_ms`, default 0: until the last wave of the unit is
  /// extinguished).
  double muap_duration_s = 0.0;
  /// Units to simulate, indices in recruitment order (key `units`, default empty: all).
  std::vector<std::int64_t> units;
};

/// Reads IemgParams (not the muscle source) from the `iemg` section.
/// \throws BadInput naming the key for a wrong type or a value out of range.
IemgParams read_iemg_params(ConfigReader& section);

/// Reads CylinderMuscleParams from a section. \throws BadInput.
CylinderMuscleParams read_cylinder_params(ConfigReader& section);

/// One real fibre: an offset copy of a model fibre.
struct SubFibre {
  Eigen::Index model = 0;                             ///< index of its model fibre
  std::int32_t unit = 0;                              ///< its motor unit
  Eigen::Vector3d offset_m = Eigen::Vector3d::Zero(); ///< parallel offset of the polyline [m]
  double end_plate_m = 0.0;                           ///< end-plate arc length [m]
  Eigen::Vector3d end_plate_point_m = Eigen::Vector3d::Zero(); ///< end-plate point [m]
  double delay_s = 0.0;                                        ///< nerve-branch delay [s]
};

/// A muscle as the intramuscular simulation sees it.
struct IemgMuscle {
  std::string name;
  anatomy::MuscleFibres model_fibres;
  anatomy::MotorUnitPool pool;
  std::vector<SubFibre> fibres;                       ///< every real fibre
  std::vector<std::vector<Eigen::Index>> unit_fibres; ///< per unit, indices into fibres
  Eigen::Vector3d centre_m = Eigen::Vector3d::Zero(); ///< centre of the seed section [m]
};

/// Model fibres and pool of a cylinder (`end_plate_fraction` of the length from z = 0).
/// Positions uniform in the disc (seeded, rng.split(0)), pool from
/// anatomy::build_motor_unit_pool (seed from rng.split(1)), end-plates rng.split(2).
/// \throws BadInput for parameters out of range or fewer model fibres than units.
IemgMuscle cylinder_muscle(const CylinderMuscleParams& params, double end_plate_fraction,
                           const Rng& rng);

/// Spreads the model fibres of `muscle` (model_fibres and pool set) into real sub-fibres with
/// their delays (see the file comment); fills fibres and unit_fibres. Model fibre i draws from
/// rng.split(i); the branching of unit u from rng.split(2^32 + u).
/// \throws BadInput for inconsistent fibres and pool, or parameters out of range.
void spread_sub_fibres(IemgMuscle& muscle, const IemgParams& params,
                       const NerveBranchingParams& branching, const Rng& rng);

/// Distance [m] from `x_m` to the polyline of real fibre `fibre` of `muscle`.
double sub_fibre_distance_m(const IemgMuscle& muscle, const SubFibre& fibre,
                            const Eigen::Vector3d& x_m);

/// The MUAP of one unit at the contacts, with what the EMG synthesis needs for jitter.
struct UnitMuap {
  std::int64_t unit = 0;          ///< index in the pool
  Eigen::MatrixXd phi_V;          ///< #samples x #contacts [V], t_n = n / fs from activation
  Eigen::MatrixXd dphi_V_per_s;   ///< its time derivative [V/s]
  Eigen::MatrixXd d2phi_V_per_s2; ///< its second time derivative [V/s^2]
  std::vector<Eigen::Index> jitter_fibres;   ///< indices into IemgMuscle::fibres, jittered
  std::vector<Eigen::Index> window_start;    ///< first sample of each jittered fibre's window
  std::vector<Eigen::MatrixXd> window_phi_V; ///< per jittered fibre: window x #contacts [V]
  std::vector<Eigen::MatrixXd> window_dphi_V_per_s;
  std::vector<Eigen::MatrixXd> window_d2phi_V_per_s2;
  double jitter_energy_captured = 1.0; ///< share of the derivative energy jittered exactly
  std::int64_t n_fibres = 0;           ///< real fibres summed
};

/// A recording surface of a contact as a quadrature: its potential is the weighted mean of the
/// potential over `patches`, each patch a point set whose mean stands for the patch. A fibre
/// farther than quadrature_factor x `extent_m` from a patch's centre sees the patch at its centre
/// (the error of the centre value is O((extent / distance)^2), measured in the tests); a fibre
/// between full_quadrature_factor and quadrature_factor extents sees the patch's coarser rule
/// (`mid_points_m`, same first and second moments: error O((extent / distance)^4)); a nearer
/// fibre sees every point. A point contact is one patch of one point and extent 0.
struct ContactPatch {
  Eigen::Vector3d centre_m = Eigen::Vector3d::Zero(); ///< [m]
  Eigen::MatrixX3d points_m;                          ///< #points x 3 [m]
  Eigen::VectorXd weights;                            ///< per point, summing to 1
  double extent_m = 0.0;         ///< largest distance of a point from the centre [m]
  double weight = 1.0;           ///< weight of the patch in its contact (the patches' sum to 1)
  Eigen::MatrixX3d mid_points_m; ///< the coarser rule (#points x 3 [m]; empty: the full rule)
  Eigen::VectorXd mid_weights;   ///< its weights, summing to 1
};
/// A contact: its patches, its area [m^2] (0 for a point) and a name for reports.
struct ContactSurface {
  std::vector<ContactPatch> patches;
  double area_m2 = 0.0;
  std::string name;
  /// The point that stands for the contact in reports and layouts: the first patch's centre.
  [[nodiscard]] Eigen::Vector3d centre_m() const { return patches.front().centre_m; }
};
/// A patch is evaluated by its coarser rule for fibres within this many extents of its centre.
inline constexpr double quadrature_factor = 5.0;
/// A patch is evaluated point by point for fibres within this many extents of its centre.
inline constexpr double full_quadrature_factor = 2.0;

/// A point contact at `p_m` [m].
ContactSurface point_contact(const Eigen::Vector3d& p_m, std::string name = "point");

/// MUAPs of `units` (indices into muscle.pool.units; empty: all) at `contacts_m` (#contacts x
/// 3 [m]), point contacts. \throws BadInput when the muscle has no sub-fibres (call
/// spread_sub_fibres() first), for a unit out of range, empty contacts, or parameters out of range.
std::vector<UnitMuap> iemg_muaps(const IemgMuscle& muscle, const std::vector<std::int64_t>& units,
                                 const Eigen::Ref<const Eigen::MatrixX3d>& contacts_m,
                                 const IemgParams& params, const ProgressCallback& progress = {});

/// The same at contacts with recording surfaces: each contact's potential is the mean over its
/// surface (see ContactPatch). \throws BadInput as above, and for a contact without patches or
/// a patch whose weights do not sum to 1.
std::vector<UnitMuap> iemg_muaps(const IemgMuscle& muscle, const std::vector<std::int64_t>& units,
                                 const std::vector<ContactSurface>& contacts,
                                 const IemgParams& params, const ProgressCallback& progress = {});

/// Value of a MUAP (or any signal given with its first two derivatives at t_n = n / fs) at the
/// continuous time `t_s` [s] by quintic Hermite interpolation; 0 outside [0, (#samples-1)/fs].
/// `phi`, `dphi`, `d2phi`: #samples x #columns; returns 1 x #columns.
Eigen::RowVectorXd hermite_at(const Eigen::Ref<const Eigen::MatrixXd>& phi,
                              const Eigen::Ref<const Eigen::MatrixXd>& dphi,
                              const Eigen::Ref<const Eigen::MatrixXd>& d2phi, double fs_Hz,
                              double t_s);

/// The EMG at the contacts and its ground truth.
struct IemgEmg {
  double fs_Hz = 0.0;
  Eigen::MatrixXd clean_V; ///< #contacts x #samples [V], sample n at t = n / fs
  /// Per unit: #discharges x #jittered fibres, the jitter of each fibre at each discharge [s].
  std::vector<Eigen::MatrixXd> jitter_s;
};

/// The EMG: for each unit and each discharge t_k, the unit's MUAP placed at t_k exactly
/// (Hermite, not quantised), each jittered fibre's potential moved by its own draw
/// j ~ N(0, jitter_s^2) (keyed rng.split(unit).split(k).split(fibre)).
/// `discharge_times_s`: per entry of `muaps` [s]; #samples = round(duration_s * fs_Hz).
/// \throws BadInput when `muaps` is empty ("compute the MUAPs first"), the counts differ, the
/// MUAPs disagree in #contacts, or a time lies outside [0, duration).
IemgEmg synthesize_iemg(const std::vector<UnitMuap>& muaps,
                        const std::vector<std::vector<double>>& discharge_times_s,
                        double duration_s, double fs_Hz, double jitter_s, const Rng& rng);

/// Electrode kinds.
enum class IemgElectrodeKind { array, fine_wire, concentric, monopolar, single_fibre };
/// What a clinical needle's body does to the fibres it meets (IemgElectrodes::body_mode).
enum class NeedleBodyMode { displace, exclude, none };
/// Differentiation of an array's contacts.
enum class Differentiation { none, consecutive, reference };

/// Electrodes of an intramuscular recording (config section `iemg.needle`).
///
/// Clinical needles (docs/iemg.md, "Electrodes", for the dimensions and their sources): the tip
/// at `position_mm`, the needle advancing along its axis R_z(c) R_y(b) R_x(a) e_x (the roll a
/// turns the bevel and the side port about the axis). `concentric`: an elliptical core of
/// `core_area_mm2` in a bevel of `bevel_deg` at the tip (the section of a wire of radius rho by
/// the bevel plane: semi-axes rho and rho / sin(bevel)), the cannula (outer diameter
/// `outer_diameter_mm`, bare over `cannula_length_mm` behind the tip) as reference: one channel
/// core - cannula. `monopolar`: the bare conical tip of lateral area `tip_area_mm2` on a shaft of
/// `outer_diameter_mm`, referred to a skin electrode `skin_reference_depth_mm` back along the
/// track: one channel tip - skin. `single_fibre`: a disc of `core_diameter_um` on the side of the
/// shaft `side_port_mm` behind the tip, the cannula as reference. `array`: contacts on the
/// needle's axis, discs of `contact_diameter_mm` facing R e_y (0: points).
struct IemgElectrodes {
  /// key `type`: "array" | "fine_wire" | "concentric" | "monopolar" | "single_fibre"
  IemgElectrodeKind kind = IemgElectrodeKind::array;
  std::int64_t n_contacts = 4; ///< key `n_contacts` (array)
  double spacing_m = 1e-3;     ///< key `spacing_mm` (array, default 1 mm)
  /// Centre of the array, or the tip of a clinical needle [m] (key `position_mm`, default [0, 0,
  /// 20] mm: 20 mm from the end-plate band of a cylinder), relative to the muscle centre unless
  /// `relative_to` is "absolute".
  Eigen::Vector3d position_m{0.0, 0.0, 20e-3};
  bool relative_to_centre = true; ///< key `relative_to`: "muscle_centre" | "absolute"
  /// Orientation: the array or needle axis is R_z(c) R_y(b) R_x(a) e_x, angles [a, b, c] (key
  /// `angles_deg`, default [0, 0, 0]: across the fibres of a cylinder).
  Eigen::Vector3d angles_rad = Eigen::Vector3d::Zero();
  /// Key `differentiation`: "none" (monopolar), "consecutive" (contact i+1 - i) or
  /// "reference" (each other contact minus `reference_contact`).
  Differentiation differentiation = Differentiation::consecutive;
  std::int64_t reference_contact = 0; ///< key `reference_contact` (0-based)
  /// Needle trajectory (sub-section `trajectory`): `n_positions` (default 1), `step_mm`
  /// (default 0.5), `direction` (default the array axis).
  std::int64_t n_positions = 1;
  double step_m = 0.5e-3;
  Eigen::Vector3d direction = Eigen::Vector3d::Zero(); ///< zero: the array axis
  /// Fine wires: key `pairs`, each {"a_mm": [x, y, z], "b_mm": [x, y, z]} (same frame as
  /// position_mm): one bipolar channel a - b per pair.
  std::vector<std::pair<Eigen::Vector3d, Eigen::Vector3d>> pairs_m;
  double contact_diameter_m = 0.0;        ///< key `contact_diameter_mm` (array; 0: points)
  double outer_diameter_m = 0.46e-3;      ///< key `outer_diameter_mm` (0.46 mm, 26 G)
  double core_area_m2 = 0.07e-6;          ///< key `core_area_mm2` (concentric, 0.07 mm^2)
  double bevel_rad = 15.0 * M_PI / 180.0; ///< key `bevel_deg` (concentric, 15 deg)
  double cannula_length_m = 10e-3;        ///< key `cannula_length_mm` (10 mm)
  double tip_area_m2 = 0.25e-6;           ///< key `tip_area_mm2` (monopolar, 0.25 mm^2)
  double skin_reference_depth_m = 20e-3;  ///< key `skin_reference_depth_mm` (monopolar, 20 mm)
  double core_diameter_m = 25e-6;         ///< key `core_diameter_um` (single fibre, 25 um)
  double side_port_m = 3e-3;              ///< key `side_port_mm` (single fibre, 3 mm)
  /// What the clinical needles' bodies do to the fibres they meet (key `body`): "displace" (the
  /// default: the fibres near the needle are parted around its shaft along the streamlines of
  /// flow past a cylinder, apply_needle_body()), "exclude" (the fibres that would pass through the
  /// needle are cut: they do not contribute) or "none" (fibres pass through the needle, as before
  /// session 17). Arrays and fine wires have no body.
  NeedleBodyMode body_mode = NeedleBodyMode::displace;
};

/// Reads the `electrodes` section. \throws BadInput naming the key (unknown type or
/// differentiation, counts, a reference contact out of range, a pair that is not two 3-vectors).
IemgElectrodes read_iemg_electrodes(ConfigReader& section);

/// The contacts' centres (ContactSurface::centre_m()) at trajectory position `position` (0-based),
/// #contacts x 3 [m]; `centre_m`
/// the muscle centre for relative positions. \throws BadInput for a position out of range.
Eigen::MatrixX3d iemg_contacts(const IemgElectrodes& electrodes, const Eigen::Vector3d& centre_m,
                               std::int64_t position);

/// The recording surfaces of the contacts at trajectory position `position` (same order as
/// iemg_contacts(); clinical needles: the recording contact, then the reference). \throws
/// BadInput for a position out of range.
std::vector<ContactSurface> iemg_contact_surfaces(const IemgElectrodes& electrodes,
                                                  const Eigen::Vector3d& centre_m,
                                                  std::int64_t position);

/// The needle's frame: columns the axis R e_x (the needle advances along it), R e_y (the bevel's
/// and the side port's side) and R e_z, R = R_z(c) R_y(b) R_x(a) of angles_rad.
Eigen::Matrix3d iemg_needle_frame(const IemgElectrodes& electrodes);

/// The unit direction of the needle's advance: `direction` normalised, or the axis.
Eigen::Vector3d iemg_trajectory_direction(const IemgElectrodes& electrodes);

/// Name of an electrode kind ("array", "fine_wire", "concentric", "monopolar", "single_fibre").
std::string to_string(IemgElectrodeKind kind);

/// The solid body of a clinical needle at one position: a shaft of radius `radius_m` from the tip
/// back along -axis without end (it comes from the skin), closed at the tip by a cone of length
/// `cone_length_m` (monopolar: the bare conical tip) or cut by the bevel plane through the tip
/// (concentric, single fibre: the plane of the core, outward normal `bevel_normal`).
struct NeedleBody {
  bool present = false; ///< false for arrays and fine wires (no body)
  Eigen::Vector3d tip_m = Eigen::Vector3d::Zero();
  Eigen::Vector3d axis = Eigen::Vector3d::UnitX(); ///< unit, the direction of advance
  double radius_m = 0.0;
  double cone_length_m = 0.0;                              ///< > 0: conical tip; 0: bevel
  Eigen::Vector3d bevel_normal = Eigen::Vector3d::UnitX(); ///< unit, with a positive axis part
};

/// The body of `electrodes` at trajectory position `position` (as iemg_contact_surfaces()).
NeedleBody iemg_needle_body(const IemgElectrodes& electrodes, const Eigen::Vector3d& centre_m,
                            std::int64_t position);

/// Signed distance [m] from `x_m` to the surface of `body` (negative inside). Exact for the
/// conical tip (the body is one of revolution); for the bevel max(rho - R, (x - tip) . n), exact
/// inside and a lower bound outside near the bevel's edge. Convex in x (the body is convex).
double needle_body_distance_m(const NeedleBody& body, const Eigen::Vector3d& x_m);

/// The real fibres of `muscle` and the needle's `body`. NeedleBodyMode::displace: the needle parts
/// the fibres as it is pushed in (the muscle is incompressible, the fibres are not cut): every
/// fibre near the shaft moves, by a parallel offset across its own direction and away from the
/// axis, to the closest approach of the streamline of potential flow past a cylinder (radius the
/// needle's section where the fibre crosses it plus the fibre's radius) that starts at its
/// lateral distance y0: r = (y0 + sqrt(y0^2 + 4 a^2)) / 2; a fibre through the axis ends up
/// touching the needle, one at y0 = a at 1.62 a, and the fibres' density on the needle's flank
/// is twice that far from it, as streamlines bunch on a cylinder's flank (Batchelor 1967, An
/// Introduction to Fluid Dynamics, section 6.6). What still reaches into the body near the tip
/// is pushed along the body's outward normal until it touches. `exclude`: the fibres that would
/// pass through the body are removed from their units' fibre lists (cut, silent). `none`: as it
/// is. Returns the number of fibres that would pass through the body (their surface, a fibre
/// radius from their axis, inside it). A body that is not present changes nothing.
std::int64_t apply_needle_body(IemgMuscle& muscle, const NeedleBody& body, NeedleBodyMode mode);

/// Distance [m] from `x_m` to the nearest model fibre of `muscle` (its polylines without
/// offsets): a point is taken as inside the muscle when it is within
/// muscle_inside_tolerance_m() of a model fibre.
double muscle_distance_m(const IemgMuscle& muscle, const Eigen::Vector3d& x_m);
/// sqrt(section area / #model fibres) [m] (the section area from the model fibres' record, or
/// the pool's territories when it is 0).
double model_fibre_spacing_m(const IemgMuscle& muscle);
/// How far from its nearest model fibre a point may lie and still be inside the muscle [m]: two
/// model-fibre spacings. The model fibres are seeded irregularly over the section, so the gaps
/// between them reach well beyond the mean spacing (a needle at the centre of the test cylinder
/// was 1.03 spacings from its nearest fibre).
double muscle_inside_tolerance_m(const IemgMuscle& muscle);

/// The channels as weights on the contacts, #channels x #contacts.
Eigen::MatrixXd iemg_channel_weights(const IemgElectrodes& electrodes);

/// Name of a differentiation ("none", "consecutive", "reference").
std::string to_string(Differentiation differentiation);

} // namespace myotwin::forward
