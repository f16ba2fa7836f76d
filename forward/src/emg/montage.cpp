#include "myotwin/forward/emg/montage.hpp"

#include <map>
#include <utility>

#include "myotwin/core/error.hpp"

namespace myotwin::forward {

namespace {

const std::vector<std::pair<Montage, std::string>>& names() {
  static const std::vector<std::pair<Montage, std::string>> n{
      {Montage::monopolar, "monopolar"},   {Montage::sd_rows, "sd_rows"},
      {Montage::sd_columns, "sd_columns"}, {Montage::dd_rows, "dd_rows"},
      {Montage::dd_columns, "dd_columns"}, {Montage::laplacian, "laplacian"}};
  return n;
}

/// (row offset, column offset, weight) of each term of a montage.
std::vector<std::tuple<int, int, double>> stencil(Montage m) {
  switch (m) {
  case Montage::monopolar:
    return {{0, 0, 1.0}};
  case Montage::sd_rows:
    return {{1, 0, 1.0}, {0, 0, -1.0}};
  case Montage::sd_columns:
    return {{0, 1, 1.0}, {0, 0, -1.0}};
  case Montage::dd_rows:
    return {{1, 0, 1.0}, {0, 0, -2.0}, {-1, 0, 1.0}};
  case Montage::dd_columns:
    return {{0, 1, 1.0}, {0, 0, -2.0}, {0, -1, 1.0}};
  case Montage::laplacian:
    return {{0, 0, 4.0}, {-1, 0, -1.0}, {1, 0, -1.0}, {0, -1, -1.0}, {0, 1, -1.0}};
  }
  return {};
}

} // namespace

std::string to_string(Montage montage) {
  for (const auto& [m, n] : names())
    if (m == montage)
      return n;
  return "?";
}

Montage montage_from_string(const std::string& name) {
  std::string allowed;
  for (const auto& [m, n] : names()) {
    if (n == name)
      return m;
    allowed += (allowed.empty() ? "" : ", ") + n;
  }
  throw BadInput("montage \"" + name + "\": unknown; expected one of " + allowed);
}

MontageWeights montage_weights(const Eigen::Ref<const MatrixXi64>& grid_row_col, Montage montage,
                               bool wrap_columns) {
  std::map<std::pair<std::int64_t, std::int64_t>, Eigen::Index> at;
  std::int64_t n_columns = 0;
  for (Eigen::Index ch = 0; ch < grid_row_col.rows(); ++ch) {
    const std::int64_t r = grid_row_col(ch, 0), c = grid_row_col(ch, 1);
    if (r < 0 || c < 0)
      continue;
    if (!at.emplace(std::make_pair(r, c), ch).second)
      throw BadInput("montage " + to_string(montage) + ": channels " +
                     std::to_string(at.at({r, c})) + " and " + std::to_string(ch) +
                     " share grid position (" + std::to_string(r) + ", " + std::to_string(c) + ")");
    n_columns = std::max(n_columns, c + 1);
  }
  const auto terms = stencil(montage);
  std::vector<Eigen::Triplet<double>> triplets;
  std::vector<std::pair<std::int64_t, std::int64_t>> anchors;
  for (const auto& [pos, ch] : at) { // map order: by row, then column
    std::vector<std::pair<Eigen::Index, double>> row;
    bool complete = true;
    for (const auto& [dr, dc, w] : terms) {
      std::int64_t c = pos.second + dc;
      if (wrap_columns && n_columns > 0)
        c = ((c % n_columns) + n_columns) % n_columns;
      const auto it = at.find({pos.first + dr, c});
      if (it == at.end()) {
        complete = false;
        break;
      }
      row.emplace_back(it->second, w);
    }
    if (!complete)
      continue;
    const auto d = static_cast<Eigen::Index>(anchors.size());
    for (const auto& [c, w] : row)
      triplets.emplace_back(d, c, w);
    anchors.push_back(pos);
  }
  if (anchors.empty())
    throw BadInput("montage " + to_string(montage) + ": the grid (" + std::to_string(at.size()) +
                   " electrodes) has no position where every electrode it needs exists");
  MontageWeights out;
  out.montage = montage;
  out.weights.resize(static_cast<Eigen::Index>(anchors.size()), grid_row_col.rows());
  out.weights.setFromTriplets(triplets.begin(), triplets.end());
  out.anchor_row_col.resize(static_cast<Eigen::Index>(anchors.size()), 2);
  for (std::size_t i = 0; i < anchors.size(); ++i) {
    out.anchor_row_col(static_cast<Eigen::Index>(i), 0) = anchors[i].first;
    out.anchor_row_col(static_cast<Eigen::Index>(i), 1) = anchors[i].second;
  }
  return out;
}

} // namespace myotwin::forward
