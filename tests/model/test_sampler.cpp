// Sampler: filters against a loop-based reference of HF's warpers, draw frequencies against softmax,
// and random streams that do not depend on batch composition.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "gpujob/model/device.hpp"
#include "gpujob/model/sampler.hpp"
#include "gpujob/util/error.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::model;

namespace {

const double kNegInf = -std::numeric_limits<double>::infinity();

std::vector<double> softmax_ref(const std::vector<double>& x) {
  double m = *std::max_element(x.begin(), x.end());
  std::vector<double> p(x.size());
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += (p[i] = std::exp(x[i] - m));
  for (double& v : p) v /= s;
  return p;
}

// The reference chain, one row, in float64 with plain loops: temperature, top-k, top-p, min-p.
std::vector<double> filters_ref(std::vector<double> x, const SamplingParams& p) {
  const size_t n = x.size();
  if (p.temperature != 1.0)
    for (double& v : x) v /= p.temperature;
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) {
    std::vector<double> s = x;
    std::sort(s.rbegin(), s.rend());
    double kth = s[p.top_k - 1];
    for (double& v : x)
      if (v < kth) v = kNegInf;
  }
  if (p.top_p < 1.0) {
    std::vector<double> prob = softmax_ref(x);
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
    double tail = 0;
    for (size_t r = 0; r + 1 < n; ++r) {  // the largest token is never removed
      tail += prob[order[r]];
      if (tail <= 1.0 - p.top_p) x[order[r]] = kNegInf;
    }
  }
  if (p.min_p > 0.0) {
    std::vector<double> prob = softmax_ref(x);
    double top = *std::max_element(prob.begin(), prob.end());
    for (size_t i = 0; i < n; ++i)
      if (prob[i] < p.min_p * top) x[i] = kNegInf;
  }
  return x;
}

at::Tensor row_tensor(const std::vector<std::vector<double>>& rows) {
  at::Tensor t = at::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())},
                           at::kFloat);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t c = 0; c < rows[r].size(); ++c) t[r][c] = rows[r][c];
  return t;
}

// Which tokens survive, as a 0/1 pattern, from the library and from the reference.
void check_mask(const std::vector<double>& logits, const SamplingParams& p) {
  at::Tensor got = apply_sampling_filters(row_tensor({logits}), p)[0];
  std::vector<double> want = filters_ref(logits, p);
  for (size_t i = 0; i < logits.size(); ++i) {
    INFO("token " << i << " temperature " << p.temperature << " top_k " << p.top_k << " top_p "
                  << p.top_p << " min_p " << p.min_p);
    float g = got[i].item<float>();
    CHECK(std::isinf(g) == std::isinf(want[i]));
    if (!std::isinf(want[i])) CHECK(g == Approx(want[i]).epsilon(1e-6));
  }
}

const std::vector<double> kLogits = {1.0, 3.0, -0.5, 2.0, 2.0, 0.25, -2.0, 2.9};

}  // namespace

TEST_CASE("top-k keeps the k largest logits and their ties", "[sampler]") {
  for (int64_t k : {1, 2, 3, 4, 5, 8, 20}) {
    SamplingParams p{1.0, k, 1.0, 0.0, 0};
    check_mask(kLogits, p);
  }
  // The third largest logit, 2.0, is tied: k = 3 keeps both copies.
  at::Tensor got = apply_sampling_filters(row_tensor({kLogits}), SamplingParams{1.0, 3, 1.0, 0.0, 0});
  CHECK(at::isfinite(got).sum().item<int64_t>() == 4);
}

TEST_CASE("top-p keeps the smallest top set reaching the mass", "[sampler]") {
  for (double top_p : {0.05, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0}) {
    check_mask(kLogits, SamplingParams{1.0, 0, top_p, 0.0, 0});
    check_mask(kLogits, SamplingParams{0.5, 0, top_p, 0.0, 0});
  }
  // A tiny top_p leaves only the largest token.
  at::Tensor got = apply_sampling_filters(row_tensor({kLogits}), SamplingParams{1.0, 0, 1e-6, 0.0, 0});
  CHECK(at::isfinite(got).sum().item<int64_t>() == 1);
  CHECK(std::isfinite(got[0][1].item<float>()));
}

TEST_CASE("min-p drops tokens below min_p times the top probability", "[sampler]") {
  for (double min_p : {0.01, 0.1, 0.3, 0.5, 0.9, 1.0}) {
    check_mask(kLogits, SamplingParams{1.0, 0, 1.0, min_p, 0});
    check_mask(kLogits, SamplingParams{2.0, 0, 1.0, min_p, 0});
  }
}

