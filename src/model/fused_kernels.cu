// Fused element-wise kernels of the decoder (see fused_kernels.cuh). Each computes in float32 and
// rounds to the element type exactly where the unfused ATen expression does, so results match it.
#include "fused_kernels.cuh"

#include "kernel_launch.cuh"
#include "kernel_types.cuh"

#include <cstdint>
#include <initializer_list>

namespace gpujob::model::kernels {
namespace {

using detail::activation;
using detail::block_sum;
using detail::dispatch;
using detail::from_float;
using detail::kPerVector;
using detail::load_vector;
using detail::norm_value;
using detail::rounded;
using detail::start_after_prior_grids;
using detail::store_vector;
using detail::allow_next_grid;
using detail::wait_for_prior_grids;
using detail::to_float;
using detail::Vector;
using detail::warp_sum;

constexpr int kNormThreads = 256;

// RMSNorm of a row (with b, of the residual sum a + b, rounded to T and written to sum first) by
// one block, for rows rms_norm_vector_kernel does not take. Rows come in groups: row r of the
// input starts at (r / rows_per_group) * group_stride + (r % rows_per_group) * hidden; the output
// and sum are dense. sum is written and read back by the same thread, so it is not __restrict__.
template <typename T>
__global__ void rms_norm_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ weight,
                                T* sum, T* __restrict__ out, int64_t hidden, int64_t rows_per_group,
                                int64_t group_stride, float eps, float offset) {
  start_after_prior_grids();
  const int64_t row = blockIdx.x;
  const int64_t in_start = (row / rows_per_group) * group_stride + (row % rows_per_group) * hidden;
  const int64_t out_start = row * hidden;
  float squares = 0.f;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    float v = to_float(a[in_start + i]);
    if (b != nullptr) {
      v = rounded<T>(v + to_float(b[in_start + i]));
      sum[out_start + i] = from_float<T>(v);
    }
    squares += v * v;
  }
  const float inv_rms = rsqrtf(block_sum(squares) / static_cast<float>(hidden) + eps);
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float v = to_float(b != nullptr ? sum[out_start + i] : a[in_start + i]);
    out[out_start + i] = norm_value<T>(v * inv_rms, to_float(weight[i]), offset);
  }
}

// RMSNorm of rows held in registers: each thread reads up to kVectors 16-byte vectors of a row
// once (with b, the residual addition first, its sum written out), so a row costs one read of
// each input and one write of each output. Arguments as rms_norm_kernel's. With kPartials, b is
// not read: what is added to a is round(the sum of kLinearSplits float32 partial sums), the
// partials of the row at parts + s * split_stride + row * hidden (split_linear's output); a thread
// then holds one vector, so that a row's many partial loads spread over twice the warps.
constexpr int kNormVectors = 2;
constexpr int kPartialsNormVectors = 1;

