#pragma once
// The report page: sections of HTML and Vega-Lite charts, rendered into one self-contained HTML
// file with the vega, vega-lite and vega-embed bundles inlined (docs/report.md).

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace myotwin::app::report {

/// One section of the page: a stage's pictures and tables.
struct Section {
  std::string id;    ///< HTML id, e.g. "emg"; also `?section=emg` shows only this section
  std::string title; ///< heading
  std::string html;  ///< body: paragraphs, tables and the chart placeholders add_chart() writes
  std::vector<nlohmann::json> charts; ///< Vega-Lite specs, in the order of their placeholders

  /// Appends a paragraph of plain text (escaped).
  void add_text(const std::string& text);
  /// Appends a chart: its Vega-Lite spec (data inline) and a caption (plain text).
  void add_chart(nlohmann::json spec, const std::string& caption);
  /// Appends a table of plain-text cells (escaped); the first row is the header.
  void add_table(const std::vector<std::vector<std::string>>& rows);
};

/// The page: a title, header lines (key, value) and the sections.
struct Page {
  std::string title;
  std::vector<std::pair<std::string, std::string>> header;
  std::vector<std::string> notes; ///< e.g. which stages are missing
  std::vector<Section> sections;
};

/// `text` with &, <, >, " escaped for HTML.
std::string escape_html(const std::string& text);

/// The folder holding vega.min.js, vega-lite.min.js and vega-embed.min.js: the environment
/// variable MYOTWIN_REPORT_JS if set, else share/myotwin/report beside the executable's folder,
/// else the build tree's copy. \throws IoError naming the folders searched and how to install
/// the bundles (scripts/install-deps.sh runs `npm ci` in report/).
std::filesystem::path find_bundles();

/// The whole HTML document, with the bundles of `bundle_dir` inlined. The page records how its
/// charts rendered in `<pre id="render-status">` (JSON: per chart its section, mark count and
/// error; the errors reported to window.onerror and console.error), which the browser test reads.
std::string render_html(const Page& page, const std::filesystem::path& bundle_dir);

} // namespace myotwin::app::report
