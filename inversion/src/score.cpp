#include "myotwin/inversion/score.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/forward/drive/discharge_import.hpp"

namespace myotwin::inversion {

namespace {

double fs_attribute(const H5Reader& h5, const std::string& object, const std::string& file) {
  const auto attrs = h5.attributes(object);
  const auto it = attrs.find("fs_Hz");
  if (it != attrs.end()) {
    if (const auto* d = std::get_if<double>(&it->second))
      return *d;
    if (const auto* i = std::get_if<std::int64_t>(&it->second))
      return static_cast<double>(*i);
  }
  throw BadInput(file + ": " + object + ": no numeric attribute fs_Hz (sampling rate [Hz])");
}

std::vector<std::int64_t> read_train(const H5Reader& h5, const std::string& name) {
  std::vector<std::int64_t> out;
  const auto shape = h5.shape(name);
  std::size_t n = 1;
  for (const auto d : shape)
    n *= d;
  if (n == 0)
    return out;
  const MatrixXi64 m = h5.read_int64(name);
  out.assign(m.data(), m.data() + m.size());
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

namespace {

/// Rejects negative indices and, when the length is known, indices past the recording's end.
void check_indices(const SpikeTrains& t) {
  for (std::size_t u = 0; u < t.samples.size(); ++u) {
    if (t.samples[u].empty())
      continue;
    const std::int64_t first = t.samples[u].front(), last = t.samples[u].back();
    const std::string unit = t.source.string() + ": unit " + std::to_string(t.unit_id[u]);
    if (first < 0)
      throw BadInput(unit + ": discharge at sample " + std::to_string(first) +
                     ": expected 0-based sample indices >= 0");
    if (t.n_samples > 0 && last >= t.n_samples)
      throw BadInput(unit + ": discharge at sample " + std::to_string(last) +
                     ": past the end of the recording (" + std::to_string(t.n_samples) +
                     " samples); expected indices < " + std::to_string(t.n_samples));
  }
}

SpikeTrains read_unchecked(const std::filesystem::path& path);

} // namespace

SpikeTrains read_spike_trains(const std::filesystem::path& path) {
  SpikeTrains t = read_unchecked(path);
  check_indices(t);
  return t;
}

namespace {

SpikeTrains read_unchecked(const std::filesystem::path& path) {
  SpikeTrains t;
  t.source = path;
  auto ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (ext == ".mat") {
    const auto imported = forward::read_discharges_mat(path);
    if (!imported.fs_Hz)
      throw BadInput(path.string() + ": no fsamp");
    t.fs_Hz = *imported.fs_Hz;
    t.unit_id = imported.unit_ids;
    t.samples = imported.sample_indices;
    for (auto& s : t.samples)
      std::sort(s.begin(), s.end());
    return t;
  }
  if (!std::filesystem::exists(path))
    throw IoError(path.string() + ": not found");
  const H5Reader h5(path);
  const std::string file = path.string();
  if (h5.contains("truth/spikes")) {
    t.fs_Hz = fs_attribute(h5, "/", file);
    if (h5.contains("emg")) {
      const auto shape = h5.shape("emg");
      if (shape.size() == 2)
        t.n_samples = static_cast<std::int64_t>(shape[1]);
    }
    std::vector<std::int64_t> ids;
    if (h5.contains("truth/unit_id")) {
      const auto m = h5.read_int64("truth/unit_id");
      ids.assign(m.data(), m.data() + m.size());
    } else {
      for (const auto& name : h5.list("truth/spikes")) {
        const bool digits = !name.empty() && name.size() <= 18 &&
                            name.find_first_not_of("0123456789") == std::string::npos;
        if (!digits)
          throw BadInput(file + ": truth/spikes/" + name +
                         ": expected datasets named by their unit id (0, 1, ...)");
        ids.push_back(std::stoll(name));
      }
      std::sort(ids.begin(), ids.end());
    }
    for (const auto id : ids) {
      const std::string name = "truth/spikes/" + std::to_string(id);
      if (!h5.contains(name))
        throw BadInput(file + ": truth/unit_id lists " + std::to_string(id) + " but " + name +
                       " is missing");
      t.unit_id.push_back(id);
      t.samples.push_back(read_train(h5, name));
    }
    return t;
  }
  if (h5.contains("units/discharges") || h5.contains("units/unit_id")) { // 0 units: no group
    t.fs_Hz = fs_attribute(h5, "/", file);
    const auto attrs = h5.attributes("/");
    if (const auto it = attrs.find("n_samples"); it != attrs.end())
      if (const auto* n = std::get_if<std::int64_t>(&it->second))
        t.n_samples = *n;
    const auto m = h5.read_int64("units/unit_id");
    for (Eigen::Index k = 0; k < m.size(); ++k) {
      t.unit_id.push_back(m(k));
      t.samples.push_back(read_train(h5, "units/discharges/" + std::to_string(m(k))));
    }
    return t;
  }
  throw BadInput(file + ": no discharge trains: expected truth/spikes (emg.h5), "
                        "units/discharges (decomposition.h5) or a .mat with MUPulses");
}

} // namespace

std::int64_t count_common(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b,
                          std::int64_t lag, std::int64_t tolerance) {
  std::size_t i = 0, j = 0;
  std::int64_t common = 0;
  while (i < a.size() && j < b.size()) {
    const std::int64_t x = a[i] + lag;
    if (x < b[j] - tolerance)
      ++i;
    else if (x > b[j] + tolerance)
      ++j;
    else {
      ++common;
      ++i;
      ++j;
    }
  }
  return common;
}

PairAgreement compare_trains(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b,
                             std::int64_t tolerance, std::int64_t max_lag) {
  const auto n_lags = static_cast<std::size_t>(2 * max_lag + 1);
  std::vector<std::int64_t> counts(n_lags);
  for (std::size_t i = 0; i < n_lags; ++i)
    counts[i] = count_common(a, b, static_cast<std::int64_t>(i) - max_lag, tolerance);
  // The smallest |lag| with the largest count (the negative one on a tie), then the middle of
  // the run of lags around it with that count.
  std::int64_t best = 0, best_count = -1;
  for (std::int64_t step = 0; step <= max_lag; ++step)
    for (const std::int64_t lag : {-step, step})
      if (counts[static_cast<std::size_t>(lag + max_lag)] > best_count) {
        best_count = counts[static_cast<std::size_t>(lag + max_lag)];
        best = lag;
      }
  std::int64_t lo = best, hi = best;
  while (lo > -max_lag && counts[static_cast<std::size_t>(lo - 1 + max_lag)] == best_count)
    --lo;
  while (hi < max_lag && counts[static_cast<std::size_t>(hi + 1 + max_lag)] == best_count)
    ++hi;
  PairAgreement r;
  r.lag_samples = lo + (hi - lo) / 2;
  r.common = best_count;
  r.only_a = static_cast<std::int64_t>(a.size()) - r.common;
  r.only_b = static_cast<std::int64_t>(b.size()) - r.common;
  const auto total = r.common + r.only_a + r.only_b;
  r.roa = total > 0 ? static_cast<double>(r.common) / static_cast<double>(total) : 0.0;
  return r;
}

ScoreParams read_score_params(ConfigReader& section) {
  ScoreParams p;
  p.tolerance_ms = section.optional<double>(
      "tolerance_ms", p.tolerance_ms, in_range(0.0, 100.0),
      "largest time difference at which a decomposed and a true discharge count as common");
  p.max_lag_ms = section.optional<double>(
      "max_lag_ms", p.max_lag_ms, in_range(0.0, 1000.0),
      "largest lag between a decomposed and a true train searched for the best agreement");
  p.min_roa = section.optional<double>(
      "min_roa", p.min_roa, in_range(0.0, 1.0),
      "smallest rate of agreement (RoA) at which a decomposed unit matches a true one");
  return p;
}

ScoreResult score(const SpikeTrains& decomposed, const SpikeTrains& truth,
                  const ScoreParams& params) {
  for (const auto* t : {&decomposed, &truth})
    if (!(t->fs_Hz > 0.0) || !std::isfinite(t->fs_Hz))
      throw BadInput(t->source.string() + ": fs_Hz = " + format_number(t->fs_Hz) + ": must be > 0");
  if (!(params.tolerance_ms >= 0.0 && params.tolerance_ms <= 100.0))
    throw BadInput("score: tolerance_ms = " + format_number(params.tolerance_ms) +
                   ": must be in [0, 100] ms");
  if (!(params.max_lag_ms >= 0.0 && params.max_lag_ms <= 1000.0))
    throw BadInput("score: max_lag_ms = " + format_number(params.max_lag_ms) +
                   ": must be in [0, 1000] ms (a lag between a decomposition and its recording "
                   "is a few ms)");
  if (decomposed.fs_Hz != truth.fs_Hz)
    log_warning("score: ", decomposed.source.string(), " is sampled at ",
                format_number(decomposed.fs_Hz), " Hz and ", truth.source.string(), " at ",
                format_number(truth.fs_Hz), " Hz; the decomposition's indices are rescaled");
  if (decomposed.n_samples > 0 && truth.n_samples > 0 &&
      std::llround(static_cast<double>(decomposed.n_samples) * truth.fs_Hz / decomposed.fs_Hz) !=
          truth.n_samples)
    log_warning("score: ", decomposed.source.string(), " covers ",
                format_number(static_cast<double>(decomposed.n_samples) / decomposed.fs_Hz),
                " s but ", truth.source.string(), " ",
                format_number(static_cast<double>(truth.n_samples) / truth.fs_Hz),
                " s: is it a decomposition of this recording?");
  if (!(params.min_roa >= 0.0 && params.min_roa <= 1.0))
    throw BadInput("score: min_roa = " + format_number(params.min_roa) + ": must be in [0, 1]");
  ScoreResult r;
  r.fs_Hz = truth.fs_Hz;
  r.tolerance_samples =
      static_cast<std::int64_t>(std::floor(params.tolerance_ms * 1e-3 * truth.fs_Hz + 1e-9));
  r.max_lag_samples =
      static_cast<std::int64_t>(std::floor(params.max_lag_ms * 1e-3 * truth.fs_Hz + 1e-9));
  r.n_decomposed = static_cast<std::int64_t>(decomposed.samples.size());
  r.n_truth = static_cast<std::int64_t>(truth.samples.size());
  const double ratio = truth.fs_Hz / decomposed.fs_Hz;
  std::vector<std::vector<std::int64_t>> dec(decomposed.samples.size());
  for (std::size_t u = 0; u < dec.size(); ++u) {
    for (const auto s : decomposed.samples[u])
      dec[u].push_back(
          ratio == 1.0 ? s
                       : static_cast<std::int64_t>(std::llround(static_cast<double>(s) * ratio)));
    std::sort(dec[u].begin(), dec[u].end());
  }
  std::vector<PairAgreement> pairs(dec.size() * truth.samples.size());
  const auto n_t = truth.samples.size();
  const auto n_pairs = static_cast<std::int64_t>(pairs.size());
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t p = 0; p < n_pairs; ++p) {
    const auto d = static_cast<std::size_t>(p) / n_t, t = static_cast<std::size_t>(p) % n_t;
    pairs[static_cast<std::size_t>(p)] =
        compare_trains(dec[d], truth.samples[t], r.tolerance_samples, r.max_lag_samples);
  }
  r.roa.resize(r.n_decomposed, r.n_truth);
  std::vector<std::size_t> order(pairs.size());
  std::iota(order.begin(), order.end(), 0);
  for (std::size_t p = 0; p < pairs.size(); ++p)
    r.roa(static_cast<Eigen::Index>(p / n_t), static_cast<Eigen::Index>(p % n_t)) = pairs[p].roa;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t x, std::size_t y) { return pairs[x].roa > pairs[y].roa; });
  std::vector<bool> dec_used(dec.size(), false), truth_used(n_t, false);
  for (const auto p : order) {
    const auto d = p / n_t, t = p % n_t;
    if (dec_used[d] || truth_used[t] || pairs[p].roa < params.min_roa || pairs[p].common == 0)
      continue;
    dec_used[d] = truth_used[t] = true;
    UnitMatch m;
    m.decomposed = static_cast<std::int64_t>(d);
    m.truth = static_cast<std::int64_t>(t);
    m.agreement = pairs[p];
    const auto n_true = static_cast<double>(truth.samples[t].size());
    const auto n_dec = static_cast<double>(dec[d].size());
    m.sensitivity = n_true > 0 ? static_cast<double>(pairs[p].common) / n_true : 0.0;
    m.precision = n_dec > 0 ? static_cast<double>(pairs[p].common) / n_dec : 0.0;
    r.matches.push_back(m);
  }
  for (std::size_t d = 0; d < dec.size(); ++d)
    if (!dec_used[d])
      r.unmatched_decomposed.push_back(static_cast<std::int64_t>(d));
  for (std::size_t t = 0; t < n_t; ++t)
    if (!truth_used[t])
      r.unmatched_truth.push_back(static_cast<std::int64_t>(t));
  for (const auto& m : r.matches) {
    r.mean_roa += m.agreement.roa;
    r.mean_sensitivity += m.sensitivity;
    r.mean_precision += m.precision;
  }
  if (!r.matches.empty()) {
    const auto n = static_cast<double>(r.matches.size());
    r.mean_roa /= n;
    r.mean_sensitivity /= n;
    r.mean_precision /= n;
  }
  return r;
}

