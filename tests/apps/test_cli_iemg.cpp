// `myotwin iemg` run as a user would: a cylinder with a needle trajectory, its files and their
// shapes, the resolved config, and bad configurations (exit code 2 and the key in the message).

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "test_support.hpp"

using myotwin::testing::quoted;
using myotwin::testing::run_myotwin;
using myotwin::testing::TempDir;
using namespace myotwin;

namespace {

/// A small run config: the `iemg` section (cylinder, needle, drive) and the top-level noise.
nlohmann::json small_config() {
  return {
      {"seed", 7},
      {"iemg",
       {{"cylinder", {{"radius_mm", 3.0}, {"length_mm", 60.0}, {"motor_units", {{"n_units", 10}}}}},
        {"units", {0, 2, 5}},
        {"needle",
         {{"n_contacts", 4},
          {"spacing_mm", 1.0},
          {"position_mm", {0.5, 0.0, 12.0}},
          {"differentiation", "reference"},
          {"reference_contact", 3},
          {"trajectory", {{"n_positions", 2}, {"step_mm", 0.5}}}}},
        {"drive", {{"duration_s", 1.0}, {"profile", {{"type", "constant"}, {"level", 0.2}}}}}}},
      {"noise", {{"type", "gaussian"}, {"snr_dB", 15.0}}}};
}

} // namespace

