// `myotwin bench bmiss` on a small version of its setting (ED of the sample forearm with 12
// units, a 3 x 8 wrapped grid, 3 s, two short iterations, no perturbed model) through the real
// executable: the report's structure and consistency, the recording it writes, and its bad
// input. About two minutes on 2 cores (anatomy, mesh and lead fields of the bench's subject).

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using myotwin::testing::quoted;
using myotwin::testing::run_myotwin;
using myotwin::testing::TempDir;

TEST(CliBench, BmissReportsEveryMethodPerIterationAndRefusesBadInput) {
  const TempDir dir;
  {
    std::ofstream c(dir.path() / "run.json");
    c << R"({"electrodes": {"grids": [{"name": "g", "rows": 3, "columns": 8, "ied_mm": 8.0,
                                        "wrap": true}]},
             "muap_model": {"end_plate_shifts": 3},
             "invert": {"n_iterations": 2, "n_probe": 60, "n_refine": 3,
                        "nelder_mead_evaluations": 12, "n_fit_probe": 10, "n_fit_starts": 1}})";
  }
  const std::string common = " --quiet --config " + quoted(dir.path() / "run.json");
  const auto out = dir.path() / "bench";

  // Bad input first (nothing is computed): a muscle the subject does not have, a bad SNR.
  const auto wrong =
      run_myotwin("bench bmiss --muscle NOPE --no-perturbed -o " + quoted(out) + common);
  EXPECT_EQ(wrong.exit_code, 2) << wrong.output;
  EXPECT_NE(wrong.output.find("--muscle \"NOPE\" is not a muscle of"), std::string::npos)
      << wrong.output;
  const auto nan = run_myotwin("bench bmiss --snr nan --no-perturbed -o " + quoted(out) + common);
  EXPECT_EQ(nan.exit_code, 2) << nan.output;
  EXPECT_NE(nan.output.find("--snr"), std::string::npos) << nan.output;

  const auto r = run_myotwin("bench bmiss --units 12 --duration 3 --snr 20 --no-perturbed -o " +
                             quoted(out) + common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = nlohmann::json::parse(myotwin::read_text_file(out / "bench_bmiss.json"));
  EXPECT_EQ(report.at("n_units").get<int>(), 12);
  EXPECT_EQ(report.at("n_channels").get<int>(), 24);
  ASSERT_EQ(report.at("levels").size(), 1U);
  const auto& methods = report.at("levels")[0].at("methods");
  ASSERT_EQ(methods.size(), 3U);
  EXPECT_EQ(methods[0].at("method"), "BMISS");
  EXPECT_EQ(methods[1].at("method"), "blind");
  EXPECT_EQ(methods[2].at("method"), "true MUAPs");
  for (const auto& m : methods) {
    const auto per = m.at("recovered_per_iteration").get<std::vector<int>>();
    ASSERT_EQ(per.size(), 2U) << m.dump();
    EXPECT_LE(per[0], per[1]) << m.dump();
    EXPECT_LE(per[1], m.at("units_accepted").get<int>()) << m.dump();
  }
  // With the true MUAPs of 12 units on 24 channels at 20 dB at least one unit is found.
  EXPECT_GE(methods[2].at("recovered_per_iteration")[1].get<int>(), 1) << methods[2].dump();
  ASSERT_TRUE(methods[0].contains("property_errors"));
  // Per recovered unit: its true unit and its errors, as many as the summary counts.
  const auto& errors = methods[0].at("property_errors");
  const auto n_fitted = errors.at("depth_mm").at("n").get<std::size_t>();
  const auto& per_unit = errors.at("per_unit");
  EXPECT_EQ(per_unit.at("truth").size(), n_fitted);
  EXPECT_EQ(per_unit.at("cv_m_per_s").size(), n_fitted);
  for (const auto& t : per_unit.at("truth"))
    EXPECT_TRUE(t.get<int>() >= 0 && t.get<int>() < 12) << per_unit.dump();
  // The same units fitted to their true MUAPs: the model's own error, unit by unit.
  ASSERT_TRUE(methods[0].contains("property_errors_true_muaps"));
  const auto& exact = methods[0].at("property_errors_true_muaps").at("per_unit");
  EXPECT_EQ(exact.at("truth"), per_unit.at("truth"));
  EXPECT_EQ(exact.at("depth_mm").size(), n_fitted);
  // Residuals of the fit and of the model at the true parameters, relative to the MUAP's norm.
  for (const auto* set : {&per_unit, &exact})
    for (const char* key : {"relative_residual", "relative_residual_at_truth",
                            "relative_residual_at_truth_own_radius"}) {
      ASSERT_EQ(set->at(key).size(), n_fitted) << key;
      for (const auto& value : set->at(key))
        EXPECT_TRUE(value.get<double>() >= 0.0 && value.get<double>() < 2.0) << key << " " << value;
    }
  EXPECT_EQ(methods[0].at("iteration_time_s").size(), 2U);
  // The recording and its truth, readable as any simulated EMG.
  myotwin::H5Reader h5(out / "emg_20dB.h5");
  EXPECT_EQ(h5.read_int64("truth/unit_id").size(), 12);
  EXPECT_TRUE(fs::exists(out / "bench_bmiss.md"));
  // The upper bound's separability of every true unit: the noise alone allows more than the
  // other units do (the matched filter over everything else cannot beat the noise-only bound).
  const auto& sep = report.at("levels")[0].at("separability");
  const auto norms = sep.at("norm_per_unit").get<std::vector<double>>();
  const auto bound = sep.at("noise_limited_per_unit").get<std::vector<double>>();
  ASSERT_EQ(norms.size(), 12U);
  ASSERT_EQ(bound.size(), 12U);
  for (std::size_t u = 0; u < norms.size(); ++u) {
    EXPECT_GT(norms[u], 0.0);
    EXPECT_GT(bound[u], norms[u]) << "unit " << u;
  }
  // The cancellation bounds: per round, the units removed so far and those of them the hand-over
  // recovered, never more than were removed, neither decreasing.
  // The first round removes exactly the units separable in the recording itself (the same
  // whitening as norm_per_unit); the run must have some, or the checks below say nothing.
  const auto n_separable =
      std::count_if(norms.begin(), norms.end(), [](double n) { return n >= 5.0; });
  ASSERT_GT(n_separable, 0) << sep.dump();
  for (const std::string kind : {"exact", "estimated"}) {
    const auto removed = sep.at(kind + "_cancellation_removed").get<std::vector<int>>();
    const auto recovered = sep.at(kind + "_cancellation_recovered").get<std::vector<int>>();
    ASSERT_EQ(removed.size(), recovered.size()) << kind;
    ASSERT_FALSE(removed.empty()) << kind;
    EXPECT_EQ(removed[0], n_separable) << kind;
    for (std::size_t k = 0; k < removed.size(); ++k) {
      EXPECT_LE(recovered[k], removed[k]) << kind << " round " << k;
      if (k > 0) {
        EXPECT_GT(removed[k], removed[k - 1]) << kind << " round " << k;
        EXPECT_GE(recovered[k], recovered[k - 1]) << kind << " round " << k;
      }
    }
  }

  // --methods: only the upper bound, reusing the stages.
  const auto only = run_myotwin("bench bmiss --units 12 --duration 3 --snr 20 --methods upper -o " +
                                quoted(out) + common);
  ASSERT_EQ(only.exit_code, 0) << only.output;
  const auto again = nlohmann::json::parse(myotwin::read_text_file(out / "bench_bmiss.json"));
  const auto& one = again.at("levels")[0].at("methods");
  ASSERT_EQ(one.size(), 1U);
  EXPECT_EQ(one[0].at("method"), "true MUAPs");
  EXPECT_EQ(one[0].at("recovered_per_iteration"), methods[2].at("recovered_per_iteration"));
  const auto bad = run_myotwin("bench bmiss --methods upper,nope -o " + quoted(out) + common);
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("nope"), std::string::npos) << bad.output;

  // --muaps model: the MUAP model at each unit's parameters makes the recording (the published
  // setting), a different recording from the simulation's.
  const auto model =
      run_myotwin("bench bmiss --units 12 --duration 3 --snr 20 --methods upper --muaps model -o " +
                  quoted(out) + common);
  ASSERT_EQ(model.exit_code, 0) << model.output;
  const auto by_model = nlohmann::json::parse(myotwin::read_text_file(out / "bench_bmiss.json"));
  EXPECT_EQ(by_model.at("recording_muaps"), "model");
  EXPECT_EQ(again.at("recording_muaps"), "simulation");
  const auto& model_sep = by_model.at("levels")[0].at("separability");
  EXPECT_NE(model_sep.at("norm_per_unit"), sep.at("norm_per_unit"));
  EXPECT_GE(by_model.at("levels")[0].at("methods")[0].at("recovered_per_iteration")[1].get<int>(),
            1);
  const auto bad_muaps = run_myotwin("bench bmiss --muaps fem -o " + quoted(out) + common);
  EXPECT_EQ(bad_muaps.exit_code, 2) << bad_muaps.output;
  EXPECT_NE(bad_muaps.output.find("fem"), std::string::npos) << bad_muaps.output;
}

