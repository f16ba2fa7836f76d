#include "myotwin/forward/io/emg_file.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/mat_file.hpp"

namespace myotwin::forward {

namespace {

std::vector<std::int64_t> unit_ids(const EmgResult& emg, const UnitProperties& units) {
  const std::size_t n = emg.spike_samples.size();
  if (units.unit_id.empty()) {
    std::vector<std::int64_t> ids(n);
    for (std::size_t u = 0; u < n; ++u)
      ids[u] = static_cast<std::int64_t>(u);
    return ids;
  }
  return units.unit_id;
}

void check_rows(const std::string& what, Eigen::Index rows, Eigen::Index expected,
                const std::string& per) {
  if (rows != 0 && rows != expected)
    throw BadInput("write EMG: " + what + " has " + std::to_string(rows) + " rows: expected " +
                   std::to_string(expected) + " (one per " + per + ")");
}

void check(const EmgResult& emg, const UnitProperties& units, const ChannelLayout& layout,
           const Eigen::Ref<const Eigen::VectorXd>& reference, const MuscleForce& force) {
  if (force.fraction_of_max.size() > 0 || !force.muscles.empty()) {
    if (force.fraction_of_max.cols() != emg.emg.cols())
      throw BadInput("write EMG: force has " + std::to_string(force.fraction_of_max.cols()) +
                     " samples: expected " + std::to_string(emg.emg.cols()));
    check_rows("force", force.fraction_of_max.rows(),
               static_cast<Eigen::Index>(force.muscles.size()), "muscle name");
  }
  const auto n_units = static_cast<Eigen::Index>(emg.spike_samples.size());
  const Eigen::Index n_ch = emg.emg.rows();
  if (emg.emg_clean.rows() != emg.emg.rows() || emg.emg_clean.cols() != emg.emg.cols())
    throw BadInput("write EMG: emg_clean is not the shape of emg");
  check_rows("unit_id", static_cast<Eigen::Index>(units.unit_id.size()), n_units, "unit");
  check_rows("muscle", static_cast<Eigen::Index>(units.muscle.size()), n_units, "unit");
  check_rows("depth_m", units.depth_m.size(), n_units, "unit");
  check_rows("territory_centre_m", units.territory_centre_m.rows(), n_units, "unit");
  check_rows("n_fibres", units.n_fibres.size(), n_units, "unit");
  check_rows("cv_m_per_s", units.cv_m_per_s.size(), n_units, "unit");
  check_rows("end_plate_m", units.end_plate_m.rows(), n_units, "unit");
  check_rows("grid_row_col", layout.grid_row_col.rows(), n_ch, "channel");
  check_rows("position_m", layout.position_m.rows(), n_ch, "channel");
  check_rows("reference", reference.size(), emg.emg.cols(), "sample");
  if (layout.grid_row_col.size() > 0) {
    if (layout.grid_row_col.cols() != 2)
      throw BadInput("write EMG: grid_row_col has " + std::to_string(layout.grid_row_col.cols()) +
                     " columns: expected 2 (row, column)");
    if (layout.grid_row_col.minCoeff() < 0)
      throw BadInput("write EMG: grid_row_col has a negative row or column");
  }
  const auto ids = unit_ids(emg, units);
  for (std::size_t a = 0; a < ids.size(); ++a)
    for (std::size_t b = a + 1; b < ids.size(); ++b)
      if (ids[a] == ids[b])
        throw BadInput("write EMG: unit id " + std::to_string(ids[a]) + " appears twice");
}

} // namespace

void write_emg_h5(const std::filesystem::path& path, const EmgResult& emg,
                  const UnitProperties& units, const ChannelLayout& layout,
                  const Eigen::Ref<const Eigen::VectorXd>& reference, const MuscleForce& force) {
  check(emg, units, layout, reference, force);
  const auto ids = unit_ids(emg, units);
  H5Writer w(path);
  w.set_attributes("/", {{"fs_Hz", emg.fs_Hz}});
  w.write("emg", emg.emg, {{"fs_Hz", emg.fs_Hz}, {"unit", std::string("V")}});
  w.write("emg_clean", emg.emg_clean, {{"fs_Hz", emg.fs_Hz}, {"unit", std::string("V")}});
  if (emg.snr_dB.size() > 0)
    w.write_vector("snr_dB", emg.snr_dB);
  if (reference.size() > 0)
    w.write_vector("reference", reference);
  if (!force.muscles.empty()) {
    std::string names;
    for (const auto& m : force.muscles)
      names += (names.empty() ? "" : ";") + m;
    w.write("force", force.fraction_of_max,
            {{"unit", std::string("fraction of the muscle's maximum")}, {"muscles", names}});
  }
  w.set_attributes("truth", {{"n_units", static_cast<std::int64_t>(ids.size())},
                             {"index_base", std::int64_t{0}}});
  w.write_vector("truth/unit_id", VectorXi64(Eigen::Map<const VectorXi64>(
                                      ids.data(), static_cast<Eigen::Index>(ids.size()))));
  for (std::size_t u = 0; u < ids.size(); ++u) {
    const auto& s = emg.spike_samples[u];
    w.write_vector(
        "truth/spikes/" + std::to_string(ids[u]),
        VectorXi64(Eigen::Map<const VectorXi64>(s.data(), static_cast<Eigen::Index>(s.size()))));
  }
  if (!units.muscle.empty()) {
    std::vector<std::string> names;
    VectorXi64 index(static_cast<Eigen::Index>(units.muscle.size()));
    for (std::size_t u = 0; u < units.muscle.size(); ++u) {
      std::size_t k = 0;
      while (k < names.size() && names[k] != units.muscle[u])
        ++k;
      if (k == names.size())
        names.push_back(units.muscle[u]);
      index[static_cast<Eigen::Index>(u)] = static_cast<std::int64_t>(k);
    }
    std::string joined;
    for (std::size_t k = 0; k < names.size(); ++k)
      joined += (k > 0 ? ";" : "") + names[k];
    w.write_vector("truth/units/muscle_index", index, {{"muscles", joined}});
  }
  if (units.depth_m.size() > 0)
    w.write_vector("truth/units/depth_m", units.depth_m);
  if (units.territory_centre_m.size() > 0)
    w.write("truth/units/territory_centre_m", units.territory_centre_m);
  if (units.n_fibres.size() > 0)
    w.write_vector("truth/units/n_fibres", units.n_fibres);
  if (units.cv_m_per_s.size() > 0)
    w.write_vector("truth/units/cv_m_per_s", units.cv_m_per_s);
  if (units.end_plate_m.size() > 0)
    w.write("truth/units/end_plate_m", units.end_plate_m);
  if (layout.grid_row_col.size() > 0)
    w.write("channels/grid_row_col", layout.grid_row_col);
  if (layout.position_m.size() > 0)
    w.write("channels/position_m", layout.position_m);
  if (!layout.grid_name.empty())
    w.set_attributes("channels", {{"grid_name", layout.grid_name}});
  w.commit();
}

void write_emg_mat(const std::filesystem::path& path, const EmgResult& emg,
                   const UnitProperties& units, const ChannelLayout& layout,
                   const Eigen::Ref<const Eigen::VectorXd>& reference, const MuscleForce& force) {
  check(emg, units, layout, reference, force);
  const auto ids = unit_ids(emg, units);
  const auto n_samples = static_cast<std::size_t>(emg.emg.cols());
  const auto n_units = emg.spike_samples.size();
  constexpr double v5_limit_bytes = 2147483647.0;
  if (8.0 * static_cast<double>(emg.emg.size()) > v5_limit_bytes ||
      8.0 * static_cast<double>(n_units) * static_cast<double>(n_samples) > v5_limit_bytes)
    throw BadInput(path.string() + ": the signal (" + std::to_string(emg.emg.rows()) + " x " +
                   std::to_string(n_samples) +
                   ") is too large for a MATLAB v5 file (2 GiB per variable): use emg.h5");
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    mat::Writer mat(tmp);
    const std::string where = path.string() + ": SIG";
    mat.write("SIG", demuse_signal_cell(emg.emg, layout.grid_row_col, where));
    mat.write("SIG_clean", demuse_signal_cell(emg.emg_clean, layout.grid_row_col, where));
    mat.write("fsamp", mat::Array::number(emg.fs_Hz));
    std::vector<std::vector<std::int64_t>> one_based(n_units);
    for (std::size_t u = 0; u < n_units; ++u)
      for (const auto i : emg.spike_samples[u])
        one_based[u].push_back(i + 1);
    mat.write("MUPulses", demuse_pulses_cell(one_based));
    {
      mat::Array ipts = mat::Array::matrix(n_units, n_samples, nullptr);
      for (std::size_t u = 0; u < n_units; ++u)
        for (const auto i : emg.spike_samples[u])
          if (i >= 0 && i < static_cast<std::int64_t>(n_samples))
            ipts.values[u + n_units * static_cast<std::size_t>(i)] = 1.0;
      mat.write("IPTs", ipts);
    }
    mat.write("ref_signal", reference.size() > 0
                                ? mat::Array::matrix(1, n_samples, reference.data())
                                : mat::Array::matrix(1, n_samples, nullptr));
    if (!force.muscles.empty()) // column-major, as MATLAB
      mat.write("force", mat::Array::matrix(static_cast<std::size_t>(force.fraction_of_max.rows()),
                                            static_cast<std::size_t>(force.fraction_of_max.cols()),
                                            force.fraction_of_max.data()));
    mat.write("IED", mat::Array::number(
                         inter_electrode_distance_mm(layout.grid_row_col, layout.position_m)));
    mat.write("unit_id", mat::Array::row(std::vector<double>(ids.begin(), ids.end())));
  });
}

