#include "gpujob/text/chat_template.hpp"

#include <ctime>

#include "gpujob/text/tokenizer.hpp"
#include "gpujob/text/utf8.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::text {

namespace {
// Python's str.strip() with no argument (Jinja's `trim`).
std::string py_strip(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e) {
    std::size_t p = b;
    if (!is_python_space(next_code_point(s, p))) break;
    b = p;
  }
  while (e > b) {
    std::size_t start = e - 1;
    while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    std::size_t p = start;
    if (!is_python_space(next_code_point(s, p))) break;
    e = start;
  }
  return s.substr(b, e - b);
}

std::string lstrip_char(const std::string& s, char c) {
  std::size_t b = s.find_first_not_of(c);
  return b == std::string::npos ? "" : s.substr(b);
}
std::string rstrip_char(const std::string& s, char c) {
  std::size_t e = s.find_last_not_of(c);
  return e == std::string::npos ? "" : s.substr(0, e + 1);
}
// Python's s.split(sep)[0] and s.split(sep)[-1].
std::string before_first(const std::string& s, const std::string& sep) {
  std::size_t p = s.find(sep);
  return p == std::string::npos ? s : s.substr(0, p);
}
std::string after_last(const std::string& s, const std::string& sep) {
  std::size_t p = s.rfind(sep);
  return p == std::string::npos ? s : s.substr(p + sep.size());
}
bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// Undoes the escapes of a Jinja string literal (\n, \t, \', \", \\).
std::string unescape_literal(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char c = s[++i];
      out.push_back(c == 'n' ? '\n' : c == 't' ? '\t' : c);
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// ChatML templates that insert a fixed system turn when the conversation has none (Qwen 2 / 2.5)
// write it as a literal '<|im_start|>system\n...<|im_end|>'; find it.
std::string find_default_system(const std::string& jinja) {
  const std::string head = "<|im_start|>system";
  for (std::size_t pos = jinja.find(head); pos != std::string::npos; pos = jinja.find(head, pos + 1)) {
    std::size_t p = pos + head.size();
    if (jinja.compare(p, 2, "\\n") == 0) p += 2;
    else if (jinja.compare(p, 1, "\n") == 0) p += 1;
    else continue;
    std::size_t end = jinja.find("<|im_end|>", p);
    if (end == std::string::npos) continue;
    std::string literal = jinja.substr(p, end - p);
    if (literal.empty() || literal.find_first_of("'\"+{}") != std::string::npos) continue;
    return unescape_literal(literal);
  }
  // Older Qwen templates set it as a variable.
  const std::string var = "set system_message = '";
  std::size_t v = jinja.find(var);
  if (v != std::string::npos) {
    std::size_t end = jinja.find('\'', v + var.size());
    if (end != std::string::npos) return unescape_literal(jinja.substr(v + var.size(), end - v - var.size()));
  }
  return "";
}

std::string today_string() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%d %b %Y", &tm);
  return buf;
}

std::string render_gemma(const std::vector<ChatMessage>& messages, const ChatOptions& o) {
  std::string out = o.bos_token;
  std::string first_prefix;
  std::size_t first = 0;
  if (!messages.empty() && messages[0].role == "system") {
    first_prefix = messages[0].content + "\n\n";
    first = 1;
  }
  for (std::size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if ((m.role == "user") != ((i - first) % 2 == 0))
      fail("chat template gemma: Conversation roles must alternate user/assistant/user/assistant/... (message ", i,
           " has role '", m.role, "')");
    const std::string role = m.role == "assistant" ? "model" : m.role;
    out += "<start_of_turn>" + role + "\n" + (i == first ? first_prefix : "");
    out += py_strip(m.content) + "<end_of_turn>\n";
  }
  if (o.add_generation_prompt) out += "<start_of_turn>model\n";
  return out;
}

// Tool results are grouped into one user turn, as Qwen's templates do.
void render_tool(const std::vector<ChatMessage>& messages, std::size_t i, std::string& out) {
  if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
  out += "\n<tool_response>\n" + messages[i].content + "\n</tool_response>";
  if (i + 1 == messages.size() || messages[i + 1].role != "tool") out += "<|im_end|>\n";
}

