#pragma once
/// \file simulation.hpp
/// Surface / intramuscular EMG of a subject's motor units: MUAPs of every selected unit in a
/// volume conductor (a TransferFunction: the FEM lead fields, or the infinite medium), the
/// discharges of the pool (Fuglevand drive, or real discharge times mapped by recruitment
/// order), and the EMG with noise, with the ground truth kept beside it (config section
/// `simulate`, with sub-sections `muap`, `drive`, `emg`).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/core/progress.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/forward/drive/drive.hpp"
#include "myotwin/forward/drive/force.hpp"
#include "myotwin/forward/emg/emg.hpp"
#include "myotwin/forward/emg/montage.hpp"
#include "myotwin/forward/io/emg_file.hpp"
#include "myotwin/forward/needle/nerve_branching.hpp"
#include "myotwin/forward/source/muap.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::forward {

/// Parameters of a simulation (config section `simulate`).
struct SimulationParams {
  /// Muscles to simulate by name (key `muscles`); empty: every muscle of the anatomy.
  std::vector<std::string> muscles;
  /// At most this many units per muscle, the first in recruitment order (key
  /// `max_units_per_muscle`; 0: all).
  std::int64_t max_units_per_muscle = 0;
  /// Real discharge times (MAT `MUPulses` + `fsamp`, or CSV) mapped onto the simulated units by
  /// recruitment order instead of the drive (key `discharges`, a path; absent: the drive).
  std::optional<std::filesystem::path> discharges;
  /// Montages of the first grid written beside the monopolar EMG (key `montages`, names:
  /// sd_rows, sd_columns, dd_rows, dd_columns, laplacian; default none).
  std::vector<Montage> montages;
  /// Each MUAP's trailing samples where every channel stays within this fraction of the MUAP's
  /// largest |value| are dropped before the synthesis (key `muap_tail_fraction`, default 1e-4;
  /// 0 keeps the automatic length, until the slowest fibre's last wave is extinguished).
  double muap_tail_fraction = 1e-4;
  /// Standard deviation of the neuromuscular-junction jitter [s] (key `jitter_us`, default 0:
  /// off; 35 us is the physiological value, REFERENCE_VALUES.md). With jitter each unit's
  /// fibres are split into `jitter_groups` spatial groups (k-means of their positions in the
  /// section); at every discharge each group's MUAP is shifted by its own Gaussian delay of
  /// SD jitter / sqrt(W_g), W_g the real fibres of the group, which gives the MUAP the same
  /// discharge-to-discharge variance (to first order in the jitter) as independent jitter of
  /// every real fibre.
  double jitter_s = 0.0;
  /// Fibre groups per unit for the jitter (key `jitter_groups`, default 8, >= 1); the EMG
  /// synthesis costs this many times more with jitter on.
  std::int64_t jitter_groups = 8;
  /// Sub-section `nerve_branching`: per-fibre delays from the two-layer terminal branching
  /// (on by default; unit u of the muscle with label L draws from
  /// Rng(seed).split(4).split(L).split(u)).
  NerveBranchingParams nerve_branching;
  TwitchParams force; ///< sub-section `force`: the twitch model
  MuapParams muap;    ///< sub-section `muap`
  DriveParams drive;  ///< sub-section `drive` (its duration_s is the signal's length)
  EmgParams emg;      ///< sub-section `emg`
};

/// Reads the `simulate` section. \throws BadInput naming the key.
SimulationParams read_simulation_params(ConfigReader& section);

/// One simulated unit.
struct SimulatedUnit {
  std::size_t muscle = 0; ///< index into SubjectAnatomy::muscles
  std::size_t unit = 0;   ///< index into that muscle's pool.units
};

/// The result of simulate_emg().
struct EmgSimulation {
  std::vector<SimulatedUnit> units;   ///< in muscle order, then recruitment order
  std::vector<Eigen::MatrixXd> muaps; ///< per unit: #samples x #channels [V] at muap_fs_Hz
  double muap_fs_Hz = 0.0;
  std::vector<std::vector<double>> discharge_times_s; ///< per unit [s]
  std::vector<double> excitation; ///< the drive's excitation (empty for imported)
  double excitation_fs_Hz = 0.0;
  EmgResult emg;
  UnitProperties properties;               ///< ids, muscle, depth, centre, size, CV, end-plate
  std::vector<std::int64_t> imported_unit; ///< per unit: the imported unit, -1 (imported only)
  std::int64_t muap_samples_dropped = 0;   ///< quiet-tail samples dropped, all units
  /// Force of each simulated muscle (#muscles x #samples at the EMG's fs_Hz), a fraction of
  /// that muscle's maximum (see force.hpp); empty when the twitch model is off.
  Eigen::MatrixXd force;
  std::vector<std::string> force_muscles; ///< names of the rows of `force`
  Eigen::VectorXd twitch_peak_force;      ///< per unit: P (units of the muscle's smallest twitch)
  Eigen::VectorXd contraction_time_s;     ///< per unit: T [s]
  double muap_time_s = 0.0;
  double drive_time_s = 0.0;
  double emg_time_s = 0.0;
};

/// Simulates the EMG of the selected units of `anatomy` at the `n_channels` electrodes that
/// `transfer` describes. Unit ids are 1000 * (muscle label) + recruitment index. Depth is the
/// distance from the unit's territory centre (in its muscle's seed plane) to the nearest of
/// `skin_points_m` (#points x 3 [m]; empty: depth NaN). The drive draws from
/// Rng(seed).split(1), the noise from Rng(seed).split(2); the result is the same at any thread
/// count. \throws BadInput for a muscle name that is not in the anatomy, an empty unit set,
/// a discharges file without units, and whatever the MUAP, drive and EMG stages reject.
EmgSimulation simulate_emg(const anatomy::SubjectAnatomy& anatomy, const TransferFunction& transfer,
                           Eigen::Index n_channels,
                           const Eigen::Ref<const Eigen::MatrixX3d>& skin_points_m,
                           const SimulationParams& params, std::uint64_t seed,
                           const ProgressCallback& progress = {});

/// What simulate_emg() needs at `n_channels` electrodes, estimated before it starts
/// (docs/reliability.md, "Bounded resources"). Memory: the noisy and clean EMG, the noise, the
/// montages and the file writers' copies (about six #channels x #samples arrays of doubles).
/// Time on 2 idle cores, of the MUAPs only: per model fibre of the selected units with n_s =
/// length / dz source points and n_t = its source duration / dt time steps (fibre_source
/// params), 2e-10 s x n_s x n_t x #channels (the dense product of the currents and the transfer
/// matrix) plus 1e-5 s x n_s (locating the source points in the mesh).
/// \throws BadInput as simulate_emg() does for an unknown muscle or no units.
RunEstimate estimate_simulation(const anatomy::SubjectAnatomy& anatomy, Eigen::Index n_channels,
                                const SimulationParams& params);

/// Writes `muaps.h5` atomically: attribute `fs_Hz`, dataset `muaps` (#units x #channels x
/// #samples [V], zero-padded to the longest MUAP), `unit_id`, and the unit properties under
/// `units/` as in emg.h5. \throws IoError.
void write_muaps_h5(const std::filesystem::path& path, const EmgSimulation& simulation);

} // namespace myotwin::forward
