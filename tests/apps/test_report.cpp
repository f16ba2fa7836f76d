// `myotwin report` through the real executable: the report of a small pipeline run (the sample
// forearm, ED only, a coarse mesh, an 8 x 4 grid, 3 s) rendered in headless Chromium (every chart
// has marks, no console error, a screenshot per section in build/report_screenshots/), the plotted
// numbers against the files they came from, a partial folder and an empty one. About a minute on 2
// cores, most of it the pipeline. MYOTWIN_REPORT_TEST_OUT=DIR checks the report of an existing run
// folder instead of making one.

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using myotwin::testing::quoted;
using myotwin::testing::run_myotwin;
using myotwin::testing::TempDir;

namespace {

const fs::path chromium = "/usr/bin/chromium";

/// Output of a shell command (stdout), and its exit code.
std::pair<int, std::string> shell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr)
    return {-1, out};
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr)
    out += buffer;
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string chromium_command(const std::string& flags, const fs::path& html,
                             const std::string& query) {
  return quoted(chromium) +
         " --headless --no-sandbox --disable-gpu --hide-scrollbars "
         "--virtual-time-budget=30000 " +
         flags + " " + quoted(fs::path("file://" + fs::absolute(html).string() + query)) +
         " 2>/dev/null";
}

/// Renders `html` in headless Chromium and checks the status the page writes: rendering done,
/// no error reported, every chart drawn with marks. Returns the number of charts per section.
std::map<std::string, int> render_in_chromium(const fs::path& html) {
  std::map<std::string, int> charts_per_section;
  const auto [code, dom] = shell(chromium_command("--dump-dom", html, ""));
  EXPECT_EQ(code, 0) << dom.substr(0, 2000);
  const std::string open = "<pre id=\"render-status\" hidden=\"\">";
  const auto at = dom.find(open);
  if (at == std::string::npos) {
    ADD_FAILURE() << "no render status in the DOM";
    return charts_per_section;
  }
  const std::string text = dom.substr(at + open.size(), dom.find("</pre>", at) - at - open.size());
  if (text.empty()) {
    ADD_FAILURE() << "the page did not finish rendering within the time budget";
    return charts_per_section;
  }
  const auto status = nlohmann::json::parse(text);
  EXPECT_TRUE(status.value("done", false));
  EXPECT_TRUE(status.at("errors").empty()) << status.at("errors").dump(2);
  for (const auto& c : status.at("charts")) {
    EXPECT_TRUE(c.at("error").is_null()) << c.dump();
    EXPECT_GT(c.at("marks").get<int>(), 0) << "blank chart " << c.dump();
    ++charts_per_section[c.at("section").get<std::string>()];
  }
  return charts_per_section;
}

/// The chart specs embedded in the page, by id ("emg-chart-1").
std::map<std::string, nlohmann::json> embedded_specs(const std::string& html) {
  std::map<std::string, nlohmann::json> out;
  const std::string open = "<script type=\"application/json\" id=\"";
  for (auto at = html.find(open); at != std::string::npos; at = html.find(open, at + 1)) {
    const auto id_end = html.find('"', at + open.size());
    const std::string id = html.substr(at + open.size(), id_end - at - open.size() - 5); // "-spec"
    const auto body = html.find('>', id_end) + 1;
    std::string text = html.substr(body, html.find("</script>", body) - body);
    for (auto p = text.find("<\\/script"); p != std::string::npos; p = text.find("<\\/script", p))
      text.replace(p, 3, "</");
    out[id] = nlohmann::json::parse(text);
  }
  return out;
}

/// The data of the first chart of `section` whose values carry `field`.
const nlohmann::json& chart_values(const std::map<std::string, nlohmann::json>& specs,
                                   const std::string& section, const std::string& field) {
  for (const auto& [id, spec] : specs)
    if (id.rfind(section + "-chart-", 0) == 0 && spec.contains("data") &&
        !spec.at("data").at("values").empty() && spec.at("data").at("values")[0].contains(field))
      return spec.at("data").at("values");
  throw std::runtime_error("no chart of section " + section + " plots " + field);
}

void expect_close(double page, double file, const std::string& what) {
  // The page carries 4 significant digits.
  EXPECT_NEAR(page, file, 1e-3 * std::abs(file) + 1e-12) << what;
}