nlohmann::json to_json(const ScoreResult& r, const SpikeTrains& decomposed,
                       const SpikeTrains& truth) {
  nlohmann::json matches = nlohmann::json::array();
  for (const auto& m : r.matches)
    matches.push_back(
        {{"decomposed_unit", decomposed.unit_id[static_cast<std::size_t>(m.decomposed)]},
         {"true_unit", truth.unit_id[static_cast<std::size_t>(m.truth)]},
         {"roa", m.agreement.roa},
         {"sensitivity", m.sensitivity},
         {"precision", m.precision},
         {"common", m.agreement.common},
         {"only_decomposed", m.agreement.only_a},
         {"only_true", m.agreement.only_b},
         {"lag_ms", 1e3 * static_cast<double>(m.agreement.lag_samples) / r.fs_Hz}});
  nlohmann::json un_d = nlohmann::json::array(), un_t = nlohmann::json::array();
  for (const auto d : r.unmatched_decomposed)
    un_d.push_back(decomposed.unit_id[static_cast<std::size_t>(d)]);
  for (const auto t : r.unmatched_truth)
    un_t.push_back(truth.unit_id[static_cast<std::size_t>(t)]);
  return {{"decomposition", decomposed.source.string()},
          {"truth", truth.source.string()},
          {"fs_Hz", r.fs_Hz},
          {"tolerance_samples", r.tolerance_samples},
          {"max_lag_samples", r.max_lag_samples},
          {"n_decomposed", r.n_decomposed},
          {"n_truth", r.n_truth},
          {"n_matched", r.matches.size()},
          {"mean_roa", r.mean_roa},
          {"mean_sensitivity", r.mean_sensitivity},
          {"mean_precision", r.mean_precision},
          {"matches", matches},
          {"unmatched_decomposed_units", un_d},
          {"unmatched_true_units", un_t}};
}

} // namespace myotwin::inversion
