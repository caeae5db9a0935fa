// Safetensors reader (mmap) and writer.
#include "gpujob/model/safetensors.hpp"

#include "gpujob/util/error.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>

namespace gpujob::model {
namespace {

// Headers larger than this are certainly not safetensors (the format caps them at 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

std::string dirname_join(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace

at::ScalarType safetensors_dtype(const std::string& name, const std::string& context) {
  if (name == "F64") return at::kDouble;
  if (name == "F32") return at::kFloat;
  if (name == "F16") return at::kHalf;
  if (name == "BF16") return at::kBFloat16;
  if (name == "I64") return at::kLong;
  if (name == "I32") return at::kInt;
  if (name == "I16") return at::kShort;
  if (name == "I8") return at::kChar;
  if (name == "U8") return at::kByte;
  if (name == "BOOL") return at::kBool;
  fail(context, ": unsupported safetensors dtype \"", name,
       "\" (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)");
}

std::string safetensors_dtype_name(at::ScalarType type) {
  switch (type) {
    case at::kDouble: return "F64";
    case at::kFloat: return "F32";
    case at::kHalf: return "F16";
    case at::kBFloat16: return "BF16";
    case at::kLong: return "I64";
    case at::kInt: return "I32";
    case at::kShort: return "I16";
    case at::kChar: return "I8";
    case at::kByte: return "U8";
    case at::kBool: return "BOOL";
    default: fail("safetensors: cannot write tensors of type ", c10::toString(type));
  }
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  GPUJOB_CHECK(fd_ >= 0, path, ": cannot open safetensors file: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    ::close(fd_);
    fail(path, ": cannot stat: ", std::strerror(errno));
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd_);
    fail(path, ": not a safetensors file (", size_, " bytes, the 8-byte header length is missing)");
  }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    ::close(fd_);
    fail(path, ": mmap failed: ", std::strerror(errno));
  }
  try {
    uint64_t header_len = 0;
    std::memcpy(&header_len, map_, 8);  // little-endian on every supported host
    GPUJOB_CHECK(header_len <= kMaxHeaderBytes && 8 + header_len <= size_, path,
                 ": header length ", header_len, " does not fit the file size ", size_);
    data_offset_ = 8 + header_len;
    const char* text = static_cast<const char*>(map_) + 8;
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(text, text + header_len);
    } catch (const nlohmann::json::exception& e) {
      fail(path, ": header is not valid JSON: ", e.what());
    }
    GPUJOB_CHECK(header.is_object(), path, ": header is not a JSON object");
    const uint64_t data_size = size_ - data_offset_;
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") continue;
      const std::string context = path + ": tensor " + it.key();
      const auto& value = it.value();
      GPUJOB_CHECK(value.is_object() && value.contains("dtype") && value.contains("shape") &&
                       value.contains("data_offsets"),
                   context, ": expected {dtype, shape, data_offsets}");
      SafetensorsEntry entry;
      entry.dtype = value["dtype"].get<std::string>();
      entry.shape = value["shape"].get<std::vector<int64_t>>();
      const auto offsets = value["data_offsets"].get<std::vector<uint64_t>>();
      GPUJOB_CHECK(offsets.size() == 2, context, ": data_offsets must have two entries");
      entry.begin = offsets[0];
      entry.end = offsets[1];
      const auto type = safetensors_dtype(entry.dtype, context);
      uint64_t numel = 1;
      for (int64_t d : entry.shape) {
        GPUJOB_CHECK(d >= 0, context, ": negative dimension in shape ", shape_string(entry.shape));
        numel *= static_cast<uint64_t>(d);
      }
      const uint64_t expected = numel * c10::elementSize(type);
      GPUJOB_CHECK(entry.begin <= entry.end && entry.end <= data_size, context, ": data_offsets [",
                   entry.begin, ", ", entry.end, "] lie outside the data section of ", data_size,
                   " bytes");
      GPUJOB_CHECK(entry.end - entry.begin == expected, context, ": ", entry.dtype, " ",
                   shape_string(entry.shape), " needs ", expected, " bytes, data_offsets give ",
                   entry.end - entry.begin);
      entries_.emplace(it.key(), std::move(entry));
    }
  } catch (...) {
    ::munmap(map_, size_);
    ::close(fd_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
  if (fd_ >= 0) ::close(fd_);
}

at::Tensor SafetensorsFile::view(const std::string& name) const {
  auto it = entries_.find(name);
  GPUJOB_CHECK(it != entries_.end(), path_, ": no tensor named ", name);
  const auto& e = it->second;
  const auto type = safetensors_dtype(e.dtype, path_ + ": tensor " + name);
  // from_blob never writes through the pointer unless the caller does; the mapping is
  // read-only, so callers only ever copy out of it (SafetensorsArchive::load).
  auto* data = static_cast<char*>(map_) + data_offset_ + e.begin;
  return at::from_blob(data, e.shape, at::TensorOptions().dtype(type).device(at::kCPU));
}

SafetensorsArchive::SafetensorsArchive(const std::vector<std::string>& files) {
  for (const auto& path : files) {
    auto file = std::make_shared<SafetensorsFile>(path);
    for (const auto& kv : file->entries()) {
      auto [it, inserted] = index_.emplace(kv.first, files_.size());
      GPUJOB_CHECK(inserted, path, ": tensor ", kv.first, " is also in ",
                   files_[it->second]->path());
    }
    files_.push_back(std::move(file));
  }
}

SafetensorsArchive SafetensorsArchive::open_directory(const std::string& model_dir) {
  const std::string single = dirname_join(model_dir, "model.safetensors");
  const std::string index_path = dirname_join(model_dir, "model.safetensors.index.json");
  if (file_exists(index_path)) {
    std::ifstream in(index_path);
    GPUJOB_CHECK(in.good(), index_path, ": cannot open");
    nlohmann::json index;
    try {
      in >> index;
    } catch (const nlohmann::json::exception& e) {
      fail(index_path, ": not valid JSON: ", e.what());
    }
    GPUJOB_CHECK(index.contains("weight_map") && index["weight_map"].is_object(), index_path,
                 ": missing key weight_map");
    std::set<std::string> shards;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it)
      shards.insert(it.value().get<std::string>());
    std::vector<std::string> files;
    for (const auto& s : shards) files.push_back(dirname_join(model_dir, s));
    SafetensorsArchive archive(files);
    // Every tensor the index names must be in the shard it names.
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      GPUJOB_CHECK(archive.contains(it.key()), index_path, ": tensor ", it.key(),
                   " is listed in weight_map but missing from ", it.value().get<std::string>());
    }
    return archive;
  }
  GPUJOB_CHECK(file_exists(single), model_dir,
               ": no model.safetensors or model.safetensors.index.json");
  return SafetensorsArchive({single});
}

