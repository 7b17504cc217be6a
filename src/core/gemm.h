// Single-threaded float32 GEMM on row-major matrices, called from inside the
// ThreadPool's tasks. Weight products go to oneDNN (its JIT kernels are up to
// 2x faster than OpenBLAS when few tokens are in flight); small products
// (attention scores) go to OpenBLAS, whose call overhead is lower.
#pragma once

namespace mmfuse {

// C[m, n] = alpha * A[m, k] * op(B) + beta * C, op(B) = B^T (B stored [n, k])
// when b_transposed, else B (stored [k, n]). lda/ldb/ldc are row strides.
void sgemm(bool b_transposed, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc);

}  // namespace mmfuse
