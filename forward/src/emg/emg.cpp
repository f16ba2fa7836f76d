#include "myotwin/forward/emg/emg.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>
#include <string>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/resources.hpp"

namespace myotwin::forward {

namespace {

/// The reconstruction / anti-alias kernel of the file comment, divided by the MUAP rate.
class Kernel {
public:
  Kernel(double fs_Hz, double muap_fs_Hz, const EmgParams& params)
      : fc_(params.cutoff_fraction * std::min(fs_Hz, muap_fs_Hz)),
        half_width_s_(params.kernel_zero_crossings / (2.0 * fc_)), beta_(params.kaiser_beta),
        i0_beta_(std::cyl_bessel_i(0.0, params.kaiser_beta)), muap_fs_(muap_fs_Hz) {}

  /// Half-width L [s]; the kernel is 0 for |tau| >= L.
  [[nodiscard]] double half_width_s() const { return half_width_s_; }

  /// h(tau) / muap_fs.
  [[nodiscard]] double operator()(double tau_s) const {
    const double x = tau_s / half_width_s_;
    if (std::abs(x) >= 1.0)
      return 0.0;
    const double arg = 2.0 * fc_ * tau_s;
    const double sinc =
        arg == 0.0 ? 1.0 : std::sin(std::numbers::pi * arg) / (std::numbers::pi * arg);
    const double window = std::cyl_bessel_i(0.0, beta_ * std::sqrt(1.0 - x * x)) / i0_beta_;
    return 2.0 * fc_ * sinc * window / muap_fs_;
  }

private:
  double fc_;
  double half_width_s_;
  double beta_;
  double i0_beta_;
  double muap_fs_;
};

/// Number of fractional delays per output sample at which the tables are computed exactly
/// (when n_phases is larger the other phases are cubic interpolations between them).
constexpr int exact_phases = 16;

/// The weights that map a MUAP of n_muap samples to its exact tables: for exact phase q
/// (0 .. n_exact - 1) a n_rows x n_muap matrix, row r giving the output sample at offset
/// i_min + r from the discharge's sample n0 for a discharge at (n0 + q / n_exact) / fs.
/// Entry (r, j) depends on r and j only (not on n_muap), so the weights of a shorter MUAP are
/// the top-left rows_for(n) x n block of these.
struct TableWeights {
  std::int64_t i_min = 0;
  std::int64_t n_rows = 0;
  int n_exact = 0;
  double half_width_s = 0.0;
  double muap_fs_Hz = 0.0;
  double fs_Hz = 0.0;
  std::vector<Eigen::MatrixXd> w;

