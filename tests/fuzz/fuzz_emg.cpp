/// Fuzz target `emg`: forward::read_emg() on CSV, HDF5 and MATLAB (.mat) recordings, with
/// and without a declared sampling rate and duration. The first byte of the input picks the
/// format and the options.

#include <array>
#include <string>

#include "fuzz_support.hpp"
#include "myotwin/forward/io/emg_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1)
    return 0;
  static const std::array<std::string, 3> names{"emg.csv", "emg.h5", "emg.mat"};
  const std::string& name = names[data[0] % names.size()];
  const auto path = myotwin::fuzz::write_input(data + 1, size - 1, name);
  myotwin::forward::EmgReadOptions options;
  if (data[0] & 0x10)
    options.fs_Hz = 2048.0;
  if (data[0] & 0x20)
    options.duration_s = 1.0;
  options.time_column = (data[0] & 0x40) != 0;
  myotwin::fuzz::refuse_only_with_input_errors(
      [&] { (void)myotwin::forward::read_emg(path, options); });
  return 0;
}
