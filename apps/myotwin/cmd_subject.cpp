// `myotwin subject init SEGMENTATION -o SUBJECT_DIR`: a conductor-ready subject (labels.nii.gz,
// tissues.json, subject.json, subject_report.json) from a segmentation of a real scan, with
// body outline, skin, subcutaneous fat and soft tissue added (anatomy/subject_builder.hpp).
//
// Sample runs:
//   myotwin subject init organs_seg.nii.gz --scheme total --image ct.nii.gz -o ct_subject
//   myotwin subject init thighs_dseg.nii.gz --scheme musclemap -o thigh
//     --muscles "left vastus lateralis,left rectus femoris,left vastus medialis"  (one line)

#include <iomanip>
#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "myotwin/anatomy/subject.hpp"
#include "myotwin/anatomy/subject_builder.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"
#include "myotwin/core/units.hpp"

#include <omp.h>

namespace myotwin::app {

namespace {

struct SubjectInitOptions {
  std::filesystem::path segmentation;
  std::filesystem::path output;
  std::filesystem::path image;
  std::filesystem::path fat_mask;
  std::filesystem::path labels;
  std::string scheme;
  std::vector<std::string> muscles;
  std::string unknown_as;
  std::string name;
  double margin_mm = 10.0;
  double voxel_mm = 0.0;
  double skin_mm = 1.5;
  double fat_mm = 4.0;
  double closing_mm = 3.0;
  std::string modality = "auto";
  double body_hu = -300.0;
  double fat_hu_min = -190.0;
  double fat_hu_max = -30.0;
  double wall_closing_mm = 10.0;
  int threads = 0;
  bool quiet = false;
  bool verbose = false;
};

int run_subject_init(const SubjectInitOptions& o) {
  // 1. Options, checked before anything is read or written.
  set_log_level(o.quiet ? LogLevel::warning : o.verbose ? LogLevel::debug : LogLevel::info);
  if (o.threads > 0)
    omp_set_num_threads(o.threads);
  std::error_code ec;
  if (std::filesystem::exists(o.output, ec) && !std::filesystem::is_directory(o.output, ec))
    throw IoError(o.output.string() + " (-o): exists and is not a folder; expected a folder");
  if (!o.labels.empty() && !o.scheme.empty())
    throw BadInput("--scheme " + o.scheme + " and --labels " + o.labels.string() +
                   ": give one of them");
  anatomy::SubjectBuildParams p;
  p.scheme = o.scheme.empty() ? "total" : o.scheme;
  p.label_table = o.labels;
  p.muscles = o.muscles;
  if (!o.unknown_as.empty())
    p.unknown_as = o.unknown_as;
  p.margin_m = units::mm_to_m(o.margin_mm);
  p.voxel_m = units::mm_to_m(o.voxel_mm);
  p.skin_thickness_m = units::mm_to_m(o.skin_mm);
  p.fat_thickness_m = units::mm_to_m(o.fat_mm);
  p.closing_m = units::mm_to_m(o.closing_mm);
  p.modality = o.modality;
  p.body_threshold_HU = o.body_hu;
  p.fat_min_HU = o.fat_hu_min;
  p.fat_max_HU = o.fat_hu_max;
  p.wall_closing_m = units::mm_to_m(o.wall_closing_mm);
  if (p.unknown_as)
    (void)anatomy::tissue_category(*p.unknown_as); // names the choices when wrong

  // 2. Read the inputs.
  Stopwatch watch;
  anatomy::SubjectBuildInputs in;
  in.segmentation = anatomy::read_label_volume(o.segmentation);
  in.segmentation_name = o.segmentation.string();
  if (!o.image.empty()) {
    in.image = anatomy::read_intensity_volume(o.image);
    in.image_name = o.image.string();
  }
  if (!o.fat_mask.empty()) {
    in.fat_mask = anatomy::read_label_volume(o.fat_mask);
    in.fat_mask_name = o.fat_mask.string();
  }

  // 3. Build, then write (nothing is written when the build fails).
  const anatomy::BuiltSubject built = anatomy::build_subject(in, p);
  const std::string name = o.name.empty() ? o.output.filename().string().empty()
                                                ? std::string("subject")
                                                : o.output.filename().string()
                                          : o.name;
  anatomy::write_built_subject(o.output, name, built);

  // 4. Report.
  if (!o.quiet)
    print_subject_report(std::cout, built, o.unknown_as);
  log_info("subject written in ", watch.elapsed_s(), " s: ", (o.output / "subject.json").string());
  return 0;
}

} // namespace

void add_subject_command(CLI::App& app, std::function<int()>& run) {
  auto* subject = app.add_subcommand(
      "subject", "build subjects from segmentations of real scans (see docs/subjects.md)");
  subject->require_subcommand(1);
  auto o = std::make_shared<SubjectInitOptions>();
  auto* init = subject->add_subcommand(
      "init", "make a conductor-ready subject folder from a segmentation: label scheme, region "
              "of interest, body outline, skin, subcutaneous fat, soft tissue (lengths in mm)");
  init->add_option("SEGMENTATION", o->segmentation, "label volume (NIfTI, NRRD, MHA)")->required();
  init->add_option("-o,--output", o->output, "subject folder to write")->required();
  init->add_option("--image", o->image,
                   "the scanned image on the segmentation's grid (CT in HU, or MR): body outline "
                   "and, for a CT, subcutaneous fat");
  init->add_option("--scheme", o->scheme,
                   "built-in label scheme: total (TotalSegmentator CT), "
                   "total_mr, musclemap (default: total)")
      ->check(CLI::IsMember({"total", "total_mr", "musclemap"}));
  init->add_option("--labels", o->labels,
                   "label table instead of a scheme: TSV (label, name, optional class, "
                   "sigma_S_per_m, ...) or a JSON tissue table");
  init->add_option("--muscles", o->muscles,
                   "muscles of interest (names or ids, comma-separated): the region of interest")
      ->delimiter(',');
  init->add_option("--margin-mm", o->margin_mm, "margin around the muscles of interest [mm]")
      ->capture_default_str();
  init->add_option("--voxel-mm", o->voxel_mm, "resample to isotropic voxels of this size [mm]");
  init->add_option("--skin-mm", o->skin_mm, "skin thickness [mm]")->capture_default_str();
  init->add_option("--fat-mm", o->fat_mm,
                   "subcutaneous fat thickness when neither a fat mask nor a CT gives it [mm]")
      ->capture_default_str();
  init->add_option("--fat-mask", o->fat_mask,
                   "subcutaneous fat mask on the segmentation's grid (non-zero = fat)");
  init->add_option("--closing-mm", o->closing_mm,
                   "without an image: closing radius that bridges gaps between tissues [mm]")
      ->capture_default_str();
  init->add_option("--unknown-as", o->unknown_as,
                   "category for ids the scheme does not know (muscle, bone, fat, soft_tissue, "
                   "...); default: an error listing them");
  init->add_option("--modality", o->modality, "image modality: auto, ct, mr")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "ct", "mr"}));
  init->add_option("--body-hu", o->body_hu, "CT: body outline threshold [HU]")
      ->capture_default_str();
  init->add_option("--fat-hu-min", o->fat_hu_min, "CT: fat range minimum [HU]")
      ->capture_default_str();
  init->add_option("--fat-hu-max", o->fat_hu_max, "CT: fat range maximum [HU]")
      ->capture_default_str();
  init->add_option("--wall-closing-mm", o->wall_closing_mm,
                   "CT: closing radius of the muscle wall that separates subcutaneous from "
                   "visceral fat [mm]")
      ->capture_default_str();
  init->add_option("--name", o->name, "subject name (default: the folder's name)");
  init->add_option("--threads", o->threads, "threads to use (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  init->add_flag("--quiet", o->quiet, "print warnings and errors only");
  init->add_flag("--verbose", o->verbose, "print debug messages and timings");
  init->callback([&run, o] { run = [o] { return run_subject_init(*o); }; });
}

} // namespace myotwin::app
