#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

// A header bigger than this is not a weight file (the hub caps headers at 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

DType parse_dtype(const std::string& s, const std::string& where) {
  static const std::map<std::string, DType> table = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64},
      {"I64", DType::I64}, {"I32", DType::I32}, {"I16", DType::I16},   {"I8", DType::I8},
      {"U8", DType::U8},   {"BOOL", DType::BOOL}};
  auto it = table.find(s);
  if (it == table.end()) throw_error(ErrorKind::unsupported, where + ": unknown dtype \"" + s + "\"");
  return it->second;
}

float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalise it
      int e = -1;
      do {
        ++e;
        mantissa <<= 1;
      } while ((mantissa & 0x400u) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mantissa & 0x3ffu) << 13;
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | mantissa << 13;
  } else {
    bits = sign | (exponent + 127 - 15) << 23 | mantissa << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::BOOL: return "BOOL";
  }
  return "?";
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F64:
    case DType::I64: return 8;
    case DType::F32:
    case DType::I32: return 4;
    case DType::F16:
    case DType::BF16:
    case DType::I16: return 2;
    case DType::I8:
    case DType::U8:
    case DType::BOOL: return 1;
  }
  return 1;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

bool transparent_huge_pages_off() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  return !std::getline(in, line) || line.find("[never]") != std::string::npos;
}

// Copies the file into `dest` (fresh private memory of at least `size`
// bytes) through short-lived maps of 32 MiB chunks: copying from the page
// cache this way is several times faster than pread into untouched huge
// pages, and unmapping each chunk keeps the file's pages out of the
// process's resident set (peak memory stays one copy). A few threads share
// the chunks: a 2 GB model loads in about a second.
void read_into(int fd, const std::filesystem::path& path, uint8_t* dest, size_t size) {
  constexpr size_t kChunk = 32u << 20;  // a multiple of the page size: chunk offsets map
  const size_t chunks = (size + kChunk - 1) / kChunk;
  std::atomic<size_t> next{0};
  std::atomic<int> failure{0};
  auto work = [&] {
    for (size_t c = next++; c < chunks && failure.load() == 0; c = next++) {
      const size_t begin = c * kChunk;
      const size_t length = std::min(size, begin + kChunk) - begin;
      void* src = mmap(nullptr, length, PROT_READ, MAP_PRIVATE, fd, static_cast<off_t>(begin));
      if (src == MAP_FAILED) {
        failure = errno;
        break;
      }
      madvise(src, length, MADV_SEQUENTIAL);
      std::memcpy(dest + begin, src, length);
      munmap(src, length);
    }
  };
  const size_t threads =
      std::min<size_t>({chunks, 4, std::max(1u, std::thread::hardware_concurrency())});
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < threads; ++t) helpers.emplace_back(work);
  work();
  for (auto& t : helpers) t.join();
  if (failure != 0)
    throw_error(ErrorKind::bad_input,
                path.string() + ": read failed: " + std::strerror(failure.load()));
}

}  // namespace

FileResidency streamed_weight_residency() {
  const char* mmap_weights = std::getenv("MMFUSE_MMAP_WEIGHTS");
  if (mmap_weights != nullptr && std::string(mmap_weights) == "1") return FileResidency::mapped;
  return FileResidency::huge_pages;
}

std::shared_ptr<MappedFile> MappedFile::open(const std::filesystem::path& path,
                                             FileResidency residency) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    throw_error(err == ENOENT ? ErrorKind::not_found : ErrorKind::bad_input,
                path.string() + ": cannot open: " + std::strerror(err));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_error(ErrorKind::bad_input, path.string() + ": not a regular file");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0 && residency == FileResidency::huge_pages && !transparent_huge_pages_off()) {
    constexpr size_t kHugePage = 2u << 20;
    const size_t capacity = (file->size_ + kHugePage - 1) / kHugePage * kHugePage;
    void* p = mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      madvise(p, capacity, MADV_HUGEPAGE);
      try {
        read_into(fd, path, static_cast<uint8_t*>(p), file->size_);
      } catch (...) {
        munmap(p, capacity);
        ::close(fd);
        throw;
      }
      mprotect(p, capacity, PROT_READ);
      file->data_ = static_cast<const uint8_t*>(p);
      file->mapping_size_ = capacity;
      file->private_copy_ = true;
    }
  }
  if (file->size_ > 0 && file->data_ == nullptr) {
    void* p = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      throw_error(ErrorKind::internal, path.string() + ": mmap failed: " + std::strerror(err));
    }
    file->data_ = static_cast<const uint8_t*>(p);
    file->mapping_size_ = file->size_;
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), mapping_size_);
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path,
                                      FileResidency residency) {
  auto file = MappedFile::open(path, residency);
  return parse(file, file->data(), file->size(), path.string());
}

