#include "myotwin/forward/needle/iemg_run.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

#include <omp.h>

#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/io/emg_file.hpp"

namespace myotwin::forward {

IemgConfig read_iemg_config(ConfigReader& section) {
  IemgConfig c;
  c.params = read_iemg_params(section);
  if (section.has("anatomy") && section.has("cylinder"))
    section.fail("anatomy", "give one muscle source: `anatomy` {dir, muscle} or `cylinder` "
                            "{radius_mm, length_mm, ...}, not both");
  if (section.has("anatomy")) {
    ConfigReader a = section.section("anatomy");
    c.anatomy_dir = a.required_path("dir", "a `myotwin anatomy` output folder (OUT/anatomy)");
    c.muscle = a.required<std::string>("muscle", {}, "the muscle of that anatomy to record from");
  } else {
    ConfigReader cyl = section.section("cylinder");
    c.cylinder = read_cylinder_params(cyl);
  }
  ConfigReader nb = section.section("nerve_branching");
  c.branching = read_nerve_branching_params(nb);
  ConfigReader needle = section.section("needle");
  c.needle = read_iemg_electrodes(needle);
  ConfigReader insertion = needle.section("insertion");
  c.insertion = read_insertion_rule(insertion);
  ConfigReader drive = section.section("drive");
  // Steady low-force isometric contractions: ISI CoV about 0.1-0.15 (docs/iemg.md, "Drive").
  DriveParams drive_defaults;
  drive_defaults.isi_cov = 0.12;
  c.drive = read_drive_params(drive, drive_defaults);
  return c;
}

namespace {

/// Peak-to-peak of the largest channel, that channel, and its duration (the span where it
/// departs from its first value by more than 2.5 % of its peak-to-peak) [V, -, s].
std::tuple<double, Eigen::Index, double> muap_summary(const Eigen::MatrixXd& channels_V,
                                                      double fs_Hz) {
  const Eigen::RowVectorXd p2p = channels_V.colwise().maxCoeff() - channels_V.colwise().minCoeff();
  Eigen::Index best = 0;
  const double peak = p2p.maxCoeff(&best);
  Eigen::Index first = -1;
  Eigen::Index last = -1;
  for (Eigen::Index n = 0; n < channels_V.rows(); ++n) {
    if (std::abs(channels_V(n, best) - channels_V(0, best)) > 0.025 * peak) {
      first = first < 0 ? n : first;
      last = n;
    }
  }
  return {peak, best, first < 0 ? 0.0 : static_cast<double>(last - first) / fs_Hz};
}

/// The memory and time of a run, estimated before the real fibres, MUAPs and EMG are allocated
/// (docs/reliability.md, "Bounded resources" and "Time estimates"). Memory: the real fibres (the
/// model fibres' weights summed; ~120 bytes each with the units' index lists), the MUAPs of the
/// simulated units (the potential and its two derivatives, #samples of `muap_duration_ms` or
/// 50 ms x #contacts) and per needle position the EMG (clean contacts, noisy channels, noise and
/// the writers' copies: about 2 x #contacts + 4 x #channels rows of duration x fs samples).
/// Time on 2 cores: spreading the real fibres, then per position the MUAPs (real fibres of the
/// simulated units x contacts; contacts with an area 1.4 times a point's) and the EMG (the
/// discharges, at most 15 per second per unit, x contacts); a clinical insertion tries up to
/// max_travel / step positions.
/// \throws BadInput (check_run_estimate()) when the memory exceeds the limit.
void check_iemg_estimate(const IemgConfig& c, const IemgMuscle& muscle) {
  // Constants from bench_iemg (docs/benchmarks.md, "Intramuscular EMG" and "Needle EMG").
  constexpr double spread_s_per_fibre = 5e-5;
  constexpr double muap_s_per_fibre_contact = 1.7e-5;
  constexpr double area_factor = 1.4;
  constexpr double emg_s_per_discharge_contact = 2e-5;
  constexpr double max_rate_Hz = 15.0;
  double n_real = 0.0;
  for (const auto& f : muscle.model_fibres.fibres)
    n_real += std::max(1.0, std::round(f.weight));
  const Eigen::MatrixXd weights = iemg_channel_weights(c.needle);
  const auto n_channels = static_cast<double>(weights.rows());
  const auto n_contacts = static_cast<double>(weights.cols());
  const double n_pool = static_cast<double>(muscle.pool.units.size());
  const double n_units =
      c.params.units.empty() ? n_pool : static_cast<double>(c.params.units.size());
  const double muap_s = c.params.muap_duration_s > 0.0 ? c.params.muap_duration_s : 0.05;
  const double muap_samples = muap_s * c.params.fs_Hz + 1.0;
  const double samples = c.drive.duration_s * c.params.fs_Hz;
  RunEstimate e;
  e.bytes = 120.0 * n_real + 3.0 * 8.0 * n_units * muap_samples * n_contacts +
            8.0 * samples * (2.0 * n_contacts + 4.0 * n_channels);
  const double positions =
      c.insertion.clinical
          ? std::max(1.0, std::floor(c.insertion.max_travel_m / c.insertion.step_m) + 1.0)
          : static_cast<double>(c.needle.n_positions);
  const bool areas =
      c.needle.contact_diameter_m > 0.0 ||
      (c.needle.kind != IemgElectrodeKind::array && c.needle.kind != IemgElectrodeKind::fine_wire);
  const double spread_s = spread_s_per_fibre * n_real;
  const double muaps_s = positions * muap_s_per_fibre_contact * n_real * (n_units / n_pool) *
                         n_contacts * (areas ? area_factor : 1.0);
  const double emg_s = positions * emg_s_per_discharge_contact * n_units * max_rate_Hz *
                       c.drive.duration_s * n_contacts;
  e.seconds = spread_s + muaps_s + emg_s;
  e.time_parts = "real fibres " + format_duration(spread_s) + ", MUAPs " +
                 format_duration(muaps_s) + ", EMG " + format_duration(emg_s) + " over " +
                 (c.insertion.clinical ? "up to " : "") + format_number(positions) +
                 (positions == 1.0 ? " position" : " positions");
  e.drivers = format_number(n_real) + " real fibres, " + format_number(n_units) + " units x " +
              format_number(n_contacts) +
              " contacts, iemg.drive.duration_s = " + format_number(c.drive.duration_s) +
              " s x iemg.fs_Hz = " + format_number(c.params.fs_Hz) + " Hz x " +
              format_number(n_channels) + " channels";
  check_run_estimate(e, "iemg");
}

/// The muscle of the config (from its anatomy folder, or the cylinder) with its real fibres.
IemgMuscle load_muscle(const IemgConfig& c, const Rng& rng) {
  IemgMuscle muscle;
  if (!c.anatomy_dir.empty()) {
    const anatomy::SubjectAnatomy anatomy = anatomy::read_subject_anatomy(c.anatomy_dir);
    std::string names;
    for (const auto& m : anatomy.muscles) {
      if (m.fibres.name == c.muscle) {
        muscle.name = c.muscle;
        muscle.model_fibres = m.fibres;
        muscle.pool = m.pool;
        muscle.centre_m = m.fibres.plane_centre_m;
      }
      names += (names.empty() ? "" : ", ") + m.fibres.name;
    }
    if (muscle.name.empty())
      throw BadInput("iemg.anatomy.muscle = \"" + c.muscle + "\": not a muscle of " +
                     c.anatomy_dir.string() + " (muscles: " + names + ")");
  } else {
    muscle = cylinder_muscle(c.cylinder, c.params.end_plate_percent / 100.0, rng.split(1));
  }
  check_iemg_estimate(c, muscle);
  spread_sub_fibres(muscle, c.params, c.branching, rng.split(2));
  log_info("muscle ", muscle.name, ": ", muscle.pool.units.size(), " units, ",
           muscle.model_fibres.fibres.size(), " model fibres, ", muscle.fibres.size(),
           " real fibres");
  return muscle;
}

/// The simulated units (iemg.units, or all) and their discharge times from the pool's drive.
std::vector<std::vector<double>> unit_discharges(const IemgConfig& c, const IemgMuscle& muscle,
                                                 const Rng& rng, std::vector<std::int64_t>& units) {
  std::vector<double> thresholds;
  for (const auto& u : muscle.pool.units)
    thresholds.push_back(u.recruitment_threshold);
  const DriveResult drv = simulate_drive(c.drive, thresholds, rng.split(3));
  units = c.params.units;
  if (units.empty()) {
    units.resize(muscle.pool.units.size());
    std::iota(units.begin(), units.end(), 0);
  }
  std::vector<std::vector<double>> times;
  for (const auto u : units) {
    if (u >= static_cast<std::int64_t>(muscle.pool.units.size()))
      throw BadInput("iemg.units contains " + std::to_string(u) + ": the muscle has " +
                     std::to_string(muscle.pool.units.size()) +
                     " units (0-based, recruitment order)");
    times.push_back(drv.discharge_times_s[static_cast<std::size_t>(u)]);
  }
  return times;
}

/// The open output files of a run and what the positions add to the report.
struct IemgWriters {
  H5Writer muaps;
  H5Writer truth;
  nlohmann::json units = nlohmann::json::array();
};

/// Writes one position's MUAPs (monopolar and channels), the jitter truth and the report rows.
void write_position_muaps(std::int64_t p, const std::vector<UnitMuap>& muaps, const IemgEmg& emg,
                          const Eigen::MatrixXd& weights, const Eigen::MatrixX3d& contacts,
                          const IemgMuscle& muscle, const std::vector<std::vector<double>>& times,
                          double fs_Hz, IemgWriters& w, UnitProperties& props) {
  const std::string group = "position_" + std::to_string(p) + "/";
  const auto n_u = static_cast<unsigned long long>(muaps.size());
  std::size_t max_rows = 0;
  for (const auto& m : muaps)
    max_rows = std::max(max_rows, static_cast<std::size_t>(m.phi_V.rows()));
  const auto n_c = static_cast<unsigned long long>(contacts.rows());
  const auto n_ch = static_cast<unsigned long long>(weights.rows());
  std::vector<double> mono(n_u * n_c * max_rows, 0.0);
  std::vector<double> chan(n_u * n_ch * max_rows, 0.0);
  props.n_fibres.resize(static_cast<Eigen::Index>(muaps.size()));
  props.cv_m_per_s.resize(static_cast<Eigen::Index>(muaps.size()));
  for (std::size_t u = 0; u < muaps.size(); ++u) {
    const auto& m = muaps[u];
    const Eigen::MatrixXd ch = m.phi_V * weights.transpose();
    for (Eigen::Index c = 0; c < m.phi_V.cols(); ++c)
      for (Eigen::Index n = 0; n < m.phi_V.rows(); ++n)
        mono[(u * n_c + static_cast<std::size_t>(c)) * max_rows + static_cast<std::size_t>(n)] =
            m.phi_V(n, c);
    for (Eigen::Index c = 0; c < ch.cols(); ++c)
      for (Eigen::Index n = 0; n < ch.rows(); ++n)
        chan[(u * n_ch + static_cast<std::size_t>(c)) * max_rows + static_cast<std::size_t>(n)] =
            ch(n, c);
    props.unit_id.push_back(m.unit);
    props.n_fibres[static_cast<Eigen::Index>(u)] = m.n_fibres;
    props.cv_m_per_s[static_cast<Eigen::Index>(u)] =
        muscle.pool.units[static_cast<std::size_t>(m.unit)].cv_m_per_s;
    const auto [p2p, best, duration] = muap_summary(ch, fs_Hz);
    const MuapFeatures f = muap_features(ch.col(best), fs_Hz);
    w.units.push_back({{"position", p},
                       {"rise_time_ms", 1e3 * f.rise_time_s},
                       {"half_width_ms", 1e3 * f.half_width_s},
                       {"peak_interval_ms", 1e3 * f.peak_interval_s},
                       {"n_phases", f.n_phases},
                       {"n_turns", f.n_turns},
                       {"unit", m.unit},
                       {"n_fibres", m.n_fibres},
                       {"n_discharges", times[u].size()},
                       {"peak_to_peak_uV", 1e6 * p2p},
                       {"channel", best},
                       {"duration_ms", 1e3 * duration},
                       {"n_jittered_fibres", m.jitter_fibres.size()},
                       {"jitter_energy_captured", m.jitter_energy_captured}});
    const std::string id = std::to_string(m.unit);
    VectorXi64 jf(static_cast<Eigen::Index>(m.jitter_fibres.size()));
    for (std::size_t q = 0; q < m.jitter_fibres.size(); ++q)
      jf[static_cast<Eigen::Index>(q)] = m.jitter_fibres[q];
    w.truth.write(group + "jitter_s/" + id, emg.jitter_s[u], {{"unit", std::string("s")}});
    w.truth.write_vector(group + "jitter_fibres/" + id, jf);
  }
  w.muaps.write_3d(group + "muaps", mono, {n_u, n_c, max_rows}, {{"unit", std::string("V")}});
  w.muaps.write_3d(group + "muaps_channels", chan, {n_u, n_ch, max_rows},
                   {{"unit", std::string("V")}});
  w.muaps.write(group + "contacts_m", Eigen::MatrixXd(contacts));
}

/// The EMG of one position: jittered unit trains, channels, noise and the discharge samples.
EmgResult position_emg(const IemgConfig& c, const IemgEmg& emg, const Eigen::MatrixXd& weights,
                       const std::vector<std::vector<double>>& times, const Rng& rng,
                       std::int64_t p) {
  EmgResult result;
  result.fs_Hz = c.params.fs_Hz;
  result.emg_clean = weights * emg.clean_V;
  const NoiseResult nr = make_noise(result.emg_clean, c.params.fs_Hz, c.noise,
                                    rng.split(5).split(static_cast<std::uint64_t>(p)));
  result.emg = result.emg_clean + nr.noise_V;
  result.snr_dB = nr.snr_dB;
  result.noise_rms_V = nr.noise_rms_V;
  const auto n_out = result.emg.cols();
  for (const auto& t : times) {
    std::vector<std::int64_t> s;
    for (const double x : t)
      s.push_back(std::min<std::int64_t>(std::llround(x * c.params.fs_Hz), n_out - 1));
    result.spike_samples.push_back(s);
  }
  return result;
}

/// The discharge times and branch delays of every simulated unit, into truth.h5.
void write_unit_truth(H5Writer& truth, const std::vector<std::int64_t>& units,
                      const std::vector<std::vector<double>>& times, const IemgMuscle& muscle,
                      VectorXi64& unit_ids) {
  unit_ids.resize(static_cast<Eigen::Index>(units.size()));
  for (std::size_t u = 0; u < units.size(); ++u) {
    unit_ids[static_cast<Eigen::Index>(u)] = units[u];
    const Eigen::Map<const Eigen::VectorXd> t(times[u].data(),
                                              static_cast<Eigen::Index>(times[u].size()));
    truth.write_vector("discharge_times_s/" + std::to_string(units[u]), t,
                       {{"unit", std::string("s")}});
    const auto& ids = muscle.unit_fibres[static_cast<std::size_t>(units[u])];
    Eigen::VectorXd delays(static_cast<Eigen::Index>(ids.size()));
    for (std::size_t k = 0; k < ids.size(); ++k)
      delays[static_cast<Eigen::Index>(k)] =
          muscle.fibres[static_cast<std::size_t>(ids[k])].delay_s;
    truth.write_vector("branch_delays_s/" + std::to_string(units[u]), delays,
                       {{"unit", std::string("s")}});
  }
}

/// The recording contacts of a needle at position p: a clinical needle's recording surface (not
/// its reference), every contact of an array, both tips of every fine-wire pair.
std::vector<ContactSurface> recording_contacts(const IemgElectrodes& needle,
                                               const Eigen::Vector3d& centre_m, std::int64_t p) {
  auto s = iemg_contact_surfaces(needle, centre_m, p);
  if (needle.kind != IemgElectrodeKind::array && needle.kind != IemgElectrodeKind::fine_wire)
    s.resize(1);
  return s;
}

/// \throws BadInput naming iemg.needle.position_mm (or pairs) when a recording contact of a
/// fixed needle lies outside the muscle: farther than two model-fibre spacings from its fibres.
void check_needle_inside(const IemgElectrodes& needle, const IemgMuscle& muscle) {
  const double spacing = muscle_inside_tolerance_m(muscle);
  const std::int64_t n_positions =
      needle.kind == IemgElectrodeKind::fine_wire ? 1 : needle.n_positions;
  for (std::int64_t p = 0; p < n_positions; ++p) {
    for (const auto& c : recording_contacts(needle, muscle.centre_m, p)) {
      const double d = muscle_distance_m(muscle, c.centre_m());
      if (d <= spacing)
        continue;
      // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on
      // "literal" + std::string chains here.
      const auto in_mm = [](const Eigen::Vector3d& v) {
        std::string text("[");
        for (int k = 0; k < 3; ++k)
          text.append(k > 0 ? ", " : "").append(format_number(1e3 * v[k]));
        return text.append("]");
      };
      const std::string at = in_mm(c.centre_m()) + " mm (absolute)";
      const std::string key =
          needle.kind == IemgElectrodeKind::fine_wire
              ? std::string("iemg.needle.pairs")
              : std::string("iemg.needle.position_mm = ") + in_mm(needle.position_m);
      throw BadInput(key + ": the recording contact " + c.name + " at trajectory position " +
                     std::to_string(p) + " lies outside the muscle \"" + muscle.name + "\", at " +
                     at + ", " + format_number(1e3 * d) +
                     " mm from its nearest fibre (inside means within " +
                     format_number(1e3 * spacing) +
                     " mm, two model-fibre spacings): move the needle into the muscle (positions "
                     "are relative to " +
                     (needle.relative_to_centre ? "the muscle centre" : "the origin") +
                     "), or use insertion.mode = \"clinical\" to advance it from outside");
    }
  }
}

} // namespace

IemgRunReport run_iemg(const IemgConfig& c, const Rng& rng, const std::filesystem::path& dir,
                       bool write_mat, const ProgressCallback& progress) {
  Stopwatch watch;
  IemgRunReport report;
  // 1. The muscle and its real fibres; 2. the drive and the simulated units' discharges.
  const IemgMuscle muscle = load_muscle(c, rng);
  const double t_drive = watch.elapsed_s();
  std::vector<std::int64_t> units;
  const auto times = unit_discharges(c, muscle, rng, units);
  report.drive_time_s = watch.elapsed_s() - t_drive;
  // 3. The clinical insertion: the needle advanced until the rule holds.
  ensure_output_dir(dir);
  IemgElectrodes needle = c.needle;
  nlohmann::json insertion_json;
  if (!c.insertion.clinical)
    check_needle_inside(c.needle, muscle);
  if (c.insertion.clinical) {
    std::vector<std::int64_t> active;
    for (std::size_t u = 0; u < units.size(); ++u)
      if (!times[u].empty())
        active.push_back(units[u]);
    const double t_ins = watch.elapsed_s();
    const InsertionResult ins = clinical_insertion(muscle, active, c.needle, c.params, c.insertion);
    insertion_json = ins.to_json(c.needle.relative_to_centre);
    insertion_json["time_s"] = watch.elapsed_s() - t_ins;
    const InsertionTry& best = ins.tries[ins.chosen];
    if (!ins.satisfied) {
      write_text_file(dir / "iemg_report.json",
                      nlohmann::json({{"insertion", insertion_json}}).dump(2) + "\n");
      std::string figures;
      for (std::size_t i = 0; i < best.accepted.size(); ++i)
        figures += (figures.empty() ? "" : ", ") + std::string("unit ") +
                   std::to_string(best.accepted[i]) + " rise " +
                   format_number(1e3 * best.accepted_features[i].rise_time_s) + " ms, " +
                   format_number(1e6 * best.accepted_features[i].peak_to_peak_V) + " uV";
      throw Error("iemg.needle.insertion: no position along the track (" +
                  std::to_string(ins.tries.size()) + " tried, every " +
                  format_number(1e3 * c.insertion.step_m) + " mm over max_travel_mm = " +
                  format_number(1e3 * c.insertion.max_travel_m) + ") has " +
                  std::to_string(c.insertion.min_units) + " units with a main spike rising in <= " +
                  format_number(1e3 * c.insertion.max_rise_time_s) +
                  " ms and >= " + format_number(1e6 * c.insertion.min_peak_to_peak_V) +
                  " uV; best: position_mm [" + format_number(1e3 * best.position_m.x()) + ", " +
                  format_number(1e3 * best.position_m.y()) + ", " +
                  format_number(1e3 * best.position_m.z()) + "] (step " +
                  std::to_string(best.step) + ") with " + std::to_string(best.accepted.size()) +
                  " unit(s)" + (figures.empty() ? "" : ": " + figures) + "; tries in " +
                  (dir / "iemg_report.json").string());
    }
    needle.position_m = best.position_m;
    needle.n_positions = 1;
    log_info("clinical insertion: step ", best.step, " of ", ins.tries.size(), ", ",
             best.accepted.size(), " units accepted");
  }
  // 4. Per needle position: contacts, MUAPs, EMG, channels, noise; written as they come.
  nlohmann::json spectra = nlohmann::json::array();
  nlohmann::json body_fibres = nlohmann::json::array();
  const Eigen::MatrixXd weights = iemg_channel_weights(needle);
  const std::int64_t n_positions =
      needle.kind == IemgElectrodeKind::fine_wire ? 1 : needle.n_positions;
  IemgWriters w{H5Writer(dir / "muaps.h5"), H5Writer(dir / "truth.h5")};
  w.muaps.set_attributes("/", {{"fs_Hz", c.params.fs_Hz},
                               {"muscle", muscle.name},
                               {"n_positions", n_positions},
                               {"differentiation", to_string(c.needle.differentiation)},
                               {"electrode", to_string(c.needle.kind)}});
  for (std::int64_t p = 0; p < n_positions; ++p) {
    const auto surfaces = iemg_contact_surfaces(needle, muscle.centre_m, p);
    const Eigen::MatrixX3d contacts = iemg_contacts(needle, muscle.centre_m, p);
    const double t0 = watch.elapsed_s();
    // The muscle as the needle finds it at this position: the fibres its body meets displaced or
    // cut (clinical needles; docs/iemg.md, "The needle's body").
    const NeedleBody body = iemg_needle_body(needle, muscle.centre_m, p);
    IemgMuscle moved;
    const IemgMuscle* here = &muscle;
    std::int64_t n_body = 0;
    if (body.present && needle.body_mode != NeedleBodyMode::none) {
      moved = muscle;
      n_body = apply_needle_body(moved, body, needle.body_mode);
      here = &moved;
      log_info("needle position ", p, ": its body ",
               needle.body_mode == NeedleBodyMode::displace ? "displaced " : "cut ", n_body,
               " real fibres");
    }
    body_fibres.push_back({{"position", p}, {"n_fibres", n_body}});
    const auto muaps = iemg_muaps(*here, units, surfaces, c.params, progress);
    const double t1 = watch.elapsed_s();
    const IemgEmg emg = synthesize_iemg(muaps, times, c.drive.duration_s, c.params.fs_Hz,
                                        c.params.jitter_s, rng.split(4));
    const EmgResult result = position_emg(c, emg, weights, times, rng, p);
    report.muap_time_s += t1 - t0;
    report.emg_time_s += watch.elapsed_s() - t1;
    UnitProperties props;
    write_position_muaps(p, muaps, emg, weights, contacts, *here, times, c.params.fs_Hz, w, props);
    ChannelLayout layout;
    layout.position_m = weights.cwiseAbs() * Eigen::MatrixXd(contacts) /
                        std::max(1.0, weights.cwiseAbs().rowwise().sum().maxCoeff());
    layout.grid_name =
        c.needle.kind == IemgElectrodeKind::array ? "needle_array" : to_string(c.needle.kind);
    const std::string stem = p == 0 ? "emg" : "emg_position_" + std::to_string(p);
    write_emg_h5(dir / (stem + ".h5"), result, props, layout);
    const auto spectrum = [&](const Eigen::MatrixXd& x) {
      const SpectrumFractions f = spectrum_fractions(x.row(0).transpose(), c.params.fs_Hz);
      return nlohmann::json{{"f10_100", f.f10_100},
                            {"f100_300", f.f100_300},
                            {"f300_1000", f.f300_1000},
                            {"above_1000", f.above_1000},
                            {"median_Hz", f.median_Hz}};
    };
    if (result.emg.cols() >= 64)
      spectra.push_back({{"position", p},
                         {"channel", 0},
                         {"clean", spectrum(result.emg_clean)},
                         {"with_noise", spectrum(result.emg)}});
    if (write_mat)
      write_emg_mat(dir / (stem + ".mat"), result, props, layout);
  }
  // 5. The truth of every unit, the files committed, the report.
  VectorXi64 unit_ids;
  write_unit_truth(w.truth, units, times, muscle, unit_ids);
  w.truth.write_vector("unit_id", unit_ids);
  w.truth.set_attributes("/", {{"fs_Hz", c.params.fs_Hz}, {"jitter_s", c.params.jitter_s}});
  w.muaps.write_vector("unit_id", unit_ids);
  w.muaps.commit();
  w.truth.commit();
  report.muscle = muscle.name;
  report.n_units = units.size();
  report.n_real_fibres = muscle.fibres.size();
  report.n_positions = n_positions;
  report.n_channels = weights.rows();
  report.min_peak_to_peak_uV = 1e300;
  for (const auto& u : w.units) {
    report.min_peak_to_peak_uV =
        std::min(report.min_peak_to_peak_uV, u["peak_to_peak_uV"].get<double>());
    report.max_peak_to_peak_uV =
        std::max(report.max_peak_to_peak_uV, u["peak_to_peak_uV"].get<double>());
  }
  report.json = {{"muscle", muscle.name},
                 {"n_units_simulated", units.size()},
                 {"n_real_fibres", muscle.fibres.size()},
                 {"n_model_fibres", muscle.model_fibres.fibres.size()},
                 {"n_positions", n_positions},
                 {"n_contacts", iemg_contacts(needle, muscle.centre_m, 0).rows()},
                 {"electrode", to_string(needle.kind)},
                 {"n_channels", weights.rows()},
                 {"fs_Hz", c.params.fs_Hz},
                 {"duration_s", c.drive.duration_s},
                 {"threads", omp_get_max_threads()},
                 {"time_s",
                  {{"muaps", report.muap_time_s},
                   {"drive", report.drive_time_s},
                   {"emg", report.emg_time_s},
                   {"total", watch.elapsed_s()}}},
                 {"units", w.units},
                 {"spectrum", spectra}};
  if (needle.kind != IemgElectrodeKind::array && needle.kind != IemgElectrodeKind::fine_wire)
    report.json["needle_body"] = {{"mode", needle.body_mode == NeedleBodyMode::displace ? "displace"
                                           : needle.body_mode == NeedleBodyMode::exclude ? "exclude"
                                                                                         : "none"},
                                  {"positions", body_fibres}};
  if (!insertion_json.is_null())
    report.json["insertion"] = insertion_json;
  write_text_file(dir / "iemg_report.json", report.json.dump(2) + "\n");
  return report;
}

} // namespace myotwin::forward
