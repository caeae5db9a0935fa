#include "gpujob/text/bpe_model.hpp"

#include <cstdio>
#include <mutex>
#include <queue>

#include "gpujob/text/utf8.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::text {

BpeModel::BpeModel(const nlohmann::json& spec, const std::string& where) {
  const std::string type = spec.value("type", "BPE");
  GPUJOB_CHECK(type == "BPE", where, ": model type '", type, "' is not supported (expected BPE)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (spec.contains(key) && spec[key].is_string())
      GPUJOB_CHECK(spec[key].get<std::string>().empty(), where, ": model.", key, " '", spec[key].get<std::string>(),
                   "' is not supported (expected empty)");
  }
  const auto& vocab = spec.at("vocab");
  GPUJOB_CHECK(vocab.is_object(), where, ": model.vocab must be an object of token -> id");
  vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int64_t id = it.value().get<int64_t>();
    GPUJOB_CHECK(id >= 0 && id < (1LL << 31), where, ": model.vocab id ", id, " of '", it.key(), "' is out of range");
    vocab_.emplace(it.key(), static_cast<int32_t>(id));
    if (static_cast<std::size_t>(id) >= id_to_token_.size()) id_to_token_.resize(id + 1);
    id_to_token_[id] = it.key();
  }
  const auto& merges = spec.at("merges");
  std::size_t slots = 16;
  while (slots < merges.size() * 2) slots *= 2;
  merge_slots_.assign(slots, MergeSlot{});
  merge_mask_ = slots - 1;
  int32_t rank = 0;
  for (const auto& m : merges) {
    std::string left, right;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      std::size_t space = s.find(' ', 1);  // a token never starts with the separator
      GPUJOB_CHECK(space != std::string::npos, where, ": merge '", s, "' is not of the form 'a b'");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else {
      GPUJOB_CHECK(m.is_array() && m.size() == 2, where, ": merge ", m.dump(), " is not a pair");
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    }
    auto a = vocab_.find(left), b = vocab_.find(right), c = vocab_.find(left + right);
    // A merge whose parts or result are not tokens can never apply (GPT-2's file has one).
    if (a == vocab_.end() || b == vocab_.end() || c == vocab_.end()) {
      ++rank;
      continue;
    }
    uint64_t key = pair_key(a->second, b->second);
    std::size_t slot = mix(key) & merge_mask_;
    while (merge_slots_[slot].key != kEmptyKey && merge_slots_[slot].key != key) slot = (slot + 1) & merge_mask_;
    merge_slots_[slot] = MergeSlot{key, Merge{rank++, c->second}};  // a repeated pair: the last wins, as in HF
  }
  if (spec.contains("unk_token") && spec["unk_token"].is_string()) {
    auto it = vocab_.find(spec["unk_token"].get<std::string>());
    GPUJOB_CHECK(it != vocab_.end(), where, ": model.unk_token '", spec["unk_token"].get<std::string>(),
                 "' is not in model.vocab");
    unk_id_ = it->second;
  }
  fuse_unk_ = spec.value("fuse_unk", false);
  byte_fallback_ = spec.value("byte_fallback", false);
  ignore_merges_ = spec.value("ignore_merges", false);
  const std::string meta = "\xE2\x96\x81";  // ▁
  split_at_metaspace_ = vocab_.count(meta) > 0;
  for (const auto& entry : vocab_) {
    const std::string& token = entry.first;
    for (std::size_t p = token.find(meta, 1); split_at_metaspace_ && p != std::string::npos; p = token.find(meta, p + 1))
      if (p < 3 || token.compare(p - 3, 3, meta) != 0) split_at_metaspace_ = false;
  }
  char_ids_.assign(0x10000, -1);
  for (const auto& [token, id] : vocab_) {
    std::size_t pos = 0;
    char32_t cp = next_code_point(token, pos);
    if (pos == token.size() && cp < 0x10000 && is_valid_utf8(token)) char_ids_[cp] = id;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto it = vocab_.find(name);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string& BpeModel::id_to_token(int32_t id) const {
  static const std::string empty;
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()) return empty;
  return id_to_token_[id];
}

namespace {
uint64_t hash_word(std::string_view word) {  // FNV-1a, never 0 (0 marks an empty slot)
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : word) h = (h ^ c) * 0x100000001B3ull;
  return h | 1;
}
}  // namespace

