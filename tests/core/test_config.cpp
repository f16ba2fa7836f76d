#include <gtest/gtest.h>

#include "myotwin/core/config.hpp"
#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "test_support.hpp"

using myotwin::BadInput;
using myotwin::ConfigReader;
using myotwin::testing::expect_error;
using nlohmann::json;

TEST(Config, ReadsRequiredAndOptionalValuesWithDefaultsInTheResolvedConfig) {
  ConfigReader cfg(json::parse(R"({"a_mm": 2.5, "n": 3, "section": {"name": "x"}})"), "c.json");
  EXPECT_DOUBLE_EQ(cfg.required<double>("a_mm"), 2.5);
  EXPECT_EQ(cfg.required<std::int64_t>("n"), 3);
  EXPECT_EQ(cfg.optional<std::string>("mode", "fast"), "fast");
  auto section = cfg.section("section");
  EXPECT_EQ(section.required<std::string>("name"), "x");
  EXPECT_FALSE(section.optional<bool>("flag", false));
  cfg.finish();
  const json resolved = cfg.resolved();
  EXPECT_EQ(resolved["mode"], "fast");
  EXPECT_EQ(resolved["section"]["flag"], false);
  EXPECT_EQ(resolved["section"]["name"], "x");
  EXPECT_DOUBLE_EQ(resolved["a_mm"].get<double>(), 2.5);
}

TEST(Config, RejectsUnknownKeysWithTheDottedPathAndTheAllowedKeys) {
  ConfigReader cfg(json::parse(R"({"phantom": {"length_mm": 240, "lenght_mm": 1}})"),
                   "subject.json");
  auto phantom = cfg.section("phantom");
  phantom.optional<double>("length_mm", 240.0);
  phantom.optional<double>("skin_mm", 1.2);
  expect_error<BadInput>([&] { cfg.finish(); }, {"subject.json", "phantom.lenght_mm", "unknown key",
                                                 "length_mm", "skin_mm"});
}

TEST(Config, RejectsUnknownKeysInsideArrayElements) {
  ConfigReader cfg(json::parse(R"({"tissues": [{"label": 1}, {"label": 2, "colour": 3}]})"),
                   "t.json");
  for (auto& t : cfg.required_array("tissues"))
    t.required<std::int64_t>("label");
  expect_error<BadInput>([&] { cfg.finish(); }, {"t.json", "tissues[1].colour", "unknown key"});
}

TEST(Config, NamesTheKeyTheValueAndTheExpectationOnARangeError) {
  ConfigReader cfg(json::parse(R"({"tissues": [{"sigma_l_S_per_m": -0.5}]})"), "subject.json");
  auto tissues = cfg.required_array("tissues");
  expect_error<BadInput>(
      [&] { tissues[0].required<double>("sigma_l_S_per_m", myotwin::positive()); },
      {"subject.json: tissues[0].sigma_l_S_per_m = -0.5: must be > 0"});
}

TEST(Config, ReportsWrongTypesAndMissingRequiredKeys) {
  ConfigReader cfg(json::parse(R"({"n": 2.5, "s": 3, "b": "yes", "v": [1, "x"]})"), "c.json");
  expect_error<BadInput>([&] { cfg.required<std::int64_t>("n"); },
                         {"c.json: n = 2.5: expected an integer"});
  expect_error<BadInput>([&] { cfg.required<std::string>("s"); }, {"s = 3: expected a string"});
  expect_error<BadInput>([&] { cfg.required<bool>("b"); }, {"expected true or false"});
  expect_error<BadInput>([&] { cfg.required<std::vector<double>>("v"); },
                         {"element 1", "expected a number"});
  expect_error<BadInput>([&] { cfg.required<double>("missing"); },
                         {"c.json: missing: missing required key"});
  expect_error<BadInput>([&] { cfg.optional<std::uint64_t>("n", 1); },
                         {"expected a non-negative integer"});
}

