#include "gpujob/io/prompt_template.hpp"

#include "gpujob/io/jsonl.hpp"
#include "gpujob/util/error.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <functional>

namespace gpujob::io {

namespace {

const char* const kPlaceholders[] = {"question", "choices", "letters", "subject", "subject_suffix"};

bool is_placeholder(const std::string& name) {
  return std::find(std::begin(kPlaceholders), std::end(kPlaceholders), name) != std::end(kPlaceholders);
}

// Expands {name} through `lookup`; "{{" and "}}" are literal braces. Errors name `origin`/`field`.
std::string expand(const std::string& text, const std::string& origin, const std::string& field,
                   const std::function<std::string(const std::string&)>& lookup) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      const size_t close = text.find('}', i);
      GPUJOB_CHECK(close != std::string::npos, origin, ": key \"", field, "\": unclosed '{' at offset ", i,
                   " (write {{ for a literal brace)");
      const std::string name = text.substr(i + 1, close - i - 1);
      GPUJOB_CHECK(is_placeholder(name), origin, ": key \"", field, "\": unknown placeholder {", name,
                   "} (expected {question}, {choices}, {letters}, {subject} or {subject_suffix}; write {{ }} for literal braces)");
      out += lookup(name);
      i = close;
    } else if (c == '}') {
      fail(origin, ": key \"", field, "\": unmatched '}' at offset ", i, " (write }} for a literal brace)");
    } else {
      out += c;
    }
  }
  return out;
}

std::string trim_trailing(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

std::string format_choices(const std::vector<std::string>& choices) {
  std::string out;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i) out += '\n';
    out += choice_letter(static_cast<int>(i)) + ". " + choices[i];
  }
  return out;
}

PromptTemplate parse_prompt_template(const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail(origin, ":", e.mark.line + 1, ": invalid YAML: ", e.msg);
  }
  GPUJOB_CHECK(root.IsMap(), origin, ": expected a mapping with keys name, system (optional), user");
  PromptTemplate t;
  t.source = text;
  t.path = origin;
  for (const auto& kv : root) {
    const auto key = kv.first.as<std::string>();
    GPUJOB_CHECK(key == "name" || key == "system" || key == "user", origin, ":", kv.first.Mark().line + 1,
                 ": unknown key \"", key, "\" (expected name, system, user)");
    GPUJOB_CHECK(kv.second.IsScalar(), origin, ":", kv.second.Mark().line + 1, ": key \"", key, "\": expected a string");
  }
  GPUJOB_CHECK(root["name"], origin, ": key \"name\": missing");
  GPUJOB_CHECK(root["user"], origin, ": key \"user\": missing");
  t.name = root["name"].as<std::string>();
  GPUJOB_CHECK(!t.name.empty() && t.name.find('/') == std::string::npos, origin,
               ": key \"name\": expected a non-empty name without '/' (it names a cache folder), found \"", t.name, "\"");
  t.user = trim_trailing(root["user"].as<std::string>());
  if (root["system"]) t.system = trim_trailing(root["system"].as<std::string>());
  // Validate placeholders now, so a typo fails at load time and not on the first row.
  const auto probe = [](const std::string&) { return std::string(); };
  expand(t.user, origin, "user", probe);
  expand(t.system, origin, "system", probe);
  return t;
}

PromptTemplate load_prompt_template(const std::string& path) {
  return parse_prompt_template(read_text_file(path), path);
}

std::vector<ChatMessage> render_prompt(const PromptTemplate& t, const PromptRow& row) {
  switch (row.kind) {
    case PromptKind::kText:
      return {{"user", row.text}};
    case PromptKind::kMessages:
      return row.messages;
    case PromptKind::kTokenIds:
      fail("row \"", row.id, "\" (line ", row.line, "): has input_ids, which are already tokenized and have no chat messages");
    case PromptKind::kMultipleChoice:
      break;
  }
  std::string subject = row.subject;
  std::replace(subject.begin(), subject.end(), '_', ' ');
  std::string letters;
  for (size_t i = 0; i < row.choices.size(); ++i) {
    if (i) letters += (i + 1 == row.choices.size()) ? " or " : ", ";
    letters += choice_letter(static_cast<int>(i));
  }
  const auto lookup = [&](const std::string& name) -> std::string {
    if (name == "question") return row.question;
    if (name == "choices") return format_choices(row.choices);
    if (name == "letters") return letters;
    if (name == "subject") return subject;
    return subject.empty() ? std::string() : " about " + subject;  // subject_suffix
  };
  std::vector<ChatMessage> messages;
  if (!t.system.empty()) messages.push_back({"system", expand(t.system, t.path, "system", lookup)});
  messages.push_back({"user", expand(t.user, t.path, "user", lookup)});
  return messages;
}

}  // namespace gpujob::io
