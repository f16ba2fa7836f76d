// `myotwin decompose EMG -o OUT`: motor-unit decomposition of multichannel EMG (emg.h5, a .mat in
// the DEMUSE / MUedit / openhdemg layouts, or a text table) by convolutive blind source
// separation. Writes OUT/decomposition/decomposition.h5, summary.json, decomposition.mat and
// OUT/decomposition/resolved_config.json.
//
// Sample runs:
//   myotwin decompose out/demo/forward/emg.h5 -o out/demo
//   myotwin decompose recording.mat -o out/rec --sil-threshold 0.88 --powerline-Hz 60
//
// The options such as --sil-threshold are keys of the config's section `decompose`, read and
// checked by the same reader as the file's (add_key_option()).

#include <iomanip>
#include <iostream>

#include <omp.h>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/io/emg_file.hpp"
#include "myotwin/inversion/decompose.hpp"
#include "myotwin/inversion/decomposition_io.hpp"

namespace myotwin::app {

namespace {

struct DecomposeOptions {
  SharedOptions shared;
  std::filesystem::path emg;
  std::optional<double> fs_Hz, duration_s;
  bool no_mat = false;
};

void print_result(const inversion::Decomposition& result, double time_s,
                  const std::filesystem::path& dir) {
  std::cout << "channels: " << result.preprocessing.kept.size() << " of " << result.n_channels
            << " kept";
  for (const auto& st : result.preprocessing.channels)
    if (!st.rejected.empty())
      std::cout << "; " << st.index << " " << st.rejected;
  std::cout << "\nextension factor " << result.extension_factor << ", " << result.stats.n_whitened
            << " whitened dimensions, " << result.stats.n_candidates << " candidates\n";
  std::cout << "unit  discharges  rate_pps  CoV_ISI  local   SIL   PNR_dB  review\n";
  for (std::size_t u = 0; u < result.units.size(); ++u) {
    const auto& unit = result.units[u];
    std::cout << std::setw(4) << u << std::setw(12) << unit.discharges.size() << std::fixed
              << std::setprecision(1) << std::setw(10) << unit.rate_pps << std::setprecision(3)
              << std::setw(9) << unit.cov_isi << std::setw(7) << unit.cov_isi_local << std::setw(7)
              << unit.sil << std::setprecision(1) << std::setw(9) << unit.pnr_dB << "  ";
    for (std::size_t f = 0; f < unit.review.size(); ++f)
      std::cout << (f > 0 ? "," : "") << unit.review[f];
    std::cout << "\n";
  }
  std::cout << result.units.size() << " units in " << std::setprecision(1) << time_s
            << " s; results in " << dir.string() << "\n";
}

int run_decompose(const DecomposeOptions& o) {
  // 1. Configuration: the `decompose` section of the run configuration with the options.
  Stopwatch watch;
  const RunConfig config = begin_run(o.shared);
  const inversion::DecomposeParams& params = config.decompose;

  // 2. The EMG.
  forward::EmgReadOptions read_options;
  read_options.fs_Hz = o.fs_Hz;
  read_options.duration_s = o.duration_s;
  const forward::EmgRecording recording = forward::read_emg(o.emg, read_options);
  log_info("EMG: ", recording.emg.rows(), " channels x ", recording.emg.cols(), " samples at ",
           format_number(recording.fs_Hz), " Hz (",
           format_number(static_cast<double>(recording.emg.cols()) / recording.fs_Hz), " s) from ",
           o.emg.string());

  check_run_estimate(inversion::estimate_decompose(static_cast<double>(recording.emg.rows()),
                                                   static_cast<double>(recording.emg.cols()),
                                                   params, omp_get_max_threads()),
                     "decompose");

  // 3. Decompose (nothing is written before it succeeds).
  const inversion::Decomposition result =
      inversion::decompose(recording, params, progress_display(o.shared));

  // 4. Write.
  const Layout out(o.shared.output);
  const auto dir = out[Output::decomposition_dir];
  ensure_output_dir(dir);
  inversion::write_decomposition_h5(out[Output::decomposition], result, recording);
  if (!o.no_mat)
    inversion::write_decomposition_mat(out[Output::decomposition_mat], result, recording);
  nlohmann::json summary = inversion::summary_json(result, recording, params);
  summary["time_s"]["total"] = watch.elapsed_s();
  summary["threads"] = omp_get_max_threads();
  write_text_file(out[Output::decomposition_summary], summary.dump(2) + "\n");
  write_resolved_config(dir, config);

  // 5. Report.
  if (!o.shared.quiet)
    print_result(result, watch.elapsed_s(), dir);
  return 0;
}

} // namespace

void add_decompose_command(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<DecomposeOptions>();
  auto& s = o->shared;
  auto* cmd = app.add_subcommand(
      "decompose",
      "motor-unit decomposition of multichannel EMG (emg.h5, .mat with SIG/data and fsamp, or "
      "CSV) by convolutive blind source separation (extension, whitening, fixed-point ICA, "
      "CoV-of-ISI refinement, SIL acceptance, duplicate removal, peel-off); writes "
      "OUT/decomposition/decomposition.h5, summary.json, decomposition.mat (MUPulses, fsamp, "
      "IPTs, MUFilters); config section `decompose`");
  cmd->add_option("EMG", o->emg, "EMG file (.h5, .mat, .csv)")->required();
  cmd->add_option("--fs-Hz", o->fs_Hz, "sampling rate [Hz] (CSV without one; else a check)");
  cmd->add_option("--duration-s", o->duration_s,
                  "declared duration [s]: checked against #samples / fs");
  add_key_option(*cmd, s, "--extension-factor", "decompose.extension_factor",
                 "extension factor R (0: about 1000 / #channels)");
  add_key_option(*cmd, s, "--iterations", "decompose.n_iterations", "number of candidate sources");
  add_key_option(*cmd, s, "--sil-threshold", "decompose.sil_threshold",
                 "SIL acceptance threshold (0..1)");
  add_key_option(*cmd, s, "--contrast", "decompose.contrast",
                 "contrast: skew, log_cosh or kurtosis");
  add_key_option(*cmd, s, "--highpass-Hz", "decompose.highpass_Hz",
                 "high-pass corner [Hz] (0: off)");
  add_key_option(*cmd, s, "--lowpass-Hz", "decompose.lowpass_Hz", "low-pass corner [Hz] (0: off)");
  add_key_option(*cmd, s, "--powerline-Hz", "decompose.powerline_Hz",
                 "powerline notch [Hz] (0: off)");
  add_key_flag(*cmd, s, "--no-reject", "decompose.reject_channels", false,
               "keep every channel (no bad-channel rejection)");
  add_key_flag(*cmd, s, "--no-peel-off", "decompose.peel_off", false,
               "do not subtract accepted units");
  cmd->add_flag("--no-mat", o->no_mat, "do not write decomposition.mat");
  add_shared_options(*cmd, s, true);
  cmd->callback([&run, o] { run = [o] { return run_decompose(*o); }; });
}

} // namespace myotwin::app
