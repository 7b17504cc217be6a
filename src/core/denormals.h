// Flush-to-zero for the duration of a network call. A float below 1.2e-38
// (a denormal) read or written by an x86 FMA costs a microcode assist of ~100
// cycles: a convolution fed a few of them (SiLU of a very negative input
// underflows to one) ran 10-30x slower. Treating them as zero changes results
// by less than 1e-37.
#pragma once

namespace mmfuse {

// Sets FTZ and DAZ on the calling thread and on the `threads` OpenMP threads
// oneDNN will run on; the destructor restores every thread's previous mode
// (the OpenMP threads are shared with the rest of the process).
class FlushDenormals {
 public:
  explicit FlushDenormals(int threads);
  ~FlushDenormals();
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  int threads_;
  unsigned saved_ = 0;
};

}  // namespace mmfuse
