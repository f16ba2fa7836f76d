#pragma once
/// \file lead_field_cache.hpp
/// The lead-field cache `OUT/forward/leadfields.h5` (layout in docs/formats.md): the lead fields
/// of a layout of electrodes on a mesh, and their sampling at the anatomy's fibre points (the
/// point location, tet and barycentric weights per point, and the sampled values), stored under
/// a key that hashes everything the lead fields depend on. A run whose key matches reuses them.
///
/// Key: FNV-1a 64 over the bytes of the mesh nodes, tets, labels, fibre directions, the per-tet
/// conductivity tensors (so every conductivity of the tissue table that is used), the grounded
/// node and the electrodes as placed (hash_layout()). The sampling has its own key: the lead
/// field key continued over the fibre points.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <Eigen/Core>

#include "myotwin/forward/conductor/conductivity.hpp"
#include "myotwin/forward/conductor/point_locator.hpp"
#include "myotwin/forward/electrodes/electrodes.hpp"
#include "myotwin/meshing/tet_mesh.hpp"

namespace myotwin::forward {

/// The key of the lead fields (see the file comment).
std::uint64_t lead_field_key(const meshing::TetMesh& mesh, const TensorArray& tensors,
                             std::int64_t reference_node, const ElectrodeLayout& layout);

/// The key of a sampling: `lead_key` continued over the bytes of `points_m` (#points x 3 [m]).
std::uint64_t sampling_key(std::uint64_t lead_key,
                           const Eigen::Ref<const Eigen::MatrixX3d>& points_m);

/// What identifies the lead fields of a run: the conductivity tensors, the grounded node and
/// the key over them, the mesh and the layout.
struct LeadFieldIdentity {
  TensorArray tensors;             ///< conductivity_tensors(mesh, tissues) [S/m]
  std::int64_t reference_node = 0; ///< `requested_reference_node` if >= 0, else the default
  std::uint64_t key = 0;           ///< lead_field_key() of all of them
};

/// The identity `myotwin leadfield` stores its cache under and `myotwin simulate` looks for.
/// \param requested_reference_node the config's grounded node, or -1 for
/// default_reference_node(). 	hrows BadInput (conductivity_tensors()).
LeadFieldIdentity lead_field_identity(const meshing::TetMesh& mesh,
                                      const anatomy::TissueTable& tissues,
                                      std::int64_t requested_reference_node,
                                      const ElectrodeLayout& layout);

/// A key as 16 lower-case hexadecimal digits.
std::string key_hex(std::uint64_t key);

/// What the cache file holds.
struct LeadFieldCache {
  std::string key;                 ///< lead_field_key() as hex
  std::int64_t reference_node = 0; ///< the grounded node
  std::string reference;           ///< "average" or the reference electrode's name
  std::string method;              ///< solver method that computed them
  /// #nodes x #electrodes lead fields [V/A], referenced as `reference` says.
  Eigen::MatrixXd lead_fields_V_per_A;
  /// Sampling at fibre points (empty key: none).
  std::string sampling_key;
  Eigen::MatrixX3d points_m; ///< #points x 3 fibre points [m]
  PointLocations locations;  ///< their tets and barycentric weights
  /// #points x #electrodes sampled lead fields [V/A] (NaN at points outside the mesh); may be
  /// empty when it would exceed the size limit (the locations are always stored).
  Eigen::MatrixXd sampled_V_per_A;
};

/// Writes the cache atomically. \throws IoError.
void write_lead_field_cache(const std::filesystem::path& path, const LeadFieldCache& cache);

/// The key stored in a cache file, or an empty string when the file is absent or unreadable.
std::string read_cache_key(const std::filesystem::path& path);

/// Reads the cache if it exists and its key is `key`; std::nullopt otherwise. The sampling is
/// read only when its key is `sampling_key_hex` (otherwise left empty).
/// \throws BadInput for a file with the right key but missing or misshapen datasets.
std::optional<LeadFieldCache> read_lead_field_cache(const std::filesystem::path& path,
                                                    const std::string& key,
                                                    const std::string& sampling_key_hex);

/// Samples nodal fields at located points like sample(), but points outside the mesh get NaN
/// instead of an error. `nodal_values`: #nodes x #fields; returns #points x #fields.
Eigen::MatrixXd sample_or_nan(const PointLocations& locations,
                              const Eigen::Ref<const Eigen::MatrixXd>& nodal_values);

} // namespace myotwin::forward
