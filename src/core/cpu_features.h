// Run-time CPU feature checks for mmfuse's own hand-vectorised kernels: one binary
// runs on AVX2-only and on AVX-512 machines (oneDNN does its own dispatch).
#pragma once

namespace mmfuse {

struct CpuFeatures {
  bool avx2_fma = false;     // AVX2 and FMA
  bool avx512f = false;      // AVX-512 foundation
  bool avx512_vnni = false;  // AVX-512 F, BW, VL and VNNI together
};

// Detected once, then read-only (safe from any thread).
const CpuFeatures& cpu_features();

}  // namespace mmfuse
