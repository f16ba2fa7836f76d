/// Fuzz target `json`: the strict JSON parser (parse_json: depth limit, duplicate keys) and the
/// config reader on what it returns: a real reader (the tissue table), then every key read
/// generically with each type, sections and arrays of objects recursively, finish() and
/// resolved().

#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "myotwin/anatomy/tissue_table.hpp"
#include "myotwin/core/config.hpp"

namespace {

using myotwin::ConfigReader;

template <class T> void try_read(ConfigReader& reader, const std::string& key) {
  try {
    (void)reader.optional<T>(key, T{});
  } catch (const myotwin::BadInput&) {
  }
}

void read_everything(ConfigReader reader, const nlohmann::json& value, int depth) {
  for (const auto& [key, item] : value.items()) {
    if (item.is_object() && depth < 8) {
      try {
        read_everything(reader.section(key), item, depth + 1);
      } catch (const myotwin::BadInput&) {
      }
    } else if (item.is_array() && !item.empty() && item.front().is_object() && depth < 8) {
      try {
        std::vector<ConfigReader> elements = reader.required_array(key);
        for (std::size_t i = 0; i < elements.size(); ++i)
          read_everything(elements[i], item[i], depth + 1);
      } catch (const myotwin::BadInput&) {
      }
    } else {
      try_read<bool>(reader, key);
      try_read<std::int64_t>(reader, key);
      try_read<std::uint64_t>(reader, key);
      try_read<int>(reader, key);
      try_read<double>(reader, key);
      try_read<std::string>(reader, key);
      try_read<std::vector<double>>(reader, key);
      try_read<std::vector<std::int64_t>>(reader, key);
      try_read<std::vector<std::string>>(reader, key);
      try {
        (void)reader.optional_path(key);
      } catch (const myotwin::BadInput&) {
      }
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  myotwin::fuzz::refuse_only_with_input_errors([&] {
    const nlohmann::json value = myotwin::parse_json(text, "fuzz.json");
    try {
      ConfigReader tissues(value, "fuzz.json");
      (void)myotwin::anatomy::to_json(myotwin::anatomy::read_tissue_table(tissues));
    } catch (const myotwin::BadInput&) {
    }
    ConfigReader reader(value, "fuzz.json");
    read_everything(reader, value.is_object() ? value : nlohmann::json::object(), 0);
    (void)reader.resolved().dump();
    (void)reader.declarations();
    reader.finish();
  });
  return 0;
}
