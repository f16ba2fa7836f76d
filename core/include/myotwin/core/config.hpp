#pragma once
/// \file config.hpp
/// Strict JSON configuration reading. A ConfigReader hands out the values of one JSON object,
/// key by key, with type and range checks; every key it was asked for is "allowed", and
/// finish() rejects any other key with its dotted path and the list of allowed keys. The values
/// read, with defaults filled in, form the resolved configuration that every run writes.
///
/// Example:
/// \code
///   auto cfg = ConfigReader::from_file("subject.json");
///   auto labels = cfg.required_path("labels");
///   auto phantom = cfg.section("phantom");
///   double length_mm = phantom.optional<double>("length_mm", 240.0, positive());
///   cfg.finish();  // throws BadInput on "phantom.lenght_mm"
/// \endcode

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

namespace myotwin {

/// A value check: returns std::nullopt when the value is acceptable, otherwise the expectation
/// it violates (e.g. "must be > 0"), which becomes part of the error message. It carries the
/// range it enforces as documented (`[0, 50]`, `> 0`, `one of "a", "b"`) for `config defaults`;
/// a check made from a bare function documents none.
template <class T> class Check {
public:
  using Test = std::function<std::optional<std::string>(const T&)>;
  Check() = default;
  Check(Test test, std::string range) : test_(std::move(test)), range_(std::move(range)) {}
  template <class F, class = std::enable_if_t<
                         std::is_invocable_r_v<std::optional<std::string>, F, const T&> &&
                         !std::is_same_v<std::decay_t<F>, Check>>>
  Check(F test) : test_(std::move(test)) {} // NOLINT(google-explicit-constructor)
  explicit operator bool() const { return static_cast<bool>(test_); }
  std::optional<std::string> operator()(const T& value) const { return test_(value); }
  /// The range as documented; empty when the check does not say.
  [[nodiscard]] const std::string& range() const { return range_; }

private:
  Test test_;
  std::string range_;
};

/// Check: value > 0.
Check<double> positive();
/// Check: value >= 0.
Check<double> non_negative();
/// Check: lo <= value <= hi.
Check<double> in_range(double lo, double hi);
/// Check: value > 0 (integers).
Check<std::int64_t> positive_int();
/// Check: lo <= value <= hi (integers).
Check<std::int64_t> int_in_range(std::int64_t lo, std::int64_t hi);
/// Check: value is one of `choices`.
Check<std::string> one_of(std::vector<std::string> choices);

/// A configuration key as declared by the reader call that reads it: what `config defaults
/// --docs` prints and docs/parameters.md tabulates.
struct KeyDeclaration {
  std::string path;     ///< dotted path, array elements as `[]` (`electrodes.grids[].rows`)
  std::string type;     ///< "number", "integer", "boolean", "string", "path", "array of ..."
  nlohmann::json value; ///< the default (null for a required key or an absent optional path)
  bool required = false;
  std::string unit;  ///< from the key's unit suffix (`_mm` -> mm, `_S_per_m` -> S/m); may be empty
  std::string range; ///< from the check; may be empty
  std::string doc;   ///< one line; may be empty (then `config defaults --docs` says so)
};

/// The unit a key's name declares by the house convention (docs/conventions.md): the suffix
/// after the last `_` (`snr_dB` -> dB, `memory_budget_GiB` -> GiB), or `_S_per_m`, `_m_per_s`,
/// `_V_per_A`; empty for unitless keys.
std::string unit_of_key(const std::string& key);

/// Reads one JSON object (a file, or a section of one) strictly. Copies share state: a section
/// obtained from a reader is checked by the parent's finish() and appears in its resolved().
class ConfigReader {
public:
  /// Parses a JSON file whose top level must be an object.
  /// \throws IoError if the file cannot be read, BadInput if it is not valid JSON (with line
  /// and column) or not an object.
  static ConfigReader from_file(const std::filesystem::path& path);

