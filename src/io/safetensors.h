// Reads safetensors files (the Hugging Face weight format) through a read-only
// memory map: an 8-byte little-endian header length N, N bytes of JSON naming
// each tensor's dtype, shape and [begin, end) byte offsets in the data area.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mmfuse {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(DType dtype);
size_t dtype_size(DType dtype);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // points into the memory map
  size_t nbytes = 0;

  int64_t numel() const;
};

// How a weight file's bytes reach memory.
enum class FileResidency {
  // Memory-mapped from the page cache: instant, shared between processes,
  // 4 KiB pages.
  mapped,
  // Read once into private memory backed by transparent huge pages where the
  // kernel offers them (else plain pages). Decoders stream every weight for
  // every token, and 2 MiB pages spare the TLB misses that cost them ~12 % of
  // the memory bandwidth. Costs a copy at load (~0.5 s per GB).
  huge_pages,
};

// What decoders use: huge_pages, unless MMFUSE_MMAP_WEIGHTS=1 asks for the
// shared page-cache mapping (many processes serving one model) or the kernel
// has transparent huge pages off.
FileResidency streamed_weight_residency();

// The read-only bytes of one file. Released when the last owner goes away.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::filesystem::path& path,
                                          FileResidency residency = FileResidency::mapped);
  ~MappedFile();
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  // True when the bytes are a private copy, not a mapping of the file (so
  // madvise(MADV_DONTNEED) would lose them).
  bool private_copy() const { return private_copy_; }

 private:
  MappedFile() = default;
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapping_size_ = 0;
  bool private_copy_ = false;
};

class SafetensorsFile {
 public:
  // Maps and validates the file: header JSON, dtypes, shapes against byte sizes,
  // offsets inside the file, no overlaps. Throws mmfuse::Error naming the file
  // (and tensor) on any defect.
  static SafetensorsFile open(const std::filesystem::path& path,
                              FileResidency residency = FileResidency::mapped);
  // Parses an in-memory buffer (used by fuzzing); `name` appears in errors.
  static SafetensorsFile parse(std::shared_ptr<MappedFile> keep_alive, const uint8_t* bytes,
                               size_t size, const std::string& name);

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& name() const { return name_; }
  bool private_copy() const { return file_ != nullptr && file_->private_copy(); }

 private:
  std::shared_ptr<MappedFile> file_;
  std::string name_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Converts `count` elements of a F32/F16/BF16/F64 tensor to float32.
void convert_to_f32(DType dtype, const uint8_t* src, size_t count, float* dst);

// Writes tensors as a safetensors file (used by tests and the model generator).
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors);

}  // namespace mmfuse
