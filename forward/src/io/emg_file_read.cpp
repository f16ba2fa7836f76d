#include "myotwin/forward/io/emg_file.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include "myotwin/core/error.hpp"
#include "myotwin/core/mat_file.hpp"
#include "myotwin/core/text.hpp"

namespace myotwin::forward {

namespace {

/// A numeric matrix as #channels x #samples.
Eigen::MatrixXd matrix_signal(const mat::Array& v, const std::string& where) {
  if (v.dims.size() != 2 || !v.is_real_numeric() || v.values.empty())
    throw BadInput(where +
                   ": expected a non-empty real numeric 2-D matrix (channels x samples), "
                   "found a " +
                   v.class_name + " array");
  const auto rows = static_cast<Eigen::Index>(v.dims[0]);
  const auto cols = static_cast<Eigen::Index>(v.dims[1]);
  Eigen::MatrixXd m = Eigen::Map<const Eigen::MatrixXd>(v.values.data(), rows, cols);
  if (rows > cols)
    m.transposeInPlace(); // #samples x #channels
  return m;
}

/// The channels of a DEMUSE `SIG` cell grid, with their grid positions.
void read_signal_cell(const mat::Array& sig, const std::string& file, EmgRecording& r) {
  const std::size_t grid_rows = sig.dims[0];
  const std::size_t grid_cols = sig.numel() / std::max<std::size_t>(grid_rows, 1);
  std::vector<const mat::Array*> channels;
  std::vector<std::array<std::int64_t, 2>> positions;
  for (std::size_t c = 0; c < grid_cols; ++c)
    for (std::size_t row = 0; row < grid_rows; ++row) {
      const mat::Array& cell = sig.elements[row + grid_rows * c];
      const std::string where =
          file + ": SIG{" + std::to_string(row + 1) + "," + std::to_string(c + 1) + "}";
      if (cell.numel() == 0)
        continue;
      if (!cell.is_real_numeric())
        throw BadInput(where + ": expected a real numeric vector, found a " + cell.class_name +
                       " array");
      if (!channels.empty() && cell.values.size() != channels.front()->values.size())
        throw BadInput(where + ": " + std::to_string(cell.values.size()) + " samples: expected " +
                       std::to_string(channels.front()->values.size()) +
                       " as in the first channel");
      channels.push_back(&cell);
      positions.push_back({static_cast<std::int64_t>(row), static_cast<std::int64_t>(c)});
    }
  if (channels.empty())
    throw BadInput(file + ": SIG: every cell is empty");
  const auto n = static_cast<Eigen::Index>(channels.front()->values.size());
  r.emg.resize(static_cast<Eigen::Index>(channels.size()), n);
  r.grid_row_col.resize(static_cast<Eigen::Index>(channels.size()), 2);
  for (std::size_t i = 0; i < channels.size(); ++i) {
    const auto k = static_cast<Eigen::Index>(i);
    r.emg.row(k) = Eigen::Map<const Eigen::RowVectorXd>(channels[i]->values.data(), n);
    r.grid_row_col(k, 0) = positions[i][0];
    r.grid_row_col(k, 1) = positions[i][1];
  }
}

EmgRecording read_mat(const std::filesystem::path& path) {
  const std::string file = path.string();
  const mat::Reader mat(path);
  EmgRecording r;
  r.source = path;
  std::optional<double> fs;
  for (const char* name : {"fsamp", "fs_Hz", "SamplingFrequency"}) {
    if (const auto v = mat.read(name)) {
      fs = v->scalar();
      if (!fs)
        throw BadInput(file + ": variable " + std::string(name) +
                       ": expected a numeric scalar sampling rate [Hz], found a " + v->class_name +
                       " array of " + std::to_string(v->numel()) + " elements");
      break;
    }
  }
  // MUedit: a struct `signal` with `data` and `fsamp`.
  const auto signal = mat.read("signal");
  if (signal && signal->kind == mat::Array::Kind::structure) {
    const mat::Array* data = signal->field("data");
    const mat::Array* fsamp = signal->field("fsamp");
    if (data == nullptr)
      throw BadInput(file + ": struct signal has no field data");
    r.emg = matrix_signal(*data, file + ": signal.data");
    if (!fs && fsamp != nullptr)
      fs = fsamp->scalar();
  } else {
    std::optional<mat::Array> sig;
    std::string name;
    for (const char* candidate : {"SIG", "data", "Data"})
      if (!sig) {
        sig = mat.read(candidate);
        name = candidate;
      }
    if (!sig)
      throw BadInput(file +
                     ": no EMG: expected a variable SIG (cell grid or channels x samples "
                     "matrix), data, Data, or a struct signal with field data; the file "
                     "has " +
                     (mat.names().empty() ? std::string("no variables") : join(mat.names(), ", ")));
    if (sig->kind == mat::Array::Kind::cell)
      read_signal_cell(*sig, file, r);
    else
      r.emg = matrix_signal(*sig, file + ": variable " + name);
  }
  if (!fs)
    throw BadInput(file + ": no sampling rate: expected a numeric scalar fsamp [Hz]");
  r.fs_Hz = *fs;
  return r;
}

EmgRecording read_h5(const std::filesystem::path& path, const EmgReadOptions& options) {
  const H5Reader h5(path);
  EmgRecording r;
  r.source = path;
  std::string dataset = options.dataset;
  if (dataset.empty())
    dataset = !h5.contains("emg") && h5.contains("noise") ? "noise" : "emg";
  if (!h5.contains(dataset))
    throw BadInput(path.string() + ": no dataset " + dataset + " (#channels x #samples)" +
                   (options.dataset.empty() ? "" : ", named by --dataset"));
  r.emg = h5.read_double(dataset);
  bool fs_found = false;
  for (const std::string& object : {dataset, std::string("/")}) {
    const auto attrs = h5.attributes(object);
    const auto it = attrs.find("fs_Hz");
    if (it == attrs.end())
      continue;
    if (const auto* d = std::get_if<double>(&it->second))
      r.fs_Hz = *d;
    else if (const auto* i = std::get_if<std::int64_t>(&it->second))
      r.fs_Hz = static_cast<double>(*i);
    else
      throw BadInput(path.string() + ": attribute fs_Hz: expected a number [Hz]");
    fs_found = true;
    break;
  }
  if (!fs_found && options.fs_Hz) {
    r.fs_Hz = *options.fs_Hz;
    fs_found = true;
  }
  if (!fs_found)
    throw BadInput(path.string() + ": " + dataset +
                   ": no attribute fs_Hz (sampling rate [Hz]) on it or the root: give --fs-Hz");
  if (!(r.fs_Hz > 0.0) || !std::isfinite(r.fs_Hz))
    throw BadInput(path.string() + ": attribute fs_Hz = " + format_number(r.fs_Hz) +
                   ": expected a sampling rate > 0 [Hz]");
  if (h5.contains("channels/grid_row_col"))
    r.grid_row_col = h5.read_int64("channels/grid_row_col");
  if (h5.contains("channels/position_m"))
    r.position_m = h5.read_double("channels/position_m");
  return r;
}

/// True for a CSV header that names the time column: time_s, time, t, t_s (any case).
bool is_time_name(const std::string& name) {
  const std::string n = to_lower(name);
  return n == "time_s" || n == "time" || n == "t" || n == "t_s";
}

EmgRecording read_csv(const std::filesystem::path& path, const EmgReadOptions& options) {
  const TextTable table = read_text_table(path, "the EMG text file", 0);
  EmgRecording r;
  r.source = path;
  std::optional<double> fs;
  if (const auto it = table.metadata.find("fs_Hz"); it != table.metadata.end()) {
    fs = parse_number(it->second);
    if (!fs)
      throw BadInput(table.where("fs_Hz") + "\"" + it->second + "\": expected a number [Hz]");
  }
  if (table.rows.empty())
    throw BadInput(path.string() + ": no samples: expected a header line and one row per sample");
  // A first row of numbers is data (a file without a header): its columns get names ch0, ch1,
  // ... and the row is kept as the first sample.
  const auto& first = table.rows.front();
  const bool has_header = !std::all_of(first.cells.begin(), first.cells.end(),
                                       [](const std::string& c) { return parse_number(c); });
  std::vector<std::string> header;
  if (has_header)
    header = first.cells;
  else
    for (std::size_t i = 0; i < first.cells.size(); ++i)
      header.push_back("ch" + std::to_string(i));
  int time_column = options.time_column ? 0 : -1;
  for (std::size_t i = 0; i < header.size() && time_column < 0; ++i)
    if (is_time_name(header[i]))
      time_column = static_cast<int>(i);
  std::vector<std::vector<double>> columns(header.size());
  for (std::size_t k = has_header ? 1 : 0; k < table.rows.size(); ++k) {
    const auto& row = table.rows[k];
    if (row.cells.size() != header.size())
      throw BadInput(table.where(row) + std::to_string(row.cells.size()) + " fields: expected " +
                     std::to_string(header.size()) + " as in the header");
    for (std::size_t i = 0; i < row.cells.size(); ++i) {
      const auto v = parse_number(row.cells[i]);
      if (!v)
        throw BadInput(table.where(row) + "column " + header[i] + " = '" + row.cells[i] +
                       "': expected a number");
      columns[i].push_back(*v);
    }
  }
  if (columns.empty() || columns.front().empty())
    throw BadInput(path.string() + ": no samples: expected a header line and one row per sample");
  const auto n = static_cast<Eigen::Index>(columns.front().size());
  const auto n_ch = static_cast<Eigen::Index>(header.size()) - (time_column >= 0 ? 1 : 0);
  if (n_ch < 1)
    throw BadInput(path.string() + ": no channel columns besides the time column");
  r.emg.resize(n_ch, n);
  Eigen::Index c = 0;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (static_cast<int>(i) == time_column)
      continue;
    r.channel_names.push_back(header[i]);
    r.emg.row(c++) = Eigen::Map<const Eigen::RowVectorXd>(columns[i].data(), n);
  }
  if (time_column >= 0 && n >= 2) {
    const auto& t = columns[static_cast<std::size_t>(time_column)];
    const double dt = (t.back() - t.front()) / static_cast<double>(n - 1);
    if (!(dt > 0.0) || !std::isfinite(dt))
      throw BadInput(path.string() + ": time column " +
                     header[static_cast<std::size_t>(time_column)] + ": mean step " +
                     format_number(dt) + " s: must be > 0");
    for (Eigen::Index k = 1; k < n; ++k) {
      const double step = t[static_cast<std::size_t>(k)] - t[static_cast<std::size_t>(k - 1)];
      if (!(std::abs(step - dt) <= 1e-3 * dt))
        throw BadInput(path.string() + ": time column " +
                       header[static_cast<std::size_t>(time_column)] +
                       " is not uniformly sampled: step " + format_number(step) + " s at row " +
                       std::to_string(k + 1) + ", expected " + format_number(dt) + " s");
    }
    const double fs_time = 1.0 / dt;
    const auto declared = fs ? fs : options.fs_Hz;
    if (declared && std::abs(*declared - fs_time) > 1e-3 * fs_time)
      throw BadInput(path.string() + ": fs_Hz = " + format_number(*declared) +
                     " does not match the time column (" + format_number(fs_time) + " Hz)");
    if (!fs)
      fs = fs_time;
  }
  if (!fs && !options.fs_Hz)
    throw BadInput(path.string() + ": no sampling rate: expected a `# fs_Hz = ...` line, a "
                                   "time_s column, or --fs-Hz");
  r.fs_Hz = fs ? *fs : *options.fs_Hz;
  return r;
}

} // namespace

