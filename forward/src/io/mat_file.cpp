#include "myotwin/forward/io/mat_file.hpp"

#include <cstdint>

#include "myotwin/core/error.hpp"

namespace myotwin::forward::mat {

FilePtr create_v5(const std::filesystem::path& path) {
  // Without a header text matio writes "... Created by: libmatio ... on <date and time>".
  FilePtr mat(Mat_CreateVer(path.c_str(), "MATLAB 5.0 MAT-file, written by myotwin", MAT_FT_MAT5));
  if (!mat)
    throw IoError(path.string() + ": cannot create MATLAB file");
  return mat;
}

std::size_t n_elements(const matvar_t* v) {
  std::size_t n = 1;
  for (int d = 0; d < v->rank; ++d)
    n *= v->dims[d];
  return n;
}

bool numeric_values(const matvar_t* v, std::vector<double>& out) {
  out.clear();
  if (v == nullptr || v->isComplex || v->isLogical)
    return false;
  switch (v->class_type) {
  case MAT_C_DOUBLE:
  case MAT_C_SINGLE:
  case MAT_C_INT8:
  case MAT_C_UINT8:
  case MAT_C_INT16:
  case MAT_C_UINT16:
  case MAT_C_INT32:
  case MAT_C_UINT32:
  case MAT_C_INT64:
  case MAT_C_UINT64:
    break;
  default:
    return false;
  }
  const std::size_t n = n_elements(v);
  if (n == 0)
    return true;
  if (v->data == nullptr)
    return false;
  out.resize(n);
  const void* d = v->data;
  for (std::size_t i = 0; i < n; ++i) {
    switch (v->data_type) {
    case MAT_T_DOUBLE:
      out[i] = static_cast<const double*>(d)[i];
      break;
    case MAT_T_SINGLE:
      out[i] = static_cast<const float*>(d)[i];
      break;
    case MAT_T_INT8:
      out[i] = static_cast<const std::int8_t*>(d)[i];
      break;
    case MAT_T_UINT8:
      out[i] = static_cast<const std::uint8_t*>(d)[i];
      break;
    case MAT_T_INT16:
      out[i] = static_cast<const std::int16_t*>(d)[i];
      break;
    case MAT_T_UINT16:
      out[i] = static_cast<const std::uint16_t*>(d)[i];
      break;
    case MAT_T_INT32:
      out[i] = static_cast<const std::int32_t*>(d)[i];
      break;
    case MAT_T_UINT32:
      out[i] = static_cast<const std::uint32_t*>(d)[i];
      break;
    case MAT_T_INT64:
      out[i] = static_cast<double>(static_cast<const std::int64_t*>(d)[i]);
      break;
    case MAT_T_UINT64:
      out[i] = static_cast<double>(static_cast<const std::uint64_t*>(d)[i]);
      break;
    default:
      out.clear();
      return false;
    }
  }
  return true;
}

matvar_t* double_var(const char* name, std::size_t rows, std::size_t cols, double* data) {
  std::size_t dims[2] = {rows, cols};
  return Mat_VarCreate(name, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, data, MAT_F_DONT_COPY_DATA);
}

void write_var(mat_t* mat, matvar_t* var, const std::filesystem::path& path,
               const std::string& name) {
  VarPtr owned(var);
  if (var == nullptr || mat == nullptr || Mat_VarWrite(mat, var, MAT_COMPRESSION_NONE) != 0)
    throw IoError(path.string() + ": cannot write MATLAB variable " + name);
}

} // namespace myotwin::forward::mat
