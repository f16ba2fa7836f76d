// `myotwin decompose EMG -o OUT`: motor-unit decomposition of multichannel EMG (emg.h5, a .mat in
// the DEMUSE / MUedit / openhdemg layouts, or CSV) by convolutive blind source separation.
// Writes OUT/decomposition/decomposition.h5, summary.json, decomposition.mat and
// OUT/decomposition/resolved_config.json.
//
// Sample runs:
//   myotwin decompose out/demo/forward/emg.h5 -o out/demo
//   myotwin decompose recording.mat -o out/rec --sil-threshold 0.88 --powerline-Hz 60
//
// Steps: 1. configuration (section `decompose`, options override it); 2. read the EMG;
// 3. decompose; 4. write; 5. report.

#include <iomanip>
#include <iostream>

#include <omp.h>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/inversion/decompose.hpp"
#include "myotwin/inversion/decomposition_io.hpp"
#include "myotwin/inversion/emg_input.hpp"

namespace myotwin::app {

namespace {

/// Options of `decompose` that override the config section.
struct DecomposeOptions {
  std::filesystem::path emg;
  std::optional<double> fs_Hz, duration_s;
  std::optional<std::int64_t> extension_factor, n_iterations;
  std::optional<double> sil_threshold, highpass_Hz, lowpass_Hz, powerline_Hz;
  std::optional<std::string> contrast;
  bool no_reject = false;
  bool no_peel_off = false;
  bool no_mat = false;
};

} // namespace

void add_decompose_command(CLI::App& app, std::function<int()>& run) {
  auto options = std::make_shared<SharedOptions>();
  auto o = std::make_shared<DecomposeOptions>();
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
  cmd->add_option("--extension-factor", o->extension_factor,
                  "extension factor R (0: about 1000 / #channels)");
  cmd->add_option("--iterations", o->n_iterations, "number of candidate sources");
  cmd->add_option("--sil-threshold", o->sil_threshold, "SIL acceptance threshold (0..1)");
  cmd->add_option("--contrast", o->contrast, "contrast: skew, log_cosh or kurtosis");
  cmd->add_option("--highpass-Hz", o->highpass_Hz, "high-pass corner [Hz] (0: off)");
  cmd->add_option("--lowpass-Hz", o->lowpass_Hz, "low-pass corner [Hz] (0: off)");
  cmd->add_option("--powerline-Hz", o->powerline_Hz, "powerline notch [Hz] (0: off)");
  cmd->add_flag("--no-reject", o->no_reject, "keep every channel (no bad-channel rejection)");
  cmd->add_flag("--no-peel-off", o->no_peel_off, "do not subtract accepted units");
  cmd->add_flag("--no-mat", o->no_mat, "do not write decomposition.mat");
  add_shared_options(*cmd, *options, true);
  cmd->callback([&run, options, o] {
    run = [options, o] {
      // 1. Configuration: the `decompose` section of the run configuration, then the options.
      Stopwatch watch;
      RunConfig config = begin_run(*options);
      inversion::DecomposeParams params = config.decompose;
      if (o->extension_factor)
        params.extension_factor = *o->extension_factor;
      if (o->n_iterations)
        params.n_iterations = *o->n_iterations;
      if (o->sil_threshold)
        params.sil_threshold = *o->sil_threshold;
      if (o->contrast) {
        if (*o->contrast == "skew")
          params.contrast = inversion::Contrast::skew;
        else if (*o->contrast == "log_cosh")
          params.contrast = inversion::Contrast::log_cosh;
        else if (*o->contrast == "kurtosis")
          params.contrast = inversion::Contrast::kurtosis;
        else
          throw BadInput("--contrast " + *o->contrast + ": expected skew, log_cosh or kurtosis");
      }
      if (o->highpass_Hz)
        params.preprocess.highpass_Hz = *o->highpass_Hz;
      if (o->lowpass_Hz)
        params.preprocess.lowpass_Hz = *o->lowpass_Hz;
      if (o->powerline_Hz)
        params.preprocess.powerline_Hz = *o->powerline_Hz;
      if (o->no_reject)
        params.preprocess.reject_channels = false;
      if (o->no_peel_off)
        params.peel_off = false;
      inversion::validate(params);
      config.resolved["decompose"] = inversion::to_json(params);

      // 2. The EMG.
      inversion::EmgReadOptions read_options;
      read_options.fs_Hz = o->fs_Hz;
      read_options.duration_s = o->duration_s;
      const inversion::EmgRecording recording = inversion::read_emg(o->emg, read_options);
      log_info("EMG: ", recording.emg.rows(), " channels x ", recording.emg.cols(), " samples at ",
               format_number(recording.fs_Hz), " Hz (",
               format_number(static_cast<double>(recording.emg.cols()) / recording.fs_Hz),
               " s) from ", o->emg.string());

      // 3. Decompose (nothing is written before it succeeds).
      const inversion::Decomposition result =
          inversion::decompose(recording, params, progress_display(*options));

      // 4. Write.
      const auto dir = options->output / "decomposition";
      ensure_output_dir(dir);
      inversion::write_decomposition_h5(dir / "decomposition.h5", result, recording);
      if (!o->no_mat)
        inversion::write_decomposition_mat(dir / "decomposition.mat", result, recording);
      nlohmann::json summary = inversion::summary_json(result, recording, params);
      summary["time_s"]["total"] = watch.elapsed_s();
      summary["threads"] = omp_get_max_threads();
      write_text_file(dir / "summary.json", summary.dump(2) + "\n");
      write_resolved_config(dir, config);

      // 5. Report.
      if (!options->quiet) {
        std::cout << "channels: " << result.preprocessing.kept.size() << " of " << result.n_channels
                  << " kept";
        for (const auto& st : result.preprocessing.channels)
          if (!st.rejected.empty())
            std::cout << "; " << st.index << " " << st.rejected;
        std::cout << "\nextension factor " << result.extension_factor << ", "
                  << result.stats.n_whitened << " whitened dimensions, "
                  << result.stats.n_candidates << " candidates\n";
        std::cout << "unit  discharges  rate_pps  CoV_ISI  local   SIL   PNR_dB  review\n";
        for (std::size_t u = 0; u < result.units.size(); ++u) {
          const auto& unit = result.units[u];
          std::cout << std::setw(4) << u << std::setw(12) << unit.discharges.size() << std::fixed
                    << std::setprecision(1) << std::setw(10) << unit.rate_pps
                    << std::setprecision(3) << std::setw(9) << unit.cov_isi << std::setw(7)
                    << unit.cov_isi_local << std::setw(7) << unit.sil << std::setprecision(1)
                    << std::setw(9) << unit.pnr_dB << "  ";
          for (std::size_t f = 0; f < unit.review.size(); ++f)
            std::cout << (f > 0 ? "," : "") << unit.review[f];
          std::cout << "\n";
        }
        std::cout << result.units.size() << " units in " << std::setprecision(1)
                  << watch.elapsed_s() << " s; results in " << dir.string() << "\n";
      }
      return 0;
    };
  });
}

} // namespace myotwin::app
