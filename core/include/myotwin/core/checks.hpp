#pragma once
/// \file checks.hpp
/// Argument checks with the house error message: `CONTEXT: NAME = VALUE: must be ...`.

#include <string_view>

namespace myotwin {

/// \throws BadInput `CONTEXT: NAME = VALUE: must be finite and > 0` unless 0 < value < inf.
void require_positive(double value, std::string_view context, std::string_view name);

} // namespace myotwin
