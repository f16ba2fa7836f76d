// `myotwin sweep` through the real executable on a small, coarse phantom (one muscle, 10 units,
// an 8 x 4 grid, 3 s; about 10 s a run): two runs that share their anatomy, mesh and lead fields;
// the same sweep under `mpirun -np 2` gives the same bytes; a lost output and an interrupted sweep
// recompute only what was lost; the sweep file's bad input. Skips the MPI parts with a message when
// the build has no MPI or mpirun is absent.

#include <csignal>
#include <fstream>
#include <set>
#include <thread>

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

/// mpirun with the flags a root CI user on a 2-core machine needs, or empty when the build has
/// no MPI or mpirun is missing.
std::string mpirun() {
#ifdef MYOTWIN_MPIEXEC
  std::error_code ec;
  if (fs::exists(MYOTWIN_MPIEXEC, ec))
    return std::string(MYOTWIN_MPIEXEC) + " --allow-run-as-root --oversubscribe";
#endif
  return {};
}

/// The dataset's chunks: small, so that the 20 units take several.
constexpr double chunk_MiB = 0.2;

/// Runs the shell command `command` in the folder `dir`; its exit code and output.
myotwin::testing::CommandResult run_in(const fs::path& dir, const std::string& command) {
  fs::create_directories(dir);
  return myotwin::testing::run_shell("cd " + quoted(dir) + " && " + command);
}

/// `myotwin sweep ../sweep.json -o out` in `dir` (so that the paths the runs record, relative to
/// the working folder, are the same in every folder), under `launcher` when not empty.
myotwin::testing::CommandResult sweep_in(const fs::path& dir, const std::string& launcher = "") {
  return run_in(dir, (launcher.empty() ? "" : launcher + " -np 2 ") + std::string(MYOTWIN_EXE) +
                         " sweep ../sweep.json -o out --dataset --chunk-MiB " +
                         std::to_string(chunk_MiB));
}

/// The rows of OUT/sweep_summary.json by run name.
std::map<std::string, nlohmann::json> summary_rows(const fs::path& out) {
  const auto s = nlohmann::json::parse(myotwin::read_text_file(out / "sweep_summary.json"));
  std::map<std::string, nlohmann::json> rows;
  for (const auto& row : s.at("runs"))
    rows[row.at("run").get<std::string>()] = row;
  return rows;
}

/// The results of a run that must not depend on how the sweep ran.
const std::vector<std::string> result_files = {"forward/muaps.h5", "forward/emg.h5",
                                               "decomposition/decomposition.h5",
                                               "decomposition/score.json"};

/// The units x channels x samples MUAPs of an HDF5 file's `muaps` and its shape.
std::pair<std::vector<double>, std::vector<std::size_t>> muaps_of(const fs::path& file) {
  const myotwin::H5Reader h(file);
  return {h.read_double_values("muaps"), h.shape("muaps")};
}

