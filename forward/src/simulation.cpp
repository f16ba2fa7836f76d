#include "myotwin/forward/simulation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/discharge_import.hpp"

namespace myotwin::forward {

SimulationParams read_simulation_params(ConfigReader& section) {
  SimulationParams p;
  p.muscles = section.optional<std::vector<std::string>>("muscles", {});
  p.max_units_per_muscle =
      section.optional<std::int64_t>("max_units_per_muscle", 0, int_in_range(0, 1000000));
  p.discharges = section.optional_path("discharges");
  p.muap_tail_fraction =
      section.optional<double>("muap_tail_fraction", p.muap_tail_fraction, in_range(0.0, 0.1));
  for (const auto& name : section.optional<std::vector<std::string>>("montages", {})) {
    try {
      p.montages.push_back(montage_from_string(name));
    } catch (const BadInput& e) {
      section.fail("montages", e.what());
    }
  }
  auto muap = section.section("muap");
  p.muap = read_muap_params(muap);
  auto drive = section.section("drive");
  p.drive = read_drive_params(drive);
  auto emg = section.section("emg");
  p.emg = read_emg_params(emg);
  return p;
}

namespace {

/// Territory centre of a unit in 3-D [m].
Eigen::Vector3d territory_centre(const anatomy::MuscleModel& m, std::size_t unit) {
  const Eigen::Vector2d c = m.pool.units[unit].territory_centre_m;
  return m.fibres.plane_centre_m + c.x() * m.fibres.plane_e1 + c.y() * m.fibres.plane_e2;
}

} // namespace

EmgSimulation simulate_emg(const anatomy::SubjectAnatomy& anatomy, const TransferFunction& transfer,
                           Eigen::Index n_channels,
                           const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                           const SimulationParams& params, std::uint64_t seed,
                           const ProgressCallback& progress) {
  EmgSimulation sim;
  // 1. The units.
  for (const auto& name : params.muscles) {
    const bool found = std::any_of(anatomy.muscles.begin(), anatomy.muscles.end(),
                                   [&](const auto& m) { return m.geometry.name == name; });
    if (!found) {
      std::string names;
      for (const auto& m : anatomy.muscles)
        names += (names.empty() ? "" : ", ") + m.geometry.name;
      throw BadInput("simulate.muscles: \"" + name + "\" is not a muscle of the anatomy (" + names +
                     ")");
    }
  }
  for (std::size_t mi = 0; mi < anatomy.muscles.size(); ++mi) {
    const auto& m = anatomy.muscles[mi];
    if (!params.muscles.empty() && std::find(params.muscles.begin(), params.muscles.end(),
                                             m.geometry.name) == params.muscles.end())
      continue;
    std::size_t n = m.pool.units.size();
    if (params.max_units_per_muscle > 0)
      n = std::min(n, static_cast<std::size_t>(params.max_units_per_muscle));
    for (std::size_t u = 0; u < n; ++u)
      if (!m.pool.units[u].fibres.empty())
        sim.units.push_back({mi, u});
  }
  if (sim.units.empty())
    throw BadInput("simulate: no motor units to simulate (the selected muscles have none)");

  // 2. MUAPs (each unit parallel over its fibres inside unit_muap()).
  Stopwatch muap_watch;
  ProgressReporter report(progress, "MUAPs (units)", sim.units.size());
  sim.muap_fs_Hz = params.muap.fs_Hz;
  for (const auto& su : sim.units) {
    const auto& m = anatomy.muscles[su.muscle];
    Eigen::MatrixXd muap = unit_muap(m.fibres, m.pool, su.unit, n_channels, transfer, params.muap);
    // The quiet tail: samples after the last one where any channel exceeds
    // muap_tail_fraction of the MUAP's largest |value| are dropped.
    if (params.muap_tail_fraction > 0.0 && muap.rows() > 1) {
      const Eigen::VectorXd row_max = muap.cwiseAbs().rowwise().maxCoeff();
      const double limit = params.muap_tail_fraction * row_max.maxCoeff();
      Eigen::Index last = muap.rows() - 1;
      while (last > 0 && row_max[last] <= limit)
        --last;
      sim.muap_samples_dropped += muap.rows() - (last + 1);
      muap.conservativeResize(last + 1, Eigen::NoChange);
    }
    sim.muaps.push_back(std::move(muap));
    report.advance();
  }
  report.finish();
  sim.muap_time_s = muap_watch.elapsed_s();

  // 3. Discharges: the drive, or real discharge times by recruitment order. Units of all
  // muscles form one pool ordered by threshold for the import.
  Stopwatch drive_watch;
  std::vector<double> thresholds;
  for (const auto& su : sim.units)
    thresholds.push_back(anatomy.muscles[su.muscle].pool.units[su.unit].recruitment_threshold);
  const Rng rng(seed);
  if (params.discharges) {
    const ImportedDischarges imported = read_discharges(*params.discharges);
    std::vector<std::size_t> order(sim.units.size());
    for (std::size_t i = 0; i < order.size(); ++i)
      order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return thresholds[a] < thresholds[b]; });
    const DischargeMapping map = map_by_recruitment_order(imported, order.size());
    sim.discharge_times_s.assign(sim.units.size(), {});
    sim.imported_unit.assign(sim.units.size(), -1);
    for (std::size_t r = 0; r < order.size(); ++r) {
      sim.discharge_times_s[order[r]] = map.times_s[r];
      sim.imported_unit[order[r]] = map.imported_unit[r];
    }
    // Times beyond the signal's end are an error of the request, not silently dropped.
    for (std::size_t i = 0; i < sim.units.size(); ++i)
      for (const double t : sim.discharge_times_s[i])
        if (!(t >= 0.0 && t < params.drive.duration_s))
          throw BadInput(params.discharges->string() + ": a discharge at " + format_number(t) +
                         " s lies outside the signal (simulate.drive.duration_s = " +
                         format_number(params.drive.duration_s) + " s)");
  } else {
    const DriveResult drive = simulate_drive(params.drive, thresholds, rng.split(1));
    sim.discharge_times_s = drive.discharge_times_s;
    sim.excitation = drive.excitation;
    sim.excitation_fs_Hz = drive.fs_Hz;
  }
  sim.drive_time_s = drive_watch.elapsed_s();

  // 4. EMG.
  Stopwatch emg_watch;
  sim.emg = synthesize_emg(sim.muaps, sim.muap_fs_Hz, sim.discharge_times_s,
                           params.drive.duration_s, params.emg, rng.split(2));
  sim.emg_time_s = emg_watch.elapsed_s();

  // 5. Ground truth properties.
  const auto n = static_cast<Eigen::Index>(sim.units.size());
  UnitProperties& p = sim.properties;
  p.depth_m.resize(n);
  p.territory_centre_m.resize(n, 3);
  p.n_fibres.resize(n);
  p.cv_m_per_s.resize(n);
  p.end_plate_m.resize(n, 1);
  for (Eigen::Index i = 0; i < n; ++i) {
    const auto& su = sim.units[static_cast<std::size_t>(i)];
    const auto& m = anatomy.muscles[su.muscle];
    const auto& u = m.pool.units[su.unit];
    p.unit_id.push_back(1000 * static_cast<std::int64_t>(m.geometry.label) +
                        static_cast<std::int64_t>(su.unit));
    p.muscle.push_back(m.geometry.name);
    const Eigen::Vector3d c = territory_centre(m, su.unit);
    p.territory_centre_m.row(i) = c.transpose();
    double depth = std::numeric_limits<double>::quiet_NaN();
    if (skin_points_m.rows() > 0)
      depth =
          std::sqrt((skin_points_m.rowwise() - c.transpose()).rowwise().squaredNorm().minCoeff());
    p.depth_m[i] = depth;
    p.n_fibres[i] = static_cast<std::int64_t>(std::llround(u.n_fibres));
    p.cv_m_per_s[i] = u.cv_m_per_s;
    double ep = 0.0;
    for (const auto f : u.fibres)
      ep += m.fibres.fibres[static_cast<std::size_t>(f)].end_plate_m;
    p.end_plate_m(i, 0) = ep / static_cast<double>(u.fibres.size());
  }
  return sim;
}