class Report : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    if (const char* given = std::getenv("MYOTWIN_REPORT_TEST_OUT"); given && *given) {
      out_ = new fs::path(given);
      log_ = run_myotwin("report " + quoted(*out_)).output;
      return;
    }
    out_ = new fs::path(dir_->path() / "out");
    const fs::path subject = fs::path(MYOTWIN_SOURCE_DIR) / "sample_data/forearm/subject.json";
    // Coarse: a coarser mesh than the default in muscle, fat, tendon and bone, 32 electrodes,
    // 20 units, 3 s (about 30 s of CPU).
    std::ofstream(dir_->path() / "run.json") << R"({"anatomy": {"muscles": ["ED"]},
      "mesh": {"perturb": false, "cell_size_mm": {"muscle": 6.0, "fat": 4.0, "tendon": 5.0},
               "facet_distance_mm": {"muscle": 1.0, "bone": 1.0, "tendon": 1.0}},
      "electrodes": {"grids": [{"name": "ED8x4", "rows": 8, "columns": 4, "ied_mm": 8.0,
                                "centre_mm": [-5.7, 18.6, 22.4], "wrap": true}]},
      "simulate": {"muscles": ["ED"], "max_units_per_muscle": 20,
                   "drive": {"duration_s": 3.0, "profile": {"type": "trapezoid", "level": 0.15,
                             "rise_s": 0.5, "plateau_s": 2.0, "fall_s": 0.5}},
                   "emg": {"snr_dB": 20}}})";
    // `myotwin pipeline` writes the report at its end.
    const auto r = run_myotwin("pipeline " + quoted(subject) + " --quiet --config " +
                               quoted(dir_->path() / "run.json") + " -o " + quoted(*out_));
    log_ = "pipeline: exit " + std::to_string(r.exit_code) + "\n" + r.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete out_;
  }
  static TempDir* dir_;
  static fs::path* out_;
  static std::string log_;
};
TempDir* Report::dir_ = nullptr;
fs::path* Report::out_ = nullptr;
std::string Report::log_;

} // namespace

TEST_F(Report, RendersEverySectionInChromiumWithMarksAndNoConsoleError) {
  const fs::path html = *out_ / "report.html";
  ASSERT_TRUE(fs::exists(html)) << log_;
  if (!fs::exists(chromium))
    GTEST_SKIP() << chromium << " is absent: scripts/install-deps.sh installs Debian's chromium";
  auto charts_per_section = render_in_chromium(html);
  for (const char* s : {"subject", "mesh", "electrodes", "emg", "muaps", "decomposition"})
    EXPECT_GT(charts_per_section[s], 0) << "no chart in section " << s;
  // A screenshot of each section, to look at.
  const fs::path shots = fs::path(MYOTWIN_EXE).parent_path().parent_path() / "report_screenshots";
  fs::create_directories(shots);
  for (const auto& [section, n] : charts_per_section) {
    const fs::path png = shots / (section + ".png");
    fs::remove(png);
    const auto [c, o] = shell(chromium_command(
        "--window-size=1200,2400 --screenshot=" + quoted(png), html, "?section=" + section));
    EXPECT_EQ(c, 0) << o;
    ASSERT_TRUE(fs::exists(png)) << section;
    EXPECT_GT(fs::file_size(png), 20000u) << section << ": a nearly empty picture";
    std::cout << section << ": " << n << " charts, " << png.string() << "\n";
  }
}

