#include "myotwin/core/mat_file.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <optional>

#include <matio.h>

#include "myotwin/core/error.hpp"

namespace myotwin::mat {

namespace {

struct FileCloser {
  void operator()(mat_t* m) const { Mat_Close(m); }
};
struct VarFreer {
  void operator()(matvar_t* v) const { Mat_VarFree(v); }
};
using FilePtr = std::unique_ptr<mat_t, FileCloser>;
using VarPtr = std::unique_ptr<matvar_t, VarFreer>;

// ---- Reading: matio's variables as Arrays.

std::string class_name_of(const matvar_t* v) {
  if (v->isLogical)
    return "logical";
  switch (v->class_type) {
  case MAT_C_CELL:
    return "cell";
  case MAT_C_STRUCT:
    return "struct";
  case MAT_C_OBJECT:
    return "object";
  case MAT_C_CHAR:
    return "char";
  case MAT_C_SPARSE:
    return "sparse";
  case MAT_C_DOUBLE:
    return "double";
  case MAT_C_SINGLE:
    return "single";
  case MAT_C_INT8:
    return "int8";
  case MAT_C_UINT8:
    return "uint8";
  case MAT_C_INT16:
    return "int16";
  case MAT_C_UINT16:
    return "uint16";
  case MAT_C_INT32:
    return "int32";
  case MAT_C_UINT32:
    return "uint32";
  case MAT_C_INT64:
    return "int64";
  case MAT_C_UINT64:
    return "uint64";
  case MAT_C_FUNCTION:
    return "function";
  case MAT_C_OPAQUE:
    return "opaque";
  default:
    return "empty";
  }
}

template <typename T> void copy_as_double(const void* data, std::vector<double>& out) {
  const auto* p = static_cast<const T*>(data);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<double>(p[i]);
}

/// The elements of a real numeric or logical array as doubles; false for a data type matio
/// gave that is not a number.
bool numbers_of(const matvar_t* v, std::size_t n, std::vector<double>& out) {
  out.assign(n, 0.0);
  if (n == 0)
    return true;
  if (v->data == nullptr)
    return false;
  switch (v->data_type) {
  case MAT_T_DOUBLE:
    copy_as_double<double>(v->data, out);
    return true;
  case MAT_T_SINGLE:
    copy_as_double<float>(v->data, out);
    return true;
  case MAT_T_INT8:
    copy_as_double<std::int8_t>(v->data, out);
    return true;
  case MAT_T_UINT8:
    copy_as_double<std::uint8_t>(v->data, out);
    return true;
  case MAT_T_INT16:
    copy_as_double<std::int16_t>(v->data, out);
    return true;
  case MAT_T_UINT16:
    copy_as_double<std::uint16_t>(v->data, out);
    return true;
  case MAT_T_INT32:
    copy_as_double<std::int32_t>(v->data, out);
    return true;
  case MAT_T_UINT32:
    copy_as_double<std::uint32_t>(v->data, out);
    return true;
  case MAT_T_INT64:
    copy_as_double<std::int64_t>(v->data, out);
    return true;
  case MAT_T_UINT64:
    copy_as_double<std::uint64_t>(v->data, out);
    return true;
  default:
    out.clear();
    return false;
  }
}

std::string text_of(const matvar_t* v, std::size_t n) {
  std::string s;
  if (v->data == nullptr)
    return s;
  s.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (v->data_type) {
    case MAT_T_UINT16:
    case MAT_T_UTF16:
      s[i] = static_cast<char>(static_cast<const std::uint16_t*>(v->data)[i] & 0xff);
      break;
    case MAT_T_UINT32:
    case MAT_T_UTF32:
      s[i] = static_cast<char>(static_cast<const std::uint32_t*>(v->data)[i] & 0xff);
      break;
    default:
      s[i] = static_cast<const char*>(v->data)[i];
    }
  }
  return s;
}

Array to_array(const matvar_t* v) {
  Array a;
  a.class_name = class_name_of(v);
  a.dims.assign(v->dims, v->dims + v->rank);
  while (a.dims.size() < 2)
    a.dims.push_back(1);
  const std::size_t n = a.numel();
  if (v->isLogical) {
    a.kind = Array::Kind::logical;
    numbers_of(v, n, a.values);
    return a;
  }
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
    a.kind = Array::Kind::numeric;
    a.complex = v->isComplex != 0;
    if (!a.complex && !numbers_of(v, n, a.values))
      a.kind = Array::Kind::other;
    return a;
  case MAT_C_CHAR:
    a.kind = Array::Kind::text;
    a.text = text_of(v, n);
    return a;
  case MAT_C_CELL:
    a.kind = Array::Kind::cell;
    a.elements.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const matvar_t* e = Mat_VarGetCell(const_cast<matvar_t*>(v), static_cast<int>(i));
      a.elements.push_back(e != nullptr ? to_array(e) : Array::matrix(0, 0, nullptr));
    }
    return a;
  case MAT_C_STRUCT: {
    a.kind = Array::Kind::structure;
    const unsigned n_fields = Mat_VarGetNumberOfFields(const_cast<matvar_t*>(v));
    char* const* names = Mat_VarGetStructFieldnames(v);
    for (unsigned f = 0; f < n_fields; ++f)
      a.field_names.emplace_back(names != nullptr && names[f] != nullptr ? names[f] : "");
    for (std::size_t e = 0; e < n; ++e)
      for (unsigned f = 0; f < n_fields; ++f) {
        const matvar_t* value = Mat_VarGetStructFieldByIndex(const_cast<matvar_t*>(v), f, e);
        a.fields.push_back(value != nullptr ? to_array(value) : Array::matrix(0, 0, nullptr));
      }
    return a;
  }
  default:
    a.kind = Array::Kind::other;
    return a;
  }
}

