#include "myotwin/core/config.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"

namespace myotwin {

std::string format_number(double value) {
  std::ostringstream s;
  s.precision(10);
  s << value;
  return s.str();
}

using nlohmann::json;

namespace {} // namespace

Check<double> positive() {
  return {[](const double& v) -> std::optional<std::string> {
            if (v > 0.0)
              return std::nullopt;
            return std::string("must be > 0");
          },
          "> 0"};
}

Check<double> non_negative() {
  return {[](const double& v) -> std::optional<std::string> {
            if (v >= 0.0)
              return std::nullopt;
            return std::string("must be >= 0");
          },
          ">= 0"};
}

Check<double> in_range(double lo, double hi) {
  std::string range = "[";
  range += format_number(lo);
  range += ", ";
  range += format_number(hi);
  range += "]";
  return {[lo, hi, range](const double& v) -> std::optional<std::string> {
            if (v >= lo && v <= hi)
              return std::nullopt;
            return "must be in " + range;
          },
          range};
}

Check<std::int64_t> positive_int() {
  return {[](const std::int64_t& v) -> std::optional<std::string> {
            if (v > 0)
              return std::nullopt;
            return std::string("must be > 0");
          },
          "> 0"};
}

Check<std::int64_t> int_in_range(std::int64_t lo, std::int64_t hi) {
  std::string range = "[";
  range += std::to_string(lo);
  range += ", ";
  range += std::to_string(hi);
  range += "]";
  return {[lo, hi, range](const std::int64_t& v) -> std::optional<std::string> {
            if (v >= lo && v <= hi)
              return std::nullopt;
            return "must be in " + range;
          },
          range};
}

Check<std::string> one_of(std::vector<std::string> choices) {
  std::string list;
  for (const auto& c : choices)
    list += (list.empty() ? "" : ", ") + ("\"" + c + "\"");
  return {[choices = std::move(choices), list](const std::string& v) -> std::optional<std::string> {
            if (std::find(choices.begin(), choices.end(), v) != choices.end())
              return std::nullopt;
            return "must be one of " + list;
          },
          "one of " + list};
}

std::string unit_of_key(const std::string& key) {
  static const std::vector<std::pair<std::string, std::string>> compound = {
      {"_S_per_m", "S/m"},  {"_m_per_s", "m/s"}, {"_V_per_A", "V/A"}, {"_per_mm2", "1/mm^2"},
      {"_per_m2", "1/m^2"}, {"_per_mm", "1/mm"}, {"_per_s", "1/s"},   {"_per_sqrt_fibre", ""}};
  for (const auto& [suffix, unit] : compound)
    if (key.size() > suffix.size() &&
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0)
      return unit;
  static const std::map<std::string, std::string> simple = {
      {"m", "m"},         {"mm", "mm"},   {"um", "um"},   {"s", "s"},       {"ms", "ms"},
      {"us", "us"},       {"Hz", "Hz"},   {"dB", "dB"},   {"V", "V"},       {"mV", "mV"},
      {"uV", "uV"},       {"deg", "deg"}, {"pps", "pps"}, {"percent", "%"}, {"GiB", "GiB"},
      {"oct", "octaves"}, {"N", "N"},     {"A", "A"},     {"mm2", "mm^2"},  {"m2", "m^2"},
      {"rad", "rad"}};
  const auto underscore = key.rfind('_');
  if (underscore == std::string::npos)
    return {};
  const auto it = simple.find(key.substr(underscore + 1));
  return it == simple.end() ? std::string() : it->second;
}

std::string json_excerpt(const json& value) {
  // JSON built in code (validate() reads parameters back) may hold NaN or infinity, which
  // dump() would print as null.
  if (value.is_number_float() && !std::isfinite(value.get<double>()))
    return format_number(value.get<double>());
  std::string text = value.dump();
  constexpr std::size_t max_length = 60;
  if (text.size() > max_length)
    text = text.substr(0, max_length - 3) + "...";
  return text;
}

/// Shared state of a reader: the JSON object, where it sits, which keys were asked for, the
/// values resolved and the readers handed out for sections and array elements.
struct ConfigReader::Node {
  json value;
  std::string source;
  std::filesystem::path base_dir;
  std::string path; ///< dotted path of this object ("" at the top)
  std::vector<std::string> allowed;
  json resolved = json::object();
  std::map<std::string, std::shared_ptr<Node>> sections;
  std::map<std::string, std::vector<std::shared_ptr<Node>>> arrays;
  /// Every key declared by this reader's tree (shared by all its nodes).
  std::shared_ptr<std::vector<KeyDeclaration>> declarations =
      std::make_shared<std::vector<KeyDeclaration>>();
};

ConfigReader::ConfigReader(std::shared_ptr<Node> node) : node_(std::move(node)) {}

ConfigReader::ConfigReader(json value, std::string source, std::filesystem::path base_dir)
    : node_(std::make_shared<Node>()) {
  if (value.is_null())
    value = json::object();
  if (!value.is_object()) {
    throw BadInput(source + ": the top level is " + json_excerpt(value) +
                   ": expected a JSON object { ... }");
  }
  node_->value = std::move(value);
  node_->source = std::move(source);
  node_->base_dir = std::move(base_dir);
}

json parse_json(const std::string& text, const std::string& source) {
  // Per open object: its dotted path and the keys seen; arrays are open containers with no keys.
  struct Open {
    bool object = false;
    std::string path;
    std::set<std::string> keys;
    std::string last_key;
  };
  std::vector<Open> open;
  const auto path_of_child = [&]() {
    if (open.empty())
      return std::string();
    const Open& o = open.back();
    if (!o.object)
      return o.path + "[]";
    return o.path.empty() ? o.last_key : o.path + "." + o.last_key;
  };
  const json::parser_callback_t check = [&](int /*depth*/, json::parse_event_t event,
                                            json& parsed) {
    switch (event) {
    case json::parse_event_t::object_start:
    case json::parse_event_t::array_start:
      if (open.size() >= max_json_depth) {
        const std::string where = path_of_child();
        throw BadInput(source + ": " + (where.empty() ? std::string("the document") : where) +
                       ": nested more than " + std::to_string(max_json_depth) +
                       " arrays or objects deep; expected a configuration of at most that depth");
      }
      open.push_back({event == json::parse_event_t::object_start, path_of_child(), {}, {}});
      break;
    case json::parse_event_t::object_end:
    case json::parse_event_t::array_end:
      if (!open.empty())
        open.pop_back();
      break;
    case json::parse_event_t::key:
      if (!open.empty()) {
        Open& o = open.back();
        o.last_key = parsed.get<std::string>();
        if (!o.keys.insert(o.last_key).second)
          throw BadInput(source + ": " + path_of_child() +
                         ": key given twice in the same object; expected each key once (JSON "
                         "parsers disagree on which value wins)");
      }
      break;
    case json::parse_event_t::value:
      break;
    }
    return true;
  };
  try {
    return json::parse(text, check);
  } catch (const json::parse_error& e) {
    // nlohmann reports a byte offset; turn it into line and column for people.
    std::size_t line = 1, column = 1;
    const std::size_t end = std::min<std::size_t>(e.byte, text.size());
    for (std::size_t i = 0; i + 1 < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    const auto pos = what.find("syntax error");
    if (pos != std::string::npos)
      what = what.substr(pos);
    throw BadInput(source + ": not valid JSON at line " + std::to_string(line) + ", column " +
                   std::to_string(column) + ": " + what);
  }
}

ConfigReader ConfigReader::from_file(const std::filesystem::path& path) {
  json value = parse_json(read_text_file(path), path.string());
  const auto base = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  return ConfigReader(std::move(value), path.string(), base);
}

std::string ConfigReader::key_path(const std::string& key) const {
  if (node_->path.empty())
    return key;
  return node_->path + "." + key;
}

const std::string& ConfigReader::source() const {
  return node_->source;
}
const std::filesystem::path& ConfigReader::base_dir() const {
  return node_->base_dir;
}

bool ConfigReader::has(const std::string& key) const {
  return node_->value.contains(key);
}

const json* ConfigReader::find(const std::string& key) const {
  if (std::find(node_->allowed.begin(), node_->allowed.end(), key) == node_->allowed.end()) {
    node_->allowed.push_back(key);
  }
  const auto it = node_->value.find(key);
  if (it == node_->value.end())
    return nullptr;
  return &*it;
}

void ConfigReader::record(const std::string& key, json value) {
  node_->resolved[key] = std::move(value);
}

void ConfigReader::declare(const std::string& key, std::string type, json value, bool required,
                           std::string range, std::string_view doc) {
  // Array elements share one declaration: `grids[3].rows` is `grids[].rows`.
  std::string path;
  const std::string full = key_path(key);
  for (std::size_t i = 0; i < full.size(); ++i) {
    path += full[i];
    if (full[i] == '[') {
      while (i + 1 < full.size() && full[i + 1] != ']')
        ++i;
    }
  }
  auto& list = *node_->declarations;
  for (const auto& d : list)
    if (d.path == path)
      return;
  list.push_back({path, std::move(type), std::move(value), required, unit_of_key(key),
                  std::move(range), std::string(doc)});
}

std::vector<KeyDeclaration> ConfigReader::declarations() const {
  return *node_->declarations;
}

void ConfigReader::fail(const std::string& key, const std::string& expectation) const {
  const auto it = node_->value.find(key);
  std::string message = node_->source + ": " + key_path(key);
  if (it != node_->value.end())
    message += " = " + json_excerpt(*it);
  throw BadInput(message + ": " + expectation);
}

namespace {

// Conversion of one JSON value to T; returns the expectation on a type mismatch.
template <class T> std::optional<std::string> convert(const json& v, T& out);

template <> std::optional<std::string> convert(const json& v, bool& out) {
  if (!v.is_boolean())
    return "expected true or false";
  out = v.get<bool>();
  return std::nullopt;
}

template <> std::optional<std::string> convert(const json& v, double& out) {
  if (!v.is_number())
    return "expected a number";
  out = v.get<double>();
  if (!std::isfinite(out))
    return "expected a finite number";
  return std::nullopt;
}

template <> std::optional<std::string> convert(const json& v, std::int64_t& out) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() &&
        v.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return "expected an integer below 2^63";
    out = v.get<std::int64_t>();
    return std::nullopt;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9.0e15) {
      out = static_cast<std::int64_t>(d);
      return std::nullopt;
    }
  }
  return "expected an integer";
}

