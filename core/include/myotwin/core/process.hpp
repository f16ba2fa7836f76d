#pragma once
/// \file process.hpp
/// Interruption and child processes. After install_interrupt_handling(), SIGINT, SIGTERM and
/// SIGHUP make the process stop: the signal is passed on to the running child process (if any)
/// and waited for, the temporary files of unfinished atomic writes are deleted
/// (remove_registered_temporaries()), a line naming the signal goes to standard error, and the
/// process exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM). Finished
/// outputs are never touched: they appear only by rename, so an interrupted run leaves either
/// the old file or the new one. Child processes started by run_child_process() die with their
/// parent, also when it is killed with SIGKILL.

#include <filesystem>
#include <string>
#include <vector>

namespace myotwin {

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (and so in every thread started
/// afterwards) and starts a thread that waits for them and stops the process as described above.
/// Call it first in main(), before any other thread starts. Calling it again does nothing.
void install_interrupt_handling();

/// Runs `program` with `args` (argv[1..]) as a child process that shares standard output and
/// error, and waits for it. The child has the default signal mask and dispositions and gets
/// SIGTERM when this process dies; while it runs, an interrupt of this process is passed on to
/// it. Returns its exit code, or 128 + the signal number when a signal ended it.
/// \throws Error naming `program` when it cannot be started.
int run_child_process(const std::filesystem::path& program, const std::vector<std::string>& args);

} // namespace myotwin
