// `myotwin noise calibrate RECORDING -o noise.json`: the realistic-noise parameters estimated
// from a recording's rest segment (forward/noise/noise.hpp, calibrate_noise()), written as a run
// config with a `noise` section that `myotwin noise generate`, `myotwin iemg` and `myotwin
// simulate` read back.
//
// Sample runs:
//   myotwin noise calibrate rest.h5 --start-s 1 --end-s 11 -o noise.json --report report.json
//   myotwin noise calibrate rest.csv --unit uV -o noise.json
//
// Recordings: whatever `decompose` reads (inversion/emg_input.hpp): an HDF5 file with a dataset
// `emg` (or `noise`, or --dataset) of #channels x #samples and attribute `fs_Hz`, a MATLAB .mat,
// or a text table with one row per sample and one column per channel, whose time column is
// named `time_s`, `time`, `t` or `t_s` (or is the first, with --time-column), else the rate
// comes from a `# fs_Hz = X` comment line or --fs-Hz.

#include <iomanip>
#include <iostream>
#include <sstream>

#include <omp.h>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/text.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/io/emg_file.hpp"
#include "myotwin/forward/noise/noise.hpp"

namespace myotwin::app {

namespace {

/// A number with 4 significant digits for the summary.
std::string num(double v) {
  std::ostringstream s;
  s << std::setprecision(4) << v;
  return s.str();
}

/// "0,2-5" -> {0, 2, 3, 4, 5}.
std::vector<Eigen::Index> parse_channels(const std::string& text, Eigen::Index n_channels) {
  std::vector<Eigen::Index> out;
  std::istringstream parts(text);
  for (std::string part; std::getline(parts, part, ',');) {
    const auto dash = part.find('-');
    const auto a = parse_number(part.substr(0, dash));
    const auto b = dash == std::string::npos ? a : parse_number(part.substr(dash + 1));
    if (!a || !b || *a < 0 || *b < *a || *a != std::floor(*a) || *b != std::floor(*b) ||
        *b >= static_cast<double>(n_channels))
      throw BadInput("--channels \"" + text + "\": \"" + part +
                     "\": expected 0-based indices or ranges (0,2-5) below " +
                     std::to_string(n_channels));
    for (auto c = static_cast<Eigen::Index>(*a); c <= static_cast<Eigen::Index>(*b); ++c)
      out.push_back(c);
  }
  return out;
}

struct CalibrateOptions {
  std::filesystem::path recording;
  std::filesystem::path output;
  std::filesystem::path report;
  std::string channels;
  std::string dataset;
  std::string unit = "V";
  double start_s = 0.0;
  double end_s = -1.0;
  double fs_Hz = 0.0;
  bool time_column = false;
  double snr_dB = 20.0;
  int threads = 0;
  bool quiet = false;
};

int run_calibrate(const CalibrateOptions& o) {
  Stopwatch watch;
  if (o.threads > 0)
    omp_set_num_threads(o.threads);
  // 1. The recording (any format `decompose` reads), in volts.
  forward::EmgReadOptions read;
  if (o.fs_Hz > 0.0)
    read.fs_Hz = o.fs_Hz;
  read.dataset = o.dataset;
  read.time_column = o.time_column;
  forward::EmgRecording rec = forward::read_emg(o.recording, read);
  const double scale = o.unit == "V" ? 1.0 : o.unit == "mV" ? 1e-3 : 1e-6;
  rec.emg *= scale;

  // 2. Channels and the rest segment.
  Eigen::MatrixXd x = rec.emg;
  if (!o.channels.empty()) {
    const auto idx = parse_channels(o.channels, rec.emg.rows());
    x.resize(static_cast<Eigen::Index>(idx.size()), rec.emg.cols());
    for (std::size_t i = 0; i < idx.size(); ++i)
      x.row(static_cast<Eigen::Index>(i)) = rec.emg.row(idx[i]);
  }
  const double duration_s = static_cast<double>(x.cols()) / rec.fs_Hz;
  const double end_s = o.end_s < 0.0 ? duration_s : o.end_s;
  if (!(o.start_s >= 0.0 && end_s > o.start_s && end_s <= duration_s + 0.5 / rec.fs_Hz))
    throw BadInput("--start-s " + format_number(o.start_s) + " --end-s " + format_number(end_s) +
                   ": expected 0 <= start < end <= the recording's " + format_number(duration_s) +
                   " s");
  const auto i0 = static_cast<Eigen::Index>(std::llround(o.start_s * rec.fs_Hz));
  const auto i1 = std::min<Eigen::Index>(x.cols(), std::llround(end_s * rec.fs_Hz));
  const Eigen::MatrixXd rest = x.middleCols(i0, i1 - i0);

  // 3. Calibrate.
  forward::NoiseCalibrationOptions copt;
  copt.snr_dB = o.snr_dB;
  forward::NoiseCalibration cal = forward::calibrate_noise(rest, rec.fs_Hz, copt);
  cal.report["recording"] = o.recording.string();
  cal.report["segment_s"] = {o.start_s, end_s};

  // 4. Write the config (and the report).
  const nlohmann::json config = {{"noise", forward::to_json(cal.params)}};
  write_text_file(o.output, config.dump(2) + "\n");
  if (!o.report.empty())
    write_text_file(o.report, cal.report.dump(2) + "\n");
  if (!o.quiet) {
    const auto& p = cal.params;
    std::cout << "noise calibrate: " << rest.rows() << " channels x " << rest.cols()
              << " samples at " << format_number(rec.fs_Hz) << " Hz ("
              << num(static_cast<double>(rest.cols()) / rec.fs_Hz) << " s)\n"
              << "  psd_slope " << num(p.psd_slope) << ", midband " << num(p.midband_Hz) << " Hz ("
              << num(p.midband_gain_dB) << " dB, " << num(p.midband_width_oct)
              << " oct), high-pass " << num(p.highpass_Hz) << " Hz\n"
              << "  excess kurtosis " << num(p.excess_kurtosis) << "\n"
              << "  powerline " << num(p.powerline_Hz) << " Hz";
    if (p.powerline_Hz > 0.0) {
      std::cout << ", amplitude " << num(p.powerline_amplitude_ratio)
                << " of the broadband RMS, harmonics";
      for (double r : p.powerline_harmonic_ratios)
        std::cout << " " << num(r);
      std::cout << ", frequency drift " << num(p.powerline_drift_Hz) << " Hz";
    }
    std::cout << "\n  baseline drift " << num(1e6 * p.drift_rms_V) << " uV RMS";
    if (p.drift_rms_V > 0.0)
      std::cout << " (alpha " << num(p.drift_alpha) << ")";
    std::cout << "\n  wrote " << o.output.string() << " in " << num(watch.elapsed_s()) << " s\n";
  }
  return 0;
}

} // namespace

void add_noise_calibrate_command(CLI::App& noise, std::function<int()>& run) {
  auto c = std::make_shared<CalibrateOptions>();
  auto* cal = noise.add_subcommand(
      "calibrate",
      "estimate the realistic-noise parameters (PSD slope, mid-band emphasis, high-pass, "
      "kurtosis, powerline frequency, harmonic ratios and frequency drift, baseline drift) from "
      "a rest segment; writes a config with a `noise` section");
  cal->add_option("RECORDING", c->recording,
                  "emg.h5 (dataset `emg` [V], attribute fs_Hz), a MATLAB .mat as `decompose` "
                  "reads, or a text table .csv/.tsv/.txt (rows = samples)")
      ->required();
  cal->add_option("-o,--output", c->output, "the noise config to write (noise.json)")->required();
  cal->add_option("--report", c->report, "also write what was measured (JSON)");
  cal->add_option("--channels", c->channels, "0-based channels to use, e.g. 0,2-5 (default all)");
  cal->add_option("--start-s", c->start_s, "start of the rest segment [s]");
  cal->add_option("--end-s", c->end_s, "end of the rest segment [s] (default: the end)");
  cal->add_option("--dataset", c->dataset, "HDF5 dataset (default `emg`, else `noise`)");
  cal->add_option("--fs-Hz", c->fs_Hz,
                  "sampling rate [Hz] when the file has none (must agree when it has one)");
  cal->add_flag("--time-column", c->time_column, "text table: the first column is the time [s]");
  cal->add_option("--unit", c->unit, "unit of the values in the file")
      ->check(CLI::IsMember({"V", "mV", "uV"}));
  cal->add_option("--snr-dB", c->snr_dB, "snr_dB written to the config [dB]");
  cal->add_option("--threads", c->threads, "threads to use (0: all cores)")->check(thread_count());
  cal->add_flag("--quiet", c->quiet, "print warnings and errors only");
  cal->callback([&run, c] { run = [c] { return run_calibrate(*c); }; });
}

} // namespace myotwin::app
