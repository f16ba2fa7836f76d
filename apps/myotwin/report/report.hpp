#pragma once
// `myotwin report`: one self-contained HTML page of whatever the stages left in an output
// folder (docs/report.md).

#include <filesystem>
#include <string>
#include <vector>

namespace myotwin::app::report {

/// What write_report() wrote.
struct ReportResult {
  std::filesystem::path html;        ///< the page
  std::uintmax_t bytes = 0;          ///< its size
  std::vector<std::string> sections; ///< ids of the sections written, in page order
  std::vector<std::string> missing;  ///< stages with no output in the folder
};

/// Writes the report of output folder `out` to `html` (atomically). `subject` (subject.json,
/// may be empty) adds the label volume's cross-sections to the Subject section.
/// \throws BadInput when `out` holds no stage's output (naming the files looked for); IoError
/// when the JavaScript bundles are missing (find_bundles()) or a file cannot be read.
ReportResult write_report(const std::filesystem::path& out, const std::filesystem::path& html,
                          const std::filesystem::path& subject);

} // namespace myotwin::app::report
