#include "audio/audio_decode.h"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

// Interleaved samples read per sf_readf_float call (1 MiB of floats).
constexpr size_t kChunkSamples = 262144;
constexpr int kMaxChannels = 1024;
// Rates outside this range are not audio any mmfuse model can use (the
// pre-processing target rate has the same floor) and a 1 Hz header would make
// resampling blow a few hundred bytes up to minutes of samples.
constexpr int kMinSampleRate = 1000;
constexpr int kMaxSampleRate = 1'536'000;

std::string format_name(int format) {
  SF_FORMAT_INFO info{};
  info.format = format & SF_FORMAT_TYPEMASK;
  std::string name =
      sf_command(nullptr, SFC_GET_FORMAT_MAJOR, &info, sizeof(info)) == 0 && info.name ? info.name
                                                                                       : "unknown";
  SF_FORMAT_INFO sub{};
  sub.format = format & SF_FORMAT_SUBMASK;
  if (sf_command(nullptr, SFC_GET_FORMAT_SUBTYPE, &sub, sizeof(sub)) == 0 && sub.name)
    name += std::string(", ") + sub.name;
  return name;
}

// Reads every frame, averaging the channels, in bounded chunks (the header's
// frame count is not trusted: it may be wrong or unknown for streams).
AudioClip read_all(SNDFILE* file, const SF_INFO& info, const std::string& name) {
  MMFUSE_CHECK(info.channels >= 1 && info.channels <= kMaxChannels, bad_input,
               name + ": unsupported channel count " + std::to_string(info.channels));
  MMFUSE_CHECK(info.samplerate >= kMinSampleRate && info.samplerate <= kMaxSampleRate, bad_input,
               name + ": unsupported sample rate " + std::to_string(info.samplerate) + " Hz");
  AudioClip clip;
  clip.sample_rate = info.samplerate;
  clip.source_channels = info.channels;
  clip.source_format = format_name(info.format);
  const size_t channels = static_cast<size_t>(info.channels);
  const sf_count_t chunk_frames = static_cast<sf_count_t>(kChunkSamples / channels);
  std::vector<float> buffer(static_cast<size_t>(chunk_frames) * channels);
  const float inv = 1.0f / static_cast<float>(channels);
  for (;;) {
    const sf_count_t got = sf_readf_float(file, buffer.data(), chunk_frames);
    if (got <= 0) break;
    MMFUSE_CHECK(clip.samples.size() + static_cast<size_t>(got) <= kMaxAudioSamples, bad_input,
                 name + ": longer than " + std::to_string(kMaxAudioSamples) + " samples");
    for (sf_count_t f = 0; f < got; ++f) {
      const float* frame = buffer.data() + static_cast<size_t>(f) * channels;
      float sum = 0.0f;
      for (size_t c = 0; c < channels; ++c) sum += frame[c];
      const float mono = channels == 1 ? sum : sum * inv;
      MMFUSE_CHECK(std::isfinite(mono), bad_input,
                   name + ": non-finite sample at frame " + std::to_string(clip.samples.size()));
      clip.samples.push_back(mono);
    }
  }
  const int err = sf_error(file);
  MMFUSE_CHECK(err == SF_ERR_NO_ERROR, bad_input,
               name + ": corrupt audio data: " + sf_error_number(err));
  MMFUSE_CHECK(!clip.samples.empty(), bad_input, name + ": contains no audio samples");
  return clip;
}

// The sf_open_virtual callbacks over a memory buffer.
struct MemoryStream {
  const uint8_t* data;
  sf_count_t size;
  sf_count_t pos;
};

sf_count_t mem_length(void* user) {
  return static_cast<MemoryStream*>(user)->size;
}

sf_count_t mem_seek(sf_count_t offset, int whence, void* user) {
  auto* s = static_cast<MemoryStream*>(user);
  sf_count_t target = offset;
  if (whence == SEEK_CUR) target = s->pos + offset;
  if (whence == SEEK_END) target = s->size + offset;
  if (target < 0 || target > s->size) return -1;
  s->pos = target;
  return s->pos;
}

sf_count_t mem_read(void* ptr, sf_count_t count, void* user) {
  auto* s = static_cast<MemoryStream*>(user);
  if (count <= 0) return 0;
  const sf_count_t n = std::min(count, s->size - s->pos);
  if (n <= 0) return 0;
  std::memcpy(ptr, s->data + s->pos, static_cast<size_t>(n));
  s->pos += n;
  return n;
}

sf_count_t mem_write(const void*, sf_count_t, void*) {
  return 0;
}

sf_count_t mem_tell(void* user) {
  return static_cast<MemoryStream*>(user)->pos;
}

}  // namespace

AudioClip decode_audio_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw_error(ErrorKind::not_found, name + ": no such file");
  MMFUSE_CHECK(std::filesystem::is_regular_file(path, ec), bad_input,
               name + ": not a regular file");
  SF_INFO info{};
  SndfilePtr file(sf_open(name.c_str(), SFM_READ, &info));
  MMFUSE_CHECK(file != nullptr, bad_input, name + ": cannot decode audio: " + sf_strerror(nullptr));
  return read_all(file.get(), info, name);
}

AudioClip decode_audio_memory(const uint8_t* data, size_t size, const std::string& name) {
  MMFUSE_CHECK(size > 0, bad_input, name + ": empty file");
  MemoryStream stream{data, static_cast<sf_count_t>(size), 0};
  SF_VIRTUAL_IO io{mem_length, mem_seek, mem_read, mem_write, mem_tell};
  SF_INFO info{};
  SndfilePtr file(sf_open_virtual(&io, SFM_READ, &info, &stream));
  MMFUSE_CHECK(file != nullptr, bad_input, name + ": cannot decode audio: " + sf_strerror(nullptr));
  return read_all(file.get(), info, name);
}

}  // namespace mmfuse
