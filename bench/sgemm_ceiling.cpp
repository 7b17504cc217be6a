// sgemm_ceiling: how fast can OpenBLAS cblas_sgemm run the GEMMs of a CLIP
// ViT-B/32 forward on this machine?  The numbers are the "ceiling" that the
// benchmark compares mmfuse's image/text embedding throughput against.
//
// Build (one line):
//   g++ -O3 -march=native -std=c++20 bench/sgemm_ceiling.cpp
//       -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas -o bench/out/sgemm_ceiling
// Run:
//   bench/out/sgemm_ceiling [--threads 1,2] [--batches 1,16] [--trials 5] [--min-time 0.1]
//
// Every GEMM is the nn.Linear form Y[M,N] = X[M,K] * W[N,K]^T (row-major,
// weights stored [out, in] as in the checkpoint).  Modes:
//   openblas : one call, OpenBLAS's own pool (openblas_set_num_threads(T)).
//   split    : T threads of our own, each calling single-threaded OpenBLAS on a
//              slice of N (the scheme mmfuse uses); only for T > 1.
// Weights cycle through enough copies to exceed the L3 cache ("cold", as in a
// forward pass where every layer has its own weights); gflops_hot repeats one
// copy; at 1 thread gflops_cpu uses process CPU time instead of wall time (a
// load-insensitive estimate when other processes share the cores).  Output: JSON lines, one per (shape, threads, mode), then one
// "forward" line per (group, threads, mode) = total GEMM FLOPs of the forward
// / total time of its GEMMs (each shape weighted by how often it occurs).
//
// OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE etc. are read from the environment by
// OpenBLAS itself and deliberately left alone.

#include <cblas.h>
#include <time.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Shape {
  std::string group;  // e.g. vision_b1
  std::string op;     // qkv, out, fc1, fc2, patch
  int m, k, n;
  int count;  // occurrences per forward (e.g. layers)
};

// ViT-B/32 (openai/clip-vit-base-patch32) dimensions.
constexpr int kVisionHidden = 768, kVisionFfn = 3072, kVisionLayers = 12, kPatches = 49;
constexpr int kPatchK = 3 * 32 * 32;
constexpr int kTextHidden = 512, kTextFfn = 2048, kTextLayers = 12, kTextSeq = 77;
constexpr int kCaptionTokens = 12;  // bench/torch_clip.py's default caption length

void add_layer(std::vector<Shape>& v, const std::string& g, int m, int h, int f, int layers) {
  v.push_back({g, "qkv", m, h, 3 * h, layers});
  v.push_back({g, "out", m, h, h, layers});
  v.push_back({g, "fc1", m, h, f, layers});
  v.push_back({g, "fc2", m, f, h, layers});
}

std::vector<Shape> make_shapes(const std::vector<int>& batches) {
  std::vector<Shape> v;
  for (int b : batches) {
    std::string s = "_b" + std::to_string(b);
    v.push_back({"vision" + s, "patch", kPatches * b, kPatchK, kVisionHidden, 1});
    add_layer(v, "vision" + s, (kPatches + 1) * b, kVisionHidden, kVisionFfn, kVisionLayers);
    add_layer(v, "text77" + s, kTextSeq * b, kTextHidden, kTextFfn, kTextLayers);
    // An engine may stop each sequence at its <|endoftext|> (causal attention:
    // later positions cannot change the pooled token).
    add_layer(v, "text" + std::to_string(kCaptionTokens) + s, kCaptionTokens * b, kTextHidden, kTextFfn,
              kTextLayers);
  }
  return v;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double cpu_s() {  // CPU time of the whole process (all threads)
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// T-1 persistent helper threads + the caller; each runs job(tid).
class Team {
 public:
  explicit Team(int n) : n_(n), start_(n), done_(n) {
    for (int t = 1; t < n_; ++t) {
      workers_.emplace_back([this, t] {
        for (;;) {
          start_.arrive_and_wait();
          if (quit_) return;
          job_(t);
          done_.arrive_and_wait();
        }
      });
    }
  }
  ~Team() {
    quit_ = true;
    if (n_ > 1) start_.arrive_and_wait();
    for (auto& w : workers_) w.join();
  }
  void run(const std::function<void(int)>& job) {
    if (n_ == 1) {
      job(0);
      return;
    }
    job_ = job;
    start_.arrive_and_wait();
    job_(0);
    done_.arrive_and_wait();
  }

 private:
  int n_;
  std::barrier<> start_, done_;
  std::function<void(int)> job_;
  bool quit_ = false;
  std::vector<std::thread> workers_;
};

struct Result {
  double gflops = 0, best = 0, hot = 0, sec_per_call = 0;
  double gflops_cpu = 0, cpu_sec_per_call = 0;  // from process CPU time (threads == 1 only)
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Result measure(const Shape& s, int threads, bool split, int trials, double min_time, Team* team) {
  const size_t a_n = size_t(s.m) * s.k, w_n = size_t(s.n) * s.k, c_n = size_t(s.m) * s.n;
  const size_t l3_bytes = 64u << 20;  // cycle >= 64 MiB of weights
  const int copies = int(std::clamp<size_t>(l3_bytes / (w_n * 4) + 1, 1, 64));
  std::vector<float> a(a_n), c(c_n);
  std::vector<std::vector<float>> w(copies, std::vector<float>(w_n));
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.f, 0.02f);
  for (auto& x : a) x = nd(rng);
  for (auto& x : w[0]) x = nd(rng);
  for (int i = 1; i < copies; ++i) w[i] = w[0];

  auto call = [&](const float* wp) {
    if (!split) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.m, s.n, s.k, 1.f, a.data(), s.k, wp, s.k, 0.f,
                  c.data(), s.n);
      return;
    }
    team->run([&](int t) {
      // slices of N rounded to 16 columns
      int per = ((s.n + threads - 1) / threads + 15) / 16 * 16;
      int n0 = std::min(s.n, t * per), n1 = std::min(s.n, n0 + per);
      if (n1 <= n0) return;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.m, n1 - n0, s.k, 1.f, a.data(), s.k,
                  wp + size_t(n0) * s.k, s.k, 0.f, c.data() + n0, s.n);
    });
  };

  openblas_set_num_threads(split ? 1 : threads);
  const double flops = 2.0 * s.m * s.n * s.k;
  // warm-up (also decides the repetition count)
  double t0 = now_s();
  int reps = 0;
  do {
    call(w[reps % copies].data());
    ++reps;
  } while (now_s() - t0 < min_time * 0.5 || reps < 2);
  double per_call = (now_s() - t0) / reps;
  reps = std::max(3, int(min_time / std::max(per_call, 1e-9)));

  std::vector<double> gcpu;
  auto run_trials = [&](bool cold) {
    std::vector<double> g;
    int idx = 0;
    for (int tr = 0; tr < trials; ++tr) {
      double c0 = cpu_s(), s0 = now_s();
      for (int r = 0; r < reps; ++r) call(w[cold ? (idx++ % copies) : 0].data());
      double dt = (now_s() - s0) / reps, dc = (cpu_s() - c0) / reps;
      g.push_back(flops / dt * 1e-9);
      if (cold) gcpu.push_back(flops / dc * 1e-9);
    }
    return g;
  };
  Result res;
  std::vector<double> cold = run_trials(true);
  if (threads == 1) {
    res.gflops_cpu = median(gcpu);
    res.cpu_sec_per_call = flops / (res.gflops_cpu * 1e9);
  }
  res.gflops = median(cold);
  res.best = *std::max_element(cold.begin(), cold.end());
  res.sec_per_call = flops / (res.gflops * 1e9);
  std::vector<double> hot = run_trials(false);
  res.hot = median(hot);
  return res;
}

