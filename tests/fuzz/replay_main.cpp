/// Replays a fuzz target's corpus in the normal (gcc) build: calls the target's
/// LLVMFuzzerTestOneInput on every file of the folders or files given. An input the reader
/// refuses with an input error is fine (the target catches it); a crash, an abort or any
/// other exception fails the run.
/// Usage: fuzz_replay_<target> CORPUS_DIR_OR_FILE...

#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

int replay(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    std::fprintf(stderr, "cannot read %s\n", file.c_str());
    return 1;
  }
  try {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: uncaught exception: %s\n", file.c_str(), e.what());
    return 1;
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  int failed = 0;
  int replayed = 0;
  for (int a = 1; a < argc; ++a) {
    const std::filesystem::path arg(argv[a]);
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::directory_iterator(arg))
        if (entry.is_regular_file())
          files.push_back(entry.path());
    } else {
      files.push_back(arg);
    }
    for (const auto& file : files) {
      failed += replay(file);
      ++replayed;
    }
  }
  std::printf("replayed %d inputs, %d failed\n", replayed, failed);
  // An empty corpus is a mistake (a wrong path), not a pass.
  return failed == 0 && replayed > 0 ? 0 : 1;
}
