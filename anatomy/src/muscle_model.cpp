#include "myotwin/anatomy/muscle_model.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <numbers>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <variant>

#include "myotwin/anatomy/polydata_io.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::anatomy {

AnatomyParams read_anatomy_params(ConfigReader& section) {
  AnatomyParams p;
  p.muscles = section.optional<std::vector<std::string>>(
      "muscles", {}, {}, "names of the muscles to build (tissue-table names); empty: every muscle");
  p.min_fibres_per_unit = section.optional<double>(
      "min_fibres_per_unit", 5.0, in_range(1.0, 1000.0),
      "a muscle with fewer model fibres per motor unit is seeded again at a higher model density");
  auto geometry = section.section("geometry");
  p.geometry = read_muscle_geometry_params(geometry);
  auto field = section.section("fibre_field");
  p.fibre_field = read_fibre_field_params(field);
  auto fibres = section.section("fibres");
  p.fibres = read_fibre_params(fibres);
  auto units = section.section("motor_units");
  p.motor_units = read_motor_unit_params(units);
  return p;
}

double realised_cv_m_per_s(const MuscleFibres& fibres, const MotorUnitPool& pool,
                           std::size_t unit) {
  if (unit >= pool.units.size())
    throw BadInput("realised CV: unit " + std::to_string(unit) + " of a pool of " +
                   std::to_string(pool.units.size()));
  double sum = 0.0, weight = 0.0;
  for (const auto f : pool.units[unit].fibres) {
    if (f < 0 || static_cast<std::size_t>(f) >= fibres.fibres.size() ||
        f >= pool.fibre_cv_m_per_s.size() || f >= pool.fibre_diameter_m.size())
      throw BadInput("realised CV: unit " + std::to_string(unit) + " has fibre " +
                     std::to_string(f) + ", but the muscle has " +
                     std::to_string(fibres.fibres.size()) + " fibres, " +
                     std::to_string(pool.fibre_cv_m_per_s.size()) + " fibre CVs and " +
                     std::to_string(pool.fibre_diameter_m.size()) + " diameters");
    const double d = pool.fibre_diameter_m[f];
    const double w = fibres.fibres[static_cast<std::size_t>(f)].weight * d * d;
    sum += w * pool.fibre_cv_m_per_s[f];
    weight += w;
  }
  return weight > 0.0 ? sum / weight : std::numeric_limits<double>::quiet_NaN();
}

FibreStatistics fibre_statistics(const MuscleFibres& muscle, const Eigen::Vector3d& axis) {
  FibreStatistics s;
  if (muscle.fibres.empty())
    return s;
  std::vector<double> angles;
  double total_turn = 0.0, total_length = 0.0, sum_length = 0.0;
  std::int64_t n_complete = 0;
  s.min_length_m = muscle.fibres.front().length_m;
  for (const auto& f : muscle.fibres) {
    sum_length += f.length_m;
    s.min_length_m = std::min(s.min_length_m, f.length_m);
    s.max_length_m = std::max(s.max_length_m, f.length_m);
    if (f.reaches_origin && f.reaches_insertion)
      ++n_complete;
    Eigen::Vector3d previous = Eigen::Vector3d::Zero();
    for (Eigen::Index i = 0; i + 1 < f.points_m.rows(); ++i) {
      Eigen::Vector3d d = (f.points_m.row(i + 1) - f.points_m.row(i)).transpose();
      const double n = d.norm();
      if (n <= 0.0)
        continue;
      d /= n;
      angles.push_back(std::acos(std::min(1.0, std::abs(d.dot(axis)))) * 180.0 / std::numbers::pi);
      if (previous.squaredNorm() > 0.0) {
        total_turn += std::acos(std::clamp(d.dot(previous), -1.0, 1.0));
        total_length += n;
      }
      previous = d;
    }
  }
  const double n_fibres = static_cast<double>(muscle.fibres.size());
  s.mean_length_m = sum_length / n_fibres;
  s.fraction_tendon_to_tendon = static_cast<double>(n_complete) / n_fibres;
  if (!angles.empty()) {
    double sum = 0.0;
    for (double a : angles)
      sum += a;
    s.mean_angle_to_axis_deg = sum / static_cast<double>(angles.size());
    const auto k = static_cast<std::size_t>(0.95 * static_cast<double>(angles.size() - 1));
    std::nth_element(angles.begin(), angles.begin() + static_cast<std::ptrdiff_t>(k), angles.end());
    s.p95_angle_to_axis_deg = angles[k];
  }
  s.mean_curvature_per_m = total_length > 0.0 ? total_turn / total_length : 0.0;
  return s;
}