std::vector<std::string> SafetensorsArchive::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& kv : index_) out.push_back(kv.first);
  return out;
}

bool SafetensorsArchive::contains(const std::string& name) const { return index_.count(name) != 0; }

const SafetensorsEntry& SafetensorsArchive::entry(const std::string& name) const {
  auto it = index_.find(name);
  GPUJOB_CHECK(it != index_.end(), "checkpoint has no tensor named ", name);
  return files_[it->second]->entries().at(name);
}

const std::string& SafetensorsArchive::file_of(const std::string& name) const {
  auto it = index_.find(name);
  GPUJOB_CHECK(it != index_.end(), "checkpoint has no tensor named ", name);
  return files_[it->second]->path();
}

at::Tensor SafetensorsArchive::view(const std::string& name) const {
  auto it = index_.find(name);
  GPUJOB_CHECK(it != index_.end(), "checkpoint has no tensor named ", name);
  return files_[it->second]->view(name);
}

at::Tensor SafetensorsArchive::load(const std::string& name, at::ScalarType dtype,
                                    at::Device device, int64_t shard_dim, int64_t shard_index,
                                    int64_t shard_count) const {
  at::Tensor source = view(name);
  if (shard_count > 1) {
    const int64_t size = source.size(shard_dim);
    GPUJOB_CHECK(size % shard_count == 0, file_of(name), ": tensor ", name, " dimension ",
                 shard_dim, " (", size, ") does not divide into ", shard_count, " shards");
    const int64_t part = size / shard_count;
    source = source.narrow(shard_dim, shard_index * part, part);
  }
  // copy=true: the result never aliases the read-only mapping, even when dtype and device
  // already match. Only this one tensor is materialised.
  return source.to(at::TensorOptions().dtype(dtype).device(device), /*non_blocking=*/false,
                   /*copy=*/true)
      .contiguous();
}

void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<at::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& kv : tensors) {
    at::Tensor t = kv.second.to(at::kCPU).contiguous();
    const uint64_t bytes = t.numel() * t.element_size();
    header[kv.first] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                        {"shape", t.sizes().vec()},
                        {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    contiguous.push_back(t);
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // keep the data 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  GPUJOB_CHECK(out.good(), path, ": cannot open for writing");
  const uint64_t header_len = text.size();
  out.write(reinterpret_cast<const char*>(&header_len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : contiguous)
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
  GPUJOB_CHECK(out.good(), path, ": write failed");
}

}  // namespace gpujob::model
