#include "myotwin/core/hdf5_io.hpp"

#include <hdf5.h>

#include <sstream>

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"

namespace myotwin {

namespace fs = std::filesystem;

namespace {

/// Closes an HDF5 handle with the given function when it goes out of scope.
class Handle {
public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0)
      close_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  operator hid_t() const { return id_; }
  [[nodiscard]] bool valid() const { return id_ >= 0; }

private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

void silence_hdf5_errors() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

/// Creates every group on the way to `name` ("a/b/c" creates "a" and "a/b").
void create_parent_groups(hid_t file, const std::string& name, const fs::path& path) {
  std::string::size_type pos = 0;
  while ((pos = name.find('/', pos + 1)) != std::string::npos) {
    const std::string group = name.substr(0, pos);
    if (group.empty() || group == "/")
      continue;
    if (H5Lexists(file, group.c_str(), H5P_DEFAULT) > 0)
      continue;
    // No modification times in the file: the same data give the same bytes.
    Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
    H5Pset_obj_track_times(gcpl, false);
    Handle g(H5Gcreate2(file, group.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT), H5Gclose);
    if (!g.valid())
      throw IoError(path.string() + ": cannot create group " + group);
  }
}

void write_attributes(hid_t object, const Attributes& attributes, const fs::path& path,
                      const std::string& name) {
  for (const auto& [key, value] : attributes) {
    if (H5Aexists(object, key.c_str()) > 0)
      H5Adelete(object, key.c_str());
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    herr_t status = -1;
    if (const auto* i = std::get_if<std::int64_t>(&value)) {
      Handle a(H5Acreate2(object, key.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT),
               H5Aclose);
      if (a.valid())
        status = H5Awrite(a, H5T_NATIVE_INT64, i);
    } else if (const auto* d = std::get_if<double>(&value)) {
      Handle a(H5Acreate2(object, key.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT),
               H5Aclose);
      if (a.valid())
        status = H5Awrite(a, H5T_NATIVE_DOUBLE, d);
    } else {
      const auto& s = std::get<std::string>(value);
      Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(type, s.empty() ? 1 : s.size());
      H5Tset_strpad(type, H5T_STR_NULLPAD);
      H5Tset_cset(type, H5T_CSET_UTF8);
      Handle a(H5Acreate2(object, key.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
      const std::string padded = s.empty() ? std::string(1, '\0') : s;
      if (a.valid())
        status = H5Awrite(a, type, padded.data());
    }
    if (status < 0) {
      throw IoError(path.string() + ": cannot write attribute " + key + " of " + name);
    }
  }
}

} // namespace

H5Writer::H5Writer(fs::path path) : path_(std::move(path)), tmp_(temporary_path_for(path_)) {
  silence_hdf5_errors();
  file_ = H5Fcreate(tmp_.string().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file_ < 0)
    throw IoError(path_.string() + ": cannot create HDF5 file");
}

H5Writer::~H5Writer() {
  if (file_ >= 0) {
    H5Fclose(file_);
    std::error_code ec;
    fs::remove(tmp_, ec);
    release_temporary(tmp_);
  }
}

void H5Writer::write_dataset(const std::string& name, int rank,
                             const std::vector<unsigned long long>& dims, bool is_int,
                             const void* data, const Attributes& attributes) {
  if (file_ < 0)
    throw IoError(path_.string() + ": already committed; cannot write " + name);
  if (H5Lexists(file_, name.c_str(), H5P_DEFAULT) > 0) {
    throw BadInput(path_.string() + ": dataset " + name + " written twice");
  }
  create_parent_groups(file_, name, path_);
  std::vector<hsize_t> hdims(dims.begin(), dims.end());
  Handle space(H5Screate_simple(rank, hdims.data(), nullptr), H5Sclose);
  const hid_t file_type = is_int ? H5T_STD_I64LE : H5T_IEEE_F64LE;
  const hid_t mem_type = is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE;
  // Large arrays are chunked and deflated; small ones stay contiguous.
  hsize_t n = 1;
  for (auto d : hdims)
    n *= d;
  Handle plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_obj_track_times(plist, false); // the same data give the same bytes
  if (n >= 4096) {
    std::vector<hsize_t> chunk = hdims;
    // Chunks of about 64k elements, cut along the first dimension.
    hsize_t inner = 1;
    for (int i = 1; i < rank; ++i)
      inner *= hdims[i];
    chunk[0] =
        std::max<hsize_t>(1, std::min<hsize_t>(hdims[0], 65536 / std::max<hsize_t>(1, inner)));
    H5Pset_chunk(plist, rank, chunk.data());
    H5Pset_shuffle(plist);
    H5Pset_deflate(plist, 4);
  }
  Handle set(H5Dcreate2(file_, name.c_str(), file_type, space, H5P_DEFAULT, plist, H5P_DEFAULT),
             H5Dclose);
  if (!set.valid())
    throw IoError(path_.string() + ": cannot create dataset " + name);
  if (n > 0 && H5Dwrite(set, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    throw IoError(path_.string() + ": cannot write dataset " + name);
  }
  write_attributes(set, attributes, path_, name);
}

void H5Writer::write(const std::string& name, const Eigen::Ref<const Eigen::MatrixXd>& data,
                     const Attributes& attributes) {
  const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> c_order = data;
  write_dataset(
      name, 2,
      {static_cast<unsigned long long>(data.rows()), static_cast<unsigned long long>(data.cols())},
      false, c_order.data(), attributes);
}

void H5Writer::write(const std::string& name, const Eigen::Ref<const MatrixXi64>& data,
                     const Attributes& attributes) {
  const Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> c_order = data;
  write_dataset(
      name, 2,
      {static_cast<unsigned long long>(data.rows()), static_cast<unsigned long long>(data.cols())},
      true, c_order.data(), attributes);
}

void H5Writer::write_vector(const std::string& name, const Eigen::Ref<const Eigen::VectorXd>& data,
                            const Attributes& attributes) {
  const Eigen::VectorXd copy = data;
  write_dataset(name, 1, {static_cast<unsigned long long>(data.size())}, false, copy.data(),
                attributes);
}

void H5Writer::write_3d(const std::string& name, const std::vector<double>& data,
                        const std::array<unsigned long long, 3>& dims,
                        const Attributes& attributes) {
  if (data.size() != dims[0] * dims[1] * dims[2])
    throw BadInput("HDF5 dataset " + name + ": " + std::to_string(data.size()) +
                   " values for dimensions " + std::to_string(dims[0]) + " x " +
                   std::to_string(dims[1]) + " x " + std::to_string(dims[2]));
  write_dataset(name, 3, {dims[0], dims[1], dims[2]}, false, data.data(), attributes);
}

void H5Writer::write_vector(const std::string& name, const Eigen::Ref<const VectorXi64>& data,
                            const Attributes& attributes) {
  const VectorXi64 copy = data;
  write_dataset(name, 1, {static_cast<unsigned long long>(data.size())}, true, copy.data(),
                attributes);
}

void H5Writer::set_attributes(const std::string& object, const Attributes& attributes) {
  if (file_ < 0)
    throw IoError(path_.string() + ": already committed");
  if (object != "/" && H5Lexists(file_, object.c_str(), H5P_DEFAULT) <= 0) {
    create_parent_groups(file_, object + "/", path_);
  }
  Handle o(H5Oopen(file_, object.c_str(), H5P_DEFAULT), H5Oclose);
  if (!o.valid())
    throw IoError(path_.string() + ": cannot open " + object);
  write_attributes(o, attributes, path_, object);
}

void H5Writer::commit() {
  if (file_ < 0)
    throw IoError(path_.string() + ": committed twice");
  const herr_t status = H5Fclose(file_);
  file_ = -1;
  std::error_code ec;
  if (status < 0) {
    fs::remove(tmp_, ec);
    release_temporary(tmp_);
    throw IoError(path_.string() + ": cannot close HDF5 file");
  }
  fs::rename(tmp_, path_, ec);
  release_temporary(tmp_);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp_, ignored);
    throw IoError(path_.string() + ": cannot move the finished file into place: " + ec.message());
  }
}

H5Reader::H5Reader(fs::path path) : path_(std::move(path)) {
  silence_hdf5_errors();
  std::error_code ec;
  if (!fs::exists(path_, ec))
    throw IoError(path_.string() + ": no such file");
  if (H5Fis_hdf5(path_.string().c_str()) <= 0) {
    throw IoError(path_.string() + ": not an HDF5 file");
  }
  file_ = H5Fopen(path_.string().c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0)
    throw IoError(path_.string() + ": cannot open HDF5 file");
}

H5Reader::~H5Reader() {
  if (file_ >= 0)
    H5Fclose(file_);
}

bool H5Reader::contains(const std::string& name) const {
  if (name == "/")
    return true;
  // Every link on the way must exist before H5Lexists may be asked about the next one.
  std::string::size_type pos = 0;
  while ((pos = name.find('/', pos + 1)) != std::string::npos) {
    if (H5Lexists(file_, name.substr(0, pos).c_str(), H5P_DEFAULT) <= 0)
      return false;
  }
  return H5Lexists(file_, name.c_str(), H5P_DEFAULT) > 0;
}

long long H5Reader::open_dataset(const std::string& name) const {
  if (!contains(name)) {
    throw BadInput(path_.string() + ": no dataset " + name);
  }
  const hid_t set = H5Dopen2(file_, name.c_str(), H5P_DEFAULT);
  if (set < 0)
    throw BadInput(path_.string() + ": " + name + " is not a dataset");
  return set;
}

std::vector<std::size_t> H5Reader::shape(const std::string& name) const {
  Handle set(open_dataset(name), H5Dclose);
  Handle space(H5Dget_space(set), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return {dims.begin(), dims.end()};
}

namespace {

template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>
read_matrix(hid_t set, hid_t mem_type, const std::vector<std::size_t>& dims, const fs::path& path,
            const std::string& name) {
  if (dims.size() > 2) {
    throw BadInput(path.string() + ": dataset " + name + " has rank " +
                   std::to_string(dims.size()) + "; expected a vector or matrix");
  }
  const Eigen::Index rows = dims.empty() ? 1 : static_cast<Eigen::Index>(dims[0]);
  const Eigen::Index cols = dims.size() == 2 ? static_cast<Eigen::Index>(dims[1]) : 1;
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> c_order(rows, cols);
  if (c_order.size() > 0 &&
      H5Dread(set, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, c_order.data()) < 0) {
    throw IoError(path.string() + ": cannot read dataset " + name);
  }
  return c_order;
}

} // namespace

Eigen::MatrixXd H5Reader::read_double(const std::string& name) const {
  Handle set(open_dataset(name), H5Dclose);
  Handle type(H5Dget_type(set), H5Tclose);
  const H5T_class_t c = H5Tget_class(type);
  if (c != H5T_FLOAT && c != H5T_INTEGER) {
    throw BadInput(path_.string() + ": dataset " + name + " is not numeric");
  }
  return read_matrix<double>(set, H5T_NATIVE_DOUBLE, shape(name), path_, name);
}

std::vector<double> H5Reader::read_double_values(const std::string& name) const {
  Handle set(open_dataset(name), H5Dclose);
  Handle type(H5Dget_type(set), H5Tclose);
  const H5T_class_t c = H5Tget_class(type);
  if (c != H5T_FLOAT && c != H5T_INTEGER) {
    throw BadInput(path_.string() + ": dataset " + name + " is not numeric");
  }
  std::size_t n = 1;
  for (const auto d : shape(name))
    n *= d;
  std::vector<double> values(n);
  if (n > 0 && H5Dread(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0)
    throw IoError(path_.string() + ": cannot read dataset " + name);
  return values;
}

MatrixXi64 H5Reader::read_int64(const std::string& name) const {
  Handle set(open_dataset(name), H5Dclose);
  Handle type(H5Dget_type(set), H5Tclose);
  if (H5Tget_class(type) != H5T_INTEGER) {
    throw BadInput(path_.string() + ": dataset " + name + " is not an integer array");
  }
  return read_matrix<std::int64_t>(set, H5T_NATIVE_INT64, shape(name), path_, name);
}

Attributes H5Reader::attributes(const std::string& object) const {
  if (!contains(object))
    throw BadInput(path_.string() + ": no object " + object);
  Handle o(H5Oopen(file_, object.c_str(), H5P_DEFAULT), H5Oclose);
  if (!o.valid())
    throw BadInput(path_.string() + ": cannot open " + object);
  Attributes out;
  H5O_info_t info;
  H5Oget_info2(o, &info, H5O_INFO_NUM_ATTRS);
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    Handle a(H5Aopen_by_idx(o, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT),
             H5Aclose);
    if (!a.valid())
      continue;
    const ssize_t name_length = H5Aget_name(a, 0, nullptr);
    std::string key(static_cast<std::size_t>(name_length), '\0');
    H5Aget_name(a, key.size() + 1, key.data());
    Handle type(H5Aget_type(a), H5Tclose);
    switch (H5Tget_class(type)) {
    case H5T_INTEGER: {
      std::int64_t v = 0;
      H5Aread(a, H5T_NATIVE_INT64, &v);
      out[key] = v;
      break;
    }
    case H5T_FLOAT: {
      double v = 0;
      H5Aread(a, H5T_NATIVE_DOUBLE, &v);
      out[key] = v;
      break;
    }
    case H5T_STRING: {
      if (H5Tis_variable_str(type) > 0) {
        char* text = nullptr;
        Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Aread(a, mem, &text);
        out[key] = std::string(text ? text : "");
        H5free_memory(text);
      } else {
        std::string text(H5Tget_size(type), '\0');
        H5Aread(a, type, text.data());
        text.erase(text.find_last_not_of('\0') + 1);
        out[key] = text;
      }
      break;
    }
    default:
      break; // other attribute types are not part of our format
    }
  }
  return out;
}

std::vector<std::string> H5Reader::list(const std::string& group) const {
  if (!contains(group))
    throw BadInput(path_.string() + ": no group " + group);
  Handle g(H5Gopen2(file_, group.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.valid())
    throw BadInput(path_.string() + ": " + group + " is not a group");
  H5G_info_t info;
  H5Gget_info(g, &info);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t n =
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    std::string name(static_cast<std::size_t>(n), '\0');
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size() + 1,
                       H5P_DEFAULT);
    names.push_back(name);
  }
  return names;
}

} // namespace myotwin
