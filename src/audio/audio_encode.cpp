#include "audio/audio_encode.h"

#include <sndfile.h>

#include "mmfuse/error.h"

namespace mmfuse {

void write_audio_file(const std::filesystem::path& path, const std::vector<float>& interleaved,
                      int channels, int sample_rate, SampleEncoding encoding) {
  const std::string name = path.string();
  MMFUSE_CHECK(channels >= 1 && interleaved.size() % static_cast<size_t>(channels) == 0, bad_input,
               name + ": sample count is not a multiple of the channel count");
  const std::string ext = path.extension().string();
  int major = 0;
  if (ext == ".wav") major = SF_FORMAT_WAV;
  if (ext == ".flac") major = SF_FORMAT_FLAC;
  if (ext == ".ogg") major = SF_FORMAT_OGG;
  MMFUSE_CHECK(major != 0, unsupported,
               name + ": unknown audio extension (use .wav, .flac or .ogg)");
  int sub = SF_FORMAT_PCM_16;
  switch (encoding) {
    case SampleEncoding::pcm16: sub = SF_FORMAT_PCM_16; break;
    case SampleEncoding::pcm24: sub = SF_FORMAT_PCM_24; break;
    case SampleEncoding::pcm32: sub = SF_FORMAT_PCM_32; break;
    case SampleEncoding::float32: sub = SF_FORMAT_FLOAT; break;
    case SampleEncoding::vorbis: sub = SF_FORMAT_VORBIS; break;
  }
  SF_INFO info{};
  info.channels = channels;
  info.samplerate = sample_rate;
  info.format = major | sub;
  MMFUSE_CHECK(sf_format_check(&info) != 0, unsupported,
               name + ": this container cannot hold the requested sample encoding");
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  SNDFILE* file = sf_open(tmp.string().c_str(), SFM_WRITE, &info);
  MMFUSE_CHECK(file != nullptr, bad_input, name + ": cannot write: " + sf_strerror(nullptr));
  const sf_count_t frames =
      static_cast<sf_count_t>(interleaved.size() / static_cast<size_t>(channels));
  const sf_count_t wrote = sf_writef_float(file, interleaved.data(), frames);
  const int close_err = sf_close(file);
  if (wrote != frames || close_err != 0) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw_error(ErrorKind::internal, name + ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace mmfuse
