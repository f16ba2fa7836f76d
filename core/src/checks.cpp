#include "myotwin/core/checks.hpp"

#include <cmath>
#include <string>

#include "myotwin/core/error.hpp"

namespace myotwin {

void require_positive(double value, std::string_view context, std::string_view name) {
  if (!(value > 0.0) || !std::isfinite(value))
    throw BadInput(std::string(context) + ": " + std::string(name) + " = " + format_number(value) +
                   ": must be finite and > 0");
}

} // namespace myotwin
