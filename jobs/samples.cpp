#include "jobs/samples.hpp"

#include <filesystem>

#include "gpujob/text/chat_template.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::jobs {
namespace {

std::vector<int64_t> widen(const std::vector<int32_t>& ids) { return {ids.begin(), ids.end()}; }

// Chat messages -> the model's prompt text, as HF apply_chat_template(add_generation_prompt=True).
std::string render_messages(const config::RunConfig& config, const text::Tokenizer* tokenizer,
                            const std::vector<io::ChatMessage>& messages, const std::string& where) {
  GPUJOB_CHECK(tokenizer != nullptr, where, ": chat rows need a tokenizer, but ", config.model.path,
               " has no tokenizer.json or tokenizer.model");
  std::vector<text::ChatMessage> chat;
  chat.reserve(messages.size());
  for (const auto& m : messages) chat.push_back({m.role, m.content});
  text::ChatOptions options;
  options.add_generation_prompt = true;
  options.enable_thinking = config.model.enable_thinking;
  const auto kind = config.model.chat_template == config::ChatTemplate::automatic
                        ? text::detect_chat_format(tokenizer->chat_template())
                        : text::chat_format_from_name(config::name(config.model.chat_template));
  GPUJOB_CHECK(kind.has_value(), where, ": cannot tell the chat template of ", config.model.path,
               " (set model.chat_template to gemma, chatml or llama3)");
  return text::render_chat(*kind, chat, options, *tokenizer);
}

}  // namespace

std::unique_ptr<text::Tokenizer> load_model_tokenizer(const std::string& model_dir) {
  namespace fs = std::filesystem;
  if (!fs::exists(fs::path(model_dir) / "tokenizer.json") &&
      !fs::exists(fs::path(model_dir) / "tokenizer.model")) {
    return nullptr;
  }
  return text::load_tokenizer(model_dir);
}

PreparedData prepare_samples(const config::RunConfig& config, const text::Tokenizer* tokenizer) {
  PreparedData data;
  data.prompt_set = io::load_prompt_set(config.data.path);
  data.selection.subjects = config.data.subjects;
  data.selection.shuffle = config.data.shuffle;
  data.selection.seed = static_cast<uint64_t>(config.data.seed);
  data.selection.limit = config.data.n > 0 ? config.data.n : -1;
  if (!config.data.template_path.empty()) {
    data.prompt_template = io::load_prompt_template(config.data.template_path);
  }
  const auto rows = io::select_rows(data.prompt_set, data.selection);
  GPUJOB_CHECK(!rows.empty(), config.data.path, ": no rows left after the selection (subjects/n)");

  data.samples.reserve(rows.size());
  for (const auto& row : rows) {
    const std::string where = config.data.path + ":" + std::to_string(row.line);
    Sample s;
    s.id = row.id;
    s.row_index = row.row_index;
    s.subject = row.subject;
    s.data_label = row.label;
    switch (row.kind) {
      case io::PromptKind::kMultipleChoice: {
        GPUJOB_CHECK(!data.prompt_template.user.empty(), where,
                     ": multiple-choice row but data.template is not set (e.g. configs/prompts/benign.yaml)");
        s.correct_index = row.answer;
        s.num_choices = static_cast<int>(row.choices.size());
        s.prompt = render_messages(config, tokenizer, io::render_prompt(data.prompt_template, row), where);
        s.prompt_ids = widen(tokenizer->encode(s.prompt, /*add_special_tokens=*/false));
        break;
      }
      case io::PromptKind::kMessages:
        s.prompt = render_messages(config, tokenizer, row.messages, where);
        s.prompt_ids = widen(tokenizer->encode(s.prompt, /*add_special_tokens=*/false));
        break;
      case io::PromptKind::kText:
        GPUJOB_CHECK(tokenizer != nullptr, where, ": text rows need a tokenizer, but ",
                     config.model.path, " has none (give input_ids instead)");
        s.prompt = row.text;
        s.prompt_ids = widen(tokenizer->encode(row.text, /*add_special_tokens=*/true));
        break;
      case io::PromptKind::kTokenIds:
        s.prompt_ids = row.input_ids;
        if (tokenizer) s.prompt = tokenizer->decode({row.input_ids.begin(), row.input_ids.end()});
        break;
    }
    GPUJOB_CHECK(!s.prompt_ids.empty(), where, ": the prompt has no tokens");
    data.samples.push_back(std::move(s));
  }
  return data;
}

}  // namespace gpujob::jobs
