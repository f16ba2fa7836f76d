#include <fstream>

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