TEST(CliBench, BmissPaperSettingSpreadsUnitsOverMusclesAndScoresBothWays) {
  // The published setting, reduced to keep the test short: 7 units over two muscles listed as
  // ED, ECU, ECU (ED 3, ECU 4; the seven-muscle default's shares are test_bmiss's), searched over
  // both at once, the model-made arm without noise, two short iterations on a 3 x 8 wrapped grid.
  const TempDir dir;
  {
    std::ofstream c(dir.path() / "run.json");
    c << R"({"electrodes": {"grids": [{"name": "g", "rows": 3, "columns": 8, "ied_mm": 8.0,
                                        "wrap": true}]},
             "muap_model": {"end_plate_shifts": 3, "cell_size_mm": 2.0},
             "invert": {"n_iterations": 2, "n_probe": 60, "n_refine": 3,
                        "nelder_mead_evaluations": 12, "n_fit_probe": 10, "n_fit_starts": 1}})";
  }
  const std::string common = " --quiet --config " + quoted(dir.path() / "run.json");
  const auto out = dir.path() / "bench";
  const auto setting = run_myotwin("bench bmiss --setting nope -o " + quoted(out) + common);
  EXPECT_EQ(setting.exit_code, 2) << setting.output;
  EXPECT_NE(setting.output.find("--setting \"nope\": expected one-muscle or paper"),
            std::string::npos)
      << setting.output;
  const auto lacking = run_myotwin(
      "bench bmiss --setting paper --muscles ED,NOPE --no-perturbed -o " + quoted(out) + common);
  EXPECT_EQ(lacking.exit_code, 2) << lacking.output;
  EXPECT_NE(lacking.output.find("NOPE"), std::string::npos) << lacking.output;

  const auto r = run_myotwin("bench bmiss --setting paper --muscles ED,ECU,ECU --units 7 "
                             "--duration 3 --muaps model --snr none --methods bmiss,upper "
                             "--no-perturbed -o " +
                             quoted(out) + common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto report = nlohmann::json::parse(myotwin::read_text_file(out / "bench_bmiss.json"));
  EXPECT_EQ(report.at("setting"), "paper");
  EXPECT_EQ(report.at("units_per_muscle").get<std::vector<int>>(), (std::vector<int>{3, 4}));
  const auto unit_muscle = report.at("unit_muscle").get<std::vector<std::string>>();
  ASSERT_EQ(unit_muscle.size(), 7U);
  EXPECT_EQ(std::count(unit_muscle.begin(), unit_muscle.end(), "ECU"), 4);
  ASSERT_EQ(report.at("levels").size(), 1U);
  const auto& level = report.at("levels")[0];
  EXPECT_EQ(level.at("recording_muaps"), "model");
  EXPECT_FALSE(level.at("noise").get<bool>());
  EXPECT_TRUE(fs::exists(out / "emg_model_noiseless.h5"));
  const auto& methods = level.at("methods");
  ASSERT_EQ(methods.size(), 2U);
  for (const auto& m : methods) {
    const auto ours = m.at("recovered_per_iteration").get<std::vector<int>>();
    const auto published = m.at("published_recovered_per_iteration").get<std::vector<int>>();
    ASSERT_EQ(published.size(), 2U) << m.dump();
    EXPECT_LE(published[0], published[1]) << m.dump();
    EXPECT_LE(published[1], 7) << m.dump();
    EXPECT_LE(ours[1], m.at("units_accepted").get<int>()) << m.dump();
  }
  // Handed the true MUAPs of 7 units in a noise-free recording, the bound finds some by both
  // rules.
  EXPECT_GE(methods[1].at("recovered_per_iteration")[1].get<int>(), 1) << methods[1].dump();
  EXPECT_GE(methods[1].at("published_recovered_per_iteration")[1].get<int>(), 1)
      << methods[1].dump();
  // BMISS fits each recovered unit in one of the two muscles and says whether it is the true
  // unit's.
  const auto& errors = methods[0].at("property_errors");
  const auto n_fitted = errors.at("depth_mm").at("n").get<std::size_t>();
  EXPECT_EQ(errors.at("per_unit").at("muscle_right").size(), n_fitted);
  EXPECT_LE(errors.at("muscle_right").get<std::size_t>(), n_fitted);
  EXPECT_EQ(methods[0].at("iteration_time_s").size(), 2U);
}
