// Stable hashing and a fixed PRNG: results that never depend on the standard library's choices.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gpujob::io {

// 64-bit FNV-1a of the bytes; stable across platforms and releases (used in cache keys).
uint64_t fnv1a64(const std::string& bytes, uint64_t seed = 0xcbf29ce484222325ULL);
// fnv1a64 as 16 lowercase hex digits.
std::string fnv1a64_hex(const std::string& bytes);

// splitmix64: a tiny, fully specified PRNG (Steele et al.), so a seed gives the same sequence
// with every compiler and standard library.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform integer in [0, bound) without modulo bias (rejection sampling); bound > 0.
  uint64_t below(uint64_t bound);

 private:
  uint64_t state_;
};

// Fisher-Yates shuffle of the indices 0..n-1 driven by SplitMix64(seed).
std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed);

}  // namespace gpujob::io
