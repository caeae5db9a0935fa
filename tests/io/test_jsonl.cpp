
#include "gpujob/io/jsonl.hpp"
#include "gpujob/util/error.hpp"
#include "temp_dir.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using gpujob::io::JsonlAppender;
using gpujob::io::read_jsonl;

TEST_CASE("read_jsonl parses lines, skips blank ones and keeps line numbers") {
  TempDir dir;
  const auto path = dir.write("a.jsonl", "{\"a\": 1}\n\n  \n{\"a\": 2}\r\n{\"a\": 3}\n");
  const auto rows = read_jsonl(path);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].value["a"] == 1);
  CHECK(rows[1].line == 4);
  CHECK(rows[2].value["a"] == 3);
  CHECK(rows[2].line == 5);
}

TEST_CASE("an invalid middle line is a one-line error naming file and line") {
  TempDir dir;
  const auto path = dir.write("bad.jsonl", "{\"a\": 1}\n{\"a\": \n{\"a\": 3}\n");
  try {
    read_jsonl(path);
    FAIL("no error");
  } catch (const gpujob::Error& e) {
    const std::string msg = e.what();
    CHECK(msg.rfind(path + ":2: invalid JSON: ", 0) == 0);
    CHECK(msg.find('\n') == std::string::npos);
  }
}

TEST_CASE("a missing file is a one-line error naming it") {
  REQUIRE_THROWS_WITH(read_jsonl("/nonexistent/x.jsonl"), Catch::Contains("/nonexistent/x.jsonl: cannot open"));
  CHECK(gpujob::io::read_jsonl_if_exists("/nonexistent/x.jsonl").empty());
}

TEST_CASE("a torn last line (no newline) is ignored, a complete invalid last line is an error") {
  TempDir dir;
  const auto torn = dir.write("torn.jsonl", "{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3, \"b\": [1, 2");
  const auto rows = read_jsonl(torn);
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].value["a"] == 2);
  // A valid last line without newline is kept (a file written by hand).
  const auto tail = dir.write("tail.jsonl", "{\"a\": 1}\n{\"a\": 2}");
  CHECK(read_jsonl(tail).size() == 2);
  const auto bad = dir.write("bad.jsonl", "{\"a\": 1}\n{\"a\": 2\n");
  REQUIRE_THROWS_WITH(read_jsonl(bad), Catch::StartsWith(bad + ":2: invalid JSON"));
}

TEST_CASE("read_jsonl_if_exists can skip invalid lines") {
  TempDir dir;
  const auto path = dir.write("p.jsonl", "{\"a\": 1}\n{\"a\": \n{\"a\": 3}\n");
  REQUIRE_THROWS(gpujob::io::read_jsonl_if_exists(path));
  const auto rows = gpujob::io::read_jsonl_if_exists(path, true);
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].line == 3);
}

TEST_CASE("the appender writes durable lines and repairs a torn tail before appending") {
  TempDir dir;
  const auto path = dir.file("log.jsonl");
  {
    JsonlAppender out(path);
    out.append({{"id", 1}});
    out.append_all({{{"id", 2}}, {{"id", 3}}});
  }
  REQUIRE(read_jsonl(path).size() == 3);
  // Simulate a crash in the middle of a write.
  { std::ofstream(path, std::ios::app) << "{\"id\": 4, \"compl"; }
  REQUIRE(read_jsonl(path).size() == 3);
  {
    JsonlAppender out(path);  // cuts the fragment off
    out.append({{"id", 5}});
  }
  const auto rows = read_jsonl(path);
  REQUIRE(rows.size() == 4);
  CHECK(rows[3].value["id"] == 5);
  CHECK(rows[3].line == 4);
}

TEST_CASE("write_file_atomically replaces the whole file") {
  TempDir dir;
  const auto path = dir.file("key.json");
  gpujob::io::write_file_atomically(path, "first");
  gpujob::io::write_file_atomically(path, "second");
  CHECK(gpujob::io::read_text_file(path) == "second");
}
