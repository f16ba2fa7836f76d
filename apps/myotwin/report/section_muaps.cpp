// The MUAP section: each chosen unit's MUAP over the whole grid, and peak-to-peak vs depth, from
// forward/muaps.h5 (the grid layout from forward/emg.h5).

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "data.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "sections.hpp"

namespace myotwin::app::report {

namespace {

constexpr double uV = 1e6;

/// The MUAPs of muaps.h5: units x channels x samples [V] in C order.
struct Muaps {
  std::size_t n_units = 0, n_channels = 0, n_samples = 0;
  std::vector<double> v;
  double fs_Hz = 0.0;
  double at(std::size_t u, std::size_t c, std::size_t s) const {
    return v[(u * n_channels + c) * n_samples + s];
  }
};

/// The unit's MUAP over the grid: one trace per channel, placed at its grid column (x) and row
/// (y, row 0 at the top), all cut to the span where the unit's largest |v| exceeds 1 % of its
/// peak (plus 2 ms each side). Traces in uV, full resolution.
nlohmann::json grid_chart(const Muaps& m, std::size_t u, std::int64_t unit_id, const MatrixXi64& rc,
                          const std::string& title) {
  double peak = 0.0;
  std::size_t first = m.n_samples, last = 0;
  for (std::size_t c = 0; c < m.n_channels; ++c)
    for (std::size_t s = 0; s < m.n_samples; ++s)
      peak = std::max(peak, std::abs(m.at(u, c, s)));
  for (std::size_t c = 0; c < m.n_channels; ++c)
    for (std::size_t s = 0; s < m.n_samples; ++s)
      if (std::abs(m.at(u, c, s)) > 0.01 * peak) {
        first = std::min(first, s);
        last = std::max(last, s);
      }
  const auto margin = static_cast<std::size_t>(0.002 * m.fs_Hz);
  first = first > margin ? first - margin : 0;
  last = std::min(m.n_samples - 1, std::max(last, first) + margin);
  const std::size_t n = last - first + 1;
  nlohmann::json values = nlohmann::json::array();
  for (std::size_t c = 0; c < m.n_channels; ++c) {
    nlohmann::json trace = nlohmann::json::array();
    for (std::size_t s = first; s <= last; ++s)
      trace.push_back(round_sig(m.at(u, c, s) * uV));
    values.push_back({{"ch", c},
                      {"row", rc(static_cast<Eigen::Index>(c), 0)},
                      {"col", rc(static_cast<Eigen::Index>(c), 1)},
                      {"unit", unit_id},
                      {"s0", first},
                      {"v", trace}});
  }
  const double half_uV = std::max(peak * uV, 1e-12);
  const double span_ms = 1e3 * static_cast<double>(n) / m.fs_Hz;
  return {
      {"title",
       {{"text", title},
        {"subtitle",
         "each cell: " + fmt(span_ms) + " ms wide, +-" + fmt(half_uV) +
             " uV tall (the unit's peak); grid columns left to right, row 0 at the top"}}},
      {"data", {{"values", values}}},
      {"transform",
       {{{"flatten", {"v"}}},
        {{"window", {{{"op", "row_number"}, {"as", "i"}}}}, {"groupby", {"ch"}}},
        {{"calculate", "datum.col + 0.9 * (datum.i - 1) / " + std::to_string(n)}, {"as", "x"}},
        {{"calculate", "-datum.row + 0.45 * datum.v / " + std::to_string(half_uV)}, {"as", "y"}}}},
      {"width", std::min<double>(950, 120.0 * (static_cast<double>(rc.col(1).maxCoeff()) + 1))},
      {"height", std::min<double>(1000, 50.0 * (static_cast<double>(rc.col(0).maxCoeff()) + 1))},
      {"mark", {{"type", "line"}, {"strokeWidth", 1}, {"color", "#1f4e99"}}},
      {"encoding",
       {{"x", {{"field", "x"}, {"type", "quantitative"}, {"axis", nullptr}}},
        {"y", {{"field", "y"}, {"type", "quantitative"}, {"axis", nullptr}}},
        {"detail", {{"field", "ch"}, {"type", "nominal"}}},
        {"order", {{"field", "i"}, {"type", "quantitative"}}}}}};
}

/// Peak-to-peak value of each unit's MUAP on its largest channel [V].
Eigen::VectorXd peak_to_peak(const Muaps& m) {
  Eigen::VectorXd out = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(m.n_units));
  for (std::size_t u = 0; u < m.n_units; ++u)
    for (std::size_t c = 0; c < m.n_channels; ++c) {
      double lo = 0.0, hi = 0.0;
      for (std::size_t s = 0; s < m.n_samples; ++s) {
        lo = std::min(lo, m.at(u, c, s));
        hi = std::max(hi, m.at(u, c, s));
      }
      out[static_cast<Eigen::Index>(u)] = std::max(out[static_cast<Eigen::Index>(u)], hi - lo);
    }
  return out;
}

/// The units to draw: the smallest, median and largest by fibres (ties broken by peak-to-peak),
/// the shallowest and deepest; a unit chosen twice is drawn once with both reasons.
std::vector<std::pair<std::size_t, std::string>> chosen_units(const Eigen::VectorXd& size,
                                                              const Eigen::VectorXd& p2p,
                                                              const Eigen::VectorXd& depth) {
  std::vector<std::size_t> order(static_cast<std::size_t>(size.size()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) {
    const auto i = static_cast<Eigen::Index>(a), j = static_cast<Eigen::Index>(b);
    return size[i] != size[j] ? size[i] < size[j] : p2p[i] < p2p[j];
  });
  std::vector<std::pair<std::size_t, std::string>> out = {{order.front(), "smallest"},
                                                          {order[order.size() / 2], "median size"},
                                                          {order.back(), "largest"}};
  Eigen::Index shallow = 0, deep = 0;
  if (depth.size() == size.size()) {
    depth.minCoeff(&shallow);
    depth.maxCoeff(&deep);
    out.emplace_back(static_cast<std::size_t>(shallow), "shallowest");
    out.emplace_back(static_cast<std::size_t>(deep), "deepest");
  }
  std::vector<std::pair<std::size_t, std::string>> unique;
  for (const auto& [u, why] : out) {
    auto it =
        std::find_if(unique.begin(), unique.end(), [&](const auto& p) { return p.first == u; });
    if (it == unique.end())
      unique.emplace_back(u, why);
    else
      it->second += ", " + why;
  }
  return unique;
}

nlohmann::json p2p_chart(const Eigen::VectorXd& p2p, const Eigen::VectorXd& depth,
                         const Eigen::VectorXd& size, const MatrixXi64& ids,
                         const std::vector<std::string>& muscles) {
  nlohmann::json values = nlohmann::json::array();
  for (std::size_t u = 0; u < static_cast<std::size_t>(p2p.size()); ++u) {
    const auto e = static_cast<Eigen::Index>(u);
    values.push_back({{"unit_id", ids(e, 0)},
                      {"depth_mm", depth.size() ? round_sig(depth[e] * 1e3) : 0.0},
                      {"n_fibres", size.size() ? size[e] : 0.0},
                      {"muscle", u < muscles.size() ? muscles[u] : ""},
                      {"p2p_uV", round_sig(p2p[e] * uV)}});
  }
  return {
      {"data", {{"values", values}}},
      {"width", 600},
      {"height", 300},
      {"mark", {{"type", "point"}, {"filled", true}, {"opacity", 0.7}}},
      {"encoding",
       {{"x",
         {{"field", "depth_mm"},
          {"type", "quantitative"},
          {"title", "territory centre depth [mm]"}}},
        {"y",
         {{"field", "p2p_uV"},
          {"type", "quantitative"},
          {"title", "peak-to-peak on the largest channel [uV]"},
          {"scale", {{"type", "log"}}}}},
        {"size", {{"field", "n_fibres"}, {"type", "quantitative"}, {"title", "fibres"}}},
        {"color", {{"field", "muscle"}, {"type", "nominal"}}},
        {"tooltip", {{{"field", "unit_id"}}, {{"field", "p2p_uV"}}, {{"field", "depth_mm"}}}}}}};
}

} // namespace

