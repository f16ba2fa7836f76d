// `myotwin report` through the real executable: the report of a small pipeline run (the sample
// forearm, ED only, a coarse mesh, an 8 x 4 grid, 3 s) and an inversion fixture rendered in
// headless Chromium (every chart has marks, no console error, a screenshot per section in
// build/report_screenshots/), the plotted numbers against the files they came from (the cut mesh
// and the lead-field map recomputed from mesh.vtu and leadfields.h5), a partial folder, a
// needle-only one and an empty one. About a minute on 2 cores (66 s wall under load 11, 42 s of
// CPU), most of it the pipeline and Chromium; the checks of the cut mesh, the lead-field map and
// the inversion take 0.5 s. ctest runs each test alone, so each TEST_F of `Report` makes the
// fixture again (about 40 s): the newer checks are helpers of PlotsTheNumbersOfTheFiles (ctest
// of all five: 123 s under load 10). MYOTWIN_REPORT_TEST_OUT=DIR checks the report of an existing
// run folder instead of making one (the inversion checks need an inversion/ there).

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/forward/conductor/point_locator.hpp"
#include "myotwin/meshing/mesh_io.hpp"
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
    if (r.exit_code != 0)
      return;
    // The pipeline does not invert, and `myotwin invert` takes half a minute even when coarse:
    // an inversion fixture instead, the decomposition's units with made-up properties in the
    // layout of properties.json, and the report written again.
    write_inversion_fixture(*out_);
    const auto again = run_myotwin("report " + quoted(*out_) + " --subject " + quoted(subject));
    log_ += "report: exit " + std::to_string(again.exit_code) + "\n" + again.output;
  }
  /// inversion/decomposition.h5 (a copy of decomposition/decomposition.h5) and properties.json
  /// with properties that differ per unit and a spread for all but the depth.
  static void write_inversion_fixture(const fs::path& out) {
    fs::create_directories(out / "inversion");
    fs::copy_file(out / "decomposition/decomposition.h5", out / "inversion/decomposition.h5",
                  fs::copy_options::overwrite_existing);
    const myotwin::H5Reader h5(out / "decomposition/decomposition.h5");
    const auto n = h5.read_int64("units/unit_id").rows();
    nlohmann::json units = nlohmann::json::array();
    for (Eigen::Index u = 0; u < n; ++u) {
      const double x = static_cast<double>(u);
      units.push_back({{"unit", u},
                       {"depth_mm", 4.0 + 0.7 * x},
                       {"territory_centre_mm", {x, -x}},
                       {"territory_centre_sd_mm", {0.1, 0.1}},
                       {"territory_radius_mm", 1.5},
                       {"n_fibres", 60.0 + 11.0 * x},
                       {"n_fibres_sd", 2.0 + x},
                       {"end_plate_shift_mm", 0.5 * x - 1.0},
                       {"end_plate_shift_sd_mm", 0.25},
                       {"cv_m_per_s", 3.5 + 0.05 * x},
                       {"cv_sd_m_per_s", 0.1},
                       {"amplitude_scale", 1.0},
                       {"relative_residual", 0.3}});
    }
    std::ofstream(out / "inversion/properties.json")
        << nlohmann::json{{"muscle", "ED"}, {"frame", "fixture"}, {"units", units}}.dump(1);
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

Eigen::Vector3d vec3(const nlohmann::json& j) {
  return {j.at(0).get<double>(), j.at(1).get<double>(), j.at(2).get<double>()};
}

/// Whether `keys` holds `key` or one of its 8 neighbours (0.1 mm apart).
bool near_key(const std::set<std::pair<long, long>>& keys, const std::pair<long, long>& key) {
  for (long du = -1; du <= 1; ++du)
    for (long dw = -1; dw <= 1; ++dw)
      if (keys.count({key.first + du, key.second + dw}))
        return true;
  return false;
}

/// Inversion: the per-unit chart's fitted values and spreads against properties.json, its true
/// values against truth/units of the unit score.json matches.
void check_inversion_charts(const fs::path& out,
                            const std::map<std::string, nlohmann::json>& specs) {
  ASSERT_TRUE(fs::exists(out / "inversion/properties.json"));
  const auto props =
      nlohmann::json::parse(myotwin::read_text_file(out / "inversion/properties.json")).at("units");
  const auto& values = chart_values(specs, "inversion", "lo");
  ASSERT_EQ(values.size(), 4 * props.size());
  const myotwin::H5Reader h5(out / "forward/emg.h5");
  const auto ids = h5.read_int64("truth/unit_id");
  const Eigen::MatrixXd depth = h5.read_double("truth/units/depth_m");
  const Eigen::MatrixXd fibres = h5.read_double("truth/units/n_fibres");
  const Eigen::MatrixXd cv = h5.read_double("truth/units/cv_m_per_s");
  // The inversion's units are the decomposition's: each matches the true unit score.json names.
  const auto score =
      nlohmann::json::parse(myotwin::read_text_file(out / "decomposition/score.json"));
  const auto decomposed_ids =
      myotwin::H5Reader(out / "inversion/decomposition.h5").read_int64("units/unit_id");
  std::map<std::int64_t, std::int64_t> true_of;
  for (const auto& m : score.at("matches"))
    true_of[m.at("decomposed_unit").get<std::int64_t>()] = m.at("true_unit").get<std::int64_t>();
  const std::map<std::string, std::pair<std::string, std::string>> keys = {
      {"depth [mm]", {"depth_mm", ""}},
      {"end-plate shift [mm]", {"end_plate_shift_mm", "end_plate_shift_sd_mm"}},
      {"fibres", {"n_fibres", "n_fibres_sd"}},
      {"CV [m/s]", {"cv_m_per_s", "cv_sd_m_per_s"}}};
  std::size_t n_true = 0;
  for (const auto& v : values) {
    const auto u = v.at("unit").get<std::size_t>();
    const auto& p = props.at(u);
    const std::string property = v.at("property");
    const auto& [key, sd_key] = keys.at(property);
    const double fit = p.at(key), sd = sd_key.empty() ? 0.0 : p.at(sd_key).get<double>();
    expect_close(v.at("fitted"), fit, property);
    expect_close(v.at("lo"), fit - sd, property + " - sd");
    expect_close(v.at("hi"), fit + sd, property + " + sd");
    if (!v.contains("true"))
      continue;
    ++n_true;
    const auto true_unit = v.at("true_unit").get<std::int64_t>();
    EXPECT_EQ(true_unit, true_of.at(decomposed_ids(static_cast<Eigen::Index>(u), 0)));
    Eigen::Index t = 0;
    while (t < ids.rows() && ids(t, 0) != true_unit)
      ++t;
    ASSERT_LT(t, ids.rows());
    const double truth = property == "depth [mm]" ? 1e3 * depth(t, 0)
                         : property == "fibres"   ? fibres(t, 0)
                         : property == "CV [m/s]" ? cv(t, 0)
                                                  : 0.0;
    expect_close(v.at("true"), truth, "true " + property);
  }
  EXPECT_EQ(n_true, 4 * true_of.size());
}

/// Mesh: the cut of an axial and the sagittal section against the crossings of mesh.vtu's tet
/// edges with the chart's plane.
void check_cut_mesh(const fs::path& out, const std::map<std::string, nlohmann::json>& specs) {
  const auto mesh = myotwin::meshing::read_mesh_vtu(out / "mesh/mesh.vtu");
  for (const char* id : {"mesh-chart-1", "mesh-chart-4"}) { // an axial and the sagittal one
    const auto& spec = specs.at(id);
    const auto& plane = spec.at("usermeta").at("plane");
    const Eigen::Vector3d o = vec3(plane.at("origin_m")), n = vec3(plane.at("normal")),
                          eu = vec3(plane.at("e_u")), ew = vec3(plane.at("e_w"));
    // The page's edge ends, in 0.1 mm.
    const auto& d = spec.at("layer").back().at("data").at("values")[0];
    std::set<std::pair<long, long>> page;
    for (std::size_t i = 0; i < d.at("u").size(); ++i) {
      page.insert({std::lround(10.0 * d.at("u")[i].get<double>()),
                   std::lround(10.0 * d.at("w")[i].get<double>())});
      page.insert({std::lround(10.0 * d.at("u2")[i].get<double>()),
                   std::lround(10.0 * d.at("w2")[i].get<double>())});
    }
    // Where the edges of the file's tets cross the plane.
    std::set<std::pair<long, long>> file;
    for (Eigen::Index t = 0; t < mesh.n_tets(); ++t)
      for (int a = 0; a < 4; ++a)
        for (int b = a + 1; b < 4; ++b) {
          const Eigen::Vector3d pa = mesh.nodes_m.row(mesh.tets(t, a)).transpose();
          const Eigen::Vector3d pb = mesh.nodes_m.row(mesh.tets(t, b)).transpose();
          const double sa = (pa - o).dot(n), sb = (pb - o).dot(n);
          if ((sa >= 0.0) == (sb >= 0.0))
            continue;
          const Eigen::Vector3d x = pa + (pb - pa) * (sa / (sa - sb)) - o;
          file.insert({std::lround(1e4 * x.dot(eu)), std::lround(1e4 * x.dot(ew))});
        }
    ASSERT_GT(file.size(), 100u) << id;
    std::size_t missing = 0, extra = 0;
    for (const auto& k : file)
      missing += near_key(page, k) ? 0 : 1;
    for (const auto& k : page)
      extra += near_key(file, k) ? 0 : 1;
    EXPECT_EQ(missing, 0u) << id << ": crossing points of mesh.vtu not drawn";
    EXPECT_EQ(extra, 0u) << id << ": drawn points that are no crossing of mesh.vtu";
  }
}

/// Electrodes: the muscles' outlines against their fibre points, the lead-field map against
/// leadfields.h5.
void check_electrodes(const fs::path& out, const std::map<std::string, nlohmann::json>& specs) {
  const auto e = nlohmann::json::parse(myotwin::read_text_file(out / "forward/electrodes.json"));
  const auto& axis = e.at("limb_axis");
  const Eigen::Vector3d origin = vec3(axis.at("origin_m")), dir = vec3(axis.at("direction")),
                        e1 = vec3(axis.at("angle_zero")), e2 = vec3(axis.at("angle_90_deg"));
  // The muscles' outlines span the axial extent of their fibre points, to the 2 mm bin.
  {
    const auto& rects = specs.at("electrodes-chart-0").at("layer")[0].at("data").at("values");
    const myotwin::H5Reader h5(out / "anatomy/motor_units.h5");
    for (const auto& m : h5.list("muscles")) {
      const Eigen::MatrixXd points = h5.read_double("muscles/" + m + "/fibres/points_m");
      const Eigen::VectorXd t = 1e3 * ((points.rowwise() - origin.transpose()) * dir);
      double t0 = 1e9, t1 = -1e9;
      for (const auto& r : rects)
        if (r.at("muscle") == m) {
          t0 = std::min(t0, r.at("t0").get<double>());
          t1 = std::max(t1, r.at("t1").get<double>());
        }
      EXPECT_LE(t0, t.minCoeff() + 0.01) << m;
      EXPECT_GT(t0, t.minCoeff() - 2.01) << m;
      EXPECT_GE(t1, t.maxCoeff() - 0.01) << m;
      EXPECT_LT(t1, t.maxCoeff() + 2.01) << m;
    }
  }
  // The sensitivity map: |grad L| of the electrode at each cell centre, L from leadfields.h5,
  // its gradient from the barycentric coordinates of the cell's tet (difference quotients of
  // these linear functions); cells outside the mesh are left out.
  const auto& spec = specs.at("electrodes-chart-1");
  const auto& meta = spec.at("usermeta");
  const auto electrode = meta.at("electrode").get<Eigen::Index>();
  const Eigen::Vector3d centre = vec3(meta.at("centre_m"));
  const double cell = 1e-3 * meta.at("cell_mm").get<double>();
  const double first = 1e-3 * meta.at("first_cell_centre_mm").get<double>();
  const auto mesh = myotwin::meshing::read_mesh_vtu(out / "mesh/mesh.vtu");
  const Eigen::VectorXd lead =
      myotwin::H5Reader(out / "forward/leadfields.h5").read_double("lead_fields").col(electrode);
  const auto& rows = spec.at("layer")[0].at("data").at("values");
  ASSERT_EQ(rows.size(), 100u);
  Eigen::Matrix<double, Eigen::Dynamic, 3> points(100 * 100, 3);
  for (int w = 0; w < 100; ++w)
    for (int u = 0; u < 100; ++u)
      points.row(w * 100 + u) =
          (centre + (first + u * cell) * e1 + (first + w * cell) * e2).transpose();
  const myotwin::forward::PointLocator locator(mesh);
  const auto located = locator.locate(points);
  std::size_t n_inside = 0;
  for (int w = 0; w < 100; ++w)
    for (int u = 0; u < 100; ++u) {
      const auto& v = rows[static_cast<std::size_t>(w)].at("v")[static_cast<std::size_t>(u)];
      const auto t = located.tet[static_cast<std::size_t>(w * 100 + u)];
      ASSERT_EQ(v.is_null(), t < 0) << "cell " << u << ", " << w;
      if (t < 0)
        continue;
      ++n_inside;
      const Eigen::Vector3d p = points.row(w * 100 + u).transpose();
      Eigen::Vector3d grad;
      for (int k = 0; k < 3; ++k) {
        const Eigen::Vector3d h = 1e-4 * Eigen::Vector3d::Unit(k);
        const Eigen::Vector4d dl = locator.barycentric(t, p + h) - locator.barycentric(t, p - h);
        grad[k] = 0.0;
        for (int j = 0; j < 4; ++j)
          grad[k] += lead[mesh.tets(t, j)] * dl[j] / 2e-4;
      }
      EXPECT_NEAR(v.get<double>(), grad.norm(), 1e-3 * grad.norm() + 1e-9)
          << "cell " << u << ", " << w;
    }
  EXPECT_GT(n_inside, 2000u);
}

} // namespace

