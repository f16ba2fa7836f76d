#include "myotwin/inversion/decomposition_io.hpp"

#include <memory>

#include <matio.h>

#include "myotwin/forward/io/mat_file.hpp"

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"

namespace myotwin::inversion {

namespace {

using forward::mat::double_var;
using forward::mat::write_var;
using MatPtr = forward::mat::FilePtr;

/// A 1 x n cell of matrices; `store` keeps the data alive until written.
matvar_t* cell_row(const char* name, std::vector<Eigen::MatrixXd>& store) {
  std::size_t dims[2] = {1, store.size()};
  matvar_t* cell = Mat_VarCreate(name, MAT_C_CELL, MAT_T_CELL, 2, dims, nullptr, 0);
  for (std::size_t i = 0; cell != nullptr && i < store.size(); ++i)
    Mat_VarSetCell(cell, static_cast<int>(i),
                   double_var(nullptr, static_cast<std::size_t>(store[i].rows()),
                              static_cast<std::size_t>(store[i].cols()),
                              store[i].size() > 0 ? store[i].data() : nullptr));
  return cell;
}

std::vector<double> units_values(const Decomposition& d, double MotorUnit::*member) {
  std::vector<double> v;
  for (const auto& u : d.units)
    v.push_back(u.*member);
  return v;
}

} // namespace

void write_decomposition_h5(const std::filesystem::path& path, const Decomposition& d,
                            const EmgRecording& recording) {
  H5Writer w(path);
  const auto n_units = static_cast<std::int64_t>(d.units.size());
  w.set_attributes("/", {{"fs_Hz", d.fs_Hz},
                         {"n_samples", d.n_samples},
                         {"n_channels", d.n_channels},
                         {"extension_factor", d.extension_factor},
                         {"n_units", n_units},
                         {"source", recording.source.string()},
                         {"format", std::string("myotwin decomposition 1")}});
  VectorXi64 ids(n_units), n_discharges(n_units), n_doublets(n_units), n_pauses(n_units),
      review(n_units);
  Eigen::VectorXd sil(n_units), pnr(n_units), cov(n_units), cov_local(n_units), rate(n_units);
  for (std::int64_t u = 0; u < n_units; ++u) {
    const auto& unit = d.units[static_cast<std::size_t>(u)];
    ids[u] = u;
    n_discharges[u] = static_cast<std::int64_t>(unit.discharges.size());
    sil[u] = unit.sil;
    pnr[u] = unit.pnr_dB;
    cov[u] = unit.cov_isi;
    cov_local[u] = unit.cov_isi_local;
    rate[u] = unit.rate_pps;
    n_doublets[u] = unit.n_doublets;
    n_pauses[u] = unit.n_pauses;
    review[u] = review_bits(unit.review);
    w.write_vector("units/discharges/" + std::to_string(u),
                   VectorXi64(Eigen::Map<const VectorXi64>(
                       unit.discharges.data(), static_cast<Eigen::Index>(unit.discharges.size()))),
                   {{"unit", std::string("sample (0-based)")}});
  }
  w.write_vector("units/unit_id", ids);
  w.write_vector("units/n_discharges", n_discharges);
  w.write_vector("units/sil", sil);
  w.write_vector("units/pnr_dB", pnr);
  w.write_vector("units/cov_isi", cov);
  w.write_vector("units/cov_isi_local", cov_local);
  w.write_vector("units/rate_pps", rate);
  w.write_vector("units/n_doublets", n_doublets);
  w.write_vector("units/n_pauses", n_pauses);
  w.write_vector("units/review_flags", review, {{"bits", std::string(review_bits_doc)}});
  if (n_units > 0) {
    Eigen::MatrixXd sources(n_units, d.n_samples);
    for (std::int64_t u = 0; u < n_units; ++u)
      sources.row(u) = d.units[static_cast<std::size_t>(u)].source.transpose();
    w.write("units/sources", sources);
    const auto& first = d.units.front();
    std::vector<double> filters, muaps;
    filters.reserve(static_cast<std::size_t>(n_units * first.filter.size()));
    muaps.reserve(static_cast<std::size_t>(n_units * first.muap.size()));
    for (const auto& unit : d.units) {
      for (Eigen::Index c = 0; c < unit.filter.rows(); ++c)
        for (Eigen::Index k = 0; k < unit.filter.cols(); ++k)
          filters.push_back(unit.filter(c, k));
      for (Eigen::Index c = 0; c < unit.muap.rows(); ++c)
        for (Eigen::Index k = 0; k < unit.muap.cols(); ++k)
          muaps.push_back(unit.muap(c, k));
    }
    w.write_3d("units/filters", filters,
               {static_cast<unsigned long long>(n_units),
                static_cast<unsigned long long>(first.filter.rows()),
                static_cast<unsigned long long>(first.filter.cols())});
    w.write_3d("units/muaps", muaps,
               {static_cast<unsigned long long>(n_units),
                static_cast<unsigned long long>(first.muap.rows()),
                static_cast<unsigned long long>(first.muap.cols())},
               {{"first_offset_samples", first.muap_first_offset}, {"unit", std::string("V")}});
  }
  w.write_vector("neural_drive_pps", d.neural_drive_pps, {{"unit", std::string("pps")}});
  const auto& pre = d.preprocessing;
  VectorXi64 kept =
      Eigen::Map<const VectorXi64>(pre.kept.data(), static_cast<Eigen::Index>(pre.kept.size()));
  std::vector<std::int64_t> rejected;
  Eigen::VectorXd rms(static_cast<Eigen::Index>(pre.channels.size()));
  for (std::size_t c = 0; c < pre.channels.size(); ++c) {
    rms[static_cast<Eigen::Index>(c)] = pre.channels[c].rms;
    if (!pre.channels[c].rejected.empty())
      rejected.push_back(pre.channels[c].index);
  }
  w.write_vector("channels/kept", kept);
  w.write_vector("channels/rejected",
                 VectorXi64(Eigen::Map<const VectorXi64>(
                     rejected.data(), static_cast<Eigen::Index>(rejected.size()))));
  w.write_vector("channels/rms_V", rms);
  if (recording.grid_row_col.size() > 0)
    w.write("channels/grid_row_col", recording.grid_row_col);
  w.commit();
}

void write_decomposition_mat(const std::filesystem::path& path, const Decomposition& d,
                             const EmgRecording& recording) {
  constexpr double v5_limit_bytes = 2147483647.0;
  const auto n_units = d.units.size();
  const auto n_samples = static_cast<std::size_t>(d.n_samples);
  if (8.0 * static_cast<double>(recording.emg.size()) > v5_limit_bytes ||
      8.0 * static_cast<double>(n_units) * static_cast<double>(n_samples) > v5_limit_bytes)
    throw BadInput(path.string() + ": the signal (" + std::to_string(recording.emg.rows()) + " x " +
                   std::to_string(n_samples) +
                   ") is too large for a MATLAB v5 file (2 GiB per variable): use "
                   "decomposition.h5");
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    const MatPtr mat = forward::mat::create_v5(tmp);
    double fsamp = d.fs_Hz;
    write_var(mat.get(), double_var("fsamp", 1, 1, &fsamp), path, "fsamp");
    std::vector<Eigen::MatrixXd> pulses, filters;
    for (const auto& u : d.units) {
      Eigen::MatrixXd p(1, static_cast<Eigen::Index>(u.discharges.size()));
      for (std::size_t i = 0; i < u.discharges.size(); ++i)
        p(0, static_cast<Eigen::Index>(i)) = static_cast<double>(u.discharges[i] + 1);
      pulses.push_back(std::move(p));
      filters.push_back(u.filter);
    }
    write_var(mat.get(), cell_row("MUPulses", pulses), path, "MUPulses");
    write_var(mat.get(), cell_row("MUFilters", filters), path, "MUFilters");
    Eigen::MatrixXd ipts(static_cast<Eigen::Index>(n_units), d.n_samples);
    for (std::size_t u = 0; u < n_units; ++u)
      ipts.row(static_cast<Eigen::Index>(u)) = d.units[u].source.transpose();
    write_var(mat.get(),
              double_var("IPTs", n_units, n_samples, ipts.size() ? ipts.data() : nullptr), path,
              "IPTs");
    ipts.resize(0, 0);
    for (const auto& [name, member] :
         {std::pair<const char*, double MotorUnit::*>{"SIL", &MotorUnit::sil},
          {"PNR", &MotorUnit::pnr_dB},
          {"CoV_ISI", &MotorUnit::cov_isi},
          {"CoV_ISI_local", &MotorUnit::cov_isi_local}}) {
      auto values = units_values(d, member);
      write_var(mat.get(),
                double_var(name, 1, values.size(), values.empty() ? nullptr : values.data()), path,
                name);
    }
    // SIG: the input EMG as a cell grid (DEMUSE layout).
    const Eigen::Index n_ch = recording.emg.rows();
    std::size_t grid_rows = static_cast<std::size_t>(n_ch), grid_cols = 1;
    const bool grid = recording.grid_row_col.rows() == n_ch && recording.grid_row_col.cols() == 2;
    if (grid) {
      grid_rows = static_cast<std::size_t>(recording.grid_row_col.col(0).maxCoeff()) + 1;
      grid_cols = static_cast<std::size_t>(recording.grid_row_col.col(1).maxCoeff()) + 1;
    }
    std::size_t dims[2] = {grid_rows, grid_cols};
    matvar_t* sig = Mat_VarCreate("SIG", MAT_C_CELL, MAT_T_CELL, 2, dims, nullptr, 0);
    std::vector<Eigen::RowVectorXd> rows(static_cast<std::size_t>(n_ch));
    std::vector<bool> set(grid_rows * grid_cols, false);
    for (Eigen::Index c = 0; sig != nullptr && c < n_ch; ++c) {
      std::size_t index = static_cast<std::size_t>(c);
      if (grid)
        index = static_cast<std::size_t>(recording.grid_row_col(c, 0)) +
                grid_rows * static_cast<std::size_t>(recording.grid_row_col(c, 1));
      if (index >= set.size() || set[index]) {
        Mat_VarFree(sig);
        throw BadInput(recording.source.string() + ": two channels at one grid position");
      }
      set[index] = true;
      rows[static_cast<std::size_t>(c)] = recording.emg.row(c);
      Mat_VarSetCell(sig, static_cast<int>(index),
                     double_var(nullptr, 1, n_samples, rows[static_cast<std::size_t>(c)].data()));
    }
    for (std::size_t i = 0; sig != nullptr && i < set.size(); ++i)
      if (!set[i])
        Mat_VarSetCell(sig, static_cast<int>(i), double_var(nullptr, 0, 0, nullptr));
    write_var(mat.get(), sig, path, "SIG");
    rows.clear();
    Eigen::VectorXd zeros = Eigen::VectorXd::Zero(d.n_samples);
    write_var(mat.get(), double_var("ref_signal", 1, n_samples, zeros.data()), path, "ref_signal");
    Eigen::VectorXd drive = d.neural_drive_pps;
    write_var(mat.get(), double_var("neural_drive", 1, n_samples, drive.data()), path,
              "neural_drive");
    std::vector<double> discard;
    for (const auto& st : d.preprocessing.channels)
      discard.push_back(st.rejected.empty() ? 0.0 : 1.0);
    write_var(mat.get(), double_var("discardChannelsVec", 1, discard.size(), discard.data()), path,
              "discardChannelsVec");
  });
}

