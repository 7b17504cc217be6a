// Writes audio with libsndfile (WAV/FLAC/OGG by file extension), for tools and
// tests that need real files in formats Python cannot write here.
#pragma once

#include <filesystem>
#include <vector>

namespace mmfuse {

enum class SampleEncoding { pcm16, pcm24, pcm32, float32, vorbis };

// `interleaved` holds frames * channels samples in [-1, 1]. The container comes
// from the extension (.wav, .flac, .ogg); FLAC takes pcm16/pcm24, OGG vorbis only.
// Writes to a temporary name and renames, so a failure leaves no partial file.
void write_audio_file(const std::filesystem::path& path, const std::vector<float>& interleaved,
                      int channels, int sample_rate, SampleEncoding encoding);

}  // namespace mmfuse