TEST_F(Report, RendersEverySectionInChromiumWithMarksAndNoConsoleError) {
  const fs::path html = *out_ / "report.html";
  ASSERT_TRUE(fs::exists(html)) << log_;
  if (!fs::exists(chromium))
    GTEST_SKIP() << chromium << " is absent: scripts/install-deps.sh installs Debian's chromium";
  auto charts_per_section = render_in_chromium(html);
  for (const char* s :
       {"subject", "mesh", "electrodes", "emg", "muaps", "decomposition", "inversion"})
    EXPECT_GT(charts_per_section[s], 0) << "no chart in section " << s;
  // Mesh: the five cut sections and the histogram; electrodes: the unwrapped grid and the
  // lead-field map; inversion: per unit and fitted vs true.
  EXPECT_EQ(charts_per_section["mesh"], 6);
  EXPECT_EQ(charts_per_section["electrodes"], 2);
  EXPECT_EQ(charts_per_section["inversion"], 2);
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
  // The newer charts (helpers above; one test, so that ctest makes the fixture twice, not five
  // times).
  {
    SCOPED_TRACE("mesh cuts");
    check_cut_mesh(*out_, specs);
  }
  {
    SCOPED_TRACE("electrodes");
    check_electrodes(*out_, specs);
  }
  {
    SCOPED_TRACE("inversion");
    check_inversion_charts(*out_, specs);
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

TEST(ReportFolders, ANeedleOnlyFolderGivesTheNeedleSectionWithEveryPositionsMuaps) {
  TempDir dir;
  // A small `myotwin iemg` run (as test_cli_iemg): a cylinder, three units, one needle at two
  // positions.
  std::ofstream(dir / "iemg.json") << R"({"seed": 7, "iemg": {
      "cylinder": {"radius_mm": 3.0, "length_mm": 60.0, "motor_units": {"n_units": 10}},
      "units": [0, 2, 5],
      "needle": {"n_contacts": 4, "spacing_mm": 1.0, "position_mm": [0.5, 0.0, 12.0],
                 "differentiation": "reference", "reference_contact": 3,
                 "trajectory": {"n_positions": 2, "step_mm": 0.5}},
      "drive": {"duration_s": 1.0, "profile": {"type": "constant", "level": 0.2}}},
      "noise": {"type": "gaussian", "snr_dB": 15.0}})";
  const auto a =
      run_myotwin("iemg " + quoted(dir / "iemg.json") + " --quiet -o " + quoted(dir / "out"));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  const auto r = run_myotwin("report " + quoted(dir / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 sections (needle)"), std::string::npos) << r.output;
  const fs::path html = dir / "out/report.html";
  // The MUAP templates of both positions are muaps.h5's, sample by sample.
  const auto specs = embedded_specs(myotwin::read_text_file(html));
  const myotwin::H5Reader h5(dir / "out/iemg/muaps.h5");
  const auto& values = chart_values(specs, "needle", "t_ms");
  std::size_t i = 0;
  for (int position = 0; position < 2; ++position) {
    const std::string name = "position_" + std::to_string(position) + "/muaps_channels";
    EXPECT_EQ(h5.shape(name).size(), 3u);
    for (const double muap : h5.read_double_values(name)) {
      ASSERT_LT(i, values.size());
      EXPECT_EQ(values[i].at("position"), position);
      expect_close(values[i++].at("uV"), 1e6 * muap, "needle muap");
    }
  }
  EXPECT_EQ(i, values.size());
  // The traces: each position's channel of largest RMS, from emg.h5 and emg_position_1.h5.
  const auto& traces = chart_values(specs, "needle", "lo");
  std::set<std::string> rows;
  for (const auto& v : traces)
    rows.insert(v.at("channel").get<std::string>());
  EXPECT_EQ(rows.size(), 2u);
  EXPECT_TRUE(fs::exists(dir / "out/iemg/emg_position_1.h5"));
  if (!fs::exists(chromium))
    GTEST_SKIP() << chromium << " is absent: scripts/install-deps.sh installs Debian's chromium";
  const auto charts = render_in_chromium(html);
  EXPECT_EQ(charts.size(), 1u);
  EXPECT_EQ(charts.count("needle"), 1u);
}
