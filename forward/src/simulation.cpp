#include "myotwin/forward/simulation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/core/units.hpp"
#include "myotwin/forward/drive/discharge_import.hpp"

namespace myotwin::forward {

SimulationParams read_simulation_params(ConfigReader& section) {
  SimulationParams p;
  p.muscles = section.optional<std::vector<std::string>>(
      "muscles", {}, {}, "names of the muscles to simulate; empty: every muscle of the anatomy");
  p.max_units_per_muscle = section.optional<std::int64_t>(
      "max_units_per_muscle", 0, int_in_range(0, 1000000),
      "simulate at most this many units per muscle, the first in recruitment order (0: all)");
  p.discharges =
      section.optional_path("discharges", "real discharge times (MAT MUPulses, or CSV unit,time_s) "
                                          "used instead of the drive, by recruitment order");
  if (p.discharges && !std::filesystem::is_regular_file(*p.discharges))
    section.fail("discharges", "no such file: " + p.discharges->string() +
                                   " (a MATLAB file with MUPulses or a CSV unit,time_s)");
  p.muap_tail_fraction =
      section.optional<double>("muap_tail_fraction", p.muap_tail_fraction, in_range(0.0, 0.1),
                               "drop MUAP tail samples where every channel is within this fraction "
                               "of its peak (0: keep the full computed length)");
  for (const auto& name : section.optional<std::vector<std::string>>(
           "montages", {}, {},
           "montages of the first grid saved beside the monopolar EMG: sd_rows, sd_columns, "
           "dd_rows, dd_columns, laplacian")) {
    try {
      p.montages.push_back(montage_from_string(name));
    } catch (const BadInput& e) {
      section.fail("montages", e.what());
    }
  }
  p.jitter_s = units::us_to_s(
      section.optional<double>("jitter_us", units::s_to_us(p.jitter_s), in_range(0.0, 1000.0),
                               "SD of the neuromuscular-junction jitter, per fibre group and "
                               "discharge (0: off; physiological: 35)"));
  p.jitter_groups = section.optional<std::int64_t>(
      "jitter_groups", p.jitter_groups, int_in_range(1, 1000),
      "fibre groups per unit with independent jitter delays; synthesis costs this many times more");
  auto branching = section.section("nerve_branching");
  p.nerve_branching = read_nerve_branching_params(branching);
  auto force = section.section("force");
  p.force = read_twitch_params(force);
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

/// Splits the fibres `members` of a unit into at most `n_groups` spatial groups: k-means
/// (Lloyd, 20 rounds) of their seed positions in the section, started from the fibre nearest
/// the centroid and then, one by one, the fibre farthest from the centres so far (ties to the
/// lower index). Deterministic. Returns one group index per member.
std::vector<int> fibre_groups(const anatomy::MuscleFibres& fibres,
                              const std::vector<std::int64_t>& members, std::int64_t n_groups) {
  const auto n = static_cast<Eigen::Index>(members.size());
  const auto k = static_cast<Eigen::Index>(std::min<std::int64_t>(n_groups, n));
  Eigen::MatrixX2d x(n, 2);
  for (Eigen::Index i = 0; i < n; ++i)
    x.row(i) = fibres.fibres[static_cast<std::size_t>(members[static_cast<std::size_t>(i)])]
                   .seed_2d_m.transpose();
  Eigen::MatrixX2d centres(k, 2);
  Eigen::Index first = 0;
  ((x.rowwise() - x.colwise().mean()).rowwise().squaredNorm()).minCoeff(&first);
  centres.row(0) = x.row(first);
  Eigen::VectorXd nearest = (x.rowwise() - centres.row(0)).rowwise().squaredNorm();
  for (Eigen::Index c = 1; c < k; ++c) {
    Eigen::Index far = 0;
    nearest.maxCoeff(&far);
    centres.row(c) = x.row(far);
    nearest = nearest.cwiseMin((x.rowwise() - centres.row(c)).rowwise().squaredNorm());
  }
  std::vector<int> group(static_cast<std::size_t>(n), 0);
  for (int round = 0; round < 20; ++round) {
    for (Eigen::Index i = 0; i < n; ++i) {
      Eigen::Index best = 0;
      (centres.rowwise() - x.row(i)).rowwise().squaredNorm().minCoeff(&best);
      group[static_cast<std::size_t>(i)] = static_cast<int>(best);
    }
    Eigen::MatrixX2d sum = Eigen::MatrixX2d::Zero(k, 2);
    Eigen::VectorXd count = Eigen::VectorXd::Zero(k);
    for (Eigen::Index i = 0; i < n; ++i) {
      sum.row(group[static_cast<std::size_t>(i)]) += x.row(i);
      count[group[static_cast<std::size_t>(i)]] += 1.0;
    }
    for (Eigen::Index c = 0; c < k; ++c)
      if (count[c] > 0.0)
        centres.row(c) = sum.row(c) / count[c];
  }
  // Renumber the non-empty groups 0 .. in order of first appearance.
  std::vector<int> renumber(static_cast<std::size_t>(k), -1);
  int next = 0;
  for (int& g : group) {
    if (renumber[static_cast<std::size_t>(g)] < 0)
      renumber[static_cast<std::size_t>(g)] = next++;
    g = renumber[static_cast<std::size_t>(g)];
  }
  return group;
}

/// Drops the quiet tail of a unit's MUAP (or of its groups, which share the length): samples
/// after the last one where any channel of `total` exceeds `fraction` of its largest |value|.
/// Returns the number of samples dropped.
Eigen::Index trim_quiet_tail(Eigen::MatrixXd& total, std::vector<Eigen::MatrixXd>& groups,
                             double fraction) {
  if (!(fraction > 0.0) || total.rows() <= 1)
    return 0;
  const Eigen::VectorXd row_max = total.cwiseAbs().rowwise().maxCoeff();
  const double limit = fraction * row_max.maxCoeff();
  Eigen::Index last = total.rows() - 1;
  while (last > 0 && row_max[last] <= limit)
    --last;
  const Eigen::Index dropped = total.rows() - (last + 1);
  total.conservativeResize(last + 1, Eigen::NoChange);
  for (auto& g : groups)
    g.conservativeResize(last + 1, Eigen::NoChange);
  return dropped;
}

/// Step 1: the units to simulate: per selected muscle (all when params.muscles is empty), its
/// first max_units_per_muscle units with fibres. \throws BadInput for an unknown muscle name
/// or no units.
std::vector<SimulatedUnit> select_units(const anatomy::SubjectAnatomy& anatomy,
                                        const SimulationParams& params) {
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
  std::vector<SimulatedUnit> units;
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
        units.push_back({mi, u});
  }
  if (units.empty())
    throw BadInput("simulate: no motor units to simulate (the selected muscles have none)");
  return units;
}

/// With jitter: per unit, its fibre groups' MUAPs (#samples x #channels [V]) and the jitter SD
/// of each group [s]. Empty without jitter.
struct JitterGroups {
  std::vector<std::vector<Eigen::MatrixXd>> muaps;
  std::vector<std::vector<double>> sd_s;
};

/// The jitter SD of each of `n_groups` fibre groups [s]: jitter_s / sqrt(the group's fibre
/// weight, at least 1).
std::vector<double> group_jitter_sd(const anatomy::MuscleFibres& fibres,
                                    const std::vector<std::int64_t>& members,
                                    const std::vector<int>& groups, std::size_t n_groups,
                                    double jitter_s) {
  std::vector<double> real_fibres(n_groups, 0.0);
  for (std::size_t i = 0; i < members.size(); ++i)
    real_fibres[static_cast<std::size_t>(groups[i])] +=
        fibres.fibres[static_cast<std::size_t>(members[i])].weight;
  std::vector<double> sd(n_groups);
  for (std::size_t g = 0; g < n_groups; ++g)
    sd[g] = jitter_s / std::sqrt(std::max(real_fibres[g], 1.0));
  return sd;
}

/// Step 2: the MUAP of each unit of sim.units into sim.muaps (each unit parallel over its
/// fibres inside unit_muap_groups()), quiet tails trimmed; with jitter, the groups' MUAPs and
/// jitter SDs into `jitter`. The branching delays draw from Rng(seed).split(4).
void compute_muaps(const anatomy::SubjectAnatomy& anatomy, const TransferFunction& transfer,
                   Eigen::Index n_channels, const SimulationParams& params, std::uint64_t seed,
                   const ProgressCallback& progress, EmgSimulation& sim,
                   JitterGroups& jitter_groups) {
  ProgressReporter report(progress, "MUAPs (units)", sim.units.size());
  sim.muap_fs_Hz = params.muap.fs_Hz;
  const bool jitter = params.jitter_s > 0.0;
  const Rng branching_rng = Rng(seed).split(4);
  for (const auto& su : sim.units) {
    const auto& m = anatomy.muscles[su.muscle];
    const auto& members = m.pool.units[su.unit].fibres;
    std::vector<int> groups;
    if (jitter)
      groups = fibre_groups(m.fibres, members, params.jitter_groups);
    const Eigen::VectorXd delays =
        nerve_branch_delays_s(m.fibres, m.pool, su.unit, params.nerve_branching,
                              branching_rng.split(static_cast<std::uint64_t>(m.geometry.label)));
    std::vector<Eigen::MatrixXd> parts = unit_muap_groups(m.fibres, m.pool, su.unit, n_channels,
                                                          transfer, params.muap, delays, groups);
    Eigen::MatrixXd muap = parts.front();
    for (std::size_t g = 1; g < parts.size(); ++g)
      muap += parts[g];
    if (!jitter)
      parts.clear();
    sim.muap_samples_dropped += trim_quiet_tail(muap, parts, params.muap_tail_fraction);
    if (jitter) {
      std::vector<double> sd =
          group_jitter_sd(m.fibres, members, groups, parts.size(), params.jitter_s);
      jitter_groups.muaps.push_back(std::move(parts));
      jitter_groups.sd_s.push_back(std::move(sd));
    }
    sim.muaps.push_back(std::move(muap));
    report.advance();
  }
  report.finish();
}

/// The recruitment threshold of each simulated unit.
std::vector<double> unit_thresholds(const anatomy::SubjectAnatomy& anatomy,
                                    const std::vector<SimulatedUnit>& units) {
  std::vector<double> thresholds;
  for (const auto& su : units)
    thresholds.push_back(anatomy.muscles[su.muscle].pool.units[su.unit].recruitment_threshold);
  return thresholds;
}

/// Step 3 with a discharges file: real discharge times [s] into sim.discharge_times_s and
/// sim.imported_unit, by recruitment order (the units of all muscles form one pool ordered by
/// `thresholds`). \throws BadInput for a discharge outside [0, duration_s).
void import_discharges(const SimulationParams& params, const std::vector<double>& thresholds,
                       EmgSimulation& sim) {
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
}

/// Step 4 with jitter: each fibre group of each unit is a source of its own, discharging at the
/// unit's times moved by the group's jitter (drawn from rng.split(3).split(unit).split(group),
/// in discharge order; kept inside the signal); the noise from rng.split(2). The truth is the
/// units' own discharges (the activation instants), not the groups'. Consumes `jitter`.
EmgResult synthesize_jittered_emg(const EmgSimulation& sim, JitterGroups& jitter,
                                  const SimulationParams& params, const Rng& rng) {
  std::vector<Eigen::MatrixXd> sources;
  std::vector<std::vector<double>> times;
  const Rng jitter_rng = rng.split(3);
  const double last_time = std::nextafter(params.drive.duration_s, 0.0);
  for (std::size_t u = 0; u < sim.units.size(); ++u)
    for (std::size_t g = 0; g < jitter.muaps[u].size(); ++g) {
      Rng r = jitter_rng.split(u).split(g);
      std::vector<double> t = sim.discharge_times_s[u];
      for (double& ti : t)
        ti = std::clamp(ti + jitter.sd_s[u][g] * r.normal(), 0.0, last_time);
      sources.push_back(std::move(jitter.muaps[u][g]));
      times.push_back(std::move(t));
    }
  EmgResult all = synthesize_emg(sources, sim.muap_fs_Hz, times, params.drive.duration_s,
                                 params.emg, rng.split(2));
  all.spike_samples.clear();
  const auto n_samples = all.emg.cols();
  for (const auto& t : sim.discharge_times_s) {
    std::vector<std::int64_t> samples;
    for (const double ti : t)
      samples.push_back(std::min<std::int64_t>(std::llround(ti * all.fs_Hz), n_samples - 1));
    all.spike_samples.push_back(std::move(samples));
  }
  return all;
}

/// The twitch forces of the simulated units of one muscle (#units x #samples, units of its
/// smallest twitch) and the force of its whole pool at peak rates.
struct MuscleForces {
  Eigen::MatrixXd per_unit;
  double f_max = 0.0;
};

/// The forces of muscle `mi` (n_samples at the EMG's rate): the twitches of its simulated units
/// and the force of its whole pool at peak rates (the drive's rate law on the pool's
/// thresholds); the units' twitch peak force and contraction time [s] into `sim`.
MuscleForces muscle_forces(const anatomy::SubjectAnatomy& anatomy, std::size_t mi,
                           const SimulationParams& params, Eigen::Index n_samples,
                           EmgSimulation& sim) {
  const auto& pool = anatomy.muscles[mi].pool;
  Eigen::VectorXd sizes(static_cast<Eigen::Index>(pool.units.size()));
  std::vector<double> pool_thresholds;
  for (std::size_t u = 0; u < pool.units.size(); ++u) {
    // A unit that got no fibres counts as the smallest possible (one fibre).
    sizes[static_cast<Eigen::Index>(u)] = std::max(pool.units[u].n_fibres, 1.0);
    pool_thresholds.push_back(pool.units[u].recruitment_threshold);
  }
  const TwitchProperties twitches = twitch_properties(sizes, params.force);
  const std::vector<double> peak = peak_rates_pps(params.drive, pool_thresholds);
  const double f_max = maximum_force(
      twitches,
      Eigen::Map<const Eigen::VectorXd>(peak.data(), static_cast<Eigen::Index>(peak.size())));
  std::vector<std::vector<double>> times;
  TwitchProperties selected;
  std::vector<Eigen::Index> rows;
  for (std::size_t i = 0; i < sim.units.size(); ++i)
    if (sim.units[i].muscle == mi) {
      const auto u = static_cast<Eigen::Index>(sim.units[i].unit);
      sim.twitch_peak_force[static_cast<Eigen::Index>(i)] = twitches.peak_force[u];
      sim.contraction_time_s[static_cast<Eigen::Index>(i)] = twitches.contraction_time_s[u];
      rows.push_back(u);
      std::vector<double> t = sim.discharge_times_s[i];
      std::sort(t.begin(), t.end());
      times.push_back(std::move(t));
    }
  selected.peak_force = twitches.peak_force(rows);
  selected.contraction_time_s = twitches.contraction_time_s(rows);
  return {unit_forces(times, selected, sim.emg.fs_Hz, n_samples, params.force), f_max};
}

/// Step 4b: the force of each simulated muscle into sim.force (#muscles x #samples, fractions
/// of each muscle's maximum) and sim.force_muscles, the units' twitches into `sim`.
void simulate_force(const anatomy::SubjectAnatomy& anatomy, const SimulationParams& params,
                    EmgSimulation& sim) {
  std::vector<std::size_t> muscles;
  for (const auto& su : sim.units)
    if (std::find(muscles.begin(), muscles.end(), su.muscle) == muscles.end())
      muscles.push_back(su.muscle);
  const auto n_samples = sim.emg.emg.cols();
  sim.force = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(muscles.size()), n_samples);
  sim.twitch_peak_force.resize(static_cast<Eigen::Index>(sim.units.size()));
  sim.contraction_time_s.resize(static_cast<Eigen::Index>(sim.units.size()));
  for (std::size_t k = 0; k < muscles.size(); ++k) {
    const MuscleForces forces = muscle_forces(anatomy, muscles[k], params, n_samples, sim);
    sim.force.row(static_cast<Eigen::Index>(k)) = forces.per_unit.colwise().sum() / forces.f_max;
    sim.force_muscles.push_back(anatomy.muscles[muscles[k]].geometry.name);
  }
}