TEST_F(Report, PlotsTheNumbersOfTheFiles) {
  const fs::path html = *out_ / "report.html";
  ASSERT_TRUE(fs::exists(html)) << log_;
  const auto specs = embedded_specs(myotwin::read_text_file(html));
  std::cout << "page: " << fs::file_size(html) / 1000 << " kB, " << specs.size() << " charts\n";
  // EMG: the RMS map against the RMS of each row of `emg`.
  {
    const myotwin::H5Reader h5(*out_ / "forward/emg.h5");
    const Eigen::MatrixXd emg = h5.read_double("emg");
    const auto& values = chart_values(specs, "emg", "rms_uV");
    ASSERT_EQ(values.size(), static_cast<std::size_t>(emg.rows()));
    for (const auto& v : values) {
      const auto ch = v.at("ch").get<Eigen::Index>();
      expect_close(v.at("rms_uV"), 1e6 * std::sqrt(emg.row(ch).squaredNorm() / emg.cols()), "rms");
    }
  }
  // MUAPs: the first unit's grid against muaps.h5, sample by sample.
  {
    const myotwin::H5Reader h5(*out_ / "forward/muaps.h5");
    const auto dims = h5.shape("muaps");
    const auto muaps = h5.read_double_values("muaps");
    const auto ids = h5.read_int64("unit_id");
    const auto& values = chart_values(specs, "muaps", "s0");
    ASSERT_EQ(values.size(), dims[1]);
    const auto unit = values[0].at("unit").get<std::int64_t>();
    std::size_t u = 0;
    while (u < dims[0] && ids(static_cast<Eigen::Index>(u), 0) != unit)
      ++u;
    ASSERT_LT(u, dims[0]);
    std::size_t n_compared = 0;
    for (const auto& v : values) {
      const auto c = v.at("ch").get<std::size_t>(), s0 = v.at("s0").get<std::size_t>();
      const auto& trace = v.at("v");
      for (std::size_t k = 0; k < trace.size(); ++k, ++n_compared)
        expect_close(trace[k], 1e6 * muaps[(u * dims[1] + c) * dims[2] + s0 + k], "muap");
    }
    EXPECT_GT(n_compared, 10 * dims[1]);
  }
  // Decomposition: the ticks of each decomposed unit are its discharges in decomposition.h5.
  {
    const myotwin::H5Reader h5(*out_ / "decomposition/decomposition.h5");
    const double fs = std::get<double>(h5.attributes("/").at("fs_Hz"));
    const auto ids = h5.read_int64("units/unit_id");
    std::map<std::string, std::vector<double>> rows;
    for (const auto& v : chart_values(specs, "decomposition", "row"))
      rows[v.at("row")].push_back(v.at("t"));
    ASSERT_GT(ids.rows(), 0);
    for (Eigen::Index u = 0; u < ids.rows(); ++u) {
      const auto spikes = h5.read_int64("units/discharges/" + std::to_string(ids(u, 0)));
      const auto& ticks = rows["  decomposed " + std::to_string(ids(u, 0))];
      ASSERT_EQ(ticks.size(), static_cast<std::size_t>(spikes.rows()));
      for (Eigen::Index k = 0; k < spikes.rows(); ++k)
        EXPECT_NEAR(ticks[static_cast<std::size_t>(k)] * fs, static_cast<double>(spikes(k, 0)),
                    0.01 * fs * 1e-3);
    }
  }
  // Subject: the fibre lengths of motor_units.h5.
  {
    const myotwin::H5Reader h5(*out_ / "anatomy/motor_units.h5");
    std::vector<double> page;
    for (const auto& v : chart_values(specs, "subject", "length_mm"))
      if (v.at("muscle") == "ED")
        page.push_back(v.at("length_mm"));
    const Eigen::MatrixXd len = h5.read_double("muscles/ED/fibres/length_m");
    ASSERT_EQ(page.size(), static_cast<std::size_t>(len.rows()));
    for (Eigen::Index f = 0; f < len.rows(); ++f)
      expect_close(page[static_cast<std::size_t>(f)], 1e3 * len(f, 0), "fibre length");
  }
  // Electrodes: positions along the limb axis of electrodes.json.
  {
    const auto e =
        nlohmann::json::parse(myotwin::read_text_file(*out_ / "forward/electrodes.json"));
    const auto& values = chart_values(specs, "electrodes", "axial_mm");
    ASSERT_EQ(values.size(), e.at("electrodes").size());
    for (std::size_t i = 0; i < values.size(); ++i)
      expect_close(values[i].at("axial_mm"),
                   1e3 * e.at("electrodes")[i].at("axial_m").get<double>(), "axial position");
  }
  // Mesh: the dihedral histogram of mesh_quality.json.
  {
    const auto q = nlohmann::json::parse(myotwin::read_text_file(*out_ / "mesh/mesh_quality.json"));
    const auto& values = chart_values(specs, "mesh", "count");
    const auto& bins = q.at("dihedral_histogram_10deg_bins");
    ASSERT_EQ(values.size(), bins.size());
    for (std::size_t b = 0; b < bins.size(); ++b)
      EXPECT_EQ(values[b].at("count"), bins[b]);
  }
}

