// Fuzzes the safetensors header/offset validation and the dtype conversion.
#include <cstdint>
#include <vector>

#include "io/safetensors.h"
#include "mmfuse/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    mmfuse::SafetensorsFile f = mmfuse::SafetensorsFile::parse(nullptr, data, size, "fuzz");
    for (const auto& [name, t] : f.tensors()) {
      if (t.dtype == mmfuse::DType::F32 || t.dtype == mmfuse::DType::F16 ||
          t.dtype == mmfuse::DType::BF16) {
        std::vector<float> out(static_cast<size_t>(t.numel()));
        mmfuse::convert_to_f32(t.dtype, t.data, out.size(), out.data());
      }
    }
  } catch (const mmfuse::Error&) {
  }
  return 0;
}