namespace {

/// The muscles to build: every muscle of the table present in the volume, or those named.
std::vector<const Tissue*> muscles_to_build(const LabelVolume& volume, const TissueTable& tissues,
                                            const AnatomyParams& params) {
  const auto histogram = label_histogram(volume);
  std::vector<const Tissue*> out;
  if (params.muscles.empty()) {
    for (const auto& t : tissues.tissues) {
      if (t.tissue_class == TissueClass::muscle && histogram.count(t.label) > 0)
        out.push_back(&t);
    }
  } else {
    for (const auto& name : params.muscles) {
      const Tissue* t = tissues.find(name);
      if (t == nullptr || t->tissue_class != TissueClass::muscle) {
        std::string list;
        for (const auto& m : tissues.tissues) {
          if (m.tissue_class == TissueClass::muscle)
            list += (list.empty() ? "" : ", ") + m.name;
        }
        throw BadInput("anatomy.muscles: \"" + name +
                       "\" is not a muscle of the tissue table; muscles: " + list);
      }
      out.push_back(t);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Tissue* a, const Tissue* b) { return a->label < b->label; });
  if (out.empty())
    throw BadInput("the subject has no muscle voxels: nothing to build");
  return out;
}

} // namespace

namespace {

/// Builds one muscle: geometry, field, fibres (density raised where the unit count needs it)
/// and the motor-unit pool.
MuscleModel build_muscle(const LabelVolume& volume, const TissueTable& tissues,
                         const Tissue& tissue, const AnatomyParams& params, const Rng& base) {
  Stopwatch watch;
  MuscleModel m;
  // 1. Geometry, origin and insertion.
  m.geometry = compute_muscle_geometry(volume, tissues, tissue.label, params.geometry);
  // 2. Fibre field.
  const FibreField field = solve_fibre_field(volume, m.geometry, params.fibre_field);
  m.field_iterations = field.n_iterations;
  m.field_relative_residual = field.relative_residual;
  const double field_time_s = watch.elapsed_s();
  // 3. Fibres; a muscle with too few model fibres for its units is seeded again more densely.
  const Rng rng = base.split(static_cast<std::uint64_t>(tissue.label));
  MotorUnitParams unit_params = params.motor_units;
  if (tissue.n_motor_units > 0)
    unit_params.n_units = tissue.n_motor_units;
  const auto n_needed = static_cast<std::int64_t>(
      std::ceil(params.min_fibres_per_unit * static_cast<double>(unit_params.n_units)));
  FibreParams fibre_params = params.fibres;
  m.fibres = generate_fibres(field, m.geometry, fibre_params, rng.split(0));
  // Poisson-disk counts are not exactly proportional to the density: a few rounds.
  for (int round = 0; round < 4; ++round) {
    const auto n_now = static_cast<std::int64_t>(m.fibres.fibres.size());
    if (n_now >= n_needed)
      break;
    fibre_params.model_density_per_m2 *= 1.15 * static_cast<double>(n_needed) /
                                         static_cast<double>(std::max<std::int64_t>(n_now, 1));
    m.fibres = generate_fibres(field, m.geometry, fibre_params, rng.split(0));
    m.model_density_raised = true;
  }
  m.model_density_per_m2 = fibre_params.model_density_per_m2;
  m.statistics = fibre_statistics(m.fibres, m.geometry.axis);
  // 4. Motor units over the fibres' cross-section positions.
  const auto n = static_cast<Eigen::Index>(m.fibres.fibres.size());
  if (n < unit_params.n_units) {
    throw BadInput("muscle " + tissue.name + ": " + std::to_string(n) + " model fibres for " +
                   std::to_string(unit_params.n_units) +
                   " motor units; expected at least one fibre per unit: raise "
                   "anatomy.fibres.model_density_per_mm2 or lower the unit count");
  }
  Eigen::MatrixX2d positions(n, 2);
  Eigen::VectorXd weights(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    positions.row(i) = m.fibres.fibres[static_cast<std::size_t>(i)].seed_2d_m.transpose();
    weights[i] = m.fibres.fibres[static_cast<std::size_t>(i)].weight;
  }
  m.pool = build_motor_unit_pool(positions, weights, m.fibres.section_area_m2, unit_params,
                                 rng.split(1).next());
  m.field_time_s = field_time_s;
  m.build_time_s = watch.elapsed_s();
  return m;
}

} // namespace

