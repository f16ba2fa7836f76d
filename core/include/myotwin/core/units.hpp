#pragma once
/// \file units.hpp
/// Unit conversions. Internally every quantity is SI (m, s, V, S/m, m^3); these helpers are used
/// only where values enter or leave the program (config files, printed tables, file formats).

namespace myotwin::units {

constexpr double mm_to_m(double mm) noexcept {
  return mm * 1e-3;
}
constexpr double m_to_mm(double m) noexcept {
  return m * 1e3;
}
constexpr double um_to_m(double um) noexcept {
  return um * 1e-6;
}
constexpr double m_to_um(double m) noexcept {
  return m * 1e6;
}
constexpr double ms_to_s(double ms) noexcept {
  return ms * 1e-3;
}
constexpr double s_to_ms(double s) noexcept {
  return s * 1e3;
}
constexpr double us_to_s(double us) noexcept {
  return us * 1e-6;
}
constexpr double s_to_us(double s) noexcept {
  return s * 1e6;
}
constexpr double uV_to_V(double uV) noexcept {
  return uV * 1e-6;
}
constexpr double V_to_uV(double V) noexcept {
  return V * 1e6;
}
constexpr double mV_to_V(double mV) noexcept {
  return mV * 1e-3;
}
constexpr double V_to_mV(double V) noexcept {
  return V * 1e3;
}
/// Cubic metres to cubic centimetres (millilitres).
constexpr double m3_to_cm3(double m3) noexcept {
  return m3 * 1e6;
}
constexpr double cm3_to_m3(double cm3) noexcept {
  return cm3 * 1e-6;
}
/// Square metres to square millimetres.
constexpr double m2_to_mm2(double m2) noexcept {
  return m2 * 1e6;
}
constexpr double mm2_to_m2(double mm2) noexcept {
  return mm2 * 1e-6;
}

} // namespace myotwin::units
