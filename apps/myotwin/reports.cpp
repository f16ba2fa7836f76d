// What several commands print: the label table of a subject, the muscle table of an anatomy,
// the report of a subject built from a scan, the placed electrodes and the lead fields' summary.

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>

#include "common.hpp"
#include "layout.hpp"
#include "myotwin/anatomy/muscle_model.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "myotwin/core/resources.hpp"
#include "myotwin/core/units.hpp"
#include "myotwin/forward/conductor/lead_field_run.hpp"
#include "myotwin/forward/electrodes/electrodes.hpp"

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

void print_muscle_table(std::ostream& out, const anatomy::SubjectAnatomy& built) {
  using units::m_to_mm;
  int w = 10;
  for (const auto& m : built.muscles)
    w = std::max(w, static_cast<int>(m.geometry.name.size()) + 2);
  out << std::left << std::setw(w) << "muscle" << std::right << std::setw(10) << "vol_cm3"
      << std::setw(11) << "length_mm" << std::setw(9) << "fibres" << std::setw(7) << "units"
      << std::setw(15) << "fibre_len_mm" << std::setw(12) << "angle_deg" << std::setw(11)
      << "complete" << std::setw(8) << "time_s"
      << "\n";
  out << std::fixed;
  for (const auto& m : built.muscles) {
    out << std::left << std::setw(w) << m.geometry.name << std::right << std::setw(10)
        << std::setprecision(2) << units::m3_to_cm3(m.geometry.volume_m3) << std::setw(11)
        << std::setprecision(1) << m_to_mm(m.geometry.length_m) << std::setw(9)
        << m.fibres.fibres.size() << std::setw(7) << m.pool.units.size() << std::setw(15)
        << m_to_mm(m.statistics.mean_length_m) << std::setw(12)
        << m.statistics.mean_angle_to_axis_deg << std::setw(10)
        << 100.0 * m.statistics.fraction_tendon_to_tendon << "%" << std::setw(8)
        << std::setprecision(2) << m.build_time_s << "\n";
  }
  out << std::defaultfloat;
}

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
    const bool missing = s.name.empty(); // not in the tissue table
    out << std::left << std::setw(6) << s.label << std::setw(28)
        << (missing ? std::string("(missing from the table)") : s.name) << std::setw(8)
        << (missing ? std::string("?") : anatomy::to_string(s.tissue_class)) << std::right
        << std::setw(11) << s.n_voxels << std::setw(12) << std::setprecision(3)
        << units::m3_to_cm3(s.volume_m3) << "  (" << std::setprecision(1)
        << m_to_mm(s.bbox_min_m[0]) << ", " << m_to_mm(s.bbox_min_m[1]) << ", "
        << m_to_mm(s.bbox_min_m[2]) << ") .. (" << m_to_mm(s.bbox_max_m[0]) << ", "
        << m_to_mm(s.bbox_max_m[1]) << ", " << m_to_mm(s.bbox_max_m[2]) << ")\n";
  }
  out << std::defaultfloat;
}

namespace {

void print_layer(std::ostream& out, const char* name, const anatomy::LayerThickness& t) {
  using units::m_to_mm;
  out << std::fixed << std::setprecision(2) << "  " << name << ": mean " << m_to_mm(t.mean_m)
      << " mm, 5-95 % " << m_to_mm(t.p5_m) << " .. " << m_to_mm(t.p95_m) << " mm, range "
      << m_to_mm(t.min_m) << " .. " << m_to_mm(t.max_m) << " mm (" << t.n_samples
      << " surface voxels)\n"
      << std::defaultfloat;
}

} // namespace

void print_subject_report(std::ostream& out, const anatomy::BuiltSubject& built,
                          const std::string& unknown_as) {
  const auto& r = built.report;
  print_anatomy_table(out, built.volume, anatomy::summarise_labels(built.volume, built.tissues));
  out << "\nlabels: " << r.labels_source;
  if (!r.unknown_labels.empty())
    out << " (" << r.unknown_labels.size() << " unknown ids as " << unknown_as << ")";
  out << "\nregion of interest: " << r.roi_size[0] << " x " << r.roi_size[1] << " x "
      << r.roi_size[2] << " input voxels from (" << r.roi_first[0] << ", " << r.roi_first[1] << ", "
      << r.roi_first[2] << "); cut faces:";
  for (const auto& f : r.cut_faces)
    out << " " << f;
  out << (r.cut_faces.empty() ? " none" : "");
  if (!r.cut_muscles.empty()) {
    out << "\nmuscles cut by the region of interest or the field of view (origin/insertion at "
           "the cut in `anatomy`):";
    for (const auto& m : r.cut_muscles) {
      out << "\n  " << m.name << (m.of_interest ? " (named)" : "") << ":";
      for (std::size_t f = 0; f < m.faces.size(); ++f)
        out << " " << m.faces[f] << " " << m.voxels[f] << " voxels"
            << (f + 1 < m.faces.size() ? "," : "");
    }
  }
  out << "\nbody: " << r.body_source;
  if (r.modality != "none")
    out << " (" << r.modality << ", threshold " << format_number(r.body_threshold) << ")";
  out << ", " << r.n_parts << " part(s), " << r.n_components
      << " connected component after building\n";
  out << "layers (fat from " << r.fat_source << "):\n";
  print_layer(out, "skin", r.skin);
  print_layer(out, "subcutaneous fat", r.fat);
  for (const auto& w : r.warnings)
    out << "warning: " << w << "\n";
}

