#include <cmath>
#include <fstream>
#include <numbers>

#include <gtest/gtest.h>
#include <matio.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/random.hpp"
#include "myotwin/forward/io/emg_file.hpp"
#include "myotwin/inversion/preprocess.hpp"
#include "test_support.hpp"

namespace mi = myotwin::inversion;
using myotwin::BadInput;
using myotwin::testing::expect_error;

namespace {

Eigen::RowVectorXd sine(double f_Hz, double fs_Hz, Eigen::Index n) {
  Eigen::RowVectorXd x(n);
  for (Eigen::Index k = 0; k < n; ++k)
    x[k] = std::sin(2.0 * std::numbers::pi * f_Hz * static_cast<double>(k) / fs_Hz);
  return x;
}

double rms_middle(const Eigen::RowVectorXd& x) {
  const Eigen::Index n = x.size();
  return std::sqrt(x.segment(n / 4, n / 2).squaredNorm() / static_cast<double>(n / 2));
}

} // namespace

TEST(FilterSignals, NotchRemovesThePowerlineAndKeepsTheEmgBand) {
  const double fs = 2048.0;
  Eigen::MatrixXd x(3, 8192);
  x.row(0) = sine(50.0, fs, 8192);
  x.row(1) = sine(150.0, fs, 8192) * 0.0 + sine(120.0, fs, 8192);
  x.row(2) = Eigen::RowVectorXd::Constant(8192, 3.0) + sine(5.0, fs, 8192);
  mi::PreprocessParams p;
  p.powerline_Hz = 50.0;
  mi::filter_signals(x, fs, p);
  const double s2 = 1.0 / std::sqrt(2.0);
  EXPECT_LT(rms_middle(x.row(0)), 1e-3 * s2);                     // < -60 dB at 50 Hz
  EXPECT_NEAR(rms_middle(x.row(1)), s2, 0.02 * s2);               // 120 Hz passes
  EXPECT_LT(std::abs(x.row(2).segment(2048, 4096).mean()), 1e-6); // DC removed
  EXPECT_LT(rms_middle(x.row(2)), 0.01);                          // 5 Hz: two 2nd-order passes
}

TEST(Preprocess, RejectsFlatSaturatedAndNoisyChannelsWithAReport) {
  const double fs = 2048.0;
  myotwin::Rng rng(4);
  Eigen::MatrixXd x(9, 4096);
  for (Eigen::Index c = 0; c < x.rows(); ++c)
    for (Eigen::Index k = 0; k < x.cols(); ++k)
      x(c, k) = 1e-5 * rng.normal();
  x.row(0).setConstant(1e-3);                                             // flat
  x.row(4) *= 20.0;                                                       // noisy
  x.row(8) = (x.row(8).array() * 1e5).cwiseMax(0.5).cwiseMin(0.8) * 1e-5; // clipped
  myotwin::MatrixXi64 grid(9, 2);
  for (Eigen::Index c = 0; c < 9; ++c) {
    grid(c, 0) = c / 3;
    grid(c, 1) = c % 3;
  }
  const auto r = mi::preprocess(x, fs, grid, {});
  EXPECT_EQ(r.channels[0].rejected, "flat");
  EXPECT_EQ(r.channels[4].rejected, "noisy");
  EXPECT_EQ(r.channels[8].rejected, "saturated");
  EXPECT_EQ(r.kept, (std::vector<std::int64_t>{1, 2, 3, 5, 6, 7}));
  EXPECT_NE(r.channels[4].detail.find("neighbours"), std::string::npos);
  const auto json = mi::to_json(r);
  EXPECT_EQ(json["n_kept"], 6);
  EXPECT_EQ(json["channels"][4]["rejected"], "noisy");
}

TEST(Preprocess, WithoutAGridKeepsTheChannelsOverAnActiveMuscle) {
  // 20 channels around a limb: 3 over the active muscle at 15 times the others' rms (as a
  // wrapped grid over ED), one bad contact at 100 times.
  myotwin::Rng rng(5);
  Eigen::MatrixXd x(20, 4096);
  for (Eigen::Index c = 0; c < x.rows(); ++c)
    for (Eigen::Index k = 0; k < x.cols(); ++k)
      x(c, k) = 1e-5 * rng.normal();
  for (const Eigen::Index c : {6, 7, 8})
    x.row(c) *= 15.0;
  x.row(15) *= 100.0;
  const auto r = mi::preprocess(x, 2048.0, myotwin::MatrixXi64(), {});
  for (const Eigen::Index c : {6, 7, 8})
    EXPECT_EQ(r.channels[static_cast<std::size_t>(c)].rejected, "") << c;
  EXPECT_EQ(r.channels[15].rejected, "noisy");
  EXPECT_NE(r.channels[15].detail.find("90th percentile"), std::string::npos)
      << r.channels[15].detail;
  EXPECT_EQ(r.kept.size(), 19U);
}

