#include <gtest/gtest.h>

#include "myotwin/core/disjoint_sets.hpp"

using myotwin::DisjointSets;

TEST(DisjointSets, NumbersComponentsByTheirLowestMemberWhateverTheUnionOrder) {
  // {0, 4, 7}, {1}, {2, 3, 5}, {6}: the same ids for unions in two different orders.
  DisjointSets a(8), b(8);
  a.unite(0, 4);
  a.unite(7, 4);
  a.unite(5, 3);
  a.unite(2, 5);
  b.unite(3, 2);
  b.unite(4, 7);
  b.unite(5, 2);
  b.unite(7, 0);
  const std::vector<std::int32_t> expected{0, 1, 2, 2, 0, 2, 3, 0};
  EXPECT_EQ(a.component_ids(), expected);
  EXPECT_EQ(b.component_ids(), expected);
  EXPECT_EQ(a.find(7), 0u);
  EXPECT_EQ(a.find(5), 2u);
}

TEST(DisjointSets, NonMembersGetMinusOne) {
  DisjointSets s(5);
  s.unite(3, 4);
  const std::vector<std::int32_t> expected{0, -1, 1, 2, 2};
  EXPECT_EQ(s.component_ids({1, 0, 1, 1, 1}), expected);
}