SubjectAnatomy build_subject_anatomy(const LabelVolume& volume, const TissueTable& tissues,
                                     const AnatomyParams& params, std::uint64_t seed,
                                     const ProgressCallback& progress) {
  const auto muscles = muscles_to_build(volume, tissues, params);
  const auto n_muscles = static_cast<std::int64_t>(muscles.size());
  SubjectAnatomy anatomy;
  anatomy.muscles.resize(muscles.size());
  std::vector<std::exception_ptr> errors(muscles.size());
  ProgressReporter reporter(progress, "anatomy (muscles)", muscles.size());
  const Rng base(seed);
  // Muscles are independent: built in parallel, each with its own random stream, stored by
  // index; the work inside a muscle then runs on one thread (no nested parallelism).
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t i = 0; i < n_muscles; ++i) {
    const auto k = static_cast<std::size_t>(i);
    try {
      anatomy.muscles[k] = build_muscle(volume, tissues, *muscles[k], params, base);
    } catch (...) {
      errors[k] = std::current_exception();
    }
    reporter.advance();
  }
  std::vector<MuscleModel> built;
  for (std::size_t k = 0; k < errors.size(); ++k) {
    if (!errors[k]) {
      built.push_back(std::move(anatomy.muscles[k]));
      continue;
    }
    if (!params.muscles.empty())
      std::rethrow_exception(errors[k]); // the user named it: no silent skip
    try {
      std::rethrow_exception(errors[k]);
    } catch (const BadInput& e) {
      log_warning("anatomy: skipped muscle ", muscles[k]->name, ": ", e.what());
      anatomy.skipped.emplace_back(muscles[k]->name, e.what());
    }
  }
  anatomy.muscles = std::move(built);
  if (anatomy.muscles.empty()) {
    throw BadInput("no muscle could be modelled: " + anatomy.skipped.front().first + ": " +
                   anatomy.skipped.front().second);
  }
  reporter.finish();
  for (const auto& m : anatomy.muscles) {
    const auto& g = m.geometry;
    const auto end = [](EndSource source, const std::string& bone, double area_m2) {
      std::string out = to_string(source);
      if (source == EndSource::bone)
        out += " (" + bone + ")";
      return out + " " + std::to_string(std::lround(units::m2_to_mm2(area_m2))) + " mm^2";
    };
    log_info("  ", g.name, ": origin ", end(g.origin_source, g.origin_bone, g.origin_area_m2),
             ", insertion ", end(g.insertion_source, g.insertion_bone, g.insertion_area_m2),
             "; fibres ", std::lround(units::m_to_mm(m.statistics.min_length_m)), " to ",
             std::lround(units::m_to_mm(m.statistics.max_length_m)), " mm (mean ",
             std::lround(units::m_to_mm(m.statistics.mean_length_m)), ") in a ",
             std::lround(units::m_to_mm(g.length_m)), " mm muscle");
    if (m.model_density_raised) {
      log_info("  ", m.geometry.name, ": model fibre density raised to ",
               m.model_density_per_m2 * 1e-6, " per mm^2 for its ", m.pool.units.size(),
               " motor units");
    }
    log_debug("  ", m.geometry.name, ": ", m.fibres.fibres.size(), " fibres, ", m.pool.units.size(),
              " motor units, mean fibre ", units::m_to_mm(m.statistics.mean_length_m),
              " mm; field ", m.field_time_s, " s (", m.field_iterations, " CG iterations), total ",
              m.build_time_s, " s");
  }
  return anatomy;
}

