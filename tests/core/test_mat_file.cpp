// MATLAB files as value trees: what the writer writes reads back (numbers, text, cells,
// structs), numbers of every class written by matio itself read as doubles, the same values
// give the same bytes, a truncated file is refused naming what is missing, and a failed write
// names the file and variable.

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>
#include <matio.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/mat_file.hpp"
#include "test_support.hpp"

namespace mat = myotwin::mat;
using myotwin::testing::TempDir;

namespace {

mat::Array nested() {
  mat::Array cell = mat::Array::cell(2, 1);
  cell.elements[0] = mat::Array::row({1.0, 2.0, 3.0});
  cell.elements[1] = mat::Array::string("ED");
  const double m[6] = {1, 2, 3, 4, 5, 6};
  return mat::Array::structure({{"data", mat::Array::matrix(2, 3, m)},
                                {"fsamp", mat::Array::number(2048.0)},
                                {"names", std::move(cell)},
                                {"empty", mat::Array::matrix(1, 0, nullptr)}});
}

void write_file(const std::filesystem::path& path) {
  mat::Writer w(path);
  w.write("signal", nested());
  w.write("x", mat::Array::number(-0.5));
}

} // namespace

TEST(MatFile, WhatTheWriterWritesReadsBackAsTheSameTree) {
  TempDir dir;
  write_file(dir / "a.mat");
  const mat::Reader r(dir / "a.mat");
  EXPECT_EQ(r.names(), (std::vector<std::string>{"signal", "x"}));
  EXPECT_FALSE(r.read("absent").has_value());
  const auto x = r.read("x");
  ASSERT_TRUE(x.has_value());
  EXPECT_EQ(x->scalar(), -0.5);
  const auto s = r.read("signal");
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->kind, mat::Array::Kind::structure);
  EXPECT_EQ(s->field_names, (std::vector<std::string>{"data", "fsamp", "names", "empty"}));
  const mat::Array* data = s->field("data");
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(data->dims, (std::vector<std::size_t>{2, 3}));
  EXPECT_EQ(data->values, (std::vector<double>{1, 2, 3, 4, 5, 6})); // column-major kept
  EXPECT_EQ(s->field("fsamp")->scalar(), 2048.0);
  const mat::Array* names = s->field("names");
  ASSERT_NE(names, nullptr);
  ASSERT_EQ(names->kind, mat::Array::Kind::cell);
  EXPECT_EQ(names->elements[0].values, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(names->elements[1].kind, mat::Array::Kind::text);
  EXPECT_EQ(names->elements[1].text, "ED");
  EXPECT_EQ(s->field("empty")->dims, (std::vector<std::size_t>{1, 0}));
  EXPECT_EQ(s->field("nope"), nullptr);
}

TEST(MatFile, TheSameValuesGiveTheSameBytes) {
  TempDir dir;
  write_file(dir / "a.mat");
  write_file(dir / "b.mat");
  const std::string a = myotwin::read_text_file(dir / "a.mat");
  EXPECT_EQ(a, myotwin::read_text_file(dir / "b.mat"));
  EXPECT_EQ(a.substr(0, 39), "MATLAB 5.0 MAT-file, written by myotwin");
}

TEST(MatFile, NumbersOfEveryClassWrittenByMatioReadAsDoublesAndTextIsNotNumeric) {
  TempDir dir;
  const auto path = dir / "m.mat";
  mat_t* m = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
  ASSERT_NE(m, nullptr);
  std::int32_t ints[6] = {1, -2, 3, 4, 5, -6};
  std::size_t dims[2] = {2, 3};
  matvar_t* v = Mat_VarCreate("a", MAT_C_INT32, MAT_T_INT32, 2, dims, ints, MAT_F_DONT_COPY_DATA);
  Mat_VarWrite(m, v, MAT_COMPRESSION_NONE);
  Mat_VarFree(v);
  float f[2] = {0.5F, 2.5F};
  std::size_t fdims[2] = {1, 2};
  v = Mat_VarCreate("f", MAT_C_SINGLE, MAT_T_SINGLE, 2, fdims, f, MAT_F_DONT_COPY_DATA);
  Mat_VarWrite(m, v, MAT_COMPRESSION_ZLIB);
  Mat_VarFree(v);
  Mat_Close(m);
  const mat::Reader r(path);
  const auto a = r.read("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(a->is_real_numeric());
  EXPECT_EQ(a->class_name, "int32");
  EXPECT_EQ(a->values, (std::vector<double>{1, -2, 3, 4, 5, -6}));
  EXPECT_FALSE(a->scalar().has_value());
  const auto fv = r.read("f");
  ASSERT_TRUE(fv.has_value());
  EXPECT_EQ(fv->class_name, "single");
  EXPECT_EQ(fv->values, (std::vector<double>{0.5, 2.5}));
  // A char array is not numeric.
  EXPECT_FALSE(mat::Array::string("abc").is_real_numeric());
  EXPECT_FALSE(mat::Array::string("1").scalar().has_value());
}

TEST(MatFile, ATruncatedFileIsRefusedNamingTheVariableAndTheMissingBytes) {
  TempDir dir;
  write_file(dir / "a.mat");
  const std::string bytes = myotwin::read_text_file(dir / "a.mat");
  // Cut inside the second variable, and inside the first.
  for (const std::size_t keep : {bytes.size() - 3, std::size_t{200}}) {
    const auto cut = dir / ("cut" + std::to_string(keep) + ".mat");
    std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(keep));
    myotwin::testing::expect_error<myotwin::IoError>(
        [&] { mat::Reader r(cut); },
        {cut.string(), "truncated MATLAB file: variable " + std::string(keep == 200 ? "1" : "2"),
         "the file has " + std::to_string(keep), "missing"});
  }
  myotwin::testing::expect_error<myotwin::IoError>([&] { mat::Reader r(dir / "none.mat"); },
                                                   {"none.mat: file not found"});
}