TEST(ReadEmg, ReadsEmgH5AndTheDemuseMatWithTheirGrid) {
  const myotwin::testing::TempDir dir;
  myotwin::forward::EmgResult emg;
  emg.fs_Hz = 2048.0;
  emg.emg = Eigen::MatrixXd::Random(6, 500);
  emg.emg_clean = emg.emg;
  emg.snr_dB = Eigen::VectorXd::Zero(6);
  emg.noise_rms_V = Eigen::VectorXd::Zero(6);
  emg.spike_samples = {{1, 2}};
  myotwin::forward::ChannelLayout layout;
  layout.grid_row_col.resize(6, 2);
  for (Eigen::Index c = 0; c < 6; ++c) {
    layout.grid_row_col(c, 0) = c % 2; // 2 rows x 3 columns, column-major like MATLAB
    layout.grid_row_col(c, 1) = c / 2;
  }
  myotwin::forward::write_emg_h5(dir / "emg.h5", emg, {}, layout);
  myotwin::forward::write_emg_mat(dir / "emg.mat", emg, {}, layout);
  for (const auto* name : {"emg.h5", "emg.mat"}) {
    const auto r = myotwin::forward::read_emg(dir / name);
    EXPECT_DOUBLE_EQ(r.fs_Hz, 2048.0) << name;
    EXPECT_TRUE(r.emg == emg.emg) << name;
    EXPECT_TRUE(r.grid_row_col == layout.grid_row_col) << name;
  }
  // A copy cut short says so (it used to report "no sampling rate").
  const std::string bytes = myotwin::read_text_file(dir / "emg.mat");
  {
    std::ofstream cut(dir / "cut.mat", std::ios::binary);
    cut.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  myotwin::testing::expect_error<myotwin::IoError>(
      [&] { myotwin::forward::read_emg(dir / "cut.mat"); },
      {"cut.mat: truncated MATLAB file", "missing"});
}

TEST(ReadEmg, ReadsCsvWithATimeColumnAndChecksTheRate) {
  const myotwin::testing::TempDir dir;
  {
    std::ofstream f(dir / "emg.csv");
    f << "time_s,ch1,ch2\n";
    for (int k = 0; k < 100; ++k)
      f << k / 1000.0 << "," << k << "," << -k << "\n";
  }
  const auto r = myotwin::forward::read_emg(dir / "emg.csv");
  EXPECT_NEAR(r.fs_Hz, 1000.0, 1e-6);
  EXPECT_EQ(r.emg.rows(), 2);
  EXPECT_EQ(r.emg(1, 99), -99.0);
  EXPECT_EQ(r.channel_names, (std::vector<std::string>{"ch1", "ch2"}));
  myotwin::forward::EmgReadOptions o;
  o.fs_Hz = 2048.0;
  expect_error<BadInput>([&] { myotwin::forward::read_emg(dir / "emg.csv", o); },
                         {"emg.csv", "fs_Hz = 2048", "does not match the time column"});
  o = {};
  o.duration_s = 1.0;
  expect_error<BadInput>([&] { myotwin::forward::read_emg(dir / "emg.csv", o); },
                         {"emg.csv", "100 samples", "duration_s = 1 was declared"});
}

TEST(ReadEmg, KeepsTheFirstSampleOfACsvWithoutAHeader) {
  // The first row used to be taken as the header, losing a sample (issue 23).
  const myotwin::testing::TempDir dir;
  {
    std::ofstream f(dir / "plain.csv");
    f << "# fs_Hz = 2048\n";
    for (int k = 0; k < 10; ++k)
      f << k << "," << -k << ",1e-6\n";
  }
  const auto r = myotwin::forward::read_emg(dir / "plain.csv");
  ASSERT_EQ(r.emg.rows(), 3);
  ASSERT_EQ(r.emg.cols(), 10);
  EXPECT_EQ(r.emg(0, 0), 0.0);
  EXPECT_EQ(r.emg(1, 9), -9.0);
  EXPECT_EQ(r.channel_names, (std::vector<std::string>{"ch0", "ch1", "ch2"}));
}

TEST(ReadEmg, NamesTheFileLineAndValueOfBadCsv) {
  const myotwin::testing::TempDir dir;
  {
    std::ofstream f(dir / "bad.csv");
    f << "# fs_Hz = 2048\nch1,ch2\n1,2\n3,x\n";
  }
  expect_error<BadInput>([&] { myotwin::forward::read_emg(dir / "bad.csv"); },
                         {"bad.csv: line 4", "ch2", "'x'", "expected a number"});
  {
    std::ofstream f(dir / "nan.csv");
    f << "# fs_Hz = 2048\nch1,ch2\n1,2\n3,nan\n";
  }
  expect_error<BadInput>([&] { myotwin::forward::read_emg(dir / "nan.csv"); },
                         {"nan.csv", "channel 1 sample 1", "finite"});
  {
    std::ofstream f(dir / "nofs.csv");
    f << "ch1\n1\n2\n";
  }
  expect_error<BadInput>([&] { myotwin::forward::read_emg(dir / "nofs.csv"); },
                         {"nofs.csv", "no sampling rate"});
  expect_error<myotwin::IoError>([&] { myotwin::forward::read_emg(dir / "missing.mat"); },
                                 {"missing.mat", "not found"});
  std::ofstream(dir / "emg.xyz") << "1\n";
  expect_error<BadInput>([&] { myotwin::forward::read_emg(dir / "emg.xyz"); },
                         {"emg.xyz", "expected .h5, .hdf5, .mat, or a text table"});
}

TEST(ReadEmg, ReadsMueditsSignalStructAndASamplesByChannelsMatrix) {
  const myotwin::testing::TempDir dir;
  Eigen::MatrixXd data(3, 50); // channels x samples
  for (Eigen::Index c = 0; c < 3; ++c)
    for (Eigen::Index k = 0; k < 50; ++k)
      data(c, k) = static_cast<double>(100 * c + k);
  {
    const std::string file = (dir / "muedit.mat").string();
    mat_t* mat = Mat_CreateVer(file.c_str(), nullptr, MAT_FT_MAT73);
    ASSERT_NE(mat, nullptr);
    const char* fields[] = {"data", "fsamp"};
    std::size_t one[2] = {1, 1};
    matvar_t* signal = Mat_VarCreateStruct("signal", 2, one, fields, 2);
    std::size_t dims[2] = {3, 50};
    double fs = 2048.0;
    Mat_VarSetStructFieldByName(
        signal, "data", 0,
        Mat_VarCreate(nullptr, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, data.data(), 0));
    Mat_VarSetStructFieldByName(signal, "fsamp", 0,
                                Mat_VarCreate(nullptr, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, one, &fs, 0));
    Mat_VarWrite(mat, signal, MAT_COMPRESSION_NONE);
    Mat_VarFree(signal);
    // A samples x channels matrix `Data` with `fsamp`, as OT BioLab exports.
    const std::string file2 = (dir / "otb.mat").string();
    mat_t* mat2 = Mat_CreateVer(file2.c_str(), nullptr, MAT_FT_MAT5);
    Eigen::MatrixXd t = data.transpose();
    std::size_t dims2[2] = {50, 3};
    matvar_t* v = Mat_VarCreate("Data", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims2, t.data(), 0);
    Mat_VarWrite(mat2, v, MAT_COMPRESSION_NONE);
    Mat_VarFree(v);
    v = Mat_VarCreate("fsamp", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, one, &fs, 0);
    Mat_VarWrite(mat2, v, MAT_COMPRESSION_NONE);
    Mat_VarFree(v);
    Mat_Close(mat2);
    Mat_Close(mat);
  }
  for (const auto* name : {"muedit.mat", "otb.mat"}) {
    const auto r = myotwin::forward::read_emg(dir / name);
    EXPECT_DOUBLE_EQ(r.fs_Hz, 2048.0) << name;
    EXPECT_TRUE(r.emg == data) << name;
  }
}
