// `myotwin bench bmiss -o OUT`: the model-informed separation benchmark (issue 9, after the
// setting of Halatsis et al. 2025; the science is in inversion/benchmark.hpp). N motor units
// (default 100) in one muscle of the subject (default: the sample forearm's ED), the config's
// electrodes (default a 10 x 32 grid wrapped around the forearm), 10 s at 2048 Hz of independent
// renewal discharges, white noise at 20, 10 and 0 dB; BMISS, blind separation, the true-MUAP
// upper bound and BMISS through a perturbed forward model (the phantom regenerated with
// subcutaneous fat 20 % thicker, muscle conductivities 20 % higher and fat conductivity 20 %
// lower). Table on stdout, OUT/bench_bmiss.json and .md.
//
// The earlier stages (anatomy, mesh, lead fields) run through `myotwin pipeline --until
// leadfield` in OUT/nominal (and OUT/perturbed), so that a rerun reuses them.
//
// `--setting paper` is the published setting instead (inversion/benchmark.hpp): the units spread
// over seven muscles, searched over all of them, in two arms (model-made MUAPs at no noise and
// 20 dB, simulated MUAPs at 20 and 10 dB), with the published scoring beside ours.

#include <algorithm>
#include <iostream>
#include <limits>
#include <string>

#include "commands.hpp"
#include "common.hpp"
#include "layout.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/inversion/benchmark.hpp"

namespace myotwin::app {

namespace {

struct BenchOptions {
  SharedOptions shared;
  inversion::BmissBenchSettings settings;
  std::filesystem::path subject =
      std::filesystem::path(MYOTWIN_SOURCE_DIR) / "sample_data/forearm/subject.json";
  bool no_perturbed = false;
  bool emg_only = false;
  std::vector<std::string> snr; ///< --snr as given (numbers [dB] or "none")
  bool muaps_given = false;
};

/// --snr's values: numbers [dB], or "none" (no noise: +infinity). \throws BadInput otherwise.
std::vector<double> parse_snr(const std::vector<std::string>& values) {
  std::vector<double> out;
  for (const auto& v : values) {
    if (v == "none") {
      out.push_back(std::numeric_limits<double>::infinity());
      continue;
    }
    std::size_t used = 0;
    double x = 0.0;
    try {
      x = std::stod(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v.size())
      throw BadInput("bench bmiss: --snr \"" + v + "\": expected numbers [dB] or none");
    out.push_back(x);
  }
  return out;
}

/// Checks that every muscle of `names` is a muscle of the tissue table `tissues`, before any
/// work. \throws BadInput naming the first that is not, and the muscles there are.
void check_muscles(const std::vector<std::string>& names, const std::filesystem::path& tissues) {
  const nlohmann::json table = parse_json(read_text_file(tissues), tissues.string());
  std::vector<std::string> muscles;
  for (const auto& t : table.at("tissues"))
    if (t.value("class", "") == "muscle")
      muscles.push_back(t.value("name", ""));
  for (const auto& name : names)
    if (std::find(muscles.begin(), muscles.end(), name) == muscles.end()) {
      std::string list;
      for (const auto& m : muscles)
        list += (list.empty() ? "" : ", ") + m;
      throw BadInput("bench bmiss: --muscles: \"" + name + "\" is not a muscle of " +
                     tissues.string() + " (" + list + ")");
    }
}

/// The settings the options give: --snr parsed; for the paper setting its arms (--muaps alone
/// when given, else both; --snr for every arm when given, else model at no noise and 20 dB,
/// simulation at 20 and 10 dB) and no cancellation bounds.
void complete_settings(BenchOptions& o) {
  auto& b = o.settings;
  if (!o.snr.empty())
    b.snr_dB = parse_snr(o.snr);
  if (b.setting != "paper")
    return;
  b.cancellation_bounds = false;
  const double none = std::numeric_limits<double>::infinity();
  const std::vector<std::string> arms = o.muaps_given
                                            ? std::vector<std::string>{b.muaps}
                                            : std::vector<std::string>{"model", "simulation"};
  for (const auto& muaps : arms)
    b.arms.push_back({muaps, !o.snr.empty()     ? b.snr_dB
                             : muaps == "model" ? std::vector<double>{none, 20.0}
                                                : std::vector<double>{20.0, 10.0}});
}

/// Runs `myotwin ARGS`; throws naming `what` when it fails.
void run_stage(const std::string& what, const std::vector<std::string>& args) {
  const int code = run_command(args);
  if (code != 0) {
    const std::string message =
        "bench bmiss: " + what + " failed (exit code " + std::to_string(code) + ")";
    if (code == static_cast<int>(ExitCode::bad_input))
      throw BadInput(message);
    throw Error(message);
  }
}

/// The perturbed subject: the phantom of this config regenerated with thicker fat, checked to
/// be the subject's labels, and its anatomy, mesh and lead fields in OUT/perturbed.
std::filesystem::path perturbed_subject(const BenchOptions& o, const nlohmann::json& cfg,
                                        const RunConfig& config, const anatomy::SubjectFiles& files,
                                        const std::vector<std::string>& shared) {
  const auto& out = o.shared.output;
  const auto& b = o.settings;
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), shared.begin(), shared.end());
    return args;
  };
  run_stage("the phantom", with({"phantom", "-o", (out / "phantom_nominal").string()}));
  if (read_text_file(out / "phantom_nominal/labels.nii.gz") != read_text_file(files.labels))
    throw BadInput("bench bmiss: the perturbed model regenerates the subject with `myotwin "
                   "phantom`, but " +
                   files.labels.string() +
                   " is not the phantom of this config (and seed); use --no-perturbed");
  nlohmann::json pcfg = cfg;
  const auto& ph = config.resolved.at("phantom");
  for (const char* key : {"fat_flexor_mm", "fat_extensor_mm"})
    pcfg["phantom"][key] = ph.at(key).get<double>() * (1 + b.perturbation);
  const auto pcfg_file = out / "bench_config_perturbed.json";
  write_text_file(pcfg_file, pcfg.dump(2) + "\n");
  std::vector<std::string> phantom_args = {
      "phantom",          "-o",     (out / "phantom_perturbed").string(), "--config",
      pcfg_file.string(), "--quiet"};
  if (o.shared.seed)
    phantom_args.insert(phantom_args.end(), {"--seed", std::to_string(*o.shared.seed)});
  run_stage("the perturbed phantom", phantom_args);
  const auto subject = inversion::write_bench_subject(
      out / "perturbed_subject", out / "phantom_perturbed/labels.nii.gz",
      out / "phantom_perturbed/tissues.json", b.paper() ? std::string() : b.muscle, b.n_units,
      b.perturbation);
  run_stage("the perturbed model's stages",
            with({"pipeline", subject.string(), "-o", (out / "perturbed").string(), "--until",
                  "leadfield"}));
  return subject;
}

