#pragma once
/// \file iemg_run.hpp
/// A whole intramuscular EMG run (`myotwin iemg`, docs/iemg.md): its configuration (the run
/// config's section `iemg` and its `noise`), and the run from the muscle to the files: the muscle
/// of an anatomy folder or a cylinder with its real fibres, two-layer nerve branching, the drive
/// of the pool, and per needle position the contacts, MUAPs, EMG with jitter, channels and noise,
/// written to a folder.
///
/// Files written into `dir`: muaps.h5 (per position `position_<p>/muaps` #units x #contacts x
/// #samples, `muaps_channels`, `contacts_m`), emg.h5 and emg.mat for position 0 and
/// emg_position_<p>.h5/.mat for the others (docs/formats.md), truth.h5 (discharge times, branch
/// delays and per position the jitter of each unit's jittered fibres) and iemg_report.json.

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "myotwin/core/config.hpp"
#include "myotwin/core/progress.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/forward/drive/drive.hpp"
#include "myotwin/forward/needle/clinical.hpp"
#include "myotwin/forward/needle/iemg.hpp"
#include "myotwin/forward/needle/nerve_branching.hpp"
#include "myotwin/forward/noise/noise.hpp"

namespace myotwin::forward {

/// Everything an intramuscular EMG run reads from the run config.
struct IemgConfig {
  IemgParams params; ///< section `iemg`
  /// `iemg.anatomy.dir`: an `myotwin anatomy` output folder; empty: the cylinder below.
  std::filesystem::path anatomy_dir;
  std::string muscle;             ///< `iemg.anatomy.muscle`: the muscle of that anatomy
  CylinderMuscleParams cylinder;  ///< `iemg.cylinder` (used when there is no `iemg.anatomy`)
  NerveBranchingParams branching; ///< `iemg.nerve_branching`
  IemgElectrodes needle;          ///< `iemg.needle`
  InsertionRule insertion;        ///< `iemg.needle.insertion`
  DriveParams drive;              ///< `iemg.drive`
  NoiseParams noise;              ///< the run config's top-level `noise`
};

/// Reads the section `iemg` (everything but the noise, which the caller reads from the top-level
/// `noise`). The muscle is `anatomy` {dir, muscle} or, when that is absent, `cylinder` (its
/// defaults when absent too). \throws BadInput naming the key, as ConfigReader does; when both
/// `anatomy` and `cylinder` are given.
IemgConfig read_iemg_config(ConfigReader& section);

/// What a run measured: iemg_report.json and the numbers of the summary line.
struct IemgRunReport {
  nlohmann::json json;
  std::string muscle;
  std::size_t n_units = 0, n_real_fibres = 0;
  std::int64_t n_positions = 0, n_channels = 0;
  double min_peak_to_peak_uV = 0.0, max_peak_to_peak_uV = 0.0;
  double muap_time_s = 0.0, drive_time_s = 0.0, emg_time_s = 0.0;
};

/// Runs the intramuscular EMG of `config` with random streams from `rng` and writes its files
/// into `dir` (created; emg.mat only with `write_mat`). \throws BadInput when the anatomy has no
/// such muscle or `iemg.units` names a unit the muscle does not have; IoError when a file cannot
/// be written; Error (exit 1) when the clinical insertion rule is met at no position along the
/// track (iemg_report.json then holds the positions tried, and the message the best one).
IemgRunReport run_iemg(const IemgConfig& config, const Rng& rng, const std::filesystem::path& dir,
                       bool write_mat, const ProgressCallback& progress = {});

} // namespace myotwin::forward
