#include "gpujob/io/dataset.hpp"

#include "gpujob/io/fingerprint.hpp"
#include "gpujob/io/jsonl.hpp"
#include "gpujob/util/error.hpp"

#include <algorithm>
#include <set>

namespace gpujob::io {

namespace {

std::string require_string(const std::string& path, const JsonlRecord& rec, const char* key) {
  const auto it = rec.value.find(key);
  if (it == rec.value.end()) fail_key(path, rec.line, key, "missing (expected a string)");
  if (!it->is_string()) fail_key(path, rec.line, key, std::string("expected a string, found ") + it->type_name());
  return it->get<std::string>();
}

PromptRow parse_multiple_choice(const std::string& path, const JsonlRecord& rec, PromptRow row) {
  const auto& v = rec.value;
  row.kind = PromptKind::kMultipleChoice;
  row.question = require_string(path, rec, "question");
  const auto& choices = v.at("choices");
  if (!choices.is_array() || choices.empty()) fail_key(path, rec.line, "choices", "expected a non-empty array of strings");
  for (const auto& c : choices) {
    if (!c.is_string()) fail_key(path, rec.line, "choices", "expected an array of strings");
    row.choices.push_back(c.get<std::string>());
  }
  if (row.choices.size() > 26) fail_key(path, rec.line, "choices", "expected at most 26 choices, found " + std::to_string(row.choices.size()));
  const auto it = v.find("answer");
  if (it == v.end()) fail_key(path, rec.line, "answer", "missing (expected a choice index or letter)");
  if (it->is_number_integer()) {
    row.answer = it->get<int>();
  } else if (it->is_string()) {
    row.answer = letter_index(it->get<std::string>());
    if (row.answer < 0) fail_key(path, rec.line, "answer", "expected a letter A-Z or an index, found \"" + it->get<std::string>() + "\"");
  } else {
    fail_key(path, rec.line, "answer", std::string("expected a choice index or letter, found ") + it->type_name());
  }
  if (row.answer < 0 || row.answer >= static_cast<int>(row.choices.size())) {
    fail_key(path, rec.line, "answer", "expected an index in [0, " + std::to_string(row.choices.size()) + "), found " + std::to_string(row.answer));
  }
  if (v.contains("subject")) row.subject = require_string(path, rec, "subject");
  return row;
}

PromptRow parse_row(const std::string& path, const JsonlRecord& rec, int64_t index) {
  const auto& v = rec.value;
  if (!v.is_object()) fail_at(path, rec.line, std::string("expected a JSON object, found ") + v.type_name());
  PromptRow row;
  row.row_index = index;
  row.line = rec.line;
  row.id = std::to_string(index);
  if (const auto it = v.find("id"); it != v.end()) {
    if (it->is_number_integer()) {
      row.id = std::to_string(it->get<int64_t>());
    } else if (it->is_string()) {
      row.id = it->get<std::string>();
      row.id_is_integer = false;
      if (row.id.empty()) fail_key(path, rec.line, "id", "expected a non-empty string or an integer");
    } else {
      fail_key(path, rec.line, "id", std::string("expected a string or an integer, found ") + it->type_name());
    }
  }
  // A row's own 0/1 label (data sets whose labels are given; sweep.label: data uses it).
  if (const auto it = v.find("label"); it != v.end()) {
    if (it->is_boolean()) {
      row.label = it->get<bool>() ? 1 : 0;
    } else if (it->is_number_integer() && (it->get<int64_t>() == 0 || it->get<int64_t>() == 1)) {
      row.label = it->get<int>();
    } else {
      fail_key(path, rec.line, "label", "expected 0, 1, true or false");
    }
  }
  if (v.contains("question") || v.contains("choices")) {
    if (!v.contains("choices")) fail_key(path, rec.line, "choices", "missing (a row with \"question\" needs an array of strings)");
    return parse_multiple_choice(path, rec, std::move(row));
  }
  if (v.contains("subject")) row.subject = require_string(path, rec, "subject");
  if (v.contains("text")) {
    row.kind = PromptKind::kText;
    row.text = require_string(path, rec, "text");
  } else if (const auto it = v.find("messages"); it != v.end()) {
    row.kind = PromptKind::kMessages;
    if (!it->is_array() || it->empty()) fail_key(path, rec.line, "messages", "expected a non-empty array of {role, content}");
    for (const auto& m : *it) {
      if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() || !m["content"].is_string()) {
        fail_key(path, rec.line, "messages", "expected an array of {\"role\": string, \"content\": string}");
      }
      row.messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
  } else if (const auto it = v.find("input_ids"); it != v.end()) {
    row.kind = PromptKind::kTokenIds;
    if (!it->is_array() || it->empty()) fail_key(path, rec.line, "input_ids", "expected a non-empty array of integers");
    for (const auto& t : *it) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0) fail_key(path, rec.line, "input_ids", "expected an array of non-negative integers");
      row.input_ids.push_back(t.get<int64_t>());
    }
  } else {
    fail_at(path, rec.line, "expected one of \"question\"+\"choices\", \"text\", \"messages\" or \"input_ids\"");
  }
  return row;
}

}  // namespace