template <typename T, bool kPartials, int kVectors>
__global__ void rms_norm_vector_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ weight,
                                       T* __restrict__ sum, T* __restrict__ out, int64_t hidden, int64_t rows_per_group,
                                       int64_t group_stride, float eps, float offset,
                                       const float* __restrict__ parts, int64_t split_stride) {
  allow_next_grid();
  constexpr int V = kPerVector<T>;
  // The weights are constant: read before waiting for the inputs, so that their latency overlaps
  // the previous kernel's end instead of following the row's sum.
  Vector<T> w[kVectors];
#pragma unroll
  for (int k = 0; k < kVectors; ++k) {
    const int64_t at = (threadIdx.x + static_cast<int64_t>(k) * blockDim.x) * V;
    if (at < hidden) w[k] = load_vector(weight + at);
  }
  wait_for_prior_grids();
  const int64_t row = blockIdx.x;
  const int64_t in_start = (row / rows_per_group) * group_stride + (row % rows_per_group) * hidden;
  const int64_t out_start = row * hidden;
  float x[kVectors][V];
  float squares = 0.f;
#pragma unroll
  for (int k = 0; k < kVectors; ++k) {
    const int64_t at = (threadIdx.x + static_cast<int64_t>(k) * blockDim.x) * V;
    if (at >= hidden) break;
    const Vector<T> va = load_vector(a + in_start + at);
    if constexpr (kPartials) {
      // Every partial's loads first (kLinearSplits x V floats), then their sums.
      float4 p[kLinearSplits][V / 4];
#pragma unroll
      for (int s = 0; s < kLinearSplits; ++s)
#pragma unroll
        for (int q = 0; q < V / 4; ++q)
          p[s][q] = *reinterpret_cast<const float4*>(parts + s * split_stride + out_start + at + 4 * q);
      Vector<T> vs;
#pragma unroll
      for (int q = 0; q < V / 4; ++q) {
        float4 d = p[0][q];
#pragma unroll
        for (int s = 1; s < kLinearSplits; ++s) d.x += p[s][q].x, d.y += p[s][q].y, d.z += p[s][q].z, d.w += p[s][q].w;
        const float delta[4] = {d.x, d.y, d.z, d.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          vs.e[4 * q + j] = from_float<T>(to_float(va.e[4 * q + j]) + rounded<T>(delta[j]));
          x[k][4 * q + j] = to_float(vs.e[4 * q + j]);
        }
      }
      store_vector(sum + out_start + at, vs);
    } else if (b != nullptr) {
      const Vector<T> vb = load_vector(b + in_start + at);
      Vector<T> vs;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        vs.e[j] = from_float<T>(to_float(va.e[j]) + to_float(vb.e[j]));
        x[k][j] = to_float(vs.e[j]);
      }
      store_vector(sum + out_start + at, vs);
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) x[k][j] = to_float(va.e[j]);
    }
#pragma unroll
    for (int j = 0; j < V; ++j) squares += x[k][j] * x[k][j];
  }
  const float inv_rms = rsqrtf(block_sum(squares) / static_cast<float>(hidden) + eps);
#pragma unroll
  for (int k = 0; k < kVectors; ++k) {
    const int64_t at = (threadIdx.x + static_cast<int64_t>(k) * blockDim.x) * V;
    if (at >= hidden) break;
    Vector<T> o;
#pragma unroll
    for (int j = 0; j < V; ++j) o.e[j] = norm_value<T>(x[k][j] * inv_rms, to_float(w[k].e[j]), offset);
    store_vector(out + out_start + at, o);
  }
}

// Threads per row for rms_norm_vector_kernel, or 0 when it does not apply (a row length or group
// stride that is not a whole number of 16-byte vectors, a pointer not 16-byte aligned, a row
// longer than 1024 threads hold).
int norm_vector_threads(int64_t hidden, int64_t group_stride, int64_t element_size,
                        std::initializer_list<const void*> pointers, int vectors = kNormVectors) {
  const int64_t per_vector = 16 / element_size;
  if (hidden % per_vector != 0 || group_stride % per_vector != 0) return 0;
  for (const void* p : pointers)
    if (!detail::aligned_16(p)) return 0;
  const int64_t row_vectors = hidden / per_vector;
  const int64_t threads = ((row_vectors + vectors - 1) / vectors + 31) / 32 * 32;
  return threads <= 1024 ? static_cast<int>(threads) : 0;
}

// One warp per (token, head). Lane l holds elements l, l + 32, ...: with dim a multiple of 64 the
// element RoPE pairs with (d +- dim / 2) is in the same lane, kPerLane / 2 slots away.
constexpr int kHeadWarps = 8;

