// `myotwin report OUT`: one self-contained HTML page (charts with vega-lite, inlined so it opens
// offline) of whatever the stages left in OUT: subject, mesh, electrodes, EMG, MUAPs,
// decomposition, inversion, needle EMG. A folder with only some stages gives only those sections
// and names the missing ones; a folder with none is an error (exit 2). docs/report.md.
//
// Sample runs:
//   myotwin report out/demo
//   myotwin report out/demo --subject sample_data/forearm/subject.json -o demo.html

#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/timer.hpp"
#include "report/report.hpp"

namespace fs = std::filesystem;

namespace myotwin::app {

namespace {

struct ReportOptions {
  fs::path out;     ///< OUT
  fs::path html;    ///< -o (default OUT/report.html)
  fs::path subject; ///< --subject
  bool quiet = false;
};

int run_report(const ReportOptions& o) {
  Stopwatch watch;
  if (!fs::is_directory(o.out))
    throw BadInput(o.out.string() + ": not a folder: expected the output folder of a run (-o OUT)");
  const fs::path html = o.html.empty() ? o.out / "report.html" : o.html;
  if (html.has_parent_path())
    ensure_output_dir(html.parent_path());
  const auto r = report::write_report(o.out, html, o.subject);
  if (!o.quiet) {
    std::cout << "report: " << r.sections.size() << " sections (";
    for (std::size_t k = 0; k < r.sections.size(); ++k)
      std::cout << (k ? ", " : "") << r.sections[k];
    std::cout << ")";
    if (!r.missing.empty()) {
      std::cout << "; not in the folder: ";
      for (std::size_t k = 0; k < r.missing.size(); ++k)
        std::cout << (k ? ", " : "") << r.missing[k];
    }
    std::cout << "; " << format_number(static_cast<double>(r.bytes) / 1e6) << " MB in "
              << format_number(watch.elapsed_s()) << " s\n"
              << r.html.string() << "\n";
  }
  return 0;
}

} // namespace

void add_report_command(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<ReportOptions>();
  auto* cmd = app.add_subcommand(
      "report", "one self-contained HTML page (opens offline) of the results in OUT: a section per "
                "stage present (subject, mesh, electrodes, EMG, MUAPs, decomposition, inversion, "
                "needle EMG); docs/report.md");
  cmd->add_option("OUT", o->out, "output folder of a run")->required();
  cmd->add_option("-o,--output", o->html, "the HTML file (default: OUT/report.html)");
  cmd->add_option("--subject", o->subject,
                  "subject file (subject.json): adds the label volume's cross-sections (and the "
                  "tissue under the cut mesh)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--quiet", o->quiet, "print nothing on success");
  cmd->callback([&run, o] { run = [o] { return run_report(*o); }; });
}

} // namespace myotwin::app