/// Step 5: the ground-truth properties of each unit: id, muscle, territory centre [m], depth
/// below the nearest skin point [m] (NaN without skin points), #fibres, realised CV [m/s] and
/// mean end-plate position [m].
UnitProperties unit_properties(const anatomy::SubjectAnatomy& anatomy,
                               const std::vector<SimulatedUnit>& units,
                               const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m) {
  const auto n = static_cast<Eigen::Index>(units.size());
  UnitProperties p;
  p.depth_m.resize(n);
  p.territory_centre_m.resize(n, 3);
  p.n_fibres.resize(n);
  p.cv_m_per_s.resize(n);
  p.end_plate_m.resize(n, 1);
  for (Eigen::Index i = 0; i < n; ++i) {
    const auto& su = units[static_cast<std::size_t>(i)];
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
    p.cv_m_per_s[i] = anatomy::realised_cv_m_per_s(m.fibres, m.pool, su.unit);
    double ep = 0.0;
    for (const auto f : u.fibres)
      ep += m.fibres.fibres[static_cast<std::size_t>(f)].end_plate_m;
    p.end_plate_m(i, 0) = ep / static_cast<double>(u.fibres.size());
  }
  return p;
}

} // namespace

/// Time per multiply-add of synthesize_emg() (synthesis_operations()) and per noise sample and
/// channel [s] on 2 cores: `bench_emg`'s 100 units x 320 channels x 10 s at 2048 Hz (13.2e9
/// multiply-adds, 6.6e6 noise samples) took 2.41 s (docs/reliability.md, "Time estimates").
constexpr double seconds_per_synthesis_operation = 1.8e-10;
constexpr double seconds_per_noise_sample = 5e-9;