// ---- A v5 file's top-level elements must all lie inside the file.

std::uint32_t u32(const unsigned char* p, bool swap) {
  std::uint32_t x = static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                    static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
  if (swap)
    x = (x >> 24) | ((x >> 8) & 0xff00u) | ((x << 8) & 0xff0000u) | (x << 24);
  return x;
}

/// One data element of a v5 file: its type, where its data start and where it ends (the next
/// element's start: 8-byte aligned, or 8 bytes in all for the small format).
struct Element {
  std::uint32_t type = 0;
  std::uint64_t data = 0;
  std::uint64_t bytes = 0;
  std::uint64_t next = 0;
};

/// The element at `pos` of `in`, which must lie inside [pos, end): else nullopt.
std::optional<Element> element_at(std::ifstream& in, bool big, std::uint64_t pos,
                                  std::uint64_t end) {
  unsigned char tag[8];
  if (pos + 8 > end)
    return std::nullopt;
  in.seekg(static_cast<std::streamoff>(pos));
  if (!in.read(reinterpret_cast<char*>(tag), 8))
    return std::nullopt;
  Element e;
  e.type = u32(tag, big);
  if ((e.type >> 16) != 0) { // small format: up to 4 bytes of data in the tag
    e.bytes = e.type >> 16;
    e.type &= 0xffffu;
    e.data = pos + 4;
    e.next = pos + 8;
    return e.bytes <= 4 ? std::optional<Element>(e) : std::nullopt;
  }
  e.bytes = u32(tag + 4, big);
  e.data = pos + 8;
  if (e.data + e.bytes > end)
    return std::nullopt;
  e.next = std::min((e.data + e.bytes + 7) / 8 * 8, end);
  return e;
}