bool BpeModel::cache_find(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const {
  CacheShard& shard = cache_[hash % kCacheShards];
  std::shared_lock lock(shard.mutex);
  if (shard.slots.empty()) return false;
  for (std::size_t slot = (hash >> 8) & (kShardSlots - 1);; slot = (slot + 1) & (kShardSlots - 1)) {
    const CacheSlot& s = shard.slots[slot];
    if (s.hash == 0) return false;
    if (s.hash == hash && s.key_length == word.size() &&
        std::char_traits<char>::compare(shard.keys.data() + s.key_offset, word.data(), word.size()) == 0) {
      out.insert(out.end(), shard.ids.begin() + s.ids_offset, shard.ids.begin() + s.ids_offset + s.ids_length);
      return true;
    }
  }
}

void BpeModel::cache_insert(std::string_view word, uint64_t hash, const int32_t* ids, std::size_t n) const {
  CacheShard& shard = cache_[hash % kCacheShards];
  std::unique_lock lock(shard.mutex);
  if (shard.entries >= kShardCapacity) return;
  if (shard.slots.empty()) shard.slots.resize(kShardSlots);
  std::size_t slot = (hash >> 8) & (kShardSlots - 1);
  for (;; slot = (slot + 1) & (kShardSlots - 1)) {
    const CacheSlot& s = shard.slots[slot];
    if (s.hash == 0) break;
    if (s.hash == hash && s.key_length == word.size() &&
        std::char_traits<char>::compare(shard.keys.data() + s.key_offset, word.data(), word.size()) == 0)
      return;  // another thread got there first
  }
  CacheSlot& s = shard.slots[slot];
  s.hash = hash;
  s.key_offset = static_cast<uint32_t>(shard.keys.size());
  s.key_length = static_cast<uint32_t>(word.size());
  s.ids_offset = static_cast<uint32_t>(shard.ids.size());
  s.ids_length = static_cast<uint32_t>(n);
  shard.keys.append(word);
  shard.ids.insert(shard.ids.end(), ids, ids + n);
  ++shard.entries;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {  // Llama 3: a word that is a token is taken whole, whatever the merges say
    auto it = vocab_.find(std::string(word));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (split_at_metaspace_ && word.size() > 3) {
    // Cut before each "▁" that follows another character; encode the pieces one by one.
    static const std::string_view meta = "\xE2\x96\x81";
    std::size_t start = 0;
    for (std::size_t p = word.find(meta, 1); p != std::string_view::npos; p = word.find(meta, p + 1)) {
      if (p >= 3 && word.compare(p - 3, 3, meta) == 0) continue;  // inside a run of ▁
      if (p == start) continue;
      encode_piece(word.substr(start, p - start), out);
      start = p;
    }
    if (start > 0) {
      encode_piece(word.substr(start), out);
      return;
    }
  }
  encode_piece(word, out);
}

void BpeModel::encode_piece(std::string_view word, std::vector<int32_t>& out) const {
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  const uint64_t hash = cacheable ? hash_word(word) : 0;
  if (cacheable && cache_find(word, hash, out)) return;
  const std::size_t before = out.size();
  merge_word(word, out);
  if (cacheable) cache_insert(word, hash, out.data() + before, out.size() - before);
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // neighbours in the linked list, -1 at the ends
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto push = [&](int32_t id) {
    int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, true});
    if (index > 0) symbols[index - 1].next = index;
  };
  bool last_was_unk = false;
  std::string ch;
  for (std::size_t pos = 0; pos < word.size();) {
    std::size_t start = pos;
    char32_t cp = next_code_point(word, pos);
    if (cp < 0x10000 && char_ids_[cp] >= 0 && !(cp == 0xFFFD && pos - start != 3)) {
      push(char_ids_[cp]);
      last_was_unk = false;
      continue;
    }
    ch.assign(word.substr(start, pos - start));
    auto it = cp < 0x10000 ? vocab_.end() : vocab_.find(ch);
    if (it != vocab_.end()) {
      push(it->second);
      last_was_unk = false;
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : ch) all = all && byte_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : ch) push(byte_ids_[b]);
        last_was_unk = false;
        continue;
      }
    }
    if (unk_id_) {
      if (!(fuse_unk_ && last_was_unk)) push(*unk_id_);
      last_was_unk = true;
    }
  }

  struct Candidate {
    int32_t rank, left, right_id, left_id, result;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int32_t left) {
    if (left < 0) return;
    int32_t right = symbols[left].next;
    if (right < 0) return;
    if (const Merge* m = find_merge(symbols[left].id, symbols[right].id))
      queue.push({m->rank, left, symbols[right].id, symbols[left].id, m->result});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);
  while (!queue.empty()) {
    Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[c.left];
    // Stale entries: the left symbol was absorbed or changed, or its neighbour is a different one.
    if (!left.alive || left.id != c.left_id || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    if (right.id != c.right_id) continue;
    left.id = c.result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    consider(left.prev);
    consider(c.left);
  }
  for (const Symbol& s : symbols)
    if (s.alive) out.push_back(s.id);
}

}  // namespace gpujob::text