nlohmann::json summary_json(const Decomposition& d, const EmgRecording& recording,
                            const DecomposeParams& params) {
  nlohmann::json units = nlohmann::json::array();
  for (std::size_t u = 0; u < d.units.size(); ++u) {
    const auto& unit = d.units[u];
    double p2p = 0.0;
    Eigen::Index channel = 0;
    if (unit.muap.size() > 0)
      p2p = (unit.muap.rowwise().maxCoeff() - unit.muap.rowwise().minCoeff()).maxCoeff(&channel);
    units.push_back(
        {{"unit_id", u},
         {"n_discharges", unit.discharges.size()},
         {"sil", unit.sil},
         {"pnr_dB", unit.pnr_dB},
         {"cov_isi", unit.cov_isi},
         {"cov_isi_local", unit.cov_isi_local},
         {"rate_pps", unit.rate_pps},
         {"n_doublets", unit.n_doublets},
         {"n_pauses", unit.n_pauses},
         {"review", unit.review},
         {"first_discharge_s",
          unit.discharges.empty() ? 0.0 : static_cast<double>(unit.discharges.front()) / d.fs_Hz},
         {"muap_peak_to_peak_V", p2p},
         {"muap_largest_channel", channel},
         {"found_at_candidate", unit.found_at}});
  }
  const auto& s = d.stats;
  return {{"input", recording.source.string()},
          {"fs_Hz", d.fs_Hz},
          {"n_samples", d.n_samples},
          {"duration_s", static_cast<double>(d.n_samples) / d.fs_Hz},
          {"n_channels", d.n_channels},
          {"extension_factor", d.extension_factor},
          {"n_whitened", s.n_whitened},
          {"n_units", d.units.size()},
          {"candidates",
           {{"total", s.n_candidates},
            {"converged", s.n_converged},
            {"fixed_point_iterations", s.n_fixed_point_iterations},
            {"rejected_low_sil", s.n_low_sil},
            {"rejected_few_discharges", s.n_few_spikes},
            {"rejected_irregular", s.n_irregular},
            {"duplicates", s.n_duplicates}}},
          {"time_s",
           {{"preprocess", s.time_preprocess_s},
            {"whiten", s.time_whiten_s},
            {"iterations", s.time_iterations_s}}},
          {"channels", to_json(d.preprocessing)},
          {"parameters", to_json(params)},
          {"units", units}};
}

