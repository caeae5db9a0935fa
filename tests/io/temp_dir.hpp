// A fresh temporary directory per test, removed afterwards (shared by the io tests).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "gpujob-test-XXXXXX").string();
    path = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(file(name), std::ios::binary) << text;
    return file(name);
  }
};

inline std::string source_dir() {
  const char* dir = std::getenv("GPUJOB_SOURCE_DIR");
  // Without ctest's environment: this header sits in <source>/tests/io/.
  return dir ? dir : std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().string();
}
