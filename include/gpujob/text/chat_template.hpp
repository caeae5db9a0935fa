// Built-in chat-template renderers (Gemma, ChatML / Qwen 2.5, Qwen 3 with enable_thinking, Llama 3
// and 3.1+), chosen from a checkpoint's Jinja template or by name, producing exactly the string HF's
// apply_chat_template(..., tokenize=False) produces for plain text messages.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace gpujob::text {

class Tokenizer;

struct ChatMessage {
  std::string role;     // "system", "user", "assistant" or "tool"
  std::string content;  // plain text
  std::optional<std::string> reasoning_content;  // Qwen 3: thinking kept apart from content
};

struct ChatOptions {
  bool add_generation_prompt = true;     // end with the assistant header
  std::optional<bool> enable_thinking;   // Qwen 3: false adds an empty think block; unset = template default
  std::string bos_token;                 // Gemma and Llama 3 start with it
  std::string date_string;               // Llama 3.1+: "26 Jul 2024" style; empty = template default
};

enum class ChatFormat { kGemma, kChatML, kQwen3, kLlama3, kLlama31 };

class ChatTemplate {
 public:
  // Recognizes a Jinja chat template by its markers. Throws naming `where` when none fits.
  static ChatTemplate from_source(const std::string& jinja, const std::string& where);
  // By name: "gemma", "chatml", "qwen2.5" (ChatML with Qwen 2.5's default system prompt),
  // "qwen3", "llama3", "llama3.1".
  static ChatTemplate from_name(const std::string& name);
  // The tokenizer's own template, or `name` when given (a config's explicit choice).
  static ChatTemplate for_tokenizer(const Tokenizer& tokenizer, const std::string& name = "");

  // Renders messages. Throws gpujob::Error where HF's template raises (e.g. Gemma's alternation).
  std::string render(const std::vector<ChatMessage>& messages, const ChatOptions& options) const;

  ChatFormat format() const { return format_; }
  const std::string& name() const { return name_; }
  // ChatML: the system prompt used when the conversation has none (empty: no system turn).
  const std::string& default_system() const { return default_system_; }

 private:
  ChatFormat format_ = ChatFormat::kChatML;
  std::string name_;
  std::string default_system_;
  bool date_from_clock_ = false;  // Llama 3.2+: today's date (strftime_now) instead of 26 Jul 2024
  // Early ChatML templates without add_generation_prompt: each user turn ends by opening the
  // assistant turn, and assistant turns are their content plus <|im_end|>.
  bool user_opens_assistant_ = false;
};

// render_chat(tokenizer, messages, options): the tokenizer's template with its BOS token filled in.
std::string render_chat(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                        ChatOptions options = {});

// The format of a Jinja template, nullopt when it is not one of the built-in ones.
std::optional<ChatFormat> detect_chat_format(const std::string& jinja);
// A format by name (as from_name), nullopt for unknown names.
std::optional<ChatFormat> chat_format_from_name(const std::string& name);
// Renders in `format`; the tokenizer's own template supplies the details when it is of the same
// family (Qwen 2.5's default system prompt, Qwen 3 for "chatml", Llama 3.1's date line), and its
// bos_token fills options.bos_token when empty.
std::string render_chat(ChatFormat format, const std::vector<ChatMessage>& messages, ChatOptions options,
                        const Tokenizer& tokenizer);

}  // namespace gpujob::text
