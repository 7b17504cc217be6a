#include "audio/resample.h"

#include <soxr.h>

#include <cmath>

#include "audio/audio_decode.h"
#include "mmfuse/error.h"

namespace mmfuse {

std::vector<float> resample_audio(const std::vector<float>& samples, int from_rate, int to_rate,
                                  const std::string& name) {
  MMFUSE_CHECK(from_rate > 0 && to_rate > 0, bad_input,
               name + ": invalid resampling " + std::to_string(from_rate) + " -> " +
                   std::to_string(to_rate) + " Hz");
  if (from_rate == to_rate || samples.empty()) return samples;
  const double ratio = static_cast<double>(to_rate) / from_rate;
  const size_t want =
      static_cast<size_t>(std::llround(static_cast<double>(samples.size()) * ratio));
  MMFUSE_CHECK(want <= kMaxAudioSamples, bad_input,
               name + ": longer than " + std::to_string(kMaxAudioSamples) +
                   " samples after resampling to " + std::to_string(to_rate) + " Hz");
  std::vector<float> out(want + 16);
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  // One thread: the caller's pool owns the cores (DESIGN.md §5).
  const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
  size_t done = 0;
  soxr_error_t err = soxr_oneshot(from_rate, to_rate, 1, samples.data(), samples.size(), nullptr,
                                  out.data(), out.size(), &done, &io, &quality, &runtime);
  if (err != nullptr) throw_error(ErrorKind::internal, name + ": libsoxr failed: " + err);
  // soxr flushes its filter tail, so `done` may differ from `want` by a sample.
  out.resize(want);
  if (done < want) std::fill(out.begin() + static_cast<long>(done), out.end(), 0.0f);
  return out;
}

}  // namespace mmfuse