template <typename T, int kPerLane>
__global__ void attention_inputs_kernel(AttentionInputs in) {
  allow_next_grid();
  const int lane = threadIdx.x & 31;
  const int64_t warp = static_cast<int64_t>(blockIdx.x) * kHeadWarps + threadIdx.x / 32;
  const bool cached = in.cache_rows != nullptr;
  const int64_t per_token = in.heads + in.kv_heads * (cached ? 2 : 1);
  const int64_t token = warp / per_token, head = warp % per_token, dim = in.dim;
  const bool is_q = head < in.heads;
  // The norm weights are constant: read before waiting for the inputs (see rms_norm_vector_kernel);
  // the inputs, cos and sin are then read together, one latency instead of one after another. A
  // warp past the last token has a valid head, so its reads stay in the weights; it leaves after
  // the wait, as kernel_launch.cuh asks of every thread.
  const T* norm = head < in.heads + in.kv_heads ? static_cast<const T*>(is_q ? in.q_norm : in.k_norm) : nullptr;
  float norm_w[kPerLane];
  if (norm != nullptr) {
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) norm_w[j] = to_float(norm[lane + 32 * j]);
  }
  wait_for_prior_grids();
  if (warp >= in.tokens * per_token) return;
  const int64_t cache_row = cached ? in.cache_rows[token] : 0;
  // A padding token's k and v are not kept; its q is still written (as the unfused path does).
  if (!is_q && cache_row < 0) return;
  const T* src = static_cast<const T*>(in.qkv) + token * in.token_stride + head * dim;
  const int64_t cache_row_start = cache_row * in.kv_heads * dim;
  if (head >= in.heads + in.kv_heads) {  // v, into the cache as it is
    T* dst = static_cast<T*>(in.v_cache) + cache_row_start + (head - in.heads - in.kv_heads) * dim;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) dst[lane + 32 * j] = src[lane + 32 * j];
    return;
  }
  const T* cos = static_cast<const T*>(in.cos) + token * dim;
  const T* sin = static_cast<const T*>(in.sin) + token * dim;
  float v[kPerLane], c[kPerLane], s[kPerLane];
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    v[j] = to_float(src[lane + 32 * j]);
    c[j] = to_float(cos[lane + 32 * j]);
    s[j] = to_float(sin[lane + 32 * j]);
  }
  if (norm != nullptr) {
    float squares = 0.f;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) squares += v[j] * v[j];
    const float inv_rms = rsqrtf(warp_sum(squares) / static_cast<float>(dim) + in.eps);
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) v[j] = to_float(norm_value<T>(v[j] * inv_rms, norm_w[j], in.offset));
  }
  T* dst;
  if (is_q) {
    dst = static_cast<T*>(in.q_out) + (token * in.heads + head) * dim;
  } else if (cached) {
    dst = static_cast<T*>(in.k_cache) + cache_row_start + (head - in.heads) * dim;
  } else {
    dst = static_cast<T*>(in.k_out) + (token * in.kv_heads + head - in.heads) * dim;
  }
  constexpr int kHalf = kPerLane / 2;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    const int64_t d = lane + 32 * j;
    const float rotated = j < kHalf ? -v[j + kHalf] : v[j - kHalf];
    dst[d] = from_float<T>(rounded<T>(v[j] * c[j]) + rounded<T>(rotated * s[j]));
  }
}

template <typename T>
__global__ void gated_activation_kernel(const T* __restrict__ gate, const T* __restrict__ up, T* __restrict__ out,
                                        int64_t rows, int64_t width, int64_t row_stride, bool gelu_tanh) {
  start_after_prior_grids();
  const int64_t n = rows * width;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t at = (i / width) * row_stride + i % width;
    const float a = activation(to_float(gate[at]), gelu_tanh);
    out[i] = from_float<T>(rounded<T>(a) * to_float(up[at]));
  }
}

