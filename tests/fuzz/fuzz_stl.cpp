/// Fuzz target `stl`: read_stl() (binary and ASCII STL, vertex welding) and the checks run on
/// its result before voxelising (closed 2-manifold, enclosed volume).

#include "fuzz_support.hpp"
#include "myotwin/anatomy/surface_import.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = myotwin::fuzz::write_input(data, size, "surface.stl");
  myotwin::fuzz::refuse_only_with_input_errors([&] {
    const auto surface = myotwin::anatomy::read_stl(path);
    myotwin::anatomy::check_closed_manifold(surface, "surface.stl");
    (void)myotwin::anatomy::enclosed_volume_m3(surface);
  });
  return 0;
}
