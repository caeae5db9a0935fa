// Encode throughput of a checkpoint's tokenizer on a large generated multi-script text (MB/s, one
// core and all cores). Usage: tokenizer_bench MODEL_DIR [MEGABYTES=100 | TEXT.jsonl] [THREADS=hardware] [TEXT_OUT]
// TEXT.jsonl instead of a size: encode those documents ({"text": ...} per line) instead.
// TEXT_OUT: also write the documents there (JSONL, {"text": ...} per line) so that
// bench/tokenizer_hf.py times HF tokenizers on the same text and checks the token count.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <ctime>
#include <fstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpujob/text/tokenizer.hpp"

namespace {
// CPU seconds of the calling thread: on a shared machine wall time also counts other processes.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Text that looks like a web/code corpus: words drawn with Zipf-like frequencies from a generated
// vocabulary of 30,000 (so that, as in real text, a few words are very common and many are rare),
// numbers, punctuation, newlines, indentation, and some CJK, Cyrillic, accented Latin and emoji,
// from a fixed-seed generator.
std::string generate_text(std::size_t bytes) {
  static const char* kSyllables[] = {"the", "an", "to", "ing", "tion", "pre", "con", "ex", "al", "er", "ly",
                                     "ment", "ca", "ro", "li", "na", "ko", "ta", "mi", "der", "sch", "ver"};
  static const char* kOther[] = {"日本語", "中文", "测试", "привет", "мир", "café", "naïve", "Übermut",
                                 "😀", "🚀", "👍🏽", "नमस्ते", "مرحبا", "{", "}", "()", "->", "::", "==", "//"};
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state]() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  std::vector<std::string> words(30000);
  for (auto& w : words) {
    int n = 1 + static_cast<int>(next() % 4);
    for (int i = 0; i < n; ++i) w += kSyllables[next() % (sizeof(kSyllables) / sizeof(*kSyllables))];
    if (next() % 8 == 0) w[0] = static_cast<char>(std::toupper(w[0]));
  }
  // Zipf: rank r drawn with probability ~ 1/r, by inverting the harmonic CDF approximately.
  auto zipf = [&](std::size_t n) {
    double u = static_cast<double>(next() % 1000000) / 1000000.0;
    return static_cast<std::size_t>(std::exp(u * std::log(static_cast<double>(n)))) - 1;
  };
  std::string text;
  text.reserve(bytes + 64);
  while (text.size() < bytes) {
    uint64_t r = next() % 32;
    if (r == 0) text += std::to_string(zipf(100000));
    else if (r == 1) text += kOther[next() % (sizeof(kOther) / sizeof(*kOther))];
    else if (r == 2) text += ".\n";
    else if (r == 3) text += ",";
    else if (r == 4) text += "\n    ";
    else text += words[std::min(words.size() - 1, zipf(words.size()))];
    text += ' ';
  }
  return text;
}

// Splits at newlines into about `parts` pieces (tokenizers see lines or documents, never bytes).
std::vector<std::string> split_lines(const std::string& text, std::size_t parts) {
  std::vector<std::string> out;
  std::size_t step = text.size() / parts + 1, pos = 0;
  while (pos < text.size()) {
    std::size_t end = std::min(text.size(), pos + step);
    std::size_t nl = text.find('\n', end);
    end = nl == std::string::npos ? text.size() : nl + 1;
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [MEGABYTES=100] [THREADS] [TEXT_OUT.jsonl]\n", argv[0]);
    return 2;
  }
  const std::string size_or_file = argc > 2 ? argv[2] : "100";
  const bool from_file = size_or_file.size() > 6 && size_or_file.substr(size_or_file.size() - 6) == ".jsonl";
  const double megabytes = from_file ? 0.0 : std::atof(size_or_file.c_str());
  const unsigned threads = argc > 3 ? static_cast<unsigned>(std::atoi(argv[3]))
                                    : std::max(1u, std::thread::hardware_concurrency());
  auto load_start = std::chrono::steady_clock::now();
  auto tokenizer = gpujob::text::load_tokenizer(argv[1]);
  std::printf("load: %.2f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count());
  std::vector<std::string> docs;
  std::string text;  // all documents, for the byte count
  if (from_file) {
    std::ifstream in(size_or_file);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", size_or_file.c_str());
      return 1;
    }
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      docs.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
      text += docs.back();
    }
  } else {
    text = generate_text(static_cast<std::size_t>(megabytes * 1e6));
    // Documents of ~64 KB, as a data loader would feed them.
    docs = split_lines(text, text.size() / 65536 + 1);
  }
  if (argc > 4) {
    std::FILE* out = std::fopen(argv[4], "wb");
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", argv[4]);
      return 1;
    }
    for (const auto& d : docs) {
      const std::string line = nlohmann::json{{"text", d}}.dump() + "\n";
      std::fwrite(line.data(), 1, line.size(), out);
    }
    std::fclose(out);
  }

  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  double cpu0 = thread_cpu_seconds();
  std::size_t tokens = 0;
  for (const auto& d : docs) tokens += tokenizer->encode(d, false).size();
  double single = std::chrono::duration<double>(clock::now() - t0).count();
  double cpu = thread_cpu_seconds() - cpu0;
  std::printf("%s: %.1f MB, %zu tokens, 1 thread: %.1f MB/s per CPU second (%.2f s CPU), %.1f MB/s wall (%.2f s)\n",
              argv[1], text.size() / 1e6, tokens, text.size() / 1e6 / cpu, cpu, text.size() / 1e6 / single, single);

  if (threads > 1) {
    auto t1 = clock::now();
    std::vector<std::thread> pool;
    std::vector<std::size_t> counts(threads, 0);
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (std::size_t i = t; i < docs.size(); i += threads) counts[t] += tokenizer->encode(docs[i], false).size();
      });
    for (auto& th : pool) th.join();
    double multi = std::chrono::duration<double>(clock::now() - t1).count();
    std::printf("%u threads: %.1f MB/s (%.2f s)\n", threads, text.size() / 1e6 / multi, multi);
  }
  return 0;
}
