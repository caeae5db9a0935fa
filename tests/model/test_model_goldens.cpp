// HF transformers goldens (tests/data/models/<case>/): hidden states of every layer, logits and
// greedy tokens, float32 on CPU. Cases come from tests/golden/make_model_goldens.py.
#include "gpujob/model/decoder.hpp"
#include "gpujob/model/safetensors.hpp"
#include "gpujob/util/error.hpp"
#include "model/tiny_model.hpp"

#include <nlohmann/json.hpp>

#include <dirent.h>

#include <algorithm>
#include <fstream>

// Last: libtorch's logging header defines its own CHECK, which Catch's must replace.
#include "catch.hpp"

using namespace gpujob::model;

namespace {

std::vector<std::string> golden_cases() {
  const char* root_env = std::getenv("GPUJOB_SOURCE_DIR");
  const std::string root = std::string(root_env ? root_env : ".") + "/tests/data/models";
  std::vector<std::string> out;
  if (DIR* dir = ::opendir(root.c_str())) {
    while (dirent* e = ::readdir(dir)) {
      const std::string path = root + "/" + e->d_name;
      if (e->d_name[0] != '.' && std::ifstream(path + "/golden.json").good()) out.push_back(path);
    }
    ::closedir(dir);
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Golden {
  nlohmann::json info;
  std::vector<std::vector<int64_t>> inputs;
  std::vector<at::Tensor> hidden, logits, greedy;
};

Golden read_golden(const std::string& dir) {
  Golden g;
  std::ifstream(dir + "/golden.json") >> g.info;
  SafetensorsArchive data({dir + "/golden.safetensors"});
  const int64_t n = g.info.at("num_sequences").get<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const std::string k = std::to_string(i);
    at::Tensor ids = data.load("input_ids." + k, at::kLong, at::kCPU);
    g.inputs.emplace_back(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
    g.hidden.push_back(data.load("hidden_states." + k, at::kFloat, at::kCPU));
    g.logits.push_back(data.load("logits." + k, at::kFloat, at::kCPU));
    g.greedy.push_back(data.load("greedy." + k, at::kLong, at::kCPU));
  }
  return g;
}

}  // namespace

TEST_CASE("goldens: every layer and the logits within 1e-4 of HF, batched and alone") {
  const auto cases = golden_cases();
  if (cases.empty()) {
    WARN("no tests/data/models/*/golden.json: run tests/golden/make_model_goldens.py");
    return;
  }
  for (const auto& dir : cases) {
    INFO("case " << dir);
    const Golden g = read_golden(dir);
    auto decoder = Decoder::load(dir, {});
    decoder->set_attention_backend(AttentionBackend::kFallback);
    const auto& c = decoder->config();
    CHECK(c.architecture == g.info.at("architecture").get<std::string>());
    CHECK(c.num_layers == g.info.at("num_hidden_layers").get<int64_t>());
    ForwardRequest request;
    for (int64_t i = 0; i <= c.num_layers; ++i) request.hidden_indices.push_back(i);
    request.logits = true;
    const auto batched = decoder->forward(TokenBatch::from_sequences(g.inputs), request);
    for (size_t s = 0; s < g.inputs.size(); ++s) {
      const int64_t T = static_cast<int64_t>(g.inputs[s].size());
      const auto alone = decoder->forward(TokenBatch::from_sequences({g.inputs[s]}), request);
      REQUIRE(g.hidden[s].size(0) == c.num_layers + 1);
      for (int64_t i = 0; i <= c.num_layers; ++i) {
        INFO("sequence " << s << " hidden_states[" << i << "]");
        CHECK(tiny::relative_error(batched.hidden[i][s].narrow(0, 0, T), g.hidden[s][i]) < 1e-4);
        CHECK(tiny::relative_error(alone.hidden[i][0], g.hidden[s][i]) < 1e-4);
      }
      INFO("sequence " << s << " logits");
      CHECK(tiny::relative_error(batched.logits[s].narrow(0, 0, T), g.logits[s]) < 1e-4);
      CHECK(tiny::relative_error(alone.logits[0][T - 1], g.logits[s][T - 1]) < 1e-4);
    }
  }
}

TEST_CASE("goldens: greedy tokens through the KV cache equal HF generate") {
  const auto cases = golden_cases();
  if (cases.empty()) {
    WARN("no tests/data/models/*/golden.json: run tests/golden/make_model_goldens.py");
    return;
  }
  for (const auto& dir : cases) {
    INFO("case " << dir);
    const Golden g = read_golden(dir);
    auto decoder = Decoder::load(dir, {});
    const auto eos = g.info.at("eos_token_ids").get<std::vector<int64_t>>();
    const int64_t max_new = g.info.at("max_new_tokens").get<int64_t>();
    const int64_t B = static_cast<int64_t>(g.inputs.size());
    KvCache cache = decoder->make_kv_cache(B, 64);
    // All prompts in one batch, decoded together; a finished slot simply stops being fed.
    std::vector<int64_t> slots;
    for (int64_t b = 0; b < B; ++b) slots.push_back(b);
    std::vector<std::vector<int64_t>> generated(B);
    std::vector<bool> done(B, false);
    at::Tensor logits = decoder->forward_cached(cache, slots, g.inputs);
    for (int64_t step = 0; step < max_new; ++step) {
      std::vector<int64_t> next_slots;
      std::vector<std::vector<int64_t>> next_tokens;
      for (size_t k = 0; k < slots.size(); ++k) {
        const int64_t b = slots[k];
        const int64_t token = logits[k].argmax().item<int64_t>();
        generated[b].push_back(token);
        if (std::find(eos.begin(), eos.end(), token) != eos.end()) done[b] = true;
        if (!done[b] && step + 1 < max_new) {
          next_slots.push_back(b);
          next_tokens.push_back({token});
        }
      }
      if (next_slots.empty()) break;
      slots = next_slots;
      logits = decoder->forward_cached(cache, slots, next_tokens);
    }
    for (int64_t b = 0; b < B; ++b) {
      INFO("sequence " << b);
      const at::Tensor& expected = g.greedy[b];
      CHECK(generated[b] == std::vector<int64_t>(expected.data_ptr<int64_t>(),
                                                 expected.data_ptr<int64_t>() + expected.numel()));
    }
  }
}

TEST_CASE("goldens: bfloat16 (on GPUJOB_TEST_DEVICE, default cpu) within bf16 tolerance of HF float32") {
  const auto cases = golden_cases();
  if (cases.empty()) {
    WARN("no tests/data/models/*/golden.json: run tests/golden/make_model_goldens.py");
    return;
  }
  const char* device_env = std::getenv("GPUJOB_TEST_DEVICE");
  const at::Device device(device_env ? device_env : "cpu");
  // GPUJOB_TEST_FUSED=1: stacked projections and, on a GPU, the fused kernels (model.fused_kernels).
  const char* fused_env = std::getenv("GPUJOB_TEST_FUSED");
  const bool fused = fused_env != nullptr && std::string(fused_env) == "1";
  // bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 per operation); after a few blocks
  // of matmuls and norms the error relative to each tensor's largest entry stays well under 5%.
  constexpr double kBf16Tolerance = 5e-2;
  for (const auto& dir : cases) {
    INFO("case " << dir << " on " << device << (fused ? " with fused work" : ""));
    const Golden g = read_golden(dir);
    LoadOptions options;
    options.dtype = at::kBFloat16;
    options.device = device;
    auto decoder = Decoder::load(dir, options);
    decoder->set_fused_ops(fused);
    const auto& c = decoder->config();
    ForwardRequest request;
    for (int64_t i = 0; i <= c.num_layers; ++i) request.hidden_indices.push_back(i);
    request.logits = true;
    double worst = 0;
    const auto out = decoder->forward(TokenBatch::from_sequences(g.inputs), request);
    for (size_t s = 0; s < g.inputs.size(); ++s) {
      const int64_t T = static_cast<int64_t>(g.inputs[s].size());
      for (int64_t i = 0; i <= c.num_layers; ++i) {
        const double e = tiny::relative_error(out.hidden[i][s].narrow(0, 0, T).cpu(), g.hidden[s][i]);
        INFO("sequence " << s << " hidden_states[" << i << "] error " << e);
        CHECK(e < kBf16Tolerance);
        worst = std::max(worst, e);
      }
      const double e = tiny::relative_error(out.logits[s].narrow(0, 0, T).cpu(), g.logits[s]);
      INFO("sequence " << s << " logits error " << e);
      CHECK(e < kBf16Tolerance);
      worst = std::max(worst, e);
    }
    std::printf("bf16 on %s%s, %s: largest relative error %.4f\n", device.str().c_str(), fused ? " (fused)" : "",
                g.info.at("case").get<std::string>().c_str(), worst);
  }
}
