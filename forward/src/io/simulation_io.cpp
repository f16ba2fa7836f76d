#include "myotwin/forward/io/simulation_io.hpp"

#include <algorithm>
#include <map>

#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/forward/io/emg_file.hpp"

namespace myotwin::forward {

namespace {

/// The montages of the first grid of `layout` (its channels only) into `path`.
void write_montages(const std::filesystem::path& path, const EmgResult& emg,
                    const ElectrodeLayout& layout, const ChannelLayout& channels,
                    const std::vector<Montage>& montages, bool ring) {
  MatrixXi64 grid_rc = channels.grid_row_col;
  const std::string group = layout.electrodes.empty() ? "" : layout.electrodes.front().group;
  for (Eigen::Index c = 0; c < grid_rc.rows(); ++c)
    if (layout.electrodes[static_cast<std::size_t>(c)].group != group)
      grid_rc.row(c).setConstant(-1);
  H5Writer w(path);
  w.set_attributes("/", {{"fs_Hz", emg.fs_Hz}, {"grid", group}});
  for (const auto m : montages) {
    const auto mw = montage_weights(grid_rc, m, ring);
    const std::string name = to_string(m);
    w.write(name + "/emg", mw.weights * emg.emg, {{"unit", std::string("V")}});
    w.write(name + "/emg_clean", mw.weights * emg.emg_clean, {{"unit", std::string("V")}});
    w.write(name + "/anchor_row_col", mw.anchor_row_col);
  }
  w.commit();
}

/// A unit's MUAP summary: the channel with the largest peak-to-peak, that peak-to-peak, and the
/// duration where |v| on that channel exceeds 5 % of its largest value [samples].
struct MuapSummary {
  Eigen::Index channel = 0;
  double peak_to_peak = 0.0;
  Eigen::Index duration_samples = 0;
};

MuapSummary summarise(const Eigen::MatrixXd& m) {
  MuapSummary s;
  s.peak_to_peak = (m.colwise().maxCoeff() - m.colwise().minCoeff()).maxCoeff(&s.channel);
  const Eigen::VectorXd v = m.col(s.channel);
  const double threshold = 0.05 * v.cwiseAbs().maxCoeff();
  Eigen::Index first = -1, last = -1;
  for (Eigen::Index n = 0; n < v.size(); ++n)
    if (std::abs(v[n]) > threshold) {
      first = first < 0 ? n : first;
      last = n;
    }
  s.duration_samples = last - first;
  return s;
}

} // namespace

void write_simulation(const SimulationFiles& files, const EmgSimulation& sim,
                      const ElectrodeLayout& layout, const std::vector<Montage>& montages,
                      bool ring) {
  const ChannelLayout channels = channel_layout(layout);
  Eigen::VectorXd reference;
  if (!sim.excitation.empty() && sim.excitation_fs_Hz == sim.emg.fs_Hz &&
      static_cast<Eigen::Index>(sim.excitation.size()) == sim.emg.emg.cols())
    reference = Eigen::Map<const Eigen::VectorXd>(sim.excitation.data(),
                                                  static_cast<Eigen::Index>(sim.excitation.size()));
  if (!files.muaps.empty())
    write_muaps_h5(files.muaps, sim);
  const MuscleForce force{sim.force, sim.force_muscles};
  if (!files.emg.empty())
    write_emg_h5(files.emg, sim.emg, sim.properties, channels, reference, force);
  if (!files.emg_mat.empty()) {
    const bool grid_only = std::all_of(layout.electrodes.begin(), layout.electrodes.end(),
                                       [](const PlacedElectrode& e) { return e.row >= 0; });
    ChannelLayout mat_channels = channels;
    if (!grid_only)
      mat_channels.grid_row_col.resize(0, 2); // needles: one SIG cell per channel
    write_emg_mat(files.emg_mat, sim.emg, sim.properties, mat_channels, reference, force);
  }
  if (!files.montages.empty() && !montages.empty())
    write_montages(files.montages, sim.emg, layout, channels, montages, ring);
}

nlohmann::json simulation_summary(const EmgSimulation& sim) {
  std::map<std::string, int> per_muscle;
  for (const auto& m : sim.properties.muscle)
    ++per_muscle[m];
  double p2p_lo = 1e300, p2p_hi = 0.0;
  nlohmann::json units = nlohmann::json::array();
  for (std::size_t u = 0; u < sim.muaps.size(); ++u) {
    const auto k = static_cast<Eigen::Index>(u);
    const MuapSummary s = summarise(sim.muaps[u]);
    p2p_lo = std::min(p2p_lo, s.peak_to_peak);
    p2p_hi = std::max(p2p_hi, s.peak_to_peak);
    units.push_back(
        {{"unit_id", sim.properties.unit_id[u]},
         {"muscle", sim.properties.muscle[u]},
         {"n_fibres", sim.properties.n_fibres[k]},
         {"depth_mm", 1e3 * sim.properties.depth_m[k]},
         {"peak_to_peak_uV", 1e6 * s.peak_to_peak},
         {"channel", s.channel},
         {"duration_ms", 1e3 * static_cast<double>(s.duration_samples) / sim.muap_fs_Hz},
         {"n_discharges", sim.discharge_times_s[u].size()}});
    if (sim.contraction_time_s.size() > 0) {
      units.back()["twitch_peak_force"] = sim.twitch_peak_force[k];
      units.back()["contraction_time_ms"] = 1e3 * sim.contraction_time_s[k];
    }
  }
  // Force: per muscle, the mean over the second half of the run and the peak.
  nlohmann::json forces = nlohmann::json::object();
  for (Eigen::Index k = 0; k < sim.force.rows(); ++k) {
    const Eigen::VectorXd f = sim.force.row(k).transpose();
    const Eigen::Index half = f.size() / 2;
    forces[sim.force_muscles[static_cast<std::size_t>(k)]] = {
        {"mean_second_half_fraction_of_max", f.tail(f.size() - half).mean()},
        {"peak_fraction_of_max", f.maxCoeff()}};
  }
  return {{"n_units", sim.units.size()},
          {"units_per_muscle", per_muscle},
          {"muap_fs_Hz", sim.muap_fs_Hz},
          {"muap_tail_samples_dropped", sim.muap_samples_dropped},
          {"emg_fs_Hz", sim.emg.fs_Hz},
          {"muap_peak_to_peak_V", {p2p_lo, p2p_hi}},
          {"force", forces},
          {"units", units}};
}

} // namespace myotwin::forward