TEST(MatFile, AFailedWriteNamesTheFileAndTheVariable) {
  TempDir dir;
  mat::Writer w(dir / "x.mat");
  mat::Array bad = mat::Array::matrix(2, 2, nullptr);
  bad.values.pop_back();
  myotwin::testing::expect_error<myotwin::BadInput>(
      [&] { w.write("SIG", bad); }, {"x.mat: MATLAB variable SIG", "needs 4 values, has 3"});
  myotwin::testing::expect_error<myotwin::IoError>(
      [&] { mat::Writer w2(dir / "no" / "such" / "x.mat"); }, {"cannot create MATLAB file"});
}

TEST(MatFile, AVariableThatDeclaresMoreThanItsFileCanHoldIsRefusedBeforeAllocating) {
  TempDir dir;
  {
    mat::Writer w(dir / "a.mat");
    w.write("x", mat::Array::matrix(2, 2, nullptr));
  }
  // The first variable's dimensions subelement: header 128, matrix tag 8, array flags 16,
  // dimensions tag 8, then two int32. Claim 100000 x 100000 doubles (80 GB) in a 200-byte file.
  std::string bytes = myotwin::read_text_file(dir / "a.mat");
  ASSERT_GT(bytes.size(), 168U);
  for (const std::size_t at : {std::size_t{160}, std::size_t{164}}) {
    const std::int32_t huge = 100000;
    std::memcpy(bytes.data() + at, &huge, sizeof huge);
  }
  {
    std::ofstream out(dir / "b.mat", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const mat::Reader r(dir / "b.mat");
  myotwin::testing::expect_error<myotwin::IoError>(
      [&] { (void)r.read("x"); },
      {"b.mat: MATLAB variable x declares 10000000000 elements", "the file is damaged"});
}

TEST(MatFile, ACellElementWhoseDimensionsDoNotFitInsideItIsRefusedBeforeMatioAllocates) {
  TempDir dir;
  {
    mat::Writer w(dir / "a.mat");
    mat::Array cell = mat::Array::cell(1, 1);
    cell.elements[0] = mat::Array::row({1.0, 2.0});
    w.write("MUPulses", cell);
  }
  // The cell's element: header 128, the cell's tag 8, flags 16, dimensions 16, name "MUPulses"
  // 16, then the element's matrix tag 8 and flags 16: its dimensions tag at byte 208. Claim
  // 65536 bytes of dimensions (the fuzzer's finding: matio then allocated 4 GB).
  std::string bytes = myotwin::read_text_file(dir / "a.mat");
  ASSERT_GT(bytes.size(), 216U);
  std::uint32_t type = 0;
  std::memcpy(&type, bytes.data() + 208, 4);
  ASSERT_EQ(type, 5U); // miINT32: the dimensions
  const std::uint32_t claimed = 65536;
  std::memcpy(bytes.data() + 212, &claimed, 4);
  std::ofstream(dir / "b.mat", std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  myotwin::testing::expect_error<myotwin::IoError>(
      [&] { mat::Reader r(dir / "b.mat"); },
      {"b.mat: damaged MATLAB file: variable 1", "its dimensions do not fit inside it"});
  // The file as written reads.
  const mat::Reader r(dir / "a.mat");
  ASSERT_TRUE(r.read("MUPulses").has_value());
}

TEST(MatFile, AFileWithoutAVersion5Or73HeaderIsRefusedBeforeMatioReadsItAsVersion4) {
  TempDir dir;
  // A version 4 header (type, rows, columns, imaginary flag, name length) whose name length
  // claims 268 MB: matio's version 4 fallback allocated it (fuzz finding).
  const std::int32_t v4[5] = {0, 1, 1, 0, 0x10001000};
  std::ofstream(dir / "v4.mat", std::ios::binary)
      .write(reinterpret_cast<const char*>(v4), sizeof v4);
  std::ofstream(dir / "text.mat") << std::string(300, 'x');
  for (const char* name : {"v4.mat", "text.mat"})
    myotwin::testing::expect_error<myotwin::IoError>(
        [&] { mat::Reader r(dir / name); },
        {std::string(name) + ": not a MATLAB v5 or v7.3 file", "version 4 files are not read"});
}
