#pragma once
/// \file text.hpp
/// Small text helpers every reader shares: trimming, strict number parsing, lower case, and
/// delimited text tables (CSV and its semicolon / tab cousins) with their line numbers, so that
/// a reader's error can name the file, the line and the text it found.

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace myotwin {

/// `s` without leading and trailing spaces, tabs, carriage returns and newlines.
std::string trim(std::string_view s);

/// `s` in ASCII lower case.
std::string to_lower(std::string_view s);

/// The strings joined with `separator` between them.
std::string join(const std::vector<std::string>& parts, std::string_view separator);

/// The number `s` spells in full (blanks around it allowed; `nan`, `inf` and `-inf` accepted,
/// in any case), or nullopt when `s` is empty or has anything else in it.
std::optional<double> parse_number(std::string_view s);

/// A delimited text table as read from a file. Blank lines are skipped; a line starting with `#`
/// is a comment, and a comment of the form `# key = value` (or `# key: value`) is kept in
/// `metadata`. Every other line is a row of cells, each trimmed and stripped of surrounding
/// double quotes; a trailing separator gives a trailing empty cell.
struct TextTable {
  struct Row {
    std::size_t line = 0; ///< 1-based line number in the file
    std::string text;     ///< the line, trimmed
    std::vector<std::string> cells;
  };
  std::filesystem::path path;
  char separator = ',';
  /// `# key = value` comments, key and value trimmed; the last one wins.
  std::map<std::string, std::string> metadata;
  /// The 1-based line of each metadata key (for messages).
  std::map<std::string, std::size_t> metadata_line;
  std::vector<Row> rows;

  /// The prefix of an error about `row`: `PATH: line N "TEXT": `.
  [[nodiscard]] std::string where(const Row& row) const;
  /// The prefix of an error about metadata `key`: `PATH: line N (# key): `.
  [[nodiscard]] std::string where(const std::string& key) const;
};

/// Reads a delimited text table. `separator` 0 detects it from the first row: ',' if it has
/// one, else ';', else a tab, else runs of blanks. `what` names the content in the open error
/// ("the excitation CSV file").
/// \throws IoError naming `path` when it cannot be read.
TextTable read_text_table(const std::filesystem::path& path, const std::string& what,
                          char separator = ',');

} // namespace myotwin