RunEstimate estimate_simulation(const anatomy::SubjectAnatomy& anatomy, Eigen::Index n_channels,
                                const SimulationParams& params) {
  const std::vector<SimulatedUnit> units = select_units(anatomy, params);
  const auto n_ch = static_cast<double>(n_channels);
  const FibreSourceParams& source = params.muap.source;
  double points = 0.0;
  double point_steps = 0.0;
  double fibres = 0.0;
  // The EMG: each unit's MUAP (as long as its slowest fibre's source) into phase tables, and at
  // most the drive's highest peak rate of discharges (an imported train may have more).
  const double max_rate_pps =
      std::max(params.drive.peak_rate_first_pps, params.drive.peak_rate_last_pps);
  double synthesis_ops = 0.0;
  for (const auto& su : units) {
    const auto& m = anatomy.muscles[su.muscle];
    double muap_duration_s = 0.0;
    for (const auto f : m.pool.units[su.unit].fibres) {
      const auto& fibre = m.fibres.fibres[static_cast<std::size_t>(f)];
      FibreGeometry1D g;
      g.length_m = std::max(fibre.length_m, 0.0);
      g.end_plate_m = std::clamp(fibre.end_plate_m, 0.0, g.length_m);
      g.diameter_m = m.pool.fibre_diameter_m[f];
      g.cv_m_per_s = m.pool.fibre_cv_m_per_s[f];
      const double n_s = g.length_m / source.dz_m + 1.0;
      points += n_s;
      point_steps += n_s * (fibre_source_duration_s(g) / source.dt_s + 1.0);
      muap_duration_s = std::max(muap_duration_s, fibre_source_duration_s(g));
      fibres += 1.0;
    }
    if (params.muap.duration_s > 0.0)
      muap_duration_s = params.muap.duration_s;
    synthesis_ops += synthesis_operations(muap_duration_s, params.muap.fs_Hz,
                                          max_rate_pps * params.drive.duration_s, n_ch, params.emg);
  }
  const double n_units = static_cast<double>(units.size());
  const double samples = params.drive.duration_s * params.emg.fs_Hz;
  RunEstimate e;
  e.bytes = 6.0 * 8.0 * n_ch * samples;
  const double products_s = 2e-10 * point_steps * n_ch;
  const double locate_s = 1e-5 * points;
  const double synthesis_s = seconds_per_synthesis_operation * synthesis_ops;
  const double noise_s = params.emg.add_noise ? seconds_per_noise_sample * samples * n_ch : 0.0;
  e.seconds = products_s + locate_s + synthesis_s + noise_s;
  e.time_parts = "MUAPs: currents x transfer " + format_duration(products_s) +
                 ", locating the source points " + format_duration(locate_s) + "; EMG " +
                 format_duration(synthesis_s) + ", noise " + format_duration(noise_s);
  e.drivers =
      "simulate.drive.duration_s = " + format_number(params.drive.duration_s) +
      " s x simulate.emg.fs_Hz = " + format_number(params.emg.fs_Hz) + " Hz x " +
      format_number(n_ch) + " channels; " + format_number(n_units) +
      " units (simulate.muscles, max_units_per_muscle) with " + format_number(fibres) +
      " model fibres, " + format_number(std::round(points)) +
      " source points (simulate.muap.fibre_source.dz_mm = " + format_number(source.dz_m * 1e3) +
      ")";
  return e;
}