Section muap_section(const Layout& layout) {
  Section s{"muaps", "MUAPs", "", {}};
  const H5Reader h5(layout[Output::muaps]);
  Muaps m;
  const auto dims = h5.shape("muaps");
  m.n_units = dims.at(0);
  m.n_channels = dims.at(1);
  m.n_samples = dims.at(2);
  m.v = h5.read_double_values("muaps");
  m.fs_Hz = std::get<double>(h5.attributes("/").at("fs_Hz"));
  const MatrixXi64 ids = h5.read_int64("unit_id");
  const Eigen::VectorXd size = h5.contains("units/n_fibres")
                                   ? Eigen::VectorXd(h5.read_double("units/n_fibres").col(0))
                                   : Eigen::VectorXd::Ones(static_cast<Eigen::Index>(m.n_units));
  const Eigen::VectorXd depth = h5.contains("units/depth_m")
                                    ? Eigen::VectorXd(h5.read_double("units/depth_m").col(0))
                                    : Eigen::VectorXd();
  std::vector<std::string> muscles;
  if (h5.contains("units"))
    if (const auto a = h5.attributes("units"); a.count("muscle_per_unit"))
      muscles = split(std::get<std::string>(a.at("muscle_per_unit")), ';');
  MatrixXi64 rc;
  if (std::filesystem::exists(layout[Output::emg]))
    rc = grid_layout(H5Reader(layout[Output::emg]), static_cast<Eigen::Index>(m.n_channels));
  else
    rc = grid_layout(h5, static_cast<Eigen::Index>(m.n_channels));
  s.add_text(std::to_string(m.n_units) + " units, " + std::to_string(m.n_channels) +
             " channels, MUAPs at " + fmt(m.fs_Hz, 6) + " Hz from " +
             layout[Output::muaps].string() + " (monopolar, as referenced by the lead fields).");
  if (m.n_units == 0)
    return s;
  const Eigen::VectorXd p2p = peak_to_peak(m);
  for (const auto& [u, why] : chosen_units(size, p2p, depth)) {
    const auto e = static_cast<Eigen::Index>(u);
    const std::string title = "unit " + std::to_string(ids(e, 0)) +
                              (u < muscles.size() ? " (" + muscles[u] + ")" : "") + ": " + why +
                              "; " + fmt(size[e]) + " fibres" +
                              (depth.size() ? ", depth " + fmt(depth[e] * 1e3) + " mm" : "");
    s.add_chart(grid_chart(m, u, ids(e, 0), rc, title),
                "The MUAP of unit " + std::to_string(ids(e, 0)) + " (" + why +
                    ") on every electrode, at full resolution, each trace at its grid position.");
  }
  s.add_chart(p2p_chart(p2p, depth, size, ids, muscles),
              "Peak-to-peak amplitude of every unit's MUAP on its largest channel against the "
              "depth of its territory centre; point size: fibres.");
  return s;
}

} // namespace myotwin::app::report
