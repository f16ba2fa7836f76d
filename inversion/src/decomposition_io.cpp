#include "myotwin/inversion/decomposition_io.hpp"

#include <memory>

#include "myotwin/forward/io/emg_file.hpp"

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/mat_file.hpp"

namespace myotwin::inversion {

namespace {

/// A 1 x n cell of matrices.
mat::Array cell_row(const std::vector<Eigen::MatrixXd>& matrices) {
  mat::Array cell = mat::Array::cell(1, matrices.size());
  for (std::size_t i = 0; i < matrices.size(); ++i)
    cell.elements[i] = mat::Array::matrix(static_cast<std::size_t>(matrices[i].rows()),
                                          static_cast<std::size_t>(matrices[i].cols()),
                                          matrices[i].size() > 0 ? matrices[i].data() : nullptr);
  return cell;
}

/// The #units x #samples matrix of the sources (IPTs, MUedit's Pulsetrain).
mat::Array sources_matrix(const Decomposition& d) {
  const auto n_units = d.units.size();
  mat::Array ipts = mat::Array::matrix(n_units, static_cast<std::size_t>(d.n_samples), nullptr);
  for (std::size_t u = 0; u < n_units; ++u)
    for (Eigen::Index i = 0; i < d.n_samples; ++i)
      ipts.values[u + n_units * static_cast<std::size_t>(i)] = d.units[u].source(i);
  return ipts;
}

/// MUedit's `signal` struct (what its editor reads when it imports a decomposition): the EMG
/// (`data`, #channels x #samples), `fsamp`, `nChan`, one grid (`ngrid`, `gridname`, `muscle`,
/// `emgtype` 1 = surface), `EMGmask` ({#channels x 1}, 1 = rejected), `Pulsetrain`
/// ({#units x #samples}), `Dischargetimes` (1 x #units cell of 1-based rows), and `target` /
/// `path` (the neural drive [pps], as the reference MUedit plots over the pulse trains).
mat::Array muedit_signal(const Decomposition& d, const forward::EmgRecording& recording) {
  const auto n_ch = static_cast<std::size_t>(recording.emg.rows());
  const auto n_samples = static_cast<std::size_t>(d.n_samples);
  std::vector<double> mask(n_ch, 0.0);
  for (std::size_t c = 0; c < d.preprocessing.channels.size() && c < n_ch; ++c)
    mask[c] = d.preprocessing.channels[c].rejected.empty() ? 0.0 : 1.0;
  mat::Array emg_mask = mat::Array::cell(1, 1);
  emg_mask.elements[0] = mat::Array::matrix(n_ch, 1, mask.data());
  mat::Array pulse_train = mat::Array::cell(1, 1);
  pulse_train.elements[0] = sources_matrix(d);
  std::vector<std::vector<std::int64_t>> one_based;
  for (const auto& u : d.units) {
    one_based.emplace_back();
    for (const auto i : u.discharges)
      one_based.back().push_back(i + 1);
  }
  mat::Array grid_name = mat::Array::cell(1, 1);
  grid_name.elements[0] = mat::Array::string(recording.source.stem().string());
  mat::Array muscle = mat::Array::cell(1, 1);
  muscle.elements[0] = mat::Array::string("");
  const Eigen::VectorXd drive = d.neural_drive_pps;
  return mat::Array::structure({
      {"data", mat::Array::matrix(n_ch, n_samples, recording.emg.data())},
      {"fsamp", mat::Array::number(d.fs_Hz)},
      {"nChan", mat::Array::number(static_cast<double>(n_ch))},
      {"ngrid", mat::Array::number(1.0)},
      {"gridname", std::move(grid_name)},
      {"muscle", std::move(muscle)},
      {"emgtype", mat::Array::number(1.0)},
      {"EMGmask", std::move(emg_mask)},
      {"Pulsetrain", std::move(pulse_train)},
      {"Dischargetimes", forward::demuse_pulses_cell(one_based)},
      {"target", mat::Array::matrix(1, n_samples, drive.data())},
      {"path", mat::Array::matrix(1, n_samples, drive.data())},
      {"IED", mat::Array::number(forward::inter_electrode_distance_mm(recording.grid_row_col,
                                                                      recording.position_m))},
  });
}

std::vector<double> units_values(const Decomposition& d, double MotorUnit::*member) {
  std::vector<double> v;
  for (const auto& u : d.units)
    v.push_back(u.*member);
  return v;
}

} // namespace

void write_decomposition_h5(const std::filesystem::path& path, const Decomposition& d,
                            const forward::EmgRecording& recording) {
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
                             const forward::EmgRecording& recording) {
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
    mat::Writer mat(tmp);
    mat.write("fsamp", mat::Array::number(d.fs_Hz));
    std::vector<Eigen::MatrixXd> pulses, filters;
    for (const auto& u : d.units) {
      Eigen::MatrixXd p(1, static_cast<Eigen::Index>(u.discharges.size()));
      for (std::size_t i = 0; i < u.discharges.size(); ++i)
        p(0, static_cast<Eigen::Index>(i)) = static_cast<double>(u.discharges[i] + 1);
      pulses.push_back(std::move(p));
      filters.push_back(u.filter);
    }
    mat.write("MUPulses", cell_row(pulses));
    mat.write("MUFilters", cell_row(filters));
    mat.write("IPTs", sources_matrix(d));
    for (const auto& [name, member] :
         {std::pair<const char*, double MotorUnit::*>{"SIL", &MotorUnit::sil},
          {"PNR", &MotorUnit::pnr_dB},
          {"CoV_ISI", &MotorUnit::cov_isi},
          {"CoV_ISI_local", &MotorUnit::cov_isi_local}})
      mat.write(name, mat::Array::row(units_values(d, member)));
    // SIG: the input EMG as a cell grid (DEMUSE layout).
    mat.write("SIG", forward::demuse_signal_cell(recording.emg, recording.grid_row_col,
                                                 recording.source.string() + ": SIG"));
    mat.write("ref_signal", mat::Array::matrix(1, n_samples, nullptr));
    const Eigen::VectorXd drive = d.neural_drive_pps;
    mat.write("neural_drive", mat::Array::matrix(1, n_samples, drive.data()));
    std::vector<double> discard;
    for (const auto& st : d.preprocessing.channels)
      discard.push_back(st.rejected.empty() ? 0.0 : 1.0);
    mat.write("discardChannelsVec", mat::Array::row(discard));
    mat.write("IED", mat::Array::number(forward::inter_electrode_distance_mm(
                         recording.grid_row_col, recording.position_m)));
    mat.write("signal", muedit_signal(d, recording));
  });
}

