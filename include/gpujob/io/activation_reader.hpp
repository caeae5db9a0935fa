// Reading an activation file back (serial): activation matrices, labels, ids, and the per-sample
// strings that the serial phase adds (write_sample_strings).
#pragma once

#include "gpujob/io/activation_file.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gpujob::io {

// Per-sample strings added after the parallel phase, all [N] in data order.
struct SampleStrings {
  std::vector<std::string> prompt;          // the prompt as the model saw it
  std::vector<std::string> completion;
  std::vector<std::string> subject;
  std::vector<std::string> predicted;       // parsed letter or ""
  std::vector<std::string> correct_answer;  // letter or ""
  std::vector<int64_t> label;               // 1 correct, 0 wrong, -1 no answer
};

// Serial (one process, after the parallel file is closed): writes /samples/{prompt, completion,
// subject, predicted, correct_answer} as variable-length UTF-8 strings and /samples/label as
// int64, replacing earlier copies (so a rerun may call it again). Each vector must be empty
// (skipped) or have N entries.
void write_sample_strings(const std::string& path, const SampleStrings& strings);

// A dense row-major matrix.
struct ActivationMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> values;  // rows * cols
};

// What a file holds, for the sweep to find its cells.
struct ActivationFileInfo {
  int64_t num_samples = 0;
  int64_t hidden_size = 0;
  bool complete = false;
  std::string fingerprint;
  std::vector<ActivationDatasetName> datasets;  // sorted by layer, then position
  std::map<std::string, std::string> string_attributes;  // every string root attribute
};

ActivationFileInfo inspect_activation_file(const std::string& path);
// /activations/layer_{layer}/{position} as float32 (float16 files are converted).
ActivationMatrix read_activations(const std::string& path, int layer, const std::string& position);
// A 1-D int64 dataset such as "/samples/label" or "/samples/num_tokens".
std::vector<int64_t> read_int64_dataset(const std::string& path, const std::string& name);
// /samples/id as strings (int64 ids in decimal).
std::vector<std::string> read_sample_ids(const std::string& path);
// A 1-D string dataset such as "/samples/completion".
std::vector<std::string> read_strings(const std::string& path, const std::string& name);

}  // namespace gpujob::io