std::vector<int> parse_list(const char* s) {
  std::vector<int> v;
  for (const char* p = s; *p;) {
    v.push_back(std::atoi(p));
    const char* comma = std::strchr(p, ',');
    if (!comma) break;
    p = comma + 1;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads_list = {1, 2}, batches = {1, 16};
  int trials = 5;
  double min_time = 0.1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") threads_list = parse_list(next());
    else if (a == "--batches") batches = parse_list(next());
    else if (a == "--trials") trials = std::max(1, std::atoi(next()));
    else if (a == "--min-time") min_time = std::atof(next());
    else {
      std::fprintf(stderr,
                   "usage: %s [--threads 1,2] [--batches 1,16] [--trials 5] [--min-time 0.1]\n", argv[0]);
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }

  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("{\"kind\":\"info\",\"openblas_config\":\"%s\",\"openblas_corename\":\"%s\","
              "\"OPENBLAS_CORETYPE\":\"%s\",\"hardware_threads\":%u}\n",
              openblas_get_config(), openblas_get_corename(), coretype ? coretype : "",
              std::thread::hardware_concurrency());
  std::fflush(stdout);

  const auto shapes = make_shapes(batches);
  for (int t : threads_list) {
    Team team(t);
    for (bool split : {false, true}) {
      if (split && t == 1) continue;
      const char* mode = split ? "split" : "openblas";
      std::string group;
      double f_total = 0, t_total = 0, c_total = 0;
      auto flush = [&] {
        if (group.empty()) return;
        std::printf("{\"kind\":\"forward\",\"group\":\"%s\",\"threads\":%d,\"mode\":\"%s\","
                    "\"gemm_gflop\":%.4f,\"gemm_ms\":%.3f,\"gflops\":%.2f",
                    group.c_str(), t, mode, f_total * 1e-9, t_total * 1e3, f_total / t_total * 1e-9);
        if (t == 1) std::printf(",\"gflops_cpu\":%.2f", f_total / c_total * 1e-9);
        std::printf("}\n");
        std::fflush(stdout);
        f_total = t_total = c_total = 0;
      };
      for (const auto& s : shapes) {
        if (s.group != group) {
          flush();
          group = s.group;
        }
        Result r = measure(s, t, split, trials, min_time, &team);
        double flops = 2.0 * s.m * s.n * s.k * s.count;
        f_total += flops;
        t_total += r.sec_per_call * s.count;
        c_total += r.cpu_sec_per_call * s.count;
        std::printf("{\"kind\":\"gemm\",\"group\":\"%s\",\"op\":\"%s\",\"M\":%d,\"K\":%d,\"N\":%d,"
                    "\"count\":%d,\"threads\":%d,\"mode\":\"%s\",\"gflops\":%.2f,\"gflops_best\":%.2f,"
                    "\"gflops_hot\":%.2f",
                    s.group.c_str(), s.op.c_str(), s.m, s.k, s.n, s.count, t, mode, r.gflops, r.best, r.hot);
        if (t == 1) std::printf(",\"gflops_cpu\":%.2f", r.gflops_cpu);
        std::printf("}\n");
        std::fflush(stdout);
      }
      flush();
    }
  }
  return 0;
}
