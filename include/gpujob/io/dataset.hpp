// Prompt sets from JSONL (multiple-choice rows as MMLU publishes them, or free text/chat/token rows)
// and their deterministic, describable selection (subject filter, seeded shuffle, first N).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace gpujob::io {

// One chat turn; the text layer turns a list of these into the model's chat format.
struct ChatMessage {
  std::string role;     // "system", "user" or "assistant"
  std::string content;
};

enum class PromptKind {
  kMultipleChoice,  // question + choices + answer (+ subject)
  kText,            // "text": a raw string
  kMessages,        // "messages": [{role, content}, ...]
  kTokenIds,        // "input_ids": [int, ...], already tokenized
};

struct PromptRow {
  std::string id;            // the row's "id" (integers in decimal), else its 0-based row index
  bool id_is_integer = true; // true when the id is an integer (given, or the row index)
  int64_t row_index = 0;     // 0-based position among the file's rows
  int64_t line = 0;          // 1-based line in the file, for error messages
  PromptKind kind = PromptKind::kText;
  // kMultipleChoice
  std::string question;
  std::vector<std::string> choices;  // rendered as A., B., ...
  int answer = -1;                   // index into choices ("answer" as int or letter in the file)
  std::string subject;               // "" when the row has none
  int label = -1;                    // the row's own "label" (0/1, or a boolean); -1 when absent
  // Free rows
  std::string text;
  std::vector<ChatMessage> messages;
  std::vector<int64_t> input_ids;
};

struct PromptSet {
  std::string path;
  std::string content_hash;  // fnv1a64 of the file's bytes: edits to the data change cache keys
  std::vector<PromptRow> rows;
};

// Loads and checks every row; errors are one line "path:line: key "k": expected ...".
// Ids must be unique.
PromptSet load_prompt_set(const std::string& path);

// Which rows a run uses. Order of operations: keep rows whose subject is listed (all rows when
// `subjects` is empty), then shuffle with `seed` (Fisher-Yates over splitmix64) when `shuffle`,
// then keep the first `limit` (all when limit < 0).
struct DataSelection {
  std::vector<std::string> subjects;  // empty: every subject
  bool shuffle = true;
  uint64_t seed = 42;
  int64_t limit = -1;                 // rows to keep; < 0: all
};

std::vector<PromptRow> select_rows(const PromptSet& set, const DataSelection& selection);

// A JSON description of the selection for cache keys and file attributes: the data file, its
// content hash, the selection settings, the count and a hash of the selected ids in order.
nlohmann::json describe_selection(const PromptSet& set, const DataSelection& selection);

// "A" for 0, "B" for 1, ...; index must be in [0, 26).
std::string choice_letter(int index);
// Index of a letter "A".."Z" (case-insensitive), or -1.
int letter_index(const std::string& letter);

}  // namespace gpujob::io
