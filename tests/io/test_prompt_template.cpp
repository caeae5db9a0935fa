
#include "gpujob/io/dataset.hpp"
#include "gpujob/io/prompt_template.hpp"
#include "gpujob/util/error.hpp"
#include "temp_dir.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::io;

namespace {
PromptRow mc_row() {
  PromptRow row;
  row.kind = PromptKind::kMultipleChoice;
  row.id = "q1";
  row.question = "Which is a {color}?";
  row.choices = {"red", "seven", "chair"};
  row.answer = 0;
  row.subject = "basic_words";
  return row;
}
}  // namespace

TEST_CASE("placeholders, literal braces and choices render into chat messages") {
  const auto t = parse_prompt_template(
      "name: t\nsystem: Be brief about {subject}.\nuser: |\n  Q{subject_suffix}: {question}\n  {choices}\n  Pick {letters}; end with \\box{{X}}.\n",
      "inline.yaml");
  const auto messages = render_prompt(t, mc_row());
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].role == "system");
  CHECK(messages[0].content == "Be brief about basic words.");
  CHECK(messages[1].role == "user");
  // Braces inside the question are data, not placeholders.
  CHECK(messages[1].content ==
        "Q about basic words: Which is a {color}?\nA. red\nB. seven\nC. chair\nPick A, B or C; end with \\box{X}.");
}

TEST_CASE("no system message when absent, no subject suffix without a subject") {
  const auto t = parse_prompt_template("name: t\nuser: 'Q{subject_suffix}: {question}'\n", "inline.yaml");
  auto row = mc_row();
  row.subject.clear();
  const auto messages = render_prompt(t, row);
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].content == "Q: Which is a {color}?");
}

TEST_CASE("free rows: text becomes a user message, messages pass through, token ids are an error") {
  const auto t = parse_prompt_template("name: t\nuser: '{question}'\n", "inline.yaml");
  PromptRow text;
  text.kind = PromptKind::kText;
  text.text = "hello";
  CHECK(render_prompt(t, text).at(0).content == "hello");
  PromptRow chat;
  chat.kind = PromptKind::kMessages;
  chat.messages = {{"system", "s"}, {"user", "u"}};
  CHECK(render_prompt(t, chat).size() == 2);
  PromptRow ids;
  ids.kind = PromptKind::kTokenIds;
  ids.id = "x";
  REQUIRE_THROWS_WITH(render_prompt(t, ids), Catch::Contains("row \"x\""));
}

TEST_CASE("template errors are one line naming the file") {
  REQUIRE_THROWS_WITH(parse_prompt_template("name: t\nuser: 'a {answer} b'\n", "p.yaml"),
                      Catch::StartsWith("p.yaml: key \"user\": unknown placeholder {answer}"));
  REQUIRE_THROWS_WITH(parse_prompt_template("name: t\nuser: 'end with \\box{A}'\n", "p.yaml"),
                      Catch::StartsWith("p.yaml: key \"user\": unknown placeholder {A}"));
  REQUIRE_THROWS_WITH(parse_prompt_template("name: t\nuser: 'a } b'\n", "p.yaml"),
                      Catch::StartsWith("p.yaml: key \"user\": unmatched '}'"));
  REQUIRE_THROWS_WITH(parse_prompt_template("name: t\nuser: 'a { b'\n", "p.yaml"),
                      Catch::StartsWith("p.yaml: key \"user\": unclosed '{'"));
  REQUIRE_THROWS_WITH(parse_prompt_template("user: x\n", "p.yaml"), "p.yaml: key \"name\": missing");
  REQUIRE_THROWS_WITH(parse_prompt_template("name: t\nuser: x\nassistant: y\n", "p.yaml"),
                      "p.yaml:3: unknown key \"assistant\" (expected name, system, user)");
  REQUIRE_THROWS_WITH(load_prompt_template("/nonexistent/p.yaml"), Catch::StartsWith("/nonexistent/p.yaml: cannot open"));
}

TEST_CASE("the shipped templates load and render every demo row") {
  const auto set = load_prompt_set(source_dir() + "/configs/data/mc_demo.jsonl");
  for (const char* name : {"benign", "50-50"}) {
    const auto t = load_prompt_template(source_dir() + "/configs/prompts/" + name + ".yaml");
    CHECK(t.name == name);
    for (const auto& row : set.rows) {
      const auto messages = render_prompt(t, row);
      const auto& user = messages.back().content;
      CHECK(user.find(row.question) != std::string::npos);
      CHECK(user.find("A. " + row.choices[0]) != std::string::npos);
      CHECK(user.find("\\box{") != std::string::npos);
      CHECK(user.find("{{") == std::string::npos);
    }
  }
}