std::string render_chatml(const std::vector<ChatMessage>& messages, const ChatOptions& o,
                          const std::string& default_system) {
  std::string out;
  std::size_t start = 0;
  if (!default_system.empty()) {
    bool has_system = !messages.empty() && messages[0].role == "system";
    out += "<|im_start|>system\n" + (has_system ? messages[0].content : default_system) + "<|im_end|>\n";
    start = has_system ? 1 : 0;
  }
  for (std::size_t i = start; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "tool") render_tool(messages, i, out);
    else out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  }
  if (o.add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string render_chatml_open_assistant(const std::vector<ChatMessage>& messages, const std::string& default_system) {
  const bool has_system = !messages.empty() && messages[0].role == "system";
  std::string out = "<|im_start|>system\n" + (has_system ? messages[0].content : default_system) + "<|im_end|>\n";
  for (const ChatMessage& m : messages) {
    if (m.role == "user") out += "<|im_start|>user\n" + m.content + "<|im_end|>\n<|im_start|>assistant\n";
    else if (m.role == "assistant") out += m.content + "<|im_end|>\n";
  }
  return out;
}

std::string render_qwen3(const std::vector<ChatMessage>& messages, const ChatOptions& o) {
  std::string out;
  if (!messages.empty() && messages[0].role == "system")
    out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
  // The last user turn that is not a tool response: thinking is kept only after it.
  std::size_t last_query = messages.empty() ? 0 : messages.size() - 1;
  for (std::size_t k = messages.size(); k-- > 0;) {
    const ChatMessage& m = messages[k];
    if (m.role == "user" && !(starts_with(m.content, "<tool_response>") && ends_with(m.content, "</tool_response>"))) {
      last_query = k;
      break;
    }
  }
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || (m.role == "system" && i != 0)) {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    } else if (m.role == "assistant") {
      std::string content = m.content, reasoning;
      if (m.reasoning_content) {
        reasoning = *m.reasoning_content;
      } else if (m.content.find("</think>") != std::string::npos) {
        content = lstrip_char(after_last(m.content, "</think>"), '\n');
        reasoning = lstrip_char(after_last(rstrip_char(before_first(m.content, "</think>"), '\n'), "<think>"), '\n');
      }
      const bool last = i + 1 == messages.size();
      if (i > last_query && (last || !reasoning.empty())) {
        out += "<|im_start|>" + m.role + "\n<think>\n" + rstrip_char(lstrip_char(reasoning, '\n'), '\n') +
               "\n</think>\n\n" + lstrip_char(content, '\n');
      } else {
        out += "<|im_start|>" + m.role + "\n" + content;
      }
      out += "<|im_end|>\n";
    } else if (m.role == "tool") {
      render_tool(messages, i, out);
    }
  }
  if (o.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (o.enable_thinking.has_value() && !*o.enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

std::string llama_turn(const std::string& role, const std::string& content) {
  return "<|start_header_id|>" + role + "<|end_header_id|>\n\n" + py_strip(content) + "<|eot_id|>";
}

std::string render_llama3(const std::vector<ChatMessage>& messages, const ChatOptions& o) {
  std::string out;
  for (std::size_t i = 0; i < messages.size(); ++i)
    out += (i == 0 ? o.bos_token : "") + llama_turn(messages[i].role, messages[i].content);
  if (o.add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string render_llama31(const std::vector<ChatMessage>& messages, const ChatOptions& o, bool date_from_clock) {
  std::string date = !o.date_string.empty() ? o.date_string : date_from_clock ? today_string() : "26 Jul 2024";
  std::size_t start = 0;
  std::string system;
  if (!messages.empty() && messages[0].role == "system") {
    system = py_strip(messages[0].content);
    start = 1;
  }
  std::string out = o.bos_token + "<|start_header_id|>system<|end_header_id|>\n\n" +
                    "Cutting Knowledge Date: December 2023\nToday Date: " + date + "\n\n" + system + "<|eot_id|>";
  for (std::size_t i = start; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "tool" || m.role == "ipython")
      out += "<|start_header_id|>ipython<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
    else
      out += llama_turn(m.role, m.content);
  }
  if (o.add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}
}  // namespace

ChatTemplate ChatTemplate::from_source(const std::string& jinja, const std::string& where) {
  ChatTemplate t;
  if (jinja.find("<start_of_turn>") != std::string::npos) {
    t.format_ = ChatFormat::kGemma;
    t.name_ = "gemma";
  } else if (jinja.find("<|start_header_id|>") != std::string::npos) {
    if (jinja.find("Cutting Knowledge Date") != std::string::npos) {
      t.format_ = ChatFormat::kLlama31;
      t.name_ = "llama3.1";
      t.date_from_clock_ = jinja.find("strftime_now") != std::string::npos;
    } else {
      t.format_ = ChatFormat::kLlama3;
      t.name_ = "llama3";
    }
  } else if (jinja.find("<|im_start|>") != std::string::npos) {
    if (jinja.find("enable_thinking") != std::string::npos || jinja.find("reasoning_content") != std::string::npos) {
      t.format_ = ChatFormat::kQwen3;
      t.name_ = "qwen3";
    } else {
      t.format_ = ChatFormat::kChatML;
      t.default_system_ = find_default_system(jinja);
      t.name_ = t.default_system_.empty() ? "chatml" : "qwen2.5";
      t.user_opens_assistant_ = jinja.find("add_generation_prompt") == std::string::npos &&
                                jinja.find("<|im_start|>assistant") != std::string::npos;
      if (t.user_opens_assistant_) {
        GPUJOB_CHECK(!t.default_system_.empty(), where, ": ChatML template without add_generation_prompt and "
                                                        "without a default system prompt is not supported");
        t.name_ = "chatml-open-assistant";
      }
    }
  } else {
    fail(where, ": chat template not recognized (expected Gemma, ChatML/Qwen or Llama 3 markers); "
                "name one of gemma, chatml, qwen2.5, qwen3, llama3, llama3.1 explicitly");
  }
  return t;
}

ChatTemplate ChatTemplate::from_name(const std::string& name) {
  ChatTemplate t;
  t.name_ = name;
  if (name == "gemma" || name == "gemma3") t.format_ = ChatFormat::kGemma;
  else if (name == "chatml") t.format_ = ChatFormat::kChatML;
  else if (name == "qwen2.5" || name == "qwen2") {
    t.format_ = ChatFormat::kChatML;
    t.default_system_ = name == "qwen2" ? "You are a helpful assistant."
                                        : "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
  } else if (name == "qwen3") t.format_ = ChatFormat::kQwen3;
  else if (name == "llama3") t.format_ = ChatFormat::kLlama3;
  else if (name == "llama3.1") t.format_ = ChatFormat::kLlama31;
  else if (name == "llama3.2") {
    t.format_ = ChatFormat::kLlama31;
    t.date_from_clock_ = true;
  } else
    fail("chat template '", name, "' is unknown (expected gemma, chatml, qwen2, qwen2.5, qwen3, llama3, llama3.1 or llama3.2)");
  return t;
}

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tokenizer, const std::string& name) {
  if (!name.empty()) return from_name(name);
  GPUJOB_CHECK(!tokenizer.chat_template().empty(),
               "tokenizer_config.json has no chat_template; name one of gemma, chatml, qwen2.5, qwen3, llama3, llama3.1");
  return from_source(tokenizer.chat_template(), "tokenizer_config.json chat_template");
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, const ChatOptions& options) const {
  switch (format_) {
    case ChatFormat::kGemma: return render_gemma(messages, options);
    case ChatFormat::kChatML:
      return user_opens_assistant_ ? render_chatml_open_assistant(messages, default_system_)
                                   : render_chatml(messages, options, default_system_);
    case ChatFormat::kQwen3: return render_qwen3(messages, options);
    case ChatFormat::kLlama3: return render_llama3(messages, options);
    case ChatFormat::kLlama31: return render_llama31(messages, options, date_from_clock_);
  }
  return "";
}

std::string render_chat(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages, ChatOptions options) {
  if (options.bos_token.empty()) options.bos_token = tokenizer.config().bos_token;
  return ChatTemplate::for_tokenizer(tokenizer).render(messages, options);
}

std::optional<ChatFormat> detect_chat_format(const std::string& jinja) {
  try {
    return ChatTemplate::from_source(jinja, "chat template").format();
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::optional<ChatFormat> chat_format_from_name(const std::string& name) {
  try {
    return ChatTemplate::from_name(name).format();
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::string render_chat(ChatFormat format, const std::vector<ChatMessage>& messages, ChatOptions options,
                        const Tokenizer& tokenizer) {
  if (options.bos_token.empty()) options.bos_token = tokenizer.config().bos_token;
  auto family = [](ChatFormat f) {
    if (f == ChatFormat::kQwen3) return ChatFormat::kChatML;
    if (f == ChatFormat::kLlama31) return ChatFormat::kLlama3;
    return f;
  };
  if (!tokenizer.chat_template().empty()) {
    if (auto own = detect_chat_format(tokenizer.chat_template()); own && family(*own) == family(format))
      return ChatTemplate::from_source(tokenizer.chat_template(), "chat template").render(messages, options);
  }
  static const char* const kNames[] = {"gemma", "chatml", "qwen3", "llama3", "llama3.1"};
  return ChatTemplate::from_name(kNames[static_cast<int>(format)]).render(messages, options);
}

}  // namespace gpujob::text
