// Fixtures shared by the Speculative Thinking tests (one process and across ranks): where the
// golden checkpoints are, and a stand-in tokenizer for their 256-token vocabulary.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace gpujob::test {

// tests/data/models/<name> under GPUJOB_SOURCE_DIR (ctest sets it), else under the current directory.
inline std::string golden_model_dir(const std::string& name) {
  const char* root = std::getenv("GPUJOB_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/tests/data/models/" + name;
}

// Makes the algorithm's texts appear from a 256-token test vocabulary: some tokens read as the
// trigger ("\n\n"), some as keywords, the rest as plain words; 2 is EOS (a skipped special token).
inline std::string synthetic_decode(const std::vector<int64_t>& tokens) {
  std::string out;
  for (int64_t t : tokens) {
    if (t == 2) continue;
    switch (t % 9) {
      case 0: out += "\n\n"; break;
      case 1: out += " wait"; break;
      case 2: out += " yes"; break;
      case 3: out += " check"; break;
      default: out += " w" + std::to_string(t); break;
    }
  }
  return out;
}

}  // namespace gpujob::test