SafetensorsFile SafetensorsFile::parse(std::shared_ptr<MappedFile> keep_alive, const uint8_t* bytes,
                                       size_t size, const std::string& name) {
  SafetensorsFile out;
  out.file_ = std::move(keep_alive);
  out.name_ = name;
  MMFUSE_CHECK(size >= 8, bad_input,
               name + ": truncated safetensors file (" + std::to_string(size) + " bytes, no header)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | bytes[i];
  MMFUSE_CHECK(header_len <= kMaxHeaderBytes && header_len <= size - 8, bad_input,
               name + ": bad safetensors header length " + std::to_string(header_len) +
                   " for a file of " + std::to_string(size) + " bytes (truncated or not safetensors)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorKind::bad_input, name + ": safetensors header is not valid JSON: " + e.what());
  }
  MMFUSE_CHECK(header.is_object(), bad_input, name + ": safetensors header is not a JSON object");
  const uint8_t* data_area = bytes + 8 + header_len;
  const size_t data_size = size - 8 - header_len;
  std::vector<std::pair<size_t, size_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const auto& entry = it.value();
    if (key == "__metadata__") {
      MMFUSE_CHECK(entry.is_object(), bad_input, name + ": __metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m)
        if (m.value().is_string()) out.metadata_[m.key()] = m.value().get<std::string>();
      continue;
    }
    const std::string where = name + ": tensor \"" + key + "\"";
    MMFUSE_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") &&
                     entry.contains("data_offsets"),
                 bad_input, where + ": needs dtype, shape and data_offsets");
    MMFUSE_CHECK(entry["dtype"].is_string(), bad_input, where + ": dtype is not a string");
    TensorInfo info;
    info.name = key;
    info.dtype = parse_dtype(entry["dtype"].get<std::string>(), where);
    const auto& shape = entry["shape"];
    MMFUSE_CHECK(shape.is_array() && shape.size() <= 8, bad_input, where + ": bad shape");
    uint64_t numel = 1;
    for (const auto& d : shape) {
      MMFUSE_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
                   bad_input, where + ": shape entries must be non-negative integers");
      uint64_t v = d.get<uint64_t>();
      MMFUSE_CHECK(v == 0 || numel <= (1ull << 48) / v, bad_input, where + ": shape too large");
      numel *= v;
      info.shape.push_back(static_cast<int64_t>(v));
    }
    const auto& offsets = entry["data_offsets"];
    MMFUSE_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                     offsets[1].is_number_unsigned(),
                 bad_input, where + ": data_offsets must be two non-negative integers");
    uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    MMFUSE_CHECK(begin <= end && end <= data_size, bad_input,
                 where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     ") outside the data area of " + std::to_string(data_size) +
                     " bytes (file truncated?)");
    MMFUSE_CHECK(end - begin == numel * dtype_size(info.dtype), bad_input,
                 where + ": " + std::to_string(end - begin) + " bytes do not match its shape and dtype");
    info.data = data_area + begin;
    info.nbytes = static_cast<size_t>(end - begin);
    if (info.nbytes > 0) ranges.emplace_back(begin, end);
    out.tensors_.emplace(key, std::move(info));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    MMFUSE_CHECK(ranges[i].first >= ranges[i - 1].second, bad_input,
                 name + ": tensors overlap in the data area");
  return out;
}

const TensorInfo* SafetensorsFile::find(const std::string& tensor_name) const {
  auto it = tensors_.find(tensor_name);
  return it == tensors_.end() ? nullptr : &it->second;
}

void convert_to_f32(DType dtype, const uint8_t* src, size_t count, float* dst) {
  switch (dtype) {
    case DType::F32: std::memcpy(dst, src, count * 4); return;
    case DType::F16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = half_to_float(h);
      }
      return;
    case DType::BF16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(dst + i, &bits, 4);
      }
      return;
    case DType::F64:
      for (size_t i = 0; i < count; ++i) {
        double d;
        std::memcpy(&d, src + 8 * i, 8);
        dst[i] = static_cast<float>(d);
      }
      return;
    default:
      throw_error(ErrorKind::unsupported,
                  std::string("cannot convert dtype ") + dtype_name(dtype) + " to float32");
  }
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  size_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    MMFUSE_CHECK(out.good(), bad_input, tmp.string() + ": cannot open for writing");
    uint64_t n = text.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : tensors)
      out.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
    MMFUSE_CHECK(out.good(), internal, tmp.string() + ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace mmfuse
