#pragma once
/// \file hash.hpp
/// FNV-1a 64-bit hashing for cache and stage keys: bytes, text and whole files. Not a
/// cryptographic hash; it detects changes, not tampering.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

namespace myotwin {

/// The FNV-1a 64-bit offset basis: the hash of nothing, where a chain of hashes starts.
inline constexpr std::uint64_t fnv1a64_basis = 14695981039346656037ULL;

/// FNV-1a 64-bit hash of `n_bytes` bytes at `data`, continuing from `hash`.
std::uint64_t fnv1a64(const void* data, std::size_t n_bytes, std::uint64_t hash = fnv1a64_basis);

/// The hash of the characters of `text` (not its terminator), continuing from `hash`.
std::uint64_t hash_text(std::string_view text, std::uint64_t hash = fnv1a64_basis);

/// The hash of the bytes of the file at `path`, continuing from `hash`.
/// \throws IoError naming `path` when it cannot be read.
std::uint64_t hash_file(const std::filesystem::path& path, std::uint64_t hash = fnv1a64_basis);

} // namespace myotwin