// The same, 16 bytes of each input at a time (width and row_stride whole vectors, aligned).
template <typename T>
__global__ void gated_activation_vector_kernel(const T* __restrict__ gate, const T* __restrict__ up,
                                               T* __restrict__ out, int64_t rows, int64_t width, int64_t row_stride,
                                               bool gelu_tanh) {
  start_after_prior_grids();
  constexpr int V = kPerVector<T>;
  const int64_t per_row = width / V, n = rows * per_row;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / per_row, column = (i % per_row) * V;
    const Vector<T> g = load_vector(gate + row * row_stride + column);
    const Vector<T> u = load_vector(up + row * row_stride + column);
    Vector<T> o;
#pragma unroll
    for (int j = 0; j < V; ++j)
      o.e[j] = from_float<T>(rounded<T>(activation(to_float(g.e[j]), gelu_tanh)) * to_float(u.e[j]));
    store_vector(out + row * width + column, o);
  }
}

template <typename T>
__global__ void rope_kernel(const T* __restrict__ x, const T* __restrict__ cos, const T* __restrict__ sin,
                            T* __restrict__ out, int64_t batch_tokens, int64_t heads, int64_t dim,
                            int64_t token_stride) {
  start_after_prior_grids();
  const int64_t half = dim / 2;
  const int64_t n = batch_tokens * heads * dim;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t d = i % dim;
    const int64_t token = i / (heads * dim);  // row of the tables
    const int64_t at = token * token_stride + i % (heads * dim);  // the same element in x
    const float c = to_float(cos[token * dim + d]), s = to_float(sin[token * dim + d]);
    const float v = to_float(x[at]);
    const float rotated = d < half ? -to_float(x[at + half]) : to_float(x[at - half]);
    out[i] = from_float<T>(rounded<T>(v * c) + rounded<T>(rotated * s));
  }
}

unsigned elementwise_blocks(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return static_cast<unsigned>(blocks < 65535 * 8 ? blocks : 65535 * 8);
}

// RMSNorm of rows (with b, of the residual sums a + b): the register kernel where it applies.
void launch_rms_norm(ElementType type, const void* a, const void* b, const void* weight, void* sum, void* out,
                     int64_t rows, int64_t hidden, int64_t rows_per_group, int64_t group_stride, float eps,
                     float offset, cudaStream_t stream) {
  if (rows == 0) return;
  dispatch(type, b != nullptr ? "fused add + rms_norm" : "fused rms_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int threads = norm_vector_threads(hidden, group_stride, sizeof(T), {a, b, weight, sum, out});
    const auto* ta = static_cast<const T*>(a);
    const auto* tb = static_cast<const T*>(b);
    const auto* tw = static_cast<const T*>(weight);
    if (threads > 0) {
      detail::launch(rms_norm_vector_kernel<T, false, kNormVectors>, static_cast<unsigned>(rows), threads, 0, stream, ta, tb, tw,
                     static_cast<T*>(sum), static_cast<T*>(out), hidden, rows_per_group, group_stride, eps, offset,
                     static_cast<const float*>(nullptr), int64_t{0});
    } else {
      detail::launch(rms_norm_kernel<T>, static_cast<unsigned>(rows), kNormThreads, 0, stream, ta, tb, tw,
                     static_cast<T*>(sum), static_cast<T*>(out), hidden, rows_per_group, group_stride, eps, offset);
    }
  });
}

}  // namespace

bool add_partials_rms_norm_support(int64_t hidden, int64_t element_size, std::initializer_list<const void*> pointers) {
  return norm_vector_threads(hidden, hidden, element_size, pointers, kPartialsNormVectors) > 0;
}

void add_partials_rms_norm(ElementType type, const void* a, const float* parts, const void* weight, void* sum,
                           void* out, int64_t rows, int64_t hidden, float eps, float offset, cudaStream_t stream) {
  if (rows == 0) return;
  dispatch(type, "fused add of partial sums + rms_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int threads =
        norm_vector_threads(hidden, hidden, sizeof(T), {a, parts, weight, sum, out}, kPartialsNormVectors);
    if (threads == 0)
      throw std::runtime_error("fused add of partial sums + rms_norm: rows of this length or alignment are not taken");
    detail::launch(rms_norm_vector_kernel<T, true, kPartialsNormVectors>, static_cast<unsigned>(rows), threads, 0, stream,
                   static_cast<const T*>(a), static_cast<const T*>(nullptr), static_cast<const T*>(weight),
                   static_cast<T*>(sum), static_cast<T*>(out), hidden, rows, rows * hidden, eps, offset, parts,
                   rows * hidden);
  });
}

