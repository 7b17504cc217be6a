// Decodes any format libsndfile reads (WAV incl. WAVE_FORMAT_EXTENSIBLE, FLAC,
// OGG/Vorbis, AIFF, ...; any rate, bit depth and channel count) into mono
// float samples: integer PCM is scaled to [-1, 1) by libsndfile and channels
// are down-mixed by their mean. Errors name the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mmfuse {

struct AudioClip {
  std::vector<float> samples;  // mono, one float per frame
  int sample_rate = 0;         // Hz
  int source_channels = 0;     // channels before the down-mix
  std::string source_format;   // libsndfile's name of the container/encoding
};

// Longest clip accepted (mono samples), so a hostile header cannot make us
// allocate without bound: 2^28 samples is 4.6 h at 16 kHz or 46 min at 96 kHz.
constexpr size_t kMaxAudioSamples = size_t{1} << 28;

// Reads a file. Missing file: ErrorKind::not_found; unreadable, corrupt, empty
// or non-finite audio: ErrorKind::bad_input. Safe to call from several threads
// at once (only the wording of a libsndfile open error is process-wide).
AudioClip decode_audio_file(const std::filesystem::path& path);

// Decodes an in-memory file image (sf_open_virtual); `name` appears in errors.
AudioClip decode_audio_memory(const uint8_t* data, size_t size, const std::string& name);

}  // namespace mmfuse