/// Checks that the array flags, dimensions and name of the matrix element whose data are
/// [begin, end) lie inside it, and, for a cell or struct, that each element's matrix does too
/// (recursively, at most 64 deep): matio allocates by the dimensions before it reads them (a
/// cell's element claiming 16,384 dimensions in an 80-byte element made it allocate 4 GB).
/// \returns an empty string, or what is wrong.
std::string check_v5_matrix(std::ifstream& in, bool big, std::uint64_t begin, std::uint64_t end,
                            int depth) {
  if (begin == end)
    return ""; // an empty matrix (e.g. an empty cell element)
  if (depth > 64)
    return "nested more than 64 deep";
  const auto flags = element_at(in, big, begin, end);
  if (!flags || flags->bytes < 8)
    return "its array flags do not fit inside it";
  unsigned char f[4];
  in.seekg(static_cast<std::streamoff>(flags->data));
  if (!in.read(reinterpret_cast<char*>(f), 4))
    return "its array flags cannot be read";
  const std::uint32_t mx_class = u32(f, big) & 0xffu;
  const auto dims = element_at(in, big, flags->next, end);
  if (!dims)
    return "its dimensions do not fit inside it (at byte " + std::to_string(flags->next) + ")";
  const auto name = element_at(in, big, dims->next, end);
  if (!name)
    return "its name does not fit inside it (at byte " + std::to_string(dims->next) + ")";
  std::uint64_t pos = name->next;
  if (mx_class == 2) { // struct: field name length, field names, then the fields' matrices
    const auto length = element_at(in, big, pos, end);
    const auto names = length ? element_at(in, big, length->next, end) : std::nullopt;
    if (!length || !names)
      return "its field names do not fit inside it (at byte " + std::to_string(pos) + ")";
    pos = names->next;
  } else if (mx_class != 1) {
    return ""; // numbers, text, sparse: their data are checked when read
  }
  while (pos < end) {
    const auto child = element_at(in, big, pos, end);
    if (!child || child->type != 14)
      return "an element at byte " + std::to_string(pos) + " does not fit inside it";
    const std::string inner =
        check_v5_matrix(in, big, child->data, child->data + child->bytes, depth + 1);
    if (!inner.empty())
      return inner;
    pos = child->next;
  }
  return "";
}

/// Throws unless `path` has a v5 or v7.3 header; walks the data elements of a version 5 file
/// (after the 128-byte header) and throws when one ends past the end of the file, or when the
/// parts of an uncompressed matrix do not fit inside it (check_v5_matrix()). v7.3 is left to
/// matio and HDF5.
void check_v5_complete(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char header[128];
  // Only v5 and v7.3 are read: matio's fallback to version 4 allocates by the first bytes of
  // any other file (a 2.9 KB file made it allocate and fill 268 MB).
  const std::string not_mat =
      path.string() + ": not a MATLAB v5 or v7.3 file (no 128-byte header ending in version 0x0100 "
                      "or 0x0200 and IM or MI; version 4 files are not read)";
  if (!in.read(reinterpret_cast<char*>(header), sizeof header))
    throw IoError(not_mat);
  const bool little = header[126] == 'I' && header[127] == 'M';
  const bool big = header[126] == 'M' && header[127] == 'I';
  if (!little && !big)
    throw IoError(not_mat);
  const unsigned version =
      little ? header[124] | header[125] << 8u : header[125] | header[124] << 8u;
  if (version == 0x0200)
    return; // v7.3: HDF5 behind the header
  if (version != 0x0100)
    throw IoError(not_mat);
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec)
    return;
  std::uint64_t pos = 128;
  for (std::size_t k = 1; pos + 8 <= size; ++k) {
    unsigned char tag[8];
    in.seekg(static_cast<std::streamoff>(pos));
    if (!in.read(reinterpret_cast<char*>(tag), 8))
      break;
    const std::uint32_t type = u32(tag, big);
    const std::uint32_t bytes = u32(tag + 4, big);
    if ((type >> 16) != 0) { // small data element: 8 bytes in all
      pos += 8;
      continue;
    }
    const std::uint64_t end = pos + 8 + bytes;
    if (end > size)
      throw IoError(path.string() + ": truncated MATLAB file: variable " + std::to_string(k) +
                    " (at byte " + std::to_string(pos) + ") needs " + std::to_string(end) +
                    " bytes, the file has " + std::to_string(size) + " (" +
                    std::to_string(end - size) + " missing; was it copied completely?)");
    if (type == 14 /* miMATRIX */) {
      const std::string wrong = check_v5_matrix(in, big, pos + 8, end, 0);
      if (!wrong.empty())
        throw IoError(path.string() + ": damaged MATLAB file: variable " + std::to_string(k) +
                      " (at byte " + std::to_string(pos) + ", " + std::to_string(bytes) +
                      " bytes): " + wrong);
    }
    pos = type == 15 /* miCOMPRESSED */ ? end : (end + 7) / 8 * 8;
  }
}

// ---- Writing: Arrays as matio's variables (which point into the Arrays' storage).

