#include "gpujob/text/tokenize_jsonl.hpp"

#include <nlohmann/json.hpp>

#include "gpujob/util/error.hpp"

namespace gpujob::text {

namespace {
std::string dump_line(const nlohmann::json& j) {
  // Decoded text is valid UTF-8 already; `replace` only guards against a surprise.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

nlohmann::json parse_line(const std::string& line, const std::string& where, std::size_t number) {
  try {
    return nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    fail(where, ":", number, ": not a JSON object (", e.what(), ")");
  }
}
// Calls handle(row, line, line number) for every non-blank line of `in`; returns how many.
template <typename Handle>
std::size_t for_each_row(std::istream& in, const std::string& where, Handle handle) {
  std::string line;
  std::size_t number = 0, done = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    handle(parse_line(line, where, number), line, number);
    ++done;
  }
  return done;
}

}  // namespace

std::string ids_json_line(const Tokenizer& tokenizer, const std::string& text, const TokenizeOptions& options) {
  return dump_line({{"ids", tokenizer.encode(text, options.add_special_tokens)}});
}

std::size_t encode_jsonl(const Tokenizer& tokenizer, std::istream& in, std::ostream& out, const std::string& where,
                         const TokenizeOptions& options) {
  return for_each_row(in, where, [&](const nlohmann::json& row, const std::string& line, std::size_t number) {
    GPUJOB_CHECK(row.is_object() && row.contains("text") && row["text"].is_string(), where, ":", number,
                 ": expected {\"text\": string}, found ", line.substr(0, 80));
    out << ids_json_line(tokenizer, row["text"].get<std::string>(), options);
  });
}

std::size_t decode_jsonl(const Tokenizer& tokenizer, std::istream& in, std::ostream& out, const std::string& where,
                         const TokenizeOptions& options) {
  return for_each_row(in, where, [&](const nlohmann::json& row, const std::string& line, std::size_t number) {
    GPUJOB_CHECK(row.is_object() && row.contains("ids") && row["ids"].is_array(), where, ":", number,
                 ": expected {\"ids\": [int, ...]}, found ", line.substr(0, 80));
    std::vector<int32_t> ids;
    for (const auto& v : row["ids"]) {
      GPUJOB_CHECK(v.is_number_integer(), where, ":", number, ": ids must be integers, found ", v.dump());
      ids.push_back(v.get<int32_t>());
    }
    out << dump_line({{"text", tokenizer.decode(ids, options.skip_special_tokens)}});
  });
}

}  // namespace gpujob::text