TEST_CASE("filters compose in HF order: temperature, top-k, top-p, min-p", "[sampler]") {
  for (double t : {0.3, 1.0, 1.7})
    for (int64_t k : {0, 3, 6})
      for (double top_p : {0.6, 0.95, 1.0})
        for (double min_p : {0.0, 0.2}) check_mask(kLogits, SamplingParams{t, k, top_p, min_p, 0});
  // Order matters: top-p after top-k measures mass within the k survivors. With k = 2 (3.0, 2.9) the
  // top token holds 52.5% of the pair, so top_p = 0.5 keeps it alone; top-p first, over the full row
  // (top token 34.8%), would keep both.
  SamplingParams p{1.0, 2, 0.5, 0.0, 0};
  at::Tensor got = apply_sampling_filters(row_tensor({kLogits}), p);
  CHECK(at::isfinite(got).sum().item<int64_t>() == 1);
  check_mask(kLogits, p);
}

TEST_CASE("greedy takes the first argmax of the raw logits", "[sampler]") {
  Sampler greedy(SamplingParams{});
  at::Tensor logits = row_tensor({{0.0, 5.0, 5.0, 1.0}, {9.0, -1.0, 2.0, 9.0}, {-3, -2, -1, -4}});
  at::Tensor tokens = greedy.sample(logits, {1, 2, 3}, {0, 0, 0});
  CHECK(tokens.scalar_type() == at::kLong);
  CHECK(tokens[0].item<int64_t>() == 1);
  CHECK(tokens[1].item<int64_t>() == 0);
  CHECK(tokens[2].item<int64_t>() == 2);
}

TEST_CASE("temperature sampling follows softmax(logits / T)", "[sampler]") {
  // 200k draws: a frequency's standard deviation is at most sqrt(0.25 / 2e5) = 0.0011; the tolerance
  // 0.006 is more than 5 of them.
  const int64_t draws = 200000, rows = 1000;
  const std::vector<double> logits = {0.5, 1.5, -1.0, 1.0, 0.0, 2.0};
  for (const SamplingParams& p :
       {SamplingParams{0.7, 0, 1.0, 0.0, 42}, SamplingParams{1.3, 4, 0.9, 0.0, 7},
        SamplingParams{1.0, 0, 1.0, 0.15, 3}}) {
    Sampler sampler(p);
    at::Tensor batch = row_tensor(std::vector<std::vector<double>>(rows, logits));
    std::vector<int64_t> counts(logits.size(), 0);
    for (int64_t step = 0; step < draws / rows; ++step) {
      std::vector<uint64_t> keys(rows);
      std::iota(keys.begin(), keys.end(), 0);
      at::Tensor tokens = sampler.sample(batch, keys, std::vector<int64_t>(rows, step));
      auto acc = tokens.accessor<int64_t, 1>();
      for (int64_t i = 0; i < rows; ++i) ++counts.at(acc[i]);
    }
    std::vector<double> want = softmax_ref(filters_ref(logits, p));
    for (size_t i = 0; i < logits.size(); ++i) {
      INFO("token " << i << " temperature " << p.temperature << " top_k " << p.top_k);
      CHECK(std::abs(static_cast<double>(counts[i]) / draws - want[i]) < 0.006);
      if (want[i] == 0.0) CHECK(counts[i] == 0);
    }
  }
}

TEST_CASE("draws never land on zero-probability tokens, even at the ends of [0, 1)", "[sampler]") {
  at::Tensor filtered = row_tensor({{kNegInf, 1.0, kNegInf, 0.5, kNegInf}, {2.0, kNegInf, kNegInf, kNegInf, kNegInf}});
  for (double u : {0.0, 0.5, 1.0 - 0x1.0p-53}) {
    at::Tensor uniforms = at::full({2}, u, at::kDouble);
    at::Tensor tokens = draw_from_filtered(filtered, uniforms);
    int64_t t0 = tokens[0].item<int64_t>();
    CHECK((t0 == 1 || t0 == 3));
    CHECK(tokens[1].item<int64_t>() == 0);
  }
  CHECK(draw_from_filtered(filtered, at::full({2}, 0.0, at::kDouble))[0].item<int64_t>() == 1);
  CHECK(draw_from_filtered(filtered, at::full({2}, 0.99, at::kDouble))[0].item<int64_t>() == 3);
}

