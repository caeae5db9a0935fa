// Deterministic test data (splitmix64 + Box-Muller), independent of libtorch's generators.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <vector>

struct TestRandom {
  uint64_t state;
  explicit TestRandom(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  double normal() {
    const double u1 = uniform() + 1e-300, u2 = uniform();
    return std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  at::Tensor normal_matrix(int64_t rows, int64_t cols) {
    std::vector<double> v(static_cast<size_t>(rows * cols));
    for (auto& x : v) x = normal();
    return at::tensor(at::ArrayRef<double>(v), at::TensorOptions().dtype(at::kDouble)).reshape({rows, cols});
  }
  std::vector<int64_t> labels(int64_t n) {
    std::vector<int64_t> y(static_cast<size_t>(n));
    for (auto& v : y) v = static_cast<int64_t>(next() & 1);
    return y;
  }
};

inline at::Tensor as_tensor(const std::vector<int64_t>& y) {
  return at::tensor(at::ArrayRef<int64_t>(y), at::TensorOptions().dtype(at::kLong)).to(at::kDouble);
}
