#include "core/precision.h"

#include <oneapi/dnnl/dnnl.h>

#include <cstdio>
#include <mutex>

#include "core/strings.h"
#include "mmfuse/error.h"

namespace mmfuse {

const char* to_string(Precision precision) {
  switch (precision) {
    case Precision::f32: return "f32";
    case Precision::bf16: return "bf16";
    case Precision::int8: return "int8";
  }
  return "?";
}

Precision parse_precision(const std::string& name, const std::string& where) {
  const std::string s = ascii_lower(name);
  if (s == "f32" || s == "fp32" || s == "float32") return Precision::f32;
  if (s == "bf16" || s == "bfloat16") return Precision::bf16;
  if (s == "int8" || s == "qint8") return Precision::int8;
  throw_error(ErrorKind::bad_input,
              where + ": unknown dtype \"" + name + "\" (expected f32, bf16 or int8)");
}

const char* compute_isa() {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_sse41: return "sse41";
    default: return "other";
  }
}

bool cpu_has_int8_dot() {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx:
    case dnnl_cpu_isa_avx512_core_bf16:
    case dnnl_cpu_isa_avx512_core_vnni:
    case dnnl_cpu_isa_avx2_vnni: return true;
    default: return false;
  }
}

Precision supported_precision(Precision requested) {
  if (requested != Precision::bf16) return requested;
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
  if (isa == dnnl_cpu_isa_avx512_core_amx || isa == dnnl_cpu_isa_avx512_core_bf16)
    return Precision::bf16;
  static std::once_flag warned;
  std::call_once(warned, [] {
    std::fprintf(stderr,
                 "mmfuse: warning: this CPU (%s) has no bf16 instructions; bf16 models run in "
                 "f32\n",
                 compute_isa());
  });
  return Precision::f32;
}

}  // namespace mmfuse