TEST(CliIemg, WritesMuapsEmgTruthAndTheResolvedConfigForEachNeedlePosition) {
  TempDir dir;
  write_text_file(dir / "iemg.json", small_config().dump());
  const auto r = run_myotwin("iemg " + quoted(dir / "iemg.json") + " -o " + quoted(dir / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("3 units"), std::string::npos) << r.output;
  const auto iemg = dir / "out" / "iemg";
  for (const char* f : {"muaps.h5", "emg.h5", "emg.mat", "emg_position_1.h5", "emg_position_1.mat",
                        "truth.h5", "iemg_report.json"}) {
    EXPECT_TRUE(std::filesystem::exists(iemg / f)) << f;
  }
  const H5Reader muaps(iemg / "muaps.h5");
  const auto shape = muaps.shape("position_1/muaps");
  ASSERT_EQ(shape.size(), 3U);
  EXPECT_EQ(shape[0], 3U);                                    // units
  EXPECT_EQ(shape[1], 4U);                                    // contacts
  EXPECT_EQ(muaps.shape("position_0/muaps_channels")[1], 3U); // against contact 3
  // The second position is the first moved 0.5 mm along the needle axis (x).
  const Eigen::MatrixXd c0 = muaps.read_double("position_0/contacts_m");
  const Eigen::MatrixXd c1 = muaps.read_double("position_1/contacts_m");
  EXPECT_NEAR(c1(0, 0) - c0(0, 0), 0.5e-3, 1e-12);
  const H5Reader emg(iemg / "emg.h5");
  EXPECT_EQ(emg.shape("emg"), (std::vector<std::size_t>{3, 10240}));
  const Eigen::MatrixXd snr = emg.read_double("snr_dB");
  EXPECT_NEAR(snr(0, 0), 15.0, 1e-6);
  const H5Reader truth(iemg / "truth.h5");
  EXPECT_TRUE(truth.contains("discharge_times_s/5"));
  EXPECT_TRUE(truth.contains("position_0/jitter_s/2"));
  EXPECT_TRUE(truth.contains("branch_delays_s/0"));
  const auto resolved = nlohmann::json::parse(read_text_file(dir / "out" / "resolved_config.json"));
  EXPECT_EQ(resolved["iemg"]["fs_Hz"], 10240.0);
  EXPECT_EQ(resolved["iemg"]["jitter_us"], 35.0);
  EXPECT_EQ(resolved["iemg"]["nerve_branching"]["terminal_cv_m_per_s"], 2.0);
  EXPECT_EQ(resolved["seed"], 7);
  // The resolved configuration, given back with --config, gives the same files' numbers.
  const auto again = run_myotwin("iemg -o " + quoted(dir / "out2") + " --quiet --config " +
                                 quoted(dir / "out" / "resolved_config.json"));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(H5Reader(dir / "out2" / "iemg" / "emg.h5").read_double("emg"), emg.read_double("emg"));
}

TEST(CliIemg, RejectsAnUnknownNoiseTypeTwoMuscleSourcesAndAMissingAnatomy) {
  TempDir dir;
  auto bad_noise = small_config();
  bad_noise["noise"]["type"] = "pink";
  write_text_file(dir / "noise.json", bad_noise.dump());
  const auto r = run_myotwin("iemg " + quoted(dir / "noise.json") + " -o " + quoted(dir / "o"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("noise.type"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pink"), std::string::npos) << r.output;

  auto both = small_config();
  both["iemg"]["anatomy"] = {{"dir", "anatomy"}, {"muscle", "FCU"}};
  write_text_file(dir / "both.json", both.dump());
  const auto b = run_myotwin("iemg " + quoted(dir / "both.json") + " -o " + quoted(dir / "o"));
  EXPECT_EQ(b.exit_code, 2) << b.output;
  EXPECT_NE(b.output.find("one muscle source"), std::string::npos) << b.output;

  auto missing = small_config();
  missing["iemg"].erase("cylinder");
  missing["iemg"]["anatomy"] = {{"dir", "no_such_dir"}, {"muscle", "FCU"}};
  write_text_file(dir / "missing.json", missing.dump());
  const auto m = run_myotwin("iemg " + quoted(dir / "missing.json") + " -o " + quoted(dir / "o"));
  EXPECT_NE(m.exit_code, 0) << m.output;
  EXPECT_NE(m.output.find("no_such_dir"), std::string::npos) << m.output;

  auto unknown = small_config();
  unknown["iemg"]["needle"]["angle_deg"] = {0.0, 0.0, 0.0};
  write_text_file(dir / "unknown.json", unknown.dump());
  const auto u = run_myotwin("iemg " + quoted(dir / "unknown.json") + " -o " + quoted(dir / "o"));
  EXPECT_EQ(u.exit_code, 2) << u.output;
  EXPECT_NE(u.output.find("iemg.needle.angle_deg"), std::string::npos) << u.output;

  // A unit the muscle does not have, named with the pool's size.
  auto units = small_config();
  units["iemg"]["units"] = {0, 50};
  write_text_file(dir / "units.json", units.dump());
  const auto n = run_myotwin("iemg " + quoted(dir / "units.json") + " -o " + quoted(dir / "o"));
  EXPECT_EQ(n.exit_code, 2) << n.output;
  EXPECT_NE(n.output.find("iemg.units contains 50: the muscle has 10 units"), std::string::npos)
      << n.output;

  // A file in the layout of before session 13 (needle as the top-level `electrodes`) is refused
  // naming the key, not read as something else.
  auto old = small_config();
  old["electrodes"] = old["iemg"]["needle"];
  old["iemg"].erase("needle");
  write_text_file(dir / "old.json", old.dump());
  const auto o = run_myotwin("iemg " + quoted(dir / "old.json") + " -o " + quoted(dir / "o"));
  EXPECT_EQ(o.exit_code, 2) << o.output;
  EXPECT_NE(o.output.find("electrodes."), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("unknown key"), std::string::npos) << o.output;
}

TEST(CliIemg, AClinicalInsertionRuleNoPositionMeetsExitsOneNamingTheBestPosition) {
  // A monopolar needle advanced across a 3 mm cylinder: no position has 50 units passing.
  TempDir dir;
  nlohmann::json c = small_config();
  c["iemg"]["needle"] = {
      {"type", "monopolar"},
      {"position_mm", {-4.0, 0.2, 12.0}},
      {"insertion",
       {{"mode", "clinical"}, {"min_units", 50}, {"step_mm", 0.5}, {"max_travel_mm", 6.0}}}};
  write_text_file(dir / "iemg.json", c.dump());
  const auto r = run_myotwin("iemg " + quoted(dir / "iemg.json") + " -o " + quoted(dir / "out"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("no position along the track (13 tried"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("best: position_mm ["), std::string::npos) << r.output;
  const auto report =
      nlohmann::json::parse(read_text_file(dir / "out" / "iemg" / "iemg_report.json"));
  EXPECT_EQ(report["insertion"]["tries"].size(), 13U);
  EXPECT_FALSE(report["insertion"]["satisfied"].get<bool>());
  EXPECT_FALSE(std::filesystem::exists(dir / "out" / "iemg" / "emg.h5"));
}

TEST(CliIemg, ANeedleOutsideTheMuscleIsRefusedNamingItsPositionAndTheDistance) {
  // The 3 mm cylinder: an array centred 8 mm off its axis (every contact outside), and a
  // monopolar needle whose clinical track runs beside the muscle (5 mm off the axis in y, moving
  // along x) and never enters it. Both are bad input (exit 2), named with the position.
  TempDir dir;
  nlohmann::json a = small_config();
  a["iemg"]["needle"]["position_mm"] = {8.0, 0.0, 12.0};
  write_text_file(dir / "array.json", a.dump());
  const auto r = run_myotwin("iemg " + quoted(dir / "array.json") + " -o " + quoted(dir / "o"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("iemg.needle.position_mm = [8, 0, 12]: the recording contact point_0 at "
                          "trajectory position 0 lies outside the muscle \"cylinder\""),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("mm from its nearest fibre (inside means within"), std::string::npos)
      << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "o" / "iemg" / "emg.h5"));
  // A fine wire has no position_mm: its pairs are named.
  nlohmann::json w = small_config();
  w["iemg"]["needle"] = {{"type", "fine_wire"},
                         {"pairs", {{{"a_mm", {0.0, 0.0, 12.0}}, {"b_mm", {0.0, 9.0, 12.0}}}}}};
  write_text_file(dir / "wire.json", w.dump());
  const auto f = run_myotwin("iemg " + quoted(dir / "wire.json") + " -o " + quoted(dir / "o"));
  EXPECT_EQ(f.exit_code, 2) << f.output;
  EXPECT_NE(f.output.find("iemg.needle.pairs: the recording contact wire_b"), std::string::npos)
      << f.output;
  nlohmann::json c = small_config();
  c["iemg"]["needle"] = {
      {"type", "monopolar"},
      {"position_mm", {-6.0, 5.0, 12.0}},
      {"insertion", {{"mode", "clinical"}, {"step_mm", 0.5}, {"max_travel_mm", 8.0}}}};
  write_text_file(dir / "beside.json", c.dump());
  const auto b = run_myotwin("iemg " + quoted(dir / "beside.json") + " -o " + quoted(dir / "o2"));
  EXPECT_EQ(b.exit_code, 2) << b.output;
  EXPECT_NE(b.output.find("iemg.needle.position_mm = [-6, 5, 12]: the needle's track (17 "
                          "positions every 0.5 mm over max_travel_mm = 8) never enters the muscle "
                          "\"cylinder\""),
            std::string::npos)
      << b.output;
}
