#pragma once
// The layout of an output folder OUT: every file a command writes there, named once with the
// command that writes it (the table in layout.cpp). Commands ask the layout for their paths and
// pass explicit paths to the libraries; a missing input is reported with the command that makes
// it.

#include <filesystem>
#include <memory>
#include <string>

#include "common.hpp"
#include "myotwin/forward/subject_model.hpp"

namespace myotwin::app {

/// The files and folders of OUT.
enum class Output {
  anatomy_dir,           ///< anatomy/                  myotwin anatomy
  motor_units,           ///< anatomy/motor_units.h5    myotwin anatomy
  fibres,                ///< anatomy/fibers.vtp        myotwin anatomy
  mesh_dir,              ///< mesh/                     myotwin mesh
  mesh,                  ///< mesh/mesh.vtu             myotwin mesh
  skin,                  ///< mesh/skin.vtp             myotwin mesh
  mesh_quality,          ///< mesh/mesh_quality.json    myotwin mesh
  forward_dir,           ///< forward/                  myotwin leadfield, simulate
  lead_fields,           ///< forward/leadfields.h5     myotwin leadfield
  electrodes_json,       ///< forward/electrodes.json   myotwin leadfield
  electrodes_vtp,        ///< forward/electrodes.vtp    myotwin leadfield
  leadfield_report,      ///< forward/leadfield_report.json  myotwin leadfield
  muaps,                 ///< forward/muaps.h5          myotwin simulate
  emg,                   ///< forward/emg.h5            myotwin simulate
  emg_mat,               ///< forward/emg.mat           myotwin simulate
  montages,              ///< forward/montages.h5       myotwin simulate
  simulate_report,       ///< forward/simulate_report.json  myotwin simulate
  decomposition_dir,     ///< decomposition/            myotwin decompose
  decomposition,         ///< decomposition/decomposition.h5  myotwin decompose
  decomposition_mat,     ///< decomposition/decomposition.mat myotwin decompose
  decomposition_summary, ///< decomposition/summary.json     myotwin decompose
  score,                 ///< decomposition/score.json  myotwin score
  inversion_dir,         ///< inversion/                myotwin invert
  iemg_dir,              ///< iemg/                     myotwin iemg
  pipeline_dir,          ///< pipeline/                 myotwin pipeline
  manifest,              ///< pipeline/manifest.json    myotwin pipeline
  pipeline_summary,      ///< pipeline/summary.json     myotwin pipeline
  resolved_config,       ///< resolved_config.json      every command that takes --config
};

/// The path of `what` relative to OUT (e.g. "mesh/mesh.vtu").
std::filesystem::path relative_path(Output what);

/// The command that writes `what` (e.g. "mesh").
std::string command_of(Output what);

/// An output folder.
class Layout {
public:
  explicit Layout(std::filesystem::path out) : out_(std::move(out)) {}
  [[nodiscard]] const std::filesystem::path& out() const { return out_; }
  /// OUT / relative_path(what).
  [[nodiscard]] std::filesystem::path operator[](Output what) const;
  /// The path of `what`, which must exist. \throws IoError naming it and the command to run
  /// first: "OUT/mesh/mesh.vtu: not found: run `myotwin mesh SUBJECT -o OUT` first".
  [[nodiscard]] std::filesystem::path require(Output what,
                                              const std::filesystem::path& subject) const;

private:
  std::filesystem::path out_;
};

/// The forward model of `subject` from the anatomy, mesh and lead fields in `layout`, with the
/// config's electrodes and reference. \throws IoError naming a missing file and the command
/// that makes it; BadInput when the lead fields are of another mesh, conductivity or electrodes.
std::unique_ptr<forward::SubjectForwardModel>
load_subject_model(const Layout& layout, const std::filesystem::path& subject,
                   const RunConfig& config);

} // namespace myotwin::app
