// Samples: the selected data rows turned into token sequences (prompt template, chat template,
// tokenizer), identically on every rank, so chunks can be named by sample index alone.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gpujob/config/run_config.hpp"
#include "gpujob/io/dataset.hpp"
#include "gpujob/io/prompt_template.hpp"
#include "gpujob/text/tokenizer.hpp"

namespace gpujob::jobs {

struct Sample {
  std::string id;                  // the data row's id
  int64_t row_index = 0;           // position in the data file
  std::string prompt;              // text the model sees (after templates); "" for input_ids rows
  std::vector<int64_t> prompt_ids; // tokens the model sees
  std::string subject;             // "" when the row has none
  int correct_index = -1;          // multiple-choice answer, -1 for free rows
  int num_choices = 0;             // multiple-choice rows only
  int data_label = -1;             // the row's own 0/1 `label`, -1 when absent
};

struct PreparedData {
  io::PromptSet prompt_set;
  io::DataSelection selection;
  io::PromptTemplate prompt_template;  // empty name when data.template is not set
  std::vector<Sample> samples;         // in selection order
};

// Loads, selects and renders config.data for a model with `tokenizer` (may be null when every
// row is `input_ids`). Errors name the data file and line.
PreparedData prepare_samples(const config::RunConfig& config, const text::Tokenizer* tokenizer);

// The model's tokenizer, or null when its folder has no tokenizer files.
std::unique_ptr<text::Tokenizer> load_model_tokenizer(const std::string& model_dir);

}  // namespace gpujob::jobs