mat::Array demuse_signal_cell(const Eigen::MatrixXd& signal, const MatrixXi64& grid_row_col,
                              const std::string& where) {
  const Eigen::Index n_ch = signal.rows();
  const bool grid = grid_row_col.rows() == n_ch && grid_row_col.cols() == 2 && n_ch > 0;
  std::size_t grid_rows = static_cast<std::size_t>(n_ch), grid_cols = 1;
  if (grid) {
    if (grid_row_col.minCoeff() < 0)
      throw BadInput(where + ": negative grid row or column");
    grid_rows = static_cast<std::size_t>(grid_row_col.col(0).maxCoeff()) + 1;
    grid_cols = static_cast<std::size_t>(grid_row_col.col(1).maxCoeff()) + 1;
  }
  mat::Array cell = mat::Array::cell(grid_rows, grid_cols);
  std::vector<bool> used(grid_rows * grid_cols, false);
  for (Eigen::Index c = 0; c < n_ch; ++c) {
    std::size_t index = static_cast<std::size_t>(c);
    if (grid)
      index = static_cast<std::size_t>(grid_row_col(c, 0)) +
              grid_rows * static_cast<std::size_t>(grid_row_col(c, 1));
    if (used[index])
      throw BadInput(where + ": two channels at grid position (" +
                     std::to_string(grid_row_col(c, 0)) + ", " +
                     std::to_string(grid_row_col(c, 1)) + ")");
    used[index] = true;
    const Eigen::RowVectorXd row = signal.row(c);
    cell.elements[index] = mat::Array::matrix(1, static_cast<std::size_t>(row.size()), row.data());
  }
  return cell;
}

