#include "myotwin/core/hash.hpp"

#include <cstdio>
#include <fstream>
#include <vector>

#include "myotwin/core/error.hpp"

namespace myotwin {

std::uint64_t fnv1a64(const void* data, std::size_t n_bytes, std::uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n_bytes; ++i) {
    hash ^= p[i];
    hash *= 1099511628211ULL;
  }
  return hash;
}

std::uint64_t hash_text(std::string_view text, std::uint64_t hash) {
  return fnv1a64(text.data(), text.size(), hash);
}

std::uint64_t hash_file(const std::filesystem::path& path, std::uint64_t hash) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw IoError(path.string() + ": cannot be read");
  std::vector<char> chunk(1 << 20);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    hash = fnv1a64(chunk.data(), static_cast<std::size_t>(in.gcount()), hash);
  }
  if (in.bad())
    throw IoError(path.string() + ": read error");
  return hash;
}

} // namespace myotwin