RunEstimate estimate_subject_anatomy(const LabelVolume& volume, const TissueTable& tissues,
                                     const AnatomyParams& params, int threads) {
  // Constants measured on the sample forearm (docs/reliability.md, "Time estimates").
  constexpr double seconds_per_unknown = 1.4e-5;     // fibre field (CG on the voxel grid)
  constexpr double seconds_per_voxel = 1.4e-5;       // geometry, fibres, motor units
  constexpr double writing_seconds_per_voxel = 3e-6; // fibers.vtp, motor_units.h5 (one thread)
  constexpr double kept_bytes_per_voxel = 320.0;     // fibres and pools kept until written
  constexpr double work_bytes_per_unknown = 100.0;   // matrix, preconditioner, CG vectors
  constexpr double work_bytes_per_box_cell = 10.0;   // field, index and mask over the box
  constexpr double program_bytes = 64.0 * 1024 * 1024;
  const auto muscles = muscles_to_build(volume, tissues, params);
  // Voxels and index bounding box of every label, in one pass.
  struct Extent {
    double n = 0.0;
    std::array<std::int64_t, 3> lo{std::numeric_limits<std::int64_t>::max(),
                                   std::numeric_limits<std::int64_t>::max(),
                                   std::numeric_limits<std::int64_t>::max()};
    std::array<std::int64_t, 3> hi{-1, -1, -1};
  };
  std::map<std::int32_t, Extent> extent;
  for (const Tissue* t : muscles)
    extent[t->label] = {};
  for (std::int64_t k = 0; k < volume.size[2]; ++k)
    for (std::int64_t j = 0; j < volume.size[1]; ++j)
      for (std::int64_t i = 0; i < volume.size[0]; ++i) {
        const auto it = extent.find(volume.at(i, j, k));
        if (it == extent.end())
          continue;
        Extent& e = it->second;
        e.n += 1.0;
        const std::array<std::int64_t, 3> ijk{i, j, k};
        for (std::size_t a = 0; a < 3; ++a) {
          e.lo[a] = std::min(e.lo[a], ijk[a]);
          e.hi[a] = std::max(e.hi[a], ijk[a]);
        }
      }
  const double up3 = std::pow(static_cast<double>(params.fibre_field.upsampling), 3);
  double voxels = 0.0, unknowns = 0.0, seconds = 0.0, longest = 0.0;
  std::vector<double> work; // per muscle, largest first below
  for (const auto& [label, e] : extent) {
    double box = 1.0;
    for (std::size_t a = 0; a < 3; ++a)
      box *= static_cast<double>(std::max<std::int64_t>(e.hi[a] - e.lo[a] + 1, 0)) *
                 params.fibre_field.upsampling +
             2.0 * static_cast<double>(FibreField::padding);
    const double muscle_seconds = seconds_per_unknown * e.n * up3 + seconds_per_voxel * e.n;
    voxels += e.n;
    unknowns += e.n * up3;
    seconds += muscle_seconds;
    longest = std::max(longest, muscle_seconds);
    work.push_back(work_bytes_per_unknown * e.n * up3 + work_bytes_per_box_cell * box);
  }
  std::sort(work.rbegin(), work.rend());
  const auto n_concurrent = std::min(work.size(), static_cast<std::size_t>(std::max(threads, 1)));
  RunEstimate r;
  r.bytes =
      program_bytes + 4.0 * static_cast<double>(volume.n_voxels()) + kept_bytes_per_voxel * voxels +
      std::accumulate(work.begin(), work.begin() + static_cast<std::ptrdiff_t>(n_concurrent), 0.0);
  const double building = std::max(seconds / static_cast<double>(std::max(threads, 1)), longest);
  const double writing = writing_seconds_per_voxel * voxels;
  r.seconds = building + writing;
  std::ostringstream parts;
  parts << "muscles " << format_duration(building) << " on " << std::max(threads, 1)
        << (threads > 1 ? " threads" : " thread") << ", writing " << format_duration(writing);
  r.time_parts = parts.str();
  r.drivers = std::to_string(muscles.size()) + (muscles.size() == 1 ? " muscle, " : " muscles, ") +
              format_number(voxels) + " muscle voxels, " + format_number(unknowns) +
              " fibre-field unknowns (anatomy.fibre_field.upsampling " +
              std::to_string(params.fibre_field.upsampling) + ")";
  return r;
}

nlohmann::json to_json(const SubjectAnatomy& anatomy) {
  using units::m_to_mm;
  nlohmann::json muscles = nlohmann::json::array();
  for (const auto& m : anatomy.muscles) {
    const auto& g = m.geometry;
    const auto& s = m.statistics;
    nlohmann::json j;
    j["name"] = g.name;
    j["label"] = g.label;
    j["volume_cm3"] = units::m3_to_cm3(g.volume_m3);
    j["length_mm"] = m_to_mm(g.length_m);
    j["centroid_mm"] = {m_to_mm(g.centroid_m[0]), m_to_mm(g.centroid_m[1]),
                        m_to_mm(g.centroid_m[2])};
    j["axis"] = {g.axis[0], g.axis[1], g.axis[2]};
    j["n_components"] = g.component_sizes.size();
    j["origin"] = to_string(g.origin_source);
    j["insertion"] = to_string(g.insertion_source);
    j["origin_tendons"] = g.origin_tendons;
    j["insertion_tendons"] = g.insertion_tendons;
    j["origin_bone"] = g.origin_bone;
    j["insertion_bone"] = g.insertion_bone;
    j["origin_area_mm2"] = units::m2_to_mm2(g.origin_area_m2);
    j["insertion_area_mm2"] = units::m2_to_mm2(g.insertion_area_m2);
    j["max_cross_section_mm2"] =
        g.profile_area_m2.size() > 0 ? units::m2_to_mm2(g.profile_area_m2.maxCoeff()) : 0.0;
    j["seed_section_mm2"] = units::m2_to_mm2(m.fibres.section_area_m2);
    j["seed_level"] = m.fibres.seed_level;
    j["n_fibres"] = m.fibres.fibres.size();
    j["model_density_per_mm2"] = m.model_density_per_m2 * 1e-6;
    j["n_seeds_dropped"] = m.fibres.n_seeds_dropped;
    double real = 0.0;
    for (const auto& f : m.fibres.fibres)
      real += f.weight;
    j["n_real_fibres"] = real;
    j["n_motor_units"] = m.pool.units.size();
    j["mean_fibre_length_mm"] = m_to_mm(s.mean_length_m);
    j["min_fibre_length_mm"] = m_to_mm(s.min_length_m);
    j["max_fibre_length_mm"] = m_to_mm(s.max_length_m);
    j["mean_angle_to_axis_deg"] = s.mean_angle_to_axis_deg;
    j["p95_angle_to_axis_deg"] = s.p95_angle_to_axis_deg;
    j["mean_curvature_per_m"] = s.mean_curvature_per_m;
    j["fraction_tendon_to_tendon"] = s.fraction_tendon_to_tendon;
    j["fibre_field_iterations"] = m.field_iterations;
    j["fibre_field_relative_residual"] = m.field_relative_residual;
    muscles.push_back(std::move(j));
  }
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& [name, reason] : anatomy.skipped)
    skipped.push_back({{"name", name}, {"reason", reason}});
  return nlohmann::json{{"muscles", std::move(muscles)}, {"skipped", std::move(skipped)}};
}

