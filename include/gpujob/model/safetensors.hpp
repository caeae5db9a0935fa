// Safetensors: a memory-mapped reader (one file or a sharded index) and a small writer.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gpujob::model {

// Where one tensor lies in a mapped file.
struct SafetensorsEntry {
  std::string dtype;            // as written: "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;           // byte offset from the start of the data section
  uint64_t end = 0;             // one past the last byte
};

// One memory-mapped .safetensors file. The header is checked on open (dtypes, shapes and
// offsets against the file size); tensor data is only touched when a tensor is read.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }

  // A CPU tensor aliasing the mapped bytes (read-only, valid while this file lives).
  at::Tensor view(const std::string& name) const;

 private:
  std::string path_;
  int fd_ = -1;
  void* map_ = nullptr;
  uint64_t size_ = 0;
  uint64_t data_offset_ = 0;  // 8 + header length
  std::map<std::string, SafetensorsEntry> entries_;
};

// All tensors of a checkpoint: model.safetensors, or the shards named by
// model.safetensors.index.json. Each tensor is converted on its own (from the mapping straight
// to the requested dtype and device), so host memory never holds two full copies.
class SafetensorsArchive {
 public:
  // `model_dir` holds model.safetensors or model.safetensors.index.json.
  static SafetensorsArchive open_directory(const std::string& model_dir);
  explicit SafetensorsArchive(const std::vector<std::string>& files);

  std::vector<std::string> names() const;       // every tensor, sorted
  bool contains(const std::string& name) const;
  const SafetensorsEntry& entry(const std::string& name) const;
  const std::string& file_of(const std::string& name) const;  // path of the file holding it
  at::Tensor view(const std::string& name) const;             // aliasing CPU view

  // A fresh tensor (never aliasing the mapping) in `dtype` on `device`. When `shard_count` > 1
  // only slice `shard_index` of dimension `shard_dim` is converted.
  at::Tensor load(const std::string& name, at::ScalarType dtype, at::Device device,
                  int64_t shard_dim = 0, int64_t shard_index = 0, int64_t shard_count = 1) const;

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> index_;  // tensor name -> files_ index
};

// Writes `tensors` (contiguous CPU copies are made as needed) to a .safetensors file.
void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors);

// Safetensors dtype names <-> ATen scalar types.
at::ScalarType safetensors_dtype(const std::string& name, const std::string& context);
std::string safetensors_dtype_name(at::ScalarType type);

}  // namespace gpujob::model
