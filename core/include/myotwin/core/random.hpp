#pragma once
/// \file random.hpp
/// Seeded random numbers. Every random draw in myotwin comes from an Rng made from an explicit
/// seed; parallel work draws from split() streams keyed by the item index, so results do not
/// depend on the thread count. The generator (xoshiro256**, seeded through splitmix64) and the
/// normal transform (Box-Muller) are implemented here, not taken from the standard library,
/// whose distributions differ between implementations: the same seed gives the same bits on
/// every platform.

#include <cstdint>

namespace myotwin {

/// The seed used when none is given (`--seed` or the config's `seed` key): 1993, the year of
/// Fuglevand, Winter and Patla's motor-unit pool model.
constexpr std::uint64_t default_seed = 1993;

class Rng {
public:
  /// A generator fully determined by `seed`.
  explicit Rng(std::uint64_t seed);
  /// 64 random bits.
  std::uint64_t next();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi);
  /// Uniform integer in [0, n); n > 0 (unbiased, by rejection).
  std::uint64_t uniform_index(std::uint64_t n);
  /// Standard normal draw.
  double normal();
  /// Normal draw with `mean` and standard deviation `sd`.
  double normal(double mean, double sd);
  /// An independent stream for item `stream` (e.g. a fibre or motor-unit index); does not
  /// advance this generator.
  [[nodiscard]] Rng split(std::uint64_t stream) const;

private:
  std::uint64_t s_[4];
  std::uint64_t seed_;
};

} // namespace myotwin
