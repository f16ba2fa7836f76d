#include "myotwin/core/text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "myotwin/core/error.hpp"

namespace myotwin {

namespace {

constexpr std::string_view blanks = " \t\r\n";

std::vector<std::string> split_cells(const std::string& line, char separator) {
  std::vector<std::string> cells;
  auto unquote = [](std::string cell) {
    cell = trim(cell);
    if (cell.size() >= 2 && cell.front() == '"' && cell.back() == '"')
      cell = trim(std::string_view(cell).substr(1, cell.size() - 2));
    return cell;
  };
  if (separator == ' ') {
    std::istringstream in(line);
    std::string cell;
    while (in >> cell)
      cells.push_back(unquote(cell));
    return cells;
  }
  std::size_t begin = 0;
  while (true) {
    const std::size_t end = line.find(separator, begin);
    cells.push_back(unquote(line.substr(begin, end == std::string::npos ? end : end - begin)));
    if (end == std::string::npos)
      break;
    begin = end + 1;
  }
  return cells;
}

} // namespace

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(blanks);
  if (b == std::string_view::npos)
    return {};
  const auto e = s.find_last_not_of(blanks);
  return std::string(s.substr(b, e - b + 1));
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0)
      out += separator;
    out += parts[i];
  }
  return out;
}

std::optional<double> parse_number(std::string_view s) {
  const std::string t = trim(s);
  if (t.empty())
    return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size())
    return std::nullopt;
  return v;
}

std::string TextTable::where(const Row& row) const {
  return path.string() + ": line " + std::to_string(row.line) + " \"" + row.text + "\": ";
}

std::string TextTable::where(const std::string& key) const {
  const auto it = metadata_line.find(key);
  return path.string() + ": line " +
         (it == metadata_line.end() ? std::string("?") : std::to_string(it->second)) + " (# " +
         key + "): ";
}

TextTable read_text_table(const std::filesystem::path& path, const std::string& what,
                          char separator) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw IoError(path.string() + ": cannot open " + what);
  TextTable table;
  table.path = path;
  std::string line;
  std::size_t line_no = 0;
  bool detect = separator == 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string t = trim(line);
    if (t.empty())
      continue;
    if (t[0] == '#') {
      const std::string body = trim(std::string_view(t).substr(1));
      const auto eq = body.find_first_of("=:");
      if (eq != std::string::npos && eq > 0) {
        const std::string key = trim(std::string_view(body).substr(0, eq));
        if (key.find_first_of(" \t") == std::string::npos) {
          table.metadata[key] = trim(std::string_view(body).substr(eq + 1));
          table.metadata_line[key] = line_no;
        }
      }
      continue;
    }
    if (detect) {
      separator = t.find(',') != std::string::npos    ? ','
                  : t.find(';') != std::string::npos  ? ';'
                  : t.find('\t') != std::string::npos ? '\t'
                                                      : ' ';
      detect = false;
    }
    table.rows.push_back({line_no, t, split_cells(t, separator)});
  }
  if (in.bad())
    throw IoError(path.string() + ": read error in " + what);
  table.separator = separator == 0 ? ',' : separator;
  return table;
}

} // namespace myotwin
