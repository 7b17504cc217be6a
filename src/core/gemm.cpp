#include "core/gemm.h"

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <string>

#include "mmfuse/error.h"

// libgomp (oneDNN's threading runtime): each calling thread must ask for one
// OpenMP thread, or every call would fork a team and oversubscribe the cores.
extern "C" void omp_set_num_threads(int);

namespace mmfuse {

namespace {
// Below this many multiply-adds OpenBLAS's lower call overhead wins.
constexpr long kSmallGemm = 1L << 19;

void ensure_single_threaded_runtime() {
  thread_local bool configured = false;
  if (!configured) {
    omp_set_num_threads(1);
    configured = true;
  }
}
}  // namespace

void sgemm(bool b_transposed, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  if (static_cast<long>(m) * n * k < kSmallGemm) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, b_transposed ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                a, lda, b, ldb, beta, c, ldc);
    return;
  }
  ensure_single_threaded_runtime();
  dnnl_status_t status =
      dnnl_sgemm('N', b_transposed ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  MMFUSE_CHECK(status == dnnl_success, internal,
               "oneDNN sgemm failed with status " + std::to_string(static_cast<int>(status)));
}

}  // namespace mmfuse