int run_bench_bmiss(BenchOptions o) {
  Stopwatch watch;
  complete_settings(o);
  auto& b = o.settings;
  inversion::check_settings(b);
  const std::vector<std::string> muscles = b.distinct_muscles();
  // The tissue table's pools as they are in the paper setting; one muscle's is the bench's units.
  const std::string pool_muscle = b.paper() ? std::string() : b.muscle;
  const bool perturbed = !o.no_perturbed && !o.emg_only && b.runs("perturbed");
  const auto out = o.shared.output;
  ensure_output_dir(out);
  // 1. The run configuration: the bench's muscle and units under the user's config.
  nlohmann::json cfg = {{"anatomy", {{"muscles", muscles}}}, {"simulate", {{"muscles", muscles}}}};
  if (!o.shared.config.empty())
    cfg.merge_patch(read_json(o.shared.config));
  const auto cfg_file = out / "bench_config.json";
  write_text_file(cfg_file, cfg.dump(2) + "\n");
  SharedOptions run_options = o.shared;
  run_options.config = cfg_file;
  const RunConfig config = begin_run(run_options);
  std::vector<std::string> shared = {"--config", cfg_file.string(), "--quiet"};
  if (o.shared.seed)
    shared.insert(shared.end(), {"--seed", std::to_string(*o.shared.seed)});
  if (o.shared.threads > 0)
    shared.insert(shared.end(), {"--threads", std::to_string(o.shared.threads)});
  // 2. Subjects and their forward models (reused by the pipeline's keys).
  const anatomy::SubjectFiles files = anatomy::read_subject_file(o.subject);
  if (b.paper())
    check_muscles(muscles, files.tissues);
  const auto nominal_subject = inversion::write_bench_subject(
      out / "nominal_subject", files.labels, files.tissues, pool_muscle, b.n_units, 0.0);
  log_info("bench bmiss: forward model of the subject (anatomy, mesh, lead fields)");
  std::vector<std::string> nominal_args = {"pipeline", nominal_subject.string(),
                                           "-o",       (out / "nominal").string(),
                                           "--until",  "leadfield"};
  nominal_args.insert(nominal_args.end(), shared.begin(), shared.end());
  run_stage("the nominal model's stages", nominal_args);
  const std::filesystem::path psubject =
      perturbed ? perturbed_subject(o, cfg, config, files, shared) : std::filesystem::path();
  const auto model = load_subject_model(Layout(out / "nominal"), nominal_subject, config);
  std::unique_ptr<forward::SubjectForwardModel> pmodel;
  if (perturbed)
    pmodel = load_subject_model(Layout(out / "perturbed"), psubject, config);
  // 3. The benchmark.
  inversion::BmissBenchInputs in{
      b,           config.simulate, config.muap_model, config.invert,
      config.seed, model.get(),     pmodel.get(),      forward::channel_layout(model->layout),
      out};
  in.setup_time_s = watch.elapsed_s();
  inversion::BmissBenchReport report =
      inversion::run_bmiss_benchmark(in, o.emg_only, progress_display(o.shared));
  if (o.emg_only) {
    std::cout << "bench bmiss: recordings written in " << out.string() << "\n";
    return 0;
  }
  // 4. The report.
  report.json["subject"] = o.subject.string();
  write_text_file(out / "bench_bmiss.json", report.json.dump(2) + "\n");
  write_text_file(out / "bench_bmiss.md", report.markdown);
  std::cout << report.markdown;
  return 0;
}

} // namespace

