// Test helpers: where the tokenizer fixtures and the shared real-tokenizer data live, and JSONL reading.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gpujob::text::testing {

inline std::filesystem::path source_dir() {
  const char* src = std::getenv("GPUJOB_SOURCE_DIR");
  return src ? std::filesystem::path(src) : std::filesystem::current_path();
}

// tests/data/tokenizers (made by tests/golden/make_tokenizer_fixtures.py); GPUJOB_TOKENIZER_FIXTURES
// points elsewhere.
inline std::filesystem::path fixture_dir() {
  const char* dir = std::getenv("GPUJOB_TOKENIZER_FIXTURES");
  return dir ? std::filesystem::path(dir) : source_dir() / "tests" / "data" / "tokenizers";
}

// ../shared/data/tokenizers next to the checkout.
inline std::filesystem::path shared_tokenizers() {
  return source_dir() / ".." / "shared" / "data" / "tokenizers";
}

inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

}  // namespace gpujob::text::testing
