#include "core/gemm.h"

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <string>

#include "mmfuse/error.h"

// libgomp (oneDNN's threading runtime): the calling thread asks for one OpenMP
// thread for the duration of the call, or every call would fork a team and
// oversubscribe the cores. The previous setting is restored for other OpenMP
// users on the same thread (FAISS).
extern "C" void omp_set_num_threads(int);
extern "C" int omp_get_max_threads(void);

namespace mmfuse {

namespace {
// Below this many multiply-adds OpenBLAS's lower call overhead wins.
constexpr long kSmallGemm = 1L << 19;
}  // namespace

void sgemm(bool b_transposed, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  if (static_cast<long>(m) * n * k < kSmallGemm) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, b_transposed ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  dnnl_status_t status =
      dnnl_sgemm('N', b_transposed ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  omp_set_num_threads(previous_threads);
  MMFUSE_CHECK(status == dnnl_success, internal,
               "oneDNN sgemm failed with status " + std::to_string(static_cast<int>(status)));
}

}  // namespace mmfuse
