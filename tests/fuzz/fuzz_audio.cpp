// Fuzzes audio decoding from memory (libsndfile through sf_open_virtual: WAV,
// FLAC, OGG, AIFF, ... headers and payloads) and the pre-processing and
// features that follow it. mmfuse::Error is the expected answer to garbage.
#include <cstdint>
#include <vector>

#include "audio/audio_decode.h"
#include "audio/audio_preprocess.h"
#include "audio/mel_features.h"
#include "mmfuse/error.h"

// libsndfile 1.2.0's Ogg/Vorbis reader leaks the vorbis_info it allocates when
// a stream's headers are malformed (allocated in libvorbis's vorbis_info_init,
// never freed on that error path). Not ours to fix; keep LeakSanitizer on for
// everything else.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:vorbis_info_init\nleak:libvorbis.so\nleak:libogg.so\n";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const mmfuse::MelExtractor mel{mmfuse::FeatureConfig{}};
  try {
    mmfuse::AudioClip clip = mmfuse::decode_audio_memory(data, size, "fuzz");
    // Keep runs short: a few seconds of (possibly decompressed) audio at most,
    // counted at the clip's own rate (resampling to 16 kHz can multiply it).
    const size_t five_seconds = static_cast<size_t>(clip.sample_rate) * 5;
    if (clip.samples.size() > five_seconds) clip.samples.resize(five_seconds);
    mmfuse::AudioPreprocessConfig pre;
    const std::vector<float> x = mmfuse::preprocess_audio(clip, pre, "fuzz");
    const std::vector<float> m = mel.mfcc(x);
    (void)m;
  } catch (const mmfuse::Error&) {
  }
  return 0;
}
