#pragma once
/// \file disjoint_sets.hpp
/// Disjoint sets (union-find) over the elements 0 .. n - 1, with component numbers that do not
/// depend on the order of the unions: components are numbered 0, 1, ... in order of their
/// lowest member. Used for mesh connectivity (tets through faces, nodes through tets).

#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

namespace myotwin {

class DisjointSets {
public:
  /// `n` singleton sets.
  explicit DisjointSets(std::size_t n) : parent_(n) {
    std::iota(parent_.begin(), parent_.end(), std::size_t{0});
  }
  /// The representative of `x`'s set (the lowest member; path halving).
  std::size_t find(std::size_t x) {
    while (parent_[x] != x) {
      parent_[x] = parent_[parent_[x]];
      x = parent_[x];
    }
    return x;
  }
  /// Merges the sets of `a` and `b`.
  void unite(std::size_t a, std::size_t b) {
    const std::size_t ra = find(a), rb = find(b);
    if (ra < rb)
      parent_[rb] = ra;
    else if (rb < ra)
      parent_[ra] = rb;
  }
  /// Component id of every element, 0.. in order of each component's lowest member; -1 where
  /// `member` (empty: every element) is false. Non-members must not have been united.
  std::vector<std::int32_t> component_ids(const std::vector<char>& member = {}) {
    std::vector<std::int32_t> id(parent_.size(), -1), root_id(parent_.size(), -1);
    std::int32_t next = 0;
    for (std::size_t x = 0; x < parent_.size(); ++x) {
      if (!member.empty() && !member[x])
        continue;
      const std::size_t r = find(x);
      if (root_id[r] < 0)
        root_id[r] = next++;
      id[x] = root_id[r];
    }
    return id;
  }

private:
  std::vector<std::size_t> parent_;
};

} // namespace myotwin
