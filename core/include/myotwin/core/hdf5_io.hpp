#pragma once
/// \file hdf5_io.hpp
/// HDF5 arrays: the array format of every stage. Named float64 and int64 datasets (2-D, or 1-D
/// for vectors) with attributes, readable by h5py and MATLAB. Matrices are stored in C order so
/// that h5py sees the same (rows, columns) shape as Eigen. Groups in a name ("a/b/c") are
/// created as needed.

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include <Eigen/Core>

namespace myotwin {

using MatrixXi64 = Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic>;
using VectorXi64 = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;

/// An attribute: integer, real or text.
using AttributeValue = std::variant<std::int64_t, double, std::string>;
/// Attributes of a dataset or group, by name.
using Attributes = std::map<std::string, AttributeValue>;

/// Writes an HDF5 file atomically: the data go to a temporary file that commit() renames to the
/// final path; without commit() (an exception on the way) the temporary file is removed.
class H5Writer {
public:
  /// \throws IoError if the file cannot be created.
  explicit H5Writer(std::filesystem::path path);
  ~H5Writer();
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  /// A 2-D float64 dataset `name` (rows x cols). \throws IoError, BadInput for a name in use.
  void write(const std::string& name, const Eigen::Ref<const Eigen::MatrixXd>& data,
             const Attributes& attributes = {});
  /// A 2-D int64 dataset.
  void write(const std::string& name, const Eigen::Ref<const MatrixXi64>& data,
             const Attributes& attributes = {});
  /// A 1-D float64 dataset.
  void write_vector(const std::string& name, const Eigen::Ref<const Eigen::VectorXd>& data,
                    const Attributes& attributes = {});
  /// A 1-D int64 dataset.
  void write_vector(const std::string& name, const Eigen::Ref<const VectorXi64>& data,
                    const Attributes& attributes = {});
  /// A 3-D float64 dataset of dims[0] x dims[1] x dims[2] values in C order (last index
  /// fastest). \throws BadInput when data.size() is not the product of dims.
  void write_3d(const std::string& name, const std::vector<double>& data,
                const std::array<unsigned long long, 3>& dims, const Attributes& attributes = {});
  /// Attributes on a group ("/" is the file) or dataset; the group is created if needed.
  void set_attributes(const std::string& object, const Attributes& attributes);
  /// Closes the file and renames it to its final path. \throws IoError.
  void commit();

private:
  void write_dataset(const std::string& name, int rank, const std::vector<unsigned long long>& dims,
                     bool is_int, const void* data, const Attributes& attributes);
  std::filesystem::path path_;
  std::filesystem::path tmp_;
  long long file_ = -1;
};

/// Reads datasets and attributes from an HDF5 file.
class H5Reader {
public:
  /// \throws IoError if the file is missing or not HDF5.
  explicit H5Reader(std::filesystem::path path);
  ~H5Reader();
  H5Reader(const H5Reader&) = delete;
  H5Reader& operator=(const H5Reader&) = delete;

  /// True if a dataset or group `name` exists.
  [[nodiscard]] bool contains(const std::string& name) const;
  /// The dimensions of dataset `name`. \throws BadInput if absent.
  [[nodiscard]] std::vector<std::size_t> shape(const std::string& name) const;
  /// A float64 (or any numeric, converted) dataset; a 1-D dataset gives n x 1.
  /// \throws BadInput if absent or of rank > 2.
  [[nodiscard]] Eigen::MatrixXd read_double(const std::string& name) const;
  /// An integer dataset, converted to int64. \throws BadInput if absent, not integer, rank > 2.
  [[nodiscard]] MatrixXi64 read_int64(const std::string& name) const;
  /// A float64 (or any numeric, converted) dataset of any rank, its values in C order (last
  /// index fastest), as write_3d() writes them; shape() gives its dimensions.
  /// \throws BadInput if absent or not numeric.
  [[nodiscard]] std::vector<double> read_double_values(const std::string& name) const;
  /// The attributes of a group or dataset.
  [[nodiscard]] Attributes attributes(const std::string& object) const;
  /// The names of the members of a group.
  [[nodiscard]] std::vector<std::string> list(const std::string& group = "/") const;

private:
  long long open_dataset(const std::string& name) const;
  std::filesystem::path path_;
  long long file_ = -1;
};

} // namespace myotwin
