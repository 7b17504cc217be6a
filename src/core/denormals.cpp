#include "core/denormals.h"

#if defined(__x86_64__) || defined(__SSE2__)
#include <xmmintrin.h>
#define MMFUSE_HAS_MXCSR 1
#endif

// libgomp's entry for `#pragma omp parallel` (this file is not built with
// -fopenmp, so that clang builds link the same runtime oneDNN uses).
extern "C" void GOMP_parallel(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags);

namespace mmfuse {

#ifdef MMFUSE_HAS_MXCSR
namespace {

constexpr unsigned kFtzDaz = 0x8040;  // MXCSR flush-to-zero (bit 15) and denormals-are-zero (bit 6)
thread_local bool t_saved = false;
thread_local unsigned t_mxcsr = 0;

void set_on_thread(void*) {
  if (t_saved) return;  // nested or repeated: keep the outer saved mode
  t_mxcsr = _mm_getcsr();
  t_saved = true;
  _mm_setcsr(t_mxcsr | kFtzDaz);
}

void restore_on_thread(void*) {
  if (!t_saved) return;
  _mm_setcsr(t_mxcsr);
  t_saved = false;
}

}  // namespace

FlushDenormals::FlushDenormals(int threads) : threads_(threads) {
  saved_ = _mm_getcsr();
  _mm_setcsr(saved_ | kFtzDaz);
  if (threads_ > 1) GOMP_parallel(set_on_thread, nullptr, static_cast<unsigned>(threads_), 0);
}

FlushDenormals::~FlushDenormals() {
  if (threads_ > 1) GOMP_parallel(restore_on_thread, nullptr, static_cast<unsigned>(threads_), 0);
  _mm_setcsr(saved_);
}
#else
FlushDenormals::FlushDenormals(int threads) : threads_(threads) {}
FlushDenormals::~FlushDenormals() = default;
#endif

}  // namespace mmfuse