void write_fitted_properties(const std::filesystem::path& json_path,
                             const std::filesystem::path& h5_path,
                             const std::vector<FittedProperties>& properties,
                             const std::string& muscle) {
  nlohmann::json props = nlohmann::json::array();
  const auto n_u = static_cast<Eigen::Index>(properties.size());
  Eigen::MatrixXd table(n_u, 8);
  for (Eigen::Index u = 0; u < n_u; ++u) {
    const auto& p = properties[static_cast<std::size_t>(u)];
    props.push_back(
        {{"unit", u},
         {"territory_centre_mm", {1e3 * p.theta.centre_m.x(), 1e3 * p.theta.centre_m.y()}},
         {"territory_centre_sd_mm", {1e3 * p.spread.centre_m.x(), 1e3 * p.spread.centre_m.y()}},
         {"territory_radius_mm", 1e3 * p.theta.radius_m},
         {"depth_mm", 1e3 * p.depth_m},
         {"n_fibres", p.theta.n_fibres},
         {"n_fibres_sd", p.spread.n_fibres},
         {"end_plate_shift_mm", 1e3 * p.theta.end_plate_shift_m},
         {"end_plate_shift_sd_mm", 1e3 * p.spread.end_plate_shift_m},
         {"cv_m_per_s", p.theta.cv_m_per_s},
         {"cv_sd_m_per_s", p.spread.cv_m_per_s},
         {"amplitude_scale", p.amplitude_scale},
         {"relative_residual", p.relative_residual}});
    table.row(u) << p.theta.centre_m.x(), p.theta.centre_m.y(), p.depth_m, p.theta.n_fibres,
        p.theta.end_plate_shift_m, p.theta.cv_m_per_s, p.amplitude_scale, p.relative_residual;
  }
  write_text_file(json_path,
                  nlohmann::json{{"muscle", muscle},
                                 {"frame", "territory centres in the muscle's seed plane (e1, "
                                           "e2) from its centre; depth below the skin"},
                                 {"units", props}}
                          .dump(2) +
                      "\n");
  H5Writer w(h5_path);
  w.write("properties", table,
          {{"columns", std::string("centre_x_m, centre_y_m, depth_m, n_fibres, "
                                   "end_plate_shift_m, cv_m_per_s, amplitude_scale, "
                                   "relative_residual")},
           {"muscle", muscle}});
  w.commit();
}

} // namespace myotwin::inversion
