#pragma once
/// \file muscle_model.hpp
/// The anatomy stage as a whole: for every muscle of a subject, its geometry, fibre field,
/// fibres and motor-unit pool, and the files that carry them to the next stages
/// (`OUT/anatomy/fibers.vtp`, `motor_units.h5`, `anatomy.json`).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "myotwin/anatomy/fibre_field.hpp"
#include "myotwin/anatomy/fibres.hpp"
#include "myotwin/anatomy/label_volume.hpp"
#include "myotwin/anatomy/motor_units.hpp"
#include "myotwin/anatomy/muscle_geometry.hpp"
#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/core/progress.hpp"
#include "myotwin/core/resources.hpp"

namespace myotwin {
class ConfigReader;
}

namespace myotwin::anatomy {

/// Parameters of the anatomy stage (config section `anatomy`, with sub-sections `geometry`,
/// `fibre_field`, `fibres`, `motor_units`).
struct AnatomyParams {
  std::vector<std::string> muscles; ///< muscles to build by name; empty: every muscle
  /// A muscle whose model fibres number fewer than this many per motor unit is seeded again
  /// with a proportionally higher model density (and the fibre weights fall accordingly).
  double min_fibres_per_unit = 5.0;
  MuscleGeometryParams geometry;
  FibreFieldParams fibre_field;
  FibreParams fibres;
  MotorUnitParams motor_units;
};

/// Reads the `anatomy` section. \throws BadInput.
AnatomyParams read_anatomy_params(ConfigReader& section);

/// Summary numbers of a muscle's fibres.
struct FibreStatistics {
  double mean_length_m = 0.0;
  double min_length_m = 0.0;
  double max_length_m = 0.0;
  double mean_angle_to_axis_deg = 0.0;    ///< mean angle of fibre segments to the principal axis
  double p95_angle_to_axis_deg = 0.0;     ///< 95th percentile of that angle
  double mean_curvature_per_m = 0.0;      ///< mean turning angle per arc length [rad/m]
  double fraction_tendon_to_tendon = 0.0; ///< fibres that reach both origin and insertion
};

/// One muscle, built.
struct MuscleModel {
  MuscleGeometry geometry;
  MuscleFibres fibres;
  MotorUnitPool pool;
  FibreStatistics statistics;
  std::int64_t field_iterations = 0;    ///< conjugate-gradient iterations of the fibre field
  double field_relative_residual = 0.0; ///< its final relative residual
  double model_density_per_m2 = 0.0;    ///< model fibre density used [1/m^2]
  bool model_density_raised = false;    ///< raised above the config's for the unit count
  double field_time_s = 0.0;            ///< wall time of geometry and fibre field [s]
  double build_time_s = 0.0;            ///< wall time for this muscle [s]
};

/// All muscles of a subject, in label order.
struct SubjectAnatomy {
  std::vector<MuscleModel> muscles;
  /// Muscles that could not be modelled and were skipped: name and reason.
  std::vector<std::pair<std::string, std::string>> skipped;
};

/// What build_subject_anatomy() will need on `threads` threads, before it starts: memory
/// [bytes] (the program and label volume, the fibres and pools kept until written, and the
/// working sets of the `threads` largest fibre-field solves at once) and wall time [s] (muscles
/// in parallel, then writing), from the muscles' voxel counts and bounding boxes and the
/// constants of docs/reliability.md ("Time estimates").
/// \throws BadInput as build_subject_anatomy() for a named muscle that is not one.
RunEstimate estimate_subject_anatomy(const LabelVolume& volume, const TissueTable& tissues,
                                     const AnatomyParams& params, int threads);

/// Builds every muscle of the subject (or those named in `params.muscles`). Each muscle draws
/// its random numbers from Rng(seed).split(label), so a muscle's result does not depend on
/// which other muscles are built, nor on the thread count. When no muscle is named, a muscle
/// that cannot be modelled (BadInput: too thin, origin and insertion overlapping, ...) is
/// skipped with a warning naming it and why (in `skipped`); a named one stops the build.
/// \throws BadInput naming the muscle (no voxels, too thin, no origin or insertion, too few
/// fibres for its motor units, a name in `params.muscles` that is not a muscle) when it was
/// named, or when no muscle at all could be modelled.
SubjectAnatomy build_subject_anatomy(const LabelVolume& volume, const TissueTable& tissues,
                                     const AnatomyParams& params, std::uint64_t seed,
                                     const ProgressCallback& progress = {});

/// Fibre statistics of one muscle (exposed for tests).
FibreStatistics fibre_statistics(const MuscleFibres& fibres, const Eigen::Vector3d& axis);

/// The conduction velocity of unit `unit` of `pool` as its MUAP shows it [m/s]: the mean of its
/// fibres' CVs weighted by each fibre's share of the MUAP, the real fibres it stands for
/// (`fibres`) times its cross-section (a fibre's source current scales with d^2). The unit's
/// nominal CV (MotorUnit::cv_m_per_s) differs where the fibre diameters, drawn around the
/// unit's and kept within the CV bounds, are cut on one side only (in the 100-unit ED pool of
/// the sample forearm by up to 0.84 m/s, 0.2 on average; the d^2 weighting adds up to 0.2 m/s,
/// 0.03 on average, to the plain mean). NaN for a unit without fibres. \throws BadInput when
/// `unit` or its fibres are out of range.
double realised_cv_m_per_s(const MuscleFibres& fibres, const MotorUnitPool& pool, std::size_t unit);

/// Per-muscle summary (mm, cm^3, counts) as written to anatomy.json.
nlohmann::json to_json(const SubjectAnatomy& anatomy);

/// Writes `dir/fibers.vtp`, `dir/motor_units.h5` and `dir/anatomy.json`, each atomically.
/// fibers.vtp: one polyline per fibre (points in metres), cell data muscle_label, motor_unit
/// (index within its muscle), cv_m_per_s, diameter_m, end_plate_m, length_m, weight; point data
/// arc_length_m. motor_units.h5: per muscle a group `muscles/<name>` (see docs/formats.md).
void write_subject_anatomy(const std::filesystem::path& dir, const SubjectAnatomy& anatomy);

/// Reads `dir/motor_units.h5` as written by write_subject_anatomy(), so that a later stage can
/// run as a separate job. Muscles come in label order, as written.
///
/// Restored per muscle: geometry.name, .label, .volume_m3, .length_m; fibres.name, .label,
/// .section_area_m2, .plane_centre_m, .plane_e1, .plane_e2, .plane_normal, and per fibre
/// points_m, length_m, end_plate_m, weight; the pool: every unit's index (its position),
/// target_n_fibres, n_fibres, recruitment_threshold, territory_centre_m (2-D, in the seed
/// plane), territory_radius_m, cv_m_per_s, fibre_diameter_m, fibres; fibre_unit,
/// fibre_cv_m_per_s, fibre_diameter_m.
///
/// Not stored, left at their defaults: the rest of MuscleGeometry (voxels, components,
/// centroid, axis, ends, tendons, ...), Fibre::seed_m, seed_2d_m, reaches_origin,
/// reaches_insertion, MuscleFibres::seed_level, section_pixel_m, n_seeds_dropped, and
/// MuscleModel::statistics, field_iterations, field_relative_residual, model_density_per_m2,
/// model_density_raised, field_time_s, build_time_s.
///
/// \throws IoError if the file is missing or not HDF5; BadInput naming the file and dataset
/// for a missing dataset or attribute, a wrong shape, or offsets or indices that do not fit.
SubjectAnatomy read_subject_anatomy(const std::filesystem::path& dir);

} // namespace myotwin::anatomy