TEST(Config, AcceptsIntegralFloatsAsIntegersAndChecksChoices) {
  ConfigReader cfg(json::parse(R"({"n": 4.0, "mode": "skew"})"), "c.json");
  EXPECT_EQ(cfg.required<int>("n"), 4);
  EXPECT_EQ(cfg.required<std::string>("mode", myotwin::one_of({"skew", "kurtosis"})), "skew");
  ConfigReader bad(json::parse(R"({"mode": "cube"})"), "c.json");
  expect_error<BadInput>(
      [&] {
        bad.required<std::string>("mode", myotwin::one_of({"skew", "kurtosis"}));
      },
      {"mode = \"cube\"", "must be one of \"skew\", \"kurtosis\""});
}

TEST(Config, ResolvesPathsRelativeToTheConfigFile) {
  myotwin::testing::TempDir dir;
  myotwin::write_text_file(dir / "s.json", R"({"labels": "sub/labels.nii.gz"})");
  auto cfg = ConfigReader::from_file(dir / "s.json");
  EXPECT_EQ(cfg.required_path("labels"), (dir.path() / "sub/labels.nii.gz").lexically_normal());
  EXPECT_FALSE(cfg.optional_path("other").has_value());
}

TEST(Config, ReportsSyntaxErrorsWithLineAndColumn) {
  myotwin::testing::TempDir dir;
  myotwin::write_text_file(dir / "bad.json", "{\n  \"a\": 1,\n  \"b\": ]\n}\n");
  expect_error<BadInput>([&] { ConfigReader::from_file(dir / "bad.json"); },
                         {"bad.json", "not valid JSON at line 3"});
  myotwin::write_text_file(dir / "array.json", "[1, 2]");
  expect_error<BadInput>([&] { ConfigReader::from_file(dir / "array.json"); },
                         {"array.json", "expected a JSON object"});
  expect_error<myotwin::IoError>([&] { ConfigReader::from_file(dir / "none.json"); },
                                 {"none.json", "no such file"});
}

TEST(Config, RejectsASectionThatIsNotAnObject) {
  ConfigReader cfg(json::parse(R"({"phantom": 3})"), "c.json");
  expect_error<BadInput>([&] { cfg.section("phantom"); },
                         {"c.json: phantom = 3: expected an object"});
}

TEST(Config, RefusesJsonNestedDeeperThanTheLimitBeforeItCanExhaustTheStack) {
  // 100000 levels overflowed the stack of the recursive JSON readers (issue 23); the parser
  // stops at the 65th.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  expect_error<myotwin::BadInput>([&] { myotwin::parse_json(deep, "deep.json"); },
                                  {"deep.json", "nested more than 64", "expected"});
  const std::string objects = [] {
    std::string s;
    for (int k = 0; k < 70; ++k)
      s += "{\"a\": ";
    s += "1";
    for (int k = 0; k < 70; ++k)
      s += "}";
    return s;
  }();
  expect_error<myotwin::BadInput>([&] { myotwin::parse_json(objects, "o.json"); },
                                  {"o.json: a.a.a.a", "nested more than 64"});
  // 64 levels are fine.
  const std::string ok = std::string(63, '[') + "{}" + std::string(63, ']');
  EXPECT_NO_THROW(myotwin::parse_json(ok, "ok.json"));
}

TEST(Config, RefusesAKeyGivenTwiceInOneObjectWithItsPath) {
  expect_error<myotwin::BadInput>(
      [] {
        myotwin::parse_json(R"({"simulate": {"drive": {"duration_s": 4, "duration_s": 5}}})",
                            "run.json");
      },
      {"run.json: simulate.drive.duration_s: key given twice"});
  expect_error<myotwin::BadInput>(
      [] { myotwin::parse_json(R"({"a": [{"b": 1, "b": 1}]})", "x.json"); },
      {"x.json: a[].b: key given twice"});
  // The same key in different objects is fine.
  const auto v = myotwin::parse_json(R"({"a": {"k": 1}, "b": {"k": 2}, "k": [{"k": 3}]})", "y");
  EXPECT_EQ(v["b"]["k"], 2);
  myotwin::testing::TempDir dir;
  myotwin::write_text_file(dir / "dup.json", "{\"seed\": 1,\n \"seed\": 2}");
  expect_error<myotwin::BadInput>([&] { myotwin::ConfigReader::from_file(dir / "dup.json"); },
                                  {"dup.json: seed: key given twice"});
}
