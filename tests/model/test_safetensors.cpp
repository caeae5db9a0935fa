// Safetensors: writer/reader round trip, dtype conversion, sharded index, TP slices, corrupt files.
#include "gpujob/model/safetensors.hpp"
#include "gpujob/util/error.hpp"
#include "model/tiny_model.hpp"

#include <fstream>

// Last: libtorch's logging header defines its own CHECK, which Catch's must replace.
#include "catch.hpp"

using namespace gpujob::model;

namespace {

void write_raw(const std::string& path, const std::string& header, size_t data_bytes) {
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << std::string(data_bytes, '\0');
}

}  // namespace

TEST_CASE("safetensors round trip keeps every dtype, shape and value") {
  const std::string dir = tiny::make_temp_dir();
  std::map<std::string, at::Tensor> tensors = {
      {"f32", at::randn({3, 5})},
      {"f16", at::randn({4}).to(at::kHalf)},
      {"bf16", at::randn({2, 2, 2}).to(at::kBFloat16)},
      {"i64", at::arange(7, at::kLong)},
      {"i32", at::arange(3, at::kInt)},
      {"u8", at::arange(5, at::kByte)},
      {"scalar", at::scalar_tensor(2.5)},
      {"empty", at::zeros({0, 4})},
      {"strided", at::randn({4, 6}).t()},  // non-contiguous input is written contiguously
  };
  write_safetensors(dir + "/model.safetensors", tensors);
  auto archive = SafetensorsArchive::open_directory(dir);
  CHECK(archive.names().size() == tensors.size());
  for (const auto& kv : tensors) {
    INFO(kv.first);
    at::Tensor loaded = archive.load(kv.first, kv.second.scalar_type(), at::kCPU);
    CHECK(loaded.sizes() == kv.second.sizes());
    CHECK(at::equal(loaded, kv.second));
  }
  CHECK(archive.entry("bf16").dtype == "BF16");
  // Conversion on load, and a load never aliases the read-only mapping.
  at::Tensor as_float = archive.load("bf16", at::kFloat, at::kCPU);
  CHECK(at::equal(as_float, tensors["bf16"].to(at::kFloat)));
  at::Tensor same = archive.load("f32", at::kFloat, at::kCPU);
  same.add_(1);  // would crash on the read-only mapping if it aliased it
  CHECK(at::equal(archive.load("f32", at::kFloat, at::kCPU), tensors["f32"]));
}

TEST_CASE("tensor-parallel slices load only their part") {
  const std::string dir = tiny::make_temp_dir();
  at::Tensor w = at::arange(24, at::kFloat).view({4, 6});
  write_safetensors(dir + "/model.safetensors", {{"w", w}});
  auto archive = SafetensorsArchive::open_directory(dir);
  CHECK(at::equal(archive.load("w", at::kFloat, at::kCPU, 0, 1, 2), w.narrow(0, 2, 2)));
  CHECK(at::equal(archive.load("w", at::kFloat, at::kCPU, 1, 2, 3), w.narrow(1, 4, 2)));
  CHECK_THROWS_WITH(archive.load("w", at::kFloat, at::kCPU, 1, 0, 4),
                    dir + "/model.safetensors: tensor w dimension 1 (6) does not divide into 4 shards");
}

TEST_CASE("sharded checkpoints are read through model.safetensors.index.json") {
  tiny::Weights w = {{"a", at::randn({2})}, {"b", at::randn({3})}, {"c", at::randn({4})}};
  const std::string dir = tiny::write_checkpoint({{"x", 1}}, w, true);
  auto archive = SafetensorsArchive::open_directory(dir);
  CHECK(archive.names() == std::vector<std::string>{"a", "b", "c"});
  CHECK(archive.file_of("a") == dir + "/model-00001-of-00002.safetensors");
  CHECK(archive.file_of("c") == dir + "/model-00002-of-00002.safetensors");
  for (const auto& kv : w) CHECK(at::equal(archive.load(kv.first, at::kFloat, at::kCPU), kv.second));

  tiny::write_json(dir + "/model.safetensors.index.json",
                   {{"weight_map", {{"a", "model-00001-of-00002.safetensors"}, {"z", "model-00002-of-00002.safetensors"}}}});
  CHECK_THROWS_WITH(SafetensorsArchive::open_directory(dir),
                    dir + "/model.safetensors.index.json: tensor z is listed in weight_map but missing from "
                          "model-00002-of-00002.safetensors");
}

TEST_CASE("corrupt safetensors files give one-line errors") {
  const std::string dir = tiny::make_temp_dir();
  const std::string path = dir + "/bad.safetensors";
  write_raw(path, R"({"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8);
  CHECK_THROWS_WITH(SafetensorsFile(path),
                    path + ": tensor t: data_offsets [0, 16] lie outside the data section of 8 bytes");
  write_raw(path, R"({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})", 16);
  CHECK_THROWS_WITH(SafetensorsFile(path), path + ": tensor t: F32 [3] needs 12 bytes, data_offsets give 16");
  write_raw(path, R"({"t": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}})", 1);
  CHECK_THROWS_WITH(SafetensorsFile(path), Catch::StartsWith(path + ": tensor t: unsupported safetensors dtype \"F8_E4M3\""));
  write_raw(path, R"({"t": )", 0);
  CHECK_THROWS_WITH(SafetensorsFile(path), Catch::StartsWith(path + ": header is not valid JSON"));
  {
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = 1000;
    out.write(reinterpret_cast<const char*>(&n), 8);
  }
  CHECK_THROWS_WITH(SafetensorsFile(path), path + ": header length 1000 does not fit the file size 8");
  CHECK_THROWS_WITH(SafetensorsArchive::open_directory(dir),
                    dir + ": no model.safetensors or model.safetensors.index.json");
}
