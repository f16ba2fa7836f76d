// The shared helpers of core: text tables, statistics, hashing, argument checks, and the key
// declarations of the config reader.

#include <cmath>
#include <fstream>

#include <gtest/gtest.h>

#include "myotwin/core/checks.hpp"
#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/hash.hpp"
#include "myotwin/core/stats.hpp"
#include "myotwin/core/text.hpp"
#include "test_support.hpp"

using namespace myotwin;
using myotwin::testing::expect_error;
using myotwin::testing::TempDir;

TEST(Text, TrimsParsesStrictlyAndLowers) {
  EXPECT_EQ(trim(" \t a b \r\n"), "a b");
  EXPECT_EQ(trim(" \t\r\n"), "");
  EXPECT_EQ(to_lower("Time_S"), "time_s");
  EXPECT_EQ(parse_number(" 2.5e3 "), 2500.0);
  EXPECT_EQ(parse_number("-1"), -1.0);
  EXPECT_FALSE(parse_number("2.5 mm"));
  EXPECT_FALSE(parse_number(""));
  EXPECT_FALSE(parse_number("x1"));
  EXPECT_TRUE(std::isnan(*parse_number("NaN")));
  EXPECT_TRUE(std::isinf(*parse_number("-inf")));
}

TEST(Text, ReadsATableWithItsLinesMetadataAndSeparator) {
  const TempDir dir;
  {
    std::ofstream f(dir / "t.csv");
    f << "# written by hand\n# fs_Hz = 2048\n\ntime_s; \"ch 1\" ;ch2\n0;1;2\r\n# fs_Hz: "
         "4096\n1;3;\n";
  }
  const TextTable t = read_text_table(dir / "t.csv", "the test table", 0);
  EXPECT_EQ(t.separator, ';');
  EXPECT_EQ(t.metadata.at("fs_Hz"), "4096"); // the last one wins
  EXPECT_EQ(t.metadata_line.at("fs_Hz"), 6U);
  EXPECT_EQ(t.metadata.count("written"), 0U); // a comment with no key = value
  ASSERT_EQ(t.rows.size(), 3U);
  EXPECT_EQ(t.rows[0].line, 4U);
  EXPECT_EQ(t.rows[0].cells, (std::vector<std::string>{"time_s", "ch 1", "ch2"}));
  EXPECT_EQ(t.rows[1].cells, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(t.rows[2].cells, (std::vector<std::string>{"1", "3", ""})); // trailing separator
  EXPECT_NE(t.where(t.rows[2]).find("t.csv: line 7 \"1;3;\": "), std::string::npos);
  EXPECT_NE(t.where("fs_Hz").find("t.csv: line 6 (# fs_Hz): "), std::string::npos);
  {
    std::ofstream f(dir / "blank.txt");
    f << "1  2   3\n";
  }
  EXPECT_EQ(read_text_table(dir / "blank.txt", "x", 0).rows[0].cells,
            (std::vector<std::string>{"1", "2", "3"}));
  expect_error<IoError>([&] { (void)read_text_table(dir / "none.csv", "the missing table"); },
                        {"none.csv", "cannot open the missing table"});
}

TEST(Stats, MedianAndExcessKurtosisMatchClosedForms) {
  EXPECT_EQ(median({3.0, 1.0, 2.0}), 2.0);
  EXPECT_EQ(median({4.0, 1.0, 3.0, 2.0}), 2.5);
  EXPECT_TRUE(std::isnan(median({})));
  // {1, 2, 3, 4}: m2 = 1.25, m4 = 2.5625, kurtosis 2.5625 / 1.5625 - 3 = -1.36.
  const double x[] = {1.0, 2.0, 3.0, 4.0};
  EXPECT_NEAR(excess_kurtosis(x, 4), -1.36, 1e-12);
  // Two equal masses (a symmetric Bernoulli) have the least kurtosis there is: -2.
  const double b[] = {-1.0, 1.0, -1.0, 1.0};
  EXPECT_NEAR(excess_kurtosis(b, 4), -2.0, 1e-12);
  const double c[] = {5.0, 5.0};
  EXPECT_TRUE(std::isnan(excess_kurtosis(c, 2)));
  EXPECT_NEAR(mean_abs({-1.0, 3.0}), 2.0, 1e-15);
}

TEST(Hash, Fnv1aMatchesThePublishedTestVectors) {
  // FNV-1a 64-bit test vectors (Fowler, Noll, Vo; draft-eastlake-fnv).
  EXPECT_EQ(hash_text(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(hash_text("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(hash_text("foobar"), 0x85944171f73967e8ULL);
  EXPECT_EQ(hash_text("bar", hash_text("foo")), hash_text("foobar")); // chaining
  const TempDir dir;
  {
    std::ofstream f(dir / "f.bin", std::ios::binary);
    f << "foobar";
  }
  EXPECT_EQ(hash_file(dir / "f.bin"), hash_text("foobar"));
  expect_error<IoError>([&] { (void)hash_file(dir / "none"); }, {"none", "cannot be read"});
}

TEST(Checks, RequirePositiveNamesContextKeyAndValue) {
  EXPECT_NO_THROW(require_positive(1e-300, "ctx", "x"));
  expect_error<BadInput>([] { require_positive(0.0, "fibre source", "length_m"); },
                         {"fibre source: length_m = 0: must be finite and > 0"});
  expect_error<BadInput>([] { require_positive(INFINITY, "c", "x"); }, {"x = inf"});
  expect_error<BadInput>([] { require_positive(NAN, "c", "x"); }, {"x = nan"});
}

TEST(ConfigDeclarations, EachKeyOnceWithTypeDefaultUnitRangeAndDoc) {
  ConfigReader cfg(nlohmann::json::parse(R"({"grids": [{"rows": 8}, {"rows": 4}]})"), "c.json");
  (void)cfg.optional<double>("snr_dB", 20.0, in_range(-40.0, 100.0), "SNR of the added noise");
  (void)cfg.optional<double>("snr_dB", 20.0, in_range(-40.0, 100.0), "read twice, declared once");
  auto emg = cfg.section("emg");
  (void)emg.optional<std::string>("noise", "gaussian", one_of({"none", "gaussian"}), "type");
  (void)emg.optional<double>("sigma_S_per_m", 0.5, positive());
  for (auto& g : cfg.required_array("grids"))
    (void)g.required<std::int64_t>("rows", int_in_range(1, 64), "rows of pads");
  const auto keys = cfg.declarations();
  ASSERT_EQ(keys.size(), 4U);
  EXPECT_EQ(keys[0].path, "snr_dB");
  EXPECT_EQ(keys[0].type, "number");
  EXPECT_EQ(keys[0].value, 20.0);
  EXPECT_EQ(keys[0].unit, "dB");
  EXPECT_EQ(keys[0].range, "[-40, 100]");
  EXPECT_EQ(keys[0].doc, "SNR of the added noise");
  EXPECT_EQ(keys[1].path, "emg.noise");
  EXPECT_EQ(keys[1].range, "one of \"none\", \"gaussian\"");
  EXPECT_EQ(keys[2].unit, "S/m");
  EXPECT_EQ(keys[2].range, "> 0");
  EXPECT_TRUE(keys[2].doc.empty());
  EXPECT_EQ(keys[3].path, "grids[].rows");
  EXPECT_TRUE(keys[3].required);
  EXPECT_EQ(keys[3].type, "integer");
  EXPECT_EQ(unit_of_key("memory_budget_GiB"), "GiB");
  EXPECT_EQ(unit_of_key("real_density_per_mm2"), "1/mm^2");
  EXPECT_EQ(unit_of_key("cv_m_per_s"), "m/s");
  EXPECT_EQ(unit_of_key("end_plate_percent"), "%");
  EXPECT_EQ(unit_of_key("n_units"), "");
  EXPECT_EQ(unit_of_key("method"), "");
}