namespace {

void write_fibres_vtp(const std::filesystem::path& path, const SubjectAnatomy& anatomy) {
  std::int64_t n_lines = 0, n_points = 0;
  for (const auto& m : anatomy.muscles) {
    for (const auto& f : m.fibres.fibres) {
      ++n_lines;
      n_points += f.points_m.rows();
    }
  }
  Polylines lines;
  lines.points_m.resize(n_points, 3);
  lines.offsets.assign(1, 0);
  Eigen::VectorXd arc(n_points), cv(n_lines), diameter(n_lines), end_plate(n_lines),
      length(n_lines), weight(n_lines);
  std::vector<std::int64_t> label, unit;
  std::int64_t p = 0, c = 0;
  for (const auto& m : anatomy.muscles) {
    for (std::size_t i = 0; i < m.fibres.fibres.size(); ++i) {
      const auto& f = m.fibres.fibres[i];
      const auto ii = static_cast<Eigen::Index>(i);
      double s = 0.0;
      for (Eigen::Index r = 0; r < f.points_m.rows(); ++r, ++p) {
        if (r > 0)
          s += (f.points_m.row(r) - f.points_m.row(r - 1)).norm();
        lines.points_m.row(p) = f.points_m.row(r);
        arc[p] = s;
      }
      lines.offsets.push_back(p);
      label.push_back(m.geometry.label);
      unit.push_back(m.pool.fibre_unit[ii]);
      cv[c] = m.pool.fibre_cv_m_per_s[ii];
      diameter[c] = m.pool.fibre_diameter_m[ii];
      end_plate[c] = f.end_plate_m;
      length[c] = f.length_m;
      weight[c] = f.weight;
      ++c;
    }
  }
  lines.point_data["arc_length_m"] = arc;
  lines.cell_data_int["muscle_label"] = label;
  lines.cell_data_int["motor_unit"] = unit;
  lines.cell_data["cv_m_per_s"] = cv;
  lines.cell_data["diameter_m"] = diameter;
  lines.cell_data["end_plate_m"] = end_plate;
  lines.cell_data["length_m"] = length;
  lines.cell_data["weight"] = weight;
  write_polylines_vtp(path, lines);
}

void write_motor_units_h5(const std::filesystem::path& path, const SubjectAnatomy& anatomy) {
  H5Writer w(path);
  w.set_attributes("/", {{"format", std::string("myotwin anatomy")},
                         {"n_muscles", static_cast<std::int64_t>(anatomy.muscles.size())}});
  for (const auto& m : anatomy.muscles) {
    const std::string g = "muscles/" + m.geometry.name;
    const auto n_units = static_cast<Eigen::Index>(m.pool.units.size());
    const auto n_fibres = static_cast<Eigen::Index>(m.fibres.fibres.size());
    // Units, in recruitment order.
    Eigen::VectorXd target(n_units), represented(n_units), threshold(n_units), radius(n_units),
        cv(n_units), diameter(n_units);
    Eigen::MatrixXd centre_2d(n_units, 2), centre_3d(n_units, 3);
    VectorXi64 unit_offsets(n_units + 1);
    std::vector<std::int64_t> unit_fibres;
    unit_offsets[0] = 0;
    for (Eigen::Index u = 0; u < n_units; ++u) {
      const auto& unit = m.pool.units[static_cast<std::size_t>(u)];
      target[u] = unit.target_n_fibres;
      represented[u] = unit.n_fibres;
      threshold[u] = unit.recruitment_threshold;
      radius[u] = unit.territory_radius_m;
      cv[u] = unit.cv_m_per_s;
      diameter[u] = unit.fibre_diameter_m;
      centre_2d.row(u) = unit.territory_centre_m.transpose();
      centre_3d.row(u) = (m.fibres.plane_centre_m + unit.territory_centre_m[0] * m.fibres.plane_e1 +
                          unit.territory_centre_m[1] * m.fibres.plane_e2)
                             .transpose();
      unit_fibres.insert(unit_fibres.end(), unit.fibres.begin(), unit.fibres.end());
      unit_offsets[u + 1] = static_cast<std::int64_t>(unit_fibres.size());
    }
    w.set_attributes(g, {{"label", static_cast<std::int64_t>(m.geometry.label)},
                         {"volume_m3", m.geometry.volume_m3},
                         {"length_m", m.geometry.length_m},
                         {"section_area_m2", m.fibres.section_area_m2}});
    w.write_vector(g + "/units/target_n_fibres", target, {{"unit", std::string("real fibres")}});
    w.write_vector(g + "/units/n_fibres", represented, {{"unit", std::string("real fibres")}});
    w.write_vector(g + "/units/recruitment_threshold", threshold,
                   {{"unit", std::string("fraction of maximal excitation")}});
    w.write_vector(g + "/units/territory_radius_m", radius);
    w.write_vector(g + "/units/cv_m_per_s", cv);
    w.write_vector(g + "/units/fibre_diameter_m", diameter);
    w.write(g + "/units/territory_centre_2d_m", centre_2d,
            {{"frame", std::string("section plane (plane_e1, plane_e2)")}});
    w.write(g + "/units/territory_centre_m", centre_3d, {{"frame", std::string("LPS")}});
    w.write_vector(g + "/units/fibre_offsets", unit_offsets);
    w.write_vector(g + "/units/fibres",
                   VectorXi64(Eigen::Map<const VectorXi64>(
                       unit_fibres.data(), static_cast<Eigen::Index>(unit_fibres.size()))));
    // Fibres: points concatenated, with offsets.
    Eigen::Index n_points = 0;
    for (const auto& f : m.fibres.fibres)
      n_points += f.points_m.rows();
    Eigen::MatrixXd points(n_points, 3);
    VectorXi64 offsets(n_fibres + 1), fibre_unit(n_fibres);
    Eigen::VectorXd length(n_fibres), end_plate(n_fibres), weight(n_fibres);
    offsets[0] = 0;
    Eigen::Index p = 0;
    for (Eigen::Index i = 0; i < n_fibres; ++i) {
      const auto& f = m.fibres.fibres[static_cast<std::size_t>(i)];
      points.middleRows(p, f.points_m.rows()) = f.points_m;
      p += f.points_m.rows();
      offsets[i + 1] = p;
      length[i] = f.length_m;
      end_plate[i] = f.end_plate_m;
      weight[i] = f.weight;
      fibre_unit[i] = m.pool.fibre_unit[i];
    }
    w.write(g + "/fibres/points_m", points, {{"frame", std::string("LPS")}});
    w.write_vector(g + "/fibres/offsets", offsets);
    w.write_vector(g + "/fibres/motor_unit", fibre_unit);
    w.write_vector(g + "/fibres/length_m", length);
    w.write_vector(g + "/fibres/end_plate_m", end_plate,
                   {{"meaning", std::string("arc length from the origin end")}});
    w.write_vector(g + "/fibres/weight", weight, {{"unit", std::string("real fibres")}});
    w.write_vector(g + "/fibres/cv_m_per_s", m.pool.fibre_cv_m_per_s);
    w.write_vector(g + "/fibres/diameter_m", m.pool.fibre_diameter_m);
    Eigen::MatrixXd seeds(n_fibres, 3), seeds_2d(n_fibres, 2);
    for (Eigen::Index i = 0; i < n_fibres; ++i) {
      seeds.row(i) = m.fibres.fibres[static_cast<std::size_t>(i)].seed_m.transpose();
      seeds_2d.row(i) = m.fibres.fibres[static_cast<std::size_t>(i)].seed_2d_m.transpose();
    }
    w.write(g + "/fibres/seed_m", seeds, {{"frame", std::string("LPS")}});
    w.write(g + "/fibres/seed_2d_m", seeds_2d,
            {{"meaning", std::string("seed in the plane: (e1, e2) coordinates from its centre")}});
    // Seed plane: the frame of the 2-D territory centres.
    w.write_vector(g + "/plane/centre_m", Eigen::VectorXd(m.fibres.plane_centre_m),
                   {{"frame", std::string("LPS")}});
    w.write_vector(g + "/plane/e1", Eigen::VectorXd(m.fibres.plane_e1));
    w.write_vector(g + "/plane/e2", Eigen::VectorXd(m.fibres.plane_e2));
    w.write_vector(g + "/plane/normal", Eigen::VectorXd(m.fibres.plane_normal));
  }
  w.commit();
}

} // namespace