void rms_norm(ElementType type, const void* x, const void* weight, void* out, int64_t rows, int64_t hidden,
              int64_t rows_per_group, int64_t group_stride, float eps, float offset, cudaStream_t stream) {
  launch_rms_norm(type, x, nullptr, weight, nullptr, out, rows, hidden, rows_per_group, group_stride, eps, offset,
                  stream);
}

void add_rms_norm(ElementType type, const void* a, const void* b, const void* weight, void* sum, void* out,
                  int64_t rows, int64_t hidden, float eps, float offset, cudaStream_t stream) {
  launch_rms_norm(type, a, b, weight, sum, out, rows, hidden, rows, rows * hidden, eps, offset, stream);
}

bool attention_inputs_support(int64_t dim) { return dim == 64 || dim == 128 || dim == 256; }

void attention_inputs(ElementType type, const AttentionInputs& in, cudaStream_t stream) {
  const int64_t warps = in.tokens * (in.heads + in.kv_heads * (in.cache_rows != nullptr ? 2 : 1));
  if (warps == 0) return;
  if (!attention_inputs_support(in.dim))
    throw std::runtime_error("fused attention inputs: head_dim " + std::to_string(in.dim) + " is not 64, 128 or 256");
  const auto blocks = static_cast<unsigned>((warps + kHeadWarps - 1) / kHeadWarps);
  dispatch(type, "fused attention inputs", [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (in.dim) {
      case 64: detail::launch(attention_inputs_kernel<T, 2>, blocks, kHeadWarps * 32, 0, stream, in); break;
      case 128: detail::launch(attention_inputs_kernel<T, 4>, blocks, kHeadWarps * 32, 0, stream, in); break;
      default: detail::launch(attention_inputs_kernel<T, 8>, blocks, kHeadWarps * 32, 0, stream, in); break;
    }
  });
}

void gated_activation(ElementType type, const void* gate, const void* up, void* out, int64_t rows, int64_t width,
                      int64_t row_stride, bool gelu_tanh, cudaStream_t stream) {
  const int64_t n = rows * width;
  if (n == 0) return;
  dispatch(type, "fused gated activation", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto* gt = static_cast<const T*>(gate);
    const auto* ut = static_cast<const T*>(up);
    auto* ot = static_cast<T*>(out);
    constexpr int V = kPerVector<T>;
    if (width % V == 0 && row_stride % V == 0 && detail::aligned_16(gate) && detail::aligned_16(up) &&
        detail::aligned_16(out)) {
      detail::launch(gated_activation_vector_kernel<T>, elementwise_blocks(n / V), 256, 0, stream, gt, ut, ot, rows,
                     width, row_stride, gelu_tanh);
    } else {
      detail::launch(gated_activation_kernel<T>, elementwise_blocks(n), 256, 0, stream, gt, ut, ot, rows, width,
                     row_stride, gelu_tanh);
    }
  });
}

void rope(ElementType type, const void* x, const void* cos, const void* sin, void* out, int64_t batch_tokens,
          int64_t heads, int64_t dim, int64_t token_stride, cudaStream_t stream) {
  const int64_t n = batch_tokens * heads * dim;
  if (n == 0) return;
  dispatch(type, "fused rope", [&](auto tag) {
    using T = typename decltype(tag)::type;
    detail::launch(rope_kernel<T>, elementwise_blocks(n), 256, 0, stream, static_cast<const T*>(x),
                   static_cast<const T*>(cos), static_cast<const T*>(sin), static_cast<T*>(out), batch_tokens, heads,
                   dim, token_stride);
  });
}

}  // namespace gpujob::model::kernels
