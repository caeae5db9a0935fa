#include "jobs/tokenize_command.hpp"

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <memory>

#include "gpujob/text/tokenize_jsonl.hpp"
#include "gpujob/text/tokenizer.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::jobs {

namespace {
struct TokenizeCommand {
  std::string model_dir;
  std::string text;
  std::string jsonl;
  bool decode = false;
  bool no_special_tokens = false;
  bool skip_special_tokens = false;
  bool has_text = false;  // --text was given (possibly empty)
};

void run_tokenize(const TokenizeCommand& c) {
  GPUJOB_CHECK(c.has_text != !c.jsonl.empty(), "gpujob tokenize: give exactly one of --text or --jsonl");
  GPUJOB_CHECK(!(c.decode && c.has_text), "gpujob tokenize --decode reads {\"ids\": [...]} lines: use --jsonl FILE (or -)");
  auto tokenizer = text::load_tokenizer(c.model_dir);
  text::TokenizeOptions options;
  options.add_special_tokens = !c.no_special_tokens;
  options.skip_special_tokens = c.skip_special_tokens;
  if (c.has_text) {
    std::cout << text::ids_json_line(*tokenizer, c.text, options);
    return;
  }
  std::ifstream file;
  std::istream* in = &std::cin;
  if (c.jsonl != "-") {
    file.open(c.jsonl, std::ios::binary);
    GPUJOB_CHECK(file.good(), c.jsonl, ": cannot open");
    in = &file;
  }
  if (c.decode) text::decode_jsonl(*tokenizer, *in, std::cout, c.jsonl, options);
  else text::encode_jsonl(*tokenizer, *in, std::cout, c.jsonl, options);
  std::cout.flush();
}
}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto c = std::make_shared<TokenizeCommand>();
  auto* command = app.add_subcommand(
      "tokenize", "encode text to token ids (or --decode ids to text) with a checkpoint's tokenizer, one JSON line each");
  command->add_option("--model", c->model_dir, "checkpoint folder with tokenizer.json or tokenizer.model")
      ->required();
  auto* text = command->add_option("--text", c->text, "one text to encode");
  auto* jsonl = command->add_option("--jsonl", c->jsonl, "JSONL file of {\"text\": ...} lines ({\"ids\": [...]} with --decode); - is stdin");
  text->excludes(jsonl);
  command->add_flag("--decode", c->decode, "decode {\"ids\": [...]} lines to {\"text\": ...} lines");
  command->add_flag("--no-special-tokens", c->no_special_tokens, "encode without BOS/EOS (add_special_tokens=False)");
  command->add_flag("--skip-special-tokens", c->skip_special_tokens, "decode without special tokens");
  command->callback([c, text] {
    c->has_text = text->count() > 0;
    run_tokenize(*c);
  });
}

}  // namespace gpujob::jobs
