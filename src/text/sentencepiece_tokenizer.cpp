#include "gpujob/text/sentencepiece_tokenizer.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "gpujob/text/added_vocabulary.hpp"
#include "gpujob/util/error.hpp"

namespace gpujob::text {
namespace {

// libsentencepiece lives in a module of its own (src/sentencepiece_module): Debian's build embeds
// and exports a protobuf that clashes with libtorch's, so it is loaded locally and deep-bound, and
// reached through plain C functions. Found through GPUJOB_SENTENCEPIECE_MODULE, next to the
// executable, or where the build put it.
struct Module {
  void* (*load)(const char*, char*, int) = nullptr;
  void (*free)(void*) = nullptr;
  int (*piece_size)(void*) = nullptr;
  int (*is_control)(void*, int) = nullptr;
  int (*bos_id)(void*) = nullptr;
  int (*eos_id)(void*) = nullptr;
  int (*unk_id)(void*) = nullptr;
  int (*pad_id)(void*) = nullptr;
  int (*piece_to_id)(void*, const char*, int) = nullptr;
  int (*id_to_piece)(void*, int, char*, int) = nullptr;
  int (*encode)(void*, const char*, int, int*, int) = nullptr;
  int (*decode)(void*, const int*, int, char*, int) = nullptr;
};

std::string executable_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

const Module& module() {
  static Module m;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("GPUJOB_SENTENCEPIECE_MODULE")) candidates.push_back(env);
    const std::string dir = executable_dir();
    if (!dir.empty()) {
      candidates.push_back(dir + "/libgpujob_sentencepiece.so");
      candidates.push_back(dir + "/../libgpujob_sentencepiece.so");
    }
#ifdef GPUJOB_SENTENCEPIECE_MODULE
    candidates.push_back(GPUJOB_SENTENCEPIECE_MODULE);
#endif
    void* handle = nullptr;
    for (const auto& path : candidates) {
      if (!std::filesystem::exists(path)) continue;
      handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (handle != nullptr) break;
      error = path + ": " + dlerror();
    }
    if (handle == nullptr) {
      if (error.empty()) error = "libgpujob_sentencepiece.so not found (set GPUJOB_SENTENCEPIECE_MODULE)";
      return;
    }
    auto bind = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(handle, name));
      if (fn == nullptr && error.empty()) error = std::string("symbol ") + name + " missing in the SentencePiece module";
    };
    bind(m.load, "gpujob_sp_load");
    bind(m.free, "gpujob_sp_free");
    bind(m.piece_size, "gpujob_sp_piece_size");
    bind(m.is_control, "gpujob_sp_is_control");
    bind(m.bos_id, "gpujob_sp_bos_id");
    bind(m.eos_id, "gpujob_sp_eos_id");
    bind(m.unk_id, "gpujob_sp_unk_id");
    bind(m.pad_id, "gpujob_sp_pad_id");
    bind(m.piece_to_id, "gpujob_sp_piece_to_id");
    bind(m.id_to_piece, "gpujob_sp_id_to_piece");
    bind(m.encode, "gpujob_sp_encode");
    bind(m.decode, "gpujob_sp_decode");
  });
  GPUJOB_CHECK(m.load != nullptr && error.empty(), "SentencePiece tokenizer.model support: ", error);
  return m;
}

}  // namespace

// The subset of SentencePieceProcessor the tokenizer uses, over the module's C functions.
class SentencePieceTokenizer::Processor {
 public:
  explicit Processor(const std::string& path) : m_(module()) {
    char error[512] = {0};
    handle_ = m_.load(path.c_str(), error, sizeof error);
    GPUJOB_CHECK(handle_ != nullptr, path, ": cannot load SentencePiece model: ", error);
  }
  ~Processor() { m_.free(handle_); }
  Processor(const Processor&) = delete;
  Processor& operator=(const Processor&) = delete;

