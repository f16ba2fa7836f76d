// myotwin: from a segmented limb to personalised EMG and back.
//
// Sample runs:
//   myotwin phantom -o subject/            generate the sample forearm
//   myotwin subject init seg.nii.gz --scheme musclemap -o subject/   a subject from a scan
//   myotwin anatomy info subject/subject.json
//   myotwin config defaults > run.json     every configuration key with its default
//
// main() runs one subcommand (run_command(), dispatch.cpp) and returns its exit code:
// 0 ok, 1 runtime or numerical failure, 2 bad input or usage, 130 / 143 interrupted by SIGINT /
// SIGTERM (unfinished temporary files removed; see docs/reliability.md).

#include <string>
#include <vector>

#include "commands.hpp"
#include "myotwin/core/process.hpp"

int main(int argc, char** argv) {
  // Interrupts stop the work and remove unfinished temporary files (before threads start).
  myotwin::install_interrupt_handling();
  return myotwin::app::run_command(std::vector<std::string>(argv + 1, argv + argc));
}