template <> std::optional<std::string> convert(const json& v, int& out) {
  std::int64_t wide = 0;
  if (auto e = convert(v, wide))
    return e;
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max())
    return "expected an integer of at most 2^31";
  out = static_cast<int>(wide);
  return std::nullopt;
}

template <> std::optional<std::string> convert(const json& v, std::uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<std::uint64_t>();
    return std::nullopt;
  }
  if (v.is_number_integer())
    return "expected a non-negative integer";
  std::int64_t wide = 0;
  if (auto e = convert(v, wide))
    return "expected a non-negative integer";
  if (wide < 0)
    return "expected a non-negative integer";
  out = static_cast<std::uint64_t>(wide);
  return std::nullopt;
}

template <> std::optional<std::string> convert(const json& v, std::string& out) {
  if (!v.is_string())
    return "expected a string";
  out = v.get<std::string>();
  return std::nullopt;
}

template <class E> std::optional<std::string> convert_vector(const json& v, std::vector<E>& out) {
  if (!v.is_array())
    return "expected an array";
  out.clear();
  for (std::size_t i = 0; i < v.size(); ++i) {
    E e{};
    if (auto err = convert(v[i], e))
      return "element " + std::to_string(i) + ": " + *err;
    out.push_back(e);
  }
  return std::nullopt;
}

