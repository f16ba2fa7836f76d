#pragma once
/// \file itk_clang_shim.hpp
/// Force-included into the one fuzz-build source that includes ITK (anatomy/src/label_volume.cpp):
/// Debian's ITK 5.2 compiler detection accepts only GNU, the compiler ITK was built with. Its
/// detection header is read here once with clang presenting itself as GCC 12; everything else
/// sees clang as it is.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wbuiltin-macro-redefined"
#pragma push_macro("__clang__")
#pragma push_macro("__GNUC__")
#undef __clang__
#undef __GNUC__
#define __GNUC__ 12
#include <itk_compiler_detection.h>
#pragma pop_macro("__GNUC__")
#pragma pop_macro("__clang__")
#pragma clang diagnostic pop
