#include "sweep_dataset.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "layout.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"

namespace myotwin::app {

namespace fs = std::filesystem;

namespace {

/// The units of the chunk being filled.
struct Chunk {
  std::size_t n_channels = 0, n_samples = 0, n_units = 0;
  double fs_Hz = 0.0;
  Eigen::Index territory_columns = 0, end_plate_columns = 0;
  std::vector<double> muaps, depth_m, cv_m_per_s, territory, end_plate;
  std::vector<std::int64_t> run_index, unit_id, n_fibres;
  nlohmann::json runs = nlohmann::json::array(); ///< {run, index, first_unit, n_units}

  [[nodiscard]] bool fits(std::size_t channels, std::size_t samples, double fs,
                          double chunk_bytes) const {
    if (n_units == 0)
      return true;
    const double bytes = 8.0 * static_cast<double>((n_units + 1) * n_channels * n_samples);
    return channels == n_channels && samples == n_samples && fs == fs_Hz && bytes <= chunk_bytes;
  }
};

VectorXi64 int_vector(const std::vector<std::int64_t>& v) {
  return Eigen::Map<const VectorXi64>(v.data(), static_cast<Eigen::Index>(v.size()));
}

Eigen::VectorXd double_vector(const std::vector<double>& v) {
  return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
}

/// Rows of `columns` values each, stored row after row, as an n x columns matrix.
Eigen::MatrixXd row_matrix(const std::vector<double>& v, Eigen::Index columns) {
  const Eigen::Index rows = columns > 0 ? static_cast<Eigen::Index>(v.size()) / columns : 0;
  return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      v.data(), rows, columns);
}

/// Writes the chunk as DIR/chunk_NNNNN.h5 and adds it to `index`.
void flush(Chunk& c, const fs::path& dir, nlohmann::json& index) {
  if (c.n_units == 0)
    return;
  char name[32];
  std::snprintf(name, sizeof name, "chunk_%05zu.h5", index["chunks"].size());
  H5Writer w(dir / name);
  w.write_3d("muaps", c.muaps, {c.n_units, c.n_channels, c.n_samples},
             {{"units", std::string("V")}, {"layout", std::string("units x channels x samples")}});
  w.write_vector("run_index", int_vector(c.run_index));
  w.write_vector("unit_id", int_vector(c.unit_id));
  w.write_vector("depth_m", double_vector(c.depth_m));
  w.write_vector("n_fibres", int_vector(c.n_fibres));
  w.write_vector("cv_m_per_s", double_vector(c.cv_m_per_s));
  w.write("territory_centre_m", row_matrix(c.territory, c.territory_columns));
  w.write("end_plate_m", row_matrix(c.end_plate, c.end_plate_columns));
  w.set_attributes("/", {{"fs_Hz", c.fs_Hz}, {"format", std::string("myotwin dataset chunk 1")}});
  w.commit();
  index["chunks"].push_back({{"file", name},
                             {"n_units", c.n_units},
                             {"n_channels", c.n_channels},
                             {"n_samples", c.n_samples},
                             {"fs_Hz", c.fs_Hz},
                             {"runs", c.runs}});
  c = Chunk{};
}

/// Appends rows r0.. of `m` (n x k) to `out`, row after row.
void append_rows(const Eigen::MatrixXd& m, std::vector<double>& out) {
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j)
      out.push_back(m(i, j));
}

} // namespace

std::size_t write_sweep_dataset(const SweepPlan& plan, const std::vector<std::string>& rows,
                                const fs::path& out, double chunk_bytes) {
  const fs::path dir = out / "dataset";
  ensure_output_dir(dir);
  nlohmann::json index = {{"format", "myotwin dataset 1"},
                          {"sweep", plan.file.string()},
                          {"chunks", nlohmann::json::array()},
                          {"runs", nlohmann::json::array()}};
  Chunk chunk;
  std::size_t n_total = 0;
  for (std::size_t r = 0; r < plan.runs.size(); ++r) {
    const SweepRun& run = plan.runs[r];
    nlohmann::json settings = nlohmann::json::object();
    for (const auto& [key, value] : run.settings)
      settings[key] = value;
    index["runs"].push_back(
        {{"run", run.name}, {"subject", plan.subjects[run.subject].name}, {"settings", settings}});
    if (rows[r].empty() || nlohmann::json::parse(rows[r]).value("status", "") != "ok")
      continue;
    const H5Reader h(out / "runs" / run.name / relative_path(Output::muaps));
    const auto shape = h.shape("muaps");
    if (shape.size() != 3)
      throw BadInput((out / "runs" / run.name / relative_path(Output::muaps)).string() +
                     ": muaps is not units x channels x samples");
    const std::vector<double> muaps = h.read_double_values("muaps");
    const auto attrs = h.attributes("/");
    const double fs = std::get<double>(attrs.at("fs_Hz"));
    const MatrixXi64 ids = h.read_int64("unit_id");
    const Eigen::MatrixXd depth = h.read_double("units/depth_m");
    const MatrixXi64 fibres = h.read_int64("units/n_fibres");
    const Eigen::MatrixXd cv = h.read_double("units/cv_m_per_s");
    const Eigen::MatrixXd territory = h.read_double("units/territory_centre_m");
    const Eigen::MatrixXd end_plate = h.read_double("units/end_plate_m");
    const std::size_t per_unit = shape[1] * shape[2];
    for (std::size_t u = 0; u < shape[0]; ++u) {
      if (!chunk.fits(shape[1], shape[2], fs, chunk_bytes))
        flush(chunk, dir, index);
      if (chunk.n_units == 0) {
        chunk.n_channels = shape[1];
        chunk.n_samples = shape[2];
        chunk.fs_Hz = fs;
        chunk.territory_columns = territory.cols();
        chunk.end_plate_columns = end_plate.cols();
      }
      if (chunk.runs.empty() || chunk.runs.back()["index"] != r)
        chunk.runs.push_back({{"run", run.name},
                              {"index", r},
                              {"first_unit", chunk.n_units},
                              {"run_first_unit", u},
                              {"n_units", 0}});
      chunk.runs.back()["n_units"] = chunk.runs.back()["n_units"].get<std::size_t>() + 1;
      chunk.muaps.insert(chunk.muaps.end(),
                         muaps.begin() + static_cast<std::ptrdiff_t>(u * per_unit),
                         muaps.begin() + static_cast<std::ptrdiff_t>((u + 1) * per_unit));
      const auto i = static_cast<Eigen::Index>(u);
      chunk.run_index.push_back(static_cast<std::int64_t>(r));
      chunk.unit_id.push_back(ids(i, 0));
      chunk.depth_m.push_back(depth(i, 0));
      chunk.n_fibres.push_back(fibres(i, 0));
      chunk.cv_m_per_s.push_back(cv(i, 0));
      append_rows(territory.row(i), chunk.territory);
      append_rows(end_plate.row(i), chunk.end_plate);
      ++chunk.n_units;
      ++n_total;
    }
  }
  flush(chunk, dir, index);
  index["n_units"] = n_total;
  write_text_file(dir / "index.json", index.dump(1) + "\n");
  // Chunks of an earlier, larger dataset are no longer in the index.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("chunk_", 0) != 0)
      continue;
    bool listed = false;
    for (const auto& c : index["chunks"])
      listed = listed || c["file"] == name;
    if (!listed)
      fs::remove(entry.path(), ec);
  }
  return n_total;
}

} // namespace myotwin::app
