#include "report.hpp"

#include <functional>
#include <iomanip>
#include <optional>
#include <sstream>

#include "../layout.hpp"
#include "data.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hash.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/meshing/mesh_io.hpp"
#include "page.hpp"
#include "sections.hpp"

namespace fs = std::filesystem;

namespace myotwin::app::report {

namespace {

/// A stage's section: the file whose presence means the stage ran, and how to draw it.
struct Stage {
  std::string name; ///< as in "missing: ..."
  fs::path marker;  ///< relative to OUT
  std::function<Section(const Layout&)> build;
};

nlohmann::json read_json_if(const fs::path& path) {
  return fs::exists(path) ? nlohmann::json::parse(read_text_file(path)) : nlohmann::json();
}

/// Total time [s] of a stage report's `time_s` (a number, or an object with `total`).
std::string time_of(const nlohmann::json& report) {
  if (!report.contains("time_s"))
    return "";
  const auto& t = report.at("time_s");
  if (t.is_number())
    return fmt(t.get<double>()) + " s";
  if (t.is_object() && t.contains("total"))
    return fmt(t.at("total").get<double>()) + " s";
  if (t.is_object() && t.contains("mesh_total"))
    return fmt(t.at("mesh_total").get<double>()) + " s";
  return "";
}

void fill_header(Page& page, const Layout& layout, const fs::path& subject) {
  const auto& out = layout.out();
  page.header.emplace_back("output folder", fs::absolute(out).string());
  if (!subject.empty()) {
    const auto j = read_json_if(subject);
    page.header.emplace_back("subject",
                             j.value("name", std::string("?")) + " (" + subject.string() + ")");
  }
  const auto config = layout[Output::resolved_config];
  if (fs::exists(config)) {
    const auto j = read_json_if(config);
    std::ostringstream digest;
    digest << std::hex << std::setw(16) << std::setfill('0') << hash_file(config);
    page.header.emplace_back("configuration", config.string() + ", digest (FNV-1a 64) " +
                                                  digest.str() + ", seed " +
                                                  j.value("seed", nlohmann::json()).dump());
    page.header.emplace_back("program version", "myotwin " +
                                                    j.value("myotwin_version", std::string("?")) +
                                                    " (report: " MYOTWIN_VERSION ")");
  } else {
    page.header.emplace_back("program version", "myotwin " MYOTWIN_VERSION);
  }
  std::string times;
  const std::pair<const char*, fs::path> runs[] = {
      {"mesh", out / "mesh/mesh_quality.json"},
      {"leadfield", layout[Output::leadfield_report]},
      {"simulate", layout[Output::simulate_report]},
      {"decompose", layout[Output::decomposition_summary]},
      {"invert", out / "inversion/summary.json"},
      {"iemg", out / "iemg/iemg_report.json"},
      {"pipeline", layout[Output::pipeline_summary]}};
  for (const auto& [name, path] : runs)
    if (const auto t = time_of(read_json_if(path)); !t.empty())
      times += (times.empty() ? "" : ", ") + std::string(name) + " " + t;
  if (!times.empty())
    page.header.emplace_back("run times", times);
}

} // namespace

ReportResult write_report(const fs::path& out, const fs::path& html, const fs::path& subject) {
  const Layout layout(out);
  // The subject's volume and the mesh, read once for the sections that draw them.
  std::optional<anatomy::Subject> subject_data;
  const auto loaded_subject = [&]() -> const anatomy::Subject* {
    if (subject.empty())
      return nullptr;
    if (!subject_data)
      subject_data = anatomy::load_subject(subject);
    return &*subject_data;
  };
  std::optional<meshing::TetMesh> mesh_data;
  const auto loaded_mesh = [&]() -> const meshing::TetMesh* {
    if (!fs::exists(layout[Output::mesh]))
      return nullptr;
    if (!mesh_data)
      mesh_data = meshing::read_mesh_vtu(layout[Output::mesh]);
    return &*mesh_data;
  };
  const std::vector<Stage> stages = {
      {"anatomy", relative_path(Output::motor_units),
       [&](const Layout& l) { return subject_section(l, subject, loaded_subject()); }},
      {"mesh", relative_path(Output::mesh_quality),
       [&](const Layout& l) { return mesh_section(l, loaded_subject(), loaded_mesh()); }},
      {"electrodes (leadfield)", relative_path(Output::electrodes_json),
       [&](const Layout& l) { return electrodes_section(l, loaded_mesh()); }},
      {"EMG (simulate)", relative_path(Output::emg), emg_section},
      {"MUAPs (simulate)", relative_path(Output::muaps), muap_section},
      {"decomposition", relative_path(Output::decomposition), decomposition_section},
      {"inversion", "inversion/properties.json", inversion_section},
      {"needle EMG (iemg)", "iemg/emg.h5", needle_section}};
  Page page;
  page.title = "myotwin report: " + fs::absolute(out).filename().string();
  ReportResult result;
  result.html = html;
  std::string looked;
  std::vector<const Stage*> present;
  for (const auto& stage : stages) {
    looked += (looked.empty() ? "" : ", ") + stage.marker.string();
    if (fs::exists(out / stage.marker))
      present.push_back(&stage);
    else
      result.missing.push_back(stage.name);
  }
  if (present.empty())
    throw BadInput(out.string() + ": no stage output to report (looked for " + looked +
                   "): run `myotwin pipeline SUBJECT -o " + out.string() + "` first");
  const fs::path bundles = find_bundles();
  for (const Stage* stage : present)
    page.sections.push_back(stage->build(layout));
  fill_header(page, layout, subject);
  if (!result.missing.empty()) {
    std::string list;
    for (const auto& m : result.missing)
      list += (list.empty() ? "" : ", ") + m;
    page.notes.push_back("Not in this folder (no section): " + list + ".");
  }
  for (const auto& s : page.sections)
    result.sections.push_back(s.id);
  const std::string text = render_html(page, bundles);
  write_text_file(html, text);
  result.bytes = text.size();
  return result;
}

} // namespace myotwin::app::report
