// How `mmfuse detect`'s OpenMP threads wait between parallel regions, chosen
// once at start from how busy the machine is (see omp_wait_policy.cpp).
#pragma once

namespace mmfuse::cli {

// Sets OMP_WAIT_POLICY (and, on an otherwise idle machine, GOMP_SPINCOUNT) in
// the environment unless the user set them. Returns whether anything was set
// (then the process must re-execute itself: libgomp reads them when it loads).
bool choose_omp_wait_policy();

}  // namespace mmfuse::cli