EmgSimulation simulate_emg(const anatomy::SubjectAnatomy& anatomy, const TransferFunction& transfer,
                           Eigen::Index n_channels,
                           const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                           const SimulationParams& params, std::uint64_t seed,
                           const ProgressCallback& progress) {
  EmgSimulation sim;
  // 1. The units.
  sim.units = select_units(anatomy, params);

  // 2. MUAPs, and with jitter the MUAPs of the fibre groups.
  Stopwatch muap_watch;
  const bool jitter = params.jitter_s > 0.0;
  JitterGroups jitter_groups;
  compute_muaps(anatomy, transfer, n_channels, params, seed, progress, sim, jitter_groups);
  sim.muap_time_s = muap_watch.elapsed_s();

  // 3. Discharges: the drive, or real discharge times by recruitment order.
  Stopwatch drive_watch;
  const std::vector<double> thresholds = unit_thresholds(anatomy, sim.units);
  const Rng rng(seed);
  if (params.discharges) {
    import_discharges(params, thresholds, sim);
  } else {
    const DriveResult drive = simulate_drive(params.drive, thresholds, rng.split(1));
    sim.discharge_times_s = drive.discharge_times_s;
    sim.excitation = drive.excitation;
    sim.excitation_fs_Hz = drive.fs_Hz;
  }
  sim.drive_time_s = drive_watch.elapsed_s();

  // 4. EMG.
  Stopwatch emg_watch;
  if (!jitter)
    sim.emg = synthesize_emg(sim.muaps, sim.muap_fs_Hz, sim.discharge_times_s,
                             params.drive.duration_s, params.emg, rng.split(2));
  else
    sim.emg = synthesize_jittered_emg(sim, jitter_groups, params, rng);
  sim.emg_time_s = emg_watch.elapsed_s();

  // 4b. Force of each simulated muscle.
  if (params.force.enabled)
    simulate_force(anatomy, params, sim);

  // 5. Ground truth properties.
  sim.properties = unit_properties(anatomy, sim.units, skin_points_m);
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
