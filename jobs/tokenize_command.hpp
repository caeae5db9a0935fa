// `gpujob tokenize`: encode text to token ids (or decode ids to text) with a checkpoint's tokenizer,
// one JSON line per input, identical to HF tokenizer(text)["input_ids"].
#pragma once

namespace CLI {
class App;
}

namespace gpujob::jobs {

// `gpujob tokenize --model DIR (--text T | --jsonl FILE) [--decode] [--no-special-tokens]
//  [--skip-special-tokens]`; FILE "-" reads standard input.
void add_tokenize_command(CLI::App& app);

}  // namespace gpujob::jobs
