// Wire format of coordinator messages: integers and length-prefixed strings in one byte buffer.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "gpujob/util/error.hpp"

namespace gpujob::cluster::wire {

enum Tag : int { kRequest = 101, kReply = 102, kComplete = 103, kFail = 104, kStop = 105, kBye = 106, kSummary = 107 };
enum ReplyKind : int64_t { kChunk = 0, kDone = 1, kStopped = 2 };

class Writer {
 public:
  Writer& put(int64_t v) {
    buffer_.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Writer& put(const std::string& s) {
    put(static_cast<int64_t>(s.size()));
    buffer_.append(s);
    return *this;
  }
  const std::string& bytes() const { return buffer_; }

 private:
  std::string buffer_;
};

class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}
  int64_t integer() {
    int64_t v = 0;
    GPUJOB_CHECK(offset_ + sizeof v <= bytes_.size(), "coordinator message truncated");
    std::memcpy(&v, bytes_.data() + offset_, sizeof v);
    offset_ += sizeof v;
    return v;
  }
  std::string text() {
    const int64_t n = integer();
    GPUJOB_CHECK(n >= 0 && offset_ + static_cast<size_t>(n) <= bytes_.size(), "coordinator message truncated");
    std::string s = bytes_.substr(offset_, n);
    offset_ += n;
    return s;
  }

 private:
  const std::string& bytes_;
  size_t offset_ = 0;
};

}  // namespace gpujob::cluster::wire
