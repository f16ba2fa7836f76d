#include "myotwin/forward/io/emg_io.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include <matio.h>

#include "myotwin/forward/io/mat_file.hpp"

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"

namespace myotwin::forward {

namespace {

using forward::mat::double_var;
using forward::mat::write_var;
using MatPtr = forward::mat::FilePtr;

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

/// SIG-like cell of channel rows of `signal` (#channels x #samples); `rows` keeps the row data
/// (1 x #samples each) alive until written.
matvar_t* signal_cell(const char* name, const Eigen::MatrixXd& signal, const ChannelLayout& layout,
                      std::vector<Eigen::VectorXd>& rows) {
  const Eigen::Index n_ch = signal.rows();
  std::size_t grid_rows = static_cast<std::size_t>(n_ch);
  std::size_t grid_cols = 1;
  if (layout.grid_row_col.size() > 0) {
    grid_rows = static_cast<std::size_t>(layout.grid_row_col.col(0).maxCoeff()) + 1;
    grid_cols = static_cast<std::size_t>(layout.grid_row_col.col(1).maxCoeff()) + 1;
  }
  std::size_t dims[2] = {grid_rows, grid_cols};
  matvar_t* cell = Mat_VarCreate(name, MAT_C_CELL, MAT_T_CELL, 2, dims, nullptr, 0);
  if (cell == nullptr)
    return nullptr;
  rows.resize(static_cast<std::size_t>(n_ch));
  std::vector<bool> used(grid_rows * grid_cols, false);
  for (Eigen::Index c = 0; c < n_ch; ++c) {
    std::size_t index = static_cast<std::size_t>(c);
    if (layout.grid_row_col.size() > 0)
      index = static_cast<std::size_t>(layout.grid_row_col(c, 0)) +
              grid_rows * static_cast<std::size_t>(layout.grid_row_col(c, 1));
    if (used[index]) {
      Mat_VarFree(cell);
      throw BadInput("write EMG: two channels at grid position (" +
                     std::to_string(layout.grid_row_col(c, 0)) + ", " +
                     std::to_string(layout.grid_row_col(c, 1)) + ")");
    }
    used[index] = true;
    rows[static_cast<std::size_t>(c)] = signal.row(c).transpose();
    Mat_VarSetCell(cell, static_cast<int>(index),
                   double_var(nullptr, 1, static_cast<std::size_t>(signal.cols()),
                              rows[static_cast<std::size_t>(c)].data()));
  }
  for (std::size_t i = 0; i < used.size(); ++i)
    if (!used[i])
      Mat_VarSetCell(cell, static_cast<int>(i), double_var(nullptr, 0, 0, nullptr));
  return cell;
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
    const MatPtr mat = forward::mat::create_v5(tmp);
    std::vector<Eigen::VectorXd> sig_rows;
    write_var(mat.get(), signal_cell("SIG", emg.emg, layout, sig_rows), path, "SIG");
    sig_rows.clear();
    write_var(mat.get(), signal_cell("SIG_clean", emg.emg_clean, layout, sig_rows), path,
              "SIG_clean");
    sig_rows.clear();
    double fsamp = emg.fs_Hz;
    write_var(mat.get(), double_var("fsamp", 1, 1, &fsamp), path, "fsamp");

    std::vector<std::vector<double>> pulses(n_units);
    std::size_t dims[2] = {1, n_units};
    matvar_t* cell = Mat_VarCreate("MUPulses", MAT_C_CELL, MAT_T_CELL, 2, dims, nullptr, 0);
    for (std::size_t u = 0; cell != nullptr && u < n_units; ++u) {
      for (const auto i : emg.spike_samples[u])
        pulses[u].push_back(static_cast<double>(i + 1));
      Mat_VarSetCell(cell, static_cast<int>(u),
                     double_var(nullptr, pulses[u].empty() ? 0 : 1, pulses[u].size(),
                                pulses[u].empty() ? nullptr : pulses[u].data()));
    }
    write_var(mat.get(), cell, path, "MUPulses");

    Eigen::MatrixXd ipts = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(n_units),
                                                 static_cast<Eigen::Index>(n_samples));
    for (std::size_t u = 0; u < n_units; ++u)
      for (const auto i : emg.spike_samples[u])
        if (i >= 0 && i < static_cast<std::int64_t>(n_samples))
          ipts(static_cast<Eigen::Index>(u), i) = 1.0;
    write_var(mat.get(), double_var("IPTs", n_units, n_samples, ipts.data()), path, "IPTs");
    ipts.resize(0, 0);

    Eigen::VectorXd ref = reference.size() > 0
                              ? Eigen::VectorXd(reference)
                              : Eigen::VectorXd::Zero(static_cast<Eigen::Index>(n_samples));
    write_var(mat.get(), double_var("ref_signal", 1, n_samples, ref.data()), path, "ref_signal");

    if (!force.muscles.empty()) {
      Eigen::MatrixXd f = force.fraction_of_max; // column-major, as MATLAB
      write_var(mat.get(),
                double_var("force", static_cast<std::size_t>(f.rows()),
                           static_cast<std::size_t>(f.cols()), f.data()),
                path, "force");
    }
    // IED [mm]: openhdemg's DEMUSE loader reads it unconditionally (int(mat["IED"])). The
    // median distance between grid neighbours (same row or column, one step apart); 0 without
    // a grid (needles).
    double ied_mm = 0.0;
    {
      const auto& rc = layout.grid_row_col;
      const auto& p = layout.position_m;
      std::vector<double> steps;
      if (rc.rows() > 0 && p.rows() == rc.rows())
        for (Eigen::Index a = 0; a < rc.rows(); ++a)
          for (Eigen::Index b = a + 1; b < rc.rows(); ++b)
            if (std::abs(rc(a, 0) - rc(b, 0)) + std::abs(rc(a, 1) - rc(b, 1)) == 1)
              steps.push_back(1e3 * (p.row(a) - p.row(b)).norm());
      if (!steps.empty()) {
        std::nth_element(steps.begin(), steps.begin() + steps.size() / 2, steps.end());
        ied_mm = steps[steps.size() / 2];
      }
    }
    write_var(mat.get(), double_var("IED", 1, 1, &ied_mm), path, "IED");
    std::vector<double> id_values(ids.begin(), ids.end());
    write_var(mat.get(), double_var("unit_id", 1, id_values.size(), id_values.data()), path,
              "unit_id");
  });
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