class Sweep : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const fs::path d = dir_->path();
    myotwin::write_text_file(d / "small.json", R"({
      "phantom": {"length_mm": 60, "voxel_inplane_mm": 0.75, "voxel_axial_mm": 2.0,
                  "elbow_depth_mm": 40, "elbow_width_mm": 45, "wrist_depth_mm": 35,
                  "wrist_width_mm": 40},
      "anatomy": {"muscles": ["ED"], "fibres": {"model_density_per_mm2": 0.3},
                  "motor_units": {"n_units": 10}, "fibre_field": {"tolerance": 1e-5}},
      "mesh": {"perturb": false, "cell_size_mm": {"muscle": 6.0, "fat": 4.0, "tendon": 5.0},
               "facet_distance_mm": {"muscle": 1.0, "bone": 1.0, "tendon": 1.0}},
      "electrodes": {"grids": [{"name": "G", "rows": 8, "columns": 4, "ied_mm": 8.0,
                                "axial_fraction": 0.5, "angle_deg": 0}]},
      "simulate": {"muscles": ["ED"], "max_units_per_muscle": 10,
                   "drive": {"duration_s": 3.0, "profile": {"type": "constant", "level": 0.15}},
                   "emg": {"snr_dB": 20}}})");
    const auto ph = run_myotwin("phantom --quiet --config " + quoted(d / "small.json") + " -o " +
                                quoted(d / "ph"));
    log_ = "phantom: " + ph.output;
    myotwin::write_text_file(d / "sweep.json", R"({
      "subjects": {"ph": "ph/subject.json"},
      "config": "small.json",
      "product": {"simulate.emg.snr_dB": [10, 30]}})");
    const auto r = sweep_in(d / "serial");
    log_ += "sweep: exit " + std::to_string(r.exit_code) + "\n" + r.output;
    ok_ = ph.exit_code == 0 && r.exit_code == 0;
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path out() { return dir_->path() / "serial" / "out"; }
  // One process runs the sweeps once (ctest starts a process per test), so the checks are
  // steps of one test, the one that changes the serial sweep's folder last.
  void RunsShareTheirAnatomyMeshAndLeadFieldsAndTheSummaryHasARowEach();
  void TheDatasetHoldsEveryUnitsMuapOnceInChunksWithAnIndex();
  void UnderMpirunWithTwoRanksGivesTheSameBytes();
  void ALostOutputOrAnInterruptedRunIsAllThatIsRecomputed();
  void LeadFieldsFromTwoRanksAreTheSerialCacheByteForByte();

  static TempDir* dir_;
  static std::string log_;
  static bool ok_;
};
TempDir* Sweep::dir_ = nullptr;
std::string Sweep::log_;
bool Sweep::ok_ = false;

} // namespace

void Sweep::RunsShareTheirAnatomyMeshAndLeadFieldsAndTheSummaryHasARowEach() {
  ASSERT_TRUE(ok_) << log_;
  const auto rows = summary_rows(out());
  ASSERT_EQ(rows.size(), 2U);
  std::set<std::string> shared;
  std::set<double> snrs;
  for (const auto& [name, row] : rows) {
    EXPECT_EQ(row.at("status"), "ok") << row.dump();
    EXPECT_EQ(row.at("stages_run"), "simulate decompose score") << row.dump();
    EXPECT_EQ(row.at("units_simulated").get<int>(), 10) << row.dump();
    // At 30 dB, this grid over 10 shallow units decomposes some of them (2 at 1.0 RoA when
    // written).
    if (row["settings"]["simulate.emg.snr_dB"] == 30) {
      EXPECT_GE(row.at("units_matched").get<int>(), 1) << row.dump();
    }
    snrs.insert(row.at("settings").at("simulate.emg.snr_dB").get<double>());
    shared.insert(row.at("shared").get<std::string>());
    // The shared stages' files are links into OUT/shared, not copies.
    for (const std::string f : {"anatomy/motor_units.h5", "mesh/mesh.vtu", "forward/leadfields.h5"})
      EXPECT_TRUE(fs::is_symlink(out() / "runs" / name / f)) << name << " " << f;
    EXPECT_FALSE(fs::is_symlink(out() / "runs" / name / "forward/emg.h5"));
    // The run's SNR is the one it was given (the simulation's report says what it realised).
    const auto config = nlohmann::json::parse(
        myotwin::read_text_file(out() / "runs" / name / "resolved_config.json"));
    EXPECT_EQ(config["simulate"]["emg"]["snr_dB"], row["settings"]["simulate.emg.snr_dB"]);
  }
  EXPECT_EQ(snrs, (std::set<double>{10.0, 30.0}));
  ASSERT_EQ(shared.size(), 1U); // the SNR is not a setting of the shared stages
  EXPECT_EQ(std::distance(fs::directory_iterator(out() / "shared"), fs::directory_iterator()), 1);
  // The CSV: a header and one line per run, with the overridden key as a column.
  const std::string csv = myotwin::read_text_file(out() / "sweep_summary.csv");
  EXPECT_EQ(csv.rfind("run,subject,simulate.emg.snr_dB,status,", 0), 0U) << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
}

