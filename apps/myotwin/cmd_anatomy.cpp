// `myotwin anatomy info SUBJECT.json`: the image geometry and, per label, name, class, voxel
// count, volume and bounding box.

#include <cmath>
#include <iomanip>
#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/units.hpp"

namespace myotwin::app {

namespace {

/// The anatomical direction (LPS letters) closest to a unit vector, e.g. "L" or "-" if none.
char closest_axis(const Eigen::Vector3d& v) {
  Eigen::Index k = 0;
  v.cwiseAbs().maxCoeff(&k);
  const char positive[] = {'L', 'P', 'S'};
  const char negative[] = {'R', 'A', 'I'};
  return v[k] >= 0 ? positive[k] : negative[k];
}

} // namespace

void print_anatomy_table(std::ostream& out, const anatomy::LabelVolume& volume,
                         const std::vector<anatomy::LabelSummary>& summary) {
  using units::m_to_mm;
  out << std::fixed;
  out << "image: " << volume.size[0] << " x " << volume.size[1] << " x " << volume.size[2]
      << " voxels, spacing " << std::setprecision(3) << m_to_mm(volume.spacing_m[0]) << " x "
      << m_to_mm(volume.spacing_m[1]) << " x " << m_to_mm(volume.spacing_m[2]) << " mm\n";
  out << "origin: (" << std::setprecision(2) << m_to_mm(volume.origin_m[0]) << ", "
      << m_to_mm(volume.origin_m[1]) << ", " << m_to_mm(volume.origin_m[2]) << ") mm (LPS)\n";
  out << "orientation: i -> " << closest_axis(volume.direction.col(0)) << ", j -> "
      << closest_axis(volume.direction.col(1)) << ", k -> " << closest_axis(volume.direction.col(2))
      << "; direction matrix rows:";
  for (int r = 0; r < 3; ++r) {
    out << " [" << std::setprecision(4) << volume.direction(r, 0) << " " << volume.direction(r, 1)
        << " " << volume.direction(r, 2) << "]";
  }
  out << "\n\n";
  out << std::left << std::setw(6) << "label" << std::setw(28) << "name" << std::setw(8) << "class"
      << std::right << std::setw(11) << "voxels" << std::setw(12) << "volume_cm3"
      << "  bounding box [mm] (min .. max, LPS)\n";
  for (const auto& s : summary) {
    out << std::left << std::setw(6) << s.label << std::setw(28) << s.name << std::setw(8)
        << anatomy::to_string(s.tissue_class) << std::right << std::setw(11) << s.n_voxels
        << std::setw(12) << std::setprecision(3) << units::m3_to_cm3(s.volume_m3) << "  ("
        << std::setprecision(1) << m_to_mm(s.bbox_min_m[0]) << ", " << m_to_mm(s.bbox_min_m[1])
        << ", " << m_to_mm(s.bbox_min_m[2]) << ") .. (" << m_to_mm(s.bbox_max_m[0]) << ", "
        << m_to_mm(s.bbox_max_m[1]) << ", " << m_to_mm(s.bbox_max_m[2]) << ")\n";
  }
  out << std::defaultfloat;
}

void add_anatomy_command(CLI::App& app, std::function<int()>& run) {
  auto* anatomy_cmd = app.add_subcommand("anatomy", "inspect and build a subject's anatomy");
  anatomy_cmd->require_subcommand(1);
  auto options = std::make_shared<SharedOptions>();
  auto subject = std::make_shared<std::filesystem::path>();
  auto* info = anatomy_cmd->add_subcommand(
      "info", "per label: name, class, voxel count, volume [cm^3], bounding box [mm]; image "
              "size, spacing [mm] and orientation");
  info->add_option("SUBJECT", *subject, "subject file (subject.json)")->required();
  add_shared_options(*info, *options, false);
  info->callback([&run, options, subject] {
    run = [options, subject] {
      const RunConfig config = begin_run(*options);
      const anatomy::Subject s = anatomy::load_subject(*subject);
      const auto summary = anatomy::summarise_labels(s.volume, s.tissues);
      std::cout << "subject: " << s.files.name << " (" << subject->string() << ")\n";
      print_anatomy_table(std::cout, s.volume, summary);
      if (!options->output.empty()) {
        write_text_file(options->output / "anatomy_info.json",
                        anatomy::to_json(s.volume, summary).dump(2) + "\n");
        write_resolved_config(options->output, config);
      }
      return 0;
    };
  });
}

} // namespace myotwin::app