TEST_CASE("a row's draw depends only on seed, stream key and step", "[sampler]") {
  Sampler sampler(SamplingParams{1.0, 0, 1.0, 0.0, 1234});
  const int64_t n = 7, vocab = 50;
  at::Tensor logits = at::randn({n, vocab}, at::TensorOptions().dtype(at::kFloat)) * 0.1;
  std::vector<uint64_t> keys = {stream_key_for_id("q1"), stream_key_for_id("q2"), 17, 99, 5, 6, 7};
  std::vector<int64_t> steps = {0, 3, 1, 1, 8, 2, 0};
  at::Tensor together = sampler.sample(logits, keys, steps);
  // Alone, and in reversed order, every row draws the same token.
  for (int64_t i = 0; i < n; ++i) {
    at::Tensor alone = sampler.sample(logits.narrow(0, i, 1), {keys[i]}, {steps[i]});
    CHECK(alone[0].item<int64_t>() == together[i].item<int64_t>());
  }
  at::Tensor reversed_logits = logits.flip({0});
  std::vector<uint64_t> rkeys(keys.rbegin(), keys.rend());
  std::vector<int64_t> rsteps(steps.rbegin(), steps.rend());
  at::Tensor reversed = sampler.sample(reversed_logits, rkeys, rsteps);
  CHECK(at::equal(reversed.flip({0}), together));
  // A different seed gives a different stream (over 7 rows of a near-uniform 50-way draw, equality
  // of all rows has probability ~ 50^-7).
  Sampler other(SamplingParams{1.0, 0, 1.0, 0.0, 1235});
  CHECK_FALSE(at::equal(other.sample(logits, keys, steps), together));
}

TEST_CASE("uniform draws and stream keys", "[sampler]") {
  // FNV-1a 64 published test vectors.
  CHECK(stream_key_for_id("") == 0xCBF29CE484222325ull);
  CHECK(stream_key_for_id("a") == 0xAF63DC4C8601EC8Cull);
  CHECK(stream_key_for_id("foobar") == 0x85944171F73967E8ull);
  double sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    double u = uniform_draw(1, 2, static_cast<uint64_t>(i));
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
  }
  CHECK(std::abs(sum / n - 0.5) < 0.005);  // mean of U(0,1): sd 0.29/sqrt(1e5) = 0.0009
  CHECK(uniform_draw(1, 2, 3) == uniform_draw(1, 2, 3));
  CHECK(uniform_draw(1, 2, 3) != uniform_draw(1, 3, 2));
  CHECK(uniform_draw(1, 2, 3) != uniform_draw(2, 2, 3));
}

TEST_CASE("out-of-range settings are one-line errors naming the key", "[sampler]") {
  CHECK_THROWS_WITH(Sampler(SamplingParams{1.0, 0, 0.0, 0.0, 0}), Catch::Contains("generation.top_p"));
  CHECK_THROWS_WITH(Sampler(SamplingParams{1.0, 0, 1.0, 1.5, 0}), Catch::Contains("generation.min_p"));
  CHECK_THROWS_WITH(Sampler(SamplingParams{1.0, -1, 1.0, 0.0, 0}), Catch::Contains("generation.top_k"));
  CHECK_THROWS_AS(Sampler(SamplingParams{NAN, 0, 1.0, 0.0, 0}), gpujob::Error);
}

TEST_CASE("on a GPU, sampling draws the tokens the CPU draws from the same logits", "[sampler]") {
  if (visible_gpu_count() == 0) {
    WARN("no GPU visible: sampling on the GPU is not run");
    return;
  }
  at::manual_seed(5);
  const at::Tensor logits = at::randn({64, 1000}) * 3;
  std::vector<uint64_t> keys;
  std::vector<int64_t> steps;
  for (int64_t i = 0; i < 64; ++i) {
    keys.push_back(static_cast<uint64_t>(1000 + i));
    steps.push_back(i % 7);
  }
  SamplingParams params;
  params.temperature = 0.8;
  params.top_k = 50;
  params.top_p = 0.9;
  params.seed = 3;
  const Sampler sampler(params);
  const at::Tensor cpu = sampler.sample(logits, keys, steps);
  const at::Tensor gpu = sampler.sample(logits.to(at::kCUDA), keys, steps);
  REQUIRE(gpu.is_cuda());
  CHECK(at::equal(gpu.cpu(), cpu));
}
