// Shared by the bench programs: `--key value` arguments and random token sequences.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace gpujob::bench {

// `PROGRAM MODEL_DIR --key value ...`; unknown keys are an error so a typo never goes unnoticed.
class Args {
 public:
  Args(int argc, char** argv, const std::map<std::string, std::string>& defaults, const char* usage)
      : values_(defaults) {
    if (argc < 2 || std::string(argv[1]).rfind("--", 0) == 0) die(usage);
    model_dir_ = argv[1];
    for (int i = 2; i < argc; i += 2) {
      const std::string key = argv[i];
      if (key.rfind("--", 0) != 0 || i + 1 >= argc || !values_.count(key.substr(2))) die(usage);
      values_[key.substr(2)] = argv[i + 1];
    }
  }
  const std::string& model_dir() const { return model_dir_; }
  std::string text(const std::string& key) const { return values_.at(key); }
  int64_t integer(const std::string& key) const { return std::stoll(values_.at(key)); }

 private:
  [[noreturn]] static void die(const char* usage) {
    std::fprintf(stderr, "%s\n", usage);
    std::exit(2);
  }
  std::string model_dir_;
  std::map<std::string, std::string> values_;
};

// `count` sequences of `length` token ids drawn uniformly from [100, vocab) with a fixed seed
// (above 100 to stay clear of special tokens in real vocabularies).
inline std::vector<std::vector<int64_t>> random_sequences(int64_t count, int64_t length, int64_t vocab,
                                                           uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> token(100, vocab - 1);
  std::vector<std::vector<int64_t>> out(count, std::vector<int64_t>(length));
  for (auto& s : out) {
    for (auto& t : s) t = token(rng);
  }
  return out;
}

}  // namespace gpujob::bench
