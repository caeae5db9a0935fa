// The built-in demo model: a tiny random Qwen3-style checkpoint with a byte-level BPE tokenizer,
// written by gpujob itself so the CPU demo and tests need no download.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace gpujob::jobs {

struct DemoModelOptions {
  std::string directory;       // created if missing; existing files are replaced
  uint64_t seed = 1234;        // weights and nothing else depend on it
  int64_t merges = 400;        // BPE merges learned from the corpus
  std::string corpus_path;     // extra training text for the merges (optional)
};

// Writes config.json, generation_config.json, model.safetensors, tokenizer.json and
// tokenizer_config.json (ChatML template, <|im_end|> as EOS) into options.directory.
void write_demo_model(const DemoModelOptions& options);

// `gpujob make-demo-model DIR [--seed S] [--corpus FILE]`.
void add_make_demo_model_command(CLI::App& app);

}  // namespace gpujob::jobs