nlohmann::json summary_json(const Decomposition& d, const forward::EmgRecording& recording,
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
  nlohmann::json summary = {{"input", recording.source.string()},
                            {"fs_Hz", d.fs_Hz},
                            {"n_samples", d.n_samples},
                            {"duration_s", static_cast<double>(d.n_samples) / d.fs_Hz},
                            {"n_channels", d.n_channels},
                            {"extension_factor", d.extension_factor},
                            {"n_units", d.units.size()},
                            {"channels", to_json(d.preprocessing)},
                            {"parameters", to_json(params)},
                            {"units", units}};
  summary.update(stats_json(d.stats));
  return summary;
}

nlohmann::json stats_json(const DecomposeStats& s) {
  return {{"n_whitened", s.n_whitened},
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
            {"iterations", s.time_iterations_s}}}};
}

void write_fitted_properties(const std::filesystem::path& json_path,
                             const std::filesystem::path& h5_path,
                             const std::vector<FittedProperties>& properties,
                             const std::vector<std::string>& muscles) {
  std::string muscle;
  for (const auto& name : muscles)
    muscle += (muscle.empty() ? "" : ", ") + name;
  const bool several = muscles.size() > 1;
  nlohmann::json props = nlohmann::json::array();
  Eigen::VectorXd muscle_index(static_cast<Eigen::Index>(properties.size()));
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
    if (several)
      props.back()["muscle"] = muscles.at(p.muscle);
    muscle_index[u] = static_cast<double>(p.muscle);
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
  if (several)
    w.write("muscle_index", muscle_index, {{"muscles", muscle}});
  w.commit();
}

} // namespace myotwin::inversion
