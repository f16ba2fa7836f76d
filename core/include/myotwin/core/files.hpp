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

/// A fresh temporary name for `path` (`.tmp-<pid>-<n>-<file name>` in the same folder), as
/// write_atomically() and H5Writer use. The name is registered with this process, so that
/// remove_registered_temporaries() (on SIGINT / SIGTERM) deletes the file if it exists; call
/// release_temporary() once the file has been renamed or removed.
std::filesystem::path temporary_path_for(const std::filesystem::path& path);

/// Forgets a name from temporary_path_for() (the file was renamed into place or removed).
void release_temporary(const std::filesystem::path& tmp);

/// Deletes every registered temporary file of this process that exists and returns how many
/// were deleted. Meant for the interrupt handler just before the process exits: afterwards no
/// new temporary name is handed out (temporary_path_for() blocks).
std::size_t remove_registered_temporaries();

/// Deletes the temporary files that processes which no longer run left in `dir` (not below it):
/// `.tmp-<pid>-...` of write_atomically() and `.myotwin-write-test-<pid>` of
/// ensure_output_dir(), where no process `pid` exists. Files of live processes (including this
/// one) are kept. Returns how many were deleted; a folder that cannot be listed gives 0.
/// ensure_output_dir() and write_atomically() call it once per folder and process.
std::size_t remove_stale_temporaries(const std::filesystem::path& dir);

} // namespace myotwin
