// JSONL: reading with one-line "file:line: ..." errors, and a durable line appender (fsync per line).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace gpujob::io {

// One parsed line and where it came from, so later checks can name "file:line".
struct JsonlRecord {
  nlohmann::json value;
  int64_t line = 0;  // 1-based line number in the file
};

// Reads every non-blank line of `path` as JSON. A line that does not parse is a one-line error
// "path:17: invalid JSON: ...", except a torn LAST line without its newline (what a crash in
// the middle of an append leaves), which is skipped with a warning.
std::vector<JsonlRecord> read_jsonl(const std::string& path);

// Like read_jsonl, but a missing file is an empty result instead of an error, and with
// `skip_invalid` every line that does not parse is skipped with a warning (for records where a
// lost line only means redoing work, such as chunk progress).
std::vector<JsonlRecord> read_jsonl_if_exists(const std::string& path, bool skip_invalid = false);

// "path:line: key "name": message" helpers for field checks on a JsonlRecord.
[[noreturn]] void fail_at(const std::string& path, int64_t line, const std::string& message);
[[noreturn]] void fail_key(const std::string& path, int64_t line, const std::string& key,
                           const std::string& expected);

// Appends lines to a file so that a crash loses at most the line being written: each append is
// a single write() of the full line (O_APPEND, so concurrent appenders on a POSIX file system
// do not interleave), followed by fsync. Non-copyable owner of the file descriptor.
class JsonlAppender {
 public:
  // With `repair_torn_tail`, a torn last line left by a crash is cut off first (do this only
  // while no other process appends to the same file).
  explicit JsonlAppender(const std::string& path, bool repair_torn_tail = true);
  ~JsonlAppender();
  JsonlAppender(JsonlAppender&& other) noexcept;
  JsonlAppender& operator=(JsonlAppender&& other) noexcept;
  JsonlAppender(const JsonlAppender&) = delete;
  JsonlAppender& operator=(const JsonlAppender&) = delete;

  // Serializes `value` on one line and makes it durable before returning.
  void append(const nlohmann::json& value);
  // Appends several lines with one write() and one fsync.
  void append_all(const std::vector<nlohmann::json>& values);
  const std::string& path() const { return path_; }

 private:
  void write_durably(const std::string& text);
  std::string path_;
  int fd_ = -1;
};

// Writes `text` to `path` atomically (temporary file, fsync, rename), for small files like key.json.
void write_file_atomically(const std::string& path, const std::string& text);
// Reads a whole file; a missing file is a one-line error naming it.
std::string read_text_file(const std::string& path);

}  // namespace gpujob::io
