#include "myotwin/forward/drive/drive.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/text.hpp"

namespace myotwin::forward {

namespace {

std::size_t n_samples_of(double duration_s, double fs_Hz) {
  return static_cast<std::size_t>(std::llround(duration_s * fs_Hz));
}

/// Linear interpolation of the sampled excitation at time t [s]; held beyond the last sample.
double excitation_at(const std::vector<double>& e, double fs_Hz, double t) {
  const double x = t * fs_Hz;
  if (x <= 0.0)
    return e.front();
  const auto i = static_cast<std::size_t>(x);
  if (i + 1 >= e.size())
    return e.back();
  const double f = x - static_cast<double>(i);
  return e[i] + f * (e[i + 1] - e[i]);
}

/// The first time >= t_from at which the excitation reaches `threshold` (linearly interpolated
/// between samples); infinity when it never does.
double next_crossing(const std::vector<double>& e, double fs_Hz, double threshold, double t_from) {
  double t_prev = t_from;
  double e_prev = excitation_at(e, fs_Hz, t_from);
  if (e_prev >= threshold)
    return t_from;
  for (auto i = static_cast<std::size_t>(std::max(0.0, t_from * fs_Hz)) + 1; i < e.size(); ++i) {
    const double t_i = static_cast<double>(i) / fs_Hz;
    if (e[i] >= threshold) {
      const double f = (threshold - e_prev) / (e[i] - e_prev);
      return std::clamp(t_prev + f * (t_i - t_prev), t_prev, t_i);
    }
    t_prev = t_i;
    e_prev = e[i];
  }
  return std::numeric_limits<double>::infinity();
}

/// A multiplicative ISI factor 1 + cov * Z, Z standard normal redrawn until |Z| <= 3 and the
/// factor is >= 0.1.
double isi_factor(Rng& rng, double cov) {
  if (cov <= 0.0)
    return 1.0;
  for (;;) {
    const double z = rng.normal();
    const double f = 1.0 + cov * z;
    if (std::abs(z) <= 3.0 && f >= 0.1)
      return f;
  }
}

/// Unit-variance Gaussian noise low-pass filtered by a second-order Butterworth filter.
std::vector<double> common_noise(std::size_t n, double fs_Hz, double cutoff_Hz, Rng rng) {
  const double k = std::tan(std::numbers::pi * cutoff_Hz / fs_Hz);
  const double norm = 1.0 / (1.0 + std::numbers::sqrt2 * k + k * k);
  const double b0 = k * k * norm, b1 = 2.0 * b0, b2 = b0;
  const double a1 = 2.0 * (k * k - 1.0) * norm;
  const double a2 = (1.0 - std::numbers::sqrt2 * k + k * k) * norm;
  // Warm-up of ten time constants of the cut-off so the run starts in the steady state.
  const auto n_warm = static_cast<std::size_t>(std::ceil(10.0 * fs_Hz / cutoff_Hz));
  double x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  std::vector<double> out(n);
  for (std::size_t i = 0; i < n_warm + n; ++i) {
    const double x = rng.normal();
    const double y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
    x2 = x1;
    x1 = x;
    y2 = y1;
    y1 = y;
    if (i >= n_warm)
      out[i - n_warm] = y;
  }
  double mean = 0.0;
  for (double v : out)
    mean += v;
  mean /= static_cast<double>(std::max<std::size_t>(n, 1));
  double var = 0.0;
  for (double v : out)
    var += (v - mean) * (v - mean);
  var /= static_cast<double>(std::max<std::size_t>(n, 1));
  const double sd = std::sqrt(var);
  for (double& v : out)
    v = sd > 0.0 ? (v - mean) / sd : 0.0;
  return out;
}

void check_thresholds(const std::vector<double>& thresholds) {
  if (thresholds.empty())
    throw BadInput("motor-neuron drive: empty motor-unit set: at least one unit is needed");
  for (std::size_t i = 0; i < thresholds.size(); ++i) {
    const double r = thresholds[i];
    if (!(r > 0.0 && r <= 1.0))
      throw BadInput("motor-neuron drive: recruitment threshold of unit " + std::to_string(i) +
                     " = " + format_number(r) +
                     ": must be in (0, 1] (fraction of maximum excitation)");
  }
}

} // namespace

std::string to_string(ProfileType type) {
  switch (type) {
  case ProfileType::constant:
    return "constant";
  case ProfileType::ramp:
    return "ramp";
  case ProfileType::trapezoid:
    return "trapezoid";
  case ProfileType::sinusoid:
    return "sinusoid";
  case ProfileType::csv:
    return "csv";
  }
  return "unknown";
}

namespace {

/// read_drive_params(), with the `profile` section read only when `with_profile`; absent keys keep
/// `defaults`.
DriveParams read_drive_params(ConfigReader& c, bool with_profile, const DriveParams& defaults);

/// The `profile` section of a drive of `duration_s` seconds.
ExcitationProfile read_profile(ConfigReader s, double duration_s);

} // namespace

nlohmann::json to_json(const DriveParams& p) {
  const ExcitationProfile& q = p.profile;
  nlohmann::json profile = {{"type", to_string(q.type)}};
  switch (q.type) {
  case ProfileType::constant:
    profile["level"] = q.level;
    break;
  case ProfileType::ramp:
    profile.update({{"start_level", q.start_level},
                    {"end_level", q.end_level},
                    {"ramp_start_s", q.ramp_start_s},
                    {"ramp_end_s", q.ramp_end_s < 0.0 ? p.duration_s : q.ramp_end_s}});
    break;
  case ProfileType::trapezoid:
    profile.update({{"level", q.level},
                    {"baseline_level", q.baseline_level},
                    {"onset_s", q.onset_s},
                    {"rise_s", q.rise_s},
                    {"plateau_s", q.plateau_s},
                    {"fall_s", q.fall_s}});
    break;
  case ProfileType::sinusoid:
    profile.update({{"mean_level", q.mean_level},
                    {"amplitude", q.amplitude},
                    {"frequency_Hz", q.frequency_Hz},
                    {"phase_rad", q.phase_rad}});
    break;
  case ProfileType::csv:
    profile["path"] = q.csv_path.string();
    break;
  }
  return {{"duration_s", p.duration_s},
          {"fs_Hz", p.fs_Hz},
          {"min_rate_pps", p.min_rate_pps},
          {"peak_rate_first_pps", p.peak_rate_first_pps},
          {"peak_rate_last_pps", p.peak_rate_last_pps},
          {"rate_gain_pps", p.rate_gain_pps},
          {"isi_cov", p.isi_cov},
          {"doublet_probability", p.doublet_probability},
          {"doublet_isi_min_ms", p.doublet_isi_min_ms},
          {"doublet_isi_max_ms", p.doublet_isi_max_ms},
          {"pause_probability", p.pause_probability},
          {"pause_min_s", p.pause_min_s},
          {"pause_max_s", p.pause_max_s},
          {"common_input_sd_fraction", p.common_input_sd_fraction},
          {"common_input_cutoff_Hz", p.common_input_cutoff_Hz},
          {"profile", profile}};
}

void validate(const DriveParams& p) {
  // The reader's declarations are the one statement of every range. A CSV profile's samples are
  // checked as read_excitation_csv() reads them; here only that there are some.
  nlohmann::json j = to_json(p);
  const bool csv = p.profile.type == ProfileType::csv;
  if (csv) {
    j.erase("profile");
    if (p.profile.csv_time_s.empty() ||
        p.profile.csv_time_s.size() != p.profile.csv_excitation.size())
      throw BadInput("drive parameters: profile csv " + p.profile.csv_path.string() +
                     ": no samples (time_s, excitation)");
  }
  ConfigReader reader(j, "drive");
  (void)read_drive_params(reader, !csv, DriveParams{});
  reader.finish();
}

ExcitationProfile read_excitation_csv(const std::filesystem::path& path) {
  const TextTable table = read_text_table(path, "the excitation CSV file");
  ExcitationProfile profile;
  profile.type = ProfileType::csv;
  profile.csv_path = path;
  if (table.rows.empty())
    throw BadInput(path.string() + ": empty excitation CSV: expected the header "
                                   "\"time_s,excitation\" and rows");
  const auto& header = table.rows.front();
  if (header.cells != std::vector<std::string>{"time_s", "excitation"})
    throw BadInput(table.where(header) + "expected the header \"time_s,excitation\"");
  for (std::size_t r = 1; r < table.rows.size(); ++r) {
    const auto& row = table.rows[r];
    const std::string where = table.where(row);
    const auto time_s = row.cells.size() == 2 ? parse_number(row.cells[0]) : std::nullopt;
    const auto e = row.cells.size() == 2 ? parse_number(row.cells[1]) : std::nullopt;
    if (!time_s || !e || !std::isfinite(*time_s) || !std::isfinite(*e))
      throw BadInput(where + "expected two numbers: time_s,excitation");
    if (*e < 0.0)
      throw BadInput(where + "excitation = " + format_number(*e) + ": must be >= 0");
    if (!profile.csv_time_s.empty() && *time_s <= profile.csv_time_s.back())
      throw BadInput(where + "time_s = " + format_number(*time_s) +
                     ": must be greater than the previous time " +
                     format_number(profile.csv_time_s.back()));
    profile.csv_time_s.push_back(*time_s);
    profile.csv_excitation.push_back(*e);
  }
  if (profile.csv_time_s.empty())
    throw BadInput(path.string() + ": no rows after the header \"time_s,excitation\"");
  return profile;
}

std::vector<double> sample_excitation(const ExcitationProfile& q, double duration_s, double fs_Hz) {
  const std::size_t n = n_samples_of(duration_s, fs_Hz);
  std::vector<double> e(n, 0.0);
  if (q.type == ProfileType::csv) {
    const double t_last = static_cast<double>(n == 0 ? 0 : n - 1) / fs_Hz;
    const double tol = 1e-9;
    if (q.csv_time_s.empty() || q.csv_time_s.front() > tol || q.csv_time_s.back() < t_last - tol)
      throw BadInput(q.csv_path.string() + ": excitation times " +
                     (q.csv_time_s.empty() ? std::string("(none)")
                                           : format_number(q.csv_time_s.front()) + " to " +
                                                 format_number(q.csv_time_s.back()) + " s") +
                     " do not cover the run, 0 to " + format_number(t_last) + " s");
  }
  std::size_t j = 0; // csv segment
  for (std::size_t k = 0; k < n; ++k) {
    const double t = static_cast<double>(k) / fs_Hz;
    double v = 0.0;
    switch (q.type) {
    case ProfileType::constant:
      v = q.level;
      break;
    case ProfileType::ramp: {
      const double t1 = q.ramp_end_s < 0.0 ? duration_s : q.ramp_end_s;
      if (t <= q.ramp_start_s)
        v = q.start_level;
      else if (t >= t1)
        v = q.end_level;
      else
        v = q.start_level +
            (q.end_level - q.start_level) * (t - q.ramp_start_s) / (t1 - q.ramp_start_s);
      break;
    }
    case ProfileType::trapezoid: {
      const double t_rise = q.onset_s, t_top = t_rise + q.rise_s, t_fall = t_top + q.plateau_s,
                   t_end = t_fall + q.fall_s;
      const double d = q.level - q.baseline_level;
      if (t < t_rise || t >= t_end)
        v = q.baseline_level;
      else if (t < t_top)
        v = q.baseline_level + d * (t - t_rise) / q.rise_s;
      else if (t < t_fall)
        v = q.level;
      else
        v = q.level - d * (t - t_fall) / q.fall_s;
      break;
    }
    case ProfileType::sinusoid:
      v = q.mean_level +
          q.amplitude * std::sin(2.0 * std::numbers::pi * q.frequency_Hz * t + q.phase_rad);
      v = std::max(v, 0.0);
      break;
    case ProfileType::csv: {
      while (j + 1 < q.csv_time_s.size() && q.csv_time_s[j + 1] < t)
        ++j;
      if (j + 1 >= q.csv_time_s.size() || t <= q.csv_time_s[j]) {
        v = q.csv_excitation[j];
      } else {
        const double f = (t - q.csv_time_s[j]) / (q.csv_time_s[j + 1] - q.csv_time_s[j]);
        v = q.csv_excitation[j] + f * (q.csv_excitation[j + 1] - q.csv_excitation[j]);
      }
      break;
    }
    }
    e[k] = v;
  }
  return e;
}

DriveParams read_drive_params(ConfigReader& c, const DriveParams& defaults) {
  return read_drive_params(c, true, defaults);
}

namespace {

DriveParams read_drive_params(ConfigReader& c, bool with_profile, const DriveParams& defaults) {
  DriveParams p = defaults;
  p.duration_s = c.optional<double>("duration_s", p.duration_s,
                                    in_range(1e-3, limits::max_duration_s), "length of the run");
  p.fs_Hz = c.optional<double>("fs_Hz", p.fs_Hz, in_range(1.0, limits::max_fs_Hz),
                               "sampling rate of the excitation signal");
  p.min_rate_pps = c.optional<double>("min_rate_pps", p.min_rate_pps, positive(),
                                      "discharge rate at recruitment (Fuglevand 1993)");
  p.peak_rate_first_pps =
      c.optional<double>("peak_rate_first_pps", p.peak_rate_first_pps, positive(),
                         "peak discharge rate of the lowest-threshold unit; >= min_rate_pps");
  p.peak_rate_last_pps =
      c.optional<double>("peak_rate_last_pps", p.peak_rate_last_pps, positive(),
                         "peak discharge rate of the highest-threshold unit; >= min_rate_pps");
  p.rate_gain_pps = c.optional<double>(
      "rate_gain_pps", p.rate_gain_pps, non_negative(),
      "rate increase per Fuglevand excitation unit (the lowest threshold) above recruitment");
  p.isi_cov = c.optional<double>("isi_cov", p.isi_cov, in_range(0.0, 0.99),
                                 "coefficient of variation of the inter-spike intervals");
  p.doublet_probability =
      c.optional<double>("doublet_probability", p.doublet_probability, in_range(0.0, 0.99),
                         "probability that a discharge is followed by a doublet (0: none)");
  p.doublet_isi_min_ms =
      c.optional<double>("doublet_isi_min_ms", p.doublet_isi_min_ms, in_range(0.1, 100.0),
                         "shortest doublet interval; intervals are uniform between min and max");
  p.doublet_isi_max_ms =
      c.optional<double>("doublet_isi_max_ms", p.doublet_isi_max_ms, in_range(0.1, 100.0),
                         "longest doublet interval; >= doublet_isi_min_ms");
  p.pause_probability = c.optional<double>(
      "pause_probability", p.pause_probability, in_range(0.0, 0.99),
      "probability that an inter-spike interval is lengthened by a pause (0: none)");
  p.pause_min_s =
      c.optional<double>("pause_min_s", p.pause_min_s, in_range(1e-3, 100.0),
                         "shortest added pause; pauses are uniform between min and max");
  p.pause_max_s = c.optional<double>("pause_max_s", p.pause_max_s, in_range(1e-3, 100.0),
                                     "longest added pause; >= pause_min_s");
  if (p.doublet_isi_max_ms < p.doublet_isi_min_ms)
    c.fail("doublet_isi_max_ms",
           "must be >= doublet_isi_min_ms = " + format_number(p.doublet_isi_min_ms));
  if (p.pause_max_s < p.pause_min_s)
    c.fail("pause_max_s", "must be >= pause_min_s = " + format_number(p.pause_min_s));
  p.common_input_sd_fraction = c.optional<double>(
      "common_input_sd_fraction", p.common_input_sd_fraction, non_negative(),
      "SD of the common synaptic input as a fraction of the profile excitation (0: off)");
  p.common_input_cutoff_Hz = c.optional<double>(
      "common_input_cutoff_Hz", p.common_input_cutoff_Hz, positive(),
      "cut-off of the common input's second-order Butterworth low-pass; < fs_Hz / 2");
  if (p.peak_rate_first_pps < p.min_rate_pps)
    c.fail("peak_rate_first_pps", "must be >= min_rate_pps = " + format_number(p.min_rate_pps));
  if (p.peak_rate_last_pps < p.min_rate_pps)
    c.fail("peak_rate_last_pps", "must be >= min_rate_pps = " + format_number(p.min_rate_pps));
  if (p.common_input_sd_fraction > 0.0 && p.common_input_cutoff_Hz >= 0.5 * p.fs_Hz)
    c.fail("common_input_cutoff_Hz", "must be < fs_Hz / 2 = " + format_number(0.5 * p.fs_Hz));
  if (n_samples_of(p.duration_s, p.fs_Hz) < 1)
    c.fail("duration_s", "must be at least one sample at fs_Hz = " + format_number(p.fs_Hz));
  if (with_profile)
    p.profile = read_profile(c.section("profile"), p.duration_s);
  return p;
}

ExcitationProfile read_profile(ConfigReader s, double duration_s) {
  ExcitationProfile q;
  const std::string type = s.optional<std::string>(
      "type", "trapezoid", one_of({"constant", "ramp", "trapezoid", "sinusoid", "csv"}),
      "shape of the excitation profile E(t); the other profile keys depend on it");
  if (type == "constant") {
    q.type = ProfileType::constant;
    q.level = s.optional<double>("level", q.level, non_negative(),
                                 "constant excitation, fraction of the maximum excitation");
  } else if (type == "ramp") {
    q.type = ProfileType::ramp;
    q.start_level = s.optional<double>(
        "start_level", q.start_level, non_negative(),
        "excitation before and at ramp_start_s, fraction of the maximum excitation");
    q.end_level = s.optional<double>(
        "end_level", q.end_level, non_negative(),
        "excitation at and after ramp_end_s, fraction of the maximum excitation");
    q.ramp_start_s = s.optional<double>("ramp_start_s", q.ramp_start_s, non_negative(),
                                        "start of the linear ramp");
    q.ramp_end_s = s.optional<double>(
        "ramp_end_s", duration_s, positive(),
        "end of the linear ramp, > ramp_start_s (default: the run's duration_s)");
    if (q.ramp_end_s <= q.ramp_start_s)
      s.fail("ramp_end_s", "must be > ramp_start_s = " + format_number(q.ramp_start_s));
  } else if (type == "trapezoid") {
    q.type = ProfileType::trapezoid;
    q.level = s.optional<double>("level", q.level, non_negative(),
                                 "plateau excitation, fraction of the maximum excitation");
    q.baseline_level =
        s.optional<double>("baseline_level", q.baseline_level, non_negative(),
                           "excitation outside the trapezoid, fraction of the maximum excitation");
    q.onset_s = s.optional<double>("onset_s", q.onset_s, non_negative(), "time the rise begins");
    q.rise_s = s.optional<double>("rise_s", q.rise_s, non_negative(),
                                  "duration of the linear rise from baseline to plateau");
    q.plateau_s =
        s.optional<double>("plateau_s", q.plateau_s, non_negative(), "duration of the plateau");
    q.fall_s = s.optional<double>("fall_s", q.fall_s, non_negative(),
                                  "duration of the linear fall from plateau to baseline");
  } else if (type == "sinusoid") {
    q.type = ProfileType::sinusoid;
    q.mean_level =
        s.optional<double>("mean_level", q.mean_level, non_negative(),
                           "mean excitation of the sinusoid, fraction of the maximum excitation");
    q.amplitude = s.optional<double>(
        "amplitude", q.amplitude, non_negative(),
        "amplitude of the sinusoid, fraction of the maximum excitation; <= mean_level");
    q.frequency_Hz = s.optional<double>("frequency_Hz", q.frequency_Hz, non_negative(),
                                        "frequency of the sinusoid");
    q.phase_rad =
        s.optional<double>("phase_rad", q.phase_rad, {}, "phase of the sinusoid at t = 0");
    if (q.amplitude > q.mean_level)
      s.fail("amplitude",
             "must be <= mean_level = " + format_number(q.mean_level) + " (excitation >= 0)");
  } else { // csv
    const std::filesystem::path path = s.required_path(
        "path", "CSV of the excitation: header time_s,excitation; must cover the whole run");
    q = read_excitation_csv(path);
  }
  return q;
}

} // namespace

std::vector<double> exponential_thresholds(std::int64_t n_units, double range,
                                           double max_threshold) {
  if (n_units < 1)
    throw BadInput("exponential_thresholds: n_units = " + std::to_string(n_units) +
                   ": empty motor-unit set: must be >= 1");
  if (!(range >= 1.0))
    throw BadInput("exponential_thresholds: recruitment range = " + format_number(range) +
                   ": must be >= 1");
  if (!(max_threshold > 0.0 && max_threshold <= 1.0))
    throw BadInput("exponential_thresholds: max threshold = " + format_number(max_threshold) +
                   ": must be in (0, 1]");
  std::vector<double> r(static_cast<std::size_t>(n_units));
  for (std::int64_t i = 0; i < n_units; ++i) {
    const double x = n_units == 1 ? 1.0 : static_cast<double>(i) / static_cast<double>(n_units - 1);
    r[static_cast<std::size_t>(i)] = max_threshold * std::pow(range, x - 1.0);
  }
  return r;
}

std::vector<double> peak_rates_pps(const DriveParams& p, const std::vector<double>& thresholds) {
  check_thresholds(thresholds);
  const double r_max = *std::max_element(thresholds.begin(), thresholds.end());
  std::vector<double> peak(thresholds.size());
  for (std::size_t i = 0; i < thresholds.size(); ++i)
    peak[i] = p.peak_rate_first_pps -
              (p.peak_rate_first_pps - p.peak_rate_last_pps) * thresholds[i] / r_max;
  return peak;
}

namespace {
double rate_law(const DriveParams& p, double threshold, double r_min, double peak_pps,
                double excitation) {
  if (excitation < threshold)
    return 0.0;
  const double rate = p.min_rate_pps + p.rate_gain_pps * (excitation - threshold) / r_min;
  return std::max(p.min_rate_pps, std::min(rate, peak_pps));
}
} // namespace

double discharge_rate_pps(const DriveParams& p, const std::vector<double>& thresholds,
                          std::size_t unit, double excitation) {
  const auto peak = peak_rates_pps(p, thresholds);
  if (unit >= thresholds.size())
    throw BadInput("discharge_rate_pps: unit " + std::to_string(unit) + " of a pool of " +
                   std::to_string(thresholds.size()));
  const double r_min = *std::min_element(thresholds.begin(), thresholds.end());
  return rate_law(p, thresholds[unit], r_min, peak[unit], excitation);
}

DriveResult simulate_drive(const DriveParams& p, const std::vector<double>& thresholds,
                           const Rng& rng) {
  validate(p);
  check_thresholds(thresholds);
  DriveResult out;
  out.fs_Hz = p.fs_Hz;
  out.excitation = sample_excitation(p.profile, p.duration_s, p.fs_Hz);
  std::vector<double>& e = out.excitation;
  if (p.common_input_sd_fraction > 0.0) {
    const auto noise = common_noise(e.size(), p.fs_Hz, p.common_input_cutoff_Hz,
                                    rng.split(std::numeric_limits<std::uint64_t>::max()));
    for (std::size_t k = 0; k < e.size(); ++k)
      e[k] = std::max(0.0, e[k] * (1.0 + p.common_input_sd_fraction * noise[k]));
  }
  const auto peak = peak_rates_pps(p, thresholds);
  const double r_min = *std::min_element(thresholds.begin(), thresholds.end());
  const auto n_units = static_cast<std::int64_t>(thresholds.size());
  out.discharge_times_s.assign(thresholds.size(), {});

#pragma omp parallel for schedule(dynamic)
  for (std::int64_t u = 0; u < n_units; ++u) {
    const auto i = static_cast<std::size_t>(u);
    Rng r = rng.split(static_cast<std::uint64_t>(u));
    const double thr = thresholds[i];
    std::vector<double>& times = out.discharge_times_s[i];
    const double e0 = e.front();
    double t = 0.0;
    bool accepted = false; // t is a recruitment time: fire without re-checking the excitation
    if (e0 >= thr) {
      // Already recruited at the start of the run: a random phase within the first ISI, so
      // the units of a steady contraction do not all fire at t = 0.
      t = r.uniform() * isi_factor(r, p.isi_cov) / rate_law(p, thr, r_min, peak[i], e0);
    } else {
      t = next_crossing(e, p.fs_Hz, thr, 0.0);
      accepted = true;
    }
    while (t < p.duration_s) {
      const double ex = excitation_at(e, p.fs_Hz, t);
      if (!accepted && ex < thr) {
        t = next_crossing(e, p.fs_Hz, thr, t);
        accepted = true;
        continue;
      }
      times.push_back(t);
      const double rate = rate_law(p, thr, r_min, peak[i], std::max(ex, thr));
      // Draws for doublets and pauses only when they are on: the trains without them stay those
      // of earlier versions, bit for bit.
      if (p.doublet_probability > 0.0 && r.uniform() < p.doublet_probability) {
        t += 1e-3 * r.uniform(p.doublet_isi_min_ms, p.doublet_isi_max_ms);
        if (t >= p.duration_s)
          break;
        times.push_back(t);
      }
      t += isi_factor(r, p.isi_cov) / rate;
      if (p.pause_probability > 0.0 && r.uniform() < p.pause_probability)
        t += r.uniform(p.pause_min_s, p.pause_max_s);
      accepted = false;
    }
  }
  return out;
}

} // namespace myotwin::forward