void print_leadfield_summary(std::ostream& out, const nlohmann::json& s,
                             const forward::ElectrodeLayout& layout,
                             const forward::LeadFieldRun& run,
                             const std::filesystem::path& cache_file) {
  double ratio_lo = 0.0, ratio_hi = 0.0;
  bool any = false;
  for (const auto& e : layout.electrodes)
    if (e.kind == forward::ElectrodeKind::pad) {
      const double r = e.area_m2 / e.nominal_area_m2;
      ratio_lo = any ? std::min(ratio_lo, r) : r;
      ratio_hi = any ? std::max(ratio_hi, r) : r;
      any = true;
    }
  const auto n_el = s["n_electrodes"].get<double>();
  out << "lead fields: " << s["n_nodes"].get<std::int64_t>() << " nodes, "
      << s["n_tets"].get<std::int64_t>() << " tets, " << n_el << " electrodes, reference "
      << layout.reference << "\n";
  if (any)
    out << "pads: area / nominal area " << std::setprecision(3) << ratio_lo << " to " << ratio_hi
        << "\n";
  if (run.cache_hit)
    out << "cache hit (" << cache_file.string() << ", key " << run.key << ")\n";
  else
    out << "method " << forward::to_string(run.solver.method) << " (" << run.solver.ordering
        << "), factor " << std::setprecision(3) << run.solver.analyse_s + run.solver.factor_s
        << " s, " << format_gib(run.solver.factor_bytes) << "; solve " << run.solve_s << " s, "
        << 1e3 * run.solve_s / std::max(1.0, n_el) << " ms per electrode\n";
  const ProcessMemory memory = process_memory();
  out << "memory: " << format_gib(memory.resident_bytes) << " resident, "
      << format_gib(memory.peak_bytes) << " peak; total " << std::setprecision(3)
      << s["time_s"].get<double>() << " s\n";
}

void print_electrode_placement(std::ostream& out, const forward::ElectrodeLayout& layout) {
  const auto& a = layout.axis;
  const auto v = [](const Eigen::Vector3d& x, double scale) {
    std::ostringstream s;
    s << std::setprecision(4) << "(" << x.x() * scale << ", " << x.y() * scale << ", "
      << x.z() * scale << ")";
    return s.str();
  };
  out << "limb axis: direction " << v(a.axis, 1.0) << " ("
      << (a.set_by_config ? "electrodes.limb_axis"
                          : "principal axis of the mesh nodes; set "
                            "electrodes.limb_axis to change it")
      << "), from " << v(a.origin_m, 1e3) << " mm, " << std::setprecision(4) << a.length_m * 1e3
      << " mm long\n";
  for (const auto& p : layout.placements)
    out << "placed '" << p.group << "' over " << p.tissue << ": centre " << v(p.centre_m, 1e3)
        << " mm (LPS), rows " << std::setprecision(3) << p.rotation_deg
        << " deg from the limb axis\n";
}

void write_pipeline_summary(const Layout& layout, double time_s, bool quiet) {
  const auto sim = read_json(layout[Output::simulate_report]);
  const auto dec = read_json(layout[Output::decomposition_summary]);
  const auto score = read_json(layout[Output::score]);
  int recruited = 0;
  for (const auto& u : sim.at("units"))
    recruited += u.at("n_discharges").get<int>() > 0;
  const nlohmann::json summary = {{"units_simulated", sim.at("n_units")},
                                  {"units_recruited", recruited},
                                  {"units_identified", dec.at("n_units")},
                                  {"units_matched", score.at("n_matched")},
                                  {"mean_roa", score.at("mean_roa")},
                                  {"matches", score.at("matches")},
                                  {"time_s", time_s}};
  write_text_file(layout[Output::pipeline_summary], summary.dump(2) + "\n");
  if (quiet)
    return;
  std::cout << "\nunits simulated " << summary["units_simulated"] << ", recruited " << recruited
            << ", identified " << summary["units_identified"] << ", matched "
            << summary["units_matched"] << "\n";
  std::cout << "  true unit  decomposed    RoA  sensitivity  precision\n";
  for (const auto& m : score.at("matches"))
    std::cout << std::setw(11) << m.at("true_unit").get<std::int64_t>() << std::setw(12)
              << m.at("decomposed_unit").get<std::int64_t>() << std::fixed << std::setprecision(3)
              << std::setw(7) << m.at("roa").get<double>() << std::setw(13)
              << m.at("sensitivity").get<double>() << std::setw(11)
              << m.at("precision").get<double>() << "\n";
  std::cout << "mean RoA " << std::setprecision(3) << score.at("mean_roa").get<double>()
            << "; total " << std::setprecision(1) << time_s << " s; "
            << layout[Output::pipeline_summary].string() << "\n";
}

} // namespace myotwin::app
