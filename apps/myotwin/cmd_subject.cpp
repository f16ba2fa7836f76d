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
  SharedOptions shared; ///< --config, --threads, --quiet, --verbose and the `subject` keys
  std::filesystem::path segmentation;
  std::filesystem::path output;
  std::filesystem::path image;
  std::filesystem::path fat_mask;
  std::string name;
};

int run_subject_init(const SubjectInitOptions& o) {
  // 1. Options and the `subject` section, checked before anything is read or written.
  const RunConfig config = begin_run(o.shared);
  std::error_code ec;
  if (std::filesystem::exists(o.output, ec) && !std::filesystem::is_directory(o.output, ec))
    throw IoError(o.output.string() + " (-o): exists and is not a folder; expected a folder");
  const anatomy::SubjectBuildParams& p = config.subject;

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
  write_resolved_config(o.output, config);

  // 4. Report.
  if (!o.shared.quiet)
    print_subject_report(std::cout, built, p.unknown_as.value_or(""));
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
  init->add_option("--fat-mask", o->fat_mask,
                   "subcutaneous fat mask on the segmentation's grid (non-zero = fat)");
  init->add_option("--name", o->name, "subject name (default: the folder's name)");
  auto& s = o->shared;
  add_key_option(*init, s, "--scheme", "subject.scheme",
                 "built-in label scheme: total (TotalSegmentator CT), total_mr, musclemap");
  init->add_option_function<std::string>(
          "--labels",
          [o](const std::string& path) {
            // Relative to the working folder (a config's labels are relative to the config).
            o->shared.overrides["subject"]["labels"] = std::filesystem::absolute(path).string();
            if (!o->shared.overrides["subject"].contains("scheme"))
              o->shared.overrides["subject"]["scheme"] = nullptr; // the config's scheme yields
          },
          "label table instead of a scheme: TSV (label, name, optional class, sigma_S_per_m, "
          "...) or a JSON tissue table (config key subject.labels)")
      ->type_name("FILE");
  init->add_option_function<std::vector<std::string>>(
          "--muscles",
          [o](const std::vector<std::string>& names) {
            o->shared.overrides["subject"]["muscles"] = names;
          },
          "muscles of interest (names or ids, comma-separated): the region of interest (config "
          "key subject.muscles)")
      ->delimiter(',');
  add_key_option(*init, s, "--margin-mm", "subject.margin_mm",
                 "margin around the muscles of interest [mm]");
  add_key_option(*init, s, "--voxel-mm", "subject.voxel_mm",
                 "resample to isotropic voxels of this size [mm]");
  add_key_option(*init, s, "--skin-mm", "subject.skin_mm", "skin thickness [mm]");
  add_key_option(*init, s, "--fat-mm", "subject.fat_mm",
                 "subcutaneous fat thickness when neither a fat mask nor a CT gives it [mm]");
  add_key_option(*init, s, "--closing-mm", "subject.closing_mm",
                 "without an image: closing radius that bridges gaps between tissues [mm]");
  add_key_option(*init, s, "--unknown-as", "subject.unknown_as",
                 "tissue category for ids the scheme does not know (muscle, bone, fat, "
                 "soft_tissue, ...); default: an error listing them");
  add_key_option(*init, s, "--modality", "subject.modality", "image modality: auto, ct, mr");
  add_key_option(*init, s, "--body-hu", "subject.body_HU", "CT: body outline threshold [HU]");
  add_key_option(*init, s, "--fat-hu-min", "subject.fat_min_HU", "CT: fat range minimum [HU]");
  add_key_option(*init, s, "--fat-hu-max", "subject.fat_max_HU", "CT: fat range maximum [HU]");
  add_key_option(*init, s, "--wall-closing-mm", "subject.wall_closing_mm",
                 "CT: closing radius of the muscle wall that separates subcutaneous from "
                 "visceral fat [mm]");
  init->add_option("--config", s.config,
                   "run configuration whose `subject` section gives these settings (the options "
                   "above win)");
  init->add_option("--threads", s.threads, "threads to use (0: all cores)")
      ->check(CLI::Range(0, max_threads));
  init->add_flag("--quiet", s.quiet, "print warnings and errors only");
  init->add_flag("--verbose", s.verbose, "print debug messages and timings");
  init->callback([&run, o] { run = [o] { return run_subject_init(*o); }; });
}

} // namespace myotwin::app