TEST(ReportFolders, APartialFolderHasOnlyItsSectionsAndNamesTheMissingStages) {
  TempDir dir;
  const fs::path subject = fs::path(MYOTWIN_SOURCE_DIR) / "sample_data/forearm/subject.json";
  std::ofstream(dir / "run.json") << R"({"anatomy": {"muscles": ["ED"]}})";
  const auto a = run_myotwin("anatomy " + quoted(subject) + " --quiet --config " +
                             quoted(dir / "run.json") + " -o " + quoted(dir / "out"));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  const auto r = run_myotwin("report " + quoted(dir / "out") + " -o " + quoted(dir / "page.html"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 sections (subject)"), std::string::npos) << r.output;
  const auto html = myotwin::read_text_file(dir / "page.html");
  EXPECT_NE(html.find("<section id=\"subject\">"), std::string::npos);
  for (const char* absent :
       {"<section id=\"emg\">", "<section id=\"mesh\">", "<section id=\"muaps\">"})
    EXPECT_EQ(html.find(absent), std::string::npos) << absent;
  EXPECT_NE(
      html.find("Not in this folder (no section): mesh, electrodes (leadfield), EMG (simulate)"),
      std::string::npos);
  // Self-contained: no script or style is fetched from elsewhere.
  EXPECT_EQ(html.find("<script src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
}

TEST(ReportFolders, AFolderWithNoStageOutputIsAnError) {
  TempDir dir;
  fs::create_directories(dir / "empty");
  const auto r = run_myotwin("report " + quoted(dir / "empty"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no stage output to report"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("forward/emg.h5"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "empty/report.html"));
  const auto missing = run_myotwin("report " + quoted(dir / "nothing-here"));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("not a folder"), std::string::npos) << missing.output;
}

TEST(ReportFolders, ANeedleOnlyFolderGivesTheNeedleSectionWithTheFilesMuaps) {
  TempDir dir;
  // A small `myotwin iemg` run (as test_cli_iemg): a cylinder, three units, one needle.
  std::ofstream(dir / "iemg.json") << R"({"seed": 7, "iemg": {
      "cylinder": {"radius_mm": 3.0, "length_mm": 60.0, "motor_units": {"n_units": 10}},
      "units": [0, 2, 5],
      "needle": {"n_contacts": 4, "spacing_mm": 1.0, "position_mm": [0.5, 0.0, 12.0],
                 "differentiation": "reference", "reference_contact": 3},
      "drive": {"duration_s": 1.0, "profile": {"type": "constant", "level": 0.2}}},
      "noise": {"type": "gaussian", "snr_dB": 15.0}})";
  const auto a =
      run_myotwin("iemg " + quoted(dir / "iemg.json") + " --quiet -o " + quoted(dir / "out"));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  const auto r = run_myotwin("report " + quoted(dir / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 sections (needle)"), std::string::npos) << r.output;
  const fs::path html = dir / "out/report.html";
  // The MUAP templates are muaps.h5's, sample by sample.
  const auto specs = embedded_specs(myotwin::read_text_file(html));
  const myotwin::H5Reader h5(dir / "out/iemg/muaps.h5");
  const auto dims = h5.shape("position_0/muaps_channels");
  const auto muaps = h5.read_double_values("position_0/muaps_channels");
  const auto& values = chart_values(specs, "needle", "t_ms");
  ASSERT_EQ(values.size(), muaps.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    expect_close(values[i].at("uV"), 1e6 * muaps[i], "needle muap");
  EXPECT_EQ(dims.size(), 3u);
  if (!fs::exists(chromium))
    GTEST_SKIP() << chromium << " is absent: scripts/install-deps.sh installs Debian's chromium";
  const auto charts = render_in_chromium(html);
  EXPECT_EQ(charts.size(), 1u);
  EXPECT_EQ(charts.count("needle"), 1u);
}
