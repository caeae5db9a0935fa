// `gpujob tokenize` end to end through the built binary (GPUJOB_BINARY, set by CTest): ids equal
// the library's encode, --decode gives the text back, bad input fails with one line.
#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "fixtures.hpp"
#include "gpujob/text/tokenizer.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob::text;
namespace fs = std::filesystem;

namespace {
struct Result {
  int status;
  std::string output;
};

Result run(const std::string& command) {
  Result r{0, ""};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  std::size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.output.append(buffer.data(), n);
  r.status = pclose(pipe);
  return r;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}
}  // namespace

TEST_CASE("gpujob tokenize encodes and decodes JSON lines", "[text][tokenize][cli]") {
  const char* binary = std::getenv("GPUJOB_BINARY");
  fs::path model = testing::fixture_dir() / "qwen2";
  if (!binary || !fs::exists(binary) || !fs::exists(model / "tokenizer.json")) {
    WARN("SKIP: gpujob binary (GPUJOB_BINARY) or " << model << " not found");
    return;
  }
  auto tok = load_tokenizer(model.string());
  const std::string text = "Hello wörld 😀 <|im_start|>user\n";
  Result single = run(std::string(binary) + " tokenize --model " + quote(model.string()) + " --text " + quote(text));
  REQUIRE(single.status == 0);
  CHECK(nlohmann::json::parse(single.output).at("ids").get<std::vector<int32_t>>() == tok->encode(text));

  fs::path dir = fs::temp_directory_path() / ("gpujob_tokenize_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream in(dir / "in.jsonl");
    in << nlohmann::json({{"text", text}}).dump() << "\n" << nlohmann::json({{"text", "line two"}}).dump() << "\n";
  }
  Result encoded = run(std::string(binary) + " tokenize --model " + quote(model.string()) + " --jsonl " +
                       quote((dir / "in.jsonl").string()) + " > " + quote((dir / "ids.jsonl").string()));
  REQUIRE(encoded.status == 0);
  Result decoded = run(std::string(binary) + " tokenize --decode --model " + quote(model.string()) + " --jsonl " +
                       quote((dir / "ids.jsonl").string()));
  REQUIRE(decoded.status == 0);
  std::istringstream lines(decoded.output);
  std::string line;
  REQUIRE(std::getline(lines, line));
  CHECK(nlohmann::json::parse(line).at("text").get<std::string>() == text);
  REQUIRE(std::getline(lines, line));
  CHECK(nlohmann::json::parse(line).at("text").get<std::string>() == "line two");

  Result bad = run(std::string(binary) + " tokenize --model " + quote((dir / "missing").string()) + " --text x");
  CHECK(bad.status != 0);
  CHECK(bad.output.find("missing") != std::string::npos);
  fs::remove_all(dir);
}