void write_muaps_h5(const std::filesystem::path& path, const EmgSimulation& sim) {
  H5Writer w(path);
  unsigned long long n_samples = 0, n_channels = 0;
  for (const auto& m : sim.muaps) {
    n_samples = std::max<unsigned long long>(n_samples, static_cast<unsigned long long>(m.rows()));
    n_channels = static_cast<unsigned long long>(m.cols());
  }
  std::vector<double> data(sim.muaps.size() * n_channels * n_samples, 0.0);
  for (std::size_t u = 0; u < sim.muaps.size(); ++u)
    for (Eigen::Index c = 0; c < sim.muaps[u].cols(); ++c)
      for (Eigen::Index s = 0; s < sim.muaps[u].rows(); ++s)
        data[(u * n_channels + static_cast<unsigned long long>(c)) * n_samples +
             static_cast<unsigned long long>(s)] = sim.muaps[u](s, c);
  w.write_3d("muaps", data, {sim.muaps.size(), n_channels, n_samples},
             {{"units", std::string("V")}, {"layout", std::string("units x channels x samples")}});
  w.set_attributes("/", {{"fs_Hz", sim.muap_fs_Hz}, {"format", std::string("myotwin muaps")}});
  VectorXi64 ids(static_cast<Eigen::Index>(sim.properties.unit_id.size()));
  for (std::size_t i = 0; i < sim.properties.unit_id.size(); ++i)
    ids[static_cast<Eigen::Index>(i)] = sim.properties.unit_id[i];
  w.write_vector("unit_id", ids);
  w.write_vector("units/depth_m", sim.properties.depth_m);
  w.write("units/territory_centre_m", sim.properties.territory_centre_m);
  w.write_vector("units/n_fibres", sim.properties.n_fibres);
  w.write_vector("units/cv_m_per_s", sim.properties.cv_m_per_s);
  w.write("units/end_plate_m", sim.properties.end_plate_m);
  std::string muscles;
  for (const auto& m : sim.properties.muscle)
    muscles += (muscles.empty() ? "" : ";") + m;
  w.set_attributes("units", {{"muscle_per_unit", muscles}});
  w.commit();
}

} // namespace myotwin::forward