matvar_t* to_matvar(const char* name, const Array& a, const std::string& where) {
  std::vector<std::size_t> dims = a.dims;
  while (dims.size() < 2)
    dims.push_back(1);
  const int rank = static_cast<int>(dims.size());
  const std::size_t n = a.numel();
  switch (a.kind) {
  case Array::Kind::numeric: {
    if (a.complex || a.values.size() != n)
      throw BadInput(where + ": a real numeric array needs " + std::to_string(n) + " values, has " +
                     std::to_string(a.values.size()));
    void* data = n == 0 ? nullptr : const_cast<double*>(a.values.data());
    return Mat_VarCreate(name, MAT_C_DOUBLE, MAT_T_DOUBLE, rank, dims.data(), data,
                         MAT_F_DONT_COPY_DATA);
  }
  case Array::Kind::text: {
    if (a.text.size() != n)
      throw BadInput(where + ": a char array of " + std::to_string(n) + " characters has " +
                     std::to_string(a.text.size()));
    void* data = n == 0 ? nullptr : const_cast<char*>(a.text.data());
    return Mat_VarCreate(name, MAT_C_CHAR, MAT_T_UINT8, rank, dims.data(), data,
                         MAT_F_DONT_COPY_DATA);
  }
  case Array::Kind::cell: {
    if (a.elements.size() != n)
      throw BadInput(where + ": a cell of " + std::to_string(n) + " elements has " +
                     std::to_string(a.elements.size()));
    VarPtr cell(Mat_VarCreate(name, MAT_C_CELL, MAT_T_CELL, rank, dims.data(), nullptr, 0));
    for (std::size_t i = 0; cell && i < n; ++i) {
      matvar_t* e = to_matvar(nullptr, a.elements[i], where + "{" + std::to_string(i + 1) + "}");
      if (e == nullptr)
        return nullptr;
      Mat_VarSetCell(cell.get(), static_cast<int>(i), e);
    }
    return cell.release();
  }
  case Array::Kind::structure: {
    const std::size_t n_fields = a.field_names.size();
    if (a.fields.size() != n * n_fields)
      throw BadInput(where + ": a struct of " + std::to_string(n) + " elements and " +
                     std::to_string(n_fields) + " fields has " + std::to_string(a.fields.size()) +
                     " values");
    std::vector<const char*> names;
    for (const auto& f : a.field_names)
      names.push_back(f.c_str());
    VarPtr s(Mat_VarCreateStruct(name, rank, dims.data(), names.data(),
                                 static_cast<unsigned>(n_fields)));
    for (std::size_t e = 0; s && e < n; ++e)
      for (std::size_t f = 0; f < n_fields; ++f) {
        matvar_t* value =
            to_matvar(nullptr, a.fields[e * n_fields + f], where + "." + a.field_names[f]);
        if (value == nullptr)
          return nullptr;
        Mat_VarSetStructFieldByIndex(s.get(), f, e, value);
      }
    return s.release();
  }
  default:
    throw BadInput(where + ": cannot write a MATLAB " + a.class_name + " array");
  }
}

} // namespace

// ---- Array

std::size_t Array::numel() const {
  std::size_t n = 1;
  for (const auto d : dims)
    n *= d;
  return n;
}

bool Array::is_vector() const {
  int n_long = 0;
  for (const auto d : dims)
    n_long += d > 1 ? 1 : 0;
  return n_long <= 1;
}

std::optional<double> Array::scalar() const {
  if (!is_real_numeric() || values.size() != 1)
    return std::nullopt;
  return values[0];
}

const Array* Array::field(std::string_view name, std::size_t element) const {
  if (kind != Kind::structure || element >= numel())
    return nullptr;
  for (std::size_t f = 0; f < field_names.size(); ++f)
    if (field_names[f] == name)
      return &fields[element * field_names.size() + f];
  return nullptr;
}

Array Array::matrix(std::size_t rows, std::size_t cols, const double* data) {
  Array a;
  a.dims = {rows, cols};
  if (data != nullptr)
    a.values.assign(data, data + rows * cols);
  else
    a.values.assign(rows * cols, 0.0);
  return a;
}

Array Array::row(const std::vector<double>& values) {
  return matrix(1, values.size(), values.data());
}

Array Array::number(double value) {
  return matrix(1, 1, &value);
}

Array Array::string(std::string text) {
  Array a;
  a.kind = Kind::text;
  a.class_name = "char";
  a.dims = {1, text.size()};
  a.text = std::move(text);
  return a;
}