  /// The rows of the tables of a MUAP of `n_muap` samples (<= the n_muap these were made for).
  [[nodiscard]] std::int64_t rows_for(Eigen::Index n_muap) const {
    const auto i_max = static_cast<std::int64_t>(std::ceil(
                           (static_cast<double>(n_muap - 1) / muap_fs_Hz + half_width_s) * fs_Hz)) +
                       1;
    return i_max - i_min + 1;
  }
};

TableWeights table_weights(Eigen::Index n_muap, double muap_fs_Hz, double fs_Hz,
                           const EmgParams& params) {
  const Kernel h(fs_Hz, muap_fs_Hz, params);
  const double half = h.half_width_s();
  TableWeights t;
  t.half_width_s = half;
  t.muap_fs_Hz = muap_fs_Hz;
  t.fs_Hz = fs_Hz;
  t.i_min = static_cast<std::int64_t>(std::floor(-half * fs_Hz));
  t.n_rows = t.rows_for(n_muap);
  t.n_exact = std::min(params.n_phases, exact_phases);
  const int n_exact = t.n_exact;
  t.w.assign(static_cast<std::size_t>(n_exact), Eigen::MatrixXd());
#pragma omp parallel for schedule(static)
  for (int q = 0; q < n_exact; ++q) {
    Eigen::MatrixXd w = Eigen::MatrixXd::Zero(t.n_rows, n_muap);
    for (std::int64_t r = 0; r < t.n_rows; ++r) {
      const double tau =
          (static_cast<double>(t.i_min + r) - static_cast<double>(q) / n_exact) / fs_Hz;
      const auto j0 = std::max<std::int64_t>(
          0, static_cast<std::int64_t>(std::floor((tau - half) * muap_fs_Hz)));
      const auto j1 = std::min<std::int64_t>(
          n_muap - 1, static_cast<std::int64_t>(std::ceil((tau + half) * muap_fs_Hz)));
      for (std::int64_t j = j0; j <= j1; ++j)
        w(r, j) = h(tau - static_cast<double>(j) / muap_fs_Hz);
    }
    t.w[static_cast<std::size_t>(q)] = std::move(w);
  }
  return t;
}

/// dst += a * (exact table of phase q), for any integer q: phase q' + n_exact k is the table of
/// phase q' (0 <= q' < n_exact) delayed by k rows (rows outside the table are 0, as the kernel's
/// support lies inside it).
void add_phase(Eigen::MatrixXd& dst, const std::vector<Eigen::MatrixXd>& exact, int q, double a) {
  const int n_exact = static_cast<int>(exact.size());
  const int k = q >= 0 ? q / n_exact : -((-q + n_exact - 1) / n_exact);
  const Eigen::MatrixXd& e = exact[static_cast<std::size_t>(q - k * n_exact)];
  const Eigen::Index n = e.rows() - std::abs(k);
  if (n <= 0)
    return;
  dst.middleRows(std::max(0, k), n).noalias() += a * e.middleRows(std::max(0, -k), n);
}

/// Table of fine phase p (0 .. n_phases): the exact table when p / n_phases falls on an exact
/// phase, else the cubic (4-point Lagrange) interpolation between the neighbouring exact phases.
Eigen::MatrixXd fine_table(const std::vector<Eigen::MatrixXd>& exact, int p, int n_phases) {
  const int n_exact = static_cast<int>(exact.size());
  const std::int64_t num = static_cast<std::int64_t>(p) * n_exact;
  const int i0 = static_cast<int>(num / n_phases);
  const std::int64_t rem = num % n_phases;
  Eigen::MatrixXd t = Eigen::MatrixXd::Zero(exact.front().rows(), exact.front().cols());
  if (rem == 0) {
    add_phase(t, exact, i0, 1.0);
    return t;
  }
  const double x = static_cast<double>(rem) / n_phases;
  add_phase(t, exact, i0 - 1, -x * (x - 1.0) * (x - 2.0) / 6.0);
  add_phase(t, exact, i0, (x + 1.0) * (x - 1.0) * (x - 2.0) / 2.0);
  add_phase(t, exact, i0 + 1, -(x + 1.0) * x * (x - 2.0) / 2.0);
  add_phase(t, exact, i0 + 2, (x + 1.0) * x * (x - 1.0) / 6.0);
  return t;
}

double rms(const double* x, Eigen::Index n) {
  double s = 0.0;
  for (Eigen::Index i = 0; i < n; ++i)
    s += x[i] * x[i];
  return n > 0 ? std::sqrt(s / static_cast<double>(n)) : 0.0;
}

} // namespace

EmgParams read_emg_params(ConfigReader& section) {
  EmgParams p;
  p.fs_Hz =
      section.optional<double>("fs_Hz", p.fs_Hz, in_range(limits::min_fs_Hz, limits::max_fs_Hz),
                               "sampling rate of the output EMG");
  const auto noise = section.optional<std::string>(
      "noise", p.add_noise ? "gaussian" : "none", one_of({"none", "gaussian"}),
      "noise added to every channel: none, or white Gaussian noise at snr_dB");
  p.add_noise = noise == "gaussian";
  p.snr_dB = section.optional<double>(
      "snr_dB", p.snr_dB, in_range(limits::min_snr_dB, limits::max_snr_dB),
      "signal-to-noise ratio of every channel when noise is gaussian (realised exactly)");
  p.n_phases = static_cast<int>(section.optional<std::int64_t>(
      "n_phases", p.n_phases, int_in_range(1, 4096),
      "fractional delays per output sample in the MUAP tables (sub-sample timing)"));
  p.cutoff_fraction =
      section.optional<double>("cutoff_fraction", p.cutoff_fraction,
                               Check<double>(
                                   [](const double& v) -> std::optional<std::string> {
                                     if (!(v > 0.0 && v <= 0.5))
                                       return "must be in (0, 0.5]";
                                     return std::nullopt;
                                   },
                                   "(0, 0.5]"),
                               "cut-off of the interpolation / anti-alias kernel, fraction of the "
                               "lower of output and MUAP rates");
  p.kernel_zero_crossings = static_cast<int>(section.optional<std::int64_t>(
      "kernel_zero_crossings", p.kernel_zero_crossings, int_in_range(2, 1000),
      "half-width of the windowed-sinc kernel in zero crossings of its sinc"));
  p.kaiser_beta = section.optional<double>(
      "kaiser_beta", p.kaiser_beta, in_range(0.0, 50.0),
      "Kaiser window shape parameter of the kernel (8: about 80 dB stop band)");
  return p;
}

void validate(const EmgParams& params) {
  // The reader's declarations are the one statement of every range.
  ConfigReader reader(to_json(params), "emg");
  (void)read_emg_params(reader);
  reader.finish();
}

nlohmann::json to_json(const EmgParams& p) {
  return {{"fs_Hz", p.fs_Hz},
          {"noise", p.add_noise ? "gaussian" : "none"},
          {"snr_dB", p.snr_dB},
          {"n_phases", p.n_phases},
          {"cutoff_fraction", p.cutoff_fraction},
          {"kernel_zero_crossings", p.kernel_zero_crossings},
          {"kaiser_beta", p.kaiser_beta}};
}

Eigen::VectorXd resample_muap(const Eigen::Ref<const Eigen::VectorXd>& muap, double muap_fs_Hz,
                              const Eigen::Ref<const Eigen::VectorXd>& tau_s, double fs_Hz,
                              const EmgParams& params) {
  const Kernel h(fs_Hz, muap_fs_Hz, params);
  Eigen::VectorXd out(tau_s.size());
  for (Eigen::Index k = 0; k < tau_s.size(); ++k) {
    double s = 0.0;
    for (Eigen::Index j = 0; j < muap.size(); ++j)
      s += muap[j] * h(tau_s[k] - static_cast<double>(j) / muap_fs_Hz);
    out[k] = s;
  }
  return out;
}

double synthesis_operations(double muap_duration_s, double muap_fs_Hz, double n_discharges,
                            double n_channels, const EmgParams& params) {
  const Kernel h(params.fs_Hz, muap_fs_Hz, params);
  const double n_muap = std::floor(muap_duration_s * muap_fs_Hz) + 1.0;
  const double n_rows = std::ceil((muap_duration_s + 2.0 * h.half_width_s()) * params.fs_Hz) + 2.0;
  const double n_exact = std::min(params.n_phases, exact_phases);
  // The exact tables (dense n_rows x n_muap weights times the MUAP), the fine tables (four
  // exact ones each), then each discharge's two-table blend.
  return n_exact * n_rows * n_muap * n_channels +
         4.0 * (params.n_phases + 1.0) * n_rows * n_channels +
         2.0 * n_discharges * n_rows * n_channels;
}

EmgResult synthesize_emg(const std::vector<Eigen::MatrixXd>& muaps, double muap_fs_Hz,
                         const std::vector<std::vector<double>>& discharge_times_s,
                         double duration_s, const EmgParams& params, const Rng& rng) {
  validate(params);
  if (muaps.empty())
    throw BadInput("synthesize_emg: the motor-unit set is empty (0 MUAPs): expected >= 1 unit");
  if (muaps.size() != discharge_times_s.size())
    throw BadInput("synthesize_emg: " + std::to_string(muaps.size()) + " MUAPs but " +
                   std::to_string(discharge_times_s.size()) +
                   " discharge trains: expected one train per unit");
  if (!(muap_fs_Hz > 0.0) || !std::isfinite(muap_fs_Hz))
    throw BadInput("synthesize_emg: muap_fs_Hz = " + format_number(muap_fs_Hz) + ": must be > 0");
  if (!(duration_s > 0.0) || !std::isfinite(duration_s))
    throw BadInput("synthesize_emg: duration_s = " + format_number(duration_s) + ": must be > 0");
  const Eigen::Index n_channels = muaps.front().cols();
  for (std::size_t u = 0; u < muaps.size(); ++u) {
    if (muaps[u].rows() == 0 || muaps[u].cols() == 0)
      throw BadInput("synthesize_emg: unit " + std::to_string(u) + ": MUAP is " +
                     std::to_string(muaps[u].rows()) + " x " + std::to_string(muaps[u].cols()) +
                     ": expected >= 1 sample and >= 1 channel");
    if (muaps[u].cols() != n_channels)
      throw BadInput("synthesize_emg: unit " + std::to_string(u) + ": MUAP has " +
                     std::to_string(muaps[u].cols()) + " channels: expected " +
                     std::to_string(n_channels) + " as unit 0");
    if (!muaps[u].allFinite())
      throw BadInput("synthesize_emg: unit " + std::to_string(u) + ": MUAP has a non-finite value");
  }
  const double fs = params.fs_Hz;
  const auto n_samples = static_cast<std::int64_t>(std::llround(duration_s * fs));
  if (n_samples < 1)
    throw BadInput("synthesize_emg: duration_s = " + format_number(duration_s) +
                   " at fs_Hz = " + format_number(fs) + " gives no sample");

  EmgResult result;
  result.fs_Hz = fs;
  result.spike_samples.resize(muaps.size());
  for (std::size_t u = 0; u < muaps.size(); ++u) {
    auto& idx = result.spike_samples[u];
    idx.reserve(discharge_times_s[u].size());
    for (const double t : discharge_times_s[u]) {
      if (!(t >= 0.0 && t < duration_s))
        throw BadInput("synthesize_emg: unit " + std::to_string(u) + ": discharge time " +
                       format_number(t) + " s is beyond the signal: expected in [0, " +
                       format_number(duration_s) + ") s");
      idx.push_back(std::min<std::int64_t>(std::llround(t * fs), n_samples - 1));
    }
  }

  // Clean signal, samples x channels (each channel contiguous). The channels are split into
  // blocks of a fixed width, processed in parallel; in each block the units are summed in order,
  // each unit's discharges in the given order, so the result does not depend on the threads.
  Eigen::MatrixXd clean_t = Eigen::MatrixXd::Zero(n_samples, n_channels);
  // The weights of the longest MUAP; a shorter one's are their top-left block (TableWeights).
  Eigen::Index n_muap_max = 0;
  for (const auto& m : muaps)
    n_muap_max = std::max(n_muap_max, m.rows());
  const TableWeights tw = table_weights(n_muap_max, muap_fs_Hz, fs, params);
  const int n_phases = params.n_phases;

  // Per discharge: first output sample, phase and interpolation weight.
  struct Placement {
    std::int64_t n_first;
    int phase;
    double a;
  };
  std::vector<std::vector<Placement>> places(muaps.size());
  for (std::size_t u = 0; u < muaps.size(); ++u) {
    const std::int64_t i_min = tw.i_min;
    places[u].reserve(discharge_times_s[u].size());
    for (const double t : discharge_times_s[u]) {
      const double x = t * fs;
      const double n0 = std::floor(x);
      const double q = (x - n0) * n_phases;
      const int p = std::clamp(static_cast<int>(std::floor(q)), 0, n_phases - 1);
      places[u].push_back({static_cast<std::int64_t>(n0) + i_min, p, q - p});
    }
  }

  constexpr Eigen::Index block_width = 32;
  const Eigen::Index n_blocks = (n_channels + block_width - 1) / block_width;
#pragma omp parallel for schedule(dynamic, 1)
  for (Eigen::Index blk = 0; blk < n_blocks; ++blk) {
    const Eigen::Index c0 = blk * block_width;
    const Eigen::Index nc = std::min(block_width, n_channels - c0);
    std::vector<Eigen::MatrixXd> exact;
    std::vector<Eigen::MatrixXd> table(static_cast<std::size_t>(n_phases) + 1);
    for (std::size_t u = 0; u < muaps.size(); ++u) {
      if (places[u].empty())
        continue;
      const Eigen::Index n_muap = muaps[u].rows();
      const std::int64_t n_rows = tw.rows_for(n_muap);
      exact.resize(static_cast<std::size_t>(tw.n_exact));
      for (int q = 0; q < tw.n_exact; ++q)
        exact[static_cast<std::size_t>(q)].noalias() =
            tw.w[static_cast<std::size_t>(q)].topLeftCorner(n_rows, n_muap) *
            muaps[u].middleCols(c0, nc);
      for (int p = 0; p <= n_phases; ++p)
        table[static_cast<std::size_t>(p)] = fine_table(exact, p, n_phases);
      for (Eigen::Index c = 0; c < nc; ++c) {
        double* out = clean_t.col(c0 + c).data();
        for (const auto& pl : places[u]) {
          const double* lo = table[static_cast<std::size_t>(pl.phase)].col(c).data();
          const double* hi = table[static_cast<std::size_t>(pl.phase) + 1].col(c).data();
          const std::int64_t r0 = std::max<std::int64_t>(0, -pl.n_first);
          const std::int64_t r1 = std::min<std::int64_t>(n_rows, n_samples - pl.n_first);
          const double b = 1.0 - pl.a;
          for (std::int64_t r = r0; r < r1; ++r)
            out[pl.n_first + r] += b * lo[r] + pl.a * hi[r];
        }
      }
    }
  }

  Eigen::MatrixXd noisy_t = clean_t;
  result.snr_dB = Eigen::VectorXd::Constant(n_channels, std::numeric_limits<double>::infinity());
  result.noise_rms_V = Eigen::VectorXd::Zero(n_channels);
  if (params.add_noise) {
    const double ratio = std::pow(10.0, params.snr_dB / 20.0);
#pragma omp parallel for schedule(static)
    for (Eigen::Index c = 0; c < n_channels; ++c) {
      const double rms_clean = rms(clean_t.col(c).data(), n_samples);
      if (rms_clean == 0.0) {
        result.snr_dB[c] = std::numeric_limits<double>::quiet_NaN();
        continue;
      }
      Rng r = rng.split(static_cast<std::uint64_t>(c));
      Eigen::VectorXd z(n_samples);
      for (std::int64_t n = 0; n < n_samples; ++n)
        z[n] = r.normal();
      const double rms_z = rms(z.data(), n_samples);
      z *= (rms_clean / ratio) / rms_z;
      noisy_t.col(c) += z;
      const double rms_noise = rms(z.data(), n_samples);
      result.noise_rms_V[c] = rms_noise;
      result.snr_dB[c] = 20.0 * std::log10(rms_clean / rms_noise);
    }
  }
  result.emg_clean = clean_t.transpose();
  result.emg = noisy_t.transpose();
  return result;
}

} // namespace myotwin::forward
