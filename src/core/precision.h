// The arithmetic a model's linear layers run in, chosen when it is opened
// (`--dtype`): float32 (the default, exact to the reference), bfloat16 weights
// and inputs with float32 accumulation, or int8 dynamic quantisation as
// PyTorch's and ONNX Runtime's quantize_dynamic do it.
#pragma once

#include <string>

namespace mmfuse {

enum class Precision { f32, bf16, int8 };

const char* to_string(Precision precision);
// "f32" / "fp32" / "float32", "bf16" / "bfloat16", "int8" / "qint8"; `where`
// names the flag or field in the bad_input error otherwise.
Precision parse_precision(const std::string& name, const std::string& where);

// The precision this CPU runs `requested` in: bf16 falls back to f32 where
// the CPU has neither AVX-512-BF16 nor AMX-BF16 (oneDNN would emulate it far
// slower than f32). int8 runs everywhere (VNNI/AMX where present, AVX2 or SSE
// otherwise). Writes one warning line to stderr per process on fallback.
Precision supported_precision(Precision requested);

// The instruction set oneDNN's kernels use on this CPU ("avx512_core_amx",
// "avx512_core_bf16", "avx512_core_vnni", "avx2_vnni", "avx2", ...), and
// whether it has int8 dot-product instructions (VNNI or AMX).
const char* compute_isa();
bool cpu_has_int8_dot();

}  // namespace mmfuse
