#include "myotwin/core/timer.hpp"

#include <iomanip>
#include <sstream>

namespace myotwin {

ScopedTimer::~ScopedTimer() {
  if (log_level() < level_)
    return;
  std::ostringstream s;
  s << name_ << ": " << std::fixed << std::setprecision(3) << watch_.elapsed_s() << " s";
  log_message(level_, s.str());
}

} // namespace myotwin
