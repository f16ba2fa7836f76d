#include <fstream>

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using myotwin::testing::expect_error;
using myotwin::testing::TempDir;

TEST(Files, WriteAtomicallyRenamesOnlyWhenComplete) {
  TempDir dir;
  const auto target = dir / "result.txt";
  myotwin::write_text_file(target, "old");
  EXPECT_THROW(myotwin::write_atomically(target,
                                         [](const fs::path& tmp) {
                                           std::ofstream(tmp) << "half";
                                           throw std::runtime_error("disk full");
                                         }),
               std::runtime_error);
  EXPECT_EQ(myotwin::read_text_file(target), "old");
  // No temporary file is left behind.
  int n_files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++n_files;
  }
  EXPECT_EQ(n_files, 1);
  myotwin::write_text_file(target, "new");
  EXPECT_EQ(myotwin::read_text_file(target), "new");
}

TEST(Files, TemporaryNameKeepsTheExtensionsInTheSameFolder) {
  const fs::path p = "/some/folder/labels.nii.gz";
  const fs::path tmp = myotwin::temporary_path_for(p);
  EXPECT_EQ(tmp.parent_path(), p.parent_path());
  const std::string name = tmp.filename().string();
  EXPECT_TRUE(name.ends_with(".nii.gz"));
  EXPECT_NE(tmp, p);
}

TEST(Files, EnsureOutputDirCreatesFoldersAndRejectsUnwritableOnes) {
  TempDir dir;
  myotwin::ensure_output_dir(dir / "a/b/c");
  EXPECT_TRUE(fs::is_directory(dir / "a/b/c"));
  myotwin::write_text_file(dir / "file", "x");
  expect_error<myotwin::IoError>([&] { myotwin::ensure_output_dir(dir / "file"); },
                                 {"file", "expected a folder"});
  expect_error<myotwin::IoError>([&] { myotwin::ensure_output_dir(dir / "file" / "sub"); },
                                 {"cannot create the output folder"});
  if (::geteuid() != 0) { // root writes anywhere: the permission check only means something else
    fs::create_directories(dir / "ro");
    fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    expect_error<myotwin::IoError>([&] { myotwin::ensure_output_dir(dir / "ro"); },
                                   {"ro", "cannot be written"});
    fs::permissions(dir / "ro", fs::perms::owner_all);
  }
}

TEST(Files, ReadingAMissingFileNamesIt) {
  expect_error<myotwin::IoError>([] { myotwin::read_text_file("/nonexistent/x.json"); },
                                 {"/nonexistent/x.json", "no such file"});
}

namespace {

/// The pid of a process that has ended (a child that exits at once, reaped).
pid_t ended_pid() {
  const pid_t pid = ::fork();
  if (pid == 0)
    ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

} // namespace

TEST(Files, StaleTemporariesOfEndedProcessesAreRemovedAndLiveOnesKept) {
  TempDir dir;
  const std::string dead = std::to_string(ended_pid());
  const std::string live = std::to_string(::getppid()); // the test runner's parent lives
  const std::string self = std::to_string(::getpid());
  for (const std::string& name : std::vector<std::string>{
           ".tmp-" + dead + "-0-emg.h5", ".tmp-" + dead + "-12-labels.nii.gz",
           ".myotwin-write-test-" + dead, ".tmp-" + live + "-0-emg.h5", ".tmp-" + self + "-3-x.h5",
           ".tmp-abc-0-emg.h5", "emg.h5", ".tmp-" + dead + "x-0-y"})
    std::ofstream(dir / name) << "x";
  EXPECT_EQ(myotwin::remove_stale_temporaries(dir.path()), 3U);
  EXPECT_FALSE(fs::exists(dir / (".tmp-" + dead + "-0-emg.h5")));
  EXPECT_FALSE(fs::exists(dir / (".tmp-" + dead + "-12-labels.nii.gz")));
  EXPECT_FALSE(fs::exists(dir / (".myotwin-write-test-" + dead)));
  for (const std::string& kept :
       std::vector<std::string>{".tmp-" + live + "-0-emg.h5", ".tmp-" + self + "-3-x.h5",
                                ".tmp-abc-0-emg.h5", "emg.h5", ".tmp-" + dead + "x-0-y"})
    EXPECT_TRUE(fs::exists(dir / kept)) << kept;
  // ensure_output_dir() sweeps a folder it is given.
  std::ofstream(dir / (".tmp-" + dead + "-1-muaps.h5")) << "x";
  myotwin::ensure_output_dir(dir.path());
  EXPECT_FALSE(fs::exists(dir / (".tmp-" + dead + "-1-muaps.h5")));
  EXPECT_EQ(myotwin::remove_stale_temporaries(dir / "missing"), 0U);
}

TEST(Files, RegisteredTemporariesAreRemovedOnRequestAndReleasedOnesKept) {
  // In a child process: remove_registered_temporaries() ends the registry of the process.
  TempDir dir;
  const pid_t pid = ::fork();
  if (pid == 0) {
    const fs::path open_tmp = myotwin::temporary_path_for(dir / "a.h5");
    std::ofstream(open_tmp) << "half";
    const fs::path done_tmp = myotwin::temporary_path_for(dir / "b.h5");
    std::ofstream(done_tmp) << "whole";
    fs::rename(done_tmp, dir / "b.h5");
    myotwin::release_temporary(done_tmp);
    std::ofstream(done_tmp) << "someone else's file of that name";
    const std::size_t n = myotwin::remove_registered_temporaries();
    ::_exit(n == 1 && !fs::exists(open_tmp) && fs::exists(done_tmp) ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(fs::exists(dir / "b.h5"));
}
