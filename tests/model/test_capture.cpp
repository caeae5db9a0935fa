// forward_capture: pooled positions equal the corresponding rows of the full hidden states.
#include "gpujob/model/capture.hpp"
#include "gpujob/util/error.hpp"
#include "model/tiny_model.hpp"

// Last: libtorch's logging header defines its own CHECK, which Catch's must replace.
#include "catch.hpp"

using namespace gpujob::model;

TEST_CASE("capture pools last, first, middle, mean and all tokens of several layers in one pass") {
  const auto json = tiny::config_for("qwen3");
  const ModelConfig config = parse_model_config(json, "config.json");
  auto decoder = Decoder::load(tiny::write_checkpoint(json, tiny::random_weights(config, 5)), {});
  const std::vector<std::vector<int64_t>> seqs = {{1, 4, 9, 16, 25, 2}, {1, 7}, {3, 1, 1, 5, 8}};
  CaptureRequest request;
  request.layers = {2, 0};  // 2 is the last layer: after the final norm, as HF reports it
  request.positions = {Pooling::kLast, Pooling::kFirst, Pooling::kMiddle, Pooling::kMean, Pooling::kAll};
  request.special_token_ids = {1, 2};
  const CaptureResult result = forward_capture(*decoder, seqs, request);
  CHECK(result.num_tokens == std::vector<int64_t>{6, 2, 5});
  CHECK(result.token_offset == std::vector<int64_t>{0, 6, 8});
  REQUIRE(result.activations.size() == 2);

  for (size_t li = 0; li < request.layers.size(); ++li) {
    const auto& pooled = result.activations[li];
    REQUIRE(pooled.size() == 5);
    CHECK(pooled[0].sizes() == at::IntArrayRef({3, 32}));
    CHECK(pooled[4].sizes() == at::IntArrayRef({13, 32}));
    for (size_t s = 0; s < seqs.size(); ++s) {
      INFO("layer " << request.layers[li] << " sequence " << s);
      // Each sequence alone, full depth: the reference rows.
      auto full = decoder->forward(TokenBatch::from_sequences({seqs[s]}), {{request.layers[li] + 1}, false});
      at::Tensor h = full.hidden[0][0];
      const int64_t n = static_cast<int64_t>(seqs[s].size());
      CHECK(at::allclose(pooled[0][s], h[n - 1], 1e-5, 1e-6));
      CHECK(at::allclose(pooled[1][s], h[0], 1e-5, 1e-6));
      CHECK(at::allclose(pooled[2][s], h[(n - 1) / 2], 1e-5, 1e-6));
      std::vector<at::Tensor> kept;
      for (int64_t i = 0; i < n; ++i)
        if (seqs[s][i] != 1 && seqs[s][i] != 2) kept.push_back(h[i]);
      CHECK(at::allclose(pooled[3][s], at::stack(kept).mean(0), 1e-5, 1e-6));
      CHECK(at::allclose(pooled[4].narrow(0, result.token_offset[s], n), h, 1e-5, 1e-6));
    }
  }
}

TEST_CASE("capture of one row per sequence (queries of the deepest block at those rows only) equals the full pass") {
  for (const std::string kind : {"qwen3", "gemma3"}) {
    INFO("model " << kind);
    const auto json = tiny::config_for(kind);
    const ModelConfig config = parse_model_config(json, "config.json");
    auto decoder = Decoder::load(tiny::write_checkpoint(json, tiny::random_weights(config, 8)), {});
    const std::vector<std::vector<int64_t>> seqs = {{1, 4, 9, 16, 25, 2, 7, 30}, {1, 7}, {3, 1, 1, 5, 8}};
    CaptureRequest request;
    request.layers = {1, 0};
    request.positions = {Pooling::kMiddle, Pooling::kLast, Pooling::kFirst};
    const CaptureResult result = forward_capture(*decoder, seqs, request);
    const auto full = decoder->forward(TokenBatch::from_sequences(seqs), {{1, 2}, false});
    for (size_t li = 0; li < 2; ++li) {
      const at::Tensor& h = full.hidden[li == 0 ? 1 : 0];
      for (size_t s = 0; s < seqs.size(); ++s) {
        INFO("layer " << request.layers[li] << " sequence " << s);
        const int64_t n = static_cast<int64_t>(seqs[s].size());
        CHECK(at::allclose(result.activations[li][0][s], h[s][(n - 1) / 2], 1e-5, 1e-6));
        CHECK(at::allclose(result.activations[li][1][s], h[s][n - 1], 1e-5, 1e-6));
        CHECK(at::allclose(result.activations[li][2][s], h[s][0], 1e-5, 1e-6));
      }
    }
  }
}

TEST_CASE("capture: float16 output, all-special sequences, bad requests") {
  const auto json = tiny::config_for("llama3");
  const ModelConfig config = parse_model_config(json, "config.json");
  auto decoder = Decoder::load(tiny::write_checkpoint(json, tiny::random_weights(config, 6)), {});
  CaptureRequest request;
  request.layers = {1};
  request.positions = {Pooling::kMean, Pooling::kAll};
  request.special_token_ids = {1};
  request.out_dtype = at::kHalf;
  const auto result = forward_capture(*decoder, {{1, 1}}, request);
  CHECK(result.activations[0][0].scalar_type() == at::kHalf);
  // Only special tokens: the mean falls back to every token.
  CHECK(at::allclose(result.activations[0][0][0].to(at::kFloat),
                     result.activations[0][1].to(at::kFloat).mean(0), 1e-3, 1e-3));
  request.layers = {3};
  CHECK_THROWS_WITH(forward_capture(*decoder, {{1}}, request),
                    Catch::EndsWith("config.json: layer 3 does not exist (the model has layers 0..2)"));
  CHECK(parse_pooling("middle") == Pooling::kMiddle);
  CHECK(std::string(pooling_name(Pooling::kAll)) == "all");
  CHECK_THROWS_WITH(parse_pooling("centre"), "position \"centre\" is not one of last, first, middle, mean, all");
}