template <> std::optional<std::string> convert(const json& v, std::vector<double>& out) {
  return convert_vector(v, out);
}
template <> std::optional<std::string> convert(const json& v, std::vector<std::int64_t>& out) {
  return convert_vector(v, out);
}
template <> std::optional<std::string> convert(const json& v, std::vector<std::string>& out) {
  return convert_vector(v, out);
}

template <class T> std::string type_name();
template <> std::string type_name<bool>() {
  return "boolean";
}
template <> std::string type_name<int>() {
  return "integer";
}
template <> std::string type_name<std::int64_t>() {
  return "integer";
}
template <> std::string type_name<std::uint64_t>() {
  return "integer >= 0";
}
template <> std::string type_name<double>() {
  return "number";
}
template <> std::string type_name<std::string>() {
  return "string";
}
template <> std::string type_name<std::vector<double>>() {
  return "array of numbers";
}
template <> std::string type_name<std::vector<std::int64_t>>() {
  return "array of integers";
}
template <> std::string type_name<std::vector<std::string>>() {
  return "array of strings";
}

} // namespace

template <class T>
T ConfigReader::required(const std::string& key, const Check<T>& check, std::string_view doc) {
  declare(key, type_name<T>(), json(), true, check.range(), doc);
  const json* v = find(key);
  if (v == nullptr) {
    throw BadInput(node_->source + ": " + key_path(key) + ": missing required key");
  }
  T out{};
  if (auto e = convert(*v, out))
    fail(key, *e);
  if (check) {
    if (auto e = check(out))
      fail(key, *e);
  }
  record(key, *v);
  return out;
}

template <class T>
T ConfigReader::optional(const std::string& key, const T& default_value, const Check<T>& check,
                         std::string_view doc) {
  declare(key, type_name<T>(), json(default_value), false, check.range(), doc);
  const json* v = find(key);
  if (v == nullptr) {
    record(key, json(default_value));
    return default_value;
  }
  T out{};
  if (auto e = convert(*v, out))
    fail(key, *e);
  if (check) {
    if (auto e = check(out))
      fail(key, *e);
  }
  record(key, *v);
  return out;
}

