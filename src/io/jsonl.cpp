#include "gpujob/io/jsonl.hpp"

#include "gpujob/util/error.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace gpujob::io {

namespace {

// The first line of an exception message (nlohmann's messages are already one line; be sure).
std::string first_line(const std::string& s) {
  const auto end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}

std::vector<JsonlRecord> parse_jsonl_text(const std::string& path, const std::string& text, bool skip_invalid) {
  std::vector<JsonlRecord> records;
  size_t begin = 0;
  int64_t line = 0;
  while (begin < text.size()) {
    ++line;
    size_t end = text.find('\n', begin);
    const bool has_newline = end != std::string::npos;
    if (!has_newline) end = text.size();
    std::string content = text.substr(begin, end - begin);
    begin = end + 1;
    if (!content.empty() && content.back() == '\r') content.pop_back();
    if (content.find_first_not_of(" \t") == std::string::npos) continue;
    try {
      records.push_back({nlohmann::json::parse(content), line});
    } catch (const nlohmann::json::exception& e) {
      if (!has_newline) {
        // An append writes the line and its newline in one write(): a last line without its
        // newline that does not parse can only be a write cut short by a crash.
        spdlog::warn("{}:{}: ignoring a torn last line ({} bytes, no newline): the write was interrupted",
                     path, line, content.size());
        break;
      }
      if (skip_invalid) {
        spdlog::warn("{}:{}: skipping a line that is not valid JSON", path, line);
        continue;
      }
      fail_at(path, line, "invalid JSON: " + first_line(e.what()));
    }
  }
  return records;
}

}  // namespace

void fail_at(const std::string& path, int64_t line, const std::string& message) {
  fail(path, ":", line, ": ", message);
}

void fail_key(const std::string& path, int64_t line, const std::string& key, const std::string& expected) {
  fail(path, ":", line, ": key \"", key, "\": ", expected);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GPUJOB_CHECK(in.good(), path, ": cannot open for reading: ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  GPUJOB_CHECK(!in.bad(), path, ": read error");
  return buffer.str();
}

std::vector<JsonlRecord> read_jsonl(const std::string& path) {
  return parse_jsonl_text(path, read_text_file(path), false);
}

std::vector<JsonlRecord> read_jsonl_if_exists(const std::string& path, bool skip_invalid) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return {};
  return parse_jsonl_text(path, read_text_file(path), skip_invalid);
}

JsonlAppender::JsonlAppender(const std::string& path, bool repair_torn_tail) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  GPUJOB_CHECK(fd_ >= 0, path, ": cannot open for appending: ", std::strerror(errno));
  if (!repair_torn_tail) return;
  // A crash may have left a torn last line; appending after it would glue the next record to
  // the fragment and turn a harmless tail into a corrupt middle line. Cut the fragment off.
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  GPUJOB_CHECK(size >= 0, path, ": lseek failed: ", std::strerror(errno));
  if (size == 0) return;
  char last = 0;
  GPUJOB_CHECK(::pread(fd_, &last, 1, size - 1) == 1, path, ": read failed: ", std::strerror(errno));
  if (last == '\n') return;
  off_t keep = size - 1;
  char c = 0;
  while (keep > 0) {
    GPUJOB_CHECK(::pread(fd_, &c, 1, keep - 1) == 1, path, ": read failed: ", std::strerror(errno));
    if (c == '\n') break;
    --keep;
  }
  spdlog::warn("{}: dropping a torn last line of {} bytes left by an interrupted write", path, size - keep);
  GPUJOB_CHECK(::ftruncate(fd_, keep) == 0, path, ": cannot truncate torn line: ", std::strerror(errno));
  GPUJOB_CHECK(::fsync(fd_) == 0, path, ": fsync failed: ", std::strerror(errno));
}

JsonlAppender::~JsonlAppender() {
  if (fd_ >= 0) ::close(fd_);
}

JsonlAppender::JsonlAppender(JsonlAppender&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

JsonlAppender& JsonlAppender::operator=(JsonlAppender&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void JsonlAppender::append(const nlohmann::json& value) { write_durably(value.dump() + "\n"); }

void JsonlAppender::append_all(const std::vector<nlohmann::json>& values) {
  std::string text;
  for (const auto& v : values) text += v.dump() + "\n";
  if (!text.empty()) write_durably(text);
}

void JsonlAppender::write_durably(const std::string& text) {
  GPUJOB_CHECK(fd_ >= 0, path_, ": appender is closed");
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    GPUJOB_CHECK(n > 0, path_, ": write failed: ", std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  GPUJOB_CHECK(::fsync(fd_) == 0, path_, ": fsync failed: ", std::strerror(errno));
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  GPUJOB_CHECK(fd >= 0, tmp, ": cannot open for writing: ", std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      fail(tmp, ": write failed: ", std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  GPUJOB_CHECK(synced, tmp, ": fsync failed: ", std::strerror(errno));
  GPUJOB_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": rename failed: ", std::strerror(errno));
}

}  // namespace gpujob::io