Array Array::cell(std::size_t rows, std::size_t cols) {
  Array a;
  a.kind = Kind::cell;
  a.class_name = "cell";
  a.dims = {rows, cols};
  a.elements.assign(rows * cols, matrix(0, 0, nullptr));
  return a;
}

Array Array::structure(std::vector<std::pair<std::string, Array>> fields) {
  Array a;
  a.kind = Kind::structure;
  a.class_name = "struct";
  a.dims = {1, 1};
  for (auto& [name, value] : fields) {
    a.field_names.push_back(name);
    a.fields.push_back(std::move(value));
  }
  return a;
}

// ---- Writer

struct Writer::Impl {
  std::filesystem::path path;
  FilePtr mat;
};

Writer::Writer(const std::filesystem::path& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  // Without a header text matio writes "... Created by: libmatio ... on <date and time>".
  impl_->mat.reset(
      Mat_CreateVer(path.c_str(), "MATLAB 5.0 MAT-file, written by myotwin", MAT_FT_MAT5));
  if (!impl_->mat)
    throw IoError(path.string() + ": cannot create MATLAB file");
}

Writer::~Writer() = default;

void Writer::write(const std::string& name, const Array& value) {
  const std::string where = impl_->path.string() + ": MATLAB variable " + name;
  VarPtr var(to_matvar(name.c_str(), value, where));
  if (!var || Mat_VarWrite(impl_->mat.get(), var.get(), MAT_COMPRESSION_NONE) != 0)
    throw IoError(impl_->path.string() + ": cannot write MATLAB variable " + name);
}

// ---- Reader

struct Reader::Impl {
  std::filesystem::path path;
  FilePtr mat;
  std::vector<std::string> names;
};

Reader::Reader(const std::filesystem::path& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw IoError(path.string() + ": file not found");
  check_v5_complete(path);
  impl_->mat.reset(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  if (!impl_->mat)
    throw IoError(path.string() + ": cannot open as a MATLAB file (v5 or v7.3)");
  while (true) {
    VarPtr info(Mat_VarReadNextInfo(impl_->mat.get()));
    if (!info)
      break;
    if (info->name != nullptr)
      impl_->names.emplace_back(info->name);
  }
  Mat_Rewind(impl_->mat.get());
}

Reader::~Reader() = default;

std::optional<Array> Reader::read(const std::string& name) const {
  bool listed = false;
  for (const auto& n : impl_->names)
    listed = listed || n == name;
  if (!listed)
    return std::nullopt;
  // What the variable's header declares must fit in what the file can hold (deflate expands at
  // most 1032 times) before matio allocates it: a 2 KB file may claim 15 GB.
  {
    VarPtr info(Mat_VarReadInfo(impl_->mat.get(), name.c_str()));
    if (!info)
      throw IoError(impl_->path.string() + ": cannot read MATLAB variable " + name);
    double elements = 1.0;
    for (int d = 0; d < info->rank; ++d)
      elements *= static_cast<double>(info->dims[d]);
    const bool container = info->class_type == MAT_C_CELL || info->class_type == MAT_C_STRUCT;
    const double declared =
        container
            ? std::max(static_cast<double>(Mat_VarGetSize(info.get())), 8.0 * elements)
            : elements *
                  static_cast<double>(std::max<std::size_t>(Mat_SizeOfClass(info->class_type), 1));
    std::error_code ec;
    const double file_bytes = static_cast<double>(std::filesystem::file_size(impl_->path, ec));
    const double limit = 1032.0 * std::max(file_bytes, 1.0) + 1048576.0;
    if (declared > limit)
      throw IoError(impl_->path.string() + ": MATLAB variable " + name + " declares " +
                    std::to_string(static_cast<long long>(elements)) + " elements (" +
                    std::to_string(static_cast<long long>(declared)) + " bytes), more than a " +
                    std::to_string(static_cast<long long>(file_bytes)) +
                    "-byte file can hold: the file is damaged");
  }
  VarPtr v(Mat_VarRead(impl_->mat.get(), name.c_str()));
  if (!v)
    throw IoError(impl_->path.string() + ": cannot read MATLAB variable " + name);
  return to_array(v.get());
}

const std::vector<std::string>& Reader::names() const {
  return impl_->names;
}

const std::filesystem::path& Reader::path() const {
  return impl_->path;
}

} // namespace myotwin::mat