#define MYOTWIN_CONFIG_INSTANTIATE(T)                                                              \
  template T ConfigReader::required<T>(const std::string&, const Check<T>&, std::string_view);     \
  template T ConfigReader::optional<T>(const std::string&, const T&, const Check<T>&,              \
                                       std::string_view);
MYOTWIN_CONFIG_INSTANTIATE(bool)
MYOTWIN_CONFIG_INSTANTIATE(int)
MYOTWIN_CONFIG_INSTANTIATE(std::int64_t)
MYOTWIN_CONFIG_INSTANTIATE(std::uint64_t)
MYOTWIN_CONFIG_INSTANTIATE(double)
MYOTWIN_CONFIG_INSTANTIATE(std::string)
MYOTWIN_CONFIG_INSTANTIATE(std::vector<double>)
MYOTWIN_CONFIG_INSTANTIATE(std::vector<std::int64_t>)
MYOTWIN_CONFIG_INSTANTIATE(std::vector<std::string>)
#undef MYOTWIN_CONFIG_INSTANTIATE

std::filesystem::path ConfigReader::required_path(const std::string& key, std::string_view doc) {
  declare(key, "path", json(), true, {}, doc);
  const auto text = required<std::string>(key, [](const std::string& s) {
    return s.empty() ? std::optional<std::string>("expected a non-empty path") : std::nullopt;
  });
  const std::filesystem::path p(text);
  return p.is_absolute() ? p : (node_->base_dir / p).lexically_normal();
}

std::optional<std::filesystem::path> ConfigReader::optional_path(const std::string& key,
                                                                 std::string_view doc) {
  declare(key, "path", json(), false, {}, doc);
  const json* v = find(key);
  if (v == nullptr)
    return std::nullopt;
  return required_path(key);
}

ConfigReader ConfigReader::section(const std::string& key) {
  const json* v = find(key);
  auto it = node_->sections.find(key);
  if (it != node_->sections.end())
    return ConfigReader(it->second);
  json value = json::object();
  if (v != nullptr) {
    if (!v->is_object())
      fail(key, "expected an object { ... }");
    value = *v;
  }
  auto child = std::make_shared<Node>();
  child->value = std::move(value);
  child->source = node_->source;
  child->base_dir = node_->base_dir;
  child->path = key_path(key);
  child->declarations = node_->declarations;
  node_->sections[key] = child;
  return ConfigReader(child);
}

std::vector<ConfigReader> ConfigReader::required_array(const std::string& key) {
  const json* v = find(key);
  if (v == nullptr) {
    throw BadInput(node_->source + ": " + key_path(key) + ": missing required key");
  }
  if (!v->is_array())
    fail(key, "expected an array of objects [ {...}, ... ]");
  std::vector<std::shared_ptr<Node>> nodes;
  std::vector<ConfigReader> readers;
  for (std::size_t i = 0; i < v->size(); ++i) {
    const std::string element_path = key_path(key) + "[" + std::to_string(i) + "]";
    if (!(*v)[i].is_object()) {
      throw BadInput(node_->source + ": " + element_path + " = " + json_excerpt((*v)[i]) +
                     ": expected an object { ... }");
    }
    auto child = std::make_shared<Node>();
    child->value = (*v)[i];
    child->source = node_->source;
    child->base_dir = node_->base_dir;
    child->path = element_path;
    child->declarations = node_->declarations;
    nodes.push_back(child);
    readers.push_back(ConfigReader(child));
  }
  node_->arrays[key] = std::move(nodes);
  return readers;
}

void ConfigReader::finish() const {
  for (const auto& [key, value] : node_->value.items()) {
    (void)value;
    if (std::find(node_->allowed.begin(), node_->allowed.end(), key) != node_->allowed.end())
      continue;
    std::vector<std::string> sorted = node_->allowed;
    std::sort(sorted.begin(), sorted.end());
    std::string list;
    for (const auto& k : sorted)
      list += (list.empty() ? "" : ", ") + k;
    throw BadInput(node_->source + ": " + key_path(key) + ": unknown key; allowed keys" +
                   (node_->path.empty() ? "" : " in " + node_->path) + ": " +
                   (list.empty() ? "(none)" : list));
  }
  for (const auto& [key, child] : node_->sections)
    ConfigReader(child).finish();
  for (const auto& [key, children] : node_->arrays) {
    for (const auto& child : children)
      ConfigReader(child).finish();
  }
}

json ConfigReader::resolved() const {
  json out = node_->resolved;
  for (const auto& [key, child] : node_->sections)
    out[key] = ConfigReader(child).resolved();
  for (const auto& [key, children] : node_->arrays) {
    json array = json::array();
    for (const auto& child : children)
      array.push_back(ConfigReader(child).resolved());
    out[key] = std::move(array);
  }
  return out;
}

} // namespace myotwin