void add_bench_command(CLI::App& app, std::function<int()>& run) {
  auto* bench =
      app.add_subcommand("bench", "benchmarks that print a table (see docs/benchmarks.md)");
  bench->require_subcommand(1);
  auto o = std::make_shared<BenchOptions>();
  auto& b = o->settings;
  auto* cmd = bench->add_subcommand(
      "bmiss",
      "model-informed separation benchmark: N units in one muscle, the config's electrodes (10 x "
      "32 wrapped), independent 10 Hz discharges, white noise; BMISS vs blind separation vs the "
      "true-MUAP upper bound, per iteration, property errors, a perturbed forward model; writes "
      "OUT/bench_bmiss.json and .md");
  cmd->add_option("--subject", o->subject, "subject file (default: the sample forearm)");
  cmd->add_option("--setting", b.setting,
                  "one-muscle (N units, the muscle's whole pool) or paper (the published setting: "
                  "N units spread over --muscles, searched over all of them, model-made and "
                  "simulated arms, the published scoring beside ours)")
      ->capture_default_str();
  cmd->add_option("--muscles", b.muscles,
                  "paper setting: the muscles, one share of the units per entry (a muscle listed "
                  "k times gets k shares)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--muscle", b.muscle, "muscle whose units are simulated and searched")
      ->capture_default_str();
  cmd->add_option("--units", b.n_units,
                  "motor units: of the muscle (its whole pool), or in all (paper setting)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--duration", b.duration_s, "signal length [s]")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--rate", b.rate_pps, "mean discharge rate [pps]")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--isi-cov", b.isi_cov, "CoV of the inter-spike intervals")
      ->check(CLI::Range(0.0, 0.6))
      ->capture_default_str();
  cmd->add_option("--snr", o->snr,
                  "noise levels [dB] or none (default 20,10,0; paper: model none,20 and "
                  "simulation 20,10)")
      ->delimiter(',');
  cmd->add_option("--perturbation", b.perturbation,
                  "relative change of fat thickness and conductivities in the perturbed model")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  cmd->add_flag("--no-perturbed", o->no_perturbed,
                "skip the run with the perturbed model (as --methods without perturbed)");
  cmd->add_option("--methods", b.methods,
                  "methods to run: bmiss (the subject's model), blind, upper (true MUAPs), "
                  "perturbed (BMISS through the perturbed model)")
      ->delimiter(',')
      ->check(CLI::IsMember({"bmiss", "blind", "upper", "perturbed"}))
      ->capture_default_str();
  auto* muaps = cmd->add_option("--muaps", b.muaps,
                                "MUAPs of the recording: simulation (every fibre through the lead "
                                "fields) or model (the MUAP model at each unit's parameters, as "
                                "the published work); paper setting: the one arm to run")
                    ->check(CLI::IsMember({"simulation", "model"}))
                    ->capture_default_str();
  cmd->add_flag("--emg-only", o->emg_only,
                "write the recordings (OUT/emg_<SNR>dB.h5, with their truth) and stop");
  add_shared_options(*cmd, o->shared, true);
  cmd->callback([&run, o, muaps] {
    o->muaps_given = muaps->count() > 0;
    run = [o] { return run_bench_bmiss(*o); };
  });
}

} // namespace myotwin::app