void write_subject_anatomy(const std::filesystem::path& dir, const SubjectAnatomy& anatomy) {
  ensure_output_dir(dir);
  write_fibres_vtp(dir / "fibers.vtp", anatomy);
  write_motor_units_h5(dir / "motor_units.h5", anatomy);
  write_text_file(dir / "anatomy.json", to_json(anatomy).dump(2) + "\n");
}

namespace {

/// Reads the datasets of one muscle group of motor_units.h5.
class MuscleGroupReader {
public:
  MuscleGroupReader(const H5Reader& h5, std::string file, std::string group)
      : h5_(h5), file_(std::move(file)), group_(std::move(group)) {}

  [[noreturn]] void fail(const std::string& dataset, const std::string& what) const {
    throw BadInput(file_ + ": " + group_ + (dataset.empty() ? "" : "/" + dataset) + ": " + what);
  }

  /// A 1-D dataset (n x 1) of `n` rows, or any length for n < 0.
  Eigen::VectorXd vector(const std::string& dataset, Eigen::Index n) const {
    const Eigen::MatrixXd v = read_double(dataset);
    check_shape(dataset, v.rows(), v.cols(), n, 1);
    return v.col(0);
  }
  VectorXi64 int_vector(const std::string& dataset, Eigen::Index n) const {
    const MatrixXi64 v = read_int64(dataset);
    check_shape(dataset, v.rows(), v.cols(), n, 1);
    return v.col(0);
  }
  Eigen::MatrixXd matrix(const std::string& dataset, Eigen::Index rows, Eigen::Index cols) const {
    Eigen::MatrixXd v = read_double(dataset);
    check_shape(dataset, v.rows(), v.cols(), rows, cols);
    return v;
  }
  Eigen::Vector3d vector3(const std::string& dataset) const { return vector(dataset, 3); }

