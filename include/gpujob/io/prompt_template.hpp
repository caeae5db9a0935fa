// Prompt templates (configs/prompts/*.yaml): a multiple-choice row rendered into chat messages.
#pragma once

#include "gpujob/io/dataset.hpp"

#include <string>
#include <vector>

namespace gpujob::io {

// A template file:
//   name: benign                 # used in cache paths and file attributes
//   system: ...                  # optional system message
//   user: |                      # the user message
//     ... {question} ... {choices} ...
// Placeholders: {question}; {choices} (one "A. text" line per choice); {letters} ("A, B, C or D");
// {subject} (underscores become spaces); {subject_suffix} (" about <subject>", or "" without one).
// "{{" and "}}" are literal braces (so `\box{{A}}` renders as `\box{A}`).
struct PromptTemplate {
  std::string name;
  std::string system;  // "" when absent
  std::string user;
  std::string source;  // the file's text, for cache keys
  std::string path;
};

// Loads and validates (unknown placeholders, unbalanced braces): one-line errors naming the file.
PromptTemplate load_prompt_template(const std::string& path);

// Parses a template from text; `origin` names it in errors.
PromptTemplate parse_prompt_template(const std::string& text, const std::string& origin);

// Chat messages for a row: a multiple-choice row goes through the template; a "text" row becomes
// one user message; a "messages" row is returned as is. An "input_ids" row has no messages
// (it is already tokenized) and is an error naming the row.
std::vector<ChatMessage> render_prompt(const PromptTemplate& prompt_template, const PromptRow& row);

// "A. first\nB. second\n..." as {choices} renders it.
std::string format_choices(const std::vector<std::string>& choices);

}  // namespace gpujob::io