  /// Wraps a JSON object. `source` names its origin in messages (usually the file name);
  /// `base_dir` resolves relative paths read by required_path()/optional_path().
  /// \throws BadInput if `value` is not an object (null is taken as an empty object).
  ConfigReader(nlohmann::json value, std::string source, std::filesystem::path base_dir = {});

  /// A required value of type T (bool, std::int64_t, int, std::uint64_t, double, std::string,
  /// std::vector<double>, std::vector<std::int64_t>, std::vector<std::string>).
  /// \throws BadInput naming source and key path when missing, of the wrong type or failing
  /// `check`.
  /// `doc` is the key's one line of documentation (KeyDeclaration).
  template <class T>
  T required(const std::string& key, const Check<T>& check = {}, std::string_view doc = {});

  /// An optional value; `default_value` is used (and recorded in resolved()) when absent.
  /// \throws BadInput when present but of the wrong type or failing `check`.
  template <class T>
  T optional(const std::string& key, const T& default_value, const Check<T>& check = {},
             std::string_view doc = {});

  /// A required file path, resolved relative to the config's folder.
  /// \throws BadInput when missing or not a string.
  std::filesystem::path required_path(const std::string& key, std::string_view doc = {});

  /// An optional file path relative to the config's folder; std::nullopt when absent.
  std::optional<std::filesystem::path> optional_path(const std::string& key,
                                                     std::string_view doc = {});

  /// The object under `key` as a reader; an empty object when absent (its defaults are still
  /// recorded in resolved()). \throws BadInput when present but not an object.
  ConfigReader section(const std::string& key);

  /// The objects of the array under `key`, each as a reader (`key[i]` in messages).
  /// \throws BadInput when missing, not an array, or an element is not an object.
  std::vector<ConfigReader> required_array(const std::string& key);

  /// True when `key` is present in the object.
  [[nodiscard]] bool has(const std::string& key) const;

  /// Rejects every key, here and in all sections and array elements obtained from this reader,
  /// that was never asked for. \throws BadInput: `source: a.b.c: unknown key; allowed keys: ...`.
  void finish() const;

  /// The values read, with defaults filled in, in the same nesting as the input.
  [[nodiscard]] nlohmann::json resolved() const;

  /// Every key read so far through this reader and the readers it handed out (all share one
  /// list), in the order first read, each once.
  [[nodiscard]] std::vector<KeyDeclaration> declarations() const;

  /// The dotted path of `key` below this reader, e.g. `tissues[3].sigma_S_per_m`.
  [[nodiscard]] std::string key_path(const std::string& key) const;

  /// The source named in messages (usually the file name).
  [[nodiscard]] const std::string& source() const;

  /// The folder relative paths are resolved against.
  [[nodiscard]] const std::filesystem::path& base_dir() const;

  /// Throws BadInput "`source`: `key path` = `value`: `expectation`" for a value that the
  /// caller found wrong after reading it (cross-key checks).
  [[noreturn]] void fail(const std::string& key, const std::string& expectation) const;

  struct Node;

private:
  explicit ConfigReader(std::shared_ptr<Node> node);
  const nlohmann::json* find(const std::string& key) const;
  void record(const std::string& key, nlohmann::json value);
  void declare(const std::string& key, std::string type, nlohmann::json value, bool required,
               std::string range, std::string_view doc);
  std::shared_ptr<Node> node_;
};

/// The deepest nesting of arrays and objects parse_json() accepts (a run configuration needs 5).
inline constexpr std::size_t max_json_depth = 64;

/// Parses JSON text strictly: at most max_json_depth nested arrays and objects (deeper documents
/// are refused while parsing, before they can exhaust the stack), and no key twice in one object
/// (which JSON parsers resolve differently). `source` names the text in messages (a file name).
/// \throws BadInput naming `source` and the key path, or the line and column of a syntax error.
nlohmann::json parse_json(const std::string& text, const std::string& source);

/// A JSON value shortened for messages (long arrays and objects are elided).
std::string json_excerpt(const nlohmann::json& value);

} // namespace myotwin
