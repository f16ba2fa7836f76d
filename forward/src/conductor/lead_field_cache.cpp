#include "myotwin/forward/conductor/lead_field_cache.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

#include "myotwin/core/error.hpp"
#include "myotwin/core/hash.hpp"
#include "myotwin/core/hdf5_io.hpp"
#include "myotwin/forward/conductor/fem.hpp"

namespace myotwin::forward {

namespace {

template <class M> std::uint64_t hash_matrix(const M& m, std::uint64_t h) {
  const std::int64_t dims[2] = {static_cast<std::int64_t>(m.rows()),
                                static_cast<std::int64_t>(m.cols())};
  h = fnv1a64(dims, sizeof dims, h);
  return fnv1a64(m.data(), sizeof(typename M::Scalar) * static_cast<std::size_t>(m.size()), h);
}

std::string text_attribute(const Attributes& a, const std::string& name) {
  const auto it = a.find(name);
  if (it == a.end() || !std::holds_alternative<std::string>(it->second))
    return {};
  return std::get<std::string>(it->second);
}

} // namespace

std::uint64_t lead_field_key(const meshing::TetMesh& mesh, const TensorArray& tensors,
                             std::int64_t reference_node, const ElectrodeLayout& layout) {
  std::uint64_t h = fnv1a64("myotwin lead fields v1", 22);
  h = hash_matrix(mesh.nodes_m, h);
  h = hash_matrix(mesh.tets, h);
  h = fnv1a64(mesh.labels.data(), sizeof(std::int32_t) * mesh.labels.size(), h);
  h = hash_matrix(mesh.fibre_direction, h);
  h = hash_matrix(tensors, h);
  h = fnv1a64(&reference_node, sizeof reference_node, h);
  return hash_layout(layout, h);
}

std::uint64_t sampling_key(std::uint64_t lead_key,
                           const Eigen::Ref<const Eigen::MatrixX3d>& points_m) {
  const Eigen::MatrixX3d p = points_m;
  return hash_matrix(p, lead_key);
}

LeadFieldIdentity lead_field_identity(const meshing::TetMesh& mesh,
                                      const anatomy::TissueTable& tissues,
                                      std::int64_t requested_reference_node,
                                      const ElectrodeLayout& layout) {
  LeadFieldIdentity id;
  id.tensors = conductivity_tensors(mesh, tissues);
  id.reference_node =
      requested_reference_node >= 0 ? requested_reference_node : default_reference_node(mesh);
  id.key = lead_field_key(mesh, id.tensors, id.reference_node, layout);
  return id;
}

std::string key_hex(std::uint64_t key) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(key));
  return buffer;
}

void write_lead_field_cache(const std::filesystem::path& path, const LeadFieldCache& cache) {
  H5Writer w(path);
  w.set_attributes("/",
                   {{"cache_key", cache.key},
                    {"reference", cache.reference},
                    {"reference_node", cache.reference_node},
                    {"method", cache.method},
                    {"n_nodes", static_cast<std::int64_t>(cache.lead_fields_V_per_A.rows())},
                    {"n_electrodes", static_cast<std::int64_t>(cache.lead_fields_V_per_A.cols())}});
  w.write("lead_fields", cache.lead_fields_V_per_A,
          {{"units", std::string("V/A")},
           {"shape", std::string("#nodes x #electrodes")},
           {"reference", cache.reference}});
  if (!cache.sampling_key.empty()) {
    const auto& loc = cache.locations;
    VectorXi64 tet(loc.size());
    for (Eigen::Index i = 0; i < loc.size(); ++i)
      tet[i] = loc.tet[static_cast<std::size_t>(i)];
    w.set_attributes("/fibre_points", {{"sampling_key", cache.sampling_key},
                                       {"n_points", static_cast<std::int64_t>(loc.size())},
                                       {"n_outside", loc.n_outside()}});
    w.write("fibre_points/positions_m", Eigen::MatrixXd(cache.points_m),
            {{"units", std::string("m")}});
    w.write_vector("fibre_points/tet", tet);
    w.write("fibre_points/nodes", MatrixXi64(loc.nodes.cast<std::int64_t>()));
    w.write("fibre_points/weights", Eigen::MatrixXd(loc.weights));
    if (cache.sampled_V_per_A.size() > 0)
      w.write("fibre_points/lead_fields", cache.sampled_V_per_A,
              {{"units", std::string("V/A")}, {"shape", std::string("#points x #electrodes")}});
  }
  w.commit();
}

std::string read_cache_key(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path))
    return {};
  try {
    const H5Reader r(path);
    return text_attribute(r.attributes("/"), "cache_key");
  } catch (const Error&) {
    return {};
  }
}

std::optional<LeadFieldCache> read_lead_field_cache(const std::filesystem::path& path,
                                                    const std::string& key,
                                                    const std::string& sampling_key_hex) {
  if (key.empty() || read_cache_key(path) != key)
    return std::nullopt;
  const H5Reader r(path);
  LeadFieldCache c;
  const Attributes a = r.attributes("/");
  c.key = key;
  c.reference = text_attribute(a, "reference");
  c.method = text_attribute(a, "method");
  if (const auto it = a.find("reference_node");
      it != a.end() && std::holds_alternative<std::int64_t>(it->second))
    c.reference_node = std::get<std::int64_t>(it->second);
  c.lead_fields_V_per_A = r.read_double("lead_fields");
  if (!sampling_key_hex.empty() && r.contains("fibre_points") &&
      text_attribute(r.attributes("/fibre_points"), "sampling_key") == sampling_key_hex) {
    c.sampling_key = sampling_key_hex;
    c.points_m = r.read_double("fibre_points/positions_m");
    const MatrixXi64 tet = r.read_int64("fibre_points/tet");
    const MatrixXi64 nodes = r.read_int64("fibre_points/nodes");
    const Eigen::MatrixXd weights = r.read_double("fibre_points/weights");
    const Eigen::Index n = c.points_m.rows();
    if (tet.rows() != n || nodes.rows() != n || nodes.cols() != 4 || weights.rows() != n ||
        weights.cols() != 4)
      throw BadInput(path.string() + ": fibre_points: datasets of inconsistent shapes for " +
                     std::to_string(n) + " points");
    c.locations.tet.resize(static_cast<std::size_t>(n));
    for (Eigen::Index i = 0; i < n; ++i)
      c.locations.tet[static_cast<std::size_t>(i)] = tet(i, 0);
    c.locations.nodes = nodes.cast<std::int32_t>();
    c.locations.weights = weights;
    if (r.contains("fibre_points/lead_fields"))
      c.sampled_V_per_A = r.read_double("fibre_points/lead_fields");
  }
  return c;
}

Eigen::MatrixXd sample_or_nan(const PointLocations& locations,
                              const Eigen::Ref<const Eigen::MatrixXd>& nodal_values) {
  const Eigen::Index n = locations.size();
  Eigen::MatrixXd out(n, nodal_values.cols());
#pragma omp parallel for schedule(static)
  for (Eigen::Index p = 0; p < n; ++p) {
    if (locations.tet[static_cast<std::size_t>(p)] < 0) {
      out.row(p).setConstant(std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    out.row(p) = locations.weights(p, 0) * nodal_values.row(locations.nodes(p, 0));
    for (int k = 1; k < 4; ++k)
      out.row(p) += locations.weights(p, k) * nodal_values.row(locations.nodes(p, k));
  }
  return out;
}

} // namespace myotwin::forward