// The dataset: every simulated unit once, in chunks of at most chunk_MiB of MUAPs, each unit's
// MUAP and parameters those of its run's muaps.h5, found through the index.
void Sweep::TheDatasetHoldsEveryUnitsMuapOnceInChunksWithAnIndex() {
  ASSERT_TRUE(ok_) << log_;
  const auto index = nlohmann::json::parse(myotwin::read_text_file(out() / "dataset/index.json"));
  const auto rows = summary_rows(out());
  int n_expected = 0;
  for (const auto& [name, row] : rows)
    n_expected += row.at("units_simulated").get<int>();
  EXPECT_EQ(index.at("n_units").get<int>(), n_expected);
  ASSERT_GT(index.at("chunks").size(), 2U);
  std::map<std::string, std::vector<bool>> seen; // run -> unit seen
  for (const auto& c : index.at("chunks")) {
    const fs::path file = out() / "dataset" / c.at("file").get<std::string>();
    const auto [chunk, shape] = muaps_of(file);
    ASSERT_EQ(shape.size(), 3U);
    EXPECT_EQ(shape[0], c.at("n_units").get<std::size_t>());
    EXPECT_TRUE(shape[0] == 1 || 8.0 * static_cast<double>(chunk.size()) <= chunk_MiB * 1048576.0)
        << file;
    const myotwin::H5Reader h(file);
    const auto run_index = h.read_int64("run_index");
    const auto depth = h.read_double("depth_m");
    for (const auto& r : c.at("runs")) {
      const std::string run = r.at("run");
      const fs::path muaps_h5 = out() / "runs" / run / "forward/muaps.h5";
      const auto [theirs, their_shape] = muaps_of(muaps_h5);
      const myotwin::H5Reader t(muaps_h5);
      const auto their_depth = t.read_double("units/depth_m");
      auto& flags = seen[run];
      flags.resize(their_shape[0], false);
      const std::size_t per_unit = shape[1] * shape[2];
      ASSERT_EQ(their_shape[1] * their_shape[2], per_unit);
      for (std::size_t k = 0; k < r.at("n_units").get<std::size_t>(); ++k) {
        const std::size_t at = r.at("first_unit").get<std::size_t>() + k;
        const std::size_t u = r.at("run_first_unit").get<std::size_t>() + k;
        ASSERT_LT(u, flags.size());
        EXPECT_FALSE(flags[u]) << run << " unit " << u << " twice";
        flags[u] = true;
        EXPECT_EQ(run_index(static_cast<Eigen::Index>(at), 0), r.at("index").get<int>());
        EXPECT_EQ(depth(static_cast<Eigen::Index>(at), 0),
                  their_depth(static_cast<Eigen::Index>(u), 0));
        EXPECT_TRUE(std::equal(chunk.begin() + static_cast<std::ptrdiff_t>(at * per_unit),
                               chunk.begin() + static_cast<std::ptrdiff_t>((at + 1) * per_unit),
                               theirs.begin() + static_cast<std::ptrdiff_t>(u * per_unit)))
            << run << " unit " << u;
      }
    }
  }
  for (const auto& [run, flags] : seen)
    EXPECT_EQ(std::count(flags.begin(), flags.end(), true), static_cast<long>(flags.size())) << run;
  EXPECT_EQ(seen.size(), rows.size());
}

