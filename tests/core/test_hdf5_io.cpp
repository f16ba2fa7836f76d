#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "test_support.hpp"

using myotwin::H5Reader;
using myotwin::H5Writer;
using myotwin::testing::expect_error;
using myotwin::testing::TempDir;

TEST(Hdf5, RoundTripsNamedArraysAndAttributes) {
  TempDir dir;
  const auto path = dir / "arrays.h5";
  Eigen::MatrixXd a(3, 4);
  for (int i = 0; i < a.size(); ++i)
    a.data()[i] = 0.5 * i - 1.0 / (i + 1);
  myotwin::MatrixXi64 b(2, 2);
  b << 1, -2, 3, 4000000000LL;
  Eigen::VectorXd v = Eigen::VectorXd::LinSpaced(10000, 0.0, 1.0); // chunked and deflated
  {
    H5Writer w(path);
    w.write("group/a", a, {{"unit", std::string("V")}, {"fs_Hz", 2048.0}});
    w.write("b", b);
    w.write_vector("group/sub/v", v);
    w.set_attributes("/", {{"version", std::string("0.1.0")}, {"seed", std::int64_t{1993}}});
    w.commit();
  }
  H5Reader r(path);
  EXPECT_TRUE(r.contains("group/a"));
  EXPECT_FALSE(r.contains("group/missing/x"));
  EXPECT_EQ(r.shape("group/a"), (std::vector<std::size_t>{3, 4}));
  EXPECT_EQ(r.read_double("group/a"), a);
  EXPECT_EQ(r.read_int64("b"), b);
  EXPECT_EQ(r.read_double("group/sub/v"), v);
  EXPECT_EQ(r.shape("group/sub/v"), (std::vector<std::size_t>{10000}));
  const auto attrs = r.attributes("group/a");
  EXPECT_EQ(std::get<std::string>(attrs.at("unit")), "V");
  EXPECT_EQ(std::get<double>(attrs.at("fs_Hz")), 2048.0);
  const auto root = r.attributes("/");
  EXPECT_EQ(std::get<std::int64_t>(root.at("seed")), 1993);
  EXPECT_EQ(r.list("/"), (std::vector<std::string>{"b", "group"}));
  EXPECT_EQ(r.list("group"), (std::vector<std::string>{"a", "sub"}));
}

TEST(Hdf5, LeavesNoFileWhenNotCommitted) {
  TempDir dir;
  const auto path = dir / "partial.h5";
  try {
    H5Writer w(path);
    w.write("x", Eigen::MatrixXd::Ones(2, 2));
    throw std::runtime_error("failure half-way");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(Hdf5, ReportsMissingFilesDatasetsAndWrongTypes) {
  TempDir dir;
  expect_error<myotwin::IoError>([&] { H5Reader r(dir / "none.h5"); }, {"none.h5", "no such file"});
  { std::ofstream(dir / "text.h5") << "not hdf5"; }
  expect_error<myotwin::IoError>([&] { H5Reader r(dir / "text.h5"); }, {"not an HDF5 file"});
  const auto path = dir / "a.h5";
  {
    H5Writer w(path);
    w.write("x", Eigen::MatrixXd::Ones(2, 2));
    expect_error<myotwin::BadInput>([&] { w.write("x", Eigen::MatrixXd::Ones(1, 1)); },
                                    {"dataset x written twice"});
    w.commit();
  }
  H5Reader r(path);
  expect_error<myotwin::BadInput>([&] { (void)r.read_double("y"); }, {"a.h5", "no dataset y"});
  expect_error<myotwin::BadInput>([&] { (void)r.read_int64("x"); }, {"not an integer array"});
}

TEST(Hdf5, TheSameDataGiveTheSameBytes) {
  TempDir dir;
  for (const char* name : {"a.h5", "b.h5"}) {
    H5Writer w(dir / name);
    w.write("g/x", Eigen::MatrixXd::Constant(3, 3, 2.0));
    w.write_vector("g/h/v", Eigen::VectorXd::LinSpaced(5000, 0, 1));
    w.commit();
    std::this_thread::sleep_for(std::chrono::milliseconds(1100)); // a second apart
  }
  std::ifstream a(dir / "a.h5", std::ios::binary), b(dir / "b.h5", std::ios::binary);
  const std::string sa((std::istreambuf_iterator<char>(a)), {}),
      sb((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(sa, sb);
}

TEST(Hdf5, WritesThreeDimensionalArraysAndChecksTheirSize) {
  TempDir dir;
  const auto path = dir / "cube.h5";
  {
    H5Writer w(path);
    const std::vector<double> data(2 * 3 * 4, 1.5);
    w.write_3d("cube", data, {2, 3, 4});
    expect_error<myotwin::BadInput>(
        [&] {
          w.write_3d("bad", data, {2, 3, 5});
        },
        {"bad", "24 values", "2 x 3 x 5"});
    w.commit();
  }
  // The 2-D reader sees the dataset and names its rank.
  H5Reader r(path);
  expect_error<myotwin::BadInput>([&] { (void)r.read_double("cube"); }, {"cube", "rank 3"});
}

TEST(Hdf5, ReadsAThreeDimensionalArrayBackInCOrder) {
  TempDir dir;
  const auto path = dir / "cube.h5";
  std::vector<double> data(2 * 3 * 4);
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = 0.5 * static_cast<double>(i) - 3.0;
  {
    H5Writer w(path);
    w.write_3d("cube", data, {2, 3, 4});
    w.commit();
  }
  H5Reader r(path);
  EXPECT_EQ(r.shape("cube"), (std::vector<std::size_t>{2, 3, 4}));
  EXPECT_EQ(r.read_double_values("cube"), data);
  expect_error<myotwin::BadInput>([&] { (void)r.read_double_values("nothing"); }, {"nothing"});
}
