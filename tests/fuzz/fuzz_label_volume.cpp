/// Fuzz target `label_volume`: read_label_volume() and read_intensity_volume() on NIfTI-1/2
/// (.nii, .nii.gz), NRRD (.nrrd) and MetaImage (.mha) files: the project's header checks
/// (finite geometry, data large enough for what the header promises, the memory estimate) and
/// ITK's readers behind them. The first byte of the input picks the format.

#include <array>
#include <string>

#include "fuzz_support.hpp"
#include "myotwin/anatomy/label_volume.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1)
    return 0;
  static const std::array<std::string, 4> names{"volume.nii", "volume.nii.gz", "volume.nrrd",
                                                "volume.mha"};
  const std::string& name = names[data[0] % names.size()];
  const auto path = myotwin::fuzz::write_input(data + 1, size - 1, name);
  myotwin::fuzz::refuse_only_with_input_errors([&] {
    const auto volume = myotwin::anatomy::read_label_volume(path);
    (void)myotwin::anatomy::label_histogram(volume);
  });
  if (data[0] & 0x80)
    myotwin::fuzz::refuse_only_with_input_errors(
        [&] { (void)myotwin::anatomy::read_intensity_volume(path); });
  return 0;
}
