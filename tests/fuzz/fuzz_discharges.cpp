/// Fuzz target `discharges`: forward::read_discharges() on the discharge files `simulate`
/// imports (CSV and MATLAB .mat, e.g. openhdemg / MUedit exports), then the mapping of the
/// imported units onto a motor-unit pool by recruitment order. The first byte picks the format.

#include <string>

#include "fuzz_support.hpp"
#include "myotwin/forward/drive/discharge_import.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1)
    return 0;
  const std::string name = (data[0] & 1) != 0 ? "discharges.mat" : "discharges.csv";
  const auto path = myotwin::fuzz::write_input(data + 1, size - 1, name);
  myotwin::fuzz::refuse_only_with_input_errors([&] {
    const auto imported = myotwin::forward::read_discharges(path);
    (void)myotwin::forward::map_by_recruitment_order(imported, 4);
  });
  return 0;
}
