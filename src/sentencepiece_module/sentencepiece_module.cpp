// gpujob's SentencePiece module: libsentencepiece behind a plain C interface, in a shared module
// that the text layer loads with dlopen(RTLD_LOCAL | RTLD_DEEPBIND).
//
// Why a module: Debian's libsentencepiece carries its own copy of protobuf (3.14) and exports its
// symbols, while libtorch loads the system libprotobuf (3.21). Linked into one process the two
// copies interpose on each other and the program crashes before main. Loaded locally and
// deep-bound, SentencePiece uses its own protobuf and libtorch never sees it.
#include <sentencepiece_processor.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

int copy_out(const std::string& text, char* buffer, int capacity) {
  const int n = static_cast<int>(text.size());
  if (buffer != nullptr && capacity > 0) std::memcpy(buffer, text.data(), std::min(n, capacity));
  return n;
}

}  // namespace

extern "C" {

// Returns a processor, or null with the reason in `error` (NUL-terminated, truncated to capacity).
void* gpujob_sp_load(const char* path, char* error, int capacity) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  const auto status = sp->Load(path);
  if (!status.ok()) {
    const std::string reason = status.ToString();
    std::strncpy(error, reason.c_str(), static_cast<size_t>(capacity));
    if (capacity > 0) error[capacity - 1] = '\0';
    delete sp;
    return nullptr;
  }
  return sp;
}

void gpujob_sp_free(void* sp) { delete static_cast<sentencepiece::SentencePieceProcessor*>(sp); }

int gpujob_sp_piece_size(void* sp) { return static_cast<sentencepiece::SentencePieceProcessor*>(sp)->GetPieceSize(); }
// libsentencepiece indexes its pieces without a bounds check here: out-of-range ids are answered
// by this module instead of reaching it.
static bool valid_id(void* sp, int id) {
  return id >= 0 && id < static_cast<sentencepiece::SentencePieceProcessor*>(sp)->GetPieceSize();
}

int gpujob_sp_is_control(void* sp, int id) {
  return valid_id(sp, id) && static_cast<sentencepiece::SentencePieceProcessor*>(sp)->IsControl(id);
}
int gpujob_sp_bos_id(void* sp) { return static_cast<sentencepiece::SentencePieceProcessor*>(sp)->bos_id(); }
int gpujob_sp_eos_id(void* sp) { return static_cast<sentencepiece::SentencePieceProcessor*>(sp)->eos_id(); }
int gpujob_sp_unk_id(void* sp) { return static_cast<sentencepiece::SentencePieceProcessor*>(sp)->unk_id(); }
int gpujob_sp_pad_id(void* sp) { return static_cast<sentencepiece::SentencePieceProcessor*>(sp)->pad_id(); }

int gpujob_sp_piece_to_id(void* sp, const char* piece, int length) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(sp)->PieceToId(std::string(piece, length));
}

// Writes the piece into buffer (up to capacity bytes) and returns its full length.
int gpujob_sp_id_to_piece(void* sp, int id, char* buffer, int capacity) {
  if (!valid_id(sp, id)) return copy_out(std::string(), buffer, capacity);
  return copy_out(static_cast<sentencepiece::SentencePieceProcessor*>(sp)->IdToPiece(id), buffer, capacity);
}

// Writes up to capacity ids and returns how many the text has; -1 on failure.
int gpujob_sp_encode(void* sp, const char* text, int length, int* ids, int capacity) {
  std::vector<int> out;
  if (!static_cast<sentencepiece::SentencePieceProcessor*>(sp)->Encode(std::string(text, length), &out).ok()) return -1;
  for (int i = 0; i < static_cast<int>(out.size()) && i < capacity; ++i) ids[i] = out[i];
  return static_cast<int>(out.size());
}

// Writes up to capacity bytes of the decoded text and returns its full length; -1 on failure.
int gpujob_sp_decode(void* sp, const int* ids, int count, char* buffer, int capacity) {
  std::string text;
  for (int i = 0; i < count; ++i) {
    if (!valid_id(sp, ids[i])) return -1;
  }
  const std::vector<int> in(ids, ids + count);
  if (!static_cast<sentencepiece::SentencePieceProcessor*>(sp)->Decode(in, &text).ok()) return -1;
  return copy_out(text, buffer, capacity);
}

}  // extern "C"