mat::Array demuse_pulses_cell(const std::vector<std::vector<std::int64_t>>& one_based) {
  mat::Array cell = mat::Array::cell(1, one_based.size());
  for (std::size_t u = 0; u < one_based.size(); ++u) {
    const std::vector<double> v(one_based[u].begin(), one_based[u].end());
    cell.elements[u] = mat::Array::matrix(v.empty() ? 0 : 1, v.size(), v.data());
  }
  return cell;
}

double inter_electrode_distance_mm(const MatrixXi64& grid_row_col,
                                   const Eigen::MatrixXd& position_m) {
  std::vector<double> steps;
  const auto& rc = grid_row_col;
  if (rc.rows() > 0 && rc.cols() == 2 && position_m.rows() == rc.rows() && position_m.cols() == 3)
    for (Eigen::Index a = 0; a < rc.rows(); ++a)
      for (Eigen::Index b = a + 1; b < rc.rows(); ++b)
        if (std::abs(rc(a, 0) - rc(b, 0)) + std::abs(rc(a, 1) - rc(b, 1)) == 1)
          steps.push_back(1e3 * (position_m.row(a) - position_m.row(b)).norm());
  if (steps.empty())
    return 0.0;
  std::nth_element(steps.begin(), steps.begin() + static_cast<std::ptrdiff_t>(steps.size() / 2),
                   steps.end());
  return steps[steps.size() / 2];
}

ChannelLayout channel_layout(const ElectrodeLayout& layout) {
  ChannelLayout channels;
  const auto n_ch = static_cast<Eigen::Index>(layout.electrodes.size());
  channels.grid_row_col.resize(n_ch, 2);
  channels.position_m.resize(n_ch, 3);
  for (Eigen::Index c = 0; c < n_ch; ++c) {
    const auto& e = layout.electrodes[static_cast<std::size_t>(c)];
    channels.grid_row_col(c, 0) = e.row;
    channels.grid_row_col(c, 1) = e.column;
    channels.position_m.row(c) = e.position_m.transpose();
  }
  channels.grid_name = layout.electrodes.empty() ? "" : layout.electrodes.front().group;
  return channels;
}

} // namespace myotwin::forward
