
#include "gpujob/io/answer.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using gpujob::io::answer_label;
using gpujob::io::parse_answer;

namespace {
std::string letter(const std::string& text, int num_choices = 4) { return parse_answer(text, num_choices).letter; }
}  // namespace

TEST_CASE("boxed variants") {
  CHECK(letter("so it is \\box{B}") == "B");
  CHECK(letter("\\boxed{C}") == "C");
  CHECK(letter("\\box{(D)}") == "D");
  CHECK(letter("\\boxed{\\text{A}}") == "A");
  CHECK(letter("\\boxed{\\textbf{B}}") == "B");
  CHECK(letter("$\\boxed{C}$") == "C");
  CHECK(letter("\\boxed{ c }") == "C");
  CHECK(letter("\\box{B.}") == "B");
  CHECK(letter("\\boxed{B. 56}") == "B");
  CHECK(letter("\\boxed{(A) Paris}") == "");  // "(A) Paris" is not a wrapped letter
  CHECK(letter("\\boxed{**D**}") == "D");
  CHECK(letter("\\fbox{A}") == "A");
  CHECK(letter("\\boxed{[B]}") == "B");
  CHECK(letter("\\boxed{\\text{(B)}}") == "B");
  CHECK(letter("$$\\boxed{\\mathbf{A}}$$") == "A");
  CHECK(parse_answer("\\box{B}").boxed);
}

TEST_CASE("the last valid boxed answer wins; invalid boxes are skipped") {
  CHECK(letter("Format: \\box{LETTER}. I think \\box{A}... no, \\box{C}") == "C");
  CHECK(letter("\\box{A} then \\box{LETTER}") == "A");
  CHECK(letter("\\box{B} and \\box{Z}") == "B");   // Z is beyond 4 choices
  CHECK(letter("\\box{B} and \\box{56}") == "B");
  CHECK(letter("\\boxed{A} then unterminated \\boxed{C") == "A");
  // A boxed answer beats a later stated one.
  CHECK(letter("\\box{A}. Answer: B") == "A");
}

TEST_CASE("stated answers when nothing is boxed") {
  CHECK(letter("**Answer: C**") == "C");
  CHECK(letter("**Answer:** B") == "B");
  CHECK(letter("Final answer: $D$") == "D");
  CHECK(letter("Answer: (B)") == "B");
  CHECK(letter("The answer is D.") == "D");
  CHECK(letter("the correct answer is option A") == "A");
  CHECK(letter("The answer is B. Wait, the answer is C") == "C");
  CHECK_FALSE(parse_answer("Answer: C").boxed);
  CHECK(letter("The answer is Actually tricky") == "");
  CHECK(letter("I cannot answer this.") == "");
  CHECK(letter("") == "");
  CHECK(letter("no box, just B") == "");
}

TEST_CASE("choice count bounds the letter") {
  CHECK(letter("\\box{E}", 4) == "");
  CHECK(letter("\\box{E}", 5) == "E");
  CHECK(parse_answer("\\box{E}", 5).index == 4);
}

TEST_CASE("correctness label") {
  CHECK(answer_label(parse_answer("\\box{B}"), 1) == 1);
  CHECK(answer_label(parse_answer("\\box{B}"), 2) == 0);
  CHECK(answer_label(parse_answer("nothing"), 2) == -1);
}