  /// Offsets into an array of `n_items` entries: starts at 0, non-decreasing, ends at n_items.
  void check_offsets(const std::string& dataset, const VectorXi64& offsets,
                     Eigen::Index n_items) const {
    if (offsets.size() < 1 || offsets[0] != 0)
      fail(dataset, "offsets do not start at 0");
    for (Eigen::Index i = 1; i < offsets.size(); ++i) {
      if (offsets[i] < offsets[i - 1])
        fail(dataset, "offsets decrease at entry " + std::to_string(i));
    }
    if (offsets[offsets.size() - 1] != n_items)
      fail(dataset, "offsets end at " + std::to_string(offsets[offsets.size() - 1]) +
                        ", not at the " + std::to_string(n_items) + " entries they index");
  }

  double attribute(const Attributes& attributes, const std::string& key) const {
    const auto it = attributes.find(key);
    if (it == attributes.end())
      fail("", "no attribute " + key);
    if (const auto* d = std::get_if<double>(&it->second))
      return *d;
    if (const auto* i = std::get_if<std::int64_t>(&it->second))
      return static_cast<double>(*i);
    fail("", "attribute " + key + " is not a number");
  }

private:
  Eigen::MatrixXd read_double(const std::string& dataset) const {
    if (!h5_.contains(group_ + "/" + dataset))
      fail(dataset, "missing dataset");
    return h5_.read_double(group_ + "/" + dataset);
  }
  MatrixXi64 read_int64(const std::string& dataset) const {
    if (!h5_.contains(group_ + "/" + dataset))
      fail(dataset, "missing dataset");
    return h5_.read_int64(group_ + "/" + dataset);
  }
  void check_shape(const std::string& dataset, Eigen::Index rows, Eigen::Index cols,
                   Eigen::Index want_rows, Eigen::Index want_cols) const {
    if ((want_rows >= 0 && rows != want_rows) || cols != want_cols)
      fail(dataset, "shape " + std::to_string(rows) + " x " + std::to_string(cols) + ", expected " +
                        (want_rows >= 0 ? std::to_string(want_rows) : "n") + " x " +
                        std::to_string(want_cols));
  }

