// `myotwin noise generate` and `myotwin noise calibrate` run as a user would: the round trip
// through files (noise.h5 -> noise.json), a CSV recording, exit codes and messages.

#include <cmath>
#include <fstream>

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

nlohmann::json read_json(const std::filesystem::path& p) {
  return nlohmann::json::parse(read_text_file(p));
}

} // namespace

TEST(CliNoise, GenerateThenCalibrateRecoversTheConfig) {
  TempDir dir;
  const nlohmann::json truth = {{"noise",
                                 {{"type", "realistic"},
                                  {"psd_slope", -1.0},
                                  {"powerline_Hz", 60.0},
                                  {"midband_Hz", 800.0}}}};
  write_text_file(dir / "truth.json", truth.dump());
  auto g = run_myotwin("noise generate --config " + quoted(dir / "truth.json") +
                       " --fs-Hz 4096 --duration-s 10 --n-channels 4 --seed 5 -o " +
                       quoted(dir / "noise.h5"));
  ASSERT_EQ(g.exit_code, 0) << g.output;
  const H5Reader h5(dir / "noise.h5");
  EXPECT_EQ(h5.shape("noise"), (std::vector<std::size_t>{4, 40960}));

  auto c = run_myotwin("noise calibrate " + quoted(dir / "noise.h5") + " --start-s 1 -o " +
                       quoted(dir / "noise.json") + " --report " + quoted(dir / "report.json"));
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("powerline "), std::string::npos) << c.output;
  const nlohmann::json cal = read_json(dir / "noise.json");
  EXPECT_EQ(cal["noise"]["type"], "realistic");
  EXPECT_NEAR(cal["noise"]["psd_slope"].get<double>(), -1.0, 0.1);
  EXPECT_NEAR(cal["noise"]["powerline_Hz"].get<double>(), 60.0, 0.5);
  EXPECT_NEAR(std::log2(cal["noise"]["midband_Hz"].get<double>() / 800.0), 0.0, 0.2);
  EXPECT_EQ(read_json(dir / "report.json")["n_channels"], 4);

  // The calibrated config drives the generator again.
  auto g2 = run_myotwin("noise generate --config " + quoted(dir / "noise.json") +
                        " --fs-Hz 4096 --duration-s 1 -o " + quoted(dir / "again.h5"));
  EXPECT_EQ(g2.exit_code, 0) << g2.output;
}

TEST(CliNoise, CalibratesACsvWithATimeColumnAndChannelChoice) {
  TempDir dir;
  auto g =
      run_myotwin("noise generate --fs-Hz 2048 --duration-s 8 --n-channels 3 -o " +
                  quoted(dir / "noise.h5") + " --config " + quoted(dir / "cfg.json") + " --quiet");
  // (no cfg.json yet: a missing config is an I/O error, exit 2)
  EXPECT_EQ(g.exit_code, 2);
  write_text_file(dir / "cfg.json", R"({"noise": {"type": "realistic"}})");
  g = run_myotwin("noise generate --fs-Hz 2048 --duration-s 8 --n-channels 3 --rms-uV 5 -o " +
                  quoted(dir / "noise.h5") + " --config " + quoted(dir / "cfg.json") + " --quiet");
  ASSERT_EQ(g.exit_code, 0) << g.output;
  const Eigen::MatrixXd x = H5Reader(dir / "noise.h5").read_double("noise");
  {
    std::ofstream csv(dir / "rest.csv");
    csv << "time_s,ch0_uV,ch1_uV,ch2_uV\n";
    csv.precision(17);
    for (Eigen::Index i = 0; i < x.cols(); ++i)
      csv << static_cast<double>(i) / 2048.0 << "," << 1e6 * x(0, i) << "," << 1e6 * x(1, i) << ","
          << 1e6 * x(2, i) << "\n";
  }
  auto c =
      run_myotwin("noise calibrate " + quoted(dir / "rest.csv") + " --unit uV --channels 0,2 -o " +
                  quoted(dir / "noise.json") + " --report " + quoted(dir / "report.json"));
  ASSERT_EQ(c.exit_code, 0) << c.output;
  const nlohmann::json report = read_json(dir / "report.json");
  EXPECT_EQ(report["n_channels"], 2);
  EXPECT_NEAR(report["fs_Hz"].get<double>(), 2048.0, 1e-6);
  EXPECT_NEAR(report["channels"][0]["rest_rms_uV"].get<double>(), 5.0, 0.5);
  EXPECT_NEAR(read_json(dir / "noise.json")["noise"]["powerline_Hz"].get<double>(), 50.0, 0.5);
}

TEST(CliNoise, BadInputExitsTwoWithAClearMessage) {
  TempDir dir;
  write_text_file(dir / "pink.json", R"({"noise": {"type": "pink"}})");
  auto r = run_myotwin("noise generate --config " + quoted(dir / "pink.json") + " -o " +
                       quoted(dir / "n.h5"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("noise.type"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pink"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("realistic"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "n.h5"));

  write_text_file(dir / "snr.json", R"({"noise": {"snr_dB": "loud"}})");
  r = run_myotwin("noise generate --config " + quoted(dir / "snr.json") + " -o " +
                  quoted(dir / "n.h5"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("snr_dB"), std::string::npos) << r.output;

  write_text_file(dir / "bad.csv", "1,2\n3,4\n");
  r = run_myotwin("noise calibrate " + quoted(dir / "bad.csv") + " -o " + quoted(dir / "o.json"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("sampling rate"), std::string::npos) << r.output;

  r = run_myotwin("noise calibrate " + quoted(dir / "missing.h5") + " -o " +
                  quoted(dir / "o.json"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("missing.h5"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "o.json"));
}
