// Parsing the chosen letter out of a completion (\box{X} and variants) and the correctness label.
#pragma once

#include <string>

namespace gpujob::io {

// The rule, in order:
// 1. Boxed answers: every `\box{...}`, `\boxed{...}` or `\fbox{...}` (braces matched, so
//    `\boxed{\text{B}}` works). The content is unwrapped: `\text{}`, `\textbf{}`, `\mathrm{}`,
//    `\mathbf{}` wrappers, `$`, spaces, `**`, parentheses or brackets; what remains must be a
//    letter alone or a letter followed by '.', ')' or ':' and more text ("B. Paris"). The LAST
//    valid boxed answer wins (models restate the format before answering).
// 2. Only when nothing is boxed: the last "Answer: X" / "answer is X" (case-insensitive, with
//    optional `**`, parentheses and "option"), e.g. `**Answer: C**`, "The answer is (D).".
// A letter outside the question's choices (index >= num_choices) is not an answer.
struct ParsedAnswer {
  int index = -1;      // 0 for A, ...; -1 when no answer was found
  std::string letter;  // "A", ...; "" when none
  bool boxed = false;  // found by rule 1
};

ParsedAnswer parse_answer(const std::string& completion, int num_choices = 26);

// Correctness label used by the probes: 1 when the parsed answer equals the correct one,
// 0 when it is another letter, -1 when no answer was parsed (such samples are left out of
// probes).
int answer_label(const ParsedAnswer& parsed, int correct_index);

}  // namespace gpujob::io
