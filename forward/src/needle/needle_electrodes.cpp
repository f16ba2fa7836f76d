// Needle electrodes of the intramuscular EMG: reading `iemg.needle`, the contacts' recording
// surfaces as quadratures (iemg.hpp, ContactSurface) and the channels.

#include <cmath>
#include <string>
#include <string_view>

#include <Eigen/Geometry>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/units.hpp"
#include "myotwin/forward/needle/iemg.hpp"

namespace myotwin::forward {

namespace {

Eigen::Vector3d read_vector3(ConfigReader& section, const std::string& key,
                             const Eigen::Vector3d& default_value, double scale,
                             std::string_view doc) {
  const std::vector<double> d{default_value.x() / scale, default_value.y() / scale,
                              default_value.z() / scale};
  const auto v = section.optional<std::vector<double>>(key, d, {}, doc);
  if (v.size() != 3 || !std::isfinite(v[0]) || !std::isfinite(v[1]) || !std::isfinite(v[2])) {
    section.fail(key, "must be 3 finite numbers");
  }
  return Eigen::Vector3d(v[0], v[1], v[2]) * scale;
}

/// An elliptical patch centred at `c` with semi-axis a along the unit `da` and b along the unit
/// `db`: three equal-area rings of 6, 12 and 18 points (radii sqrt((i + 1/2) / 3) of the
/// semi-axes), each ring a third of the weight.
ContactPatch ellipse_patch(const Eigen::Vector3d& c, const Eigen::Vector3d& da, double a,
                           const Eigen::Vector3d& db, double b) {
  ContactPatch p;
  p.centre_m = c;
  p.points_m.resize(36, 3);
  p.weights.resize(36);
  Eigen::Index k = 0;
  for (int ring = 0; ring < 3; ++ring) {
    const double rho = std::sqrt((ring + 0.5) / 3.0);
    const int n = 6 * (ring + 1);
    for (int j = 0; j < n; ++j) {
      const double t = 2.0 * M_PI * (j + 0.5 * (ring % 2)) / n;
      p.points_m.row(k) = (c + rho * (a * std::cos(t) * da + b * std::sin(t) * db)).transpose();
      p.weights[k++] = 1.0 / (3.0 * n);
    }
  }
  p.extent_m = std::sqrt(5.0 / 6.0) * std::max(a, b);
  // The coarser rule: six points at 1/sqrt(2) of the semi-axes (the uniform ellipse's second
  // moments a^2 / 4 and b^2 / 4).
  p.mid_points_m.resize(6, 3);
  for (int j = 0; j < 6; ++j) {
    const double t = M_PI * j / 3.0;
    p.mid_points_m.row(j) =
        (c + std::sqrt(0.5) * (a * std::cos(t) * da + b * std::sin(t) * db)).transpose();
  }
  p.mid_weights = Eigen::VectorXd::Constant(6, 1.0 / 6.0);
  return p;
}

/// The lateral surface of a cone with apex `apex`, axis `back` (unit, towards its base), length
/// `length` and base radius `radius`: four equal-area bands (fractions sqrt((i + 1/2) / 4) of the
/// length) of eight points each.
ContactPatch cone_patch(const Eigen::Vector3d& apex, const Eigen::Vector3d& back,
                        const Eigen::Vector3d& e1, const Eigen::Vector3d& e2, double length,
                        double radius) {
  ContactPatch p;
  p.points_m.resize(32, 3);
  p.weights = Eigen::VectorXd::Constant(32, 1.0 / 32.0);
  Eigen::Index k = 0;
  for (int band = 0; band < 4; ++band) {
    const double f = std::sqrt((band + 0.5) / 4.0);
    for (int j = 0; j < 8; ++j) {
      const double t = 2.0 * M_PI * (j + 0.5 * (band % 2)) / 8.0;
      p.points_m.row(k++) =
          (apex + f * length * back + f * radius * (std::cos(t) * e1 + std::sin(t) * e2))
              .transpose();
    }
  }
  p.centre_m = apex + (2.0 / 3.0) * length * back; // centroid of the lateral surface
  // The coarser rule: two rings of four points at fractions 2/3 -+ sqrt(1/18) of the length (the
  // lateral surface's mean 2/3 and mean square 1/2 of the fraction).
  p.mid_points_m.resize(8, 3);
  p.mid_weights = Eigen::VectorXd::Constant(8, 1.0 / 8.0);
  for (int band = 0; band < 2; ++band) {
    const double f = 2.0 / 3.0 + (band == 0 ? -1.0 : 1.0) * std::sqrt(1.0 / 18.0);
    for (int j = 0; j < 4; ++j) {
      const double t = 0.5 * M_PI * (j + 0.5 * band);
      p.mid_points_m.row(4 * band + j) =
          (apex + f * length * back + f * radius * (std::cos(t) * e1 + std::sin(t) * e2))
              .transpose();
    }
  }
  p.extent_m = 0.0;
  for (Eigen::Index i = 0; i < p.points_m.rows(); ++i)
    p.extent_m = std::max(p.extent_m, (p.points_m.row(i).transpose() - p.centre_m).norm());
  return p;
}

/// The cannula: stations every 1 mm from 0.5 mm behind the tip over `length`, each a ring of
/// four points on the shaft's surface (radius `radius`), equal weights.
ContactSurface cannula(const Eigen::Vector3d& tip, const Eigen::Vector3d& back,
                       const Eigen::Vector3d& e1, const Eigen::Vector3d& e2, double length,
                       double radius) {
  ContactSurface s;
  s.name = "cannula";
  const auto n = std::max<Eigen::Index>(1, static_cast<Eigen::Index>(std::floor(length / 1e-3)));
  for (Eigen::Index i = 0; i < n; ++i) {
    ContactPatch p;
    p.centre_m = tip + (0.5e-3 + 1e-3 * static_cast<double>(i)) * back;
    p.points_m.resize(4, 3);
    for (int j = 0; j < 4; ++j) {
      const double t = 0.5 * M_PI * j;
      p.points_m.row(j) = (p.centre_m + radius * (std::cos(t) * e1 + std::sin(t) * e2)).transpose();
    }
    p.weights = Eigen::VectorXd::Constant(4, 0.25);
    p.extent_m = radius;
    p.weight = 1.0 / static_cast<double>(n);
    s.patches.push_back(p);
  }
  s.area_m2 = 2.0 * M_PI * radius * static_cast<double>(n) * 1e-3;
  return s;
}

} // namespace

ContactSurface point_contact(const Eigen::Vector3d& p_m, std::string name) {
  ContactSurface s;
  ContactPatch p;
  p.centre_m = p_m;
  p.points_m = p_m.transpose();
  p.weights = Eigen::VectorXd::Ones(1);
  s.patches.push_back(p);
  s.name = std::move(name);
  return s;
}

std::string to_string(Differentiation differentiation) {
  switch (differentiation) {
  case Differentiation::none:
    return "none";
  case Differentiation::consecutive:
    return "consecutive";
  case Differentiation::reference:
    return "reference";
  }
  return "none";
}

std::string to_string(IemgElectrodeKind kind) {
  switch (kind) {
  case IemgElectrodeKind::array:
    return "array";
  case IemgElectrodeKind::fine_wire:
    return "fine_wire";
  case IemgElectrodeKind::concentric:
    return "concentric";
  case IemgElectrodeKind::monopolar:
    return "monopolar";
  case IemgElectrodeKind::single_fibre:
    return "single_fibre";
  }
  return "array";
}

IemgElectrodes read_iemg_electrodes(ConfigReader& section) {
  IemgElectrodes e;
  const auto type = section.optional<std::string>(
      "type", "array", one_of({"array", "fine_wire", "concentric", "monopolar", "single_fibre"}),
      "electrode: a needle array, bipolar fine-wire pairs, or a clinical concentric, monopolar or "
      "single-fibre needle (docs/iemg.md, Electrodes)");
  e.kind = type == "array"        ? IemgElectrodeKind::array
           : type == "fine_wire"  ? IemgElectrodeKind::fine_wire
           : type == "concentric" ? IemgElectrodeKind::concentric
           : type == "monopolar"  ? IemgElectrodeKind::monopolar
                                  : IemgElectrodeKind::single_fibre;
  const auto rel = section.optional<std::string>(
      "relative_to", "muscle_centre", one_of({"muscle_centre", "absolute"}),
      "frame of the positions: relative to the muscle centre, or absolute coordinates");
  e.relative_to_centre = rel == "muscle_centre";
  if (e.kind == IemgElectrodeKind::fine_wire) {
    e.differentiation = Differentiation::none;
    auto pairs = section.required_array("pairs");
    if (pairs.empty()) {
      section.fail("pairs", "needs at least one pair");
    }
    for (auto& p : pairs) {
      const Eigen::Vector3d a =
          read_vector3(p, "a_mm", Eigen::Vector3d::Zero(), 1e-3,
                       "fine wire: contact a [x, y, z] of a bipolar pair; the channel is a - b");
      const Eigen::Vector3d b =
          read_vector3(p, "b_mm", Eigen::Vector3d::Zero(), 1e-3,
                       "fine wire: contact b [x, y, z] of the pair, same frame as a_mm");
      if ((a - b).norm() == 0.0) {
        p.fail("b_mm", "must differ from a_mm");
      }
      e.pairs_m.emplace_back(a, b);
    }
    return e;
  }
  e.position_m =
      read_vector3(section, "position_mm", e.position_m, 1e-3,
                   "centre [x, y, z] of an array, or the tip of a clinical needle, in the frame "
                   "relative_to names");
  e.angles_rad = read_vector3(section, "angles_deg", e.angles_rad, M_PI / 180.0,
                              "orientation [a, b, c]: array or needle axis R_z(c) R_y(b) R_x(a) "
                              "e_x (a needle advances along it; a turns its bevel); zeros: "
                              "across a cylinder's fibres");
  e.outer_diameter_m = units::mm_to_m(section.optional<double>(
      "outer_diameter_mm", units::m_to_mm(e.outer_diameter_m), in_range(0.05, 3.0),
      "outer diameter of the needle's shaft (0.46 mm: a standard 26 G concentric needle)"));
  const double shaft_r = 0.5 * e.outer_diameter_m;
  if (e.kind == IemgElectrodeKind::array) {
    e.n_contacts = section.optional<std::int64_t>("n_contacts", e.n_contacts, positive_int(),
                                                  "array: number of contacts along the array axis");
    e.spacing_m = units::mm_to_m(
        section.optional<double>("spacing_mm", units::m_to_mm(e.spacing_m), positive(),
                                 "array: distance between neighbouring contacts"));
    e.contact_diameter_m = units::mm_to_m(section.optional<double>(
        "contact_diameter_mm", 0.0, non_negative(),
        "array: diameter of each disc contact (facing R e_y); 0: point contacts"));
    if (e.contact_diameter_m > e.outer_diameter_m)
      section.fail("contact_diameter_mm",
                   "a contact of " + format_number(units::m_to_mm(e.contact_diameter_m)) +
                       " mm does not fit on a needle of outer_diameter_mm = " +
                       format_number(units::m_to_mm(e.outer_diameter_m)));
    const auto diff = section.optional<std::string>(
        "differentiation", "consecutive", one_of({"none", "consecutive", "reference"}),
        "array channels: monopolar, contact i+1 minus i, or each contact minus reference_contact");
    e.differentiation = diff == "none"          ? Differentiation::none
                        : diff == "consecutive" ? Differentiation::consecutive
                                                : Differentiation::reference;
    e.reference_contact = section.optional<std::int64_t>(
        "reference_contact", 0, {},
        "array: the contact subtracted with differentiation reference, 0-based");
    if (e.reference_contact < 0 || e.reference_contact >= e.n_contacts) {
      section.fail("reference_contact", "must be a contact index in [0, n_contacts - 1 = " +
                                            std::to_string(e.n_contacts - 1) + "]");
    }
    if (e.differentiation != Differentiation::none && e.n_contacts < 2) {
      section.fail("differentiation",
                   "needs at least 2 contacts (n_contacts = " + std::to_string(e.n_contacts) + ")");
    }
  } else {
    e.differentiation = Differentiation::reference;
    e.n_contacts = 2;
    e.reference_contact = 1;
  }
  if (e.kind == IemgElectrodeKind::concentric) {
    e.core_area_m2 = 1e-6 * section.optional<double>(
                                "core_area_mm2", 1e6 * e.core_area_m2, positive(),
                                "concentric: area of the elliptical core in the bevel (0.07 mm^2 "
                                "standard, 0.03 facial)");
    e.bevel_rad =
        M_PI / 180.0 *
        section.optional<double>("bevel_deg", 180.0 / M_PI * e.bevel_rad, in_range(5.0, 90.0),
                                 "concentric: angle of the bevel to the needle's axis");
    const double face = M_PI * shaft_r * shaft_r / std::sin(e.bevel_rad);
    if (e.core_area_m2 >= 0.5 * face)
      section.fail("core_area_mm2",
                   "a core of " + format_number(1e6 * e.core_area_m2) +
                       " mm^2 is not smaller than half the bevel face of the needle (" +
                       format_number(1e6 * face) + " mm^2 for outer_diameter_mm = " +
                       format_number(units::m_to_mm(e.outer_diameter_m)) +
                       "): the cannula must surround it");
  }
  if (e.kind == IemgElectrodeKind::monopolar) {
    e.tip_area_m2 =
        1e-6 * section.optional<double>("tip_area_mm2", 1e6 * e.tip_area_m2, positive(),
                                        "monopolar: bare area of the conical tip (0.2-0.3 mm^2)");
    const double base = M_PI * shaft_r * shaft_r;
    if (e.tip_area_m2 <= base || e.tip_area_m2 > M_PI * shaft_r * std::hypot(shaft_r, 5e-3))
      section.fail("tip_area_mm2",
                   "a conical tip on a shaft of outer_diameter_mm = " +
                       format_number(units::m_to_mm(e.outer_diameter_m)) + " has a bare area in (" +
                       format_number(1e6 * base) + ", " +
                       format_number(1e6 * M_PI * shaft_r * std::hypot(shaft_r, 5e-3)) +
                       "] mm^2 (a cone at most 5 mm long)");
    e.skin_reference_depth_m = units::mm_to_m(section.optional<double>(
        "skin_reference_depth_mm", units::m_to_mm(e.skin_reference_depth_m), positive(),
        "monopolar: the skin reference electrode sits this far back along the track from the tip"));
  }
  if (e.kind == IemgElectrodeKind::single_fibre) {
    e.core_diameter_m = units::um_to_m(
        section.optional<double>("core_diameter_um", units::m_to_um(e.core_diameter_m), positive(),
                                 "single fibre: diameter of the side-port core (25 um)"));
    if (e.core_diameter_m >= e.outer_diameter_m)
      section.fail("core_diameter_um", "a core of " +
                                           format_number(units::m_to_um(e.core_diameter_m)) +
                                           " um does not fit on a needle of outer_diameter_mm = " +
                                           format_number(units::m_to_mm(e.outer_diameter_m)));
    e.side_port_m = units::mm_to_m(
        section.optional<double>("side_port_mm", units::m_to_mm(e.side_port_m), non_negative(),
                                 "single fibre: distance of the side port behind the tip (3 mm)"));
  }
  if (e.kind == IemgElectrodeKind::concentric || e.kind == IemgElectrodeKind::monopolar ||
      e.kind == IemgElectrodeKind::single_fibre) {
    const auto body = section.optional<std::string>(
        "body", "displace", one_of({"displace", "exclude", "none"}),
        "clinical needles: fibres near the needle are parted around its body along the streamlines "
        "of flow past its shaft (displace), the fibres it meets cut and silent (exclude), or left "
        "passing through it (none)");
    e.body_mode = body == "displace"  ? NeedleBodyMode::displace
                  : body == "exclude" ? NeedleBodyMode::exclude
                                      : NeedleBodyMode::none;
  }
  if (e.kind == IemgElectrodeKind::concentric || e.kind == IemgElectrodeKind::single_fibre) {
    e.cannula_length_m = units::mm_to_m(section.optional<double>(
        "cannula_length_mm", units::m_to_mm(e.cannula_length_m), in_range(0.5, 200.0),
        "concentric, single fibre: bare length of the cannula (the reference) behind the tip"));
  }
  ConfigReader t = section.section("trajectory");
  e.n_positions = t.optional<std::int64_t>("n_positions", e.n_positions, positive_int(),
                                           "number of needle positions along the trajectory");
  e.step_m = units::mm_to_m(t.optional<double>("step_mm", units::m_to_mm(e.step_m), positive(),
                                               "needle advance between trajectory positions"));
  e.direction =
      read_vector3(t, "direction", e.direction, 1.0,
                   "direction [x, y, z] of the needle advance; [0, 0, 0]: the array axis");
  return e;
}

Eigen::Matrix3d iemg_needle_frame(const IemgElectrodes& e) {
  return (Eigen::AngleAxisd(e.angles_rad.z(), Eigen::Vector3d::UnitZ()) *
          Eigen::AngleAxisd(e.angles_rad.y(), Eigen::Vector3d::UnitY()) *
          Eigen::AngleAxisd(e.angles_rad.x(), Eigen::Vector3d::UnitX()))
      .toRotationMatrix();
}

Eigen::Vector3d iemg_trajectory_direction(const IemgElectrodes& e) {
  return e.direction.norm() > 0.0 ? Eigen::Vector3d(e.direction.normalized())
                                  : Eigen::Vector3d(iemg_needle_frame(e).col(0));
}

std::vector<ContactSurface> iemg_contact_surfaces(const IemgElectrodes& e,
                                                  const Eigen::Vector3d& centre_m,
                                                  std::int64_t position) {
  const Eigen::Vector3d origin = e.relative_to_centre ? centre_m : Eigen::Vector3d::Zero();
  std::vector<ContactSurface> out;
  if (e.kind == IemgElectrodeKind::fine_wire) {
    if (position != 0) {
      throw BadInput("iemg_contacts: fine wires have one position, asked for " +
                     std::to_string(position));
    }
    for (const auto& [a, b] : e.pairs_m) {
      out.push_back(point_contact(origin + a, "wire_a"));
      out.push_back(point_contact(origin + b, "wire_b"));
    }
    return out;
  }
  if (position < 0 || position >= e.n_positions) {
    throw BadInput("iemg_contacts: trajectory position " + std::to_string(position) +
                   ": must lie in [0, " + std::to_string(e.n_positions) + ")");
  }
  const Eigen::Matrix3d r = iemg_needle_frame(e);
  const Eigen::Vector3d axis = r.col(0);
  const Eigen::Vector3d e1 = r.col(1);
  const Eigen::Vector3d e2 = r.col(2);
  const Eigen::Vector3d dir = iemg_trajectory_direction(e);
  const Eigen::Vector3d at = origin + e.position_m + static_cast<double>(position) * e.step_m * dir;
  const double shaft_r = 0.5 * e.outer_diameter_m;
  switch (e.kind) {
  case IemgElectrodeKind::array:
    for (Eigen::Index i = 0; i < e.n_contacts; ++i) {
      const double along =
          (static_cast<double>(i) - 0.5 * static_cast<double>(e.n_contacts - 1)) * e.spacing_m;
      const Eigen::Vector3d c = at + along * axis;
      if (e.contact_diameter_m > 0.0) {
        ContactSurface s;
        const double a = 0.5 * e.contact_diameter_m;
        s.patches.push_back(ellipse_patch(c, axis, a, e2, a));
        s.area_m2 = M_PI * a * a;
        s.name = "disc_" + std::to_string(i);
        out.push_back(s);
      } else {
        out.push_back(point_contact(c, "point_" + std::to_string(i)));
      }
    }
    break;
  case IemgElectrodeKind::concentric: {
    const double rho = std::sqrt(e.core_area_m2 * std::sin(e.bevel_rad) / M_PI);
    const Eigen::Vector3d w = std::cos(e.bevel_rad) * axis + std::sin(e.bevel_rad) * e1;
    ContactSurface core;
    core.patches.push_back(ellipse_patch(at, w, rho / std::sin(e.bevel_rad), e2, rho));
    core.area_m2 = e.core_area_m2;
    core.name = "core";
    out.push_back(core);
    out.push_back(cannula(at, -axis, e1, e2, e.cannula_length_m, shaft_r));
    break;
  }
  case IemgElectrodeKind::monopolar: {
    const double slant = e.tip_area_m2 / (M_PI * shaft_r);
    const double length = std::sqrt(std::max(slant * slant - shaft_r * shaft_r, 0.0));
    ContactSurface tip;
    tip.patches.push_back(cone_patch(at, -axis, e1, e2, length, shaft_r));
    tip.area_m2 = e.tip_area_m2;
    tip.name = "tip";
    out.push_back(tip);
    out.push_back(point_contact(at - e.skin_reference_depth_m * axis, "skin"));
    break;
  }
  case IemgElectrodeKind::single_fibre: {
    const double a = 0.5 * e.core_diameter_m;
    ContactSurface core;
    core.patches.push_back(ellipse_patch(at - e.side_port_m * axis + shaft_r * e1, axis, a, e2, a));
    core.area_m2 = M_PI * a * a;
    core.name = "side_port";
    out.push_back(core);
    out.push_back(cannula(at, -axis, e1, e2, e.cannula_length_m, shaft_r));
    break;
  }
  case IemgElectrodeKind::fine_wire:
    break;
  }
  return out;
}

Eigen::MatrixX3d iemg_contacts(const IemgElectrodes& e, const Eigen::Vector3d& centre_m,
                               std::int64_t position) {
  const auto s = iemg_contact_surfaces(e, centre_m, position);
  Eigen::MatrixX3d c(static_cast<Eigen::Index>(s.size()), 3);
  for (std::size_t i = 0; i < s.size(); ++i)
    c.row(static_cast<Eigen::Index>(i)) = s[i].centre_m().transpose();
  return c;
}

Eigen::MatrixXd iemg_channel_weights(const IemgElectrodes& e) {
  if (e.kind == IemgElectrodeKind::fine_wire) {
    const auto n = static_cast<Eigen::Index>(e.pairs_m.size());
    Eigen::MatrixXd w = Eigen::MatrixXd::Zero(n, 2 * n);
    for (Eigen::Index i = 0; i < n; ++i) {
      w(i, 2 * i) = 1.0;
      w(i, 2 * i + 1) = -1.0;
    }
    return w;
  }
  const Eigen::Index n = e.n_contacts;
  switch (e.differentiation) {
  case Differentiation::none:
    return Eigen::MatrixXd::Identity(n, n);
  case Differentiation::consecutive: {
    Eigen::MatrixXd w = Eigen::MatrixXd::Zero(n - 1, n);
    for (Eigen::Index i = 0; i + 1 < n; ++i) {
      w(i, i + 1) = 1.0;
      w(i, i) = -1.0;
    }
    return w;
  }
  case Differentiation::reference: {
    Eigen::MatrixXd w = Eigen::MatrixXd::Zero(n - 1, n);
    Eigen::Index row = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      if (i == e.reference_contact) {
        continue;
      }
      w(row, i) = 1.0;
      w(row, e.reference_contact) = -1.0;
      ++row;
    }
    return w;
  }
  }
  return Eigen::MatrixXd::Identity(n, n);
}

} // namespace myotwin::forward
