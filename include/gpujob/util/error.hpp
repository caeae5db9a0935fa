// Error type and check macros: every failure carries its context (file, key, tensor, rank) in one line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace gpujob {

// The one exception type gpujob throws for user-facing failures. `what()` is a complete,
// single-line message that `main` prints as is.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
inline void append_all(std::ostringstream&) {}
template <typename T, typename... Rest>
void append_all(std::ostringstream& out, const T& first, const Rest&... rest) {
  out << first;
  append_all(out, rest...);
}
}  // namespace detail

// Builds a message from any streamable parts: concat("layer ", 3, " of ", 4).
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  detail::append_all(out, parts...);
  return out.str();
}

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(concat(parts...));
}

}  // namespace gpujob

// GPUJOB_CHECK(cond, parts...): throws gpujob::Error built from parts when cond is false.
#define GPUJOB_CHECK(cond, ...)          \
  do {                                   \
    if (!(cond)) ::gpujob::fail(__VA_ARGS__); \
  } while (0)
