// `myotwin noise generate --config noise.json --fs-Hz 10240 --duration-s 10 -o noise.h5`: noise
// alone from the run config's `noise` section, to inspect a model; and the `noise` command that
// holds it and `noise calibrate` (cmd_noise_calibrate.cpp).

#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/forward/noise/noise.hpp"

#include <omp.h>

namespace myotwin::app {

namespace {

struct GenerateOptions {
  std::filesystem::path config;
  std::filesystem::path output;
  double fs_Hz = 10240.0;
  double duration_s = 10.0;
  int n_channels = 1;
  double rms_uV = 10.0;
  std::optional<std::uint64_t> seed;
  int threads = 0;
  bool quiet = false;
};

int run_generate(const GenerateOptions& o) {
  Stopwatch watch;
  // 1. The run configuration's `noise` section (a calibrated noise.json is one).
  SharedOptions shared;
  shared.config = o.config;
  shared.threads = o.threads;
  shared.seed = o.seed;
  shared.quiet = o.quiet;
  const RunConfig config = begin_run(shared);
  const forward::NoiseParams& params = config.noise;
  if (!(o.fs_Hz > 0.0) || !(o.duration_s > 0.0) || !(o.rms_uV > 0.0))
    throw BadInput("--fs-Hz " + format_number(o.fs_Hz) + " --duration-s " +
                   format_number(o.duration_s) + " --rms-uV " + format_number(o.rms_uV) +
                   ": each must be > 0");
  const auto n = static_cast<Eigen::Index>(std::llround(o.duration_s * o.fs_Hz));
  // The noise, its coloured and drifting parts and the writer's copy: about four arrays.
  check_memory_estimate(4.0 * 8.0 * o.n_channels * static_cast<double>(n), "noise generate",
                        "--duration-s " + format_number(o.duration_s) + " x --fs-Hz " +
                            format_number(o.fs_Hz) + " x --n-channels " +
                            std::to_string(o.n_channels));
  // 2. Generate.
  const forward::NoiseResult r =
      forward::generate_noise(o.n_channels, n, o.fs_Hz, 1e-6 * o.rms_uV, params, Rng(config.seed));
  // 3. Write.
  H5Writer h5(o.output);
  h5.set_attributes("/", {{"fs_Hz", o.fs_Hz}, {"seed", static_cast<std::int64_t>(config.seed)}});
  h5.write("noise", r.noise_V,
           {{"fs_Hz", o.fs_Hz},
            {"unit", std::string("V")},
            {"noise_params", forward::to_json(params).dump()}});
  h5.write_vector("excess_kurtosis", r.excess_kurtosis);
  h5.write_vector("noise_rms_V", r.noise_rms_V);
  h5.commit();
  if (!o.quiet)
    std::cout << "noise generate: " << forward::to_string(params.type) << ", " << o.n_channels
              << " channels x " << n << " samples at " << format_number(o.fs_Hz) << " Hz; wrote "
              << o.output.string() << " in " << format_number(watch.elapsed_s()) << " s\n";
  return 0;
}

} // namespace

void add_noise_command(CLI::App& app, std::function<int()>& run) {
  auto* noise = app.add_subcommand(
      "noise", "EMG noise models: calibrate them from a rest recording, generate noise alone");
  noise->require_subcommand(1);

  add_noise_calibrate_command(*noise, run);

  auto g = std::make_shared<GenerateOptions>();
  auto* gen = noise->add_subcommand(
      "generate", "noise alone from a config's `noise` section; writes noise.h5 (dataset "
                  "`noise`, #channels x #samples [V], attribute fs_Hz)");
  gen->add_option("--config", g->config,
                  "run configuration whose `noise` section is used (default: defaults)");
  gen->add_option("-o,--output", g->output, "the HDF5 file to write (noise.h5)")->required();
  gen->add_option("--fs-Hz", g->fs_Hz, "sampling rate [Hz]")
      ->check(bounded(limits::min_fs_Hz, limits::max_fs_Hz, "Hz"));
  gen->add_option("--duration-s", g->duration_s, "duration [s]")
      ->check(bounded(1e-3, limits::max_duration_s, "s"));
  gen->add_option("--n-channels", g->n_channels, "number of channels")
      ->check(CLI::Range(1, 100000));
  gen->add_option("--rms-uV", g->rms_uV, "RMS of every channel without drift [uV]")
      ->check(bounded(1e-6, 1e6, "uV"));
  gen->add_option("--seed", g->seed, "random seed")->check(seed_value());
  gen->add_option("--threads", g->threads, "threads to use (0: all cores)")->check(thread_count());
  gen->add_flag("--quiet", g->quiet, "print warnings and errors only");
  gen->callback([&run, g] { run = [g] { return run_generate(*g); }; });
}

} // namespace myotwin::app
