// The BPE model of HF tokenizer.json: vocabulary, ranked merges, byte fallback and unknown token,
// encoding one pre-tokenized word at a time with a cache of recent words.
#pragma once

#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace gpujob::text {

class BpeModel {
 public:
  // From the "model" object of tokenizer.json (type BPE); merges may be "a b" strings or [a, b]
  // pairs. `where` names the file for error messages.
  BpeModel(const nlohmann::json& spec, const std::string& where);
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of one word (already byte-level mapped or ▁-replaced as the pipeline says).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // Empty string for ids outside the model's vocabulary.
  const std::string& id_to_token(int32_t id) const;
  // One past the largest id of the model's vocabulary.
  std::size_t size() const { return id_to_token_.size(); }

 private:
  struct Merge {
    int32_t rank;    // priority: lower merges first
    int32_t result;  // id of the merged token
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  void encode_piece(std::string_view word, std::vector<int32_t>& out) const;  // cache, then merge_word
  // The merge of (a, b), or nullptr. Open addressing keeps a lookup at about one cache miss.
  const Merge* find_merge(int32_t a, int32_t b) const {
    uint64_t key = pair_key(a, b);
    for (std::size_t slot = mix(key) & merge_mask_;; slot = (slot + 1) & merge_mask_) {
      const MergeSlot& s = merge_slots_[slot];
      if (s.key == key) return &s.merge;
      if (s.key == kEmptyKey) return nullptr;
    }
  }
  static uint64_t mix(uint64_t x) {  // splitmix64 finalizer: spreads (a, b) pairs over the table
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }
  static constexpr uint64_t kEmptyKey = ~0ull;
  struct MergeSlot {
    uint64_t key = kEmptyKey;
    Merge merge{0, 0};
  };

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<MergeSlot> merge_slots_;  // power-of-two size, at most half full
  std::size_t merge_mask_ = 0;
  std::vector<int32_t> char_ids_;       // id of each single-character token below U+10000, -1 if none
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  // SentencePiece-style models see whole sentences as one word. When no token contains "▁" after
  // another character, no merge can cross the start of a "▁word", so the sentence is encoded
  // word by word (and the words cached) with the same result.
  bool split_at_metaspace_ = false;
  int32_t byte_ids_[256];  // id of "<0xXX>" per byte, -1 when absent

  // Words seen before, in flat open-addressing tables with pooled keys and ids (a lookup costs
  // about three cache misses, fewer than a node-based map); bounded so that a huge corpus cannot
  // grow them without limit. The cache is cut into shards by hash, each with its own lock, so that
  // many encoding threads do not all contend on one lock's cache line.
  struct CacheSlot {
    uint64_t hash = 0;  // 0: empty
    uint32_t key_offset = 0, key_length = 0;
    uint32_t ids_offset = 0, ids_length = 0;
  };
  struct CacheShard {
    std::shared_mutex mutex;
    std::vector<CacheSlot> slots;  // allocated on first insert
    std::string keys;
    std::vector<int32_t> ids;
    std::size_t entries = 0;
  };
  bool cache_find(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const;
  void cache_insert(std::string_view word, uint64_t hash, const int32_t* ids, std::size_t n) const;
  static constexpr std::size_t kCacheShards = 16;
  static constexpr std::size_t kShardSlots = 1u << 14;     // power of two
  static constexpr std::size_t kShardCapacity = 9000;      // entries, keeps a table under 60% full
  mutable CacheShard cache_[kCacheShards];
  static constexpr std::size_t kCacheMaxWordBytes = 128;
};

}  // namespace gpujob::text
