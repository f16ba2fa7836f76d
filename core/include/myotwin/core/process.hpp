#pragma once
/// \file process.hpp
/// Interruption. After install_interrupt_handling(), SIGINT, SIGTERM and SIGHUP make the process
/// stop: the temporary files of unfinished atomic writes are deleted
/// (remove_registered_temporaries()), a line naming the signal goes to standard error, and the
/// process exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM). Finished
/// outputs are never touched: they appear only by rename, so an interrupted run leaves either
/// the old file or the new one. myotwin starts no child processes (`pipeline` runs its stages
/// in-process), so nothing outlives it.

namespace myotwin {

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (and so in every thread started
/// afterwards) and starts a thread that waits for them and stops the process as described above.
/// Call it first in main(), before any other thread starts. Calling it again does nothing.
void install_interrupt_handling();

} // namespace myotwin
