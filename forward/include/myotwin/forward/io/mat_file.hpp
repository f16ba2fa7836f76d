#pragma once

/// \file mat_file.hpp
/// The small matio helpers every MATLAB reader and writer of the project shares (forward's
/// discharge import and EMG writer, inversion's EMG input and decomposition writer): owning
/// handles, numeric values of a variable, and writing a double matrix with a clear error.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <matio.h>

namespace myotwin::forward::mat {

struct FileCloser {
  void operator()(mat_t* m) const { Mat_Close(m); }
};
struct VarFreer {
  void operator()(matvar_t* v) const { Mat_VarFree(v); }
};
/// An open MATLAB file, closed when it goes.
using FilePtr = std::unique_ptr<mat_t, FileCloser>;
/// A variable, freed when it goes.
using VarPtr = std::unique_ptr<matvar_t, VarFreer>;

/// Creates a MATLAB v5 file at `path` whose 116-byte header text is fixed ("MATLAB 5.0 MAT-file,
/// written by myotwin", no creation time), so the same data give the same bytes.
/// \throws IoError naming `path` when matio cannot create it.
FilePtr create_v5(const std::filesystem::path& path);

/// Number of elements of `v` (the product of its dimensions).
std::size_t n_elements(const matvar_t* v);

/// The elements of a real (not complex, not logical) numeric array of any class (double,
/// single, integers) as doubles, column-major, into `out`; false (and `out` empty) when `v` is
/// null, not such an array, or has no data. An empty array gives true and an empty `out`.
bool numeric_values(const matvar_t* v, std::vector<double>& out);

/// A double matrix variable named `name` (nullptr inside a cell) over `data` (column-major
/// rows x cols, not copied: it must outlive the variable); nullptr if matio refuses.
matvar_t* double_var(const char* name, std::size_t rows, std::size_t cols, double* data);

/// Writes `var` (taking ownership and freeing it) into `mat` uncompressed.
/// \throws IoError naming `path` and `name` when `var` is null or the write fails.
void write_var(mat_t* mat, matvar_t* var, const std::filesystem::path& path,
               const std::string& name);

} // namespace myotwin::forward::mat
