#pragma once

/// \file mat_file.hpp
/// MATLAB .mat files as a tree of values: every reader and writer of the project (discharge
/// import, EMG and decomposition files, EMG input) goes through these two classes. matio stays
/// inside core/src/mat_file.cpp.
///
/// Writing makes version 5 files (scipy.io.loadmat, openhdemg and MATLAB read them) whose
/// 116-byte header text is fixed, so the same values give the same bytes. Reading takes version
/// 5 and 7.3 (HDF5-based) files.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace myotwin::mat {

/// One MATLAB array: numeric (real or complex, any class, the values held as doubles),
/// logical, char, cell or struct.
struct Array {
  enum class Kind { numeric, logical, text, cell, structure, other };
  Kind kind = Kind::numeric;
  /// MATLAB's class name: "double", "single", "int8" ... "uint64", "logical", "char", "cell",
  /// "struct", or "sparse", "object", "function", "opaque" (read only, kind `other`).
  std::string class_name = "double";
  /// Dimensions (at least two).
  std::vector<std::size_t> dims = {0, 0};
  /// True for a complex numeric array (whose values are not read).
  bool complex = false;
  /// Numeric and logical arrays: the elements, column-major. Writing: always class double.
  std::vector<double> values;
  /// Char arrays: the characters (one byte each; wider characters keep their low byte).
  std::string text;
  /// Cell arrays: the elements, column-major.
  std::vector<Array> elements;
  /// Structs: the field names, and for element e field f the value fields[e * #names + f].
  std::vector<std::string> field_names;
  std::vector<Array> fields;

  /// Number of elements (the product of dims).
  std::size_t numel() const;
  /// Real (not complex) numeric of any class.
  bool is_real_numeric() const { return kind == Kind::numeric && !complex; }
  /// At most one dimension longer than 1.
  bool is_vector() const;
  /// A real numeric scalar's value; nullopt for anything else.
  std::optional<double> scalar() const;
  /// Field `name` of struct element `element`; nullptr when absent or not a struct.
  const Array* field(std::string_view name, std::size_t element = 0) const;

  /// A rows x cols double matrix, copied from column-major `data` (may be null when empty).
  static Array matrix(std::size_t rows, std::size_t cols, const double* data);
  /// A 1 x n double row.
  static Array row(const std::vector<double>& values);
  /// A 1 x 1 double.
  static Array number(double value);
  /// A 1 x n char row.
  static Array string(std::string text);
  /// A rows x cols cell whose elements are 0 x 0 doubles until set.
  static Array cell(std::size_t rows, std::size_t cols);
  /// A 1 x 1 struct with these fields, in this order.
  static Array structure(std::vector<std::pair<std::string, Array>> fields);
};

/// A MATLAB v5 file being written. Variables are written uncompressed in the order given.
/// Write into a temporary path and rename (write_atomically()): a failed write leaves a part.
class Writer {
public:
  /// \throws IoError naming `path` when it cannot be created.
  explicit Writer(const std::filesystem::path& path);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  /// Writes `value` as variable `name`; numeric arrays as double, logical as logical.
  /// \throws IoError naming the file and `name` when the write fails; BadInput for an array of
  /// kind `other` or a complex one.
  void write(const std::string& name, const Array& value);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A MATLAB file (v5, or v7.3) opened for reading.
class Reader {
public:
  /// \throws IoError naming `path` when it is missing, not a MATLAB file, or a v5 file that
  /// ends inside a variable (truncated: the message says which variable and how many bytes
  /// are missing).
  explicit Reader(const std::filesystem::path& path);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  /// Variable `name`; nullopt when the file has none of that name.
  /// \throws IoError naming the file and `name` when it is listed but cannot be read.
  std::optional<Array> read(const std::string& name) const;
  /// The variables' names, in the file's order.
  const std::vector<std::string>& names() const;
  /// The file (for messages).
  const std::filesystem::path& path() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace myotwin::mat