void check_recording(const EmgRecording& recording, const EmgReadOptions& options) {
  const std::string src = recording.source.string();
  if (!(recording.fs_Hz > 0.0) || !std::isfinite(recording.fs_Hz))
    throw BadInput(src + ": fs_Hz = " + format_number(recording.fs_Hz) +
                   ": must be a finite number > 0 [Hz]");
  if (options.fs_Hz && std::abs(*options.fs_Hz - recording.fs_Hz) > 1e-6 * recording.fs_Hz)
    throw BadInput(src + ": fs_Hz = " + format_number(*options.fs_Hz) +
                   " was given but the file says " + format_number(recording.fs_Hz) + " Hz");
  if (recording.emg.rows() < 1 || recording.emg.cols() < 2)
    throw BadInput(src + ": emg is " + std::to_string(recording.emg.rows()) + " x " +
                   std::to_string(recording.emg.cols()) +
                   ": expected >= 1 channel and >= 2 samples");
  for (Eigen::Index n = 0; n < recording.emg.cols(); ++n)
    for (Eigen::Index c = 0; c < recording.emg.rows(); ++c)
      if (!std::isfinite(recording.emg(c, n)))
        throw BadInput(src + ": channel " + std::to_string(c) + " sample " + std::to_string(n) +
                       " = " + format_number(recording.emg(c, n)) +
                       ": every sample must be finite (no NaN or Inf)");
  if (recording.grid_row_col.size() > 0 &&
      (recording.grid_row_col.rows() != recording.emg.rows() || recording.grid_row_col.cols() != 2))
    throw BadInput(src + ": grid_row_col is " + std::to_string(recording.grid_row_col.rows()) +
                   " x " + std::to_string(recording.grid_row_col.cols()) + ": expected " +
                   std::to_string(recording.emg.rows()) + " x 2 (one row per channel)");
  if (options.duration_s) {
    const double expected = *options.duration_s * recording.fs_Hz;
    const auto n = static_cast<double>(recording.emg.cols());
    if (!(std::abs(n - expected) <= 1.0))
      throw BadInput(src + ": " + std::to_string(recording.emg.cols()) + " samples at fs_Hz = " +
                     format_number(recording.fs_Hz) + " is " + format_number(n / recording.fs_Hz) +
                     " s, but duration_s = " + format_number(*options.duration_s) +
                     " was declared (expected " + format_number(std::round(expected)) +
                     " samples): wrong sampling rate?");
  }
}

EmgRecording read_emg(const std::filesystem::path& path, const EmgReadOptions& options) {
  if (!std::filesystem::exists(path))
    throw IoError(path.string() + ": not found");
  const std::string ext = to_lower(path.extension().string());
  EmgRecording r;
  if (ext == ".h5" || ext == ".hdf5")
    r = read_h5(path, options);
  else if (ext == ".mat")
    r = read_mat(path);
  else if (ext == ".csv" || ext == ".tsv" || ext == ".txt")
    r = read_csv(path, options);
  else
    throw BadInput(path.string() + ": extension '" + ext +
                   "': expected .h5, .hdf5, .mat, or a text table .csv, .tsv or .txt");
  check_recording(r, options);
  return r;
}

} // namespace myotwin::forward
