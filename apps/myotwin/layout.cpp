#include "layout.hpp"

#include <array>

#include "myotwin/core/error.hpp"

namespace myotwin::app {

namespace {

struct OutputFile {
  Output what;
  const char* path;
  const char* command;
};

/// The one table of where things go (the order of enum Output).
constexpr std::array<OutputFile, 28> outputs = {{
    {Output::anatomy_dir, "anatomy", "anatomy"},
    {Output::motor_units, "anatomy/motor_units.h5", "anatomy"},
    {Output::fibres, "anatomy/fibers.vtp", "anatomy"},
    {Output::mesh_dir, "mesh", "mesh"},
    {Output::mesh, "mesh/mesh.vtu", "mesh"},
    {Output::skin, "mesh/skin.vtp", "mesh"},
    {Output::mesh_quality, "mesh/mesh_quality.json", "mesh"},
    {Output::forward_dir, "forward", "leadfield"},
    {Output::lead_fields, "forward/leadfields.h5", "leadfield"},
    {Output::electrodes_json, "forward/electrodes.json", "leadfield"},
    {Output::electrodes_vtp, "forward/electrodes.vtp", "leadfield"},
    {Output::leadfield_report, "forward/leadfield_report.json", "leadfield"},
    {Output::muaps, "forward/muaps.h5", "simulate"},
    {Output::emg, "forward/emg.h5", "simulate"},
    {Output::emg_mat, "forward/emg.mat", "simulate"},
    {Output::montages, "forward/montages.h5", "simulate"},
    {Output::simulate_report, "forward/simulate_report.json", "simulate"},
    {Output::decomposition_dir, "decomposition", "decompose"},
    {Output::decomposition, "decomposition/decomposition.h5", "decompose"},
    {Output::decomposition_mat, "decomposition/decomposition.mat", "decompose"},
    {Output::decomposition_summary, "decomposition/summary.json", "decompose"},
    {Output::score, "decomposition/score.json", "score"},
    {Output::inversion_dir, "inversion", "invert"},
    {Output::iemg_dir, "iemg", "iemg"},
    {Output::pipeline_dir, "pipeline", "pipeline"},
    {Output::manifest, "pipeline/manifest.json", "pipeline"},
    {Output::pipeline_summary, "pipeline/summary.json", "pipeline"},
    {Output::resolved_config, "resolved_config.json", "pipeline"},
}};

const OutputFile& entry(Output what) {
  const auto& e = outputs.at(static_cast<std::size_t>(what));
  if (e.what != what)
    throw Error("layout: the table of outputs is out of order"); // a programming error
  return e;
}

} // namespace

std::filesystem::path relative_path(Output what) {
  return entry(what).path;
}

std::string command_of(Output what) {
  return entry(what).command;
}

std::filesystem::path Layout::operator[](Output what) const {
  return out_ / relative_path(what);
}

std::filesystem::path Layout::require(Output what, const std::filesystem::path& subject) const {
  const auto path = (*this)[what];
  if (!std::filesystem::exists(path))
    throw IoError(path.string() + ": not found: run `myotwin " + command_of(what) + " " +
                  subject.string() + " -o " + out_.string() + "` first");
  return path;
}

std::unique_ptr<forward::SubjectForwardModel>
load_subject_model(const Layout& layout, const std::filesystem::path& subject,
                   const RunConfig& config) {
  (void)layout.require(Output::motor_units, subject);
  forward::SubjectModelFiles files;
  files.subject = subject;
  files.anatomy_dir = layout[Output::anatomy_dir];
  files.mesh = layout.require(Output::mesh, subject);
  files.lead_fields = layout.require(Output::lead_fields, subject);
  files.rerun_hint = "run `myotwin leadfield " + subject.string() + " -o " + layout.out().string() +
                     "` with the same config first";
  return forward::load_subject_forward_model(files, config.electrodes,
                                             config.volume_conductor.reference_node);
}

} // namespace myotwin::app
