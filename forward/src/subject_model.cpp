#include "myotwin/forward/subject_model.hpp"

#include <algorithm>
#include <vector>

#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/meshing/mesh_io.hpp"

namespace myotwin::forward {

namespace {

/// `path`, or an IoError naming the command that makes it.
void require(const std::filesystem::path& path, const std::string& command) {
  if (!std::filesystem::exists(path))
    throw IoError(path.string() + ": not found: run `" + command + "` first");
}

} // namespace

std::unique_ptr<SubjectForwardModel>
load_subject_forward_model(const std::filesystem::path& subject_file,
                           const std::filesystem::path& out_dir, const ElectrodeConfig& electrodes,
                           std::int64_t reference_node) {
  auto model = std::make_unique<SubjectForwardModel>();
  const anatomy::SubjectFiles files = anatomy::read_subject_file(subject_file);
  model->tissues = anatomy::read_tissue_table(files.tissues);
  const std::string out = out_dir.string();
  const auto anatomy_dir = out_dir / "anatomy";
  const auto mesh_file = out_dir / "mesh" / "mesh.vtu";
  const auto cache_file = out_dir / "forward" / "leadfields.h5";
  require(anatomy_dir / "motor_units.h5",
          "myotwin anatomy " + subject_file.string() + " -o " + out);
  require(mesh_file, "myotwin mesh " + subject_file.string() + " -o " + out);
  require(cache_file, "myotwin leadfield " + subject_file.string() + " -o " + out);
  model->anatomy = anatomy::read_subject_anatomy(anatomy_dir);
  model->mesh = meshing::read_mesh_vtu(mesh_file, &model->tissues);

  // The lead fields of the same electrodes on the same mesh and conductivities.
  model->layout = place_electrodes(model->mesh, model->tissues, electrodes);
  const auto key =
      key_hex(lead_field_identity(model->mesh, model->tissues, reference_node, model->layout).key);
  auto cache = read_lead_field_cache(cache_file, key, "");
  if (!cache)
    throw BadInput(cache_file.string() + ": its key (" + read_cache_key(cache_file) +
                   ") is not that of this mesh, these conductivities and electrodes (" + key +
                   "): run `myotwin leadfield " + subject_file.string() + " -o " + out +
                   "` with the same config first");
  model->lead_fields = std::move(*cache);
  log_info("lead fields: ", model->lead_fields.lead_fields_V_per_A.cols(),
           " electrodes, reference ", model->lead_fields.reference, " (cache ", key, ")");
  model->locator = std::make_unique<PointLocator>(model->mesh);
  model->transfer =
      lead_field_transfer_function(*model->locator, model->lead_fields.lead_fields_V_per_A);

  // Skin: the nodes of the boundary faces.
  const meshing::TriArray skin = meshing::boundary_faces(model->mesh);
  std::vector<char> on_skin(static_cast<std::size_t>(model->mesh.n_nodes()), 0);
  for (Eigen::Index f = 0; f < skin.rows(); ++f)
    for (int c = 0; c < 3; ++c)
      on_skin[static_cast<std::size_t>(skin(f, c))] = 1;
  model->skin_points_m.resize(std::count(on_skin.begin(), on_skin.end(), 1), 3);
  for (std::size_t i = 0, row = 0; i < on_skin.size(); ++i)
    if (on_skin[i])
      model->skin_points_m.row(static_cast<Eigen::Index>(row++)) =
          model->mesh.nodes_m.row(static_cast<Eigen::Index>(i));
  return model;
}

} // namespace myotwin::forward
