#include "myotwin/forward/drive/discharge_import.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <string>

#include "myotwin/core/error.hpp"
#include "myotwin/core/mat_file.hpp"
#include "myotwin/core/text.hpp"

namespace myotwin::forward {

namespace {

/// "a double array of 3 elements", for messages.
std::string described(const mat::Array& v) {
  return "a " + v.class_name + " array of " + std::to_string(v.numel()) + " elements";
}

} // namespace

ImportedDischarges read_discharges_mat(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw IoError(file + ": discharge file not found");
  const mat::Reader mat(path);

  ImportedDischarges out;
  out.source = path;

  // fsamp: a positive real numeric scalar.
  {
    const auto fs = mat.read("fsamp");
    if (!fs)
      throw BadInput(file + ": no variable fsamp (the sampling rate in Hz)");
    const auto v = fs->scalar();
    if (!v)
      throw BadInput(file + ": fsamp: expected a real numeric scalar, found " + described(*fs));
    if (!(std::isfinite(*v) && *v > 0.0))
      throw BadInput(file + ": fsamp = " + format_number(*v) + ": must be > 0");
    out.fs_Hz = *v;
  }
  const double fs_Hz = *out.fs_Hz;

  const auto pulses = mat.read("MUPulses");
  if (!pulses)
    throw BadInput(file + ": no variable MUPulses (a cell array of discharge sample indices)");
  if (pulses->kind != mat::Array::Kind::cell)
    throw BadInput(file + ": MUPulses: expected a cell array of numeric vectors, found a " +
                   pulses->class_name + " array");
  const std::size_t n_units = pulses->numel();
  if (n_units == 0)
    throw BadInput(file + ": MUPulses: empty cell array: no motor units");
  for (std::size_t u = 0; u < n_units; ++u) {
    const std::string var = "MUPulses{" + std::to_string(u + 1) + "}";
    const mat::Array& cell = pulses->elements[u];
    if (!cell.is_real_numeric() || !cell.is_vector())
      throw BadInput(file + ": " + var +
                     ": expected a real numeric vector of sample indices, found a " +
                     cell.class_name + " array");
    const std::vector<double>& v = cell.values;
    if (v.empty())
      throw BadInput(file + ": " + var + ": empty motor unit (no discharges)");
    std::vector<std::int64_t> idx(v.size());
    std::vector<double> t(v.size());
    for (std::size_t k = 0; k < v.size(); ++k) {
      if (!(std::isfinite(v[k]) && v[k] >= 1.0 && v[k] == std::floor(v[k]) && v[k] < 9.0e15))
        throw BadInput(file + ": " + var + "(" + std::to_string(k + 1) + ") = " +
                       format_number(v[k]) + ": expected an integer sample index >= 1 (1-based)");
      if (k > 0 && v[k] <= v[k - 1])
        throw BadInput(
            file + ": " + var + "(" + std::to_string(k + 1) + ") = " + format_number(v[k]) +
            ": indices must be strictly increasing (previous " + format_number(v[k - 1]) + ")");
      idx[k] = static_cast<std::int64_t>(v[k]) - 1;
      t[k] = static_cast<double>(idx[k]) / fs_Hz;
    }
    out.times_s.push_back(std::move(t));
    out.sample_indices.push_back(std::move(idx));
    out.unit_ids.push_back(static_cast<std::int64_t>(u));
  }
  return out;
}

ImportedDischarges read_discharges_csv(const std::filesystem::path& path) {
  const std::string file = path.string();
  const TextTable table = read_text_table(path, "the discharge CSV file");
  ImportedDischarges out;
  out.source = path;
  if (const auto it = table.metadata.find("fs_Hz"); it != table.metadata.end()) {
    const auto fs = parse_number(it->second);
    if (!fs || !(std::isfinite(*fs) && *fs > 0.0))
      throw BadInput(table.where("fs_Hz") + "\"" + it->second +
                     "\": expected \"# fs_Hz = <rate > 0>\"");
    out.fs_Hz = *fs;
  }
  if (!table.rows.empty() && table.rows.front().cells != std::vector<std::string>{"unit", "time_s"})
    throw BadInput(table.where(table.rows.front()) + "expected the header \"unit,time_s\"");
  std::map<std::int64_t, std::vector<double>> units;
  for (std::size_t r = 1; r < table.rows.size(); ++r) {
    const auto& row = table.rows[r];
    const std::string where = table.where(row);
    const std::string a = row.cells.empty() ? std::string() : row.cells[0];
    const std::string b = row.cells.size() < 2 ? std::string() : row.cells[1];
    char* end_a = nullptr;
    const long long id = std::strtoll(a.c_str(), &end_a, 10);
    const auto time_s = parse_number(b);
    if (row.cells.size() != 2 || a.empty() || end_a != a.c_str() + a.size() || !time_s)
      throw BadInput(where + "expected an integer unit id and a time in seconds: unit,time_s");
    if (id < 0)
      throw BadInput(where + "unit = " + a + ": must be >= 0");
    if (!(std::isfinite(*time_s) && *time_s >= 0.0))
      throw BadInput(where + "time_s = " + b + ": must be a finite time >= 0");
    units[id].push_back(*time_s);
  }
  if (units.empty())
    throw BadInput(file + ": no discharges: expected the header \"unit,time_s\" and rows");
  for (auto& [id, times] : units) {
    std::sort(times.begin(), times.end());
    out.unit_ids.push_back(id);
    out.times_s.push_back(std::move(times));
    out.sample_indices.emplace_back();
  }
  return out;
}

ImportedDischarges read_discharges(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".mat")
    return read_discharges_mat(path);
  if (ext == ".csv")
    return read_discharges_csv(path);
  throw BadInput(path.string() + ": discharge file extension \"" + ext +
                 "\": expected .mat (MUPulses, fsamp) or .csv (unit,time_s)");
}

DischargeMapping map_by_recruitment_order(const ImportedDischarges& imported,
                                          std::size_t n_model_units) {
  const std::size_t n = imported.times_s.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  const auto first = [&](std::size_t i) {
    return imported.times_s[i].empty() ? HUGE_VAL : imported.times_s[i].front();
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return first(a) < first(b); });
  DischargeMapping m;
  m.times_s.assign(n_model_units, {});
  m.imported_unit.assign(n_model_units, -1);
  for (std::size_t r = 0; r < n; ++r) {
    if (r < n_model_units) {
      m.times_s[r] = imported.times_s[order[r]];
      m.imported_unit[r] = static_cast<std::int64_t>(order[r]);
    } else {
      m.unassigned_imported.push_back(static_cast<std::int64_t>(order[r]));
    }
  }
  m.n_model_units_without_discharges =
      static_cast<std::int64_t>(n_model_units > n ? n_model_units - n : 0);
  return m;
}

} // namespace myotwin::forward
