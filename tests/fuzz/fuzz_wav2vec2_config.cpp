// Fuzzes the wav2vec2 readers of untrusted JSON: config.json, preprocessor_config.json,
// and transcript text through the CTC vocabulary, the scorer and the subtitle writers.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "mmfuse/error.h"
#include "models/wav2vec2_config.h"
#include "speech/speech_score.h"
#include "speech/subtitles.h"
#include "text/ctc_vocabulary.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) {
    try {
      mmfuse::Wav2Vec2Config c = mmfuse::Wav2Vec2Config::from_json(j, "fuzz");
      (void)c.frames_for(size * 1000);
      (void)c.receptive_field();
    } catch (const mmfuse::Error&) {
    }
    try {
      mmfuse::Wav2Vec2FeatureConfig::from_json(j, "fuzz");
    } catch (const mmfuse::Error&) {
    }
    return 0;
  }
  // Not JSON: treat the bytes as a transcript.
  const std::string text(reinterpret_cast<const char*>(data), size);
  static const mmfuse::CtcVocabulary vocab = mmfuse::CtcVocabulary::from_tokens(
      {"<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I",
       "H",     "S",   "R",    "D",     "L", "U", "M", "W", "C", "F", "G",
       "Y",     "P",   "B",    "V",     "K", "'", "X", "J", "Q", "Z"});
  mmfuse::CtcVocabulary::Encoded enc = vocab.encode_words(text);
  const size_t half = size / 2;
  mmfuse::score_speech(text.substr(0, half), text.substr(half));
  std::vector<mmfuse::TimedWord> words;
  for (size_t i = 0; i < enc.words.size(); ++i)
    words.push_back(
        {enc.words[i], 0.1 * static_cast<double>(i), 0.1 * static_cast<double>(i) + 0.05});
  mmfuse::to_srt(mmfuse::group_cues(words));
  return 0;
}