  int GetPieceSize() const { return m_.piece_size(handle_); }
  bool IsControl(int id) const { return m_.is_control(handle_, id) != 0; }
  int bos_id() const { return m_.bos_id(handle_); }
  int eos_id() const { return m_.eos_id(handle_); }
  int unk_id() const { return m_.unk_id(handle_); }
  int pad_id() const { return m_.pad_id(handle_); }
  int PieceToId(const std::string& piece) const {
    return m_.piece_to_id(handle_, piece.data(), static_cast<int>(piece.size()));
  }
  std::string IdToPiece(int id) const {
    std::string out(64, '\0');
    int n = m_.id_to_piece(handle_, id, out.data(), static_cast<int>(out.size()));
    if (n > static_cast<int>(out.size())) {
      out.resize(n);
      n = m_.id_to_piece(handle_, id, out.data(), n);
    }
    out.resize(std::max(n, 0));
    return out;
  }
  // False when SentencePiece reports a failure.
  bool Encode(const std::string& text, std::vector<int>* ids) const {
    ids->assign(text.size() + 8, 0);
    int n = m_.encode(handle_, text.data(), static_cast<int>(text.size()), ids->data(), static_cast<int>(ids->size()));
    if (n > static_cast<int>(ids->size())) {
      ids->assign(n, 0);
      n = m_.encode(handle_, text.data(), static_cast<int>(text.size()), ids->data(), n);
    }
    if (n < 0) return false;
    ids->resize(n);
    return true;
  }
  bool Decode(const std::vector<int>& ids, std::string* text) const {
    text->assign(ids.size() * 8 + 16, '\0');
    int n = m_.decode(handle_, ids.data(), static_cast<int>(ids.size()), text->data(), static_cast<int>(text->size()));
    if (n > static_cast<int>(text->size())) {
      text->assign(n, '\0');
      n = m_.decode(handle_, ids.data(), static_cast<int>(ids.size()), text->data(), n);
    }
    if (n < 0) return false;
    text->resize(n);
    return true;
  }

 private:
  const Module& m_;
  void* handle_ = nullptr;
};

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path, TokenizerConfig config)
    : Tokenizer(std::move(config)), sp_(std::make_unique<Processor>(model_path)), path_(model_path) {
  std::vector<AddedToken> added;
  for (const auto& [id, token] : config_.added_tokens) {
    added.push_back(token);
    if (token.special) special_ids_.insert(id);
  }
  // SentencePiece control symbols (<s>, </s>, ...) are special too.
  for (int id = 0; id < sp_->GetPieceSize(); ++id)
    if (sp_->IsControl(id)) special_ids_.insert(id);
  added_ = std::make_unique<AddedVocabulary>(added, false);
  // Defaults of HF's Llama-style SentencePiece tokenizers: BOS yes, EOS no.
  if (config_.bos_token.empty() && sp_->bos_id() >= 0) config_.bos_token = sp_->IdToPiece(sp_->bos_id());
  if (config_.eos_token.empty() && sp_->eos_id() >= 0) config_.eos_token = sp_->IdToPiece(sp_->eos_id());
  if (config_.unk_token.empty() && sp_->unk_id() >= 0) config_.unk_token = sp_->IdToPiece(sp_->unk_id());
  if (config_.pad_token.empty() && sp_->pad_id() >= 0) config_.pad_token = sp_->IdToPiece(sp_->pad_id());
  resolve_special_tokens();
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::size_t SentencePieceTokenizer::vocab_size() const {
  std::size_t n = static_cast<std::size_t>(sp_->GetPieceSize());
  for (const auto& [id, token] : config_.added_tokens) n = std::max(n, static_cast<std::size_t>(id) + 1);
  return n;
}

std::optional<int32_t> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  for (const auto& [id, t] : config_.added_tokens)
    if (t.content == token) return id;
  int id = sp_->PieceToId(std::string(token));
  // PieceToId answers unk for unknown pieces; only the unk piece itself maps there.
  if (id == sp_->unk_id() && token != sp_->IdToPiece(id)) return std::nullopt;
  return id;
}

std::string SentencePieceTokenizer::id_to_token(int32_t id) const {
  auto it = config_.added_tokens.find(id);
  if (it != config_.added_tokens.end()) return it->second.content;
  if (id < 0 || id >= sp_->GetPieceSize()) return "";
  return sp_->IdToPiece(id);
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens && config_.add_bos_token.value_or(true) && bos_id_) ids.push_back(*bos_id_);
  for (const TextSegment& s : added_->split(text)) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      continue;
    }
    std::vector<int> piece;
    GPUJOB_CHECK(sp_->Encode(std::string(text.substr(s.begin, s.end - s.begin)), &piece), path_,
                 ": SentencePiece encode failed");
    ids.insert(ids.end(), piece.begin(), piece.end());
  }
  if (add_special_tokens && config_.add_eos_token.value_or(false) && eos_id_) ids.push_back(*eos_id_);
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::string out;
  std::vector<int> run;  // consecutive model ids decode together (byte pieces join up)
  auto flush = [&]() {
    if (run.empty()) return;
    std::string piece;
    GPUJOB_CHECK(sp_->Decode(run, &piece), path_, ": SentencePiece decode failed");
    out += piece;
    run.clear();
  };
  for (int32_t id : ids) {
    auto it = config_.added_tokens.find(id);
    if (it != config_.added_tokens.end() || (id >= 0 && id < sp_->GetPieceSize() && sp_->IsControl(id))) {
      if (skip_special_tokens && special_ids_.count(id)) continue;
      flush();
      out += id_to_token(id);
      continue;
    }
    if (id >= 0 && id < sp_->GetPieceSize()) run.push_back(id);
  }
  flush();
  return out;
}

}  // namespace gpujob::text