void Sweep::UnderMpirunWithTwoRanksGivesTheSameBytes() {
  ASSERT_TRUE(ok_) << log_;
  const std::string launcher = mpirun();
  if (launcher.empty())
    GTEST_SKIP() << "no MPI in this build or no mpirun: the sweep under MPI is not tested";
  const fs::path mpi_out = dir_->path() / "mpi" / "out";
  const auto r = sweep_in(dir_->path() / "mpi", launcher);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string& output = r.output;
  EXPECT_NE(output.find("2 rank(s)"), std::string::npos) << output;
  const auto serial = summary_rows(out());
  const auto parallel = summary_rows(mpi_out);
  ASSERT_EQ(parallel.size(), serial.size());
  std::set<int> ranks;
  for (auto [name, row] : parallel) {
    ASSERT_TRUE(serial.count(name)) << name;
    ranks.insert(row.at("rank").get<int>());
    auto s = serial.at(name);
    for (auto* each : {&row, &s}) {
      each->erase("time_s");
      each->erase("rank");
    }
    EXPECT_EQ(row, s);
    for (const auto& f : result_files)
      EXPECT_EQ(myotwin::read_text_file(mpi_out / "runs" / name / f),
                myotwin::read_text_file(out() / "runs" / name / f))
          << name << " " << f;
  }
  // The dataset: the same chunks.
  const auto index = nlohmann::json::parse(myotwin::read_text_file(out() / "dataset/index.json"));
  for (const auto& c : index.at("chunks"))
    EXPECT_EQ(myotwin::read_text_file(mpi_out / "dataset" / c.at("file").get<std::string>()),
              myotwin::read_text_file(out() / "dataset" / c.at("file").get<std::string>()));
  const std::string shared = serial.begin()->second.at("shared");
  EXPECT_EQ(myotwin::read_text_file(mpi_out / "shared" / shared / "forward/leadfields.h5"),
            myotwin::read_text_file(out() / "shared" / shared / "forward/leadfields.h5"));
}

void Sweep::ALostOutputOrAnInterruptedRunIsAllThatIsRecomputed() {
  ASSERT_TRUE(ok_) << log_;
  const auto rows = summary_rows(out());
  const std::string lost = rows.begin()->first, kept = rows.rbegin()->first;
  std::map<std::string, std::string> before;
  for (const auto& f : result_files)
    before[f] = myotwin::read_text_file(out() / "runs" / lost / f);
  // 1. A decomposition lost from one run: that run's decompose runs again, nothing else (it
  // writes the same bytes, so the score, whose inputs are unchanged, is reused).
  fs::remove(out() / "runs" / lost / "decomposition/decomposition.h5");
  const auto again = sweep_in(dir_->path() / "serial");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  auto now = summary_rows(out());
  EXPECT_EQ(now.at(lost).at("stages_run"), "decompose") << again.output;
  EXPECT_EQ(now.at(kept).at("stages_run"), "") << again.output;
  EXPECT_NE(again.output.find("shared stages"), std::string::npos);
  for (const auto& f : result_files)
    EXPECT_EQ(myotwin::read_text_file(out() / "runs" / lost / f), before[f]) << f;

  // 2. SIGTERM while a run simulates (after its shared stages): the next sweep reruns that
  // run's simulation, which writes the same EMG, so that its decomposition and score (whose
  // inputs are unchanged) are reused, as are the shared stages and the other run.
  fs::remove(out() / "runs" / lost / "forward/emg.h5");
  {
    myotwin::testing::BackgroundMyotwin p(
        {"sweep", (dir_->path() / "sweep.json").string(), "-o", out().string()},
        dir_->path() / "interrupted.log");
    ASSERT_TRUE(myotwin::testing::wait_for_temporary_file(out() / "runs" / lost / "forward", 120))
        << myotwin::testing::file_text(dir_->path() / "interrupted.log");
    ASSERT_EQ(::kill(p.pid(), SIGTERM), 0);
    EXPECT_EQ(p.wait(60.0), 128 + SIGTERM);
  }
  EXPECT_EQ(myotwin::testing::temporary_files(out()), std::vector<fs::path>{});
  const auto resumed = sweep_in(dir_->path() / "serial");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  now = summary_rows(out());
  EXPECT_EQ(now.at(lost).at("stages_run"), "simulate") << resumed.output;
  EXPECT_EQ(now.at(kept).at("stages_run"), "") << resumed.output;
  for (const auto& f : result_files)
    EXPECT_EQ(myotwin::read_text_file(out() / "runs" / lost / f), before[f]) << f;
}

