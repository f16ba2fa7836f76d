#pragma once
/// \file files.hpp
/// Files and folders: output folders that are checked before work starts, atomic writes (a
/// temporary name in the same folder, renamed when complete, so a failed run never leaves a
/// half-written file that looks whole), and whole-file text I/O.

#include <filesystem>
#include <functional>
#include <string>

namespace myotwin {

/// Creates `dir` (and its parents) if needed and checks that a file can be created in it.
/// \throws IoError naming the folder and the reason.
void ensure_output_dir(const std::filesystem::path& dir);

/// Writes `path` atomically: `write` is called with a temporary path in the same folder that
/// keeps `path`'s extensions (so writers that choose a format by extension work); when it
/// returns, the file is renamed to `path`. If `write` throws, the temporary file is removed and
/// the exception propagates; an existing `path` is left untouched.
/// \throws IoError if the rename fails.
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path& tmp)>& write);

/// Writes `text` to `path` atomically. \throws IoError.
void write_text_file(const std::filesystem::path& path, const std::string& text);

/// Reads a whole file. \throws IoError naming the file when it is missing or unreadable.
std::string read_text_file(const std::filesystem::path& path);

/// The temporary name write_atomically() uses for `path` (exposed for tests).
std::filesystem::path temporary_path_for(const std::filesystem::path& path);

} // namespace myotwin
