#include "myotwin/forward/subject_model.hpp"

#include <algorithm>
#include <vector>

#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/meshing/mesh_io.hpp"

namespace myotwin::forward {

std::unique_ptr<SubjectForwardModel> load_subject_forward_model(const SubjectModelFiles& files,
                                                                const ElectrodeConfig& electrodes,
                                                                std::int64_t reference_node) {
  auto model = std::make_unique<SubjectForwardModel>();
  const anatomy::SubjectFiles subject = anatomy::read_subject_file(files.subject);
  model->tissues = anatomy::read_tissue_table(subject.tissues);
  model->anatomy = anatomy::read_subject_anatomy(files.anatomy_dir);
  model->mesh = meshing::read_mesh_vtu(files.mesh, &model->tissues);

  // The lead fields of the same electrodes on the same mesh and conductivities.
  model->layout = place_electrodes(model->mesh, model->tissues, electrodes);
  const auto key =
      key_hex(lead_field_identity(model->mesh, model->tissues, reference_node, model->layout).key);
  auto cache = read_lead_field_cache(files.lead_fields, key, "");
  if (!cache)
    throw BadInput(files.lead_fields.string() + ": its key (" + read_cache_key(files.lead_fields) +
                   ") is not that of this mesh, these conductivities and electrodes (" + key + ")" +
                   (files.rerun_hint.empty() ? "" : ": " + files.rerun_hint));
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
