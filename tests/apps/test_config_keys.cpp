// The declared configuration keys (issue 24): `myotwin config defaults --docs` lists every key
// the program reads, each with a line of documentation; every key of the default configuration
// is in it; the reader calls in the sources read no key it does not list; docs/parameters.md is
// the current `--markdown` output.

#include <filesystem>
#include <regex>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "myotwin/core/files.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using myotwin::testing::run_myotwin;

namespace {

/// The declared key paths of `config defaults --docs`, and those without a doc.
void declared_keys(const std::string& docs, std::set<std::string>& keys,
                   std::vector<std::string>& undocumented) {
  std::istringstream in(docs);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    if (line[0] != ' ') {
      last = line.substr(0, line.find(" = "));
      keys.insert(last);
    } else if (line.find("(undocumented)") != std::string::npos) {
      undocumented.push_back(last);
    }
  }
}

/// The dotted paths of the leaves of `j` (array elements as `[]`; arrays of numbers or strings
/// are leaves).
void leaf_paths(const nlohmann::json& j, const std::string& path, std::set<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items())
      leaf_paths(v, path.empty() ? k : path + "." + k, out);
  } else if (j.is_array() && !j.empty() && j.front().is_object()) {
    for (const auto& v : j)
      leaf_paths(v, path + "[]", out);
  } else {
    out.insert(path);
  }
}

} // namespace

TEST(ConfigKeys, EveryKeyIsDeclaredWithADocAndTheDocsAreCurrent) {
  const auto docs = run_myotwin("config defaults --docs");
  ASSERT_EQ(docs.exit_code, 0) << docs.output;
  std::set<std::string> keys;
  std::vector<std::string> undocumented;
  declared_keys(docs.output, keys, undocumented);
  EXPECT_GT(keys.size(), 300U);
  EXPECT_EQ(undocumented, std::vector<std::string>{}) << "keys without a doc";
  EXPECT_NE(docs.output.find("simulate.emg.snr_dB = 20.0 [dB]  (number, [-60, 200])"),
            std::string::npos);

  // Every key of the default configuration (every command's sections, iemg and noise too).
  const auto defaults = run_myotwin("config defaults");
  ASSERT_EQ(defaults.exit_code, 0) << defaults.output;
  std::set<std::string> leaves;
  leaf_paths(nlohmann::json::parse(defaults.output), "", leaves);
  for (const auto& leaf : leaves) {
    // An empty array of objects (electrodes.needles) is declared through its elements' keys.
    const auto element = keys.lower_bound(leaf + "[].");
    const bool of_elements = element != keys.end() && element->rfind(leaf + "[].", 0) == 0;
    EXPECT_TRUE(keys.count(leaf) == 1 || of_elements)
        << leaf << " is in `config defaults` but not declared";
  }
  for (const char* section : {"iemg.needle.n_contacts", "iemg.drive.duration_s", "noise.type",
                              "noise.powerline_Hz", "iemg.cylinder.radius_mm"})
    EXPECT_EQ(keys.count(section), 1U) << section;

  // Every key a reader call in the sources names is declared (as the last part of a path). Not
  // run configuration: the subject files (subject.json, tissue tables) and the readers only the
  // library offers (the analytic conductors' media, read by their tests).
  const std::set<std::string> other_formats = {"subject.cpp", "tissue_table.cpp",
                                               "infinite_medium.cpp", "cylinder_conductor.cpp"};
  std::set<std::string> last_parts;
  for (const auto& k : keys)
    last_parts.insert(k.substr(k.rfind('.') + 1));
  const std::regex call(
      R"re(\.(?:optional|required)(?:<[^(]*>)?\(\s*"(\w+)"|(?:optional|required)_path\(\s*"(\w+)")re");
  std::size_t n_calls = 0;
  for (const char* stage :
       {"anatomy/src", "meshing/src", "forward/src", "inversion/src", "apps/myotwin"}) {
    for (const auto& f : fs::recursive_directory_iterator(fs::path(MYOTWIN_SOURCE_DIR) / stage)) {
      if (f.path().extension() != ".cpp" || other_formats.count(f.path().filename().string()))
        continue;
      const std::string text = myotwin::read_text_file(f.path());
      for (auto it = std::sregex_iterator(text.begin(), text.end(), call);
           it != std::sregex_iterator(); ++it) {
        const std::string key = (*it)[1].matched ? (*it)[1].str() : (*it)[2].str();
        ++n_calls;
        EXPECT_EQ(last_parts.count(key), 1U)
            << f.path().filename().string() << " reads \"" << key << "\", which is not declared";
      }
    }
  }
  EXPECT_GT(n_calls, 200U); // the pattern finds the reader calls at all

  // docs/parameters.md is what `--markdown` prints now.
  const auto markdown = run_myotwin("config defaults --markdown");
  ASSERT_EQ(markdown.exit_code, 0) << markdown.output;
  EXPECT_EQ(markdown.output,
            myotwin::read_text_file(fs::path(MYOTWIN_SOURCE_DIR) / "docs/parameters.md"))
      << "docs/parameters.md is stale: run `myotwin config defaults --markdown > "
         "docs/parameters.md`";
}