// `myotwin leadfield` under `mpirun -np 2`: each rank solves half of the electrodes (blocks of 8
// of the 32), rank 0 gathers them and writes a cache with the same bytes as one process's.
void Sweep::LeadFieldsFromTwoRanksAreTheSerialCacheByteForByte() {
  ASSERT_TRUE(ok_) << log_;
  const std::string launcher = mpirun();
  if (launcher.empty())
    GTEST_SKIP() << "no MPI in this build or no mpirun: lead fields across ranks are not tested";
  const fs::path shared = out() / "shared" / summary_rows(out()).begin()->second.at("shared");
  const std::string args = " leadfield ../ph/subject.json --config ../small.json --set "
                           "volume_conductor.block_columns=8 -o out";
  for (const std::string name : {"lf_serial", "lf_mpi"}) {
    for (const std::string stage : {"anatomy", "mesh"}) {
      fs::create_directories(dir_->path() / name / "out");
      fs::copy(shared / stage, dir_->path() / name / "out" / stage,
               fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    }
  }
  const auto serial = run_in(dir_->path() / "lf_serial", std::string(MYOTWIN_EXE) + args);
  ASSERT_EQ(serial.exit_code, 0) << serial.output;
  const auto parallel =
      run_in(dir_->path() / "lf_mpi", launcher + " -np 2 " + std::string(MYOTWIN_EXE) + args);
  ASSERT_EQ(parallel.exit_code, 0) << parallel.output;
  EXPECT_NE(parallel.output.find("16/16"), std::string::npos)
      << "rank 0 solves 16 of the 32 electrodes\n"
      << parallel.output;
  const std::string a =
      myotwin::read_text_file(dir_->path() / "lf_serial/out/forward/leadfields.h5");
  const std::string b = myotwin::read_text_file(dir_->path() / "lf_mpi/out/forward/leadfields.h5");
  EXPECT_GT(a.size(), 1000000U);
  EXPECT_TRUE(a == b) << "the caches differ (" << a.size() << " and " << b.size() << " bytes)";
  const auto report = nlohmann::json::parse(
      myotwin::read_text_file(dir_->path() / "lf_mpi/out/forward/leadfield_report.json"));
  EXPECT_EQ(report.at("ranks").get<int>(), 2);
  EXPECT_FALSE(report.at("cache_hit").get<bool>());
}

TEST_F(Sweep, SharedStagesDatasetMpiRanksAndResumption) {
  ASSERT_TRUE(ok_) << log_;
  {
    SCOPED_TRACE("RunsShareTheirAnatomyMeshAndLeadFieldsAndTheSummaryHasARowEach");
    RunsShareTheirAnatomyMeshAndLeadFieldsAndTheSummaryHasARowEach();
  }
  {
    SCOPED_TRACE("TheDatasetHoldsEveryUnitsMuapOnceInChunksWithAnIndex");
    TheDatasetHoldsEveryUnitsMuapOnceInChunksWithAnIndex();
  }
  {
    SCOPED_TRACE("UnderMpirunWithTwoRanksGivesTheSameBytes");
    UnderMpirunWithTwoRanksGivesTheSameBytes();
  }
  {
    SCOPED_TRACE("LeadFieldsFromTwoRanksAreTheSerialCacheByteForByte");
    LeadFieldsFromTwoRanksAreTheSerialCacheByteForByte();
  }
  {
    SCOPED_TRACE("ALostOutputOrAnInterruptedRunIsAllThatIsRecomputed");
    ALostOutputOrAnInterruptedRunIsAllThatIsRecomputed();
  }
}

// Bad sweep files: exit 2 and a message naming the file, the run or key, and what was
// expected; nothing is computed.
TEST(SweepBadInput, MissingSubjectUnknownKeyAndConflictingOverridesAreErrors) {
  TempDir dir;
  const fs::path subject = fs::path(MYOTWIN_SOURCE_DIR) / "sample_data/forearm/subject.json";
  const auto check = [&](const std::string& name, const std::string& sweep,
                         const std::vector<std::string>& fragments) {
    SCOPED_TRACE(name);
    const fs::path file = dir.path() / (name + ".json");
    myotwin::write_text_file(file, sweep);
    const auto r = run_myotwin("sweep " + quoted(file) + " -o " + quoted(dir.path() / name));
    EXPECT_EQ(r.exit_code, 2) << r.output;
    for (const auto& f : fragments)
      EXPECT_NE(r.output.find(f), std::string::npos) << "missing \"" << f << "\" in\n" << r.output;
    EXPECT_FALSE(fs::exists(dir.path() / name / "runs"));
  };
  const std::string s = "\"subjects\": {\"arm\": " + nlohmann::json(subject.string()).dump() + "}";
  check("missing_subject", R"({"subjects": {"x": "nowhere/subject.json"}})",
        {"missing_subject.json: subjects: subject \"x\"", "nowhere/subject.json does not exist"});
  check("unknown_key", "{" + s + R"(, "product": {"simulate.emg.snr_db": [10, 20]}})",
        {"unknown_key.json, run 1 (arm, simulate.emg.snr_db=10)", "snr_db"});
  check("out_of_range", "{" + s + R"(, "product": {"simulate.emg.snr_dB": [10, 1000]}})",
        {"run 2 (arm, simulate.emg.snr_dB=1000)", "snr_dB"});
  check("conflict", "{" + s + R"(, "runs": [{"set": {"simulate.drive": {"duration_s": 2},
                                                     "simulate.drive.duration_s": 3}}]})",
        {"conflict.json: runs[0].set", "\"simulate.drive\" and \"simulate.drive.duration_s\"",
         "conflict"});
  check("same_run_twice", "{" + s + R"(, "runs": [{"set": {"seed": 1}}, {"set": {"seed": 1}}]})",
        {"runs 1 and 2 are the same"});
  check("unknown_subject", "{" + s + R"(, "runs": [{"subject": "leg"}]})",
        {"runs[0].subject = \"leg\": not a subject of this sweep (expected one of arm)"});
  check("unknown_top_key", "{" + s + R"(, "grid": 1})", {"unknown key \"grid\""});
  check("array_element", "{" + s + R"(, "product": {"electrodes.grids.0.rows": [2]}})",
        {"names an array element"});
}

// More ranks than runs: a warning, and the sweep still runs (here a dry run: the plan only).
TEST(SweepMpi, MoreRanksThanRunsIsAWarning) {
  const std::string launcher = mpirun();
  if (launcher.empty())
    GTEST_SKIP() << "no MPI in this build or no mpirun: the sweep under MPI is not tested";
  TempDir dir;
  const fs::path subject = fs::path(MYOTWIN_SOURCE_DIR) / "sample_data/forearm/subject.json";
  myotwin::write_text_file(dir.path() / "one.json",
                           "{\"subjects\": [" + nlohmann::json(subject.string()).dump() + "]}");
  const std::string command = launcher + " -np 2 " + MYOTWIN_EXE + " sweep --dry-run " +
                              quoted(dir.path() / "one.json") + " -o " + quoted(dir.path() / "out");
  const auto r = myotwin::testing::run_shell(command);
  const std::string& output = r.output;
  EXPECT_EQ(r.exit_code, 0) << output;
  EXPECT_NE(output.find("warning: sweep: 2 ranks for 1 runs"), std::string::npos) << output;
  EXPECT_TRUE(fs::exists(dir.path() / "out" / "sweep_summary.csv"));
}