std::string choice_letter(int index) {
  GPUJOB_CHECK(index >= 0 && index < 26, "choice index ", index, " out of range [0, 26)");
  return std::string(1, static_cast<char>('A' + index));
}

int letter_index(const std::string& letter) {
  if (letter.size() != 1) return -1;
  const char c = letter[0];
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a';
  return -1;
}

PromptSet load_prompt_set(const std::string& path) {
  PromptSet set;
  set.path = path;
  set.content_hash = fnv1a64_hex(read_text_file(path));
  const auto records = read_jsonl(path);
  GPUJOB_CHECK(!records.empty(), path, ": no rows");
  std::set<std::string> seen;
  for (size_t i = 0; i < records.size(); ++i) {
    PromptRow row = parse_row(path, records[i], static_cast<int64_t>(i));
    if (!seen.insert(row.id).second) fail_key(path, row.line, "id", "duplicate id \"" + row.id + "\"");
    set.rows.push_back(std::move(row));
  }
  return set;
}

std::vector<PromptRow> select_rows(const PromptSet& set, const DataSelection& selection) {
  std::vector<const PromptRow*> kept;
  const std::set<std::string> wanted(selection.subjects.begin(), selection.subjects.end());
  for (const auto& row : set.rows) {
    if (wanted.empty() || wanted.count(row.subject)) kept.push_back(&row);
  }
  if (!wanted.empty()) {
    std::set<std::string> present;
    for (const auto& row : set.rows) present.insert(row.subject);
    for (const auto& s : wanted) GPUJOB_CHECK(present.count(s), set.path, ": subject \"", s, "\" selected but no row has it");
  }
  std::vector<PromptRow> out;
  const int64_t n = static_cast<int64_t>(kept.size());
  const int64_t take = selection.limit < 0 ? n : std::min(selection.limit, n);
  if (selection.shuffle) {
    const auto order = shuffled_indices(n, selection.seed);
    for (int64_t i = 0; i < take; ++i) out.push_back(*kept[order[i]]);
  } else {
    for (int64_t i = 0; i < take; ++i) out.push_back(*kept[i]);
  }
  return out;
}

nlohmann::json describe_selection(const PromptSet& set, const DataSelection& selection) {
  const auto rows = select_rows(set, selection);
  std::string ids;
  for (const auto& r : rows) ids += r.id + "\n";
  const auto slash = set.path.find_last_of('/');
  // The file name and content hash, not the path: moving the data must not invalidate caches.
  return nlohmann::json{{"data_file", slash == std::string::npos ? set.path : set.path.substr(slash + 1)},
                        {"data_hash", set.content_hash},
                        {"subjects", selection.subjects},
                        {"shuffle", selection.shuffle},
                        {"seed", selection.seed},
                        {"limit", selection.limit},
                        {"selected", rows.size()},
                        {"selected_ids_hash", fnv1a64_hex(ids)}};
}

}  // namespace gpujob::io