  const H5Reader& h5_;
  std::string file_;
  std::string group_;
};

MuscleModel read_muscle(const H5Reader& h5, const std::string& file, const std::string& name) {
  const MuscleGroupReader r(h5, file, "muscles/" + name);
  const Attributes attributes = h5.attributes("muscles/" + name);
  MuscleModel m;
  m.geometry.name = name;
  const double label = r.attribute(attributes, "label");
  if (label != std::floor(label) || label < 0 || label > 2147483647.0)
    r.fail("", "label " + std::to_string(label) + " is not a label");
  m.geometry.label = static_cast<std::int32_t>(label);
  m.geometry.volume_m3 = r.attribute(attributes, "volume_m3");
  m.geometry.length_m = r.attribute(attributes, "length_m");
  m.fibres.label = m.geometry.label;
  m.fibres.name = name;
  m.fibres.section_area_m2 = r.attribute(attributes, "section_area_m2");
  m.fibres.plane_centre_m = r.vector3("plane/centre_m");
  m.fibres.plane_e1 = r.vector3("plane/e1");
  m.fibres.plane_e2 = r.vector3("plane/e2");
  m.fibres.plane_normal = r.vector3("plane/normal");

  // Fibres.
  const Eigen::MatrixXd points = r.matrix("fibres/points_m", -1, 3);
  const VectorXi64 offsets = r.int_vector("fibres/offsets", -1);
  r.check_offsets("fibres/offsets", offsets, points.rows());
  const Eigen::Index n_fibres = offsets.size() - 1;
  const Eigen::VectorXd length = r.vector("fibres/length_m", n_fibres);
  const Eigen::VectorXd end_plate = r.vector("fibres/end_plate_m", n_fibres);
  const Eigen::VectorXd weight = r.vector("fibres/weight", n_fibres);
  const Eigen::MatrixXd seeds = r.matrix("fibres/seed_m", n_fibres, 3);
  const Eigen::MatrixXd seeds_2d = r.matrix("fibres/seed_2d_m", n_fibres, 2);
  m.fibres.fibres.resize(static_cast<std::size_t>(n_fibres));
  for (Eigen::Index i = 0; i < n_fibres; ++i) {
    auto& f = m.fibres.fibres[static_cast<std::size_t>(i)];
    f.points_m = points.middleRows(offsets[i], offsets[i + 1] - offsets[i]);
    f.length_m = length[i];
    f.end_plate_m = end_plate[i];
    f.weight = weight[i];
    f.seed_m = seeds.row(i).transpose();
    f.seed_2d_m = seeds_2d.row(i).transpose();
  }

  // Units.
  const Eigen::VectorXd target = r.vector("units/target_n_fibres", -1);
  const Eigen::Index n_units = target.size();
  const Eigen::VectorXd represented = r.vector("units/n_fibres", n_units);
  const Eigen::VectorXd threshold = r.vector("units/recruitment_threshold", n_units);
  const Eigen::MatrixXd centre = r.matrix("units/territory_centre_2d_m", n_units, 2);
  const Eigen::VectorXd radius = r.vector("units/territory_radius_m", n_units);
  const Eigen::VectorXd cv = r.vector("units/cv_m_per_s", n_units);
  const Eigen::VectorXd diameter = r.vector("units/fibre_diameter_m", n_units);
  const VectorXi64 unit_offsets = r.int_vector("units/fibre_offsets", n_units + 1);
  const VectorXi64 unit_fibres = r.int_vector("units/fibres", -1);
  r.check_offsets("units/fibre_offsets", unit_offsets, unit_fibres.size());
  for (Eigen::Index k = 0; k < unit_fibres.size(); ++k) {
    if (unit_fibres[k] < 0 || unit_fibres[k] >= n_fibres)
      r.fail("units/fibres", "entry " + std::to_string(k) + " = " + std::to_string(unit_fibres[k]) +
                                 " is not a fibre index in [0, " + std::to_string(n_fibres) + ")");
  }
  m.pool.units.resize(static_cast<std::size_t>(n_units));
  for (Eigen::Index u = 0; u < n_units; ++u) {
    auto& unit = m.pool.units[static_cast<std::size_t>(u)];
    unit.index = u;
    unit.target_n_fibres = target[u];
    unit.n_fibres = represented[u];
    unit.recruitment_threshold = threshold[u];
    unit.territory_centre_m = centre.row(u).transpose();
    unit.territory_radius_m = radius[u];
    unit.cv_m_per_s = cv[u];
    unit.fibre_diameter_m = diameter[u];
    unit.fibres.assign(unit_fibres.data() + unit_offsets[u],
                       unit_fibres.data() + unit_offsets[u + 1]);
  }
  const VectorXi64 fibre_unit = r.int_vector("fibres/motor_unit", n_fibres);
  m.pool.fibre_unit.resize(n_fibres);
  for (Eigen::Index i = 0; i < n_fibres; ++i) {
    if (fibre_unit[i] < 0 || fibre_unit[i] >= n_units)
      r.fail("fibres/motor_unit",
             "entry " + std::to_string(i) + " = " + std::to_string(fibre_unit[i]) +
                 " is not a unit index in [0, " + std::to_string(n_units) + ")");
    m.pool.fibre_unit[i] = static_cast<int>(fibre_unit[i]);
  }
  m.pool.fibre_cv_m_per_s = r.vector("fibres/cv_m_per_s", n_fibres);
  m.pool.fibre_diameter_m = r.vector("fibres/diameter_m", n_fibres);
  return m;
}

} // namespace

SubjectAnatomy read_subject_anatomy(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "motor_units.h5";
  const H5Reader h5(path); // IoError if missing or not HDF5
  const std::string file = path.string();
  if (!h5.contains("muscles"))
    throw BadInput(file + ": no group muscles (not an anatomy file)");
  SubjectAnatomy anatomy;
  for (const auto& name : h5.list("muscles"))
    anatomy.muscles.push_back(read_muscle(h5, file, name));
  std::stable_sort(anatomy.muscles.begin(), anatomy.muscles.end(),
                   [](const MuscleModel& a, const MuscleModel& b) {
                     return a.geometry.label < b.geometry.label;
                   });
  const Attributes root = h5.attributes("/");
  if (const auto it = root.find("n_muscles"); it != root.end()) {
    const auto* n = std::get_if<std::int64_t>(&it->second);
    if (n != nullptr && *n != static_cast<std::int64_t>(anatomy.muscles.size()))
      throw BadInput(file + ": attribute n_muscles = " + std::to_string(*n) + " but " +
                     std::to_string(anatomy.muscles.size()) + " groups under muscles");
  }
  return anatomy;
}

} // namespace myotwin::anatomy
